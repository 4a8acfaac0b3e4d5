"""Face alignment: read an image and warp or crop the face to the 112x112 / 112x96 network input."""
import os

import cv2
import numpy as np

# The five ArcFace reference points (left eye, right eye, nose tip, left and right mouth corner)
# as (x, y) in a 112x96 (height x width) crop. They are float32 in the original, and the +8.0
# shift for 112-wide crops is done in float32 too, so the estimate sees the same numbers.
REFERENCE_LANDMARKS_112x96 = np.array([
    [30.2946, 51.6963],
    [65.5318, 51.5014],
    [48.0252, 71.7366],
    [33.5493, 92.3655],
    [62.7299, 92.2041]], dtype=np.float32)

_READ_FLAGS = {'rgb': cv2.IMREAD_COLOR, 'bgr': cv2.IMREAD_COLOR, 'gray': cv2.IMREAD_GRAYSCALE}


def parse_lst_line(line):
    """The 2019 face_preprocess.parse_lst_line: (image_path, label, bbox, landmark, aligned).

    Kept for scripts written against the 2019 module; the project reads .lst lines with
    common.record_io.parse_lst_line, which returns the fields in file order (aligned first).
    """
    from common import record_io  # here, so alignment does not need mxnet to import
    aligned, path, label, bbox, landmark = record_io.parse_lst_line(line)
    return path, label, bbox, landmark, aligned


def read_image(path, mode='rgb', layout='HWC'):
    """Read an image file as uint8: mode 'rgb', 'bgr' or 'gray'; colour images in 'HWC' or 'CHW'.

    Grey images stay 2-D (H, W) whatever the layout.
    """
    if mode not in _READ_FLAGS:
        raise ValueError("mode must be 'rgb', 'bgr' or 'gray', got %r" % (mode,))
    if layout not in ('HWC', 'CHW'):
        raise ValueError("layout must be 'HWC' or 'CHW', got %r" % (layout,))
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("image file %r does not exist" % path)
    img = cv2.imread(path, _READ_FLAGS[mode])
    if img is None:
        raise OSError("cannot read image file %r: OpenCV could not decode it "
                      "(unreadable, truncated or not an image)" % path)
    if mode == 'gray':
        return img
    if mode == 'rgb':
        # OpenCV decodes to BGR; a contiguous copy keeps later cv2 calls happy.
        img = np.ascontiguousarray(img[..., ::-1])
    if layout == 'CHW':
        img = np.transpose(img, (2, 0, 1))
    return img


def estimate_similarity(src_points, dst_points):
    """The 2x3 similarity (rotation, uniform scale, translation) best mapping src onto dst.

    Least squares in the sense of Umeyama (1991), the estimate behind skimage's
    SimilarityTransform().estimate(src, dst). Points are (N, 2) arrays of (x, y); float64 result.
    """
    src = np.asarray(src_points, dtype=np.float64)
    dst = np.asarray(dst_points, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError("src_points must be an (N, 2) array of (x, y) with N >= 2, got shape %s"
                         % (src.shape,))
    if dst.shape != src.shape:
        raise ValueError("dst_points must have the same shape as src_points %s, got %s"
                         % (src.shape, dst.shape))
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_centred = src - src_mean
    dst_centred = dst - dst_mean

    # Cross-covariance of the centred point sets; its SVD gives the best rotation.
    cov = dst_centred.T @ src_centred / len(src)
    signs = np.ones(2)
    if np.linalg.det(cov) < 0:
        signs[1] = -1.0  # the best orthogonal map would be a reflection: flip the weakest axis
    u, singular, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    if rank == 0:
        raise ValueError("cannot estimate a similarity: the points are degenerate "
                         "(all src or all dst points coincide); src=%s dst=%s"
                         % (src.tolist(), dst.tolist()))
    if rank == 1:
        # With one direction of freedom det(cov) is 0, so choose the sign from U and V directly.
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            rotation = u @ vt
        else:
            rotation = u @ np.diag([1.0, -1.0]) @ vt
    else:
        rotation = u @ np.diag(signs) @ vt

    scale = singular @ signs / src_centred.var(axis=0).sum()
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * (rotation @ src_mean)
    return matrix


def parse_image_size(image_size):
    """[height, width] from "h,w", "s", (h, w), [s] or s; [] for '', () or None.

    Only height 112 is accepted, the one the ArcFace templates are made for.
    """
    if image_size is None:
        return []
    try:
        if isinstance(image_size, str):
            size = [int(v) for v in image_size.split(',')] if image_size.strip() else []
        elif np.ndim(image_size) == 0:
            size = [int(image_size)]
        else:
            size = [int(v) for v in image_size]
    except (TypeError, ValueError):
        raise ValueError("image_size must be 'h,w', 's' or a sequence of 1 or 2 integers, got %r"
                         % (image_size,)) from None
    if not size:
        return []
    if len(size) == 1:
        size = [size[0], size[0]]
    if len(size) != 2:
        raise ValueError("image_size must have 1 or 2 values (height, width), got %r"
                         % (image_size,))
    if size[0] != 112:
        raise ValueError("image_size height must be 112 (112x112 or 112x96), got %r"
                         % (image_size,))
    return size


def alignment_matrix(landmark, image_size='112,112'):
    """The 2x3 matrix taking five image landmarks (5x2, x y) onto the template for image_size."""
    size = parse_image_size(image_size)
    if not size:
        raise ValueError("image_size is required to align with landmarks, got %r" % (image_size,))
    points = np.asarray(landmark, dtype=np.float32)
    if points.shape != (5, 2):
        raise ValueError("landmark must be a 5x2 array of (x, y) points, got shape %s"
                         % (points.shape,))
    template = REFERENCE_LANDMARKS_112x96.copy()
    if size[1] == 112:
        template[:, 0] += 8.0
    return estimate_similarity(points, template)


def preprocess(img, bbox=None, landmark=None, image_size='', margin=44, mode='rgb'):
    """Align a face to the network input, or crop it when there are no landmarks.

    With `landmark` (5x2 x y): similarity-warp onto the template, output image_size (h, w);
    `bbox` is then ignored. Without: crop `bbox` (x1 y1 x2 y2), or a centre box inset by 1/16 of
    the image, grown by margin/2 on each side and clamped to the image; resized to image_size if
    one is given. `img` is an array (channel order kept) or a path read with `mode`.
    """
    if isinstance(img, (str, os.PathLike)):
        img = read_image(img, mode=mode)
    size = parse_image_size(image_size)

    if landmark is not None:
        matrix = alignment_matrix(landmark, image_size)
        height, width = size
        return cv2.warpAffine(img, matrix, (width, height), borderValue=0.0)

    img_h, img_w = img.shape[:2]
    if bbox is None:
        inset_x = int(img_w * 0.0625)
        inset_y = int(img_h * 0.0625)
        det = [inset_x, inset_y, img_w - inset_x, img_h - inset_y]
    else:
        det = np.asarray(bbox, dtype=np.float64).reshape(-1)
        if det.shape != (4,):
            raise ValueError("bbox must be 4 values x1, y1, x2, y2, got %r" % (bbox,))
    # margin // 2 is the Python 2 integer division of the original; int32 truncates toward zero.
    half = margin // 2
    box = np.array([max(det[0] - half, 0), max(det[1] - half, 0),
                    min(det[2] + half, img_w), min(det[3] + half, img_h)]).astype(np.int32)
    crop = img[box[1]:box[3], box[0]:box[2]]
    if crop.size == 0:
        raise ValueError("bbox %r with margin %r gives an empty crop of the %dx%d image"
                         % (bbox, margin, img_w, img_h))
    if size:
        crop = cv2.resize(crop, (size[1], size[0]))
    return crop
