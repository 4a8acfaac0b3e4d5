"""Pieces every backbone shares: input normalisation, activation, and the fc1 embedding heads."""
import mxnet as mx

# Every recognition backbone takes RGB pixels in [0, 255] and normalises inside the graph.
INPUT_MEAN = 127.5
INPUT_SCALE = 0.0078125

# fc_type names accepted by get_fc1. A/B/C/D come from the 2019 release's older src/symbols heads.
FC_TYPES = ('E', 'FC', 'I', 'J', 'GAP', 'GDC', 'GNAP', 'F', 'G', 'H', 'Z',
            'A', 'AX', 'B', 'BX', 'C', 'CX', 'D', 'DX')


def normalize_input(data):
    """(x - 127.5) * 0.0078125, as two unnamed scalar ops like the 2019 graphs."""
    return (data - INPUT_MEAN) * INPUT_SCALE


def Act(data, act_type, name):
    """'prelu' is a LeakyReLU with one learned slope per channel (`<name>_gamma`); else Activation."""
    if act_type == 'prelu':
        return mx.sym.LeakyReLU(data=data, act_type='prelu', name=name)
    return mx.sym.Activation(data=data, act_type=act_type, name=name)


def Linear(data, num_filter=1, kernel=(1, 1), stride=(1, 1), pad=(0, 0), num_group=1, name=None,
           suffix='', bn_mom=0.9):
    """Convolution `<name><suffix>_conv2d` + BatchNorm `<name><suffix>_batchnorm`, no activation.

    The BatchNorm keeps mxnet's default eps (1e-3): 2019 checkpoints were trained with it.
    """
    conv = mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, num_group=num_group,
                              stride=stride, pad=pad, no_bias=True, name='%s%s_conv2d' % (name, suffix))
    return mx.sym.BatchNorm(data=conv, name='%s%s_batchnorm' % (name, suffix), fix_gamma=False,
                            momentum=bn_mom)


def check_gdc_channels(channels, fc_type, input_channel=512, network=''):
    """The 'GDC' head groups its 7x7 conv into `input_channel` groups: the channels must divide."""
    if fc_type == 'GDC' and channels % input_channel:
        raise ValueError("net_output 'GDC' groups the last %d channels of %s into %d groups, so it "
                         "needs a channel count divisible by %d. Use another net_output (e.g. 'E') "
                         "or width" % (channels, network or 'the network', input_channel, input_channel))


def _bn(data, name, fix_gamma, bn_mom):
    return mx.sym.BatchNorm(data=data, fix_gamma=fix_gamma, eps=2e-5, momentum=bn_mom, name=name)


def _gnap(last_conv, num_classes, act_type):
    """The 'GNAP' head: spatial re-weighting by mean feature norm, then global average pooling."""
    filters_in = 512
    body = last_conv
    if num_classes > filters_in:
        body = mx.sym.Convolution(data=body, num_filter=num_classes, kernel=(1, 1), stride=(1, 1),
                                  pad=(0, 0), no_bias=True, name='convx')
        body = _bn(body, 'convx_bn', False, 0.9)
        body = Act(body, act_type, 'convx_relu')
        filters_in = num_classes
    body = _bn(body, 'bn6f', True, 0.9)
    norm = mx.sym.sqrt(mx.sym.sum(data=body * body, axis=1, keepdims=True))
    inverse = mx.sym.broadcast_div(mx.sym.mean(norm), norm)
    body = body * mx.sym.tile(inverse, reps=(1, filters_in, 1, 1))
    fc1 = mx.sym.Pooling(body, kernel=(7, 7), global_pool=True, pool_type='avg')
    if num_classes < filters_in:
        fc1 = _bn(fc1, 'bn6w', True, 0.9)
        fc1 = mx.sym.FullyConnected(data=fc1, num_hidden=num_classes, name='pre_fc1')
    else:
        fc1 = mx.sym.Flatten(data=fc1)
    return _bn(fc1, 'fc1', True, 0.9)


def _legacy_gap_head(body, num_classes, fc_type, bn_mom):
    """Types A/B/C/D of the older heads: BN, PReLU, global pool, then 0-2 more layers.

    A second letter 'X' adds Dropout(0.2) after the pooling.
    """
    body = _bn(body, 'bn1', False, bn_mom)
    body = Act(body, 'prelu', 'relu1')
    body = mx.sym.Pooling(data=body, global_pool=True, kernel=(7, 7), pool_type='avg', name='pool1')
    body = mx.sym.Flatten(data=body)
    if fc_type[1:] == 'X':
        body = mx.sym.Dropout(data=body, p=0.2)
    kind = fc_type[0]
    if kind == 'A':
        return body
    fc1 = mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='pre_fc1')
    if kind == 'B':
        return fc1
    fc1 = _bn(fc1, 'fc1', True, bn_mom)
    if kind == 'D':
        fc1 = Act(fc1, 'prelu', 'fc1_relu')
    return fc1


def get_fc1(last_conv, num_classes, fc_type, input_channel=512, act_type='prelu', bn_mom=0.9):
    """Embedding head on the last feature map; the final layer is named `fc1` (except 'Z', 'A')."""
    if fc_type not in FC_TYPES:
        raise ValueError("unknown net_output %r; expected one of %s" % (fc_type, ', '.join(FC_TYPES)))
    body = last_conv
    if fc_type == 'Z':
        body = _bn(body, 'bn1', False, bn_mom)
        return mx.sym.Dropout(data=body, p=0.4)
    if fc_type == 'E':
        body = _bn(body, 'bn1', False, bn_mom)
        body = mx.sym.Dropout(data=body, p=0.4)
        fc1 = mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='pre_fc1')
        return _bn(fc1, 'fc1', True, bn_mom)
    if fc_type in ('FC', 'I'):
        body = _bn(body, 'bn1', False, bn_mom)
        fc1 = mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='pre_fc1')
        return _bn(fc1, 'fc1', True, bn_mom)
    if fc_type == 'J':
        fc1 = mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='pre_fc1')
        return _bn(fc1, 'fc1', True, bn_mom)
    if fc_type == 'GAP':
        body = _bn(body, 'bn1', False, bn_mom)
        body = Act(body, act_type, 'relu1')
        # global_pool ignores the kernel, but the operator still wants one.
        body = mx.sym.Pooling(data=body, global_pool=True, kernel=(7, 7), pool_type='avg', name='pool1')
        body = mx.sym.Flatten(data=body)
        fc1 = mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='pre_fc1')
        return _bn(fc1, 'fc1', True, bn_mom)
    if fc_type == 'GNAP':
        return _gnap(last_conv, num_classes, act_type)
    if fc_type == 'GDC':
        body = Linear(body, num_filter=input_channel, num_group=input_channel, kernel=(7, 7),
                      pad=(0, 0), stride=(1, 1), name='conv_6dw7_7', bn_mom=bn_mom)
        # An explicit Flatten (no parameters, same output): without it mxnet 1.9.1's oneDNN
        # inference graph hands pre_fc1 a 1x1 map it cannot read from the second forward on.
        body = mx.sym.Flatten(data=body)
        fc1 = mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='pre_fc1')
        return _bn(fc1, 'fc1', True, bn_mom)
    if fc_type == 'F':
        body = _bn(body, 'bn1', False, bn_mom)
        body = mx.sym.Dropout(data=body, p=0.4)
        return mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='fc1')
    if fc_type == 'G':
        body = _bn(body, 'bn1', False, bn_mom)
        return mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='fc1')
    if fc_type == 'H':
        return mx.sym.FullyConnected(data=body, num_hidden=num_classes, name='fc1')
    return _legacy_gap_head(body, num_classes, fc_type, bn_mom)
