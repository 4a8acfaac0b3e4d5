"""Embeddings of dataset images and identities with an fc1 model, for the dataset_* tools."""
import os

import mxnet as mx
import numpy as np
from mxnet import ndarray as nd

from common import checkpoint, record_io


def open_dataset(input_dir, tool):
    """(reader, identity ranges, image size) of input_dir/train.rec, printing the 2019 lines.

    An identity-structured file is needed (record 0 a header); `tool` prefixes the error.
    """
    reader = record_io.RecordReader(os.path.join(input_dir, 'train.rec'))
    if reader.header is None:
        raise SystemExit("%s: %s: record 0 is not a header (flag 0), so there are no identities"
                         % (tool, reader.rec_path))
    print('header0 label', reader.read(0)[0].label)
    ranges = reader.identity_ranges()
    print('id2range', len(ranges))
    image_size = record_io.read_property(input_dir).image_size
    print('image_size', list(image_size))
    return reader, ranges, image_size


def load_model(model_arg, batch_size, image_size, contexts, tool='identity_embedding'):
    """A Module giving the fc1 embedding of checkpoint 'prefix,epoch', bound for batch_size.

    Works with the fc1-only checkpoints train.py saves and with full training graphs (their
    fc1_output is taken, fc7 and loss-head parameters are ignored). `tool` prefixes errors.
    """
    try:
        prefix, epoch = checkpoint.parse_model_arg(model_arg)
    except ValueError as err:
        raise SystemExit("%s: --model: %s" % (tool, err)) from None
    print('loading', prefix, epoch)
    try:
        return checkpoint.load_inference_module(prefix, epoch, list(contexts),
                                                (batch_size, 3) + tuple(image_size))
    except mx.base.MXNetError as err:
        # Typically fc1 weights made for another input size; mxnet's last line says which.
        reason = [line for line in str(err).splitlines() if line.strip()][-1]
        raise SystemExit("%s: cannot run --model %s on %dx%d images (the property file's size): "
                         "%s" % (tool, model_arg, image_size[0], image_size[1], reason)) from None


def embed_batch(model, images, num_contexts):
    """fc1 outputs for a list of (3, H, W) NDArrays, in one forward pass."""
    # A batch must give every device at least one row: pad with copies of the first image.
    rows = list(images) + [images[0]] * max(0, num_contexts - len(images))
    data = nd.stack(*rows)
    model.forward(mx.io.DataBatch(data=(data,)), is_train=False)
    return model.get_outputs()[0].asnumpy()[:len(images)]


def l2_normalize(x):
    """x divided by its L2 norm along the last axis; an all-zero vector stays zero (as sklearn)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def decode_image(reader, key, image_size):
    """Image record `key` decoded as the trainer does: float32 (3, H, W), RGB, 0..255."""
    data = reader.read_image(key)[1]
    try:
        img = mx.image.imdecode(data)
    except mx.base.MXNetError:
        raise ValueError("%s: image record %d (%d bytes) cannot be decoded as an image"
                         % (reader.rec_path, key, len(data))) from None
    if tuple(img.shape[:2]) != tuple(image_size):
        raise ValueError("%s: image record %d is %dx%d (HxW), but the property file says %dx%d"
                         % (reader.rec_path, key, img.shape[0], img.shape[1],
                            image_size[0], image_size[1]))
    return nd.transpose(img, axes=(2, 0, 1)).astype('float32')


def image_embeddings(reader, keys, model, batch_size, num_contexts):
    """L2-normalised embeddings (float64 rows, in `keys` order) of image records `keys`."""
    keys = list(keys)
    image_size = model.data_shapes[0].shape[2:]
    if not keys:
        return np.zeros((0, model.output_shapes[0][1][1]))
    rows = []
    for batch_start in range(0, len(keys), batch_size):
        images = [decode_image(reader, key, image_size)
                  for key in keys[batch_start:batch_start + batch_size]]
        rows.append(embed_batch(model, images, num_contexts))
    return l2_normalize(np.concatenate(rows).astype(np.float64))


def mean_embedding(rows):
    """Normalised mean of (already normalised) embedding rows."""
    return l2_normalize(rows.mean(axis=0))


def cosines_to_mean(rows):
    """Cosine of each normalised row to the normalised mean of all rows."""
    return rows @ mean_embedding(rows)


def identity_embedding(reader, identity_key, model, batch_size, num_contexts):
    """Normalised mean of the normalised embeddings of one identity's images."""
    start, end = reader.identity_range(identity_key)
    if start == end:
        raise ValueError("%s: identity record %d has no images (range [%d, %d)), so it has no "
                         "embedding" % (reader.rec_path, identity_key, start, end))
    return mean_embedding(image_embeddings(reader, range(start, end), model, batch_size,
                                           num_contexts))
