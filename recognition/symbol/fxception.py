"""Xception backbone from the 2019 release's older src/symbols generation (--network xception)."""
import mxnet as mx

from recognition.symbol import symbol_utils

# Channels of: stem conv2, entry blocks 2-4 (block 4's width is also the middle flow's), exit block 5,
# exit sepconv 6a, exit sepconv 6b. The stem's first conv has half of the first entry.
FILTERS_SMALL = (64, 64, 128, 364, 512, 768, 1024)      # the 2019 default
FILTERS_ORIGINAL = (64, 128, 256, 728, 1024, 1536, 2048)  # the paper's widths, net_input >= 2

MIDDLE_BLOCKS = 8
BN_EPS = 2e-5
WORKSPACE = 256


def _bn(data, name):
    return mx.sym.BatchNorm(data=data, fix_gamma=False, eps=BN_EPS, momentum=0.9, name=name)


def _relu(data, name):
    return mx.sym.Activation(data=data, act_type='relu', name=name)


def _conv(data, num_filter, name, kernel=(1, 1), stride=(1, 1), pad=(0, 0), with_bn=True,
          with_relu=False):
    """Convolution `<name>_conv2d` (with bias) -> [BN `<name>_bn`] -> [ReLU `<name>_relu`]."""
    body = mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                              workspace=WORKSPACE, name=name + '_conv2d')
    if with_bn:
        body = _bn(body, name + '_bn')
    if with_relu:
        body = _relu(body, name + '_relu')
    return body


def separable_conv(data, in_channels, out_channels, name):
    """3x3 depthwise + 1x1 pointwise conv, then BN `<name>_bn`.

    Kept from 2019: the depthwise part is one single-filter Convolution with bias per input channel
    (`<name>_depthwise_kernel_<i>`) after a SliceChannel, not one grouped conv. Checkpoints store
    one weight and one bias per channel, hence the 23,278 arguments of the default net.
    """
    channels = mx.sym.SliceChannel(data=data, axis=1, num_outputs=in_channels)
    depthwise = [mx.sym.Convolution(data=channels[i], num_filter=1, kernel=(3, 3), pad=(1, 1),
                                    workspace=WORKSPACE, name='%s_depthwise_kernel_%d' % (name, i))
                 for i in range(in_channels)]
    body = _conv(mx.sym.Concat(*depthwise), out_channels, name + '_pointwise_kernel', with_bn=False)
    return _bn(body, name + '_bn')


def _downsample_block(data, in_channels, mid_channels, out_channels, name, pool_name, relu_first=True):
    """Two separable convs, a 3x3/2 max-pool, plus a strided 1x1 conv shortcut `<name>_conv1`.

    relu_first=False is entry block 2: its input is already activated, and its only ReLU sits
    between the separable convs but is still named `<name>_sepconv1_relu`.
    """
    shortcut = _conv(data, out_channels, name + '_conv1', stride=(2, 2))
    if relu_first:
        body = _relu(data, name + '_sepconv1_relu')
        body = separable_conv(body, in_channels, mid_channels, name + '_sepconv1')
        body = _relu(body, name + '_sepconv2_relu')
    else:
        body = separable_conv(data, in_channels, mid_channels, name + '_sepconv1')
        body = _relu(body, name + '_sepconv1_relu')
    body = separable_conv(body, mid_channels, out_channels, name + '_sepconv2')
    body = mx.sym.Pooling(data=body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type='max',
                          name=pool_name)
    return body + shortcut


def _middle_block(data, channels, name):
    """Three ReLU + separable conv pairs with an identity shortcut."""
    body = data
    for k in (1, 2, 3):
        body = _relu(body, '%s_sepconv%d_relu' % (name, k))
        body = separable_conv(body, channels, channels, '%s_sepconv%d' % (name, k))
    return body + data


def get_symbol(config):
    """Xception on the normalised `data`, then the fc1 head (config.net_output).

    config.net_input: 0 makes the first conv stride 2; 1 (default) keeps 112x112 so the last map is
    7x7; 2 or more also switches to the paper's wider FILTERS_ORIGINAL.
    """
    net_input = config.net_input
    if not isinstance(net_input, int) or net_input < 0:
        raise ValueError("net_input=%r is not valid for fxception; expected an int >= 0 (0: stride-2 "
                         "first conv, 1: stride 1, >= 2: stride 1 and the paper's widths)" % (net_input,))
    f = FILTERS_ORIGINAL if net_input >= 2 else FILTERS_SMALL
    print(net_input, config.net_output, config.net_unit)
    # SliceChannel, Concat, the adds and the head's dropout are unnamed; a fresh NameManager makes
    # their names the same on every build.
    with mx.name.NameManager():
        body = symbol_utils.normalize_input(mx.sym.Variable('data'))
        first_stride = (2, 2) if net_input == 0 else (1, 1)
        body = _conv(body, int(f[0] * 0.5), 'Entry_flow_b1_conv1', kernel=(3, 3), stride=first_stride,
                     pad=(1, 1), with_relu=True)
        body = _conv(body, f[0], 'Entry_flow_b1_conv2', kernel=(3, 3), pad=(1, 1), with_relu=True)
        body = _downsample_block(body, f[0], f[1], f[1], 'Entry_flow_b2', 'Entry_flow_b2_pool',
                                 relu_first=False)
        body = _downsample_block(body, f[1], f[2], f[2], 'Entry_flow_b3', 'Entry_flow_b3_pool')
        body = _downsample_block(body, f[2], f[3], f[3], 'Entry_flow_b4', 'Entry_flow_b4_pool')
        for i in range(MIDDLE_BLOCKS):
            body = _middle_block(body, f[3], 'Middle_flow_block_%d' % i)
        # Kept from 2019: the exit block widens in its second separable conv and its pool is named
        # 'Entry_flow_b5_pool'.
        body = _downsample_block(body, f[3], f[3], f[4], 'Exit_flow_b5', 'Entry_flow_b5_pool')
        body = separable_conv(body, f[4], f[5], 'Exit_flow_b6_sepconv1')
        body = _relu(body, 'Exit_flow_b6_sepconv1_relu')
        body = separable_conv(body, f[5], f[6], 'Exit_flow_b6_sepconv2')
        body = _relu(body, 'Exit_flow_b6_sepconv2_relu')
        # The old heads always used PReLU; their 'GDC' always had 512 groups.
        return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type='prelu')
