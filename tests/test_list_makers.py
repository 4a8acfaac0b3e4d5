"""Tests for the src/data list makers glint2lst and dir2lst_ytf."""
import os

import cv2
import numpy as np
import pytest

from common import face_preprocess, record_io
from common.record_io import RecordReader
from script_loader import load_script


glint2lst = load_script('glint2lst')
dir2lst_ytf = load_script('dir2lst_ytf')
face2rec2 = load_script('face2rec2')


def write_text(path, lines):
    path.write_text(''.join(line + '\n' for line in lines))


def check_round_trip(lines, expected):
    """parse_lst_line reads every line back as (aligned, path, label, bbox, landmark) `expected`."""
    assert len(lines) == len(expected)
    for i, (line, (aligned, path, label, landmark)) in enumerate(zip(lines, expected)):
        got = record_io.parse_lst_line(line, where='line %d' % i)
        assert got[:3] == (aligned, path, label)
        if landmark is None:
            assert got[3] is None and got[4] is None
        else:
            assert got[3].dtype == np.int32 and got[3].tolist() == [0, 0, 0, 0]
            assert got[4].dtype == np.float32
            assert np.array_equal(got[4], np.array(landmark, dtype=np.float32))


# --- glint2lst ----------------------------------------------------------------------------------

@pytest.fixture
def glint_dir(tmp_path):
    """Landmark files celeb_lmk (train), asian_lmk.txt (train) and test_lmk (test lines)."""
    root = tmp_path / 'glint'
    root.mkdir()
    write_text(root / 'celeb_lmk', [
        'm.01/0.jpg 100 38.2946 51.5 73.5 51.25 56 71.75 41.5 92.25 70.75 92',
        'm.02/0.jpg 7 1 2 3 4 5 6 7 8 9 10',
        '',
        'm.01/1.jpg 100 10 20 30 40 50 60 70 80 90 100.5',
    ])
    write_text(root / 'asian_lmk.txt', [
        'a/55.jpg 55 -1.5 2 3 4 5 6 7 8 9 0.25',
        'a/7.jpg 7 11 12 13 14 15 16 17 18 19 20',
    ])
    write_text(root / 'test_lmk', [
        't/0.jpg 1 2 3 4 5 6 7 8 9 10',
    ])
    return root


def test_glint2lst_lines_labels_and_landmark_order(glint_dir, capsys):
    assert glint2lst.main([str(glint_dir), 'celeb,nosuch,asian,test']) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    root = str(glint_dir)
    # Labels: celeb 100 -> 0, 7 -> 1; asian 55 -> 2 and 7 -> 1 again (shared across targets);
    # test lines -1. Landmarks x1 y1 .. x5 y5 in the file become x1..x5 then y1..y5.
    expected = [
        '0\t%s/m.01/0.jpg\t0\t0\t0\t0\t0\t38.2946\t73.5\t56.0\t41.5\t70.75'
        '\t51.5\t51.25\t71.75\t92.25\t92.0' % root,
        '0\t%s/m.02/0.jpg\t1\t0\t0\t0\t0\t1.0\t3.0\t5.0\t7.0\t9.0'
        '\t2.0\t4.0\t6.0\t8.0\t10.0' % root,
        '0\t%s/m.01/1.jpg\t0\t0\t0\t0\t0\t10.0\t30.0\t50.0\t70.0\t90.0'
        '\t20.0\t40.0\t60.0\t80.0\t100.5' % root,
        '0\t%s/a/55.jpg\t2\t0\t0\t0\t0\t-1.5\t3.0\t5.0\t7.0\t9.0'
        '\t2.0\t4.0\t6.0\t8.0\t0.25' % root,
        '0\t%s/a/7.jpg\t1\t0\t0\t0\t0\t11.0\t13.0\t15.0\t17.0\t19.0'
        '\t12.0\t14.0\t16.0\t18.0\t20.0' % root,
        '0\t%s/t/0.jpg\t-1\t0\t0\t0\t0\t1.0\t3.0\t5.0\t7.0\t9.0'
        '\t2.0\t4.0\t6.0\t8.0\t10.0' % root,
    ]
    assert lines == expected
    assert 'no landmark file %s or %s' % (glint_dir / 'nosuch_lmk', glint_dir / 'nosuch_lmk.txt') \
        in captured.err
    assert "target 'nosuch' skipped" in captured.err

    check_round_trip(lines, [
        (0, root + '/m.01/0.jpg', 0, [[38.2946, 51.5], [73.5, 51.25], [56, 71.75], [41.5, 92.25],
                                      [70.75, 92]]),
        (0, root + '/m.02/0.jpg', 1, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]),
        (0, root + '/m.01/1.jpg', 0, [[10, 20], [30, 40], [50, 60], [70, 80], [90, 100.5]]),
        (0, root + '/a/55.jpg', 2, [[-1.5, 2], [3, 4], [5, 6], [7, 8], [9, 0.25]]),
        (0, root + '/a/7.jpg', 1, [[11, 12], [13, 14], [15, 16], [17, 18], [19, 20]]),
        (0, root + '/t/0.jpg', -1, [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]),
    ])


def test_glint2lst_label_order_follows_target_order(glint_dir, capsys):
    assert glint2lst.main([str(glint_dir), 'asian,celeb']) == 0
    labels = [int(line.split('\t')[2]) for line in capsys.readouterr().out.splitlines()]
    # asian 55 -> 0, 7 -> 1; celeb 100 -> 2, 7 -> 1, 100 -> 2
    assert labels == [0, 1, 2, 1, 2]


def test_glint2lst_output_file(glint_dir, tmp_path, capsys):
    out = tmp_path / 'glint.lst'
    assert glint2lst.main([str(glint_dir), 'test', '--output', str(out)]) == 0
    assert capsys.readouterr().out == ''
    assert out.read_text() == ('0\t%s/t/0.jpg\t-1\t0\t0\t0\t0\t1.0\t3.0\t5.0\t7.0\t9.0'
                               '\t2.0\t4.0\t6.0\t8.0\t10.0\n' % glint_dir)
    assert sorted(os.listdir(tmp_path)) == ['glint', 'glint.lst']


@pytest.mark.parametrize('bad_line, message', [
    ('x/1.jpg 1 2 3 4 5 6 7 8 9', r'bad_lmk:2: expected 12 space-separated fields .* got 10'),
    ('x/1.jpg 3 1 2 3 4 5 6 7 8 9 10 11', r'bad_lmk:2: expected 12 .* got 13'),
    ('x/1.png 3 1 2 3 4 5 6 7 8 9 10', r"bad_lmk:2: expected an image path ending in .jpg, "
                                       r"got 'x/1.png'"),
    ('x/1.jpg three 1 2 3 4 5 6 7 8 9 10', r"bad_lmk:2: expected an integer label in field 2, "
                                           r"got 'three'"),
    ('x/1.jpg 3 1 2 3 4 5 six 7 8 9 10', r'bad_lmk:2: expected 10 landmark numbers'),
    ('x/1.jpg 1 2 3 4 nan 6 7 8 9 10', r'bad_lmk:2: landmark coordinates must be finite'),
])
def test_glint2lst_malformed_line_names_file_and_line(tmp_path, bad_line, message):
    write_text(tmp_path / 'bad_lmk', ['x/0.jpg 3 1 2 3 4 5 6 7 8 9 10', bad_line])
    out = tmp_path / 'bad.lst'
    with pytest.raises(SystemExit, match=message):
        glint2lst.main([str(tmp_path), 'bad', '--output', str(out)])
    assert sorted(os.listdir(tmp_path)) == ['bad_lmk']


def test_glint2lst_missing_inputs(tmp_path, capsys):
    with pytest.raises(SystemExit, match=r'glint2lst: input folder .*nothere does not exist'):
        glint2lst.main([str(tmp_path / 'nothere'), 'celeb'])
    with pytest.raises(SystemExit, match=r"none of the targets 'celeb,asian' has a landmark file"):
        glint2lst.main([str(tmp_path), 'celeb,asian'])
    err = capsys.readouterr().err
    assert "target 'celeb' skipped" in err and "target 'asian' skipped" in err


def test_glint2lst_list_packs_with_face2rec2_including_test_labels(tmp_path, capsys):
    data = tmp_path / 'glint'
    data.mkdir()
    # Faces whose landmarks are the 112x112 template shifted by 4 px inside a 120x120 image.
    template = face_preprocess.REFERENCE_LANDMARKS_112x96 + [8.0, 0.0]
    entries = [('p/0.jpg', '42'), ('p/1.jpg', '42'), ('q/0.jpg', '9'), ('t/0.jpg', None)]
    lmk_lines = []
    for i, (relpath, label) in enumerate(entries):
        os.makedirs(data / os.path.dirname(relpath), exist_ok=True)
        rng = np.random.RandomState(i)
        img = cv2.resize(rng.randint(0, 256, (8, 8, 3)).astype(np.uint8), (120, 120))
        assert cv2.imwrite(str(data / relpath), img)
        coords = ' '.join('%g' % v for v in (template + 4.0).reshape(-1))
        lmk_lines.append(' '.join(v for v in (relpath, label, coords) if v is not None))
    write_text(data / 'train_lmk', lmk_lines[:3])
    write_text(data / 'test_lmk.txt', lmk_lines[3:])
    assert glint2lst.main([str(data), 'train,test', '--output', str(data / 'glint.lst')]) == 0
    assert face2rec2.main([str(data / 'glint'), '--image-size', '112,112']) == 0
    assert 'aligned with landmarks: 4' in capsys.readouterr().out
    with RecordReader(str(data / 'glint.rec')) as reader:
        labels = [reader.read(key)[0].label.tolist() for key in range(1, 5)]
        # The test face keeps label -1 in its record and forms an identity of its own.
        assert labels == [[0, 0], [0, 0], [1, 0], [-1, 0]]
        assert reader.identity_ranges() == [(5, 1, 3), (6, 3, 4), (7, 4, 5)]


# --- dir2lst_ytf --------------------------------------------------------------------------------

def test_dir2lst_ytf_two_levels_sorted_label_per_person(tmp_path, capsys):
    root = tmp_path / 'aligned_images_DB'
    tree = {
        'bob/v2': ['2.jpg', '10.jpg'],
        'bob/v1': ['b.jpg', 'a.jpg', '.hidden'],
        'amy/1': ['f.jpg'],
        'cid': [],
        'dan/v': [],
        'eve/0': ['x.jpg'],
    }
    for folder, files in tree.items():
        (root / folder).mkdir(parents=True)
        for name in files:
            (root / folder / name).write_bytes(b'x')
    (root / 'bob' / 'notes.txt').write_text('not a video')
    (root / 'eve' / '0' / 'sub').mkdir()
    (root / 'readme.txt').write_text('not a person')

    assert dir2lst_ytf.main([str(root)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    # amy 0, bob 1, cid 2 and dan 3 (no frames, labels unused), eve 4.
    expected = [('amy/1/f.jpg', 0), ('bob/v1/a.jpg', 1), ('bob/v1/b.jpg', 1),
                ('bob/v2/10.jpg', 1), ('bob/v2/2.jpg', 1), ('eve/0/x.jpg', 4)]
    assert lines == ['1\t%s\t%d' % (os.path.join(str(root), p), label) for p, label in expected]
    check_round_trip(lines, [(1, os.path.join(str(root), p), label, None)
                             for p, label in expected])
    assert 'person cid has no frames' in captured.err and 'its label 2 stays unused' in captured.err
    assert 'person dan has no frames' in captured.err and 'its label 3 stays unused' in captured.err

    out = tmp_path / 'ytf.lst'
    assert dir2lst_ytf.main([str(root), '--output', str(out)]) == 0
    assert capsys.readouterr().out == ''
    assert out.read_text().splitlines() == lines
    assert sorted(os.listdir(tmp_path)) == ['aligned_images_DB', 'ytf.lst']


def test_dir2lst_ytf_needs_an_existing_input_dir(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        dir2lst_ytf.main([])
    assert exc.value.code == 2
    assert 'input_dir' in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r'dir2lst_ytf: input folder .*nothere does not exist'):
        dir2lst_ytf.main([str(tmp_path / 'nothere')])
