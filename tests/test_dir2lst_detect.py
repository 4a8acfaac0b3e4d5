"""Tests for dir2lst --detect: MTCNN bbox + landmark .lst lines, the face kept, skipped images."""
import os
import re
import shutil

import cv2
import numpy as np
import pytest

from common import face_preprocess, record_io
from common.record_io import RecordReader
from deploy import mtcnn_detector
from script_loader import load_script

dir2lst = load_script('dir2lst')
face2rec2 = load_script('face2rec2')

INTEGER = re.compile(r'-?\d+$')


def orl_path(shared_dir, person, number):
    return os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % person, '%d.pgm' % number)


def make_tree(root, persons):
    """root/NAME/FILE from {NAME: [(FILE, source path or an array to write)]}; returns root."""
    for name, files in persons.items():
        (root / name).mkdir(parents=True)
        for file_name, source in files:
            target = str(root / name / file_name)
            if isinstance(source, np.ndarray):
                assert cv2.imwrite(target, source)
            elif isinstance(source, bytes):
                with open(target, 'wb') as fout:
                    fout.write(source)
            else:
                shutil.copy(source, target)
    return root


def flat_grey():
    """A uniform grey 112x92 picture: nothing for a face detector to find."""
    return np.full((112, 92), 128, dtype=np.uint8)


# --- which face is kept ------------------------------------------------------------------------

def test_central_face_trades_area_against_distance_from_the_centre():
    # 100 high, 200 wide: centre (100, 50). Scores (5th column) are not looked at.
    boxes = np.array([[90, 40, 110, 60, 0.99],    # area 400, centred: 400
                      [0, 0, 60, 60, 0.98],       # area 3600, centre (30, 30): 3600 - 2 * 5300
                      [80, 30, 130, 80, 0.70]])   # area 2500, centre (105, 55): 2500 - 2 * 50
    assert mtcnn_detector.central_face(boxes, 100, 200) == 2
    assert mtcnn_detector.central_face(boxes[:2], 100, 200) == 0
    # A single box is kept whatever its score or place.
    assert mtcnn_detector.central_face(boxes[1:2], 100, 200) == 0


def test_central_face_uses_height_then_width_and_ties_go_first():
    boxes = [[190, 40, 210, 60], [50, 50, 70, 70]]  # equal areas; centres (200, 50), (60, 60)
    assert mtcnn_detector.central_face(boxes, 100, 400) == 0  # image centre (200, 50)
    assert mtcnn_detector.central_face(boxes, 400, 100) == 1  # image centre (50, 200)
    twins = [[10, 10, 30, 30], [70, 70, 90, 90]]  # mirror images about the centre (50, 50)
    assert mtcnn_detector.central_face(twins, 100, 100) == 0
    with pytest.raises(ValueError, match=r'N x 4.*got shape \(0, 5\)'):
        mtcnn_detector.central_face(np.zeros((0, 5)), 100, 100)


def test_detect_keeps_the_central_face_not_the_best_scored(tmp_path, monkeypatch, capsys):
    """Two faces in a 100x200 photo: the line gets the central one's box and landmarks."""
    edge_box = [0.0, 0.0, 60.7, 60.2, 0.99]       # best score, far from the centre (100, 50)
    central_box = [80.9, 30.2, 130.5, 80.8, 0.90]
    edge_points = [10, 40, 25, 15, 38, 20, 21, 35, 48, 47]
    central_points = [92.5, 118.25, 105, 95, 116, 45, 44.5, 58, 70, 71]
    made = []

    class TwoFaces:
        def __init__(self, model_folder=None, ctx=None, accurate_landmark=False):
            made.append((model_folder, accurate_landmark))

        def detect_face(self, img, det_type=0):
            assert img.shape == (100, 200, 3) and img.dtype == np.uint8 and det_type == 0
            return (np.array([edge_box, central_box]),
                    np.array([edge_points, central_points], dtype=np.float32))

    monkeypatch.setattr(dir2lst, 'MtcnnDetector', TwoFaces)
    black = np.zeros((100, 200), np.uint8)
    photos = make_tree(tmp_path / 'photos', {'p': [('1.png', black), ('2.png', black)]})
    assert dir2lst.main(['--detect', str(photos)]) == 0
    assert made == [(None, False)]
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['0\t%s\t0\t80\t30\t130\t80\t92.5\t118.25\t105.0\t95.0\t116.0'
                     '\t45.0\t44.5\t58.0\t70.0\t71.0' % (photos / 'p' / name)
                     for name in ('1.png', '2.png')]


# --- ORL photos -> .lst with landmarks -> face2rec2 ---------------------------------------------

def test_detect_writes_bbox_and_landmarks_that_face2rec2_aligns(shared_dir, tmp_path, capsys):
    photos = make_tree(tmp_path / 'photos', {
        's%d' % person: [('%d.pgm' % n, orl_path(shared_dir, person, n)) for n in (1, 2, 3)]
        for person in (1, 2, 3)})
    data = tmp_path / 'data'
    data.mkdir()
    lst = data / 'train.lst'
    assert dir2lst.main(['--detect', str(photos), '--output', str(lst)]) == 0
    err = capsys.readouterr().err
    assert 'dir2lst: 9 images examined, 9 listed with their face (3 identities)' in err
    assert 'dir2lst: skipped 0 images where no face was found' in err

    lines = lst.read_text().splitlines()
    expected = [(str(photos / ('s%d' % person) / ('%d.pgm' % n)), person - 1)
                for person in (1, 2, 3) for n in (1, 2, 3)]
    assert len(lines) == len(expected)
    detector = mtcnn_detector.MtcnnDetector()
    for line, (want_path, want_label) in zip(lines, expected):
        fields = line.split('\t')
        assert len(fields) == 17 and fields[0] == '0'
        assert all(INTEGER.match(v) for v in fields[3:7]), fields[3:7]  # face2rec2 reads int()
        aligned, path, label, bbox, landmark = record_io.parse_lst_line(line)
        assert (aligned, path, label) == (0, want_path, want_label)

        img = cv2.imread(path)
        height, width = img.shape[:2]
        x1, y1, x2, y2 = bbox
        # MTCNN boxes may overhang the edge a little (ORL faces fill the frame), never more.
        assert -0.1 * width <= x1 < x2 <= 1.1 * width and -0.1 * height <= y1 < y2 <= 1.1 * height
        assert x2 - x1 > width / 3 and y2 - y1 > height / 3
        xs, ys = landmark[:, 0], landmark[:, 1]
        assert np.all((xs >= x1 - 1) & (xs <= x2 + 1) & (ys >= y1 - 1) & (ys <= y2 + 1))
        assert np.all((xs >= 0) & (xs < width) & (ys >= 0) & (ys < height))
        left_eye, right_eye, nose, left_mouth, right_mouth = landmark
        assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])

        # The same numbers as the detector gives for the image (one face: row 0), with the
        # box truncated toward zero like 2019's %d.
        boxes, points = detector.detect_face(img)
        np.testing.assert_array_equal(bbox, np.trunc(boxes[0, :4]).astype(int))
        np.testing.assert_allclose(landmark, points[0].reshape(2, 5).T, rtol=0, atol=1e-4)

    record_io.write_property(str(data), 3, (112, 112))
    assert face2rec2.main([str(data / 'train')]) == 0
    assert 'aligned with landmarks: 9' in capsys.readouterr().out
    with RecordReader(str(data / 'train.rec')) as reader:
        assert reader.image_keys() == list(range(1, 10))
        for key, line in zip(reader.image_keys(), lines):
            _, path, label, bbox, landmark = record_io.parse_lst_line(line)
            header, data_bytes = reader.read(key)
            assert list(header.label) == [label, 0]
            face = cv2.imdecode(np.frombuffer(data_bytes, np.uint8), cv2.IMREAD_COLOR)
            assert face.shape == (112, 112, 3)
            # warped on the listed landmarks (not a centre crop), up to JPEG loss
            want = face_preprocess.preprocess(cv2.imread(path), bbox, landmark,
                                              image_size='112,112')
            assert np.abs(face.astype(int) - want).mean() < 3


def test_2019_mtcnn_folder_refines_landmarks_with_lnet(shared_dir, tmp_path, capsys):
    folder = os.path.join(shared_dir, 'models', 'mtcnn-model')
    photos = make_tree(tmp_path / 'photos', {
        'a': [('%d.pgm' % n, orl_path(shared_dir, 4, n)) for n in (1, 2)]})
    assert dir2lst.main(['--detect', str(photos), '--mtcnn-path', folder, '--gpu', '-1']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    detector = mtcnn_detector.MtcnnDetector(model_folder=folder, accurate_landmark=True)
    for line in lines:
        _, path, label, _, landmark = record_io.parse_lst_line(line)
        assert label == 0
        # L-Net points are int32 in the detector, written as whole floats ("31.0")
        assert all(re.match(r'\d+\.0$', v) for v in line.split('\t')[7:17])
        _, points = detector.detect_face(cv2.imread(path))
        np.testing.assert_array_equal(landmark, points[0].reshape(2, 5).T)


# --- images without a face ----------------------------------------------------------------------

def test_images_without_a_face_are_skipped_counted_and_named(shared_dir, tmp_path, capsys):
    photos = make_tree(tmp_path / 'photos', {
        'p1': [('1.pgm', orl_path(shared_dir, 5, 1)), ('2.pgm', orl_path(shared_dir, 5, 2)),
               ('3_grey.png', flat_grey())],
        # one face left: below --min-images 2 after detection, so no label for p2
        'p2': [('1.pgm', orl_path(shared_dir, 6, 1)), ('2_grey.png', flat_grey())],
        'p3': [('1.pgm', orl_path(shared_dir, 7, 1)), ('2.pgm', orl_path(shared_dir, 7, 2)),
               ('notes.txt', b'not an image')],
        'p4': [('1.pgm', orl_path(shared_dir, 8, 1))],  # one file: not even examined
    })
    assert dir2lst.main(['--detect', str(photos)]) == 0
    captured = capsys.readouterr()
    listed = [record_io.parse_lst_line(line)[1:3] for line in captured.out.splitlines()]
    assert listed == [(str(photos / 'p1' / '1.pgm'), 0), (str(photos / 'p1' / '2.pgm'), 0),
                      (str(photos / 'p3' / '1.pgm'), 1), (str(photos / 'p3' / '2.pgm'), 1)]
    err = captured.err
    assert 'dir2lst: 8 images examined, 4 listed with their face (2 identities)' in err
    assert ('dir2lst: skipped 2 images where no face was found: %s, %s'
            % (photos / 'p1' / '3_grey.png', photos / 'p2' / '2_grey.png')) in err
    assert ('dir2lst: skipped 1 files that cannot be read as images: %s'
            % (photos / 'p3' / 'notes.txt')) in err
    assert ('dir2lst: left out 1 persons with fewer than 2 images with a face (no label used): '
            'p2') in err
    assert 'detecting' in err  # the progress bar


def test_only_the_first_few_skipped_paths_are_named(tmp_path, capsys):
    photos = make_tree(tmp_path / 'photos',
                       {'p': [('%d.png' % n, flat_grey()) for n in range(8)]})
    out = tmp_path / 'out.lst'
    assert dir2lst.main(['--detect', str(photos), '--output', str(out)]) == 0
    err = capsys.readouterr().err
    names = ', '.join(str(photos / 'p' / ('%d.png' % n)) for n in range(5))
    assert 'skipped 8 images where no face was found: %s, ... and 3 more' % names in err
    assert 'left out 1 persons' in err
    assert out.read_text() == ''
    assert sorted(os.listdir(tmp_path)) == ['out.lst', 'photos']
    # even with --min-images 0 a person needs one face for a label
    assert dir2lst.main(['--detect', str(photos), '--min-images', '0']) == 0
    captured = capsys.readouterr()
    assert captured.out == ''
    assert 'left out 1 persons with fewer than 1 images with a face (no label used): p' \
        in captured.err


def test_detection_options_are_checked(tmp_path):
    photos = make_tree(tmp_path / 'photos', {'p': [('1.png', flat_grey())]})
    with pytest.raises(SystemExit, match='--mtcnn-path and --gpu only apply with --detect'):
        dir2lst.main([str(photos), '--gpu', '0'])
    with pytest.raises(SystemExit, match='--detect writes aligned=0 lines'):
        dir2lst.main([str(photos), '--detect', '--aligned', '1'])
    missing = str(tmp_path / 'no-such-model')
    with pytest.raises(SystemExit, match='cannot load the MTCNN detector: .*%s' % missing):
        dir2lst.main([str(photos), '--detect', '--mtcnn-path', missing])
