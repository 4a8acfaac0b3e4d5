"""Merges MegaAge and IMDB-WIKI attribute records into flat train/val .rec files of age or gender labels.

    python src/data/age_merge.py --input DIR --output OUT --mode age --lite 1

DIR holds megaage/{train,val}.rec and imdb/{train,val}.rec (each with its .idx); missing ones
are skipped. Source labels: megaage [age, ...] (record 0 is skipped, as a header), imdb
[age, gender, ...]. OUT gets train.rec/.idx and val.rec/.idx, flat (keys 0.., no header), with
the source image bytes and these labels:
  megaage: 100 age bits, bit i = 1 for i < age; ages outside 0..100 are dropped;
  imdb:    [gender] with --mode gender, else 100 age bits (age clamped to 0..100).
--mode age: megaage only when --lite is 1; otherwise megaage train x10 + imdb train, and
megaage val. --mode gender: imdb only. Any other mode: everything, megaage train x10.
"""
import argparse
import os
import uuid

import mxnet as mx
import numpy as np

from common.record_io import pack_record
from recognition.gender_age_iter import FlatRecordReader
from recognition.image_iter import decode_rgb

AGE = 100
DATASETS = ('megaage', 'imdb')
SPLITS = ('train', 'val')


def build_parser():
    parser = argparse.ArgumentParser(description='do dataset merge',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--input', default='', type=str,
                        help='directory with megaage/ and imdb/ train.rec, val.rec')
    parser.add_argument('--output', default='', type=str, help='output directory')
    parser.add_argument('--mode', default='age', type=str, help='age, gender, or anything else')
    parser.add_argument('--lite', default=1, type=int, help='age mode: 1 = megaage only')
    return parser


def repeats(mode, lite, dataset, split):
    """How many times each record of dataset/split is written (0 = skipped)."""
    if mode == 'age':
        if lite and dataset != 'megaage':
            return 0
        if split == 'val' and dataset != 'megaage':
            return 0
        return 10 if (split == 'train' and dataset == 'megaage' and lite == 0) else 1
    if mode == 'gender':
        return 1 if dataset == 'imdb' else 0
    return 10 if (split == 'train' and dataset == 'megaage') else 1


def age_bits(age):
    bits = [0] * AGE
    for a in range(0, age):
        bits[a] = 1
    return bits


def new_label(mode, dataset, label):
    """The output label of one source label, or None to drop the record."""
    values = np.atleast_1d(label)
    age = int(values[0])
    if dataset == 'megaage':
        if age > AGE or age < 0:
            return None
        return age_bits(age)
    gender = int(values[1])
    if mode == 'gender':
        return [gender]
    return age_bits(max(0, min(AGE, age)))


def temporary_name(path):
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, '.%s.%s.tmp' % (name, uuid.uuid4().hex[:8]))


class FlatWriter:
    """A .rec/.idx pair written under temporary names, renamed into place by close()."""

    def __init__(self, rec_path):
        self.rec_path = rec_path
        self.idx_path = rec_path[:-len('.rec')] + '.idx'
        self._tmp_rec = temporary_name(self.rec_path)
        self._tmp_idx = temporary_name(self.idx_path)
        self._record = mx.recordio.MXIndexedRecordIO(self._tmp_idx, self._tmp_rec, 'w')
        self.count = 0

    def write(self, label, data):
        self._record.write_idx(self.count, pack_record(label, self.count, data))
        self.count += 1

    def close(self):
        self._record.close()
        os.replace(self._tmp_rec, self.rec_path)
        os.replace(self._tmp_idx, self.idx_path)

    def abort(self):
        self._record.close()
        for path in (self._tmp_rec, self._tmp_idx):
            if os.path.exists(path):
                os.remove(path)


def merge(input_dir, output_dir, mode='age', lite=1):
    """Write output_dir/{train,val}.rec; returns stat [records read, undecodable]."""
    os.makedirs(output_dir, exist_ok=True)
    writers = {split: FlatWriter(os.path.join(output_dir, '%s.rec' % split)) for split in SPLITS}
    stat = [0, 0]
    try:
        for dataset in DATASETS:
            for split in SPLITS:
                repeat = repeats(mode, lite, dataset, split)
                path = os.path.join(input_dir, dataset, '%s.rec' % split)
                if repeat == 0 or not os.path.exists(path):
                    continue
                with FlatRecordReader(path) as reader:
                    for key in reader.keys:
                        if dataset == 'megaage' and key == 0:
                            continue
                        print('info', dataset, split, key)
                        header, data = reader.read(key)
                        stat[0] += 1
                        try:
                            decode_rgb(data, '%s record %d' % (path, key))
                        except ValueError:
                            stat[1] += 1
                            print('error', dataset, split, key)
                            continue
                        label = new_label(mode, dataset, header.label)
                        if label is None:
                            continue
                        for _ in range(repeat):
                            writers[split].write(label, data)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for writer in writers.values():
        writer.close()
    print('stat', stat)
    return stat


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.output:
        raise SystemExit('age_merge: --output is required')
    merge(args.input, args.output, args.mode, args.lite)


if __name__ == '__main__':
    main()
