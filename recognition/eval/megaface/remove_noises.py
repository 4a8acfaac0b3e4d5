"""Clean MegaFace/FaceScrub features with InsightFace's noise lists; features gain one dimension."""
import argparse
import os
import sys

import numpy as np

from recognition.eval.megaface.feature_file import ensure_dir, feature_name, read_feature, write_feature

# The extra last dimension: 0 for kept features, this for listed MegaFace distractors, which puts
# them far from every probe so they can never be a rank-1 false match.
NOISE_FILL = 100.0
# Half-width of the uniform jitter added to a replaced FaceScrub feature.
JITTER = 0.001


def read_facescrub_noises(path):
    """Set of noisy FaceScrub image file names ('#' lines are comments)."""
    names = set()
    with open(path) as lines:
        for line in lines:
            if line.startswith('#') or not line.strip():
                continue
            names.add(line.strip())
    return names


def read_megaface_noises(path):
    """Set of noisy MegaFace 'a1/a2/file' paths; a line 'x<TAB>path' names its second field."""
    paths = set()
    with open(path) as lines:
        for line in lines:
            if line.startswith('#') or not line.strip():
                continue
            fields = line.strip().split('\t')
            paths.add(fields[1] if len(fields) > 1 else fields[0])
    return paths


def load_extended(path, fill, dim):
    """A feature file as a float32 vector with one extra last value `fill`."""
    feature = read_feature(path)
    if dim is not None and feature.size != dim:
        raise ValueError("%s has %d values, the other features %d" % (path, feature.size, dim))
    return np.append(feature, np.float32(fill)).astype(np.float32)


def list_paths(list_path, depth):
    """(relative path components) of each non-blank line, checked to have `depth` of them."""
    with open(list_path) as lines:
        for line in lines:
            rel_path = line.strip()
            if not rel_path:
                continue
            parts = rel_path.split('/')
            if len(parts) < depth:
                raise ValueError("%s: %r should end with %d path components"
                                 % (list_path, rel_path, depth))
            yield parts[-depth:]


def clean_facescrub(args, noises, rng):
    """Copy clean probe features (extra value 0); replace each listed one by its person's centre.

    The replacement is the sum of that person's clean features plus uniform jitter on the
    original dimensions, L2-normalised. Returns (number replaced, feature size).
    """
    centres = {}
    noisy = []
    dim = None
    for count, (person, name) in enumerate(list_paths(args.facescrub_lst, 2)):
        if count % 1000 == 0:
            print('reading fs', count)
        out_dir = ensure_dir(os.path.join(args.feature_dir_out, 'facescrub', person))
        if name in noises:
            noisy.append((person, name))
            continue
        feature = load_extended(os.path.join(args.feature_dir_input, 'facescrub', person,
                                             feature_name(name, args.algo)), 0.0, dim)
        dim = feature.size - 1
        write_feature(os.path.join(out_dir, feature_name(name, args.algo)), feature)
        centres[person] = centres.get(person, 0) + feature
    print(len(noisy))
    for person, name in noisy:
        if person not in centres:
            raise ValueError("FaceScrub person %r has no clean image left to replace noisy %r with"
                             % (person, name))
        jitter = np.zeros(dim + 1, dtype=np.float32)
        jitter[:dim] = rng.uniform(-JITTER, JITTER, dim)
        feature = centres[person] + jitter
        feature /= np.linalg.norm(feature)
        write_feature(os.path.join(args.feature_dir_out, 'facescrub', person,
                                   feature_name(name, args.algo)), feature)
    return len(noisy), dim


def clean_megaface(args, noises):
    """Rewrite every distractor feature with an extra value: NOISE_FILL if listed, else 0."""
    dim = None
    flagged = 0
    for count, parts in enumerate(list_paths(args.megaface_lst, 3)):
        if count % 1000 == 0:
            print('reading mf', count)
        out_dir = ensure_dir(os.path.join(args.feature_dir_out, 'megaface', *parts[:2]))
        is_noise = '/'.join(parts) in noises
        feature = load_extended(os.path.join(args.feature_dir_input, 'megaface', *parts[:2],
                                             feature_name(parts[2], args.algo)),
                                NOISE_FILL if is_noise else 0.0, dim)
        dim = feature.size - 1
        write_feature(os.path.join(out_dir, feature_name(parts[2], args.algo)), feature)
        flagged += is_noise
    print(flagged)
    return flagged


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--facescrub-noises', default='./data/facescrub_noises.txt',
                        help="noisy FaceScrub file names, one a line ('#' comments)")
    parser.add_argument('--megaface-noises', default='./data/megaface_noises.txt',
                        help="noisy MegaFace a1/a2/file paths, one a line (or 'x<TAB>path')")
    parser.add_argument('--algo', default='insightface', help='feature file suffix: <image>_<algo>.bin')
    parser.add_argument('--facescrub-lst', default='./data/facescrub_lst')
    parser.add_argument('--megaface-lst', default='./data/megaface_lst')
    parser.add_argument('--feature-dir-input', default='./feature_out')
    parser.add_argument('--feature-dir-out', default='./feature_out_clean')
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the FaceScrub jitter (2019: unseeded); drawn and printed '
                        'when absent')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path in (args.facescrub_noises, args.megaface_noises, args.facescrub_lst, args.megaface_lst):
        if not os.path.isfile(path):
            raise FileNotFoundError("%s does not exist (the noise lists are not shipped: pass their "
                                    "paths with --facescrub-noises / --megaface-noises)" % path)
    if os.path.abspath(args.feature_dir_input) == os.path.abspath(args.feature_dir_out):
        raise ValueError('--feature-dir-out must differ from --feature-dir-input')
    seed = args.seed if args.seed is not None else int(np.random.randint(0, 2 ** 31 - 1))
    print('seed', seed)
    fs_noises = read_facescrub_noises(args.facescrub_noises)
    print(len(fs_noises))
    clean_facescrub(args, fs_noises, np.random.RandomState(seed))
    mf_noises = read_megaface_noises(args.megaface_noises)
    print(len(mf_noises))
    clean_megaface(args, mf_noises)
    return 0


if __name__ == '__main__':
    sys.exit(main())
