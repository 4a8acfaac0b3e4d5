"""Counts the multiply-add FLOPs of an MXNet symbol, with the 2019 counting rules."""
import argparse
import json

import mxnet as mx
import numpy as np


def _parse_tuple(text):
    return tuple(int(v) for v in str(text).strip('()[] ').split(',') if v.strip())


def _is_true(value):
    return str(value) in ('True', 'true', '1')


def _output_shapes(sym, data_shape):
    """node name -> list of its output shapes, from one shape inference over all internals."""
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=data_shape)
    if out_shapes is None:
        raise ValueError("cannot infer the shapes of this symbol from data=%s" % (data_shape,))
    by_output = dict(zip(internals.list_outputs(), out_shapes))
    shapes = {}
    for node in json.loads(sym.tojson())['nodes']:
        name = node['name']
        if node['op'] == 'null':
            shapes[name] = [by_output.get(name)]
        elif name + '_output' in by_output:
            shapes[name] = [by_output[name + '_output']]
        else:
            outs, i = [], 0
            while '%s_output%d' % (name, i) in by_output:
                outs.append(by_output['%s_output%d' % (name, i)])
                i += 1
            shapes[name] = outs
    return shapes


def count_flops(sym, **data_shapes):
    """FLOPs of Convolution and FullyConnected nodes; every other operator counts 0.

    Convolution: 2*Cin*kh*kw*Hout*Wout*Cout, minus Hout*Wout*Cout without bias, divided by the
    groups. FullyConnected: 2*in*out, minus out without bias. Unlike the 2019 counter, a
    FullyConnected after Flatten (the 'GAP' head) is counted instead of crashing.
    """
    data_shape = data_shapes.get('data', (1, 3, 112, 112))
    shapes = _output_shapes(sym, tuple(data_shape))
    nodes = json.loads(sym.tojson())['nodes']
    total = 0
    for node in nodes:
        op = node['op']
        if op not in ('Convolution', 'FullyConnected'):
            continue
        attrs = node.get('attrs', node.get('param', {}))
        src_id, src_index = node['inputs'][0][0], node['inputs'][0][1]
        in_shape = shapes[nodes[src_id]['name']][src_index]
        out_shape = shapes[node['name']][0]
        no_bias = _is_true(attrs.get('no_bias', False))
        if op == 'Convolution':
            kh, kw = _parse_tuple(attrs['kernel'])
            cin = in_shape[1]
            cout, hout, wout = out_shape[1], out_shape[2], out_shape[3]
            flops = 2 * cin * kh * kw * hout * wout * cout
            if no_bias:
                flops -= hout * wout * cout
            if 'num_group' in attrs:
                flops //= int(attrs['num_group'])
        else:
            fan_in = int(np.prod(in_shape[1:]))
            fan_out = int(attrs['num_hidden'])
            flops = 2 * fan_in * fan_out
            if no_bias:
                flops -= fan_out
        total += int(flops)
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description='Count the FLOPs of a checkpoint\'s fc1 embedding.')
    parser.add_argument('--model', required=True, help='checkpoint as prefix,epoch')
    parser.add_argument('--image-size', default='112,112', help='input height,width')
    args = parser.parse_args(argv)
    prefix, epoch = args.model.rsplit(',', 1)
    sym, _, _ = mx.model.load_checkpoint(prefix, int(epoch))
    internals = sym.get_internals()
    if 'fc1_output' in internals.list_outputs():
        sym = internals['fc1_output']
    height, width = _parse_tuple(args.image_size)
    print('FLOPs: %d' % count_flops(sym, data=(1, 3, height, width)))


if __name__ == '__main__':
    main()
