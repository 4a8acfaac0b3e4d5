"""Pack the faces listed in INPUT/label.txt into aligned OUTPUT/train.rec/.idx and property."""
import argparse
import array
import functools
import os
import sys

import numpy as np
from tqdm import tqdm

from common import record_io

# The original had the face size fixed; the templates are made for it.
IMAGE_SIZE = (112, 112)
LABEL_FILE = 'label.txt'
# relpath, bbox x1 y1 x2 y2, then 5 landmarks written as x y pairs.
LABEL_FIELDS = 15
LABEL_LINE_FORMAT = 'relpath x1 y1 x2 y2 lx1 ly1 lx2 ly2 lx3 ly3 lx4 ly4 lx5 ly5'
# Faces handed to the worker pool at a time: bounds memory on label files of millions of lines.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Align every face listed in INPUT/label.txt (lines '%s', whitespace "
                    "separated, landmarks as x y pairs; images under INPUT/images/) to 112x112 "
                    "and write OUTPUT/train.rec, train.idx and property. The label of an image "
                    "is the index of the first folder of its relpath in order of first "
                    "appearance." % LABEL_LINE_FORMAT)
    parser.add_argument('--input', required=True,
                        help='folder with label.txt and the images/ folder it refers to')
    parser.add_argument('--output', required=True, help='output folder (created if needed)')
    unused = parser.add_argument_group('accepted for compatibility with the original, unused')
    unused.add_argument('--exts', nargs='+', default=['.jpeg', '.jpg'], help='unused')
    unused.add_argument('--chunks', type=int, default=1, help='unused')
    unused.add_argument('--train-ratio', type=float, default=1.0, help='unused')
    unused.add_argument('--test-ratio', type=float, default=0, help='unused')
    group = parser.add_argument_group('options for creating the record files')
    group.add_argument('--quality', type=int, default=95,
                       help='JPEG quality 1-100, or PNG compression 0-9')
    group.add_argument('--num-thread', type=int, default=1,
                       help='worker processes for reading and aligning; the output is the same '
                            'for any value')
    group.add_argument('--color', type=int, default=1, choices=[-1, 0, 1],
                       help='cv2.imread flag: 1 colour, 0 grey, -1 unchanged')
    group.add_argument('--encoding', type=str, default='.jpg', choices=['.jpg', '.png'],
                       help='encoding of the aligned faces')
    return parser.parse_args(argv)


def parse_label_line(line, where):
    """'relpath x1 y1 x2 y2 lx1 ly1 ... lx5 ly5' -> (relpath, bbox (4,), landmark (5, 2) x y)."""
    fields = line.split()
    if len(fields) != LABEL_FIELDS:
        raise SystemExit("dir2rec: %s: expected %d whitespace-separated fields '%s' (paths "
                         "cannot contain spaces), got %d: %r"
                         % (where, LABEL_FIELDS, LABEL_LINE_FORMAT, len(fields), line.strip()))
    try:
        values = np.array([float(v) for v in fields[1:]], dtype=np.float32)
    except ValueError:
        raise SystemExit("dir2rec: %s: the bbox and landmark fields after the path must be "
                         "numbers, got %r" % (where, ' '.join(fields[1:]))) from None
    return fields[0], values[:4], values[4:].reshape((5, 2))


def person_of(relpath):
    """The folder naming the person: everything before the first '/' (the whole path if none)."""
    return relpath.split('/')[0]


class LabelFile:
    """label.txt checked in one pass; then its faces grouped by person, read back line by line.

    The first pass keeps only line numbers, byte offsets and labels, so label files of millions
    of lines stay small in memory.
    """

    def __init__(self, input_dir):
        self.path = os.path.join(input_dir, LABEL_FILE)
        self.images_dir = os.path.join(input_dir, 'images')
        if not os.path.isfile(self.path):
            raise SystemExit("dir2rec: %s does not exist; --input must be a folder holding "
                             "label.txt (lines '%s') and the images/ folder its paths are "
                             "relative to" % (self.path, LABEL_LINE_FORMAT))
        self.line_numbers = array.array('l')
        self.offsets = array.array('q')
        self.labels = array.array('l')
        self.persons = {}  # person folder -> label, in order of first appearance
        self._scan()

    def _scan(self):
        with open(self.path, 'rb') as fin:
            offset = 0
            for line_no, raw in enumerate(fin, 1):
                start, offset = offset, offset + len(raw)
                line = os.fsdecode(raw)
                if not line.strip():
                    continue
                where = '%s:%d' % (self.path, line_no)
                relpath, _, _ = parse_label_line(line, where)
                image_path = os.path.join(self.images_dir, relpath)
                if not os.path.isfile(image_path):
                    raise SystemExit("dir2rec: %s: image %s does not exist" % (where, image_path))
                label = self.persons.setdefault(person_of(relpath), len(self.persons))
                self.line_numbers.append(line_no)
                self.offsets.append(start)
                self.labels.append(label)

    def __len__(self):
        return len(self.labels)

    def order(self):
        """Line indices with each person's images together: persons in order of first
        appearance, images in file order (the file order itself when already so grouped)."""
        return np.argsort(np.asarray(self.labels, dtype=np.int64), kind='stable')

    def split_persons(self):
        """{person: [first line numbers of each of its runs]} for persons listed in several runs."""
        names = {label: name for name, label in self.persons.items()}
        runs = {}
        for index, label in enumerate(self.labels):
            if index == 0 or self.labels[index - 1] != label:
                runs.setdefault(label, []).append(self.line_numbers[index])
        return {names[label]: starts for label, starts in runs.items() if len(starts) > 1}

    def faces(self, order):
        """Yield (line number, image path, label, bbox, landmark) for the line indices in order."""
        with open(self.path, 'rb') as fin:
            for index in order:
                fin.seek(self.offsets[index])
                line_no = self.line_numbers[index]
                relpath, bbox, landmark = parse_label_line(os.fsdecode(fin.readline()),
                                                           '%s:%d' % (self.path, line_no))
                yield (line_no, os.path.join(self.images_dir, relpath), self.labels[index],
                       bbox, landmark)


def encode_face(face, color, quality, encoding):
    """Read, align (landmarks; the bbox is unused then, as in the original) and encode one face.

    Returns (encoded bytes, '') or (None, what went wrong).
    """
    _, path, _, bbox, landmark = face
    return record_io.align_and_encode(path, bbox, landmark, IMAGE_SIZE, color, quality, encoding)


def write_records(label_file, rec_path, args):
    """Encode every face of label_file into rec_path (and its .idx); returns the writer."""
    encode = functools.partial(encode_face, color=args.color, quality=args.quality,
                               encoding=args.encoding)
    faces = label_file.faces(label_file.order())
    with record_io.IdentityRecordWriter(rec_path) as writer, \
            tqdm(total=len(label_file), unit='img', desc='dir2rec') as bar:
        for (line_no, path, label, _, _), (data, problem) in record_io.map_in_order(faces, encode,
                                                                             args.num_thread):
            if data is None:
                raise SystemExit("dir2rec: %s:%d: image %s %s"
                                 % (label_file.path, line_no, path, problem))
            writer.add_image(data, label)
            bar.update()
    return writer


def main(argv=None):
    args = parse_args(argv)
    label_file = LabelFile(args.input)
    if not len(label_file):
        raise SystemExit("dir2rec: %s lists no images; expected lines '%s'"
                         % (label_file.path, LABEL_LINE_FORMAT))
    split = label_file.split_persons()
    if split:
        name, starts = next(iter(split.items()))
        print("dir2rec: note: %s lists the images of %d person(s) in separate runs (e.g. %r "
              "from lines %s); each person's images are packed together as one identity "
              "(the 2019 tool made one identity record per run)"
              % (label_file.path, len(split), name, ', '.join(map(str, starts))),
              file=sys.stderr)
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise SystemExit("dir2rec: --output %s exists and is not a folder" % args.output)
    created_output = not os.path.exists(args.output)
    os.makedirs(args.output, exist_ok=True)
    print('image_size', list(IMAGE_SIZE))
    rec_path = os.path.join(args.output, 'train.rec')
    try:
        writer = write_records(label_file, rec_path, args)
    except BaseException:
        if created_output:
            try:
                os.rmdir(args.output)  # only if still empty
            except OSError:
                pass
        raise
    max_label = max(label_file.labels)
    print('writing', args.output, 'property', max_label)
    record_io.write_property(args.output, max_label + 1, IMAGE_SIZE)
    print('wrote %s: %d images, %d identities'
          % (rec_path, writer.num_images, writer.num_identities))
    return 0


if __name__ == '__main__':
    sys.exit(main())
