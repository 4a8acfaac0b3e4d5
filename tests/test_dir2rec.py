"""Tests for src/data/dir2rec.py: label.txt + images/ -> aligned 112x112 identity records."""
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from common import face_preprocess, record_io
from common.record_io import RecordReader
from script_loader import load_script

dir2rec = load_script('dir2rec')

# Hand-placed (x, y) of left eye, right eye, nose, mouth corners on the 92x112 ORL photos.
ORL_LANDMARKS = np.array([[27.0, 52.0], [63.0, 51.0], [47.0, 68.0], [32.0, 88.0], [60.0, 88.0]])
# label.txt order: persons s2, s1, s3, so labels follow first appearance, not name order.
ORL_ENTRIES = [('s2', 1), ('s2', 2), ('s1', 1), ('s1', 2), ('s1', 3), ('s3', 1), ('s3', 2)]
TEMPLATE_112 = face_preprocess.REFERENCE_LANDMARKS_112x96 + np.float32([8.0, 0.0])


def label_line(relpath, bbox, landmark):
    """A label.txt line; landmarks interleaved x y as the original file format has them."""
    values = list(bbox) + list(np.asarray(landmark, dtype=np.float64).reshape(-1))
    return ' '.join([relpath] + ['%.3f' % v for v in values])


def orl_input(shared_dir, root):
    """root/images/sN/K.jpg as 3-channel copies of ORL photos, and root/label.txt listing them.

    Returns [(relpath, bbox, landmark)] in label.txt order; each photo gets its own small shift
    of the landmarks, so the faces are aligned differently.
    """
    orl = os.path.join(shared_dir, 'data', 'orl_faces')
    entries = []
    for n, (person, number) in enumerate(ORL_ENTRIES):
        relpath = '%s/%d.jpg' % (person, number)
        os.makedirs(root / 'images' / person, exist_ok=True)
        grey = cv2.imread(os.path.join(orl, person, '%d.pgm' % number), cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(str(root / 'images' / relpath), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
        landmark = ORL_LANDMARKS + [n * 0.7 - 2.0, 1.5 - n * 0.4]
        entries.append((relpath, (10, 20, 80, 100), landmark))
    (root / 'label.txt').write_text(''.join(label_line(*e) + '\n' for e in entries))
    return entries


def read_records(out):
    with RecordReader(str(out / 'train.rec')) as reader:
        return {key: reader.read(key) for key in reader.keys}, reader.header


def idx_keys(out):
    with open(out / 'train.idx') as fin:
        return [int(line.split('\t')[0]) for line in fin]


def decode(payload, flag=cv2.IMREAD_UNCHANGED):
    return cv2.imdecode(np.frombuffer(payload, np.uint8), flag)


def test_orl_faces_layout_labels_property_and_alignment(shared_dir, tmp_path, capsys):
    entries = orl_input(shared_dir, tmp_path / 'in')
    out = tmp_path / 'new' / 'out'
    assert dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out)]) == 0
    captured = capsys.readouterr()
    assert 'writing %s property 2\n' % out in captured.out
    assert 'image_size [112, 112]' in captured.out
    assert (out / 'property').read_bytes() == b'3,112,112'
    assert sorted(os.listdir(out)) == ['property', 'train.idx', 'train.rec']

    # images 1..7, then the header, then the identities (s2, s1, s3)
    assert idx_keys(out) == [1, 2, 3, 4, 5, 6, 7, 0, 8, 9, 10]
    records, header = read_records(out)
    with RecordReader(str(out / 'train.rec')) as reader:
        raw = {key: reader.read_raw(key) for key in reader.keys}
    assert header == (8, 11)
    head, payload = records[0]
    assert head.flag == 2 and head.label.tolist() == [8, 11] and head.id == 0 and payload == b''
    for key, start, end in [(8, 1, 3), (9, 3, 6), (10, 6, 8)]:
        head, payload = records[key]
        assert head.flag == 2 and head.label.tolist() == [start, end] and head.id == key
        assert payload == b''
    labels = [0, 0, 1, 1, 1, 2, 2]
    for key, ((relpath, bbox, landmark), label) in enumerate(zip(entries, labels), 1):
        head, payload = records[key]
        assert head.flag == 0 and head.label == label and head.id == key
        assert decode(payload).shape == (112, 112, 3)
        # The landmarks read back as (x, y) rows: the record the original's pack_img made of
        # the face aligned directly with them.
        img = cv2.imread(str(tmp_path / 'in' / 'images' / relpath))
        face = face_preprocess.preprocess(img, bbox, np.float32(landmark), '112,112')
        assert raw[key] == mx.recordio.pack_img(mx.recordio.IRHeader(0, label, key, 0), face,
                                                quality=95, img_fmt='.jpg')
    # header and identity records as the original's mx.recordio.pack(IRHeader(2, [a, b], ...))
    for key, label in [(0, [8, 11]), (8, [1, 3]), (9, [3, 6]), (10, [6, 8])]:
        assert raw[key] == mx.recordio.pack(mx.recordio.IRHeader(2, label, key, 0), b'')
    # Read as x1..x5 y1..y5 (the .lst order) the same numbers would give another face.
    relpath, bbox, landmark = entries[0]
    img = cv2.imread(str(tmp_path / 'in' / 'images' / relpath))
    wrong = np.float32(landmark).reshape(-1).reshape(2, 5).T
    other = face_preprocess.preprocess(img, bbox, wrong, '112,112')
    assert np.abs(decode(records[1][1]).astype(int) - other).mean() > 20


def test_alignment_maps_interleaved_landmarks_onto_the_template(tmp_path):
    # Landmarks = the 112x112 template moved by (+13, +7): the face is that 112x112 window.
    rng = np.random.RandomState(3)
    img = cv2.resize(rng.randint(0, 256, (10, 12, 3)).astype(np.uint8), (160, 140))
    (tmp_path / 'in' / 'images' / 'p').mkdir(parents=True)
    assert cv2.imwrite(str(tmp_path / 'in' / 'images' / 'p' / 'a.png'), img)
    (tmp_path / 'in' / 'label.txt').write_text(
        label_line('p/a.png', (0, 0, 5, 5), TEMPLATE_112 + [13.0, 7.0]) + '\n')
    out = tmp_path / 'out'
    assert dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                         '--encoding', '.png', '--quality', '1']) == 0
    records, _ = read_records(out)
    face = decode(records[1][1])
    assert face.shape == (112, 112, 3)
    # '%.3f' rounding of the landmarks leaves sub-pixel interpolation differences only
    assert np.abs(face.astype(int) - img[7:119, 13:125]).max() <= 2


def test_num_thread_two_is_byte_identical_and_unused_flags_accepted(shared_dir, tmp_path):
    orl_input(shared_dir, tmp_path / 'in')
    outputs = []
    for name, extra in [('one', []),
                        ('two', ['--num-thread', '2', '--exts', '.png', '--chunks', '3',
                                 '--train-ratio', '0.5', '--test-ratio', '0.2'])]:
        out = tmp_path / name
        assert dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out)] + extra) == 0
        outputs.append([(out / f).read_bytes() for f in ('train.rec', 'train.idx', 'property')])
    assert outputs[0] == outputs[1]


def pid_and_square(n):
    return os.getpid(), n * n


def test_map_in_order_uses_worker_processes_and_keeps_order():
    results = list(record_io.map_in_order(iter(range(100)), pid_and_square, 2))
    assert [face for face, _ in results] == list(range(100))
    assert [square for _, (_, square) in results] == [n * n for n in range(100)]
    assert os.getpid() not in {pid for _, (pid, _) in results}
    inline = list(record_io.map_in_order(iter(range(3)), pid_and_square, 1))
    assert {pid for _, (pid, _) in inline} == {os.getpid()}


def test_grey_colour_flag_gives_grey_faces(shared_dir, tmp_path):
    orl_input(shared_dir, tmp_path / 'in')
    out = tmp_path / 'out'
    assert dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                         '--color', '0']) == 0
    records, _ = read_records(out)
    assert decode(records[1][1]).shape == (112, 112)


def test_person_listed_in_two_runs_becomes_one_identity(shared_dir, tmp_path, capsys):
    entries = orl_input(shared_dir, tmp_path / 'in')
    # s2/1, s1/1, s2/2, s1/2: the 2019 tool made 4 identity records of 1 image each.
    order = [entries[0], entries[2], entries[1], entries[3]]
    (tmp_path / 'in' / 'label.txt').write_text(''.join(label_line(*e) + '\n' for e in order))
    out = tmp_path / 'out'
    assert dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                         '--encoding', '.png', '--quality', '1']) == 0
    captured = capsys.readouterr()
    assert "lists the images of 2 person(s) in separate runs (e.g. 's2' from lines 1, 3)" \
        in captured.err
    assert (out / 'property').read_bytes() == b'2,112,112'
    records, header = read_records(out)
    assert header == (5, 7)
    assert [records[k][0].label.tolist() for k in (5, 6)] == [[1, 3], [3, 5]]
    # keys follow the persons: s2/1, s2/2, then s1/1, s1/2
    for key, (relpath, bbox, landmark), label in zip(
            (1, 2, 3, 4), [entries[0], entries[1], entries[2], entries[3]], (0, 0, 1, 1)):
        assert records[key][0].label == label
        img = cv2.imread(str(tmp_path / 'in' / 'images' / relpath))
        face = face_preprocess.preprocess(img, bbox, np.float32(landmark), '112,112')
        np.testing.assert_array_equal(decode(records[key][1]), face)


def test_path_without_folder_is_its_own_person_and_blank_lines_skipped(tmp_path, capsys):
    (tmp_path / 'in' / 'images').mkdir(parents=True)
    img = np.full((120, 120, 3), 90, np.uint8)
    for name in ('x.png', 'y.png'):
        assert cv2.imwrite(str(tmp_path / 'in' / 'images' / name), img)
    lines = [label_line(name, (0, 0, 1, 1), TEMPLATE_112 + 3.0) for name in ('x.png', 'y.png')]
    (tmp_path / 'in' / 'label.txt').write_text('\n'.join([lines[0], '', lines[1], '  ']) + '\n')
    out = tmp_path / 'out'
    assert dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out)]) == 0
    assert 'writing %s property 1\n' % out in capsys.readouterr().out
    assert (out / 'property').read_bytes() == b'2,112,112'
    records, header = read_records(out)
    assert [records[k][0].label for k in (1, 2)] == [0, 1] and header == (3, 5)


# --- errors: clear message, nothing under the final names ---------------------------------------

def run_failing(tmp_path, match, out=None):
    out = out or tmp_path / 'out'
    with pytest.raises(SystemExit, match=match):
        dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out)])
    return out


def test_missing_label_file(tmp_path):
    (tmp_path / 'in').mkdir()
    out = run_failing(tmp_path, r'dir2rec: .*in/label.txt does not exist')
    assert not out.exists()


@pytest.mark.parametrize('bad_line, match', [
    ('s1/1.jpg 1 2 3 4 5 6 7 8 9 10 11 12 13', r'label.txt:3: expected 15 whitespace-separated '
                                              r'fields .* got 14'),
    ('s1/1.jpg 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15', r'label.txt:3: expected 15 .* got 16'),
    ('s1/1.jpg 1 2 3 4 5 6 7 8 9 10 11 12 13 x', r'label.txt:3: the bbox and landmark fields '
                                                r'.* must be numbers'),
    ('s1/9.jpg 1 2 3 4 5 6 7 8 9 10 11 12 13 14', r'label.txt:3: image .*images/s1/9.jpg does '
                                                 r'not exist'),
])
def test_bad_label_lines_name_file_and_line(shared_dir, tmp_path, bad_line, match):
    orl_input(shared_dir, tmp_path / 'in')
    lines = (tmp_path / 'in' / 'label.txt').read_text().splitlines()
    lines.insert(2, bad_line)
    (tmp_path / 'in' / 'label.txt').write_text('\n'.join(lines) + '\n')
    out = run_failing(tmp_path, match)
    assert not out.exists()


def test_empty_label_file(tmp_path):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'label.txt').write_text('\n')
    out = run_failing(tmp_path, r'label.txt lists no images')
    assert not out.exists()


@pytest.mark.parametrize('num_thread', ['1', '2'])
def test_unreadable_image_keeps_previous_output(shared_dir, tmp_path, num_thread):
    orl_input(shared_dir, tmp_path / 'in')
    (tmp_path / 'in' / 'images' / 's1' / '2.jpg').write_bytes(b'not an image')
    out = tmp_path / 'out'
    out.mkdir()
    for name in ('train.rec', 'train.idx', 'property'):
        (out / name).write_text('old ' + name)
    with pytest.raises(SystemExit, match=r'label.txt:4: image .*images/s1/2.jpg cannot be read '
                                         r'or decoded'):
        dir2rec.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                      '--num-thread', num_thread])
    assert sorted(os.listdir(out)) == ['property', 'train.idx', 'train.rec']
    for name in ('train.rec', 'train.idx', 'property'):
        assert (out / name).read_text() == 'old ' + name


def test_unreadable_image_in_new_output_leaves_nothing(shared_dir, tmp_path):
    orl_input(shared_dir, tmp_path / 'in')
    (tmp_path / 'in' / 'images' / 's3' / '2.jpg').write_bytes(b'')
    out = run_failing(tmp_path, r'label.txt:7: image .*images/s3/2.jpg cannot be read')
    assert not out.exists()


def test_degenerate_landmarks_name_the_line(shared_dir, tmp_path):
    orl_input(shared_dir, tmp_path / 'in')
    with open(tmp_path / 'in' / 'label.txt', 'a') as fout:
        fout.write(label_line('s3/1.jpg', (0, 0, 1, 1), np.zeros((5, 2))) + '\n')
    run_failing(tmp_path, r'label.txt:8: image .*images/s3/1.jpg cannot be aligned: .*degenerate')
