"""ResNet face backbones (r50, r100, ...): every residual unit version of the 2019 fresnet."""
import mxnet as mx

from recognition.symbol import symbol_utils

# num_layers -> residual units in each of the 4 stages.
UNITS_PER_STAGE = {
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    49: [3, 4, 14, 3],
    50: [3, 4, 14, 3],
    74: [3, 6, 24, 3],
    90: [3, 8, 30, 3],
    98: [3, 4, 38, 3],
    99: [3, 8, 35, 3],
    100: [3, 13, 30, 3],
    101: [3, 4, 23, 3],
    124: [3, 13, 40, 5],
    152: [3, 8, 36, 3],
    160: [3, 24, 49, 3],
    200: [3, 24, 36, 3],
    269: [3, 30, 48, 8],
}

# Output channels of the stem and of the 4 stages.
BASIC_FILTERS = [64, 64, 128, 256, 512]
BOTTLENECK_FILTERS = [64, 256, 512, 1024, 2048]
# The 2019 code switches to bottleneck units from this depth on. No entry of UNITS_PER_STAGE reaches
# it, so the bottleneck path is only reachable through resnet() directly.
BOTTLENECK_MIN_LAYERS = 500

BN_EPS = 2e-5


def _conv(data, num_filter, kernel, stride, name, opts, no_bias=True):
    """Convolution with 'same' padding for odd kernels (pad = kernel // 2)."""
    return mx.sym.Convolution(data=data, num_filter=num_filter, kernel=(kernel, kernel),
                              stride=(stride, stride), pad=(kernel // 2, kernel // 2), no_bias=no_bias,
                              workspace=opts['workspace'], name=name)


def _bn(data, name, opts, fix_gamma=False):
    return mx.sym.BatchNorm(data=data, fix_gamma=fix_gamma, eps=BN_EPS, momentum=opts['bn_mom'], name=name)


def _branch_layers(num_filter, stride, bottle_neck, stride_index):
    """(filters, kernel, stride) of each conv of a residual branch; the stride goes on one conv only."""
    if bottle_neck:
        quarter = int(num_filter * 0.25)
        layers = [[quarter, 1, 1], [quarter, 3, 1], [num_filter, 1, 1]]
    else:
        layers = [[num_filter, 3, 1], [num_filter, 3, 1]]
    layers[stride_index][2] = stride
    return layers


def _squeeze_excite(body, num_filter, name, opts):
    """Channel gate: global pool -> 1x1 conv (C/16, with bias) -> act -> 1x1 conv (C) -> sigmoid."""
    gate = mx.sym.Pooling(data=body, global_pool=True, kernel=(7, 7), pool_type='avg', name=name + '_se_pool1')
    gate = _conv(gate, num_filter // 16, 1, 1, name + '_se_conv1', opts, no_bias=False)
    gate = symbol_utils.Act(gate, opts['act_type'], name + '_se_relu1')
    gate = _conv(gate, num_filter, 1, 1, name + '_se_conv2', opts, no_bias=False)
    gate = mx.sym.Activation(data=gate, act_type='sigmoid', name=name + '_se_sigmoid')
    return mx.sym.broadcast_mul(body, gate)


def _projection_shortcut(data, num_filter, stride, dim_match, name, opts):
    """Identity, or a strided 1x1 conv `<name>_conv1sc` + BatchNorm `<name>_sc` when shapes change."""
    if dim_match:
        return data
    shortcut = _conv(data, num_filter, 1, stride, name + '_conv1sc', opts)
    return _bn(shortcut, name + '_sc', opts)


def residual_unit_v1(data, num_filter, stride, dim_match, name, bottle_neck, opts, stride_first=True):
    """Post-activation unit: (conv -> bn -> act)* ending in bn, [SE], + shortcut, act `<name>_relu3`.

    stride_first=True is the 'v1' unit (stride on the first conv, used with input version 0);
    False is 'v1_L' (stride on the last conv).
    """
    layers = _branch_layers(num_filter, stride, bottle_neck, 0 if stride_first else -1)
    body = data
    for i, (filters, kernel, conv_stride) in enumerate(layers, start=1):
        body = _conv(body, filters, kernel, conv_stride, '%s_conv%d' % (name, i), opts)
        body = _bn(body, '%s_bn%d' % (name, i), opts)
        if i < len(layers):
            body = symbol_utils.Act(body, opts['act_type'], '%s_relu%d' % (name, i))
    if opts['use_se']:
        body = _squeeze_excite(body, num_filter, name, opts)
    shortcut = _projection_shortcut(data, num_filter, stride, dim_match, name, opts)
    # Named relu3 whatever the branch depth, as in the 2019 checkpoints.
    return symbol_utils.Act(body + shortcut, opts['act_type'], name + '_relu3')


def residual_unit_v2(data, num_filter, stride, dim_match, name, bottle_neck, opts):
    """Pre-activation unit: (bn -> act -> conv)*, [SE], + shortcut; no activation after the add.

    The stride sits on the first 3x3 conv. The projection shortcut is a bare 1x1 conv `<name>_sc`
    applied to the first activation, not to the unit input.
    """
    layers = _branch_layers(num_filter, stride, bottle_neck, 1 if bottle_neck else 0)
    body = data
    first_act = None
    for i, (filters, kernel, conv_stride) in enumerate(layers, start=1):
        body = _bn(body, '%s_bn%d' % (name, i), opts)
        body = symbol_utils.Act(body, opts['act_type'], '%s_relu%d' % (name, i))
        if first_act is None:
            first_act = body
        body = _conv(body, filters, kernel, conv_stride, '%s_conv%d' % (name, i), opts)
    if opts['use_se']:
        body = _squeeze_excite(body, num_filter, name, opts)
    if dim_match:
        shortcut = data
    else:
        shortcut = _conv(first_act, num_filter, 1, stride, name + '_sc', opts)
    return body + shortcut


def residual_unit_v3(data, num_filter, stride, dim_match, name, bottle_neck, opts):
    """The 'IR' unit of ArcFace: bn -> (conv -> bn -> act)* ending in bn, [SE], + shortcut, no act.

    The stride sits on the last conv.
    """
    layers = _branch_layers(num_filter, stride, bottle_neck, -1)
    body = _bn(data, name + '_bn1', opts)
    for i, (filters, kernel, conv_stride) in enumerate(layers, start=1):
        body = _conv(body, filters, kernel, conv_stride, '%s_conv%d' % (name, i), opts)
        body = _bn(body, '%s_bn%d' % (name, i + 1), opts)
        if i < len(layers):
            body = symbol_utils.Act(body, opts['act_type'], '%s_relu%d' % (name, i))
    if opts['use_se']:
        body = _squeeze_excite(body, num_filter, name, opts)
    shortcut = _projection_shortcut(data, num_filter, stride, dim_match, name, opts)
    return body + shortcut


def residual_unit(data, num_filter, stride, dim_match, name, bottle_neck, opts):
    """Pick the unit by net_unit: 1 -> v1 (input version 0) or v1_L, 2 -> v2, 4 -> error, else v3."""
    version = opts['version_unit']
    if version == 1:
        return residual_unit_v1(data, num_filter, stride, dim_match, name, bottle_neck, opts,
                                stride_first=opts['version_input'] == 0)
    if version == 2:
        return residual_unit_v2(data, num_filter, stride, dim_match, name, bottle_neck, opts)
    if version == 4:
        # The 2019 code dispatches to residual_unit_v4, which it never defines (a NameError).
        raise ValueError("net_unit=4 selects residual_unit_v4, which the 2019 fresnet never defined; "
                         "use net_unit 1, 2 or 3")
    return residual_unit_v3(data, num_filter, stride, dim_match, name, bottle_neck, opts)


def _stem(data, version_input, first_filters, opts):
    """Input normalisation and conv0 -> bn0 -> relu0 for input versions 0, 1 and 2."""
    if version_input == 2:
        # Learned input normalisation instead of the fixed (x - 127.5) / 128.
        body = _bn(data, 'bn_data', opts, fix_gamma=True)
        kernel, stride = 3, 1
    else:
        body = mx.sym.identity(data=data, name='id')
        body = symbol_utils.normalize_input(body)
        # Version 0 is the ImageNet-style 7x7/2 stem, but without the max-pool (a 112 input ends
        # at 4x4 instead of 7x7).
        kernel, stride = (7, 2) if version_input == 0 else (3, 1)
    body = _conv(body, first_filters, kernel, stride, 'conv0', opts)
    body = _bn(body, 'bn0', opts)
    return symbol_utils.Act(body, opts['act_type'], 'relu0')


def resnet(units, filter_list, bottle_neck, config):
    """Stem, 4 stages (each starting with a stride-2 unit), optional 1x1 reduction, then the fc1 head."""
    if len(units) != 4 or len(filter_list) != 5:
        raise ValueError("expected 4 stages and 5 filter counts, got units=%s and filter_list=%s"
                         % (units, filter_list))
    if config.net_input < 0:
        raise ValueError("net_input must be 0, 1 or 2, got %r" % (config.net_input,))
    opts = {
        'use_se': config.net_se,
        'version_input': config.net_input,
        'version_unit': config.net_unit,
        'act_type': config.net_act,
        'bn_mom': config.bn_mom,
        'workspace': config.workspace,
    }
    # The 2019 training logs show this line.
    print(config.net_se, config.net_input, config.net_output, config.net_unit, config.net_act)
    data = mx.sym.Variable(name='data')
    body = _stem(data, config.net_input, filter_list[0], opts)
    for stage, num_units in enumerate(units, start=1):
        num_filter = filter_list[stage]
        body = residual_unit(body, num_filter, 2, False, 'stage%d_unit1' % stage, bottle_neck, opts)
        for unit in range(2, num_units + 1):
            body = residual_unit(body, num_filter, 1, True, 'stage%d_unit%d' % (stage, unit), bottle_neck, opts)
    if bottle_neck:
        body = _conv(body, 512, 1, 1, 'convd', opts)
        body = _bn(body, 'bnd', opts)
        body = symbol_utils.Act(body, opts['act_type'], 'relud')
    return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type=config.net_act,
                                bn_mom=config.bn_mom)


def get_symbol(config):
    """The fc1 embedding symbol of the ResNet with config.num_layers layers."""
    num_layers = config.num_layers
    if num_layers not in UNITS_PER_STAGE:
        raise ValueError("fresnet has no num_layers=%r; valid depths: %s"
                         % (num_layers, ', '.join(str(d) for d in sorted(UNITS_PER_STAGE))))
    bottle_neck = num_layers >= BOTTLENECK_MIN_LAYERS
    filter_list = BOTTLENECK_FILTERS if bottle_neck else BASIC_FILTERS
    return resnet(UNITS_PER_STAGE[num_layers], filter_list, bottle_neck, config)
