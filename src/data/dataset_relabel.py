"""Label each image of an identity-structured train.rec with its identity's ordinal (0, 1, ...)."""
import argparse
import os
import sys

from tqdm import tqdm

from common import record_io


def relabelled_records(reader):
    """(key, record bytes) of one dataset in the 2019 order: header, then per identity its record
    and its images, each image re-packed with the scalar label of its identity's ordinal."""
    yield 0, reader.read_raw(0)
    print('header0 label', reader.read(0)[0].label)
    label = -1
    identity_keys = reader.identity_keys()
    for count, identity_key in enumerate(tqdm(identity_keys, unit='id', desc='relabel',
                                              file=sys.stderr), 1):
        if count % 10 == 0:
            print('processing id', count)
        start, end = reader.identity_range(identity_key)
        yield identity_key, reader.read_raw(identity_key)
        label += 1
        for key in range(start, end):
            # Same key and id; the old label floats are dropped with the header.
            yield key, record_io.pack_record(label, key, reader.read(key)[1])
    print('max label', label)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Copy train.rec of --include into --output with every image labelled by "
                    "the 0-based position of its identity (header and identity records copied "
                    "as they are, keys unchanged). No property file is written. Meant for one "
                    "dataset: with several, their keys collide and the last record of each key "
                    "wins, as in the original.")
    parser.add_argument('--include', default='', help='dataset folder(s) with train.rec/.idx, '
                                                      'comma-separated')
    parser.add_argument('--output', default='', help='output dataset folder')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.include or not args.output:
        raise SystemExit("dataset_relabel: --include and --output are required")
    readers = [record_io.RecordReader(os.path.join(folder, 'train.rec'))
               for folder in args.include.split(',')]
    for reader in readers:
        if reader.header is None:
            raise SystemExit("dataset_relabel: %s: record 0 is not a header (flag 0), so there "
                             "are no identities to number" % reader.rec_path)
    if len(readers) > 1:
        print("warning: dataset_relabel: %d datasets in --include: their keys (0 included) "
              "collide and a reader keeps the last record of each key, as in the original"
              % len(readers), file=sys.stderr)
    os.makedirs(args.output, exist_ok=True)
    record_io.write_keyed_records(os.path.join(args.output, 'train.rec'),
                                  (item for reader in readers for item in relabelled_records(reader)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
