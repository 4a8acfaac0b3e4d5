"""List the faces of Glint landmark files (DS_lmk) as a .lst of unaligned images for face2rec2."""
import argparse
import os
import sys

import numpy as np

from common import record_io

# Tried in this order in INPUT_DIR for each target DS, as in 2019.
LANDMARK_FILE_PATTERNS = ('%s_lmk', '%s_lmk.txt')
# relpath label x1 y1 ... x5 y5 (training set) / relpath x1 y1 ... x5 y5 (test set).
TRAIN_FIELDS = 12
TEST_FIELDS = 11
# What test-set lines get as label, as in 2019.
TEST_LABEL = -1


def find_landmark_file(input_dir, target):
    """INPUT_DIR/TARGET_lmk, else INPUT_DIR/TARGET_lmk.txt, else None."""
    for pattern in LANDMARK_FILE_PATTERNS:
        path = os.path.join(input_dir, pattern % target)
        if os.path.isfile(path):
            return path
    return None


def read_landmark_file(lmk_path, input_dir, label_map):
    """Yield (image path, label, 5x2 float32 landmark) for each line of one landmark file.

    Training lines get their label through label_map (original label -> 0.., in order of first
    appearance; the caller shares it across targets); test lines get TEST_LABEL. The landmark
    file interleaves x and y; the rows of `landmark` are the (x, y) points.
    """
    with open(lmk_path) as fin:
        for line_no, line in enumerate(fin, 1):
            fields = line.split()
            if not fields:
                continue
            where = '%s:%d' % (lmk_path, line_no)
            if len(fields) not in (TRAIN_FIELDS, TEST_FIELDS):
                raise SystemExit("glint2lst: %s: expected %d space-separated fields "
                                 "'relpath label x1 y1 ... x5 y5' or %d fields "
                                 "'relpath x1 y1 ... x5 y5', got %d"
                                 % (where, TRAIN_FIELDS, TEST_FIELDS, len(fields)))
            relpath = fields[0]
            if not relpath.endswith('.jpg'):
                raise SystemExit("glint2lst: %s: expected an image path ending in .jpg, got %r"
                                 % (where, relpath))
            label = TEST_LABEL
            if len(fields) == TRAIN_FIELDS:
                try:
                    original_label = int(fields[1])
                except ValueError:
                    raise SystemExit("glint2lst: %s: expected an integer label in field 2, "
                                     "got %r" % (where, fields[1])) from None
                label = label_map.setdefault(original_label, len(label_map))
            try:
                landmark = np.array([float(v) for v in fields[-10:]], dtype=np.float32)
            except ValueError as err:
                raise SystemExit("glint2lst: %s: expected 10 landmark numbers x1 y1 ... x5 y5: "
                                 "%s" % (where, err)) from None
            if not np.all(np.isfinite(landmark)):
                raise SystemExit("glint2lst: %s: landmark coordinates must be finite numbers, "
                                 "got %s" % (where, ' '.join(fields[-10:])))
            yield os.path.join(input_dir, relpath), label, landmark.reshape((5, 2))


def format_line(path, label, landmark):
    """'0<TAB>path<TAB>label<TAB>0 0 0 0 bbox<TAB>x1..x5<TAB>y1..y5', floats as str(float32).

    str of a float32 (as 2019 printed them) is the shortest text that reads back to the same
    float32, e.g. 38.2946 rather than 38.29460144042969.
    """
    prefix = record_io.format_lst_line(0, path, label, bbox=(0, 0, 0, 0))
    coords = np.concatenate([landmark[:, 0], landmark[:, 1]])
    return prefix + '\t' + '\t'.join(str(value) for value in coords)


def list_targets(input_dir, landmark_files):
    """Yield the .lst lines (without newline) of all landmark files, labels shared across them."""
    label_map = {}
    for lmk_path in landmark_files:
        for path, label, landmark in read_landmark_file(lmk_path, input_dir, label_map):
            yield format_line(path, label, landmark)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="For each target DS read INPUT_DIR/DS_lmk (or DS_lmk.txt), lines 'relpath "
                    "label x1 y1 ... x5 y5' (training) or 'relpath x1 y1 ... x5 y5' (test, "
                    "label -1), and write a .lst line '0<TAB>INPUT_DIR/relpath<TAB>label<TAB>"
                    "0<TAB>0<TAB>0<TAB>0<TAB>x1..x5<TAB>y1..y5' per face for face2rec2.py. "
                    "Labels are renumbered 0.. in order of first appearance over all targets.")
    parser.add_argument('input_dir', help='folder with the landmark files; image paths are '
                                          'relative to it')
    parser.add_argument('targets', help='comma-separated dataset names, e.g. celebrity,asian')
    parser.add_argument('--output', default='',
                        help='write the list to this file instead of standard output')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.input_dir):
        raise SystemExit("glint2lst: input folder %s does not exist" % args.input_dir)
    targets = [name for name in args.targets.strip().split(',') if name]
    landmark_files = []
    for target in targets:
        lmk_path = find_landmark_file(args.input_dir, target)
        if lmk_path is None:
            # 2019 skipped these silently; a typo in a target name should not go unnoticed.
            tried = ' or '.join(os.path.join(args.input_dir, pattern % target)
                                for pattern in LANDMARK_FILE_PATTERNS)
            print("glint2lst: warning: no landmark file %s; target %r skipped" % (tried, target),
                  file=sys.stderr)
            continue
        landmark_files.append(lmk_path)
    if not landmark_files:
        raise SystemExit("glint2lst: none of the targets %r has a landmark file DS_lmk or "
                         "DS_lmk.txt in %s" % (args.targets, args.input_dir))
    record_io.write_lst(list_targets(args.input_dir, landmark_files), args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
