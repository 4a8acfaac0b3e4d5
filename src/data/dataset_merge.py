"""Merge identity-structured datasets, optionally dropping identities a model finds twice."""
import argparse
import os
import sys

import numpy as np

from common import record_io
from common.devices import get_contexts
# Also reached as dataset_merge.<name> (tests, older callers): the helpers live in one place.
from common.identity_embedding import embed_batch, identity_embedding, l2_normalize, load_model


def collect_identities(readers, model, args):
    """[(dataset index, identity key)] kept, in output order, after model de-duplication.

    Dataset 0 is kept whole; an identity of a later dataset is dropped when its embedding has
    cosine >= param1 with one kept from an earlier dataset.
    """
    kept = []
    kept_embeddings = []
    for ds_id, reader in enumerate(readers):
        if reader.header is None:
            raise SystemExit("dataset_merge: %s: record 0 is not a header (flag 0)"
                             % reader.rec_path)
        print('header0 label', reader.read(0)[0].label)
        earlier = np.array(kept_embeddings)
        found = 0
        for count, identity_key in enumerate(reader.identity_keys(), 1):
            if count % 10 == 0:
                print('processing id', count)
            found += 1
            if model is None:
                kept.append((ds_id, identity_key))
                continue
            embedding = identity_embedding(reader, identity_key, model, args.batch_size,
                                           args.ctx_num)
            if ds_id > 0 and len(earlier) and np.any(earlier @ embedding >= args.param1):
                continue
            kept.append((ds_id, identity_key))
            kept_embeddings.append(embedding)
        print(ds_id, found, len(kept))
    return kept, kept_embeddings


def exclude_bin(kept, kept_embeddings, bin_path, image_size, model, args):
    """Drop kept identities with cosine >= param2 to any image of a verification .bin."""
    # Imported here: only this option needs the verification tools.
    from recognition.eval.verification import load_bin
    data = load_bin(bin_path, image_size)[0][0]
    print(data.shape)
    excluded = set()
    kept_matrix = np.array(kept_embeddings)
    for i in range(data.shape[0]):
        embedding = l2_normalize(embed_batch(model, [data[i]], args.ctx_num)[0])
        excluded.update(np.flatnonzero(kept_matrix @ embedding >= args.param2).tolist())
    print('exclude', len(excluded))
    return [item for i, item in enumerate(kept) if i not in excluded]


def write_merged(readers, kept, output_dir, image_size):
    """Copy the kept identities with new labels 0.. into output_dir/train.rec and property."""
    os.makedirs(output_dir, exist_ok=True)
    rec_path = os.path.join(output_dir, 'train.rec')
    with record_io.IdentityRecordWriter(rec_path, header_last=True) as writer:
        label = 0
        for ds_id, identity_key in kept:
            reader = readers[ds_id]
            start, end = reader.identity_range(identity_key)
            if start == end:
                print('warning: %s: identity record %d has no images; left out'
                      % (reader.rec_path, identity_key), file=sys.stderr)
                continue
            for key in range(start, end):
                # Only the encoded image is kept: the old label floats are dropped.
                writer.add_image(reader.read(key)[1], label)
            label += 1
    record_io.write_property(output_dir, label, image_size)
    print('wrote %s: %d images, %d identities' % (rec_path, writer.num_images, label))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Merge the train.rec of several folders (--include) into --output, new "
                    "labels 0.. in order. With --model, identities of later datasets that "
                    "match an earlier one (cosine >= param1) are dropped, and so are identities "
                    "matching an image of a verification .bin given as --exclude (cosine >= "
                    "param2). GPUs are those in CUDA_VISIBLE_DEVICES (CPU if unset or empty).")
    parser.add_argument('--include', default='', help='comma-separated dataset folders')
    parser.add_argument('--exclude', default='',
                        help='verification .bin whose people are removed (needs --model); a '
                             'dataset folder is accepted but, as in the original, has no effect')
    parser.add_argument('--output', default='', help='output dataset folder')
    parser.add_argument('--model', default='../model/softmax,50',
                        help="embedding checkpoint 'prefix,epoch'; '' for no model "
                             "(then --param1 must be 0)")
    parser.add_argument('--batch-size', default=32, type=int, help='images per forward pass')
    parser.add_argument('--param1', default=0.3, type=float,
                        help='cosine at or above which a later identity duplicates a kept one')
    parser.add_argument('--param2', default=0.4, type=float,
                        help='cosine at or above which an identity matches an --exclude image')
    parser.add_argument('--mode', default=1, type=int, help='unused, as in the original')
    parser.add_argument('--test', default=0, type=int, help='if > 0, stop before writing')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.include or (not args.output and args.test <= 0):
        raise SystemExit("dataset_merge: --include and --output are required")
    folders = args.include.split(',')
    image_size = record_io.read_property(folders[0]).image_size
    print('image_size', list(image_size))
    model = None
    if args.model:
        contexts = get_contexts()
        args.ctx_num = len(contexts)
        model = load_model(args.model, args.batch_size, image_size, contexts,
                           tool='dataset_merge')
    elif args.param1 != 0.0:
        raise SystemExit("dataset_merge: without --model no identity can be compared, so "
                         "--param1 must be 0.0 (got %r)" % args.param1)
    readers = [record_io.RecordReader(os.path.join(folder, 'train.rec')) for folder in folders]
    kept, kept_embeddings = collect_identities(readers, model, args)
    if args.exclude:
        if os.path.isdir(args.exclude):
            # The original embedded this dataset and then never used the result.
            print('warning: --exclude %s is a folder; as in the original it removes nothing'
                  % args.exclude, file=sys.stderr)
        elif model is None:
            raise SystemExit("dataset_merge: --exclude %s needs --model" % args.exclude)
        else:
            kept = exclude_bin(kept, kept_embeddings, args.exclude, image_size, model, args)
    if args.test > 0:
        return 0
    write_merged(readers, kept, args.output, image_size)
    return 0


if __name__ == '__main__':
    sys.exit(main())
