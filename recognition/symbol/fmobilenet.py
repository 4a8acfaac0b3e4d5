"""MobileNet-v1 backbones (m1, m05): 13 depthwise + pointwise pairs, width set by net_multiplier."""
import mxnet as mx

from recognition.symbol import symbol_utils

# (output width in units of the base width, stride of the depthwise conv) for pairs conv_2 .. conv_14.
PAIRS = [(2, 1), (4, 2), (4, 1), (8, 2), (8, 1), (16, 2),
         (16, 1), (16, 1), (16, 1), (16, 1), (16, 1),
         (32, 2), (32, 1)]


def _conv_bn_act(data, num_filter, kernel, stride, pad, name, act_type, num_group=1):
    """Conv `<name>_conv2d` + BatchNorm `<name>_batchnorm` + Act `<name>_relu`.

    The BatchNorm has fix_gamma=True and mxnet's defaults (eps 1e-3, momentum 0.9), ignoring
    config.bn_mom, like the 2019 graph whose checkpoints must load.
    """
    body = mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                              num_group=num_group, no_bias=True, name=name + '_conv2d')
    body = mx.sym.BatchNorm(data=body, fix_gamma=True, name=name + '_batchnorm')
    return symbol_utils.Act(body, act_type, name + '_relu')


def get_symbol(config):
    """The fc1 embedding symbol; base width int(32 * net_multiplier), stem stride 2 only if net_input == 0."""
    base = int(32 * config.net_multiplier)
    if base < 1:
        raise ValueError("net_multiplier=%r gives a base width of %d channels; expected at least 1/32"
                         % (config.net_multiplier, base))
    act_type = config.net_act
    data = mx.sym.Variable(name='data')
    body = symbol_utils.normalize_input(data)
    stem_stride = (2, 2) if config.net_input == 0 else (1, 1)
    body = _conv_bn_act(body, base, (3, 3), stem_stride, (1, 1), 'conv_1', act_type)
    channels = base
    for index, (width, stride) in enumerate(PAIRS, start=2):
        body = _conv_bn_act(body, channels, (3, 3), (stride, stride), (1, 1), 'conv_%d_dw' % index, act_type,
                            num_group=channels)
        channels = base * width
        body = _conv_bn_act(body, channels, (1, 1), (1, 1), (0, 0), 'conv_%d' % index, act_type)
    # get_fc1 keeps its default input_channel=512: with 1024 channels (m1) the GDC conv is grouped
    # with 2 inputs per group, not depthwise, exactly as in the 2019 checkpoints.
    symbol_utils.check_gdc_channels(channels, config.net_output, network='MobileNet (net_multiplier=%r)'
                                    % config.net_multiplier)
    return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type=act_type,
                                bn_mom=config.bn_mom)
