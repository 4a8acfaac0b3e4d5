"""GenderAgeIter: faces from a flat attribute .rec, labelled [gender, 100 bits "age > i"]."""
import numpy as np

from common.record_io import RecordReader
from recognition.image_iter import FaceImageIter
from recognition.symbol.gender_age import AGE, GENDER_IGNORE

LABEL_WIDTH = 1 + AGE


class FlatRecordReader(RecordReader):
    """A .rec/.idx pair where every key is an image, record 0 included (no identity header).

    Attribute records carry array labels, so record 0 would look like an identity header to
    RecordReader; the 2019 gender-age iterator simply used every key.
    """

    def _read_header(self):
        return None


def attribute_label(label, where):
    """The (101,) float32 training label of one record label, as the 2019 iterator built it.

    [gender, age, ...] (the 2019 trainer's records): gender kept as is (9999 = no gender), age
    truncated to int, must be >= 0; 0 becomes 1 and anything above 100 becomes 100, then bits
    1..age are set. 100 floats (src/data/age_merge.py's age records): the bits give the age,
    the gender is 9999, so only the age losses learn from them.
    """
    values = np.atleast_1d(np.asarray(label, dtype=np.float32))
    if values.size == AGE:
        gender, age = GENDER_IGNORE, int(np.count_nonzero(values))
    elif values.size >= 2:
        gender, age = int(values[0]), int(values[1])
    else:
        raise ValueError("%s: label %r is not a gender-age label; expected [gender, age] or 100 "
                         "age bits (age_merge --mode gender records have no age)"
                         % (where, values.tolist()))
    if age < 0:
        raise ValueError("%s: negative age %d in label %r" % (where, age, values.tolist()))
    age = min(max(age, 1), AGE)
    out = np.zeros((LABEL_WIDTH,), dtype=np.float32)
    out[0] = gender
    out[1:age + 1] = 1
    return out


class GenderAgeIter(FaceImageIter):
    """DataBatch(data (B,3,H,W) float32 RGB 0..255, label (B,101)) from a flat attribute .rec.

    FaceImageIter's pipeline (every key, reshuffle on reset, resize if the height differs,
    mirror, [JPEG], colour jitter, cutout; the last partial batch dropped; threads with
    per-image seeds) with the 2019 gender-age labels.
    """

    reader_class = FlatRecordReader
    label_width = LABEL_WIDTH

    def __init__(self, batch_size, data_shape, path_imgrec, shuffle=False, rand_mirror=False,
                 cutoff=0, color_jittering=0, mean=None, data_name='data',
                 label_name='softmax_label', num_threads=None, seed=None):
        super().__init__(batch_size, data_shape, path_imgrec=path_imgrec, shuffle=shuffle, mean=mean,
                         rand_mirror=rand_mirror, cutoff=cutoff, color_jittering=color_jittering,
                         data_name=data_name, label_name=label_name, num_threads=num_threads, seed=seed)

    def record_label(self, header, where):
        return attribute_label(header.label, where)
