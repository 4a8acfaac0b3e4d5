"""Face verification benchmark on LFW/CFP/AgeDB .bin packs: loading pairs, scoring models, CLI."""
import argparse
import collections
import os
import pickle
import time

import cv2
import mxnet as mx
import numpy as np
import sklearn.preprocessing
from mxnet import ndarray as nd

from common.checkpoint import checkpoint_epochs, load_inference_module
from common.devices import gpu_context
from common.record_io import read_property
from common.verification_pack import PICKLE_PROTOCOL, load_pairs_bin

# The original's grids: 400 accuracy thresholds, 4000 for VAL@FAR (exact np.arange floats).
ROC_THRESHOLDS = np.arange(0, 4, 0.01)
VAL_THRESHOLDS = np.arange(0, 4, 0.001)
FAR_TARGET = 1e-3
DEFAULT_TARGETS = 'lfw,cfp_ff,cfp_fp,agedb_30'

Metrics = collections.namedtuple(
    'Metrics', ['tpr', 'fpr', 'accuracy', 'best_thresholds', 'val', 'val_std', 'far'])
Metrics.__doc__ = """What evaluate() computes, plus the best squared-L2 threshold of each fold."""


def load_bin(path, image_size):
    """Decode a verification pack into ([data, data_flipped], issame_list).

    Both arrays are float32 NDArrays (2P, 3, H, W) of RGB values 0..255 with image_size = (H, W);
    the second holds every image mirrored left-right. Images whose width differs from H are
    resized (shorter side to H), as the original did.
    """
    bins, issame_list = load_pairs_bin(path)
    data_list = decode_images(bins, image_size, path, resize=True)
    print(data_list[0].shape)
    return data_list, issame_list


def decode_images(encoded, image_size, source, resize=True, names=None):
    """[data, data_flipped]: float32 NDArrays (N, 3, H, W), RGB 0..255, of encoded images.

    resize=True resizes an image whose width differs from H (shorter side to H, load_bin's
    rule); otherwise, and after resizing, an image of another size is an error naming
    `source` and the image (`names[i]` when given).
    """
    height, width = int(image_size[0]), int(image_size[1])
    data_list = [nd.empty((len(encoded), 3, height, width)) for _ in range(2)]
    for i, raw in enumerate(encoded):
        img = mx.image.imdecode(raw)
        # The original compares the width with the target *height* (quirk Q9, kept): right for
        # 112x112 packs; for 112x96 ones it resizes to the wrong size and the check below fails.
        if resize and img.shape[1] != height:
            img = mx.image.resize_short(img, height)
        if img.shape[:2] != (height, width):
            what = names[i] if names is not None else 'image %d' % i
            raise ValueError("%s: %s decodes to %dx%d (HxW), expected %dx%d from image_size=%r"
                             % (source, what, img.shape[0], img.shape[1], height, width,
                                tuple(image_size)))
        img = nd.transpose(img, axes=(2, 0, 1))
        data_list[0][i][:] = img
        data_list[1][i][:] = nd.flip(img, axis=2)
        if i % 1000 == 0:
            print('loading bin', i)
    return data_list


# ----------------------------------------------------------------------------------------------
# Scoring: distances, folds, accuracy and VAL@FAR
# ----------------------------------------------------------------------------------------------

def fold_splits(num_pairs, nfolds):
    """(train, test) index arrays per fold: sklearn KFold(nfolds, shuffle=False) blocks.

    The first num_pairs % nfolds folds are one pair larger. nfolds == 1 is the original LFold's
    special case: a single split whose train and test sets are both all the pairs.
    """
    if not 1 <= nfolds <= num_pairs:
        raise ValueError("nfolds must be between 1 and the number of pairs (%d), got %d"
                         % (num_pairs, nfolds))
    indices = np.arange(num_pairs)
    if nfolds == 1:
        return [(indices, indices)]
    blocks = np.array_split(indices, nfolds)
    return [(np.concatenate(blocks[:k] + blocks[k + 1:]), block) for k, block in enumerate(blocks)]


def squared_distances(embeddings1, embeddings2):
    """Row-wise squared Euclidean distances (in [0, 4] for unit vectors)."""
    if embeddings1.shape != embeddings2.shape:
        raise ValueError("the two sides of the pairs differ in shape: %s vs %s"
                         % (embeddings1.shape, embeddings2.shape))
    return np.sum(np.square(np.subtract(embeddings1, embeddings2)), axis=1)


def accept_counts(dist, issame, thresholds):
    """Per threshold t: (true accepts, false accepts, #same, #different), accepting dist < t.

    Sorting once and counting with searchsorted gives, for all thresholds at once, exactly the
    integer counts that comparing `dist < t` threshold by threshold gives.
    """
    same = np.sort(dist[issame])
    different = np.sort(dist[~issame])
    true_accepts = np.searchsorted(same, thresholds, side='left')
    false_accepts = np.searchsorted(different, thresholds, side='left')
    return true_accepts, false_accepts, len(same), len(different)


def rates(dist, issame, thresholds):
    """(tpr, fpr, accuracy) per threshold; a rate whose class is empty is 0, as in the original."""
    true_accepts, false_accepts, n_same, n_diff = accept_counts(dist, issame, thresholds)
    tpr = true_accepts / n_same if n_same else np.zeros(len(thresholds))
    fpr = false_accepts / n_diff if n_diff else np.zeros(len(thresholds))
    accuracy = (true_accepts + (n_diff - false_accepts)) / len(dist)
    return tpr, fpr, accuracy


def _pca_distances(embeddings1, embeddings2, train, n_components):
    """Distances after a PCA fit on the train pairs (both sides) and re-normalisation."""
    from sklearn.decomposition import PCA
    pca = PCA(n_components=n_components)
    pca.fit(np.concatenate((embeddings1[train], embeddings2[train]), axis=0))
    projected1 = sklearn.preprocessing.normalize(pca.transform(embeddings1))
    projected2 = sklearn.preprocessing.normalize(pca.transform(embeddings2))
    return squared_distances(projected1, projected2)


def _as_issame(actual_issame, num_pairs):
    issame = np.asarray(actual_issame, dtype=bool).reshape(-1)
    if len(issame) != num_pairs:
        raise ValueError("%d issame flags for %d embedding pairs; expected one flag per pair"
                         % (len(issame), num_pairs))
    return issame


def calculate_accuracy(threshold, dist, actual_issame):
    """(tpr, fpr, accuracy) at one threshold: the 2019 per-threshold helper, kept for callers."""
    tpr, fpr, accuracy = rates(np.asarray(dist), _as_issame(actual_issame, len(dist)), [threshold])
    return tpr[0], fpr[0], accuracy[0]


def calculate_val_far(threshold, dist, actual_issame):
    """(val, far) at one threshold: the 2019 helper (val = true-accept rate, far = false-accept rate)."""
    return _val_far(threshold, np.asarray(dist), _as_issame(actual_issame, len(dist)))


class LFold:
    """The 2019 fold splitter: KFold without shuffling, and one split of all pairs when n_splits is 1."""

    def __init__(self, n_splits=2, shuffle=False):
        if shuffle:
            raise ValueError("LFold: shuffle=True is not supported; the folds are contiguous blocks "
                             "so that 10 folds are the official ones")
        self.n_splits = n_splits

    def split(self, indices):
        return fold_splits(len(indices), self.n_splits)


def calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10, pca=0):
    """(tpr, fpr, accuracy per fold), as in 2019; roc_with_thresholds also gives the thresholds."""
    tpr, fpr, accuracy, _ = roc_with_thresholds(thresholds, embeddings1, embeddings2, actual_issame,
                                                nrof_folds, pca)
    return tpr, fpr, accuracy


def roc_with_thresholds(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10, pca=0):
    """(tpr, fpr, accuracy, best_thresholds) with k-fold threshold selection.

    Per fold, the threshold with the best train accuracy (the smallest on ties) is applied to the
    test pairs; tpr/fpr are the test-fold curves averaged over folds. pca > 0 refits a PCA per fold.
    """
    thresholds = np.asarray(thresholds)
    issame = _as_issame(actual_issame, len(embeddings1))
    folds = fold_splits(len(issame), nrof_folds)
    tprs = np.zeros((nrof_folds, len(thresholds)))
    fprs = np.zeros((nrof_folds, len(thresholds)))
    accuracy = np.zeros(nrof_folds)
    best_thresholds = np.zeros(nrof_folds)
    if pca == 0:
        dist = squared_distances(embeddings1, embeddings2)
    for k, (train, test) in enumerate(folds):
        if pca > 0:
            print('doing pca on', k)
            dist = _pca_distances(embeddings1, embeddings2, train, pca)
        _, _, train_accuracy = rates(dist[train], issame[train], thresholds)
        best = np.argmax(train_accuracy)
        tprs[k], fprs[k], test_accuracy = rates(dist[test], issame[test], thresholds)
        accuracy[k] = test_accuracy[best]
        best_thresholds[k] = thresholds[best]
    return np.mean(tprs, 0), np.mean(fprs, 0), accuracy, best_thresholds


def threshold_at_far(far, thresholds, far_target):
    """Threshold where the non-decreasing FAR curve reaches far_target, linearly interpolated.

    This is what scipy < 1.9 returned for interp1d(far, thresholds, kind='slinear')(far_target)
    (newer scipy refuses the repeated FAR values): a degree-1 B-spline with knots
    [far[0], *far, far[-1]], evaluated on the last knot interval that starts at or below the
    target. So between the last FAR <= target (index i-1) and the first FAR > target (index i).
    """
    far = np.asarray(far, dtype=np.float64)
    i = int(np.searchsorted(far, far_target, side='right'))
    if i == 0:
        raise ValueError("FAR target %g is below the smallest FAR %g" % (far_target, far[0]))
    if i == len(far):
        # Target equals the largest FAR. Old scipy returned 0.0 when that FAR was repeated (a
        # zero-width interval); the last threshold keeps the rule above and is what it returned
        # otherwise. Not reachable for 1e-3, as the largest FAR is ~1.
        return float(thresholds[-1])
    lo, hi = far[i - 1], far[i]
    # Weighted as the degree-1 B-spline evaluation (de Boor) weighs its two neighbours.
    weight = 1.0 / (hi - lo)
    return float(thresholds[i - 1] * (weight * (hi - far_target))
                 + thresholds[i] * (weight * (far_target - lo)))


def _val_far(threshold, dist, issame):
    """(VAL, FAR) at one threshold; NaN for a class with no pairs (the original divided by 0)."""
    true_accepts, false_accepts, n_same, n_diff = accept_counts(dist, issame, [threshold])
    val = true_accepts[0] / n_same if n_same else float('nan')
    far = false_accepts[0] / n_diff if n_diff else float('nan')
    return val, far


def calculate_val(thresholds, embeddings1, embeddings2, actual_issame, far_target, nrof_folds=10):
    """(mean VAL, std VAL, mean FAR) on the test folds at the train-fold threshold for far_target.

    A fold whose train FAR never reaches the target uses threshold 0 (accepts nothing).
    """
    thresholds = np.asarray(thresholds)
    issame = _as_issame(actual_issame, len(embeddings1))
    dist = squared_distances(embeddings1, embeddings2)
    val = np.zeros(nrof_folds)
    far = np.zeros(nrof_folds)
    for k, (train, test) in enumerate(fold_splits(len(issame), nrof_folds)):
        _, false_accepts, _, n_diff = accept_counts(dist[train], issame[train], thresholds)
        threshold = 0.0
        if n_diff > 0 and false_accepts[-1] / n_diff >= far_target:
            threshold = threshold_at_far(false_accepts / n_diff, thresholds, far_target)
        val[k], far[k] = _val_far(threshold, dist[test], issame[test])
    return np.mean(val), np.std(val), np.mean(far)


def verification_metrics(embeddings, actual_issame, nrof_folds=10, pca=0):
    """Metrics of pairs (rows 2k, 2k+1) of L2-normalised embeddings: ROC, accuracy, VAL@FAR=1e-3."""
    embeddings1 = embeddings[0::2]
    embeddings2 = embeddings[1::2]
    tpr, fpr, accuracy, best_thresholds = roc_with_thresholds(
        ROC_THRESHOLDS, embeddings1, embeddings2, actual_issame, nrof_folds=nrof_folds, pca=pca)
    val, val_std, far = calculate_val(VAL_THRESHOLDS, embeddings1, embeddings2, actual_issame,
                                      FAR_TARGET, nrof_folds=nrof_folds)
    return Metrics(tpr, fpr, accuracy, best_thresholds, val, val_std, far)


def evaluate(embeddings, actual_issame, nrof_folds=10, pca=0):
    """The original's (tpr, fpr, accuracy_per_fold, val, val_std, far) of verification_metrics."""
    m = verification_metrics(embeddings, actual_issame, nrof_folds=nrof_folds, pca=pca)
    return m.tpr, m.fpr, m.accuracy, m.val, m.val_std, m.far


# ----------------------------------------------------------------------------------------------
# Running a model on a verification set
# ----------------------------------------------------------------------------------------------

def compute_embeddings(data_set, mx_model, batch_size, data_extra=None, label_shape=None):
    """([embeddings of data, of data_flipped] as float64 (2P, D), seconds of forward + copy).

    The module is bound to batch_size, so every batch has that shape: the last one is the final
    batch_size rows, overlapping the previous batch, and only its new rows are kept. Output 0
    is the embedding. A label of ones is fed for modules with a label input (the training
    Module); modules without one ignore it.
    """
    data_list = data_set[0]
    num_images = data_list[0].shape[0]
    if batch_size > num_images:
        raise ValueError("batch size %d is larger than the %d images (2 x %d pairs) of the "
                         "verification set; use a batch size <= %d"
                         % (batch_size, num_images, num_images // 2, num_images))
    label = nd.ones(label_shape if label_shape is not None else (batch_size,))
    extra = [nd.array(data_extra)] if data_extra is not None else []
    seconds = 0.0
    embeddings_list = []
    for data in data_list:
        embeddings = None
        for start in range(0, num_images, batch_size):
            end = min(start + batch_size, num_images)
            batch = mx.io.DataBatch(data=[data[end - batch_size:end]] + extra, label=[label])
            tic = time.perf_counter()
            mx_model.forward(batch, is_train=False)
            output = mx_model.get_outputs()[0].asnumpy()
            seconds += time.perf_counter() - tic
            if embeddings is None:
                embeddings = np.zeros((num_images, output.shape[1]))
            embeddings[start:end] = output[batch_size - (end - start):]
        embeddings_list.append(embeddings)
    return embeddings_list, seconds


def flip_sum_normalize(embeddings_list):
    """The evaluated embedding: original + flipped, L2-normalised per row (zero rows stay zero)."""
    return sklearn.preprocessing.normalize(embeddings_list[0] + embeddings_list[1])


def test(data_set, mx_model, batch_size, nfolds=10, data_extra=None, label_shape=None):
    """(acc1, std1, acc2, std2, xnorm, embeddings_list) of a model on a load_bin() set.

    acc2/std2: mean/std of the fold accuracies of the flip-summed embeddings; acc1/std1 are
    always 0, as in the original (its un-flipped evaluation was commented out). xnorm: mean L2
    norm of all unnormalised embeddings, original and flipped.
    """
    print('testing verification..')
    embeddings_list, seconds = compute_embeddings(data_set, mx_model, batch_size,
                                                  data_extra, label_shape)
    xnorm = float(np.mean(np.linalg.norm(np.concatenate(embeddings_list), axis=1)))
    acc1, std1 = 0.0, 0.0
    embeddings = flip_sum_normalize(embeddings_list)
    print(embeddings.shape)
    print('infer time', seconds)
    _, _, accuracy, _, _, _ = evaluate(embeddings, data_set[1], nrof_folds=nfolds)
    acc2, std2 = np.mean(accuracy), np.std(accuracy)
    return acc1, std1, acc2, std2, xnorm, embeddings_list


# ----------------------------------------------------------------------------------------------
# Modes 1 and 2 of the CLI: bad-case images and an embedding dump
# ----------------------------------------------------------------------------------------------

def _badcase_grid(cases, images, threshold, path):
    """Write pairs side by side (BGR), 4 per row, distance on each and the threshold below."""
    cols, gap, footer = 4, 10, 20
    color = (153, 255, 51)
    font = cv2.FONT_HERSHEY_SIMPLEX
    height, width = images.shape[2], images.shape[3]
    tile_w = 2 * width
    rows = min(8000, -(-len(cases) // cols))
    canvas = np.full((height * rows + footer, tile_w * cols + (cols - 1) * gap, 3), 255, np.uint8)
    for n, (dist, _, pair) in enumerate(cases[:rows * cols]):
        row, col = divmod(n, cols)
        left = images[2 * pair].asnumpy().transpose(1, 2, 0)[..., ::-1]
        right = images[2 * pair + 1].asnumpy().transpose(1, 2, 0)[..., ::-1]
        tile = np.ascontiguousarray(np.concatenate((left, right), axis=1).astype(np.uint8))
        cv2.putText(tile, '%.3f' % dist, (80, height // 2 + 7), font, 0.6, color, 2)
        x = col * (tile_w + gap)
        canvas[row * height:(row + 1) * height, x:x + tile_w] = tile
    cv2.putText(canvas, 'threshold: %.3f' % threshold, (canvas.shape[1] // 2 - 70,
                                                        canvas.shape[0] - 5), font, 0.6, color, 2)
    cv2.imwrite(path, canvas)


def test_badcase(data_set, mx_model, batch_size, name='', data_extra=None, label_shape=None,
                 out_dir='./badcases'):
    """Save the misclassified test pairs of 10-fold evaluation as two PNG grids in out_dir.

    False negatives (same person, dist > fold threshold) are sorted by distance descending,
    false positives (dist < threshold) ascending. Returns the two file paths written.
    """
    print('testing verification badcase..')
    embeddings_list, _ = compute_embeddings(data_set, mx_model, batch_size, data_extra,
                                            label_shape)
    embeddings = flip_sum_normalize(embeddings_list)
    issame = _as_issame(data_set[1], len(embeddings) // 2)
    dist = squared_distances(embeddings[0::2], embeddings[1::2])
    _, _, accuracy, best_thresholds = roc_with_thresholds(ROC_THRESHOLDS, embeddings[0::2],
                                                    embeddings[1::2], issame, nrof_folds=10)
    false_negatives, false_positives = [], []
    for (_, test_pairs), threshold in zip(fold_splits(len(issame), 10), best_thresholds):
        for pair in test_pairs:
            if issame[pair] and dist[pair] > threshold:
                false_negatives.append((dist[pair], threshold, pair))
            elif not issame[pair] and dist[pair] < threshold:
                false_positives.append((dist[pair], threshold, pair))
    false_negatives.sort(key=lambda case: case[0], reverse=True)
    false_positives.sort(key=lambda case: case[0])
    print(len(false_negatives), len(false_positives))
    print('acc', np.mean(accuracy))
    if not false_negatives and not false_positives:
        print('no bad cases: nothing written')
        return []
    # The footer shows one fold's threshold, picked as in the original.
    threshold = false_positives[0][1] if false_positives else false_negatives[-1][1]
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for cases, suffix in ((false_negatives, 'positive(false_negative).png'),
                          (false_positives, 'negative(false_positive).png')):
        if cases:
            path = os.path.join(out_dir, name + '_' + suffix if name else suffix)
            _badcase_grid(cases, data_set[0][0], threshold, path)
            written.append(path)
    return written


def dump_embeddings(data_set, mx_model, batch_size, path='temp.bin', data_extra=None,
                    label_shape=None):
    """Pickle (flip-summed normalised embeddings, issame_list) to path (the original's dumpR)."""
    print('dump verification embedding..')
    embeddings_list, _ = compute_embeddings(data_set, mx_model, batch_size, data_extra,
                                            label_shape)
    with open(path, 'wb') as f:
        pickle.dump((flip_sum_normalize(embeddings_list), list(data_set[1])), f,
                    protocol=PICKLE_PROTOCOL)
    return path


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def model_epochs(model_arg, max_range=''):
    """(prefix, epochs) from 'prefix,epoch', 'prefix,e1|e2|...' or a bare prefix.

    A bare prefix means every saved prefix-NNNN.params, newest first; --max 'a,b' then keeps
    epochs[a:b], but only when more than b epochs exist (as the original).
    """
    prefix, sep, epoch_text = model_arg.rpartition(',')
    if sep:
        try:
            return prefix, [int(e) for e in epoch_text.split('|')]
        except ValueError:
            raise ValueError("--model %r: expected 'prefix,epoch' or 'prefix,e1|e2|...' with "
                             "integer epochs" % model_arg) from None
    prefix = model_arg
    epochs = checkpoint_epochs(prefix)
    if not epochs:
        raise FileNotFoundError("--model %r: no %s-NNNN.params checkpoint found"
                                % (model_arg, prefix))
    if max_range:
        try:
            begin, end = (int(v) for v in max_range.split(','))
        except ValueError:
            raise ValueError("--max %r: expected two integers 'a,b'" % max_range) from None
        if len(epochs) > end:
            epochs = epochs[begin:end]
    return prefix, epochs


def load_embedding_model(prefix, epoch, ctx, batch_size, image_size, fast_cpu=True):
    """A Module of the checkpoint's fc1_output (the embedding), bound to (batch_size, 3, H, W)."""
    return load_inference_module(prefix, epoch, ctx, (batch_size, 3) + tuple(image_size),
                                 fast_cpu=fast_cpu)


def plot_roc(curves, path):
    """Write a PNG of TPR against FPR (log x), one curve per (label, fpr, tpr) in curves."""
    # Imported here: only --roc needs matplotlib, and the Agg canvas needs no display.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, fpr, tpr in curves:
        visible = fpr > 0  # FPR 0 has no place on a log axis
        ax.plot(fpr[visible], tpr[visible], label=label, linewidth=1.5)
    ax.set_xscale('log')
    ax.set_xlim(right=1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel('False positive rate (log scale)')
    ax.set_ylabel('True positive rate')
    ax.set_title('Verification ROC (flip-summed embeddings, mean over test folds)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Verification accuracy of face recognition checkpoints on .bin pair sets '
                    '(LFW, CFP, AgeDB): 10-fold accuracy of flip-summed fc1 embeddings.')
    parser.add_argument('--data-dir', default='',
                        help='folder with `property` (for the image size) and <target>.bin files')
    parser.add_argument('--model', default='../model/softmax,50',
                        help="checkpoint as 'prefix,epoch', 'prefix,e1|e2|...', or a bare prefix "
                             "for every saved epoch, newest first")
    parser.add_argument('--target', default=DEFAULT_TARGETS,
                        help='comma-separated sets; a missing <target>.bin is skipped')
    parser.add_argument('--gpu', default=0, type=int,
                        help='GPU id; -1, or a machine without a GPU, runs on the CPU')
    parser.add_argument('--batch-size', default=32, type=int,
                        help='images per forward pass, at most the images of the smallest set')
    parser.add_argument('--max', default='', type=str,
                        help="'a,b': with a bare prefix, keep epochs[a:b] of the newest-first "
                             "list when more than b epochs exist")
    parser.add_argument('--mode', default=0, type=int, choices=[0, 1, 2],
                        help='0: accuracy; 1: bad-case images of the first set and model into '
                             './badcases; 2: dump its embeddings to ./temp.bin')
    parser.add_argument('--nfolds', default=10, type=int, help='folds of the accuracy (mode 0)')
    parser.add_argument('--no-fast-prelu', action='store_true',
                        help='on the CPU, keep the saved PReLU ops instead of the faster, '
                             'output-identical oneDNN formulation')
    parser.add_argument('--roc', default='',
                        help='mode 0: also write a PNG of the ROC curves to this path')
    return parser, parser.parse_args(argv)


def main(argv=None):
    parser, args = parse_args(argv)
    if args.batch_size < 1 or args.nfolds < 1:
        parser.error('--batch-size and --nfolds must be positive')
    image_size = list(read_property(args.data_dir).image_size)
    print('image_size', image_size)
    ctx = gpu_context(args.gpu)
    prefix, epochs = model_epochs(args.model, args.max)
    print('model number', len(epochs))
    tic = time.perf_counter()
    nets = []
    for epoch in epochs:
        print('loading', prefix, epoch)
        nets.append(load_embedding_model(prefix, epoch, ctx, args.batch_size, image_size,
                                         fast_cpu=not args.no_fast_prelu))
    print('model loading time', time.perf_counter() - tic)

    ver_list, ver_name_list = [], []
    for name in args.target.split(','):
        path = os.path.join(args.data_dir, name + '.bin')
        if os.path.exists(path):
            print('loading.. ', name)
            ver_list.append(load_bin(path, image_size))
            ver_name_list.append(name)
    if not ver_list:
        raise FileNotFoundError("none of the targets %r has a .bin file in %r"
                                % (args.target, args.data_dir))
    for name, data_set in zip(ver_name_list, ver_list):
        if args.batch_size > len(data_set[1]) * 2:
            parser.error('--batch-size %d is larger than the %d images of %s.bin'
                         % (args.batch_size, len(data_set[1]) * 2, name))

    if args.mode == 1:
        test_badcase(ver_list[0], nets[0], args.batch_size, ver_name_list[0])
        return
    if args.mode == 2:
        dump_embeddings(ver_list[0], nets[0], args.batch_size)
        return
    curves = []
    for name, data_set in zip(ver_name_list, ver_list):
        results = []
        for epoch, model in zip(epochs, nets):
            acc1, std1, acc2, std2, xnorm, embeddings_list = test(data_set, model,
                                                                  args.batch_size, args.nfolds)
            print('[%s]XNorm: %f' % (name, xnorm))
            print('[%s]Accuracy: %1.5f+-%1.5f' % (name, acc1, std1))
            print('[%s]Accuracy-Flip: %1.5f+-%1.5f' % (name, acc2, std2))
            results.append(acc2)
            # Beyond the original: VAL@FAR and a threshold users can apply for 1:1 matching.
            m = verification_metrics(flip_sum_normalize(embeddings_list), data_set[1],
                                     args.nfolds)
            threshold = float(np.mean(m.best_thresholds))
            print('[%s]VAL@FAR=%g: %1.5f+-%1.5f (FAR %1.5f)'
                  % (name, FAR_TARGET, m.val, m.val_std, m.far))
            print('[%s]Threshold: %1.5f (squared L2), %1.5f (cosine similarity)'
                  % (name, threshold, 1.0 - threshold / 2.0))
            curves.append(('%s %s,%d acc %1.5f' % (name, os.path.basename(prefix), epoch, acc2),
                           m.fpr, m.tpr))
        print('Max of [%s] is %1.5f' % (name, np.max(results)))
    if args.roc:
        plot_roc(curves, args.roc)
        print('ROC curves written to', args.roc)


if __name__ == '__main__':
    main()
