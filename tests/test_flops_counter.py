"""count_flops against hand-computed figures for small graphs."""
import mxnet as mx
import pytest

from common.flops_counter import count_flops


def test_convolution_with_and_without_bias():
    data = mx.sym.Variable('data')
    # 3 -> 8 channels, 3x3 kernel, stride 1, pad 1 on 8x8: output 8x8x8.
    no_bias = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), no_bias=True, name='c')
    with_bias = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), name='c')
    assert count_flops(no_bias, data=(1, 3, 8, 8)) == (2 * 3 * 9 - 1) * 8 * 8 * 8
    assert count_flops(with_bias, data=(1, 3, 8, 8)) == 2 * 3 * 9 * 8 * 8 * 8


def test_grouped_convolution_divides_by_groups():
    data = mx.sym.Variable('data')
    dw = mx.sym.Convolution(data, num_filter=4, num_group=4, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                            no_bias=True, name='dw')
    # output 4 x 4x4; per the 2019 rule Cin is the full input channel count, then divide by groups
    assert count_flops(dw, data=(1, 4, 8, 8)) == ((2 * 4 * 9 - 1) * 4 * 4 * 4) // 4


def test_fully_connected_on_4d_and_flattened_inputs():
    data = mx.sym.Variable('data')
    fc = mx.sym.FullyConnected(data, num_hidden=10, name='fc')
    assert count_flops(fc, data=(1, 2, 3, 4)) == 2 * 24 * 10
    # the 2019 counter raised IndexError here (the 'GAP' head); this one counts it
    flat = mx.sym.FullyConnected(mx.sym.Flatten(data), num_hidden=10, no_bias=True, name='fc')
    assert count_flops(flat, data=(1, 2, 3, 4)) == 2 * 24 * 10 - 10


def test_other_operators_count_zero_and_nodes_add_up():
    data = mx.sym.Variable('data')
    body = mx.sym.Convolution(data, num_filter=2, kernel=(1, 1), no_bias=True, name='c1')
    body = mx.sym.BatchNorm(body, name='bn')
    body = mx.sym.Pooling(body, kernel=(2, 2), stride=(2, 2), pool_type='max')
    body = mx.sym.FullyConnected(body, num_hidden=3, name='fc')
    conv = (2 * 1 * 1 - 1) * 4 * 4 * 2
    fc = 2 * (2 * 2 * 2) * 3
    assert count_flops(body, data=(1, 1, 4, 4)) == conv + fc


def test_shape_inference_failure_is_reported():
    data = mx.sym.Variable('data')
    fc = mx.sym.FullyConnected(data, num_hidden=3, name='fc')
    with pytest.raises(ValueError, match='cannot infer'):
        count_flops(fc, data=(0,))
