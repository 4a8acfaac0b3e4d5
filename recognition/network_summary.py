"""Prints a network preset's summary: parameter arrays and count, FLOPs, embedding shape."""
import argparse
import json
import sys

import numpy as np

from common.flops_counter import count_flops
from recognition import config_loader
from recognition.symbol import get_embedding_symbol


def summarize(config, image_size=None):
    """Dict of the embedding symbol's figures for `config` (an already generated config)."""
    if image_size is None:
        image_size = tuple(config.image_shape[:2])
    data_shape = (1, 3) + tuple(image_size)
    sym = get_embedding_symbol(config)
    arg_shapes, out_shapes, aux_shapes = sym.infer_shape(data=data_shape)
    args = [(n, s) for n, s in zip(sym.list_arguments(), arg_shapes) if n != 'data']
    return {
        'network': config.network,
        'net_name': config.net_name,
        'input_shape': list(data_shape),
        'output': sym.list_outputs()[0],
        'output_shape': list(out_shapes[0]),
        'arg_arrays': len(args),
        'aux_arrays': len(aux_shapes),
        'parameters': int(sum(int(np.prod(s)) for _, s in args)),
        'flops': count_flops(sym, data=data_shape),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--network', default='r100', help='network preset name, e.g. r100, y1, m05')
    parser.add_argument('--dataset', default='emore', help='dataset preset (sets the image size)')
    parser.add_argument('--loss', default='arcface', help='loss preset')
    parser.add_argument('--config', default=None,
                        help='config file to read presets from (default: the packaged sample_config.py)')
    parser.add_argument('--image-size', default=None, help='override the input size as H,W')
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    args = parser.parse_args(argv)

    module = (config_loader.load_config_module(args.config) if args.config
              else config_loader.load_sample_config())
    try:
        config = config_loader.generate(module, args.network, args.dataset, args.loss)
    except ValueError as err:
        parser.error(str(err))
    image_size = None
    if args.image_size:
        image_size = tuple(int(v) for v in args.image_size.split(','))
    summary = summarize(config, image_size)
    if args.json:
        print(json.dumps(summary))
        return summary
    for key in ('network', 'net_name', 'input_shape', 'output', 'output_shape', 'arg_arrays',
                'aux_arrays'):
        print('%-13s %s' % (key, summary[key]))
    print('%-13s %s' % ('parameters', format(summary['parameters'], ',')))
    print('%-13s %s' % ('FLOPs', format(summary['flops'], ',')))
    return summary


if __name__ == '__main__':
    sys.exit(0 if main() else 1)
