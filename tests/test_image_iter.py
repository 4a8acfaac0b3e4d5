"""FaceImageIter: record structure, batching, and the augmentation pipeline against a 2019-style one."""
import random

import cv2
import mxnet as mx
import numpy as np
import pytest

from common.record_io import IdentityRecordWriter
from recognition import image_iter
from recognition.image_iter import FaceImageIter


def encode(img_rgb, ext='.jpg'):
    ok, buf = cv2.imencode(ext, img_rgb[:, :, ::-1])
    assert ok
    return buf.tobytes()


def make_rec(path, images_per_identity, size=(16, 16), seed=0):
    """A face2rec2-layout .rec; image i of identity k has mean brightness marking (k, i)."""
    rng = np.random.RandomState(seed)
    with IdentityRecordWriter(str(path)) as writer:
        for label, count in enumerate(images_per_identity):
            for _ in range(count):
                img = rng.randint(0, 256, size=size + (3,), dtype=np.uint8)
                writer.add_image(encode(img, '.png'), label, aligned=1)
    return str(path)


def reference_2019(data, seed, height, rand_mirror, color_jittering, cutoff):
    """The 2019 per-image steps with mxnet's own image ops and the global `random` module."""
    random.seed(seed)
    img = mx.image.imdecode(data)
    if img.shape[0] != height:
        img = mx.image.resize_short(img, height)
    if rand_mirror and random.randint(0, 1) == 1:
        img = mx.nd.flip(data=img, axis=1)
    if color_jittering > 0:
        img = img.astype('float32', copy=False)
        img = mx.image.ColorJitterAug(0.125, 0.125, 0.125)(img)
    img = img.astype('float32').asnumpy()
    if cutoff > 0 and random.randint(0, 1) == 1:
        h, w = img.shape[:2]
        ch, cw = random.randint(0, h - 1), random.randint(0, w - 1)
        half = cutoff // 2
        img[max(0, ch - half):min(h, ch + half), max(0, cw - half):min(w, cw + half), :] = 128
    return img


@pytest.mark.parametrize('shape', [(16, 16), (20, 14)])
@pytest.mark.parametrize('mirror,color,cutoff', [(False, 0, 0), (True, 0, 0), (True, 1, 0), (True, 1, 6),
                                                 (False, 0, 8)])
def test_augment_matches_2019_pipeline(shape, mirror, color, cutoff):
    rng = np.random.RandomState(1)
    data = encode(rng.randint(0, 256, size=shape + (3,), dtype=np.uint8))
    for seed in range(6):
        ours = image_iter.augment(image_iter.decode_rgb(data, 'test'), random.Random(seed), 16,
                                  mirror, color, cutoff, None)
        expected = reference_2019(data, seed, 16, mirror, color, cutoff)
        assert ours.shape == expected.shape and ours.dtype == np.float32
        # bicubic resize may differ by one grey level between OpenCV builds (times up to 1.125**3 after jitter)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1.45 if shape[0] != 16 else 1e-3)


def test_jpeg_augmentation_only_when_color_above_one():
    img = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))
    draws = []

    class Spy(random.Random):
        def randint(self, a, b):
            draws.append((a, b))
            return b  # always take the JPEG branch, quality 20

    out1 = image_iter.augment(img, Spy(0), 32, False, 1, 0, None)
    assert (2, 20) not in draws
    out2 = image_iter.augment(img, Spy(0), 32, False, 2, 0, None)
    assert (2, 20) in draws
    assert out1.shape == out2.shape == (32, 32, 3)


def test_structure_filter_and_batches(tmp_path):
    rec = make_rec(tmp_path / 'train.rec', [3, 1, 4, 2])
    it = FaceImageIter(batch_size=4, data_shape=(3, 16, 16), path_imgrec=rec, shuffle=False,
                       images_filter=2, num_threads=2, seed=0)
    # identity 1 (1 image) is filtered out; labels are not renumbered
    assert sorted(it.id2range) == [11, 13, 14]
    assert it.provide_data == [('data', (4, 3, 16, 16))]
    assert it.provide_label == [('softmax_label', (4,))]
    batches = list(it)
    assert len(batches) == 2  # 9 images -> 2 full batches, the partial one dropped
    labels = np.concatenate([b.label[0].asnumpy() for b in batches])
    assert labels.tolist() == [0, 0, 0, 2, 2, 2, 2, 3]
    assert batches[0].data[0].dtype == np.float32 and batches[0].pad == 0


def test_pixels_are_the_record_images(tmp_path):
    rng = np.random.RandomState(3)
    images = [rng.randint(0, 256, size=(8, 8, 3), dtype=np.uint8) for _ in range(4)]
    path = str(tmp_path / 'train.rec')
    with IdentityRecordWriter(path) as writer:
        for i, img in enumerate(images):
            writer.add_image(encode(img, '.png'), i // 2, aligned=1)
    it = FaceImageIter(batch_size=4, data_shape=(3, 8, 8), path_imgrec=path)
    batch = it.next()
    expected = np.stack([img.transpose(2, 0, 1) for img in images]).astype(np.float32)
    np.testing.assert_array_equal(batch.data[0].asnumpy(), expected)


def test_shuffle_reseeds_each_epoch_and_is_reproducible(tmp_path):
    rec = make_rec(tmp_path / 'train.rec', [4] * 6)

    def epochs(seed, threads):
        it = FaceImageIter(batch_size=4, data_shape=(3, 16, 16), path_imgrec=rec, shuffle=True,
                           rand_mirror=True, color_jittering=1, cutoff=4, seed=seed, num_threads=threads)
        out = []
        for _ in range(2):
            it.reset()
            out.append([(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in it])
        return out

    first, again, single = epochs(7, 2), epochs(7, 2), epochs(7, 1)
    for a, b, c in zip(first, again, single):
        for (da, la), (db, lb), (dc, lc) in zip(a, b, c):
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(da, db)
            np.testing.assert_array_equal(da, dc)  # thread count does not change the output
    order = [np.concatenate([lbl for _, lbl in epoch]) for epoch in first]
    assert sorted(order[0]) == sorted(order[1]) and not np.array_equal(order[0], order[1])


def test_flat_record_file_uses_every_key(tmp_path):
    path = str(tmp_path / 'flat.rec')
    record = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'flat.idx'), path, 'w')
    for key in range(3):
        img = np.full((8, 8, 3), 10 * key, dtype=np.uint8)
        record.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, float(key), key, 0), encode(img, '.png')))
    record.close()
    it = FaceImageIter(batch_size=3, data_shape=(3, 8, 8), path_imgrec=path)
    assert it.id2range == {}
    assert it.next().label[0].asnumpy().tolist() == [0, 1, 2]


def test_clear_errors(tmp_path):
    rec = make_rec(tmp_path / 'train.rec', [2, 2])
    with pytest.raises(ValueError, match='path_imgrec'):
        FaceImageIter(batch_size=2, data_shape=(3, 16, 16))
    with pytest.raises(ValueError, match='fewer than one batch'):
        FaceImageIter(batch_size=8, data_shape=(3, 16, 16), path_imgrec=rec)
    with pytest.raises(ValueError, match='data_shape'):
        FaceImageIter(batch_size=2, data_shape=(1, 16, 16), path_imgrec=rec)
    # a record whose image does not fit the network input after resizing names the record
    it = FaceImageIter(batch_size=2, data_shape=(3, 16, 24), path_imgrec=rec)
    with pytest.raises(ValueError, match='record 1'):
        it.next()


def test_fast_forward_continues_the_same_data_order(tmp_path):
    rec = make_rec(tmp_path / 'train.rec', [3] * 5)  # 15 images: 3 batches of 4 per epoch

    def make():
        return FaceImageIter(batch_size=4, data_shape=(3, 16, 16), path_imgrec=rec, shuffle=True,
                             rand_mirror=True, color_jittering=1, seed=11)

    served = make()
    for _ in range(2):  # two epochs the way Module.fit drives them: next() until StopIteration, reset()
        for _ in served:
            pass
        served.reset()
    served.next()
    expected = served.next()
    resumed = make()
    resumed.fast_forward(2, 1)
    got = resumed.next()
    np.testing.assert_array_equal(got.label[0].asnumpy(), expected.label[0].asnumpy())
    np.testing.assert_array_equal(got.data[0].asnumpy(), expected.data[0].asnumpy())
