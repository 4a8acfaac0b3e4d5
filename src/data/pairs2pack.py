"""Pack a list of image pairs into a verification .bin, aligning each face (agedb/cfp packers)."""
import argparse
import os

import cv2
import numpy as np
from tqdm import tqdm

from common.face_preprocess import parse_image_size, preprocess, read_image
from common.verification_pack import save_pairs_bin

PAIRS_FORMAT = """\
Pairs file: one pair per line, whitespace-separated, blank lines and lines starting with '#'
ignored:
    path1 path2 issame
    path1 path2 issame x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 x1 y1 ... x5 y5
issame is 1/0 (or true/false). The optional 20 numbers are the 5 landmarks of image 1 then of
image 2, as (x, y) points in image coordinates in the order left eye, right eye, nose tip, left
mouth corner, right mouth corner. Relative paths are taken from --data-dir (by default the folder
of the pairs file)."""


def parse_pair_line(line, where):
    """(path1, path2, issame, landmark1, landmark2) from one pairs line; landmarks 5x2 or None."""
    fields = line.split()
    if len(fields) not in (3, 23):
        raise ValueError("%s: expected 3 fields (path1 path2 issame) or 23 (with 5 landmarks "
                         "per image), got %d: %r" % (where, len(fields), line.rstrip('\n')))
    flag = fields[2].lower()
    if flag not in ('0', '1', 'true', 'false'):
        raise ValueError("%s: issame must be 1/0 or true/false, got %r" % (where, fields[2]))
    issame = flag in ('1', 'true')
    landmarks = (None, None)
    if len(fields) == 23:
        try:
            values = np.array([float(v) for v in fields[3:]], dtype=np.float32)
        except ValueError as err:
            raise ValueError("%s: bad landmark value (%s)" % (where, err)) from None
        landmarks = (values[:10].reshape(5, 2), values[10:].reshape(5, 2))
    return fields[0], fields[1], issame, landmarks[0], landmarks[1]


def read_pairs_file(pairs_path):
    """The pairs of a pairs file as (line_number, path1, path2, issame, landmark1, landmark2)."""
    pairs = []
    with open(pairs_path, 'r') as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            pairs.append((line_no,) + parse_pair_line(line, '%s:%d' % (pairs_path, line_no)))
    return pairs


def encode_face(path, landmark, image_size, where):
    """Read one image, align (landmarks) or centre-crop it (none), and JPEG-encode it as bytes."""
    try:
        img = read_image(path, mode='bgr')
    except OSError as err:  # FileNotFoundError included
        raise ValueError("%s: %s" % (where, err)) from None
    # Without landmarks preprocess crops a centre box grown by the margin, as the original packers
    # did when MTCNN found no face.
    face = preprocess(img, landmark=landmark, image_size=image_size)
    ok, encoded = cv2.imencode('.jpg', face)  # OpenCV's default JPEG quality, 95
    if not ok:
        raise ValueError("%s: OpenCV could not JPEG-encode the face from %s" % (where, path))
    return encoded.tobytes()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Package pairs of face images into a verification .bin (what agedb2pack.py "
                    "and cfp2pack.py did for their datasets). Faces are aligned to the ArcFace "
                    "template when landmarks are given, else centre-cropped, then JPEG-encoded. "
                    "Face detection (MTCNN) for images without landmarks is not done here.",
        epilog=PAIRS_FORMAT, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pairs', required=True, help='the pairs file (format below)')
    parser.add_argument('--data-dir', default=None,
                        help='folder that relative image paths start from '
                             '(default: the folder of the pairs file)')
    parser.add_argument('--image-size', default='112,112',
                        help='output face size "h,w": 112,112 (default) or 112,96')
    parser.add_argument('--output', required=True, help='the .bin file to write')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        parse_image_size(args.image_size)
    except ValueError as err:
        raise SystemExit("--image-size: %s" % err)
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = os.path.dirname(os.path.abspath(args.pairs))
    pairs = read_pairs_file(args.pairs)
    if not pairs:
        raise SystemExit("%s: no pairs found" % args.pairs)

    bins = []
    issame_list = []
    aligned = 0
    for line_no, path1, path2, issame, landmark1, landmark2 in tqdm(pairs, desc='packing pairs',
                                                                      unit='pair'):
        where = '%s:%d' % (args.pairs, line_no)
        for path, landmark in ((path1, landmark1), (path2, landmark2)):
            bins.append(encode_face(os.path.join(data_dir, path), landmark, args.image_size,
                                    where))
            aligned += landmark is not None
        issame_list.append(issame)
    save_pairs_bin(args.output, bins, issame_list)
    print('wrote %d pairs (%d same, %d different; %d images aligned by landmarks, %d centre-'
          'cropped) to %s' % (len(issame_list), sum(issame_list),
                              len(issame_list) - sum(issame_list), aligned, len(bins) - aligned,
                              args.output))


if __name__ == '__main__':
    main()
