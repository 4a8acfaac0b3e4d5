"""Seconds of verification.evaluate on random pairs vs a per-threshold loop like 2019's; JSON."""
import argparse
import json
import os
import time

import numpy as np
import sklearn.preprocessing
from scipy.interpolate import BSpline
from sklearn.model_selection import KFold

from recognition.eval import verification


def random_pairs(num_pairs, dim, seed=0):
    """Unit embeddings (2 rows per pair); same pairs are very noisy copies (~92% accuracy)."""
    rng = np.random.RandomState(seed)
    issame = rng.rand(num_pairs) < 0.5
    first = rng.randn(num_pairs, dim)
    noisy_copy = first + 8.0 * rng.randn(num_pairs, dim)
    second = np.where(issame[:, None], noisy_copy, rng.randn(num_pairs, dim))
    embeddings = np.empty((2 * num_pairs, dim))
    embeddings[0::2], embeddings[1::2] = first, second
    return sklearn.preprocessing.normalize(embeddings), issame


def loop_evaluate(embeddings, issame, nfolds):
    """The 2019 algorithm threshold by threshold (with its old-scipy VAL@FAR interpolation)."""
    e1, e2 = embeddings[0::2], embeddings[1::2]
    dist = np.sum(np.square(e1 - e2), 1)
    folds = list(KFold(n_splits=nfolds, shuffle=False).split(np.arange(len(issame))))

    def accuracy(t, d, same):
        accept = d < t
        return float(np.sum(accept & same) + np.sum(~accept & ~same)) / d.size

    thresholds = np.arange(0, 4, 0.01)
    accuracies = []
    for train, test in folds:
        best = np.argmax([accuracy(t, dist[train], issame[train]) for t in thresholds])
        for t in thresholds:  # the test-fold ROC points the original computes too
            accuracy(t, dist[test], issame[test])
        accuracies.append(accuracy(thresholds[best], dist[test], issame[test]))

    thresholds = np.arange(0, 4, 0.001)
    vals = []
    for train, test in folds:
        d, same = dist[train], issame[train]
        far = np.array([np.sum((d < t) & ~same) / np.sum(~same) for t in thresholds])
        spline = BSpline.construct_fast(np.r_[far[0], far, far[-1]], thresholds, 1)
        threshold = float(spline(1e-3)) if far.max() >= 1e-3 else 0.0
        vals.append(np.sum((dist[test] < threshold) & issame[test]) / np.sum(issame[test]))
    return np.mean(accuracies), np.mean(vals)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--pairs', type=int, default=6000)
    parser.add_argument('--dim', type=int, default=512)
    parser.add_argument('--nfolds', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args(argv)
    embeddings, issame = random_pairs(args.pairs, args.dim)

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = verification.evaluate(embeddings, issame, nrof_folds=args.nfolds)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    loop_accuracy, loop_val = loop_evaluate(embeddings, issame, args.nfolds)
    loop_seconds = time.perf_counter() - start

    print(json.dumps({
        'benchmark': 'verification_evaluate', 'pairs': args.pairs, 'dim': args.dim,
        'nfolds': args.nfolds, 'cores': os.cpu_count(),
        'evaluate_seconds_best': round(min(times), 4),
        'loop_reference_seconds': round(loop_seconds, 4),
        'speedup': round(loop_seconds / min(times), 1),
        'accuracy': float(np.mean(result[2])), 'val_at_far_1e-3': float(result[3]),
        'same_as_loop': bool(np.mean(result[2]) == loop_accuracy and result[3] == loop_val),
    }))


if __name__ == '__main__':
    main()
