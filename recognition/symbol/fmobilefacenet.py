"""MobileFaceNet backbones (y1, y2): depthwise-separable residual blocks ending in a 512-channel map."""
import mxnet as mx

from recognition.symbol import symbol_utils


def _conv_bn_act(data, num_filter, kernel, stride, pad, name, config, num_group=1):
    """Conv `<name>_conv2d` + BatchNorm `<name>_batchnorm` (mxnet default eps 1e-3) + Act `<name>_relu`."""
    body = symbol_utils.Linear(data, num_filter=num_filter, kernel=kernel, stride=stride, pad=pad,
                               num_group=num_group, name=name, bn_mom=config.bn_mom)
    return symbol_utils.Act(body, config.net_act, name + '_relu')


def depthwise_residual(data, num_out, stride, num_group, name, config):
    """1x1 expansion to num_group channels, 3x3 depthwise conv, then a linear 1x1 projection to num_out."""
    body = _conv_bn_act(data, num_group, (1, 1), (1, 1), (0, 0), name + '_conv_sep', config)
    body = _conv_bn_act(body, num_group, (3, 3), stride, (1, 1), name + '_conv_dw', config,
                        num_group=num_group)
    return symbol_utils.Linear(body, num_filter=num_out, kernel=(1, 1), stride=(1, 1), pad=(0, 0),
                               name=name + '_conv_proj', bn_mom=config.bn_mom)


def residual_blocks(data, num_blocks, num_out, num_group, name, config):
    """num_blocks stride-1 depthwise_residual blocks `<name>_block<i>`, each with an identity shortcut."""
    body = data
    for i in range(num_blocks):
        body = depthwise_residual(body, num_out, (1, 1), num_group, '%s_block%d' % (name, i), config) + body
    return body


def get_symbol(config):
    """The fc1 embedding symbol; config.net_blocks gives the block count of the 4 residual groups."""
    blocks = list(config.net_blocks)
    if len(blocks) != 4 or any(int(b) != b or b < 0 for b in blocks):
        raise ValueError("net_blocks must be 4 non-negative block counts, got %r" % (config.net_blocks,))
    # The 2019 training logs show this line.
    print('in_network', config)
    data = mx.sym.Variable(name='data')
    body = symbol_utils.normalize_input(data)
    body = _conv_bn_act(body, 64, (3, 3), (2, 2), (1, 1), 'conv_1', config)
    if blocks[0] == 1:
        body = _conv_bn_act(body, 64, (3, 3), (1, 1), (1, 1), 'conv_2_dw', config, num_group=64)
    else:
        body = residual_blocks(body, blocks[0], 64, 64, 'res_2', config)
    body = depthwise_residual(body, 64, (2, 2), 128, 'dconv_23', config)
    body = residual_blocks(body, blocks[1], 64, 128, 'res_3', config)
    body = depthwise_residual(body, 128, (2, 2), 256, 'dconv_34', config)
    body = residual_blocks(body, blocks[2], 128, 256, 'res_4', config)
    body = depthwise_residual(body, 128, (2, 2), 512, 'dconv_45', config)
    # 256, not 512, expansion channels in the last group: kept so 2019 checkpoints load.
    body = residual_blocks(body, blocks[3], 128, 256, 'res_5', config)
    body = _conv_bn_act(body, 512, (1, 1), (1, 1), (0, 0), 'conv_6sep', config)
    return symbol_utils.get_fc1(body, config.emb_size, config.net_output, input_channel=512,
                                act_type=config.net_act, bn_mom=config.bn_mom)
