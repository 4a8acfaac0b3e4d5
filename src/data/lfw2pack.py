"""Pack an aligned LFW-style tree and its pairs.txt into a verification .bin of raw image bytes."""
import argparse
import os

from common.verification_pack import lfw_pair_paths, read_lfw_pairs, save_pairs_bin


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Package an aligned LFW-style image tree into a verification .bin. Reads "
                    "<data-dir>/pairs.txt (header line, then 'name i j' same-person and "
                    "'name1 i name2 j' different-person lines) and stores the raw bytes of "
                    "<data-dir>/<name>/<name>_<i:04d>.jpg in pairs order; pairs with a missing "
                    "image are skipped and counted.")
    parser.add_argument('--data-dir', required=True,
                        help='aligned LFW tree holding pairs.txt and one folder per person')
    parser.add_argument('--image-size', default='112,96',
                        help='"h,w"; accepted for compatibility with the original and checked, '
                             'but unused: the images are stored as they are on disk')
    parser.add_argument('--output', required=True, help='the .bin file to write')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        [int(v) for v in args.image_size.split(',')]
    except ValueError:
        raise SystemExit("--image-size must be 'h,w' integers, got %r" % args.image_size)
    pairs_path = os.path.join(args.data_dir, 'pairs.txt')
    if not os.path.isfile(pairs_path):
        raise SystemExit("expected the LFW pairs file %s" % pairs_path)

    paths, issame_list = lfw_pair_paths(args.data_dir, read_lfw_pairs(pairs_path), 'jpg')
    bins = []
    for i, path in enumerate(paths, start=1):
        with open(path, 'rb') as f:
            bins.append(f.read())
        if i % 1000 == 0:
            print('loading lfw', i)
    save_pairs_bin(args.output, bins, issame_list)
    print('wrote %d pairs (%d same, %d different) to %s'
          % (len(issame_list), sum(issame_list), len(issame_list) - sum(issame_list), args.output))


if __name__ == '__main__':
    main()
