"""Latency of deploy.face_model per image at batch 1: detection + alignment, embedding, gender-age.

    python deploy/benchmark.py --model ./models/model-r100-ii/model,0 --image face.jpg --gpu -1

Prints one JSON object with the median and mean milliseconds of each step over --runs calls
(after --warmup untimed ones). Without --image only the forward passes are timed, on a random
aligned 112x112 face.
"""
import argparse
import json
import os
import statistics
import time

import cv2
import mxnet as mx
import numpy as np

from deploy.face_model import FaceModel


def build_parser():
    parser = argparse.ArgumentParser(description='face model latency benchmark (JSON output)',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--image-size', default='112,112', help='network input height,width')
    parser.add_argument('--model', default='', help="recognition checkpoint 'prefix,epoch'")
    parser.add_argument('--ga-model', default='', help="gender-age checkpoint 'prefix,epoch'")
    parser.add_argument('--gpu', default=-1, type=int, help='GPU id; -1 for the CPU')
    parser.add_argument('--det', default=0, type=int,
                        help='0: full MTCNN detection; else the image is already a face crop')
    parser.add_argument('--mtcnn-path', default=None, help="a 2019 'mtcnn-model' folder")
    parser.add_argument('--image', default='', help='photo with a face; empty: forward passes only')
    parser.add_argument('--runs', default=100, type=int, help='timed calls per step')
    parser.add_argument('--warmup', default=5, type=int, help='untimed calls per step first')
    return parser


def time_calls(fn, runs, warmup):
    """{'median_ms', 'mean_ms', 'runs'} of fn() over `runs` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return {'median_ms': statistics.median(times), 'mean_ms': statistics.fmean(times), 'runs': runs}


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.model and not args.ga_model:
        raise SystemExit('benchmark.py: give --model and/or --ga-model')
    if args.runs < 1 or args.warmup < 0:
        raise SystemExit('benchmark.py: --runs must be >= 1 and --warmup >= 0')
    model = FaceModel(args)
    result = {'mxnet': mx.__version__, 'omp_num_threads': os.environ.get('OMP_NUM_THREADS'),
              'context': 'cpu' if args.gpu < 0 else 'gpu(%d)' % args.gpu, 'batch_size': 1}
    if args.image:
        img = cv2.imread(args.image)
        if img is None:
            raise SystemExit('benchmark.py: cannot read image %s' % args.image)
        aligned = model.get_input(img)
        if aligned is None:
            raise SystemExit('benchmark.py: no face found in %s' % args.image)
        result['image'] = args.image
        result['get_input'] = time_calls(lambda: model.get_input(img), args.runs, args.warmup)
    else:
        aligned = np.random.RandomState(0).randint(0, 256, (3, 112, 112)).astype(np.uint8)
    if args.model:
        result['get_feature'] = time_calls(lambda: model.get_feature(aligned), args.runs,
                                           args.warmup)
    if args.ga_model:
        result['get_ga'] = time_calls(lambda: model.get_ga(aligned), args.runs, args.warmup)
    print(json.dumps(result, indent=2, sort_keys=True))
    return result


if __name__ == '__main__':
    main()
