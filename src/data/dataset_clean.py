"""Drop the images of each identity that a model finds unlike the rest (2019 dataset cleaning)."""
import argparse
import os
import sys
import types

import numpy as np
from sklearn.cluster import DBSCAN
from tqdm import tqdm

from common import record_io
from common.devices import get_contexts
from common.identity_embedding import cosines_to_mean, image_embeddings, load_model, open_dataset

# The original removed every identity with more images than this, without looking at them.
MAX_IDENTITY_IMAGES = 15
# Mode 2 picks the largest of the DBSCAN clusters numbered below this (as the original).
MAX_CLUSTERS = 10


def kept_images(rows, mode, threshold):
    """Positions (into the normalised embedding rows of one identity) kept, in output order.

    Mode 1: rows whose cosine to the normalised mean is >= threshold, in ascending cosine.
    Other modes: DBSCAN(eps=threshold, min_samples=2); the largest of clusters 0..9 (the first
    on ties), in image order; nothing when every image is noise.
    """
    if mode == 1:
        cosines = cosines_to_mean(rows)
        return [int(i) for i in np.argsort(cosines) if cosines[i] >= threshold]
    clusters = DBSCAN(eps=threshold, min_samples=2).fit_predict(rows)
    best, best_size = 0, 0
    for cluster in range(MAX_CLUSTERS):
        size = int(np.count_nonzero(clusters == cluster))
        if size == 0:
            break
        if size > best_size:
            best, best_size = cluster, size
    return np.flatnonzero(clusters == best).tolist() if best_size else []


def cleaned_records(reader, ranges, model, args, stats):
    """(key, record bytes) of the output in write order: kept images (copied as they are, under
    new keys 1..), identity records, header last. Counts go to `stats` as the records are made."""
    kept_ranges = []
    key = 1
    for count, (identity_key, start, end) in enumerate(tqdm(ranges, unit='id', desc='clean',
                                                            file=sys.stderr), 1):
        if count % 100 == 0:
            print('stat', stats.kept, stats.removed)
        if end - start > MAX_IDENTITY_IMAGES:
            stats.removed += end - start
            stats.large_identities += 1
            continue
        if start == end:
            print('warning: %s: identity record %d has no images; left out'
                  % (reader.rec_path, identity_key), file=sys.stderr)
            continue
        rows = image_embeddings(reader, range(start, end), model, args.batch_size, args.ctx_num)
        kept = kept_images(rows, args.mode, args.threshold)
        stats.removed += (end - start) - len(kept)
        if not kept:
            continue
        stats.kept += len(kept)
        kept_ranges.append((key, key + len(kept)))
        for position in kept:
            # Verbatim: the old id and the old (now stale) label stay in the record.
            yield key, reader.read_raw(start + position)
            key += 1
    first_identity = key
    for range_start, range_end in kept_ranges:
        yield key, record_io.pack_record([range_start, range_end], key, b'')
        key += 1
    yield 0, record_io.pack_record([first_identity, key], 0, b'')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Clean train.rec of --input into --output: identities with more than 15 "
                    "images are removed whole; of the others, mode 1 keeps the images whose "
                    "cosine to the identity's mean embedding is >= --threshold, other modes keep "
                    "the largest DBSCAN cluster (eps = --threshold). Kept records are copied "
                    "unchanged (old labels: run dataset_relabel next); no property file is "
                    "written. GPUs are those in CUDA_VISIBLE_DEVICES (CPU if unset or empty).")
    parser.add_argument('--input', default='', help='dataset folder with train.rec/.idx and '
                                                    'property')
    parser.add_argument('--output', default='', help='output dataset folder')
    parser.add_argument('--model', default='../model/softmax,50',
                        help="embedding checkpoint 'prefix,epoch' (its fc1 output is used)")
    parser.add_argument('--batch-size', default=32, type=int, help='images per forward pass')
    parser.add_argument('--threshold', default=0.6, type=float,
                        help='mode 1: lowest cosine kept; other modes: DBSCAN eps')
    parser.add_argument('--mode', default=1, type=int,
                        help='1: cosine to the mean; anything else: DBSCAN')
    parser.add_argument('--test', default=0, type=int, help='if > 0, count only, write nothing')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.input or (not args.output and args.test <= 0):
        raise SystemExit("dataset_clean: --input and --output are required")
    contexts = get_contexts()
    args.ctx_num = len(contexts)
    reader, ranges, image_size = open_dataset(args.input, 'dataset_clean')
    model = load_model(args.model, args.batch_size, image_size, contexts, tool='dataset_clean')
    stats = types.SimpleNamespace(kept=0, removed=0, large_identities=0)
    records = cleaned_records(reader, ranges, model, args, stats)
    if args.test > 0:
        for _ in records:
            pass
    else:
        os.makedirs(args.output, exist_ok=True)
        record_io.write_keyed_records(os.path.join(args.output, 'train.rec'), records)
    print(stats.kept, stats.removed)
    if stats.large_identities:
        print('note: %d identities had more than %d images and were removed whole'
              % (stats.large_identities, MAX_IDENTITY_IMAGES), file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
