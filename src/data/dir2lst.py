"""List a folder-per-identity image tree as a .lst file (one line per image) for face2rec2.py."""
import argparse
import os
import sys

from common import record_io


def list_dataset(input_dir, min_images=2):
    """[(path, label)] for input_dir/PERSON/FILE; persons with fewer than min_images are skipped.

    Persons and files are sorted by name so the list (and the record keys made from it) is the
    same on every filesystem. A skipped person does not use up a label.
    """
    items = []
    label = 0
    for person in sorted(os.listdir(input_dir)):
        person_dir = os.path.join(input_dir, person)
        if not os.path.isdir(person_dir):
            continue
        paths = [os.path.join(person_dir, name) for name in sorted(os.listdir(person_dir))
                 if not name.startswith('.') and os.path.isfile(os.path.join(person_dir, name))]
        if len(paths) < min_images:
            continue
        items += [(path, label) for path in paths]
        label += 1
    return items


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write a .lst line 'aligned<TAB>path<TAB>label' for every image of "
                    "INPUT_DIR/PERSON/*, labels 0.. in sorted person order.")
    parser.add_argument('input_dir', help='folder with one sub-folder of images per identity')
    parser.add_argument('--output', default='',
                        help='write the list to this file instead of standard output')
    parser.add_argument('--aligned', type=int, default=1, choices=[0, 1],
                        help='aligned flag written on every line: 1 = images are already aligned '
                             'faces of the final size (stored as they are); 0 = face2rec2 crops '
                             'and resizes them (no landmarks: centre-box crop)')
    parser.add_argument('--min-images', type=int, default=2,
                        help='skip persons with fewer images than this')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.input_dir):
        raise SystemExit("dir2lst: input folder %s does not exist" % args.input_dir)
    lines = [record_io.format_lst_line(args.aligned, path, label) + '\n'
             for path, label in list_dataset(args.input_dir, args.min_images)]
    if not args.output:
        sys.stdout.writelines(lines)
        return 0
    tmp_path = args.output + '.tmp'
    with open(tmp_path, 'w') as fout:
        fout.writelines(lines)
    os.replace(tmp_path, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
