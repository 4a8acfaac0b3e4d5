"""GenderAgeIter: faces from a flat attribute .rec, labelled [gender, 100 bits "age > i"]."""
import logging
import random
from concurrent.futures import ThreadPoolExecutor

import mxnet as mx
import numpy as np

from common.record_io import RecordReader
from recognition.image_iter import augment, decode_rgb, default_num_threads
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


class GenderAgeIter(mx.io.DataIter):
    """DataBatch(data (B,3,H,W) float32 RGB 0..255, label (B,101)) from a flat attribute .rec.

    The 2019 pipeline (every key, reshuffle on reset, resize if the height differs, mirror,
    [JPEG], colour jitter, cutout; the last partial batch dropped). Decoding runs in threads and
    each image draws from its own seeded random.Random, so a seeded run repeats exactly.
    """

    def __init__(self, batch_size, data_shape, path_imgrec, shuffle=False, rand_mirror=False,
                 cutoff=0, color_jittering=0, mean=None, data_name='data',
                 label_name='softmax_label', num_threads=None, seed=None):
        super().__init__(batch_size)
        if len(data_shape) != 3 or data_shape[0] != 3:
            raise ValueError("data_shape must be (3, height, width), got %r" % (data_shape,))
        logging.info('loading recordio %s...', path_imgrec)
        self.reader = FlatRecordReader(path_imgrec)
        self.seq = list(self.reader.keys)
        if len(self.seq) < batch_size:
            raise ValueError("%s has %d images, fewer than one batch of %d"
                             % (path_imgrec, len(self.seq), batch_size))
        self.data_shape = tuple(data_shape)
        self.shuffle = shuffle
        self.rand_mirror = rand_mirror
        print('rand_mirror', rand_mirror)
        self.cutoff = int(cutoff)
        self.color_jittering = color_jittering
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32).reshape((1, 1, 3))
        self.provide_data = [(data_name, (batch_size,) + self.data_shape)]
        self.provide_label = [(label_name, (batch_size, LABEL_WIDTH))]
        self.rng = random.Random(seed)
        self.num_threads = num_threads or default_num_threads()
        self.pool = ThreadPoolExecutor(self.num_threads) if self.num_threads > 1 else None
        self.cur = 0
        self.is_init = False

    def reset(self):
        print('call reset()')
        self.cur = 0
        if self.shuffle:
            self.rng.shuffle(self.seq)

    def num_samples(self):
        return len(self.seq)

    def load_sample(self, key, seed):
        """(101-value label, CHW float32 image) of record `key`."""
        where = '%s record %d' % (self.reader.rec_path, key)
        header, data = self.reader.read(key)
        label = attribute_label(header.label, where)
        img = decode_rgb(data, where)
        img = augment(img, random.Random(seed), self.data_shape[1], self.rand_mirror,
                      self.color_jittering, self.cutoff, self.mean)
        if img.shape[:2] != self.data_shape[1:]:
            raise ValueError("%s: image is %dx%d after resizing, the network wants %dx%d"
                             % (where, img.shape[0], img.shape[1], self.data_shape[1],
                                self.data_shape[2]))
        return label, img.transpose(2, 0, 1)

    def next(self):
        if not self.is_init:
            self.reset()
            self.is_init = True
        if self.cur + self.batch_size > len(self.seq):
            raise StopIteration
        keys = self.seq[self.cur:self.cur + self.batch_size]
        self.cur += self.batch_size
        seeds = [self.rng.getrandbits(64) for _ in keys]
        data = np.empty((self.batch_size,) + self.data_shape, dtype=np.float32)
        label = np.empty((self.batch_size, LABEL_WIDTH), dtype=np.float32)

        def fill(rows):
            for i in rows:
                label[i], data[i] = self.load_sample(keys[i], seeds[i])

        slices = np.array_split(np.arange(self.batch_size), self.num_threads)
        if self.pool is None:
            fill(slices[0])
        else:
            list(self.pool.map(fill, slices))
        return mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(label)], pad=0)

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None
        self.reader.close()
