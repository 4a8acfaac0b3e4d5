"""Inception-ResNet-v2 backbone from the 2019 release's older src/symbols generation (--network irv2)."""
import mxnet as mx

from recognition.symbol import symbol_utils

LAST_CHANNELS = 1536


def _conv_bn(data, num_filter, kernel, stride=(1, 1), pad=(0, 0), with_act=True):
    """Convolution (with bias) -> BatchNorm -> ReLU, all unnamed.

    The BatchNorm keeps mxnet's defaults (fix_gamma=True, eps 1e-3, momentum 0.9) like the 2019 code.
    """
    body = mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad)
    body = mx.sym.BatchNorm(data=body)
    if with_act:
        body = mx.sym.Activation(data=body, act_type='relu')
    return body


def _scaled_residual(net, towers, channels, scale, with_act):
    """net + scale * conv1x1(concat(towers)), then ReLU unless with_act is False."""
    mixed = mx.sym.Concat(*towers)
    up = _conv_bn(mixed, channels, (1, 1), with_act=False)
    net = net + scale * up
    if with_act:
        net = mx.sym.Activation(data=net, act_type='relu')
    return net


def block35(net, scale):
    """Inception-ResNet-A on the 320-channel map."""
    tower0 = _conv_bn(net, 32, (1, 1))
    tower1 = _conv_bn(_conv_bn(net, 32, (1, 1)), 32, (3, 3), pad=(1, 1))
    tower2 = _conv_bn(net, 32, (1, 1))
    tower2 = _conv_bn(tower2, 48, (3, 3), pad=(1, 1))
    tower2 = _conv_bn(tower2, 64, (3, 3), pad=(1, 1))
    return _scaled_residual(net, [tower0, tower1, tower2], 320, scale, True)


def block17(net, scale):
    """Inception-ResNet-B on the 1088-channel map.

    Kept from 2019: the 1x1 conv has 129 filters (not 128), and the 1x7 / 7x1 convs pad (1, 2) and
    (2, 1), which still gives back the input size.
    """
    tower0 = _conv_bn(net, 192, (1, 1))
    tower1 = _conv_bn(net, 129, (1, 1))
    tower1 = _conv_bn(tower1, 160, (1, 7), pad=(1, 2))
    tower1 = _conv_bn(tower1, 192, (7, 1), pad=(2, 1))
    return _scaled_residual(net, [tower0, tower1], 1088, scale, True)


def block8(net, scale, with_act=True):
    """Inception-ResNet-C on the 2080-channel map."""
    tower0 = _conv_bn(net, 192, (1, 1))
    tower1 = _conv_bn(net, 192, (1, 1))
    tower1 = _conv_bn(tower1, 224, (1, 3), pad=(0, 1))
    tower1 = _conv_bn(tower1, 256, (3, 1), pad=(1, 0))
    return _scaled_residual(net, [tower0, tower1], 2080, scale, with_act)


def _stem(data, first_stride):
    """Stem and Mixed-5b: 112x112 input -> 52x52x320 (first_stride 1) or 25x25x320 (stride 2)."""
    body = _conv_bn(data, 32, (3, 3), stride=first_stride)
    body = _conv_bn(body, 32, (3, 3))
    body = _conv_bn(body, 64, (3, 3), pad=(1, 1))
    # Kept from 2019: this max-pool's output is unused (the next conv reads the conv above). It has
    # no parameters; building it keeps the automatic op names those of the 2019 graph.
    mx.sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pool_type='max')
    body = _conv_bn(body, 80, (1, 1))
    body = _conv_bn(body, 192, (3, 3))
    body = mx.sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pool_type='max')

    tower0 = _conv_bn(body, 96, (1, 1))
    tower1 = _conv_bn(_conv_bn(body, 48, (1, 1)), 64, (5, 5), pad=(2, 2))
    tower2 = _conv_bn(body, 64, (1, 1))
    tower2 = _conv_bn(tower2, 96, (3, 3), pad=(1, 1))
    tower2 = _conv_bn(tower2, 96, (3, 3), pad=(1, 1))
    tower3 = mx.sym.Pooling(data=body, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type='avg')
    tower3 = _conv_bn(tower3, 64, (1, 1))
    return mx.sym.Concat(tower0, tower1, tower2, tower3)


def _reduction_a(net):
    """320 -> 1088 channels, stride 2."""
    tower0 = _conv_bn(net, 384, (3, 3), stride=(2, 2))
    tower1 = _conv_bn(net, 256, (1, 1))
    tower1 = _conv_bn(tower1, 256, (3, 3), pad=(1, 1))
    tower1 = _conv_bn(tower1, 384, (3, 3), stride=(2, 2))
    pool = mx.sym.Pooling(net, kernel=(3, 3), stride=(2, 2), pool_type='max')
    return mx.sym.Concat(tower0, tower1, pool)


def _reduction_b(net):
    """1088 -> 2080 channels, stride 2."""
    tower0 = _conv_bn(_conv_bn(net, 256, (1, 1)), 384, (3, 3), stride=(2, 2))
    tower1 = _conv_bn(_conv_bn(net, 256, (1, 1)), 288, (3, 3), stride=(2, 2))
    tower2 = _conv_bn(net, 256, (1, 1))
    tower2 = _conv_bn(tower2, 288, (3, 3), pad=(1, 1))
    tower2 = _conv_bn(tower2, 320, (3, 3), stride=(2, 2))
    pool = mx.sym.Pooling(net, kernel=(3, 3), stride=(2, 2), pool_type='max')
    return mx.sym.Concat(tower0, tower1, tower2, pool)


def get_symbol(config):
    """Inception-ResNet-v2 on the normalised `data`, then the fc1 head (config.net_output).

    config.net_input 0 makes the first conv stride 2 (5x5 final map at 112x112), any other value
    stride 1 (12x12 final map).

    Every op is unnamed, so the 2019 parameter names (`convolution0_weight`, `batchnorm0_gamma`, ...)
    came from mxnet's global name counter in a fresh process. We build inside a fresh
    `mx.name.NameManager()` so every call gets those names, whatever was built before.
    """
    net_input = config.net_input
    if not isinstance(net_input, int) or net_input < 0:
        raise ValueError("net_input=%r is not valid for finception_resnet_v2; expected an int >= 0 "
                         "(0: stride-2 first conv, otherwise stride 1)" % (net_input,))
    print(net_input, config.net_output, config.net_unit)
    with mx.name.NameManager():
        body = symbol_utils.normalize_input(mx.sym.Variable('data'))
        body = _stem(body, (2, 2) if net_input == 0 else (1, 1))
        for _ in range(10):
            body = block35(body, 0.17)
        body = _reduction_a(body)
        for _ in range(20):
            body = block17(body, 0.1)
        body = _reduction_b(body)
        for _ in range(9):
            body = block8(body, 0.2)
        body = block8(body, 1.0, with_act=False)
        body = _conv_bn(body, LAST_CHANNELS, (1, 1))
        # The old heads always used PReLU; their 'GDC' always had 512 groups (here 1536 / 512 = 3
        # channels per group).
        return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type='prelu')
