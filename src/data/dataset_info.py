"""Print the header of a train.rec (identities, images) and, with --check, verify the whole file."""
import argparse
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from common import record_io

# Enough problem lines to see what is wrong without flooding the terminal.
MAX_PRINTED_PROBLEMS = 50


def check_dataset(data_dir, progress=True):
    """All problems found in data_dir/train.rec, .idx and property, as messages; [] if none.

    Checks record 0, every identity range (present, inside the image keys, no key in two
    identities, every image in one), every image record (readable, decodable, size as in the
    property, an integer label shared by its identity) and the property's num_classes against
    the labels.
    """
    rec_path = os.path.join(data_dir, 'train.rec')
    try:
        reader = record_io.RecordReader(rec_path)
    except (OSError, record_io.RecordFormatError) as err:
        return [str(err)]
    problems = []
    try:
        prop = record_io.read_property(data_dir)
    except (OSError, record_io.RecordFormatError) as err:
        problems.append(str(err))
        prop = None
    if reader.header is None:
        problems.append("%s: record 0 has flag 0, so it is not a header: the file has no "
                        "identity records" % rec_path)
        return problems
    first_identity, end_identity = reader.header
    if first_identity < 1:
        problems.append("%s: header record 0 puts the identities at keys [%d, %d); image keys "
                        "start at 1, so the first identity key must be at least 1"
                        % (rec_path, first_identity, end_identity))
        return problems

    # owner[key] = identity record holding image key (0 = none yet), for keys 1..first-1.
    owner = np.zeros(first_identity, dtype=np.int64)
    for identity_key in range(first_identity, end_identity):
        try:
            start, end = reader.identity_range(identity_key)
        except record_io.RecordFormatError as err:
            problems.append(str(err))
            continue
        if start < 1 or end > first_identity:
            problems.append("%s: identity record %d has range [%d, %d), outside the image keys "
                            "1..%d" % (rec_path, identity_key, start, end, first_identity - 1))
            continue
        for key in range(start, end):
            if owner[key]:
                problems.append("%s: image record %d is in identity records %d and %d"
                                % (rec_path, key, owner[key], identity_key))
        owner[start:end] = identity_key

    identity_labels = {}
    labels = []
    for key in tqdm(range(1, first_identity), unit='img', desc='checking', disable=not progress):
        if key not in reader:
            problems.append("%s: no image record %d, although header record 0 says images are "
                            "keys 1..%d" % (rec_path, key, first_identity - 1))
            continue
        if not owner[key]:
            problems.append("%s: image record %d belongs to no identity record" % (rec_path, key))
        try:
            label, data = reader.read_image(key)
        except record_io.RecordFormatError as err:
            problems.append(str(err))
            continue
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            problems.append("%s: image record %d (%d bytes) cannot be decoded"
                            % (rec_path, key, len(data)))
        elif prop is not None and tuple(img.shape[:2]) != tuple(prop.image_size):
            problems.append("%s: image record %d is %dx%d (HxW) but %s says %dx%d"
                            % (rec_path, key, img.shape[0], img.shape[1],
                               os.path.join(data_dir, 'property'), *prop.image_size))
        if label != int(label) or label < 0:
            problems.append("%s: image record %d has label %r, expected an integer >= 0"
                            % (rec_path, key, label))
            continue
        labels.append(int(label))
        if owner[key]:
            expected = identity_labels.setdefault(owner[key], int(label))
            if expected != int(label):
                problems.append("%s: image record %d has label %d but the other images of its "
                                "identity record %d have label %d"
                                % (rec_path, key, label, owner[key], expected))

    if prop is not None and labels:
        property_path = os.path.join(data_dir, 'property')
        max_label = max(labels)
        if max_label >= prop.num_classes:
            problems.append("%s: image record %d has label %d, but %s says num_classes = %d"
                            % (rec_path, 1 + labels.index(max_label), max_label, property_path,
                               prop.num_classes))
        elif max_label + 1 != prop.num_classes:
            problems.append("%s says num_classes = %d, but the labels in %s go up to %d "
                            "(%d classes)" % (property_path, prop.num_classes, rec_path,
                                              max_label, max_label + 1))
    return problems


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Print 'header0 label', 'identities' and 'images' of INPUT/train.rec as the "
                    "original did ('images' is the first identity key, one more than the number "
                    "of images). With --check, verify every record and exit 1 on any problem.")
    parser.add_argument('--input', required=True,
                        help='folder with train.rec, train.idx and property')
    parser.add_argument('--check', action='store_true',
                        help='check header, identity ranges, every image and the property file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.check:
        problems = check_dataset(args.input)
        for message in problems[:MAX_PRINTED_PROBLEMS]:
            print('problem:', message)
        if len(problems) > MAX_PRINTED_PROBLEMS:
            print('... and %d more problems' % (len(problems) - MAX_PRINTED_PROBLEMS))
        if problems:
            print('%d problems found in %s' % (len(problems), args.input))
            return 1
        print('no problems found in %s' % args.input)
    reader = record_io.RecordReader(os.path.join(args.input, 'train.rec'))
    if reader.header is None:
        raise SystemExit("dataset_info: %s: record 0 has flag 0, so it is not a header"
                         % reader.rec_path)
    print('header0 label', reader.read(0)[0].label)
    first_identity, end_identity = reader.header
    print('identities', end_identity - first_identity)
    # Kept from the original: this is the first identity key, one more than the image count.
    print('images', first_identity)
    return 0


if __name__ == '__main__':
    sys.exit(main())
