"""Write {input}/c2c: each image's cosine to its identity's mean embedding and its aligned flag."""
import argparse
import os
import sys

from tqdm import tqdm

from common import checkpoint
from common.devices import get_contexts
from common.identity_embedding import cosines_to_mean, image_embeddings, load_model, open_dataset


def aligned_flag(reader, key):
    """int(label[1]) of image record `key`: the aligned flag of face2rec2's [label, aligned]."""
    header = reader.read(key)[0]
    if header.flag < 2:
        found = 'a scalar label' if header.flag == 0 else '1 label float'
        raise SystemExit("dataset_c2c: %s: image record %d has %s; c2c writes the second label "
                         "float (the aligned flag), so it needs the 2-float [label, aligned] image "
                         "labels of a face2rec2-made train.rec (dir2rec, dataset_merge and "
                         "dataset_relabel write scalar labels)" % (reader.rec_path, key, found))
    return int(header.label[1])


def write_c2c(path, reader, ranges, model, args):
    """One line 'key,cosine,aligned' per image, identity by identity, images in key order."""
    with open(path, 'w') as fout:
        for count, (identity_key, start, end) in enumerate(tqdm(ranges, unit='id', desc='c2c',
                                                                file=sys.stderr), 1):
            if count % 100 == 0:
                print('processing id', count)
            if start == end:
                print('warning: %s: identity record %d has no images; nothing written for it'
                      % (reader.rec_path, identity_key), file=sys.stderr)
                continue
            flags = [aligned_flag(reader, key) for key in range(start, end)]
            rows = image_embeddings(reader, range(start, end), model, args.batch_size,
                                    args.ctx_num)
            for key, cosine, flag in zip(range(start, end), cosines_to_mean(rows), flags):
                fout.write('%d,%f,%d\n' % (key, cosine, flag))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Write INPUT/c2c with one line 'image key,cosine,aligned' per image: the "
                    "cosine of the image's embedding to its identity's normalised mean "
                    "embedding, and the second label float. Needs a face2rec2-made train.rec "
                    "([label, aligned] labels) and the property file. GPUs are those in "
                    "CUDA_VISIBLE_DEVICES (CPU if unset or empty).")
    parser.add_argument('--input', default='', help='dataset folder with train.rec/.idx and '
                                                    'property; c2c is written there')
    parser.add_argument('--model', default='../model/softmax,50',
                        help="embedding checkpoint 'prefix,epoch' (its fc1 output is used)")
    parser.add_argument('--batch-size', default=32, type=int, help='images per forward pass')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.input:
        raise SystemExit("dataset_c2c: --input is required")
    contexts = get_contexts()
    args.ctx_num = len(contexts)
    reader, ranges, image_size = open_dataset(args.input, 'dataset_c2c')
    model = load_model(args.model, args.batch_size, image_size, contexts, tool='dataset_c2c')
    checkpoint.atomic_write(os.path.join(args.input, 'c2c'),
                            lambda tmp_path: write_c2c(tmp_path, reader, ranges, model, args))
    return 0


if __name__ == '__main__':
    sys.exit(main())
