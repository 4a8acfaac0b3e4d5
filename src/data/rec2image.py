"""Unpack identity-structured train.rec files into one folder of JPEG images per identity."""
import argparse
import os
import shutil
import sys

import cv2
import mxnet as mx

from common import record_io


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write OUTPUT/{d}_{k}/{n}.jpg for image n of identity record k of dataset d "
                    "(d = position in --include). Folders are named by identity record key, "
                    "not by label, as in the original.")
    parser.add_argument('--include', default='',
                        help='comma-separated folders, each holding train.rec and train.idx')
    parser.add_argument('--output', default='', help='folder to write the images into')
    return parser.parse_args(argv)


def export_identity(reader, identity_key, out_dir):
    """Decode the images of one identity into out_dir/0.jpg, 1.jpg, ... (JPEG quality 95)."""
    start, end = reader.identity_range(identity_key)
    for number, key in enumerate(range(start, end)):
        _, data = reader.read_image(key)
        try:
            # The trainer's decoder (RGB), flipped back to BGR for cv2.imwrite, as the original.
            img = mx.image.imdecode(data).asnumpy()[:, :, ::-1]
        except mx.base.MXNetError:
            raise record_io.RecordFormatError("%s: image record %d cannot be decoded"
                                              % (reader.rec_path, key)) from None
        path = os.path.join(out_dir, '%d.jpg' % number)
        if not cv2.imwrite(path, img):
            raise OSError("could not write %s" % path)


def main(argv=None):
    args = parse_args(argv)
    if not args.include or not args.output:
        raise SystemExit("rec2image: --include and --output are required")
    readers = [record_io.RecordReader(os.path.join(folder, 'train.rec'))
               for folder in args.include.split(',')]
    os.makedirs(args.output, exist_ok=True)
    for ds_id, reader in enumerate(readers):
        if reader.header is None:
            raise SystemExit("rec2image: %s: record 0 is not a header (flag 0), so the file has "
                             "no identities to export" % reader.rec_path)
        print('header0 label', reader.read(0)[0].label)
        for count, identity_key in enumerate(reader.identity_keys(), 1):
            if count % 10 == 0:
                print('processing id', count)
            out_dir = os.path.join(args.output, '%d_%d' % (ds_id, identity_key))
            if os.path.exists(out_dir):
                raise FileExistsError("rec2image: %s already exists; use an empty --output folder"
                                      % out_dir)
            # Fill a hidden folder and rename it, so a crash leaves no half identity behind.
            tmp_dir = os.path.join(args.output, '.%d_%d.tmp' % (ds_id, identity_key))
            shutil.rmtree(tmp_dir, ignore_errors=True)
            os.makedirs(tmp_dir)
            export_identity(reader, identity_key, tmp_dir)
            os.rename(tmp_dir, out_dir)
    return 0


if __name__ == '__main__':
    sys.exit(main())
