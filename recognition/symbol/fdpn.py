"""Dual Path Networks 68/92/107/131 from the 2019 release's older src/symbols (--network dpnNN)."""
import mxnet as mx

from recognition.symbol import symbol_utils

# num_layers -> (k_R, groups of the 3x3 convs, blocks per stage conv2..conv5,
#                dense-path increment per block in each stage)
DPN_SPECS = {
    68: (128, 32, (3, 4, 12, 3), (16, 32, 32, 64)),
    92: (96, 32, (3, 4, 20, 3), (16, 32, 24, 128)),
    107: (200, 50, (4, 8, 20, 3), (20, 64, 64, 128)),
    131: (160, 40, (4, 8, 28, 3), (16, 32, 32, 128)),
}

# Residual-path width of the stages conv2..conv5.
STAGE_WIDTHS = (256, 512, 1024, 2048)

HEAD_BN_EPS = 2e-5
WORKSPACE = 256


def _head_bn(data, name):
    return mx.sym.BatchNorm(data=data, fix_gamma=False, eps=HEAD_BN_EPS, momentum=0.9, name=name)


def _head_conv(data, num_filter, kernel, stride, pad, name):
    return mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                              no_bias=True, workspace=WORKSPACE, name=name)


def residual_unit_v3(data, num_filter, stride, dim_match, name):
    """The fresnet 'IR' unit: bn1, conv1, bn2, PReLU relu1, conv2 (strided), bn3, + shortcut."""
    body = _head_bn(data, name + '_bn1')
    body = _head_conv(body, num_filter, (3, 3), (1, 1), (1, 1), name + '_conv1')
    body = _head_bn(body, name + '_bn2')
    body = symbol_utils.Act(body, 'prelu', name + '_relu1')
    body = _head_conv(body, num_filter, (3, 3), stride, (1, 1), name + '_conv2')
    body = _head_bn(body, name + '_bn3')
    if dim_match:
        shortcut = data
    else:
        shortcut = _head_conv(data, num_filter, (1, 1), stride, (0, 0), name + '_conv1sc')
        shortcut = _head_bn(shortcut, name + '_sc')
    return body + shortcut


def get_head(data, version_input, num_filter):
    """The old symbol_utils stem: normalise, then downsample by 2 (input 0: by 4).

    version_input 0: 7x7/2 conv0 (num_filter) -> bn0 -> PReLU relu0 -> 3x3/2 max-pool.
    Otherwise: 3x3 conv0 with min(num_filter, 64) filters -> bn0 -> relu0 -> a stride-2
    residual_unit_v3 named 'head'.
    """
    body = symbol_utils.normalize_input(data)
    if version_input == 0:
        body = _head_conv(body, num_filter, (7, 7), (2, 2), (3, 3), 'conv0')
        body = _head_bn(body, 'bn0')
        body = symbol_utils.Act(body, 'prelu', 'relu0')
        return mx.sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type='max')
    num_filter = min(num_filter, 64)
    body = _head_conv(body, num_filter, (3, 3), (1, 1), (1, 1), 'conv0')
    body = _head_bn(body, 'bn0')
    body = symbol_utils.Act(body, 'prelu', 'relu0')
    return residual_unit_v3(body, num_filter, (2, 2), False, 'head')


def _bn_relu_conv(data, num_filter, kernel, pad, stride, num_group, name):
    """Pre-activation conv: BN `<name>__bn__bn` -> ReLU `<name>__ac__relu` -> conv `<name>__conv`.

    The doubled `__bn` and the mxnet-default BN eps (1e-3) are the 2019 names and settings.
    """
    body = mx.sym.BatchNorm(data=data, fix_gamma=False, momentum=0.9, name=name + '__bn__bn')
    body = mx.sym.Activation(data=body, act_type='relu', name=name + '__ac__relu')
    return mx.sym.Convolution(data=body, num_filter=num_filter, num_group=num_group, kernel=kernel,
                              pad=pad, stride=stride, no_bias=True, name=name + '__conv')


def dual_path_block(data, width, bottleneck, inc, groups, name, block_type):
    """One DPN block; returns [residual path, dense path].

    block_type 'proj' (stride 1) and 'down' (stride 2) start a stage with a 1x1 projection of the
    input into both paths; 'normal' reuses the incoming pair.
    """
    stride = 2 if block_type == 'down' else 1
    if isinstance(data, list):
        data_in = mx.sym.Concat(data[0], data[1], name=name + '_cat-input')
    else:
        data_in = data
    if block_type == 'normal':
        residual, dense = data
    else:
        proj_name = '%s_c1x1-w(s/%d)' % (name, stride)
        proj = _bn_relu_conv(data_in, width + 2 * inc, (1, 1), (0, 0), (stride, stride), 1, proj_name)
        residual = mx.sym.slice_axis(proj, axis=1, begin=0, end=width, name=proj_name + '-split1')
        dense = mx.sym.slice_axis(proj, axis=1, begin=width, end=width + 2 * inc,
                                  name=proj_name + '-split2')
    body = _bn_relu_conv(data_in, bottleneck, (1, 1), (0, 0), (1, 1), 1, name + '_c1x1-a')
    body = _bn_relu_conv(body, bottleneck, (3, 3), (1, 1), (stride, stride), groups, name + '_c3x3-b')
    body = _bn_relu_conv(body, width + inc, (1, 1), (0, 0), (1, 1), 1, name + '_c1x1-c')
    new_residual = mx.sym.slice_axis(body, axis=1, begin=0, end=width, name=name + '_c1x1-c-split1')
    new_dense = mx.sym.slice_axis(body, axis=1, begin=width, end=width + inc,
                                  name=name + '_c1x1-c-split2')
    return [mx.sym.ElementWiseSum(residual, new_residual, name=name + '_sum'),
            mx.sym.Concat(dense, new_dense, name=name + '_cat')]


def output_channels(num_layers):
    """Channels of the final map: the last residual width plus the whole last dense path."""
    _, _, blocks, incs = DPN_SPECS[num_layers]
    return STAGE_WIDTHS[-1] + (blocks[-1] + 2) * incs[-1]


def get_symbol(config):
    """DPN-<config.num_layers> on get_head(data, config.net_input, 128), then the fc1 head.

    With the default net_input 1 a 112x112 input ends as a 7x7 map.
    """
    num_layers = config.get('num_layers')
    if num_layers not in DPN_SPECS:
        raise ValueError("num_layers=%r is not a DPN depth; expected one of %s"
                         % (num_layers, sorted(DPN_SPECS)))
    net_input = config.net_input
    if not isinstance(net_input, int) or net_input < 0:
        raise ValueError("net_input=%r is not valid for fdpn; expected an int >= 0 "
                         "(0: 7x7/2 conv + max-pool stem, otherwise 3x3 conv + residual unit)"
                         % (net_input,))
    symbol_utils.check_gdc_channels(output_channels(num_layers), config.net_output,
                                    network='DPN-%d' % num_layers)
    k_r, groups, blocks, incs = DPN_SPECS[num_layers]
    print(config.net_se, net_input, config.net_output, config.net_unit)
    # The normalisation, the head's residual add (or max-pool) and the fc1 head's dropout are
    # unnamed; a fresh NameManager makes their names the same on every build.
    with mx.name.NameManager():
        body = get_head(mx.sym.Variable('data'), net_input, 128)
        for stage, (width, num_blocks, inc) in enumerate(zip(STAGE_WIDTHS, blocks, incs), start=2):
            bottleneck = k_r * width // 256
            for block in range(1, num_blocks + 1):
                if block > 1:
                    block_type = 'normal'
                else:
                    block_type = 'proj' if stage == 2 else 'down'
                body = dual_path_block(body, width, bottleneck, inc, groups,
                                       'conv%d_x__%d' % (stage, block), block_type)
        body = mx.sym.Concat(body[0], body[1], name='conv5_x_x_cat-final')
        # The old heads always used PReLU.
        return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type='prelu')
