"""Extract MegaFace/FaceScrub features of aligned face images into per-image MegaFace files."""
import argparse
import os
import sys

import cv2
import mxnet as mx
import numpy as np
import sklearn.preprocessing

from common.checkpoint import parse_model_arg
from deploy.face_model import get_model
from recognition.eval.megaface.feature_file import ensure_dir, feature_name, write_feature
from common.devices import gpu_context


def parse_image_shape(text):
    """(channels, height, width) from '3,112,112'."""
    try:
        shape = tuple(int(v) for v in str(text).split(','))
    except ValueError:
        shape = ()
    if len(shape) != 3 or shape[0] != 3:
        raise ValueError("--image_size must be '3,height,width' (e.g. 3,112,112), got %r" % (text,))
    return shape


def load_models(model_arg, ctx, image_shape):
    """One fc1_output Module per 'prefix,epoch' in 'p1,e1|p2,e2'."""
    models = []
    for item in model_arg.split('|'):
        prefix, epoch = parse_model_arg(item)
        models.append(get_model(ctx, image_shape[1:], '%s,%d' % (prefix, epoch)))
    return models


def get_features(images, models, flip=True):
    """L2-normalised features of BGR HWC uint8 images, one row each.

    Per model: forward the RGB images and (with flip) their mirror images as one batch, add each
    image's two embeddings and normalise; several models' features are concatenated and
    normalised again.
    """
    batch = np.stack([np.transpose(img[:, :, ::-1], (2, 0, 1)) for img in images])
    if flip:
        batch = np.concatenate([batch, batch[:, :, :, ::-1]])
    count = len(images)
    data = mx.nd.array(batch.astype(np.float32))
    parts = []
    for model in models:
        model.forward(mx.io.DataBatch(data=(data,)), is_train=False)
        out = model.get_outputs()[0].asnumpy().reshape(len(batch), -1)
        embedding = out[:count] + out[count:] if flip else out
        parts.append(sklearn.preprocessing.normalize(embedding))
    return sklearn.preprocessing.normalize(np.concatenate(parts, axis=1))


def extract_list(list_path, image_root, out_root, depth, models, args, tag):
    """Features of every image in list_path, written to out_root/<last depth-1 dirs>/<name>_<algo>.bin.

    Prints progress every 1000 lines and '<tag> stat <lines> <written>' at the end, like 2019.
    """
    height, width = args.image_shape[1:]
    total = written = 0
    pending = []

    def flush():
        features = get_features([img for img, _ in pending], models, flip=args.flip)
        for feature, (_, out_path) in zip(features, pending):
            write_feature(out_path, feature)
        del pending[:]

    with open(list_path) as lines:
        for line in lines:
            rel_path = line.strip()
            if not rel_path:
                continue  # a trailing blank line is not an image
            if total % 1000 == 0:
                print('writing %s' % tag, total, written)
            total += 1
            parts = rel_path.split('/')
            if len(parts) < depth:
                raise ValueError("%s: %r should end with %d path components (%s)"
                                 % (list_path, rel_path, depth,
                                    'Name/file' if depth == 2 else 'a1/a2/file'))
            image_path = os.path.join(image_root, rel_path)
            img = cv2.imread(image_path, cv2.IMREAD_COLOR)
            if img is None:
                print('read error:', image_path)
                continue
            if img.shape[:2] != (height, width):
                raise ValueError("%s is %dx%d; MegaFace lists hold aligned %dx%d faces (--image_size)"
                                 % (image_path, img.shape[0], img.shape[1], height, width))
            out_dir = ensure_dir(os.path.join(out_root, *parts[-depth:-1]))
            pending.append((img, os.path.join(out_dir, feature_name(parts[-1], args.algo))))
            if len(pending) == args.batch_size:
                flush()
            written += 1
    if pending:
        flush()
    print('%s stat' % tag, total, written)
    return total, written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch_size', '--batch-size', type=int, default=8,
                        help='images per forward (each also flipped: twice as many rows)')
    parser.add_argument('--image_size', '--image-size', default='3,112,112',
                        help="'3,height,width' of the aligned images")
    parser.add_argument('--gpu', type=int, default=0, help='GPU id; -1 (or no GPU) for the CPU')
    parser.add_argument('--algo', default='insightface', help='feature file suffix: <image>_<algo>.bin')
    parser.add_argument('--facescrub-lst', default='./data/facescrub_lst',
                        help='FaceScrub images, one Name/file per line relative to --facescrub-root')
    parser.add_argument('--megaface-lst', default='./data/megaface_lst',
                        help='MegaFace distractors, one a1/a2/file per line relative to '
                        '--megaface-root')
    parser.add_argument('--facescrub-root', default='./data/facescrub_images')
    parser.add_argument('--megaface-root', default='./data/megaface_images')
    parser.add_argument('--output', default='./feature_out',
                        help='writes <output>/facescrub/... and <output>/megaface/...')
    parser.add_argument('--model', default='',
                        help="'prefix,epoch', or several joined by '|' (features concatenated)")
    parser.add_argument('--flip', type=int, default=1, choices=[0, 1],
                        help='1: add the embedding of the mirrored image (2019 behaviour); 0: no flip')
    parser.add_argument('--skip-facescrub', action='store_true', help='only the MegaFace list')
    parser.add_argument('--skip-megaface', action='store_true', help='only the FaceScrub list')
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("--model is required ('prefix,epoch')")
    if args.batch_size < 1:
        parser.error('--batch_size must be at least 1')
    args.image_shape = parse_image_shape(args.image_size)
    args.flip = bool(args.flip)
    return args


def main(argv=None):
    args = parse_args(argv)
    print(args)
    models = load_models(args.model, gpu_context(args.gpu), args.image_shape)
    if not args.skip_facescrub:
        extract_list(args.facescrub_lst, args.facescrub_root, os.path.join(args.output, 'facescrub'),
                     2, models, args, 'fs')
    if not args.skip_megaface:
        extract_list(args.megaface_lst, args.megaface_root, os.path.join(args.output, 'megaface'),
                     3, models, args, 'mf')
    return 0


if __name__ == '__main__':
    sys.exit(main())
