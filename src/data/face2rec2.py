"""Pack the images listed in PREFIX*.lst files into identity-structured .rec/.idx training files."""
import argparse
import collections
import functools
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from common import face_preprocess, record_io

# Lines handed to the worker pool at a time: bounds memory on lists of millions of lines.


def str2bool(text):
    """'1', 'true', 'yes' -> True; '0', 'false', 'no', '' -> False."""
    value = text.strip().lower()
    if value in ('1', 'true', 'yes', 'y'):
        return True
    if value in ('0', 'false', 'no', 'n', ''):
        return False
    raise argparse.ArgumentTypeError("expected a boolean (1/0, true/false), got %r" % text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="For every PREFIX*.lst in the folder of PREFIX (or in PREFIX if it is a "
                    "folder) write NAME.rec and NAME.idx beside it: image records 1..N with "
                    "label [label, aligned], header record 0 and one identity record per run "
                    "of equal labels. The face size comes from the folder's 'property' file "
                    "(num_classes,H,W) or from --image-size.")
    parser.add_argument('prefix', help='prefix of the input .lst and output .rec/.idx files')
    unused = parser.add_argument_group('accepted for compatibility with the original, unused')
    unused.add_argument('--list', type=str2bool, default=False,
                        help='the original did nothing at all when this was set; so does this port')
    unused.add_argument('--exts', nargs='+', default=['.jpeg', '.jpg'], help='unused')
    unused.add_argument('--chunks', type=int, default=1, help='unused')
    unused.add_argument('--train-ratio', type=float, default=1.0, help='unused')
    unused.add_argument('--test-ratio', type=float, default=0, help='unused')
    unused.add_argument('--recursive', type=str2bool, default=False, help='unused')
    unused.add_argument('--shuffle', type=str2bool, default=True, help='unused')
    unused.add_argument('--pack-label', type=str2bool, default=False, help='unused')
    group = parser.add_argument_group('options for creating the record files')
    group.add_argument('--quality', type=int, default=95,
                       help='JPEG quality 1-100, or PNG compression 0-9, for re-encoded faces')
    group.add_argument('--num-thread', type=int, default=1,
                       help='worker processes for reading and aligning; the output is the same '
                            'for any value')
    group.add_argument('--color', type=int, default=1, choices=[-1, 0, 1],
                       help='cv2.imread flag for aligned=0 images: 1 colour, 0 grey, -1 unchanged')
    group.add_argument('--encoding', type=str, default='.jpg', choices=['.jpg', '.png'],
                       help='encoding of re-encoded (aligned=0) faces')
    group.add_argument('--image-size', default='',
                       help="face size 'H,W' (e.g. 112,112); replaces the property file")
    args = parser.parse_args(argv)
    args.prefix = os.path.abspath(args.prefix)
    return args


def read_list(lst_path):
    """Yield (line number, aligned, path, label, bbox, landmark) for each non-blank .lst line."""
    with open(lst_path) as fin:
        for line_no, line in enumerate(fin, 1):
            if not line.strip():
                continue
            where = '%s:%d' % (lst_path, line_no)
            yield (line_no,) + record_io.parse_lst_line(line, where=where)


def encode_item(item, image_size, color, quality, encoding):
    """Encode one .lst item -> (bytes or None, kind, message).

    kind is 'raw' (aligned=1: the file's own bytes), 'aligned' (aligned=0, warped with its
    landmarks), 'cropped' (aligned=0 without landmarks: bbox or centre-box crop) or 'skipped'
    (missing or unreadable image; message says why).
    """
    _, aligned, path, _, bbox, landmark = item
    if not os.path.isfile(path):
        return None, 'skipped', 'image %s does not exist' % path
    if aligned:
        with open(path, 'rb') as fin:
            data = fin.read()
        # Stored as is, but a file the trainer cannot decode would only fail much later.
        if cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED) is None:
            return None, 'skipped', 'image %s cannot be decoded' % path
        return data, 'raw', ''
    data, problem = record_io.align_and_encode(path, bbox, landmark, image_size, color, quality,
                                               encoding)
    if data is None:
        return None, 'skipped', 'image %s %s' % (path, problem)
    return data, ('aligned' if landmark is not None else 'cropped'), ''


def count_lines(path):
    with open(path) as fin:
        return sum(1 for line in fin if line.strip())


def pack_list(lst_path, working_dir, image_size, args):
    """Write working_dir/NAME.rec/.idx for NAME.lst; returns the per-kind counts."""
    stem = os.path.splitext(os.path.basename(lst_path))[0]
    rec_path = os.path.join(working_dir, stem + '.rec')
    encode = functools.partial(encode_item, image_size=image_size, color=args.color,
                               quality=args.quality, encoding=args.encoding)
    counts = collections.Counter()
    items = read_list(lst_path)
    with record_io.IdentityRecordWriter(rec_path) as writer, \
            tqdm(total=count_lines(lst_path), unit='img', desc=stem) as bar:
        for item, (data, kind, message) in record_io.map_in_order(items, encode, args.num_thread):
            counts[kind] += 1
            bar.update()
            if data is None:
                tqdm.write('warning: %s:%d: %s; line skipped' % (lst_path, item[0], message),
                           file=sys.stderr)
                continue
            _, aligned, _, label = item[:4]
            writer.add_image(data, label, aligned=aligned)
        num_images, num_identities = writer.num_images, writer.num_identities
    print('wrote %s: %d images, %d identities' % (rec_path, num_images, num_identities))
    print('  stored as is (aligned=1): %d, aligned with landmarks: %d, cropped without landmarks '
          '(aligned=0, no landmarks; the original dropped these): %d, skipped (missing or '
          'unreadable): %d' % (counts['raw'], counts['aligned'], counts['cropped'],
                               counts['skipped']))
    return counts


def main(argv=None):
    args = parse_args(argv)
    if args.list:
        print('--list is set: the original made no list and no record file either; nothing done')
        return 0
    working_dir = args.prefix if os.path.isdir(args.prefix) else os.path.dirname(args.prefix)
    if args.image_size:
        image_size = face_preprocess.parse_image_size(args.image_size)
    else:
        try:
            image_size = list(record_io.read_property(working_dir).image_size)
        except FileNotFoundError:
            raise SystemExit("face2rec2: no property file in %s. Create it with the single line "
                             "'num_classes,height,width', e.g. printf 10575,112,112 > %s, or "
                             "pass --image-size 112,112"
                             % (working_dir, os.path.join(working_dir, 'property'))) from None
    print('image_size', image_size)
    lst_files = sorted(os.path.join(working_dir, name) for name in os.listdir(working_dir))
    lst_files = [path for path in lst_files if os.path.isfile(path)
                 and path.startswith(args.prefix) and path.endswith('.lst')]
    for lst_path in lst_files:
        print('Creating .rec file from', lst_path, 'in', working_dir)
        pack_list(lst_path, working_dir, image_size, args)
    if not lst_files:
        print('Did not find any list file with prefix %s' % args.prefix)
    return 0


if __name__ == '__main__':
    sys.exit(main())
