"""List a YouTube Faces style PERSON/VIDEO/FRAME image tree as a .lst file (one line per frame)."""
import argparse
import os
import sys

from common import record_io


def sorted_subdirs(folder):
    """The sub-folder names of folder, sorted by name."""
    return [name for name in sorted(os.listdir(folder))
            if os.path.isdir(os.path.join(folder, name))]


def list_videos(input_dir):
    """([(path, label)], [(person, label) without images]) for input_dir/PERSON/VIDEO/FILE.

    Every person folder takes the next label, even one without images (as in 2019), so labels
    are the indices of the sorted person folders. Persons, videos and files are sorted by name
    so the list is the same on every filesystem; hidden files and sub-folders of a video are
    not images and are left out.
    """
    items = []
    empty_persons = []
    for label, person in enumerate(sorted_subdirs(input_dir)):
        person_dir = os.path.join(input_dir, person)
        count = len(items)
        for video in sorted_subdirs(person_dir):
            video_dir = os.path.join(person_dir, video)
            items += [(os.path.join(video_dir, name), label)
                      for name in sorted(os.listdir(video_dir))
                      if not name.startswith('.') and os.path.isfile(os.path.join(video_dir, name))]
        if len(items) == count:
            empty_persons.append((person, label))
    return items, empty_persons


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write a .lst line '1<TAB>path<TAB>label' for every frame of "
                    "INPUT_DIR/PERSON/VIDEO/*, labels 0.. in sorted person order (one per "
                    "person folder, including persons without frames).")
    parser.add_argument('input_dir',
                        help="the YTF 'aligned_images_DB' folder (2019 hard-coded "
                             "/raid5data/dplearn/YTF/aligned_images_DB)")
    parser.add_argument('--output', default='',
                        help='write the list to this file instead of standard output')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isdir(args.input_dir):
        raise SystemExit("dir2lst_ytf: input folder %s does not exist" % args.input_dir)
    items, empty_persons = list_videos(args.input_dir)
    for person, label in empty_persons:
        print("dir2lst_ytf: warning: person %s has no frames in %s/*/; its label %d stays unused"
              % (person, os.path.join(args.input_dir, person), label), file=sys.stderr)
    record_io.write_lst((record_io.format_lst_line(1, path, label) for path, label in items),
                        args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
