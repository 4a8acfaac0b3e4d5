"""Face verification benchmark on LFW/CFP/AgeDB .bin packs: loading the pairs, scoring a model."""
import mxnet as mx
from mxnet import ndarray as nd

from common.verification_pack import load_pairs_bin


def load_bin(path, image_size):
    """Decode a verification pack into ([data, data_flipped], issame_list).

    Both arrays are float32 NDArrays (2P, 3, H, W) of RGB values 0..255 with image_size = (H, W);
    the second holds every image mirrored left-right. Images whose width differs from H are
    resized (shorter side to H), as the original did.
    """
    bins, issame_list = load_pairs_bin(path)
    height, width = int(image_size[0]), int(image_size[1])
    data_list = [nd.empty((len(bins), 3, height, width)) for _ in range(2)]
    for i, raw in enumerate(bins):
        img = mx.image.imdecode(raw)
        # The original compares the width with the target *height* (quirk Q9, kept): right for
        # 112x112 packs; for 112x96 ones it resizes to the wrong size and the check below fails.
        if img.shape[1] != height:
            img = mx.image.resize_short(img, height)
        if img.shape[:2] != (height, width):
            raise ValueError("%s: image %d decodes to %dx%d (HxW), expected %dx%d from "
                             "image_size=%r" % (path, i, img.shape[0], img.shape[1], height,
                                                width, image_size))
        img = nd.transpose(img, axes=(2, 0, 1))
        data_list[0][i][:] = img
        data_list[1][i][:] = nd.flip(img, axis=2)
        if i % 1000 == 0:
            print('loading bin', i)
    print(data_list[0].shape)
    return data_list, issame_list
