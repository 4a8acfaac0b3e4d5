"""Strips a training checkpoint to its fc1 embedding graph, without the fc7 classifier weights.

    python deploy/model_slim.py --model ./models/model-r34-amf/model,60
    # writes ./models/model-r34-amf/models-symbol.json and models-0000.params
"""
import argparse

from common import checkpoint


def build_parser():
    parser = argparse.ArgumentParser(description='face model slim: keep fc1, drop fc7 weights',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--model', default='../models/model-r34-amf/model,60',
                        help="checkpoint 'prefix,epoch'; the slim one is saved as 'prefix' + 's', "
                             "epoch 0")
    return parser


def slim(prefix, epoch):
    """Save `prefix`s epoch 0 with the fc1_output graph and no fc7* params; returns its prefix."""
    print('loading', prefix, epoch)
    symbol, arg_params, aux_params = checkpoint.load_checkpoint(prefix, epoch)
    internals = symbol.get_internals()
    if 'fc1_output' not in internals.list_outputs():
        raise ValueError("%s has no 'fc1' node: not an InsightFace embedding network"
                         % checkpoint.symbol_path(prefix))
    arg_params = {k: v for k, v in arg_params.items() if not k.startswith('fc7')}
    out_prefix = prefix + 's'
    checkpoint.save_checkpoint(out_prefix, 0, internals['fc1_output'], arg_params, aux_params)
    return out_prefix


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        prefix, epoch = checkpoint.parse_model_arg(args.model)
    except ValueError as err:
        raise SystemExit('model_slim: --model: %s' % err)
    slim(prefix, epoch)


if __name__ == '__main__':
    main()
