"""List a folder-per-identity image tree as a .lst file (one line per image) for face2rec2.py."""
import argparse
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from common import record_io
from common.devices import gpu_context
from deploy.mtcnn_detector import MtcnnDetector, central_face

# How many skipped paths (or persons) the end-of-run report names; the rest are only counted.
SHOWN_SKIPPED = 5


def person_images(input_dir):
    """[(person, [image paths])] for input_dir/PERSON/FILE, persons and files sorted by name.

    Sorting makes the list (and the record keys made from it) the same on every filesystem.
    Hidden files, sub-folders and files directly in input_dir are left out.
    """
    persons = []
    for person in sorted(os.listdir(input_dir)):
        person_dir = os.path.join(input_dir, person)
        if not os.path.isdir(person_dir):
            continue
        paths = [os.path.join(person_dir, name) for name in sorted(os.listdir(person_dir))
                 if not name.startswith('.') and os.path.isfile(os.path.join(person_dir, name))]
        persons.append((person, paths))
    return persons


def list_dataset(input_dir, min_images=2):
    """[(path, label)] for input_dir/PERSON/FILE; persons with fewer than min_images are skipped.

    A skipped person does not use up a label.
    """
    items = []
    label = 0
    for _, paths in person_images(input_dir):
        if len(paths) < min_images:
            continue
        items += [(path, label) for path in paths]
        label += 1
    return items


def detect_central_face(detector, img):
    """(bbox [x1 y1 x2 y2], landmark 5 x 2 (x, y)) of the face kept by central_face, or None."""
    found = detector.detect_face(img, det_type=0)
    if found is None or len(found[0]) == 0:
        return None
    boxes, points = found
    row = central_face(boxes, img.shape[0], img.shape[1])
    # points rows are x1..x5 then y1..y5
    landmark = np.asarray(points[row], dtype=np.float32).reshape(2, 5).T
    return boxes[row, 0:4], landmark


def detect_dataset(input_dir, detector, min_images=2):
    """Detect a face in every image: ([(path, label, bbox, landmark)], report).

    report holds 'examined' (images looked at), the paths without a face ('no_face'), the files
    cv2 cannot read ('unreadable') and the persons left with fewer than min_images faces
    ('persons'). Persons with fewer files than that are passed over before detection (they
    cannot reach it); the rule is applied again to the images with a face, and only kept
    persons use up a label.
    """
    persons = [(person, paths) for person, paths in person_images(input_dir)
               if len(paths) >= min_images]
    report = {'examined': sum(len(paths) for _, paths in persons), 'no_face': [],
              'unreadable': [], 'persons': []}
    items = []
    label = 0
    with tqdm(total=report['examined'], unit='img', desc='detecting', file=sys.stderr) as bar:
        for person, paths in persons:
            faces = []
            for path in paths:
                # IMREAD_COLOR gives BGR and turns grey files (e.g. PGM) into 3 equal channels;
                # face2rec2 reads with the same flag, so the landmarks fit the image it warps.
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                face = None if img is None else detect_central_face(detector, img)
                bar.update()
                if img is None:
                    report['unreadable'].append(path)
                elif face is None:
                    report['no_face'].append(path)
                else:
                    faces.append((path,) + face)
            if len(faces) < min_images:
                report['persons'].append(person)
                continue
            items += [(path, label, bbox, landmark) for path, bbox, landmark in faces]
            label += 1
    return items, report


def first_few(names):
    """'a, b, c' for the first SHOWN_SKIPPED names, then how many more there are."""
    text = ', '.join(names[:SHOWN_SKIPPED])
    if len(names) > SHOWN_SKIPPED:
        text += ', ... and %d more' % (len(names) - SHOWN_SKIPPED)
    return text


def report_detection(items, report, min_images):
    """Print to stderr what was listed and what was skipped, naming the first few skipped."""
    out = sys.stderr
    num_labels = len({label for _, label, _, _ in items})
    print("dir2lst: %d images examined, %d listed with their face (%d identities)"
          % (report['examined'], len(items), num_labels), file=out)
    print("dir2lst: skipped %d images where no face was found%s"
          % (len(report['no_face']), ': ' + first_few(report['no_face'])
             if report['no_face'] else ''), file=out)
    if report['unreadable']:
        print("dir2lst: skipped %d files that cannot be read as images: %s"
              % (len(report['unreadable']), first_few(report['unreadable'])), file=out)
    if report['persons']:
        print("dir2lst: left out %d persons with fewer than %d images with a face (no label "
              "used): %s" % (len(report['persons']), min_images, first_few(report['persons'])),
              file=out)


def make_detector(mtcnn_path, gpu):
    """The MXNet MTCNN; with a 2019 mtcnn-model folder, L-Net refines the landmarks (as deploy)."""
    try:
        return MtcnnDetector(model_folder=mtcnn_path, ctx=gpu_context(gpu),
                             accurate_landmark=mtcnn_path is not None)
    except (OSError, ImportError, ValueError) as err:
        raise SystemExit("dir2lst: cannot load the MTCNN detector: %s" % err) from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write a .lst line 'aligned<TAB>path<TAB>label' for every image of "
                    "INPUT_DIR/PERSON/*, labels 0.. in sorted person order. With --detect, "
                    "each line gets the bbox and 5 landmarks of the face found by MTCNN.")
    parser.add_argument('input_dir', help='folder with one sub-folder of images per identity')
    parser.add_argument('--output', default='',
                        help='write the list to this file instead of standard output')
    parser.add_argument('--aligned', type=int, default=None, choices=[0, 1],
                        help='aligned flag written on every line: 1 (default) = images are '
                             'already aligned faces of the final size (stored as they are); 0 = '
                             'face2rec2 crops and resizes them (no landmarks: centre-box crop)')
    parser.add_argument('--min-images', type=int, default=2,
                        help='skip persons with fewer images than this (with --detect: fewer '
                             'images with a face)')
    group = parser.add_argument_group('face detection')
    group.add_argument('--detect', action='store_true',
                       help="detect the face in every image with the MXNet MTCNN and write "
                            "TAB-separated lines '0 path label x1 y1 x2 y2' followed by the x "
                            "then the y of the 5 landmarks, which face2rec2 aligns on; images "
                            "without a face are left out and reported on stderr")
    group.add_argument('--mtcnn-path', default=None,
                       help="a 2019 'mtcnn-model' folder (det1..det4 -symbol.json/-0001.params), "
                            "landmarks refined by its L-Net; default: the P/R/O-Net weights of "
                            "the `mtcnn` package")
    group.add_argument('--gpu', type=int, default=None,
                       help='GPU id for the detector; default (or -1): the CPU')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.input_dir):
        raise SystemExit("dir2lst: input folder %s does not exist" % args.input_dir)
    if not args.detect:
        if args.mtcnn_path is not None or args.gpu is not None:
            raise SystemExit("dir2lst: --mtcnn-path and --gpu only apply with --detect")
        aligned = 1 if args.aligned is None else args.aligned
        record_io.write_lst([record_io.format_lst_line(aligned, path, label)
                             for path, label in list_dataset(args.input_dir, args.min_images)],
                            args.output)
        return 0
    if args.aligned == 1:
        raise SystemExit("dir2lst: --detect writes aligned=0 lines (face2rec2 aligns the photos "
                         "on the detected landmarks); leave out --aligned 1")
    detector = make_detector(args.mtcnn_path, args.gpu)
    # a label needs at least one face, or the labels would have a gap
    min_faces = max(args.min_images, 1)
    items, report = detect_dataset(args.input_dir, detector, min_faces)
    # format_lst_line writes the bbox with %d (truncated, as the 2019 align_insight.py did)
    record_io.write_lst([record_io.format_lst_line(0, path, label, bbox, landmark)
                         for path, label, bbox, landmark in items], args.output)
    report_detection(items, report, min_faces)
    return 0


if __name__ == '__main__':
    sys.exit(main())
