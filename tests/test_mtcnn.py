"""Tests for deploy.mtcnn_detector: nets, PyPI weight conversion, box rules, ORL parity."""
import os
import shutil

import cv2
import mxnet as mx
import numpy as np
import pytest

from deploy import mtcnn_detector as md

# ORL faces (92x112 grey) fill the frame; upscaled 2x they are ~140 px wide, well above minsize.
ORL_FACES = [(1, 1), (5, 3), (9, 5), (13, 7), (17, 2), (22, 5), (28, 1), (34, 5), (40, 10)]


def orl_bgr(shared_dir, person, number, upscale=2):
    """An ORL face as a BGR uint8 image, enlarged `upscale` times (INTER_LINEAR)."""
    path = os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % person, '%d.pgm' % number)
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    assert grey is not None, path
    grey = cv2.resize(grey, (grey.shape[1] * upscale, grey.shape[0] * upscale))
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


# Loading a detector takes well under a second, so every test gets fresh ones.
@pytest.fixture
def model_folder(shared_dir):
    folder = os.path.join(shared_dir, 'models', 'mtcnn-model')
    assert os.path.isdir(folder), folder
    return folder


@pytest.fixture
def pypi_detector():
    return md.MtcnnDetector()


@pytest.fixture
def folder_detector(model_folder):
    return md.MtcnnDetector(model_folder=model_folder)


@pytest.fixture
def lnet_detector(model_folder):
    return md.MtcnnDetector(model_folder=model_folder, accurate_landmark=True)


# --- the networks ------------------------------------------------------------------------------

@pytest.mark.parametrize('name, shape', [('det1', (1, 3, 31, 45)), ('det2', (4, 3, 24, 24)),
                                         ('det3', (4, 3, 48, 48)), ('det4', (4, 15, 24, 24))])
def test_code_built_nets_match_the_2019_symbol_files(model_folder, name, shape):
    """Same parameter names and the same outputs as the legacy JSON loaded by mxnet's upgrader."""
    params, source = md.load_folder_params(model_folder, name)
    ours = md.Net(name, params, source, mx.cpu())
    legacy = mx.sym.load(os.path.join(model_folder, name + '-symbol.json'))
    legacy_params = [a for a in legacy.list_arguments() if a != 'data' and not a.endswith('_label')]
    assert sorted(legacy_params) == sorted(a for a in ours.symbol.list_arguments() if a != 'data')

    batch = np.random.RandomState(0).uniform(-1, 1, shape).astype(np.float32)
    args = {k: params[k] for k in legacy_params}
    args['data'] = mx.nd.array(batch)
    for label in legacy.list_arguments():
        if label.endswith('_label'):
            args[label] = mx.nd.zeros((shape[0],))
    expected = legacy.bind(mx.cpu(), args=args, grad_req='null').forward(is_train=False)
    got = ours(batch)
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        np.testing.assert_allclose(have, want.asnumpy(), rtol=0, atol=1e-5)


@pytest.mark.parametrize('name', ['det1', 'det2', 'det3'])
def test_pypi_weights_convert_to_the_2019_params(model_folder, name):
    """HWIO kernels, RGB first layer, PReLU slopes and permuted dense rows all land in place."""
    converted, _ = md.load_pypi_params(name)
    original, _ = md.load_folder_params(model_folder, name)
    assert sorted(converted) == sorted(original)
    for key in original:
        np.testing.assert_allclose(converted[key].asnumpy(), original[key].asnumpy(),
                                   rtol=0, atol=1e-6, err_msg=key)


def test_wrong_weight_lists_and_shapes_are_reported(tmp_path, model_folder):
    with pytest.raises(ValueError, match='expected 13 weight arrays for det1, found 2'):
        md.convert_pypi_weights([np.zeros(1), np.zeros(1)], 'det1', 'pnet.lz4')
    params, _ = md.load_folder_params(model_folder, 'det2')
    params['conv3_weight'] = mx.nd.zeros((64, 48, 3, 3))
    with pytest.raises(ValueError, match=r"'conv3_weight' of MTCNN det2 has shape \(64, 48, 3"):
        md.Net('det2', params, 'my.params', mx.cpu())
    del params['conv3_weight']
    with pytest.raises(ValueError, match="'conv3_weight' of MTCNN det2 is missing"):
        md.Net('det2', params, 'my.params', mx.cpu())


# --- box rules ---------------------------------------------------------------------------------

def test_pyramid_scales_for_640x480():
    scales = md.pyramid_scales(480, 640, minsize=20, factor=0.709)
    # 480 * 0.6 = 288 shrinks by 0.709 ten times before it is no longer above 12
    assert len(scales) == 10
    np.testing.assert_allclose(scales, [0.6 * 0.709 ** k for k in range(10)], rtol=1e-12)
    assert md.pyramid_scales(20, 20) == []  # 20 * 0.6 = 12 is not above 12


def test_nms_union_min_and_inclusive_areas():
    boxes = np.array([[0, 0, 9, 9, 0.9],      # area 100
                      [0, 0, 9, 4, 0.8],      # inside the first: IoU 50/100, min-overlap 1
                      [5, 0, 14, 9, 0.95],    # overlaps the first by 5 columns: IoU 50/150
                      [30, 30, 39, 39, 0.7]])
    assert md.nms(boxes, 0.5, 'Union') == [2, 0, 1, 3]   # 0.5 is not above 0.5
    assert md.nms(boxes, 0.3, 'Union') == [2, 1, 3]      # 1/3 > 0.3 drops box 0 under box 2
    assert md.nms(boxes, 0.7, 'Min') == [2, 0, 3]        # box 1 lies inside box 0: 50/50
    assert md.nms(np.zeros((0, 5)), 0.5) == []


def test_generate_boxes_maps_cells_back_with_the_2019_offsets():
    face_map = np.zeros((3, 4), dtype=np.float32)
    face_map[1, 2] = 0.9
    face_map[2, 0] = 0.6  # not above the threshold
    regression = np.arange(4 * 3 * 4, dtype=np.float32).reshape(1, 4, 3, 4) / 100
    boxes = md.generate_boxes(face_map, regression, 0.5, 0.6)
    # col 2, row 1 at scale 0.5: (2*2+1)/0.5 = 10, (2*1+1)/0.5 = 6, +12/0.5 = 24 more
    np.testing.assert_allclose(boxes, [[10, 6, 34, 30, 0.9, 0.06, 0.18, 0.30, 0.42]], atol=1e-6)
    assert md.generate_boxes(face_map, regression, 0.5, 0.95).shape == (0, 9)


def test_square_calibrate_and_crop_geometry():
    square = md.to_square(np.array([[10.0, 20.0, 19.0, 59.0, 1.0]]))
    np.testing.assert_allclose(square, [[-5.0, 20.0, 34.0, 59.0, 1.0]])  # 10 wide -> 40 wide

    boxes = md.calibrate(np.array([[0.0, 0.0, 9.0, 19.0, 1.0]]),
                         np.array([[0.1, -0.1, 0.2, 0.5]]))
    np.testing.assert_allclose(boxes, [[1.0, -2.0, 11.0, 29.0, 1.0]])  # widths 10, heights 20

    # a 10x10 box hanging 3 px off the left and 4 px off the bottom of a 20x16 image
    box = np.array([[-3.0, 10.0, 6.0, 19.0, 1.0]])
    dy, edy, dx, edx, y, ey, x, ex, w, h = md.crop_geometry(box, 20, 16)
    assert (w[0], h[0]) == (10, 10)
    assert (dx[0], edx[0], x[0], ex[0]) == (3, 9, 0, 6)
    assert (dy[0], edy[0], y[0], ey[0]) == (0, 5, 10, 15)
    np.testing.assert_allclose(md.clip_to_image(box.copy(), 20, 16), [[0, 10, 6, 15, 1]])


def test_crop_batch_pads_with_zeros_and_normalises():
    img = np.full((8, 8, 3), 255, dtype=np.uint8)
    batch = md.crop_batch(img, np.array([[4.0, 4.0, 11.0, 11.0, 1.0]]), 8, np.uint8)
    assert batch.shape == (1, 3, 8, 8) and batch.dtype == np.float32
    np.testing.assert_allclose(batch[0, :, :4, :4], (255 - 127.5) * 0.0078125)
    np.testing.assert_allclose(batch[0, :, 4:, 4:], -127.5 * 0.0078125)


# --- detection ---------------------------------------------------------------------------------

def test_pypi_and_2019_weights_find_the_same_faces_on_orl(shared_dir, pypi_detector,
                                                          folder_detector, lnet_detector):
    for person, number in ORL_FACES:
        img = orl_bgr(shared_dir, person, number)
        ours = pypi_detector.detect_face(img)
        original = folder_detector.detect_face(img)
        refined = lnet_detector.detect_face(img)
        assert ours is not None and original is not None and refined is not None, (person, number)
        boxes, points = ours
        assert boxes.shape[1] == 5 and points.shape == (len(boxes), 10)
        assert boxes[0, 4] > 0.8 and np.all(np.diff(boxes[:, 4]) <= 0)  # best first
        np.testing.assert_allclose(boxes, original[0], atol=0.5)
        assert np.abs(points - original[1]).max() < 2.0
        # the face box holds its own landmarks
        x1, y1, x2, y2 = boxes[0, :4]
        assert x1 < points[0, :5].min() and points[0, :5].max() < x2
        assert y1 < points[0, 5:].min() and points[0, 5:].max() < y2

        # L-Net moves only the landmarks, and by at most 0.35 of its patch (+ rounding)
        np.testing.assert_allclose(refined[0], original[0], atol=1e-6)
        assert refined[1].dtype == np.int32
        sides = np.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1)
        patch = np.round(0.25 * sides)
        patch += np.mod(patch, 2)
        assert np.all(np.abs(refined[1] - original[1]) <= 0.35 * patch[:, None] + 2)


def test_no_face_on_a_flat_image(pypi_detector, lnet_detector):
    flat = np.full((224, 184, 3), 128, dtype=np.uint8)
    assert pypi_detector.detect_face(flat) is None
    assert lnet_detector.detect_face(flat) is None


def test_whole_image_mode_skips_pnet(shared_dir, model_folder):
    detector = md.MtcnnDetector(model_folder=model_folder, threshold=[0.0, 0.0, 0.2],
                                accurate_landmark=True)
    img = orl_bgr(shared_dir, 1, 1)
    boxes, points = detector.detect_face(img, det_type=1)
    assert len(boxes) == 1 and points.dtype == np.int32
    limited = detector.detect_face_limited(img, det_type=2)
    np.testing.assert_allclose(limited[0], boxes)
    np.testing.assert_array_equal(limited[1], points)
    # O-Net straight on the whole image also finds the face
    assert detector.detect_face_limited(img, det_type=1) is not None


def test_bad_images_are_rejected(pypi_detector):
    with pytest.raises(ValueError, match='must be a numpy array'):
        pypi_detector.detect_face(None)
    with pytest.raises(ValueError, match='COLOR_GRAY2BGR'):
        pypi_detector.detect_face(np.zeros((50, 50), dtype=np.uint8))
    with pytest.raises(ValueError, match='is empty'):
        pypi_detector.detect_face(np.zeros((0, 50, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match='uint8'):
        pypi_detector.detect_face(np.zeros((50, 50, 3), dtype=np.float32))


def test_model_folder_errors(tmp_path, model_folder):
    with pytest.raises(ValueError, match='det4'):
        md.MtcnnDetector(accurate_landmark=True)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        md.MtcnnDetector(model_folder=str(tmp_path / 'nowhere'))
    shutil.copy(os.path.join(model_folder, 'det1-0001.params'), tmp_path)
    with pytest.raises(FileNotFoundError, match='det2-0001.params'):
        md.MtcnnDetector(model_folder=str(tmp_path))
    with pytest.raises(ValueError, match='3 values'):
        md.MtcnnDetector(threshold=[0.6, 0.7])
