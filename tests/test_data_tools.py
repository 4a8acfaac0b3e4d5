"""Tests for the src/data scripts: dir2lst, face2rec2, dataset_info, rec2image, dataset_merge."""
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from common import face_preprocess, record_io
from common.record_io import RecordReader
from recognition.image_iter import FaceImageIter
from script_loader import load_script


dir2lst = load_script('dir2lst')
face2rec2 = load_script('face2rec2')
dataset_info = load_script('dataset_info')
rec2image = load_script('rec2image')
dataset_merge = load_script('dataset_merge')


def make_image(path, seed, size=(112, 112)):
    """A smooth random colour image written with cv2 (BGR on disk)."""
    rng = np.random.RandomState(seed)
    small = rng.randint(0, 256, size=(8, 8, 3)).astype(np.uint8)
    img = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    assert cv2.imwrite(str(path), img)
    return img


def write_lst(path, lines):
    path.write_text(''.join(line + '\n' for line in lines))


@pytest.fixture
def toy_set(tmp_path):
    """tmp/data with 5 aligned 112x112 JPEGs (labels 0,0,1,1,1), its train.lst and property."""
    data = tmp_path / 'data'
    data.mkdir()
    paths = []
    for i in range(5):
        make_image(tmp_path / ('img%d.jpg' % i), seed=i)
        paths.append(str(tmp_path / ('img%d.jpg' % i)))
    write_lst(data / 'train.lst',
              ['1\t%s\t%d' % (p, lab) for p, lab in zip(paths, [0, 0, 1, 1, 1])])
    (data / 'property').write_text('2,112,112')
    return data, paths


def read_all(rec_path):
    with RecordReader(rec_path) as reader:
        records = {key: reader.read(key) for key in reader.keys}
    return records


# --- dir2lst ------------------------------------------------------------------------------------

def test_dir2lst_sorted_min_two_images_and_labels(tmp_path, capsys):
    root = tmp_path / 'faces'
    for person, files in [('bob', ['b.jpg', 'a.jpg']), ('amy', ['x.jpg', 'c.jpg', '.hidden']),
                          ('cid', ['only.jpg']), ('dan', ['2.jpg', '1.jpg'])]:
        (root / person).mkdir(parents=True)
        for name in files:
            (root / person / name).write_bytes(b'x')
    (root / 'notes.txt').write_text('not a person')
    assert dir2lst.main([str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = [(1, 'amy/c.jpg', 0), (1, 'amy/x.jpg', 0), (1, 'bob/a.jpg', 1),
                (1, 'bob/b.jpg', 1), (1, 'dan/1.jpg', 2), (1, 'dan/2.jpg', 2)]
    assert lines == ['%d\t%s\t%d' % (a, os.path.join(str(root), p), lab) for a, p, lab in expected]

    out = tmp_path / 'out.lst'
    assert dir2lst.main([str(root), '--aligned', '0', '--output', str(out)]) == 0
    assert capsys.readouterr().out == ''
    assert out.read_text().splitlines()[0] == '0\t%s\t0' % os.path.join(str(root), 'amy/c.jpg')
    assert sorted(os.listdir(tmp_path)) == ['faces', 'out.lst']


# --- face2rec2 ----------------------------------------------------------------------------------

def test_face2rec2_aligned_lines_store_file_bytes(toy_set, capsys):
    data, paths = toy_set
    assert face2rec2.main([str(data / 'train')]) == 0
    out = capsys.readouterr().out
    assert 'image_size [112, 112]' in out
    assert 'Creating .rec file from %s in %s' % (data / 'train.lst', data) in out
    with open(data / 'train.idx') as fin:
        assert [int(line.split('\t')[0]) for line in fin] == [1, 2, 3, 4, 5, 0, 6, 7]
    records = read_all(str(data / 'train.rec'))
    for key, (path, label) in enumerate(zip(paths, [0, 0, 1, 1, 1]), 1):
        header, payload = records[key]
        assert header.flag == 2 and header.label.tolist() == [label, 1] and header.id == key
        assert payload == open(path, 'rb').read()
    assert records[0][0].label.tolist() == [6, 8]
    assert records[6][0].label.tolist() == [1, 3] and records[7][0].label.tolist() == [3, 6]


def mixed_list(tmp_path):
    """A .lst with aligned=1, aligned=0 with landmarks, aligned=0 without, and a missing file."""
    data = tmp_path / 'mixed'
    data.mkdir()
    lines = []
    template = face_preprocess.REFERENCE_LANDMARKS_112x96 + [8.0, 0.0]
    for i in range(12):
        label = i // 3
        if i % 4 == 0:
            path = tmp_path / ('raw%d.jpg' % i)
            make_image(path, seed=100 + i)
            lines.append(record_io.format_lst_line(1, path, label))
        elif i % 4 == 1:
            path = tmp_path / ('big%d.png' % i)
            make_image(path, seed=100 + i, size=(200, 180))
            landmark = template * 1.3 + [10.0 + i, 20.0]
            lines.append(record_io.format_lst_line(0, path, label, (5, 5, 150, 150), landmark))
        elif i % 4 == 2:
            path = tmp_path / ('plain%d.png' % i)
            make_image(path, seed=100 + i, size=(120, 92))
            lines.append(record_io.format_lst_line(0, path, label))
        else:
            lines.append(record_io.format_lst_line(1, tmp_path / ('missing%d.jpg' % i), label))
    write_lst(data / 'train.lst', lines)
    return data, lines


def test_face2rec2_mixed_list_single_and_multi_process_identical(tmp_path, capsys):
    data, lines = mixed_list(tmp_path)
    assert face2rec2.main([str(data / 'train'), '--image-size', '112,112']) == 0
    captured = capsys.readouterr()
    for i in (3, 7, 11):
        assert 'train.lst:%d: image %s does not exist' % (i + 1, tmp_path / ('missing%d.jpg' % i)) \
            in captured.err
    assert 'skipped (missing or unreadable): 3' in captured.out
    assert 'cropped without landmarks (aligned=0, no landmarks; the original dropped these): 3' \
        in captured.out
    assert 'aligned with landmarks: 3' in captured.out
    single = (data / 'train.rec').read_bytes(), (data / 'train.idx').read_bytes()

    records = read_all(str(data / 'train.rec'))
    kept = [i for i in range(12) if i % 4 != 3]
    assert sorted(records) == list(range(0, 9 + 4 + 1))  # 9 images, header, 4 identities
    for key, i in enumerate(kept, 1):
        header, payload = records[key]
        aligned = 1 if i % 4 == 0 else 0
        assert header.label.tolist() == [i // 3, aligned]
        img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (112, 112, 3)
        if i % 4 == 1:
            # The same bytes as the original's pack_img of the aligned face (JPEG quality 95).
            _, path, label, bbox, landmark = record_io.parse_lst_line(lines[i])
            face = face_preprocess.preprocess(cv2.imread(path), bbox, landmark, '112,112')
            expected = mx.recordio.pack_img(mx.recordio.IRHeader(0, [label, 0], key, 0), face,
                                            quality=95, img_fmt='.jpg')
            assert record_io.pack_record([label, 0], key, payload) == expected
    assert records[0][0].label.tolist() == [10, 14]
    with RecordReader(str(data / 'train.rec')) as reader:
        assert reader.identity_ranges() == [(10, 1, 4), (11, 4, 6), (12, 6, 8), (13, 8, 10)]

    os.remove(data / 'train.rec')
    os.remove(data / 'train.idx')
    assert face2rec2.main([str(data / 'train'), '--image-size', '112,112',
                           '--num-thread', '2']) == 0
    assert ((data / 'train.rec').read_bytes(), (data / 'train.idx').read_bytes()) == single


def test_face2rec2_malformed_line_names_file_and_line(toy_set):
    data, paths = toy_set
    with open(data / 'train.lst', 'a') as fout:
        fout.write('1\t%s\n' % paths[0])
    with pytest.raises(record_io.LstFormatError, match=r'train.lst:6: expected at least 3'):
        face2rec2.main([str(data / 'train')])
    assert sorted(os.listdir(data)) == ['property', 'train.lst']


def test_face2rec2_without_property_explains_how_to_fix(toy_set):
    data, _ = toy_set
    os.remove(data / 'property')
    with pytest.raises(SystemExit, match=r'no property file in .*--image-size'):
        face2rec2.main([str(data / 'train')])
    assert face2rec2.main([str(data / 'train'), '--image-size', '112,112']) == 0
    assert (data / 'train.rec').exists()


def test_face2rec2_no_list_found(tmp_path, capsys):
    (tmp_path / 'property').write_text('1,112,112')
    assert face2rec2.main([str(tmp_path / 'nothing')]) == 0
    assert 'Did not find any list file with prefix' in capsys.readouterr().out
    assert os.listdir(tmp_path) == ['property']


# --- the ORL faces through the whole chain ------------------------------------------------------

def test_orl_faces_pipeline(shared_dir, tmp_path, capsys):
    orl = os.path.join(shared_dir, 'data', 'orl_faces')
    data = tmp_path / 'orl'
    data.mkdir()
    # ORL photos are 92x112 grey: listed as aligned=0 so face2rec2 crops and resizes them.
    assert dir2lst.main([orl, '--aligned', '0', '--output', str(data / 'train.lst')]) == 0
    lines = (data / 'train.lst').read_text().splitlines()
    persons = sorted(p for p in os.listdir(orl) if os.path.isdir(os.path.join(orl, p)))
    assert len(lines) == 400 and len(persons) == 40
    for line in lines:
        aligned, path, label, _, _ = record_io.parse_lst_line(line)
        assert aligned == 0 and os.path.basename(os.path.dirname(path)) == persons[label]

    record_io.write_property(str(data), 40, (112, 112))
    assert face2rec2.main([str(data / 'train')]) == 0
    capsys.readouterr()
    assert dataset_info.main(['--input', str(data), '--check']) == 0
    out = capsys.readouterr().out
    assert 'no problems found' in out
    assert 'header0 label [401. 441.]' in out and 'identities 40' in out and 'images 401' in out

    with RecordReader(str(data / 'train.rec')) as reader:
        ranges = reader.identity_ranges()
        assert [end - start for _, start, end in ranges] == [10] * 40
        for label, (_, start, end) in enumerate(ranges):
            assert {reader.read_image(k)[0] for k in range(start, end)} == {float(label)}
        # The first ORL file of person 0, cropped (whole image) and stretched to 112x112.
        _, path, _, _, _ = record_io.parse_lst_line(lines[0])
        expected = cv2.resize(cv2.imread(path), (112, 112))
        got = cv2.imdecode(np.frombuffer(reader.read_image(1)[1], np.uint8), cv2.IMREAD_COLOR)
        assert np.abs(got.astype(int) - expected).mean() < 3

    # the training iterator serves every ORL image once per epoch, grey replicated to RGB
    it = FaceImageIter(batch_size=40, data_shape=(3, 112, 112), path_imgrec=str(data / 'train.rec'),
                       shuffle=True, rand_mirror=True, seed=0)
    batches = list(it)
    labels = np.concatenate([b.label[0].asnumpy() for b in batches])
    assert sorted(labels.tolist()) == sorted(float(k) for k in range(40) for _ in range(10))
    pixels = batches[0].data[0].asnumpy()
    assert pixels.shape == (40, 3, 112, 112) and pixels.std() > 10
    np.testing.assert_allclose(pixels[:, 0], pixels[:, 2], atol=1)

    out_dir = tmp_path / 'images'
    assert rec2image.main(['--include', str(data), '--output', str(out_dir)]) == 0
    assert sorted(os.listdir(out_dir)) == sorted('0_%d' % k for k in range(401, 441))
    for k in range(401, 441):
        files = sorted(os.listdir(out_dir / ('0_%d' % k)))
        assert files == sorted('%d.jpg' % n for n in range(10))
    assert cv2.imread(str(out_dir / '0_440' / '9.jpg')).shape == (112, 112, 3)


# --- dataset_info --check on damaged data -------------------------------------------------------

def test_check_reports_property_and_image_problems(toy_set, capsys):
    data, _ = toy_set
    assert face2rec2.main([str(data / 'train')]) == 0
    assert dataset_info.main(['--input', str(data), '--check']) == 0
    (data / 'property').write_text('1,112,96')
    capsys.readouterr()
    assert dataset_info.main(['--input', str(data), '--check']) == 1
    out = capsys.readouterr().out
    rec = str(data / 'train.rec')
    for key in range(1, 6):
        assert '%s: image record %d is 112x112 (HxW) but %s says 112x96' % (
            rec, key, data / 'property') in out
    assert '%s: image record 3 has label 1, but %s says num_classes = 1' % (
        rec, data / 'property') in out
    assert '6 problems found' in out

    (data / 'property').write_text('3,112,112')
    capsys.readouterr()
    assert dataset_info.main(['--input', str(data), '--check']) == 1
    assert 'says num_classes = 3, but the labels in %s go up to 1' % rec in capsys.readouterr().out


def test_check_reports_undecodable_image_and_bad_identity(tmp_path):
    good = cv2.imencode('.jpg', np.zeros((112, 112, 3), np.uint8))[1].tobytes()
    rec = str(tmp_path / 'train.rec')
    record = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'train.idx'), rec, 'w')
    record.write_idx(1, record_io.pack_record(0, 1, good))
    record.write_idx(2, record_io.pack_record(0, 2, b'not a jpeg'))
    record.write_idx(3, record_io.pack_record(1, 3, good))
    record.write_idx(0, record_io.pack_record([4, 6], 0, b''))
    record.write_idx(4, record_io.pack_record([1, 3], 4, b''))
    record.write_idx(5, record_io.pack_record([2, 9], 5, b''))  # overlaps; keys 4.. are no images
    record.close()
    record_io.write_property(str(tmp_path), 2, (112, 112))
    problems = dataset_info.check_dataset(str(tmp_path), progress=False)
    assert problems == [
        '%s: identity record 5 says its images are keys [2, 9), but there is no record 6' % rec,
        '%s: image record 2 (10 bytes) cannot be decoded' % rec,
        '%s: image record 3 belongs to no identity record' % rec,
    ]


def test_check_reports_missing_idx(tmp_path, capsys):
    record_io.write_property(str(tmp_path), 1, (112, 112))
    (tmp_path / 'train.rec').write_bytes(b'')
    assert dataset_info.main(['--input', str(tmp_path), '--check']) == 1
    assert 'index file %s does not exist' % (tmp_path / 'train.idx') in capsys.readouterr().out


# --- rec2image ----------------------------------------------------------------------------------

def test_rec2image_keeps_colours_and_refuses_to_overwrite(tmp_path):
    data = tmp_path / 'data'
    data.mkdir()
    blue = np.zeros((112, 112, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    with record_io.IdentityRecordWriter(str(data / 'train.rec')) as writer:
        for label in (4, 4, 9):
            writer.add_image(cv2.imencode('.jpg', blue)[1].tobytes(), label)
    out = tmp_path / 'out'
    assert rec2image.main(['--include', '%s,%s' % (data, data), '--output', str(out)]) == 0
    assert sorted(os.listdir(out)) == ['0_4', '0_5', '1_4', '1_5']
    assert sorted(os.listdir(out / '0_4')) == ['0.jpg', '1.jpg']
    img = cv2.imread(str(out / '1_5' / '0.jpg'))
    assert img[..., 0].min() > 240 and img[..., 1:].max() < 15
    with pytest.raises(FileExistsError, match='0_4 already exists'):
        rec2image.main(['--include', str(data), '--output', str(out)])


# --- dataset_merge ------------------------------------------------------------------------------

def make_dataset(folder, identities, size=(112, 112)):
    """An identity-structured dataset: identities = [[seed, seed, ...], ...] -> JPEG bytes."""
    folder.mkdir()
    payloads = []
    with record_io.IdentityRecordWriter(str(folder / 'train.rec')) as writer:
        for label, seeds in enumerate(identities):
            for seed in seeds:
                rng = np.random.RandomState(seed)
                img = cv2.resize(rng.randint(0, 256, (4, 4, 3)).astype(np.uint8), size[::-1])
                payloads.append(cv2.imencode('.jpg', img)[1].tobytes())
                writer.add_image(payloads[-1], label, aligned=1)
    record_io.write_property(str(folder), len(identities), size)
    return payloads


def test_merge_without_model_relabels_and_puts_header_last(tmp_path):
    first = make_dataset(tmp_path / 'a', [[1, 2], [3]])
    second = make_dataset(tmp_path / 'b', [[4], [5, 6, 7]])
    out = tmp_path / 'merged'
    assert dataset_merge.main(['--include', '%s,%s' % (tmp_path / 'a', tmp_path / 'b'),
                               '--output', str(out), '--model', '', '--param1', '0.0']) == 0
    assert (out / 'property').read_bytes() == b'4,112,112'
    with open(out / 'train.idx') as fin:
        assert [int(line.split('\t')[0]) for line in fin] == list(range(1, 12)) + [0]
    records = read_all(str(out / 'train.rec'))
    labels = [0, 0, 1, 2, 3, 3, 3]
    for key, (payload, label) in enumerate(zip(first + second, labels), 1):
        header, data = records[key]
        assert header.flag == 0 and header.label == label and header.id == key
        assert data == payload
    assert records[0][0].label.tolist() == [8, 12]
    assert [records[k][0].label.tolist() for k in range(8, 12)] == [[1, 3], [3, 4], [4, 5], [5, 8]]
    with pytest.raises(SystemExit, match='param1 must be 0.0'):
        dataset_merge.main(['--include', str(tmp_path / 'a'), '--output', str(out),
                            '--model', ''])


def save_toy_model(prefix):
    """A checkpoint whose fc1 embeds the mean colour of 2x2 blocks (deterministic, CPU)."""
    data = mx.sym.Variable('data')
    pooled = mx.sym.Pooling(data, kernel=(56, 56), stride=(56, 56), pool_type='avg')
    fc1 = mx.sym.FullyConnected(mx.sym.Flatten(pooled), num_hidden=6, name='fc1')
    sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(fc1, num_hidden=3, name='fc7'), name='softmax')
    rng = np.random.RandomState(0)
    arg_params = {'fc1_weight': mx.nd.array(rng.randn(6, 12)), 'fc1_bias': mx.nd.zeros(6),
                  'fc7_weight': mx.nd.array(rng.randn(3, 6)), 'fc7_bias': mx.nd.zeros(3)}
    mx.model.save_checkpoint(prefix, 1, sym, arg_params, {})


def test_merge_with_model_drops_identities_seen_in_an_earlier_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    save_toy_model(str(tmp_path / 'toy'))
    first = make_dataset(tmp_path / 'a', [[1, 2], [3, 4, 5]])
    # Identity 0 of b repeats identity 1 of a (same images, other order); identity 1 is new.
    second = make_dataset(tmp_path / 'b', [[5, 3, 4], [8, 9]])
    out = tmp_path / 'merged'
    args = ['--include', '%s,%s' % (tmp_path / 'a', tmp_path / 'b'), '--output', str(out),
            '--model', '%s,1' % (tmp_path / 'toy'), '--param1', '0.9999', '--batch-size', '2']
    assert dataset_merge.main(args) == 0
    records = read_all(str(out / 'train.rec'))
    kept = first + second[3:]
    assert [records[k][1] for k in range(1, 8)] == kept
    assert [records[k][0].label for k in range(1, 8)] == [0, 0, 1, 1, 1, 2, 2]
    assert (out / 'property').read_bytes() == b'3,112,112'


def test_identity_embedding_is_normalised_mean_of_normalised_rows(tmp_path, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    save_toy_model(str(tmp_path / 'toy'))
    make_dataset(tmp_path / 'a', [[1, 2, 3]])
    model = dataset_merge.load_model('%s,1' % (tmp_path / 'toy'), 2, (112, 112), [mx.cpu()])
    reader = RecordReader(str(tmp_path / 'a' / 'train.rec'))
    got = dataset_merge.identity_embedding(reader, 4, model, 2, 1)
    # Reference: the model applied by hand with numpy to each decoded RGB image.
    _, args, _ = mx.model.load_checkpoint(str(tmp_path / 'toy'), 1)
    rows = []
    for key in (1, 2, 3):
        img = mx.image.imdecode(reader.read_image(key)[1]).asnumpy().astype(np.float64)
        pooled = img.reshape(2, 56, 2, 56, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
        row = args['fc1_weight'].asnumpy() @ pooled
        rows.append(row / np.linalg.norm(row))
    expected = np.mean(rows, axis=0)
    np.testing.assert_allclose(got, expected / np.linalg.norm(expected), rtol=1e-5)


def test_merge_excludes_identities_matching_a_verification_bin(tmp_path, monkeypatch, capsys):
    from common.verification_pack import save_pairs_bin
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    save_toy_model(str(tmp_path / 'toy'))
    payloads = make_dataset(tmp_path / 'a', [[1, 2], [3], [4, 5]])
    # One pair: the only image of identity 1, and an image not in the dataset at all.
    other = make_dataset(tmp_path / 'other', [[6, 7]])
    save_pairs_bin(str(tmp_path / 'ver.bin'), [payloads[2], other[0]], [False])
    out = tmp_path / 'merged'
    base = ['--include', str(tmp_path / 'a'), '--output', str(out),
            '--model', '%s,1' % (tmp_path / 'toy'), '--param1', '0.9999']
    assert dataset_merge.main(base + ['--exclude', str(tmp_path / 'ver.bin'),
                                      '--param2', '0.9999']) == 0
    assert 'exclude 1' in capsys.readouterr().out
    records = read_all(str(out / 'train.rec'))
    assert [records[k][1] for k in range(1, 5)] == payloads[:2] + payloads[3:]
    assert [records[k][0].label for k in range(1, 5)] == [0, 0, 1, 1]
    assert (out / 'property').read_bytes() == b'2,112,112'

    # A dataset folder as --exclude removes nothing, as in the original, and says so.
    assert dataset_merge.main(base + ['--exclude', str(tmp_path / 'other')]) == 0
    assert 'removes nothing' in capsys.readouterr().err
    assert len(read_all(str(out / 'train.rec'))) == 5 + 1 + 3


@pytest.mark.parametrize('script', [dir2lst, face2rec2, dataset_info, rec2image, dataset_merge])
def test_scripts_have_help(script, capsys):
    with pytest.raises(SystemExit) as excinfo:
        script.main(['--help'])
    assert excinfo.value.code == 0
    assert 'usage:' in capsys.readouterr().out
