"""FaceImageIter: batches of decoded, augmented faces from an identity-structured .rec, for softmax losses."""
import logging
import os
import random
from concurrent.futures import ThreadPoolExecutor

import cv2
import mxnet as mx
import numpy as np

from common.record_io import RecordReader

# ColorJitterAug(0.125, 0.125, 0.125) of the 2019 iterator, and the grey coefficients mxnet uses.
JITTER = 0.125
GREY_COEF = np.array([0.299, 0.587, 0.114], dtype=np.float32)
CUTOFF_FILL = 128


def decode_rgb(data, where):
    """JPEG/PNG bytes -> HWC uint8 RGB, as mx.image.imdecode gives (it also uses OpenCV)."""
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("%s: image data cannot be decoded (%d bytes)" % (where, len(data)))
    return img[:, :, ::-1]


def resize_short(img, size):
    """mx.image.resize_short(img, size) with its default interp=2, which reaches OpenCV as bicubic."""
    h, w = img.shape[:2]
    if h > w:
        new_h, new_w = size * h // w, size
    else:
        new_h, new_w = size, size * w // h
    return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_CUBIC)


def jpeg_roundtrip(img, quality):
    """Re-compress an RGB image as JPEG at `quality` and decode it (the data_color > 1 augmentation)."""
    ok, buf = cv2.imencode('.jpg', img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]


def color_jitter(img, rng):
    """Brightness, contrast and saturation by 1 +- U(0.125) each, in a random order, no clipping."""
    order = ['brightness', 'contrast', 'saturation']
    rng.shuffle(order)
    for kind in order:
        alpha = 1.0 + rng.uniform(-JITTER, JITTER)
        if kind == 'brightness':
            img = img * np.float32(alpha)
        elif kind == 'contrast':
            grey = (img * GREY_COEF).sum(dtype=np.float32)
            img = img * np.float32(alpha) + np.float32(3.0 * (1.0 - alpha) / img.size) * grey
        else:
            grey = (img * GREY_COEF).sum(axis=2, keepdims=True, dtype=np.float32)
            img = img * np.float32(alpha) + grey * np.float32(1.0 - alpha)
    return img


def augment(img, rng, height, rand_mirror, color_jittering, cutoff, mean):
    """The 2019 per-image pipeline, in its order; `rng` is a random.Random for this one image.

    resize (only if the height differs) -> mirror -> [JPEG] -> colour jitter -> mean -> cutout.
    Returns float32 HWC.
    """
    if img.shape[0] != height:
        img = resize_short(img, height)
    if rand_mirror and rng.randint(0, 1) == 1:
        img = img[:, ::-1]
    if color_jittering > 0:
        if color_jittering > 1 and rng.randint(0, 1) == 1:
            img = jpeg_roundtrip(np.ascontiguousarray(img), rng.randint(2, 20))
        img = color_jitter(img.astype(np.float32), rng)
    img = img.astype(np.float32)
    if mean is not None:
        img = (img - mean) * np.float32(0.0078125)
    if cutoff > 0 and rng.randint(0, 1) == 1:
        h, w = img.shape[:2]
        centre_h, centre_w = rng.randint(0, h - 1), rng.randint(0, w - 1)
        half = cutoff // 2
        img = np.array(img)
        img[max(0, centre_h - half):min(h, centre_h + half),
            max(0, centre_w - half):min(w, centre_w + half), :] = CUTOFF_FILL
    return img


def default_num_threads():
    return max(1, min(8, os.cpu_count() or 1))


class FaceImageIter(mx.io.DataIter):
    """Identity-structured .rec -> DataBatch(data (B,3,H,W) float32 RGB 0..255, label (B,)).

    As in 2019: header record 0 and identity ranges (identities with fewer than `images_filter`
    images skipped, labels unchanged), a reshuffle on every reset(), the augmentations of
    `augment`, and the last partial batch dropped. Unlike 2019, images are decoded and augmented
    by `num_threads` threads (OpenCV releases the GIL), and each image draws from its own
    random.Random seeded from the iterator's `seed`, so the output does not depend on the thread
    timing and a run can be repeated exactly.

    New for multi-machine training: with `num_parts` > 1 every worker walks the same shuffled
    sequence and the same random draws as one iterator of batch size num_parts x batch_size,
    and returns part `part_index` of each such global batch. The parts are disjoint, every
    worker serves the same number of batches, and worker k's batch is context k's slice of a
    single process's global batch.

    Subclasses change what a record is (reader_class, load_sample) and the label width.
    """

    reader_class = RecordReader
    label_width = None  # None: one number per image; n: an (n,) vector per image

    def __init__(self, batch_size, data_shape, path_imgrec=None, shuffle=False, aug_list=None, mean=None,
                 rand_mirror=False, cutoff=0, color_jittering=0, images_filter=0, data_name='data',
                 label_name='softmax_label', num_threads=None, seed=None, num_parts=1, part_index=0,
                 **kwargs):
        super().__init__(batch_size)
        if not path_imgrec:
            raise ValueError("FaceImageIter needs path_imgrec, the training .rec file")
        if len(data_shape) != 3 or data_shape[0] != 3:
            raise ValueError("data_shape must be (3, height, width), got %r" % (data_shape,))
        if not 0 <= part_index < num_parts:
            raise ValueError("part_index must be in 0..num_parts-1, got part %r of %r"
                             % (part_index, num_parts))
        if aug_list is not None:
            raise ValueError("aug_list is not supported: the augmentations are the fixed 2019 set")
        logging.info('loading recordio %s...', path_imgrec)
        self.reader = self.reader_class(path_imgrec)
        self.id2range = {}
        if self.reader.header is not None:
            print('header0 label', np.array(self.reader.header, dtype=np.float32))
            self.imgidx = []
            for identity, start, end in self.reader.identity_ranges():
                if end - start < images_filter:
                    continue
                self.id2range[identity] = (start, end)
                self.imgidx += range(start, end)
            print('id2range', len(self.id2range))
        else:
            self.imgidx = list(self.reader.keys)
        self.num_parts, self.part_index = num_parts, part_index
        self.global_batch = batch_size * num_parts  # what every part steps through together
        if len(self.imgidx) < self.global_batch:
            raise ValueError("%s has %d usable images, fewer than one batch of %d"
                             % (path_imgrec, len(self.imgidx), self.global_batch))
        self.shuffle = shuffle
        self.seq = list(self.imgidx)
        if shuffle:
            print(len(self.seq))
        self.data_shape = tuple(data_shape)
        self.batch_size = batch_size
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32).reshape((1, 1, 3))
        self.rand_mirror = rand_mirror
        print('rand_mirror', rand_mirror)
        self.cutoff = int(cutoff)  # True / False act as 1 / 0: a no-op cut, like 2019
        self.color_jittering = color_jittering
        self.provide_data = [(data_name, (batch_size,) + self.data_shape)]
        label_shape = (batch_size,) if self.label_width is None else (batch_size, self.label_width)
        self.provide_label = [(label_name, label_shape)]
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

    def batches_per_epoch(self):
        return len(self.seq) // self.global_batch

    def fast_forward(self, epochs, batches):
        """Draw the same random numbers as serving `epochs` full epochs, then `batches` more
        batches, without reading any image: a resumed run then continues the same data order."""
        for epoch in range(epochs + 1):
            self.reset()
            for _ in range(self.batches_per_epoch() if epoch < epochs else batches):
                self.cur += self.global_batch
                for _ in range(self.global_batch):
                    self.rng.getrandbits(64)
        self.is_init = True

    def record_label(self, header, where):
        """The training label of an image record: the scalar label, or element 0 of an array."""
        return header.label[0] if header.flag > 0 else header.label

    def load_sample(self, key, seed):
        """Read, decode and augment one image: (label, CHW float32)."""
        where = '%s record %d' % (self.reader.rec_path, key)
        header, data = self.reader.read(key)
        label = self.record_label(header, where)
        img = decode_rgb(data, where)
        img = augment(img, random.Random(seed), self.data_shape[1], self.rand_mirror,
                      self.color_jittering, self.cutoff, self.mean)
        if img.shape[:2] != self.data_shape[1:]:
            raise ValueError("%s: image is %dx%d after resizing, the network wants %dx%d"
                             % (where, img.shape[0], img.shape[1], self.data_shape[1], self.data_shape[2]))
        return label, img.transpose(2, 0, 1)

    def next(self):
        if not self.is_init:
            self.reset()
            self.is_init = True
        if self.cur + self.global_batch > len(self.seq):
            raise StopIteration  # the last partial batch is dropped, as in 2019
        keys = self.seq[self.cur:self.cur + self.global_batch]
        self.cur += self.global_batch
        seeds = [self.rng.getrandbits(64) for _ in keys]
        part = slice(self.part_index * self.batch_size, (self.part_index + 1) * self.batch_size)
        keys, seeds = keys[part], seeds[part]
        data = np.empty((self.batch_size,) + self.data_shape, dtype=np.float32)
        label = np.empty(self.provide_label[0][1], dtype=np.float32)

        def fill(rows):
            for i in rows:
                label[i], data[i] = self.load_sample(keys[i], seeds[i])

        # One contiguous slice of the batch per thread: per-image tasks cost more than they save.
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
