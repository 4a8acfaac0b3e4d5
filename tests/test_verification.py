"""verification.py: scoring against a loop reference, old-scipy VAL@FAR, batching, and the CLI."""
import os
import pickle
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest
import sklearn.preprocessing
from scipy.interpolate import BSpline
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold

from common.checkpoint import save_checkpoint
from common.record_io import write_property
from common.verification_pack import save_pairs_bin
from recognition.eval import verification

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------------------------------------
# A straightforward loop implementation of the 2019 scoring, the reference for evaluate()
# ---------------------------------------------------------------------------------------------

def loop_folds(num_pairs, nfolds):
    if nfolds == 1:
        everything = np.arange(num_pairs)
        return [(everything, everything)]
    return list(KFold(n_splits=nfolds, shuffle=False).split(np.arange(num_pairs)))


def loop_rates(threshold, dist, issame):
    accept = dist < threshold
    tp = np.sum(accept & issame)
    fp = np.sum(accept & ~issame)
    tn = np.sum(~accept & ~issame)
    fn = np.sum(~accept & issame)
    tpr = 0 if tp + fn == 0 else float(tp) / float(tp + fn)
    fpr = 0 if fp + tn == 0 else float(fp) / float(fp + tn)
    return tpr, fpr, float(tp + tn) / dist.size


def old_scipy_slinear(far, thresholds, target):
    """scipy <= 1.8 interp1d(far, thresholds, kind='slinear')(target): a k=1 B-spline on the
    knots [far[0], *far, far[-1]], built without any duplicate check."""
    knots = np.r_[far[0], far, far[-1]]
    return float(BSpline.construct_fast(knots, np.asarray(thresholds, float), 1)(target))


def loop_evaluate(embeddings, issame, nfolds, pca=0):
    issame = np.asarray(issame)
    e1, e2 = embeddings[0::2], embeddings[1::2]
    thresholds = np.arange(0, 4, 0.01)
    folds = loop_folds(len(issame), nfolds)
    tprs = np.zeros((nfolds, len(thresholds)))
    fprs = np.zeros((nfolds, len(thresholds)))
    accuracy = np.zeros(nfolds)
    dist = np.sum(np.square(e1 - e2), 1)
    for k, (train, test) in enumerate(folds):
        if pca > 0:
            model = PCA(n_components=pca).fit(np.concatenate((e1[train], e2[train])))
            p1 = sklearn.preprocessing.normalize(model.transform(e1))
            p2 = sklearn.preprocessing.normalize(model.transform(e2))
            dist = np.sum(np.square(p1 - p2), 1)
        acc_train = np.array([loop_rates(t, dist[train], issame[train])[2] for t in thresholds])
        best = np.argmax(acc_train)
        for i, t in enumerate(thresholds):
            tprs[k, i], fprs[k, i], _ = loop_rates(t, dist[test], issame[test])
        accuracy[k] = loop_rates(thresholds[best], dist[test], issame[test])[2]

    dist = np.sum(np.square(e1 - e2), 1)
    thresholds = np.arange(0, 4, 0.001)
    val = np.zeros(nfolds)
    far = np.zeros(nfolds)
    for k, (train, test) in enumerate(folds):
        n_diff = np.sum(~issame[train])
        far_train = np.array([np.sum((dist[train] < t) & ~issame[train]) / n_diff
                              for t in thresholds])
        threshold = 0.0
        if np.max(far_train) >= 1e-3:
            threshold = old_scipy_slinear(far_train, thresholds, 1e-3)
        accept = dist[test] < threshold
        val[k] = np.sum(accept & issame[test]) / np.sum(issame[test])
        far[k] = np.sum(accept & ~issame[test]) / np.sum(~issame[test])
    return np.mean(tprs, 0), np.mean(fprs, 0), accuracy, np.mean(val), np.std(val), np.mean(far)


def tied_pairs(rng, num_pairs):
    """1-D pairs whose distances come from 12 values, half of them exactly a grid threshold, so
    that distances tie with each other, with thresholds, and train accuracies tie too."""
    grid = np.arange(0, 4, 0.01)
    on_grid = [t for t in grid[rng.choice(400, 40, replace=False)] if np.sqrt(t) ** 2 == t][:6]
    levels = np.array(on_grid + list(rng.uniform(0, 4, 12 - len(on_grid))))
    dist = rng.choice(levels, num_pairs)
    embeddings = np.zeros((2 * num_pairs, 1))
    embeddings[1::2, 0] = np.sqrt(dist)
    issame = rng.rand(num_pairs) < 1.0 / (1.0 + dist)  # mostly same when close
    return embeddings, issame


def unit_pairs(rng, num_pairs, dim):
    """Normalised pairs, the same ones noisy copies, a few exact duplicates (distance 0)."""
    issame = rng.rand(num_pairs) < 0.5
    first = rng.randn(num_pairs, dim)
    second = np.where(issame[:, None], first + 0.9 * rng.randn(num_pairs, dim),
                      rng.randn(num_pairs, dim))
    second[:5] = first[:5]
    embeddings = np.empty((2 * num_pairs, dim))
    embeddings[0::2], embeddings[1::2] = first, second
    return sklearn.preprocessing.normalize(embeddings), issame


@pytest.mark.parametrize('nfolds', [10, 7, 1])
@pytest.mark.parametrize('kind', ['tied', 'unit'])
def test_evaluate_equals_loop_reference(kind, nfolds):
    rng = np.random.RandomState(nfolds)
    if kind == 'tied':
        embeddings, issame = tied_pairs(rng, 203)
    else:
        embeddings, issame = unit_pairs(rng, 300, 64)
    got = verification.evaluate(embeddings, list(issame), nrof_folds=nfolds)
    want = loop_evaluate(embeddings, issame, nfolds)
    for name, g, w in zip(['tpr', 'fpr', 'accuracy', 'val', 'val_std', 'far'], got, want):
        np.testing.assert_array_equal(g, w, err_msg=name)
    assert 0.0 < got[2].mean() <= 1.0


def test_evaluate_with_pca_equals_loop_reference():
    rng = np.random.RandomState(3)
    embeddings, issame = unit_pairs(rng, 120, 16)
    got = verification.evaluate(embeddings, issame, nrof_folds=4, pca=6)
    want = loop_evaluate(embeddings, issame, 4, pca=6)
    for name, g, w in zip(['tpr', 'fpr', 'accuracy'], got[:3], want[:3]):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12, err_msg=name)


def test_folds_are_sklearn_kfold_blocks_and_nfolds_1_uses_everything():
    for num_pairs, nfolds in [(23, 7), (600, 10), (10, 10), (11, 2)]:
        for (train, test), (ref_train, ref_test) in zip(verification.fold_splits(num_pairs, nfolds),
                                                        loop_folds(num_pairs, nfolds)):
            np.testing.assert_array_equal(train, ref_train)
            np.testing.assert_array_equal(test, ref_test)
    [(train, test)] = verification.fold_splits(5, 1)
    np.testing.assert_array_equal(train, np.arange(5))
    np.testing.assert_array_equal(test, np.arange(5))
    with pytest.raises(ValueError, match='between 1 and the number of pairs'):
        verification.fold_splits(5, 6)


def test_calculate_roc_picks_the_first_best_threshold_with_strict_comparison():
    # Distances 0.5 (same) and 1.5 (different): every threshold in (0.5, 1.5] is perfect; the
    # smallest is 0.51, since 0.5 itself rejects the same pair (dist < t is strict).
    embeddings = np.array([[0.0], [np.sqrt(0.5)], [0.0], [np.sqrt(1.5)]])
    e1, e2 = embeddings[0::2], embeddings[1::2]
    _, _, accuracy, best = verification.roc_with_thresholds(verification.ROC_THRESHOLDS, e1, e2,
                                                      [True, False], nrof_folds=1)
    assert accuracy[0] == 1.0
    assert best[0] == verification.ROC_THRESHOLDS[51]


# ---------------------------------------------------------------------------------------------
# VAL@FAR: what scipy < 1.9 did with repeated FAR values
# ---------------------------------------------------------------------------------------------

def test_threshold_at_far_hand_computed_with_duplicate_fars():
    far = np.array([0.0, 0.0, 0.0005, 0.0005, 0.002, 0.002, 1.0])
    thresholds = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    # 0.001 lies between the last 0.0005 (threshold 0.3) and the first 0.002 (threshold 0.4):
    # 0.3 + 0.1 * (0.001 - 0.0005) / (0.002 - 0.0005) = 0.3 + 0.1 / 3
    assert verification.threshold_at_far(far, thresholds, 1e-3) == pytest.approx(0.3 + 0.1 / 3,
                                                                               abs=1e-15)
    # A target equal to a repeated FAR takes the threshold of its last occurrence.
    assert verification.threshold_at_far(far, thresholds, 0.0005) == pytest.approx(0.3, abs=1e-15)
    assert verification.threshold_at_far(far, thresholds, 0.0) == pytest.approx(0.1, abs=1e-15)
    for target in [0.0, 0.0001, 0.0005, 0.001, 0.0019, 0.002, 0.5]:
        assert verification.threshold_at_far(far, thresholds, target) == pytest.approx(
            old_scipy_slinear(far, thresholds, target), abs=1e-15)
    # The end: the last threshold (old scipy gave it without, and 0.0 with, a repeated last FAR).
    assert verification.threshold_at_far(far, thresholds, 1.0) == 0.6


def test_threshold_at_far_matches_old_spline_on_random_step_curves():
    rng = np.random.RandomState(0)
    thresholds = np.arange(0, 4, 0.001)
    for _ in range(50):
        n_diff = rng.randint(50, 3000)
        dist = np.sort(rng.uniform(0, 4.5, n_diff))
        far = np.searchsorted(dist, thresholds, side='left') / n_diff
        target = rng.uniform(0, far[-1] * 0.999)
        got = verification.threshold_at_far(far, thresholds, target)
        assert got == pytest.approx(old_scipy_slinear(far, thresholds, target), rel=1e-13)


def test_calculate_val_hand_computed_case_with_repeated_far():
    # 1000 different pairs: one at distance 0.5, the rest at 3.6, so the train FAR is 0 up to
    # t = 0.5, then 1/1000 = 1e-3 (repeated) up to t = 3.6. Old scipy took the *last* threshold
    # with FAR 1e-3, 3.6 - 0.001 = 3.599; interpolating on the first one would give 0.501.
    # 10 same pairs: 5 at 0.2, 3 at 2.0, 2 at 3.7 -> VAL = 8/10 at 3.599, FAR = 1/1000.
    dist = np.array([0.5] + [3.6] * 999 + [0.2] * 5 + [2.0] * 3 + [3.7] * 2)
    issame = np.array([False] * 1000 + [True] * 10)
    e1 = np.zeros((len(dist), 1))
    e2 = np.sqrt(dist)[:, None]
    val, val_std, far = verification.calculate_val(verification.VAL_THRESHOLDS, e1, e2, issame,
                                                   1e-3, nrof_folds=1)
    assert (val, val_std, far) == (0.8, 0.0, 0.001)
    # Never reaching the target: threshold 0 accepts nothing.
    val, _, far = verification.calculate_val(verification.VAL_THRESHOLDS, e1[:1001],
                                             e2[:1001] + 5.0, issame[:1001], 1e-3, nrof_folds=1)
    assert (val, far) == (0.0, 0.0)


# ---------------------------------------------------------------------------------------------
# test(): fixed-shape batches with an overlapping last batch, XNorm, flip-sum
# ---------------------------------------------------------------------------------------------

class RecordingModule:
    """Wraps a Module and records the first data row value and shape of every forward."""

    def __init__(self, module):
        self.module = module
        self.batches = []

    def forward(self, batch, is_train=None):
        assert is_train is False
        self.batches.append((batch.data[0].shape, float(batch.data[0][0, 0, 0, 0].asscalar())))
        self.module.forward(batch, is_train=is_train)

    def get_outputs(self):
        return self.module.get_outputs()


def linear_embedding(weight, training):
    """fc1 = data @ weight.T (+ an fc7/softmax head for the training-style module)."""
    data = mx.sym.Variable('data')
    fc1 = mx.sym.FullyConnected(mx.sym.flatten(data), num_hidden=weight.shape[0], no_bias=True,
                                name='fc1')
    if not training:
        return fc1, {'fc1_weight': mx.nd.array(weight)}
    fc7 = mx.sym.FullyConnected(fc1, num_hidden=3, no_bias=True, name='fc7')
    head = mx.sym.SoftmaxOutput(fc7, name='softmax')
    params = {'fc1_weight': mx.nd.array(weight), 'fc7_weight': mx.nd.ones((3, weight.shape[0]))}
    return mx.sym.Group([fc1, head]), params


@pytest.mark.parametrize('training', [False, True])
def test_test_batches_xnorm_and_flip_sum(training, capsys):
    rng = np.random.RandomState(1)
    num_images, batch_size, shape = 10, 4, (3, 4, 4)
    # Row i starts with the value i, so the recorded first values show which rows were fed.
    images = rng.uniform(0, 255, (num_images,) + shape).astype(np.float32)
    images[:, 0, 0, 0] = np.arange(num_images)
    flipped = images[:, :, :, ::-1].copy()
    flipped[:, 0, 0, 0] = np.arange(num_images)
    issame = [True, False, True, False, True]
    weight = rng.randn(5, int(np.prod(shape)))
    sym, params = linear_embedding(weight, training)
    module = mx.mod.Module(sym, label_names=('softmax_label',) if training else None)
    module.bind(data_shapes=[('data', (batch_size,) + shape)],
                label_shapes=[('softmax_label', (batch_size,))] if training else None,
                for_training=False)
    module.set_params(params, {})
    recorder = RecordingModule(module)
    data_set = ([mx.nd.array(images), mx.nd.array(flipped)], issame)

    acc1, std1, acc2, std2, xnorm, embeddings_list = verification.test(
        data_set, recorder, batch_size, nfolds=5)

    # Batches start at rows 0, 4 and 6 (the last is rows 6..9), all of the bound shape.
    assert recorder.batches == [((4,) + shape, 0.0), ((4,) + shape, 4.0), ((4,) + shape, 6.0)] * 2
    expected = [x.reshape(num_images, -1).astype(np.float64) @ weight.T for x in (images, flipped)]
    for got, want in zip(embeddings_list, expected):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    norms = np.linalg.norm(np.concatenate(expected), axis=1)
    assert xnorm == pytest.approx(norms.mean(), rel=1e-5)
    assert (acc1, std1) == (0.0, 0.0)
    summed = sklearn.preprocessing.normalize(embeddings_list[0] + embeddings_list[1])
    accuracy = verification.evaluate(summed, issame, nrof_folds=5)[2]
    assert (acc2, std2) == (np.mean(accuracy), np.std(accuracy))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'testing verification..'
    assert out[1] == '(10, 5)'
    assert out[2].startswith('infer time ')


def test_test_rejects_a_batch_larger_than_the_set():
    data = mx.nd.zeros((4, 3, 2, 2))
    with pytest.raises(ValueError, match='batch size 8 is larger than the 4 images'):
        verification.test(([data, data], [True, False]), None, 8)


# ---------------------------------------------------------------------------------------------
# The command line, end to end on a tiny checkpoint and a tiny .bin
# ---------------------------------------------------------------------------------------------

SIZE = 16
EMB = 8


def make_tiny_data(directory, num_pairs=20):
    """Smooth random 16x16 PNG faces: same pairs are noisy copies; the last 2 labels are wrong."""
    rng = np.random.RandomState(5)
    bins, issame, images = [], [], []
    for k in range(num_pairs):
        same = k % 2 == 0
        a = cv2.resize(rng.randint(0, 256, (4, 4, 3)).astype(np.uint8), (SIZE, SIZE))
        b = cv2.resize(rng.randint(0, 256, (4, 4, 3)).astype(np.uint8), (SIZE, SIZE))
        if same:
            b = np.clip(a.astype(int) + rng.randint(-10, 11, a.shape), 0, 255).astype(np.uint8)
        for img in (a, b):
            bins.append(cv2.imencode('.png', img)[1].tobytes())
            images.append(img[:, :, ::-1].transpose(2, 0, 1).astype(np.float64))  # RGB CHW
        issame.append(same if k < num_pairs - 2 else not same)
    save_pairs_bin(os.path.join(directory, 'lfw.bin'), bins, issame)
    write_property(directory, 10, (SIZE, SIZE))
    return np.stack(images), issame


def make_tiny_checkpoints(prefix, epochs):
    """fc1 = FullyConnected((data - 127.5) / 128) with a different random weight per epoch."""
    data = mx.sym.Variable('data')
    body = (data - 127.5) * 0.0078125
    fc1 = mx.sym.FullyConnected(mx.sym.flatten(body), num_hidden=EMB, name='fc1')
    sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(fc1, num_hidden=10, name='fc7'),
                               name='softmax')
    weights = {}
    for epoch in epochs:
        rng = np.random.RandomState(epoch)
        weights[epoch] = (rng.randn(EMB, 3 * SIZE * SIZE) * 0.05, rng.randn(EMB) * 0.1)
        args = {'fc1_weight': mx.nd.array(weights[epoch][0]),
                'fc1_bias': mx.nd.array(weights[epoch][1]),
                'fc7_weight': mx.nd.zeros((10, EMB)), 'fc7_bias': mx.nd.zeros((10,))}
        save_checkpoint(prefix, epoch, sym, args, {})
    return weights


def expected_accuracy(images, issame, weight, bias, nfolds):
    def embed(x):
        return ((x - 127.5) * 0.0078125).reshape(len(x), -1) @ weight.T + bias
    summed = sklearn.preprocessing.normalize(embed(images) + embed(images[:, :, :, ::-1]))
    accuracy = verification.evaluate(summed, issame, nrof_folds=nfolds)[2]
    return np.mean(accuracy), np.std(accuracy)


@pytest.fixture
def tiny_setup(tmp_path):
    images, issame = make_tiny_data(str(tmp_path))
    prefix = str(tmp_path / 'model')
    weights = make_tiny_checkpoints(prefix, [1, 2, 3])
    return str(tmp_path), prefix, images, issame, weights


def test_cli_mode0_prints_the_original_lines_and_writes_a_roc_png(tiny_setup, capsys):
    data_dir, prefix, images, issame, weights = tiny_setup
    roc = os.path.join(data_dir, 'roc.png')
    verification.main(['--data-dir', data_dir, '--model', prefix + ',1|3', '--target',
                       'lfw,agedb_30', '--gpu', '-1', '--batch-size', '16', '--nfolds', '5',
                       '--roc', roc])
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ['image_size [16, 16]', 'model number 2', 'loading %s 1' % prefix,
                         'loading %s 3' % prefix]
    assert lines[4].startswith('model loading time ')
    assert lines[5] == 'loading..  lfw'
    assert 'loading..  agedb_30' not in lines  # no agedb_30.bin: skipped
    accs = []
    for epoch in (1, 3):
        acc, std = expected_accuracy(images, issame, *weights[epoch], nfolds=5)
        accs.append(acc)
        assert '[lfw]Accuracy-Flip: %1.5f+-%1.5f' % (acc, std) in lines
    assert lines.count('[lfw]Accuracy: 0.00000+-0.00000') == 2
    assert sum(line.startswith('[lfw]XNorm: ') for line in lines) == 2
    assert sum(line.startswith('[lfw]VAL@FAR=0.001: ') for line in lines) == 2
    assert sum(line.startswith('[lfw]Threshold: ') for line in lines) == 2
    assert 'Max of [lfw] is %1.5f' % max(accs) in lines
    png = cv2.imread(roc)
    assert png is not None and png.shape[0] >= 300 and png.shape[1] >= 400
    assert len(np.unique(png.reshape(-1, 3), axis=0)) > 20  # axes, curves and text were drawn


def test_cli_scans_epochs_newest_first_and_applies_max(tiny_setup, capsys):
    data_dir, prefix, _, _, _ = tiny_setup
    verification.main(['--data-dir', data_dir, '--model', prefix, '--target', 'lfw',
                       '--gpu', '-1', '--batch-size', '40', '--max', '0,2'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:4] == ['model number 2', 'loading %s 3' % prefix, 'loading %s 2' % prefix]
    # --max applies only when more than b epochs exist: 3 epochs, b = 3 keeps all of them.
    verification.main(['--data-dir', data_dir, '--model', prefix, '--target', 'lfw',
                       '--gpu', '-1', '--max', '0,3'])
    assert 'model number 3' in capsys.readouterr().out


def test_cli_rejects_a_batch_larger_than_the_set(tiny_setup, capsys):
    data_dir, prefix, _, _, _ = tiny_setup
    with pytest.raises(SystemExit) as exit_info:
        verification.main(['--data-dir', data_dir, '--model', prefix + ',1', '--target', 'lfw',
                           '--gpu', '-1', '--batch-size', '41'])
    assert exit_info.value.code == 2
    assert '--batch-size 41 is larger than the 40 images of lfw.bin' in capsys.readouterr().err


def test_cli_mode1_badcases_and_mode2_dump(tiny_setup, monkeypatch, capsys):
    data_dir, prefix, images, issame, weights = tiny_setup
    monkeypatch.chdir(data_dir)
    common = ['--data-dir', data_dir, '--model', prefix + ',2', '--target', 'lfw', '--gpu', '-1',
              '--batch-size', '8']
    verification.main(common + ['--mode', '1'])
    out = capsys.readouterr().out
    assert 'testing verification badcase..' in out
    written = sorted(os.listdir(os.path.join(data_dir, 'badcases')))
    assert written and all(name.startswith('lfw_') and name.endswith(').png') for name in written)
    grid = cv2.imread(os.path.join(data_dir, 'badcases', written[0]))
    assert grid.shape[1] == 4 * 2 * SIZE + 3 * 10 and (grid.shape[0] - 20) % SIZE == 0

    verification.main(common + ['--mode', '2'])
    with open(os.path.join(data_dir, 'temp.bin'), 'rb') as f:
        embeddings, dumped_issame = pickle.load(f)
    assert dumped_issame == issame
    assert embeddings.shape == (40, EMB)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-12)


def test_script_runs_without_path_tricks():
    result = subprocess.run([sys.executable, os.path.join('recognition', 'eval', 'verification.py'),
                             '--help'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '--roc' in result.stdout and '--data-dir' in result.stdout


def test_2019_scoring_helpers_keep_their_names_and_returns():
    """Scripts written against the 2019 module still get (tpr, fpr, accuracy) and the helpers."""
    from sklearn.model_selection import KFold
    rng = np.random.RandomState(4)
    e1, e2 = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 /= np.linalg.norm(e2, axis=1, keepdims=True)
    issame = rng.rand(20) > 0.5
    roc = verification.calculate_roc(verification.ROC_THRESHOLDS, e1, e2, issame, nrof_folds=5)
    full = verification.roc_with_thresholds(verification.ROC_THRESHOLDS, e1, e2, issame, nrof_folds=5)
    assert len(roc) == 3
    for got, expected in zip(roc, full[:3]):
        np.testing.assert_array_equal(got, expected)
    dist = ((e1 - e2) ** 2).sum(1)
    threshold = 1.3
    predict = dist < threshold
    tp, fp = (predict & issame).sum(), (predict & ~issame).sum()
    tpr, fpr, acc = verification.calculate_accuracy(threshold, dist, issame)
    assert (tpr, fpr) == (tp / issame.sum(), fp / (~issame).sum())
    assert acc == (tp + (~predict & ~issame).sum()) / 20.0
    assert verification.calculate_val_far(threshold, dist, issame) == (tpr, fpr)
    for n_splits in (3, 7):
        ours = verification.LFold(n_splits=n_splits).split(np.arange(20))
        for (train, test), (k_train, k_test) in zip(ours, KFold(n_splits=n_splits).split(np.arange(20))):
            np.testing.assert_array_equal(train, k_train)
            np.testing.assert_array_equal(test, k_test)
    (train, test), = verification.LFold(n_splits=1).split(np.arange(20))
    assert list(train) == list(test) == list(range(20))
