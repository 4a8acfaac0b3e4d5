"""Tests for common.face_preprocess: similarity estimate, warp, crop fallbacks and errors."""
import os

import cv2
import numpy as np
import pytest

from common import face_preprocess

# The ArcFace templates written out from the spec (section 3.1), independent of the module.
TEMPLATE_96 = np.array([[30.2946, 51.6963], [65.5318, 51.5014], [48.0252, 71.7366],
                        [33.5493, 92.3655], [62.7299, 92.2041]], dtype=np.float32)
TEMPLATE_112 = TEMPLATE_96 + np.array([8.0, 0.0], dtype=np.float32)


def similarity(scale, degrees, tx, ty):
    """A 3x3 homogeneous similarity matrix."""
    angle = np.deg2rad(degrees)
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[cos, -sin, tx], [sin, cos, ty], [0.0, 0.0, 1.0]])


def apply(matrix, points):
    """Map (N, 2) points through a 2x3 or 3x3 matrix."""
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def inverse_similarity(scale, degrees, tx, ty):
    """The inverse written in closed form: scale 1/s, angle -a, translation -(1/s) R(-a) t."""
    inv = similarity(1.0 / scale, -degrees, 0.0, 0.0)
    inv[:2, 2] = -inv[:2, :2] @ np.array([tx, ty])
    return inv


@pytest.mark.parametrize('scale, degrees, tx, ty', [
    (1.0, 0.0, 0.0, 0.0),
    (2.3, 17.0, 40.5, -12.25),
    (0.6, -95.0, 300.0, 80.0),
    (1.7, 180.0, 5.0, 210.0),
])
@pytest.mark.parametrize('template', [TEMPLATE_96, TEMPLATE_112], ids=['112x96', '112x112'])
def test_exact_similarity_gives_back_the_inverse(scale, degrees, tx, ty, template):
    template = template.astype(np.float64)
    landmarks = apply(similarity(scale, degrees, tx, ty), template)
    matrix = face_preprocess.estimate_similarity(landmarks, template)
    assert matrix.shape == (2, 3)
    np.testing.assert_allclose(matrix, inverse_similarity(scale, degrees, tx, ty)[:2],
                               rtol=0, atol=1e-5)


def test_alignment_matrix_picks_the_template_by_width():
    true = similarity(1.4, 12.0, 20.0, 30.0)
    for size, template in [('112,112', TEMPLATE_112), ('112', TEMPLATE_112), (112, TEMPLATE_112),
                           ((112, 96), TEMPLATE_96), ([112, 96], TEMPLATE_96)]:
        landmarks = apply(true, template.astype(np.float64)).astype(np.float32)
        matrix = face_preprocess.alignment_matrix(landmarks, size)
        # float32 landmarks limit the precision to about 1e-5 pixel.
        np.testing.assert_allclose(apply(matrix, landmarks.astype(np.float64)), template,
                                   rtol=0, atol=1e-4)


# Reference matrices for irregular (not exactly similar) point sets, computed once with an
# independent implementation: scikit-image 0.26.0 (numpy 1.26.4) in a throwaway venv,
#   tf = skimage.transform.SimilarityTransform(); tf.estimate(src, dst); tf.params[:2]
# with src = the landmarks cast to float32 then float64 and dst = the float32 template (for the
# template cases), exactly as preprocess() feeds them.
FACE_112x112 = np.array([[25.0, 52.0], [64.5, 51.0], [45.0, 71.0], [30.5, 88.0], [58.0, 88.0]])
FACE_112x112_REF = [[1.035818074801369, 0.006875067414868952, 9.347420338665763],
                    [-0.006875067414868966, 1.035818074801369, -0.2998559793926887]]
TILTED_112x96 = np.array([[101.3, 140.2], [187.9, 118.6], [150.4, 171.8], [127.7, 221.5],
                          [190.2, 204.9]])
TILTED_112x96_REF = [[0.43999867851603136, -0.08827206381802619, -3.503806799253667],
                     [0.08827206381802619, 0.43999867851603136, -16.888208975309098]]
# Left/right swapped: det(cross-covariance) < 0, so the reflection is turned into a rotation.
MIRRORED_112x112 = FACE_112x112[[1, 0, 2, 4, 3]]
MIRRORED_112x112_REF = [[0.15543503638289827, 0.01614218017955202, 47.96380595860175],
                        [-0.016142180179552018, 0.15543503638289818, 61.74026993920514]]


@pytest.mark.parametrize('landmarks, image_size, reference', [
    (FACE_112x112, '112,112', FACE_112x112_REF),
    (TILTED_112x96, '112,96', TILTED_112x96_REF),
    (MIRRORED_112x112, '112,112', MIRRORED_112x112_REF),
], ids=['face', 'tilted', 'mirrored'])
def test_alignment_matrix_matches_skimage(landmarks, image_size, reference):
    matrix = face_preprocess.alignment_matrix(landmarks, image_size)
    np.testing.assert_allclose(matrix, reference, rtol=0, atol=1e-9)


def test_collinear_points_match_skimage():
    # Collinear source points make the cross-covariance rank 1 (the special branch).
    src = np.array([[0.0, 0.0], [1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [5.0, 10.0]])
    dst = np.array([[3.0, 1.0], [2.5, 4.0], [7.0, 2.0], [1.0, 8.0], [6.0, 9.5]])
    reference = [[0.7810810810810805, -0.16756756756756794, 2.9189189189189215],
                 [0.16756756756756772, 0.7810810810810805, 1.0945945945945965]]  # skimage 0.26.0
    np.testing.assert_allclose(face_preprocess.estimate_similarity(src, dst), reference,
                               rtol=0, atol=1e-9)


def dot_image(points, shape, sigma=1.5):
    """A black uint8 BGR image with a bright Gaussian dot centred at each (x, y) point."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    img = np.zeros(shape[:2])
    for x, y in points:
        img += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma ** 2))
    img = np.clip(img * 255, 0, 255).astype(np.uint8)
    return np.dstack([img, img, img])


def dot_centres(img, expected, radius=6):
    """Intensity centroid of the bright dot around each expected (x, y) point."""
    grey = img[..., 0].astype(np.float64)
    centres = []
    for x, y in expected:
        x0, y0 = int(round(x)) - radius, int(round(y)) - radius
        window = grey[y0:y0 + 2 * radius + 1, x0:x0 + 2 * radius + 1]
        ys, xs = np.mgrid[0:window.shape[0], 0:window.shape[1]]
        total = window.sum()
        assert total > 0, "no dot found near %s" % ((x, y),)
        centres.append((x0 + (xs * window).sum() / total, y0 + (ys * window).sum() / total))
    return np.array(centres)


@pytest.mark.parametrize('image_size, template, shape', [
    ('112,112', TEMPLATE_112, (112, 112, 3)),
    ('112,96', TEMPLATE_96, (112, 96, 3)),
])
def test_warp_puts_the_landmarks_on_the_template(image_size, template, shape):
    # The face is 2.5x larger, rotated 20 degrees and shifted inside a 300x320 photo.
    true = similarity(2.5, 20.0, 60.0, 10.0)
    landmarks = apply(true, template.astype(np.float64))
    photo = dot_image(landmarks, (320, 300), sigma=2.5 * 1.5)
    aligned = face_preprocess.preprocess(photo, landmark=landmarks, image_size=image_size)
    assert aligned.shape == shape and aligned.dtype == np.uint8
    np.testing.assert_allclose(dot_centres(aligned, template), template, atol=1.0)


def test_warp_fills_outside_with_black_and_ignores_bbox():
    # Landmarks in the top-left corner: most of the output maps outside the photo.
    landmarks = TEMPLATE_112.astype(np.float64) * 0.5 - 30.0
    photo = np.full((100, 100, 3), 200, np.uint8)
    with_bbox = face_preprocess.preprocess(photo, bbox=[10, 10, 50, 50], landmark=landmarks,
                                           image_size='112,112')
    without = face_preprocess.preprocess(photo, landmark=landmarks, image_size='112,112')
    np.testing.assert_array_equal(with_bbox, without)
    assert with_bbox[0, 0].tolist() == [0, 0, 0]
    assert with_bbox[-1, -1].tolist() == [200, 200, 200]


def coordinate_image(height, width):
    """A float32 image whose pixel (y, x) holds (x, y, 0), so a crop tells where it came from."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.dstack([xs, ys, np.zeros_like(xs)])


def test_bbox_fallback_adds_half_the_margin_clamps_and_truncates():
    img = coordinate_image(150, 200)
    # x1 30.7-22 = 8.7 -> 8; y1 10.2-22 < 0 -> 0; x2 120.9+22 = 142.9 -> 142; y2 clamps to 150.
    crop = face_preprocess.preprocess(img, bbox=np.array([30.7, 10.2, 120.9, 140.5]))
    assert crop.shape == (150, 134, 3)
    assert crop[0, 0, :2].tolist() == [8, 0]
    assert crop[-1, -1, :2].tolist() == [141, 149]
    # An odd margin is halved with Python 2 integer division: 45 -> 22, not 22.5.
    odd = face_preprocess.preprocess(img, bbox=[50, 40, 100, 90], margin=45)
    assert odd.shape == (94, 94, 3) and odd[0, 0, :2].tolist() == [28, 18]


def test_bbox_fallback_resizes_only_when_asked():
    img = (np.arange(150 * 200 * 3) % 251).astype(np.uint8).reshape(150, 200, 3)
    crop = face_preprocess.preprocess(img, bbox=[60, 40, 140, 120])
    resized = face_preprocess.preprocess(img, bbox=[60, 40, 140, 120], image_size='112,96')
    assert crop.shape == (124, 124, 3)
    np.testing.assert_array_equal(crop, img[18:142, 38:162])
    np.testing.assert_array_equal(resized, cv2.resize(img[18:142, 38:162], (96, 112)))


def test_centre_box_fallback_insets_by_a_sixteenth():
    img = coordinate_image(480, 641)
    # inset int(641 * 0.0625) = 40 and int(480 * 0.0625) = 30 -> box (40, 30, 601, 450);
    # with the margin (18, 8, 623, 472).
    crop = face_preprocess.preprocess(img)
    assert crop.shape == (464, 605, 3)
    assert crop[0, 0, :2].tolist() == [18, 8]
    assert crop[-1, -1, :2].tolist() == [622, 471]
    # On a small image the margin reaches the borders: the whole image comes back.
    small = coordinate_image(112, 92)
    np.testing.assert_array_equal(face_preprocess.preprocess(small), small)


def test_grey_images_are_supported():
    grey = coordinate_image(150, 200)[..., 0]
    assert face_preprocess.preprocess(grey, bbox=[60, 40, 140, 120]).shape == (124, 124)
    aligned = face_preprocess.preprocess(grey, landmark=TEMPLATE_96 + 20, image_size='112,96')
    assert aligned.shape == (112, 96)


@pytest.mark.parametrize('image_size', ['96,112', '128', (100, 100), [224, 224]])
def test_height_other_than_112_is_rejected(image_size):
    with pytest.raises(ValueError, match='height must be 112') as info:
        face_preprocess.preprocess(np.zeros((120, 120, 3), np.uint8), landmark=TEMPLATE_112,
                                   image_size=image_size)
    assert repr(image_size) in str(info.value)


@pytest.mark.parametrize('image_size', ['112,abc', '112,96,3', (112, 96, 1), 'x'])
def test_malformed_image_size_is_rejected(image_size):
    with pytest.raises(ValueError, match='image_size'):
        face_preprocess.parse_image_size(image_size)


def test_landmarks_need_an_image_size_and_five_points():
    img = np.zeros((120, 120, 3), np.uint8)
    with pytest.raises(ValueError, match='image_size is required'):
        face_preprocess.preprocess(img, landmark=TEMPLATE_112)
    with pytest.raises(ValueError, match=r'5x2'):
        face_preprocess.preprocess(img, landmark=TEMPLATE_112[:3], image_size='112,112')


def test_degenerate_points_are_rejected():
    with pytest.raises(ValueError, match='degenerate'):
        face_preprocess.estimate_similarity(np.ones((5, 2)), TEMPLATE_112)


def test_unreadable_files_are_named(tmp_path):
    missing = str(tmp_path / 'missing.jpg')
    with pytest.raises(OSError, match='missing.jpg'):
        face_preprocess.read_image(missing)
    garbage = tmp_path / 'garbage.jpg'
    garbage.write_bytes(b'this is not a jpeg')
    with pytest.raises(OSError, match='garbage.jpg'):
        face_preprocess.preprocess(str(garbage), image_size='112,112')
    with pytest.raises(ValueError, match="'hsv'"):
        face_preprocess.read_image(missing, mode='hsv')


def test_read_image_modes_and_layouts(tmp_path):
    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 0], bgr[..., 1], bgr[..., 2] = 10, 120, 250  # blue, green, red
    path = str(tmp_path / 'colour.png')
    assert cv2.imwrite(path, bgr)
    assert face_preprocess.read_image(path, mode='bgr')[0, 0].tolist() == [10, 120, 250]
    rgb = face_preprocess.read_image(path)
    assert rgb.shape == (4, 6, 3) and rgb[0, 0].tolist() == [250, 120, 10]
    chw = face_preprocess.read_image(path, mode='rgb', layout='CHW')
    assert chw.shape == (3, 4, 6) and chw[:, 0, 0].tolist() == [250, 120, 10]
    grey = face_preprocess.read_image(path, mode='gray', layout='CHW')
    assert grey.shape == (4, 6) and grey.dtype == np.uint8
    # OpenCV's BT.601 weights: 0.114 B + 0.587 G + 0.299 R.
    assert abs(int(grey[0, 0]) - round(0.114 * 10 + 0.587 * 120 + 0.299 * 250)) <= 1


def test_real_face_from_orl(shared_dir):
    path = os.path.join(shared_dir, 'data', 'orl_faces', 's1', '1.pgm')
    # Eye centres, nose tip and mouth corners picked by hand on this 92x112 photo.
    landmarks = np.array([[25.0, 52.0], [64.5, 51.0], [45.0, 71.0], [30.5, 88.0], [58.0, 88.0]])
    aligned = face_preprocess.preprocess(path, landmark=landmarks, image_size='112,112')
    assert aligned.shape == (112, 112, 3) and aligned.dtype == np.uint8
    # A grey PGM read as colour: three equal channels.
    np.testing.assert_array_equal(aligned[..., 0], aligned[..., 2])
    assert aligned.std() > 20 and 0.3 < (aligned > 0).mean()
    # Every output pixel is the photo bilinearly sampled at the inverse of the skimage reference
    # matrix for these landmarks (FACE_112x112_REF above): the forward matrix is used as is.
    photo = face_preprocess.read_image(path)[..., 0].astype(np.float64)
    to_photo = np.linalg.inv(np.vstack([FACE_112x112_REF, [0.0, 0.0, 1.0]]))
    vs, us = np.mgrid[20:100, 20:90]
    xs, ys = apply(to_photo, np.stack([us.ravel(), vs.ravel()], axis=1)).T
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    expected = (photo[y0, x0] * (1 - fx) * (1 - fy) + photo[y0, x0 + 1] * fx * (1 - fy)
                + photo[y0 + 1, x0] * (1 - fx) * fy + photo[y0 + 1, x0 + 1] * fx * fy)
    # OpenCV quantises the sampling position to 1/32 pixel, hence the small tolerance.
    error = np.abs(aligned[vs.ravel(), us.ravel(), 0] - expected)
    assert error.mean() < 0.5 and error.max() < 3
    narrow = face_preprocess.preprocess(path, landmark=landmarks, image_size='112,96')
    assert narrow.shape == (112, 96, 3)


def test_2019_parse_lst_line_keeps_its_field_order():
    """face_preprocess.parse_lst_line returns (path, label, bbox, landmark, aligned), as in 2019."""
    line = '0\timgs/a.jpg\t7\t10\t20\t90\t100\t' + '\t'.join(
        str(v) for v in [30, 70, 50, 35, 65, 40, 41, 60, 80, 81]) + '\n'
    path, label, bbox, landmark, aligned = face_preprocess.parse_lst_line(line)
    assert (path, label, aligned) == ('imgs/a.jpg', 7, 0)
    assert list(bbox) == [10, 20, 90, 100]
    # x1..x5 then y1..y5 in the file; rows of (x, y) here
    np.testing.assert_array_equal(landmark, [[30, 40], [70, 41], [50, 60], [35, 80], [65, 81]])
    assert face_preprocess.parse_lst_line('1\tb.jpg\t3') == ('b.jpg', 3, None, None, 1)
