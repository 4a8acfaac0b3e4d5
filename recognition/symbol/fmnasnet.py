"""MNasNet backbone (built with Gluon) under the fc1 embedding head."""
import mxnet as mx
from mxnet.gluon import nn

from recognition.symbol import symbol_utils

# The 2019 checkpoints were saved from the first Gluon net built in a fresh process, so every
# parameter name starts with 'mnasnet0_'. We pass the prefix explicitly to get the same names on
# every build, however many Gluon blocks the process made before.
PREFIX = 'mnasnet0_'

# Inverted-residual sequences: (expansion t, channels c before the multiplier, repeats n,
# stride of the first block s, kernel of the first block k, name prefix).
SEQUENCES = (
    (3, 24, 3, 2, 3, 'stage2_'),     # 112 -> 56
    (3, 40, 3, 2, 5, 'stage3_'),     # -> 28
    (6, 80, 3, 2, 5, 'stage4_1_'),   # -> 14
    (6, 96, 2, 1, 3, 'stage4_2_'),   # -> 14
    (6, 192, 4, 2, 5, 'stage5_1_'),  # -> 7
    (6, 320, 1, 1, 3, 'stage5_2_'),  # -> 7
)


def gluon_act(act_type):
    """Gluon PReLU (a single learned slope `alpha` of shape (1,)) for 'prelu', else Activation."""
    if act_type == 'prelu':
        return nn.PReLU()
    return nn.Activation(act_type)


def conv_bn(channels, kernel, stride, pad, groups, act_type, prefix, in_channels=0):
    """Conv (no bias) -> BatchNorm -> activation (none if act_type is None), named `<prefix>conv0` etc.

    BatchNorm keeps the Gluon defaults (eps 1e-5, momentum 0.9) whatever config.bn_mom says.
    """
    block = nn.HybridSequential(prefix=prefix)
    with block.name_scope():
        block.add(nn.Conv2D(channels, kernel, strides=stride, padding=pad, groups=groups,
                            use_bias=False, in_channels=in_channels))
        block.add(nn.BatchNorm(scale=True))
        if act_type is not None:
            block.add(gluon_act(act_type))
    return block


def separable_conv(in_channels, out_channels, act_type, prefix):
    """Depthwise 3x3 -> BN -> act -> pointwise 1x1 -> BN -> act."""
    block = nn.HybridSequential(prefix=prefix)
    with block.name_scope():
        block.add(nn.Conv2D(in_channels, 3, strides=1, padding=1, groups=in_channels,
                            use_bias=False, in_channels=in_channels))
        block.add(nn.BatchNorm())
        block.add(gluon_act(act_type))
        block.add(nn.Conv2D(out_channels, 1, strides=1, use_bias=False, in_channels=in_channels))
        block.add(nn.BatchNorm())
        block.add(gluon_act(act_type))
    return block


class ExpandedConv(nn.HybridBlock):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 linear, plus the input if `residual`."""

    def __init__(self, in_channels, out_channels, expansion, stride, kernel, residual, act_type, prefix):
        super().__init__(prefix=prefix)
        hidden = in_channels * expansion
        self.residual = residual
        with self.name_scope():
            self.bottleneck = nn.HybridSequential()
            self.bottleneck.add(
                conv_bn(hidden, 1, 1, 0, 1, act_type, 'expand_'),
                conv_bn(hidden, kernel, stride, kernel // 2, hidden, act_type, 'dwise_'),
                conv_bn(out_channels, 1, 1, 0, 1, None, 'linear_'))

    def hybrid_forward(self, F, x):
        out = self.bottleneck(x)
        if self.residual:
            out = F.elemwise_add(out, x)
        return out


def expanded_conv_sequence(expansion, kernel, in_channels, out_channels, repeats, stride, act_type,
                           prefix):
    """`repeats` ExpandedConvs; only the first changes stride and width, so the rest are residual.

    Like the 2019 code, `kernel` is used by the first block only; the others are 3x3 (checkpoints
    depend on it).
    """
    seq = nn.HybridSequential(prefix=prefix)
    with seq.name_scope():
        seq.add(ExpandedConv(in_channels, out_channels, expansion, stride, kernel, False, act_type,
                             'expandedconv0_'))
        for i in range(1, repeats):
            seq.add(ExpandedConv(out_channels, out_channels, expansion, 1, 3, True, act_type,
                                 'expandedconv%d_' % i))
    return seq


def last_channels(multiplier):
    """Channel count of the last feature map."""
    return int(1024 * multiplier)


def mnasnet(multiplier, act_type):
    """The MNasNet feature extractor: 112x112 input -> 7x7 map of int(1024 * multiplier) channels."""
    first = int(32 * multiplier)
    second = int(16 * multiplier)
    net = nn.HybridSequential(prefix=PREFIX)
    with net.name_scope():
        net.add(conv_bn(first, 3, 1, 1, 1, act_type, 'stage1_conv0_'))
        net.add(separable_conv(first, second, act_type, 'stage1_sepconv0_'))
        channels = second
        for expansion, width, repeats, stride, kernel, prefix in SEQUENCES:
            out_channels = int(width * multiplier)
            net.add(expanded_conv_sequence(expansion, kernel, channels, out_channels, repeats, stride,
                                           act_type, prefix))
            channels = out_channels
        net.add(conv_bn(last_channels(multiplier), 1, 1, 0, 1, act_type, 'stage5_3_'))
    return net


def get_symbol(config):
    """MNasNet(config.net_multiplier) on the normalised `data`, then the fc1 head."""
    multiplier = config.net_multiplier
    if not int(16 * multiplier) >= 1:
        raise ValueError("net_multiplier=%r is too small for MNasNet; expected a value >= 0.0625 "
                         "so that every stage keeps at least one channel" % (multiplier,))
    net = mnasnet(multiplier, config.net_act)
    body = net(symbol_utils.normalize_input(mx.sym.Variable('data')))
    return symbol_utils.get_fc1(body, config.emb_size, config.net_output,
                                input_channel=last_channels(multiplier), act_type=config.net_act,
                                bn_mom=config.bn_mom)
