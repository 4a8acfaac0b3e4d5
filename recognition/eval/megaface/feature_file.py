"""MegaFace per-image feature files: int32 header (rows, 1, 4, 5) then `rows` float32 values."""
import os
import struct

import numpy as np

from common.checkpoint import atomic_write

# (rows, cols, bytes per element, OpenCV type code CV_32F); little-endian as on the x86 machines
# that wrote and read these files in 2019 (the original used native order).
HEADER = struct.Struct('<4i')
COLS, ELEM_BYTES, CV_32F = 1, 4, 5


def feature_name(image_name, algo):
    """'{image file name}_{algo}.bin': the devkit finds features by this suffix."""
    return '%s_%s.bin' % (image_name, algo)


def encode_feature(feature):
    """The bytes of a feature file for a 1-D vector."""
    values = np.asarray(feature, dtype='<f4').reshape(-1)
    return HEADER.pack(values.size, COLS, ELEM_BYTES, CV_32F) + values.tobytes()


def write_feature(path, feature):
    """Write a feature file (to a temporary name, then renamed)."""
    data = encode_feature(feature)

    def write(tmp):
        with open(tmp, 'wb') as f:
            f.write(data)
    atomic_write(path, write)


def read_feature(path):
    """The float32 vector of a feature file; ValueError on a malformed header or size."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise ValueError("%s: %d bytes, too short for a MegaFace feature header" % (path, len(data)))
    rows, cols, elem_bytes, cv_type = HEADER.unpack_from(data)
    if (cols, elem_bytes, cv_type) != (COLS, ELEM_BYTES, CV_32F) or rows < 0:
        raise ValueError("%s: header (%d, %d, %d, %d) is not a float32 column (rows, 1, 4, 5)"
                         % (path, rows, cols, elem_bytes, cv_type))
    if len(data) != HEADER.size + 4 * rows:
        raise ValueError("%s: header says %d values, the file holds %d bytes after it"
                         % (path, rows, len(data) - HEADER.size))
    return np.frombuffer(data, dtype='<f4', offset=HEADER.size).astype(np.float32)


def ensure_dir(path):
    os.makedirs(path, exist_ok=True)
    return path
