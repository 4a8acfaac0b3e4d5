"""MobileNetV2 backbone (built with Gluon) from the 2019 release's older src/symbols (--network mv2)."""
import mxnet as mx
from mxnet.gluon import nn

from recognition.symbol import symbol_utils

# Channel widths before the multiplier: the stem, then the output of each of the 7 sequences.
WIDTHS = (32, 16, 24, 32, 64, 96, 160, 320)

# Inverted-residual sequences: (expansion t, index into WIDTHS of the output, blocks n, stride s).
SEQUENCES = (
    (1, 1, 1, 1),
    (6, 2, 2, 2),  # 112 -> 56
    (6, 3, 3, 2),  # -> 28
    (6, 4, 4, 1),
    (6, 5, 3, 2),  # -> 14
    (6, 6, 3, 2),  # -> 7
    (6, 7, 1, 1),
)


def conv_bn(channels, kernel, stride=1, groups=1, relu=True):
    """Conv (no bias, 'same' padding) -> BatchNorm (Gluon defaults) -> [ReLU] in a HybridSequential."""
    block = nn.HybridSequential()
    block.add(nn.Conv2D(channels, kernel, strides=stride, padding=kernel // 2, groups=groups,
                        use_bias=False),
              nn.BatchNorm(scale=True))
    if relu:
        block.add(nn.Activation('relu'))
    return block


class InvertedResidual(nn.HybridBlock):
    """1x1 expand -> 3x3 depthwise (stride) -> 1x1 linear, with a shortcut when the stride is 1.

    Kept from 2019: the expansion is `t * base_channels`, the *sequence's* input width, even for the
    later blocks whose input already has `channels`; and a stride-1 block that changes shape gets a
    1x1 conv + BN + ReLU projection `conv_res` on its shortcut.
    """

    def __init__(self, t, base_channels, channels, stride, same_shape=True, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride
        self.same_shape = same_shape
        hidden = base_channels * t
        with self.name_scope():
            self.bottleneck = nn.HybridSequential()
            self.bottleneck.add(conv_bn(hidden, 1),
                                conv_bn(hidden, 3, stride=stride, groups=hidden),
                                conv_bn(channels, 1, relu=False))
            if stride == 1 and not same_shape:
                self.conv_res = conv_bn(channels, 1)

    def hybrid_forward(self, F, x):
        out = self.bottleneck(x)
        if self.stride == 1:
            if not self.same_shape:
                x = self.conv_res(x)
            out = F.elemwise_add(out, x)
        return out


def last_channels(width_mult):
    """Channels of the final 1x1 conv: 1280, widened only for multipliers above 1."""
    return int(1280 * width_mult) if width_mult > 1.0 else 1280


class MobilenetV2(nn.HybridBlock):
    """The feature extractor: 112x112 input -> 7x7 map of last_channels(width_mult) channels.

    The class names and the order in which blocks are made fix the 2019 parameter names. The stem
    and the InvertedResiduals are made outside any name scope (`conv0_weight`,
    `invertedresidual3_conv1_weight`, ...); the last 1x1 conv inside it
    (`mobilenetv20_hybridsequential0_conv0_weight`).
    """

    def __init__(self, width_mult=1.0, **kwargs):
        super().__init__(**kwargs)
        widths = [int(w * width_mult) for w in WIDTHS]
        blocks = [conv_bn(widths[0], 3)]
        for t, out_index, repeats, stride in SEQUENCES:
            base, channels = widths[out_index - 1], widths[out_index]
            seq = nn.HybridSequential()
            seq.add(InvertedResidual(t, base, channels, stride, same_shape=False))
            for _ in range(repeats - 1):
                seq.add(InvertedResidual(t, base, channels, 1))
            blocks.append(seq)
        with self.name_scope():
            self.features = nn.HybridSequential()
            with self.features.name_scope():
                self.features.add(*blocks)
                self.features.add(conv_bn(last_channels(width_mult), 1))

    def hybrid_forward(self, F, x):
        return self.features(x)


def get_symbol(config):
    """MobilenetV2(config.net_multiplier) on the normalised `data`, then the fc1 head.

    The 2019 builder always used multiplier 1 and head 'E' (the defaults of net_multiplier and
    net_output). Gluon took the parameter names from mxnet's global name counter, so only the first
    build in a fresh process got them; we build inside a fresh `mx.name.NameManager()` so that every
    build gets those fresh-process names.
    """
    width_mult = config.net_multiplier
    if not int(16 * width_mult) >= 1:
        raise ValueError("net_multiplier=%r is too small for MobileNetV2; expected a value >= 0.0625 "
                         "so that every layer keeps at least one channel" % (width_mult,))
    channels = last_channels(width_mult)
    symbol_utils.check_gdc_channels(channels, config.net_output, network='MobileNetV2')
    with mx.name.NameManager():
        net = MobilenetV2(width_mult)
        body = net(symbol_utils.normalize_input(mx.sym.Variable('data')))
        # The old heads always used PReLU.
        return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type='prelu')
