"""IJB-B / IJB-C 1:1 template verification: TAR at FAR 1e-6..1e-1 of a checkpoint's embeddings."""
import argparse
import array
import os
import re
import sys
import time

import mxnet as mx
import numpy as np
from sklearn.metrics import auc, roc_curve

from common.checkpoint import atomic_write, load_inference_module, parse_model_arg
from common.face_preprocess import preprocess, read_image
from common.devices import gpu_context

FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
TARGETS = ('IJBB', 'IJBC')
IMAGE_SIZE = (112, 112)
PAIR_CHUNK = 100000  # template pairs scored per step, to bound memory on IJB-C's 15.7M pairs
MODE_PATTERN = re.compile(r'^N([01])D([01])F([012])$')


# ---- metadata files ----

def _fields(path, count, layout):
    """(line number, fields) of each non-blank line of a whitespace-separated file."""
    if not os.path.isfile(path):
        raise FileNotFoundError("IJB metadata file %s does not exist (expected lines '%s')"
                                % (path, layout))
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != count:
                raise ValueError("%s:%d: expected %d fields '%s', got %d: %r"
                                 % (path, number, count, layout, len(fields), line.rstrip('\n')))
            yield number, fields


def _number(text, kind, path, number, what):
    try:
        return kind(text)
    except ValueError:
        raise ValueError("%s:%d: %s must be %s, got %r"
                         % (path, number, what, 'an integer' if kind is int else 'a number',
                            text)) from None


def _non_empty(path, rows):
    if not rows:
        raise ValueError("%s lists nothing" % path)
    return rows


def read_template_media(path):
    """(names, template ids, media ids, line numbers) of '<image> <tid> <mid>' lines."""
    rows = _non_empty(path, [
        (fields[0], _number(fields[1], int, path, number, 'the template id'),
         _number(fields[2], int, path, number, 'the media id'), number)
        for number, fields in _fields(path, 3, 'image_name tid mid')])
    names, templates, medias, lines = zip(*rows)
    return list(names), np.array(templates), np.array(medias), np.array(lines)


def read_template_pairs(path):
    """(tid1, tid2, labels, line numbers) of '<tid1> <tid2> <label>' lines; labels are 1 or 0.

    Kept in typed arrays while reading: IJB-C lists 15.7 million pairs.
    """
    columns = [array.array('q') for _ in range(4)]
    for number, fields in _fields(path, 3, 'tid_1 tid_2 label'):
        label = _number(fields[2], int, path, number, 'the label')
        if label not in (0, 1):
            raise ValueError("%s:%d: the label must be 1 (same person) or 0, got %r"
                             % (path, number, fields[2]))
        row = (_number(fields[0], int, path, number, 'the first template id'),
               _number(fields[1], int, path, number, 'the second template id'), label, number)
        for column, value in zip(columns, row):
            column.append(value)
    if not columns[0]:
        raise ValueError("%s lists nothing" % path)
    return tuple(np.frombuffer(column, dtype=np.int64).copy() for column in columns)


def read_landmark_list(path):
    """(names, landmarks (N, 5, 2) float32, faceness scores float32, line numbers).

    Lines are '<image> x1 y1 ... x5 y5 <detector score>', as ijb*_name_5pts_score.txt.
    """
    rows = []
    for number, fields in _fields(path, 12, 'image_name x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 score'):
        values = [_number(v, float, path, number, 'a landmark coordinate') for v in fields[1:11]]
        score = _number(fields[11], float, path, number, 'the detector score')
        rows.append((fields[0], values, score, number))
    names, landmarks, scores, lines = zip(*_non_empty(path, rows))
    return (list(names), np.array(landmarks, dtype=np.float32).reshape(-1, 5, 2),
            np.array(scores, dtype=np.float32), np.array(lines))


def check_same_images(media_path, media_names, media_lines, list_path, list_names, list_lines):
    """The two files are matched row by row, so they must list the same images in order."""
    if len(media_names) != len(list_names):
        raise ValueError("%s lists %d images but %s lists %d; both must list the same images "
                         "in the same order" % (media_path, len(media_names), list_path,
                                                len(list_names)))
    for i, (a, b) in enumerate(zip(media_names, list_names)):
        if a != b:
            raise ValueError("%s:%d lists image %r where %s:%d lists %r; both must list the same "
                             "images in the same order"
                             % (media_path, media_lines[i], a, list_path, list_lines[i], b))


def check_pair_templates(pair_path, t1, t2, lines, known_templates):
    """Every template of the pair list must have images (the 2019 code silently used template 0)."""
    for column in (t1, t2):
        unknown = ~np.isin(column, known_templates)
        if unknown.any():
            i = int(np.argmax(unknown))
            raise ValueError("%s:%d: template %d has no image in the template/media file"
                             % (pair_path, lines[i], column[i]))


# ---- image features ----

def aligned_faces(image_dir, names, landmarks, list_path, lines):
    """Yield each listed loose crop aligned with its five landmarks to a 112x112 RGB face."""
    for name, landmark, number in zip(names, landmarks, lines):
        path = os.path.join(image_dir, name)
        try:
            img = read_image(path, mode='rgb')
        except OSError as err:
            raise type(err)("%s (listed at %s:%d)" % (err, list_path, number)) from None
        yield preprocess(img, landmark=landmark, image_size='%d,%d' % IMAGE_SIZE)


def extract_features(model, faces, count, batch_size, flip=True, verbose=False):
    """(embeddings of the `count` faces, of their mirror images or None), float32 (N, D) each.

    `model` is bound to batch_size rows, or 2 * batch_size with flip (originals then mirrors);
    a short last batch is padded with black images whose outputs are dropped.
    """
    originals = mirrored = None
    pending = []
    done = 0

    def run():
        nonlocal originals, mirrored, done
        n = len(pending)
        batch = np.zeros((batch_size, 3) + IMAGE_SIZE, dtype=np.float32)
        batch[:n] = np.stack([np.transpose(face, (2, 0, 1)) for face in pending])
        if flip:
            batch = np.concatenate([batch, batch[:, :, :, ::-1]])  # mirror along the width
        model.forward(mx.io.DataBatch(data=(mx.nd.array(batch),)), is_train=False)
        out = model.get_outputs()[0].asnumpy().reshape(len(batch), -1)
        if originals is None:  # allocated once: IJB-C's 469k x 2 x 512 floats take 1.9 GB
            originals = np.zeros((count, out.shape[1]), dtype=np.float32)
            mirrored = np.zeros_like(originals) if flip else None
        originals[done:done + n] = out[:n]
        if flip:
            mirrored[done:done + n] = out[batch_size:batch_size + n]
        done += n
        pending.clear()
        if verbose and done % 10000 < n:
            print('processing', done, 'of', count)

    for face in faces:
        if done + len(pending) == count:
            raise ValueError("more faces than the %d expected" % count)
        pending.append(face)
        if len(pending) == batch_size:
            run()
    if pending:
        run()
    if done != count:
        raise ValueError("expected %d faces to embed, got %d" % (count, done))
    return originals, mirrored


def parse_mode(text):
    """(keep_norm, detector_weight, flip) of a notebook test mode such as 'N1D1F2'.

    N1 keeps the embedding norm (N0 L2-normalises each image); D1 multiplies by the detector
    score; F0 uses the original image only, F1 concatenates original and mirror, F2 adds them.
    """
    match = MODE_PATTERN.match(text)
    if not match:
        raise ValueError("test mode must look like N1D1F2 (N0/N1, D0/D1, F0/F1/F2), got %r"
                         % (text,))
    return bool(int(match.group(1))), bool(int(match.group(2))), int(match.group(3))


def image_inputs(originals, flipped, scores, mode):
    """The per-image features that enter template aggregation under a test mode."""
    keep_norm, detector_weight, flip = parse_mode(mode)
    if flip and flipped is None:
        raise ValueError("test mode %s needs the mirror-image embeddings" % mode)
    if flip == 2:
        feats = originals + flipped
    elif flip == 1:
        feats = np.concatenate([originals, flipped], axis=1)
    else:
        feats = originals
    if not keep_norm:
        feats = feats / np.sqrt(np.sum(feats ** 2, -1, keepdims=True))
    if detector_weight:
        feats = feats * scores[:, np.newaxis]
    return feats


# ---- templates and scores ----

def template_features(feats, templates, medias, verbose=False):
    """(L2-normalised template features float64, sorted template ids).

    A template is the sum over its media of the mean feature of each media's images (a video's
    frames count once), then L2-normalised.
    """
    # One stable sort instead of a scan of all images per template; images keep file order.
    order = np.argsort(templates, kind='stable')
    unique_templates, starts = np.unique(templates[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    template_feats = np.zeros((len(unique_templates), feats.shape[1]))
    for i, (start, end) in enumerate(zip(starts, ends)):
        rows = order[start:end]
        face_feats, face_medias = feats[rows], medias[rows]
        for media in np.unique(face_medias):
            template_feats[i] += np.mean(face_feats[face_medias == media], axis=0)
        if verbose and i % 2000 == 0:
            print('Finish Calculating {} template features.'.format(i))
    norms = np.sqrt(np.sum(template_feats ** 2, -1, keepdims=True))
    if not np.all(norms > 0):
        raise ValueError("template %d has a zero feature (all its images weigh 0) and no "
                         "direction to compare" % unique_templates[int(np.argmin(norms[:, 0]))])
    return template_feats / norms, unique_templates


def pair_scores(template_feats, unique_templates, t1, t2, verbose=False):
    """Cosine similarity of each template pair (template features are unit length)."""
    index1 = np.searchsorted(unique_templates, t1)
    index2 = np.searchsorted(unique_templates, t2)
    scores = np.zeros(len(t1))
    chunks = range(0, len(t1), PAIR_CHUNK)
    for c, start in enumerate(chunks):
        part = slice(start, start + PAIR_CHUNK)
        scores[part] = np.sum(template_feats[index1[part]] * template_feats[index2[part]], -1)
        if verbose and c % 10 == 0:
            print('Finish {}/{} pairs.'.format(c, len(chunks)))
    return scores


def tar_at_far(labels, scores, far_targets=FAR_TARGETS):
    """(TAR at each FAR target, fpr, tpr, AUC) from sklearn's ROC.

    Each target takes the ROC point of nearest FPR; among equally near points, the highest TPR.
    """
    labels = np.asarray(labels)
    if len(np.unique(labels)) != 2:
        raise ValueError("the pair labels must include both genuine (1) and impostor (0) pairs")
    fpr, tpr, _ = roc_curve(labels, scores)
    roc_auc = auc(fpr, tpr)
    # Reversed, the first of equally near points is the one with the highest TPR.
    fpr, tpr = fpr[::-1], tpr[::-1]
    tars = [float(tpr[np.argmin(np.abs(fpr - target))]) for target in far_targets]
    return tars, fpr, tpr, roc_auc


def _centre(text, width):
    """PrettyTable's centring: an odd spare space goes right of odd-length text, else left."""
    spare = width - len(text)
    left = spare // 2
    if spare % 2 and len(text) % 2 == 0:
        left += 1
    return ' ' * left + text + ' ' * (spare - left)


def format_table(rows, far_targets=FAR_TARGETS):
    """The notebooks' TPR@FPR table: one (method, tars) row each, TARs to 4 decimals."""
    header = ['Methods'] + [str(target) for target in far_targets]
    cells = [header] + [[method] + ['%.4f' % tar for tar in tars] for method, tars in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    rule = '+' + '+'.join('-' * (width + 2) for width in widths) + '+'
    lines = ['|' + '|'.join(' %s ' % _centre(cell, width) for cell, width in zip(row, widths))
             + '|' for row in cells]
    return '\n'.join([rule, lines[0], rule] + lines[1:] + [rule])


def plot_roc(curves, path, title):
    """Write a PNG of the ROC curves, one (method, fpr, tpr, auc) each, on the notebooks' axes."""
    # Imported here: only --roc needs matplotlib, and the Agg canvas needs no display.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = colormaps['Set2'](np.linspace(0.0, 1.0, max(len(curves), 1)))
    for colour, (method, fpr, tpr, roc_auc) in zip(colours, curves):
        ax.plot(fpr, tpr, color=colour, lw=1,
                label='[%s (AUC = %0.4f %%)]' % (method.split('-')[-1], roc_auc * 100))
    ax.set_xlim([FAR_TARGETS[0], FAR_TARGETS[-1]])
    ax.set_ylim([0.3, 1.0])
    ax.grid(linestyle='--', linewidth=1)
    ax.set_xscale('log')
    ax.set_xticks(FAR_TARGETS)
    ax.set_yticks(np.linspace(0.3, 1.0, 8, endpoint=True))
    ax.set_xlabel('False Positive Rate')
    ax.set_ylabel('True Positive Rate')
    ax.set_title(title)
    ax.legend(loc='lower right')
    # The temporary name has no .png suffix, so the format is given explicitly.
    atomic_write(path, lambda tmp: fig.savefig(tmp, format='png'))


def save_scores(path, scores):
    """np.save to a temporary name then rename (through a file object: no '.npy' is appended)."""
    def write(tmp):
        with open(tmp, 'wb') as out:
            np.save(out, scores)
    atomic_write(path, write)


def load_scores(path, num_pairs):
    if not os.path.isfile(path):
        raise FileNotFoundError("score file %s does not exist" % path)
    scores = np.load(path)
    if scores.shape != (num_pairs,):
        raise ValueError("%s holds %s scores; the pair list has %d pairs"
                         % (path, scores.shape, num_pairs))
    return scores


# ---- command line ----

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--model', required=True, help="checkpoint as 'prefix,epoch'")
    parser.add_argument('--target', default='IJBC', choices=TARGETS,
                        help='benchmark: reads <data-root>/meta/<target lower-case>_*.txt')
    parser.add_argument('--data-root', default='',
                        help='folder with meta/ and loose_crop/ (default ./<target>)')
    parser.add_argument('--result-dir', default='',
                        help='where <job>-TestMode(<mode>).npy scores go '
                             '(default <data-root>/result)')
    parser.add_argument('--job', default='insightface', help='method name in files and table')
    parser.add_argument('--modes', default='N1D1F2',
                        help='comma-separated test modes: N1 keep feature norms / N0 normalise '
                             'each image; D1 weight by detector score / D0 not; F2 add the '
                             'mirror-image embedding / F1 concatenate it / F0 no flip')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='images per forward (with flip, twice as many rows)')
    parser.add_argument('--gpu', type=int, default=0, help='GPU id; -1 (or no GPU) for the CPU')
    parser.add_argument('--roc', default='', help='also write the ROC curves as a PNG here')
    parser.add_argument('--compare', nargs='*', default=[],
                        help='earlier score .npy files to add to the table and ROC')
    parser.add_argument('--no-fast-prelu', action='store_true',
                        help='on the CPU, keep the saved PReLU ops (outputs are identical)')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be at least 1')
    try:
        args.prefix, args.epoch = parse_model_arg(args.model)
        args.mode_list = [m.strip() for m in args.modes.split(',') if m.strip()]
        for mode in args.mode_list:
            parse_mode(mode)
    except ValueError as err:
        parser.error(str(err))
    if not args.mode_list:
        parser.error('--modes lists no test mode')
    args.data_root = args.data_root or os.path.join('.', args.target)
    args.result_dir = args.result_dir or os.path.join(args.data_root, 'result')
    return args


def main(argv=None):
    args = parse_args(argv)
    meta = os.path.join(args.data_root, 'meta')
    stem = args.target.lower()
    media_path = os.path.join(meta, '%s_face_tid_mid.txt' % stem)
    pair_path = os.path.join(meta, '%s_template_pair_label.txt' % stem)
    list_path = os.path.join(meta, '%s_name_5pts_score.txt' % stem)

    start = time.perf_counter()
    media_names, templates, medias, media_lines = read_template_media(media_path)
    t1, t2, labels, pair_lines = read_template_pairs(pair_path)
    names, landmarks, faceness, list_lines = read_landmark_list(list_path)
    check_same_images(media_path, media_names, media_lines, list_path, names, list_lines)
    check_pair_templates(pair_path, t1, t2, pair_lines, templates)
    print('Time: %.2f s. ' % (time.perf_counter() - start))

    start = time.perf_counter()
    flip = any(parse_mode(mode)[2] for mode in args.mode_list)
    batch_rows = args.batch_size * (2 if flip else 1)
    print('loading', args.prefix, args.epoch)
    model = load_inference_module(args.prefix, args.epoch, gpu_context(args.gpu),
                                  (batch_rows, 3) + IMAGE_SIZE, fast_cpu=not args.no_fast_prelu)
    faces = aligned_faces(os.path.join(args.data_root, 'loose_crop'), names, landmarks,
                          list_path, list_lines)
    originals, flipped = extract_features(model, faces, len(names), args.batch_size,
                                           flip=flip, verbose=True)
    width = originals.shape[1] * (2 if flip else 1)
    print('Time: %.2f s. ' % (time.perf_counter() - start))
    print('Feature Shape: ({} , {}) .'.format(originals.shape[0], width))

    os.makedirs(args.result_dir, exist_ok=True)
    results = []
    for mode in args.mode_list:
        start = time.perf_counter()
        feats = image_inputs(originals, flipped, faceness, mode)
        template_feats, unique_templates = template_features(feats, templates, medias,
                                                             verbose=True)
        scores = pair_scores(template_feats, unique_templates, t1, t2, verbose=True)
        method = '%s-TestMode(%s)' % (args.job, mode)
        save_scores(os.path.join(args.result_dir, method + '.npy'), scores)
        print('Time: %.2f s. ' % (time.perf_counter() - start))
        results.append((method, scores))
    for path in args.compare:
        results.append((os.path.splitext(os.path.basename(path))[0],
                        load_scores(path, len(labels))))

    rows, curves = [], []
    for method, scores in results:
        tars, fpr, tpr, roc_auc = tar_at_far(labels, scores)
        rows.append((method, tars))
        curves.append((method, fpr, tpr, roc_auc))
    print(format_table(rows))
    if args.roc:
        plot_roc(curves, args.roc, 'ROC on IJB-%s' % args.target[-1])
        print('ROC written to', args.roc)
    return 0


if __name__ == '__main__':
    sys.exit(main())
