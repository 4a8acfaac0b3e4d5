"""NASNet-A-Large backbone (Gluon) from the 2019 release's older src/symbols (--network nasnet)."""
import mxnet as mx
from mxnet.gluon import nn

from recognition.symbol import symbol_utils

LAST_CHANNELS = 4032

# Kept from 2019 (a PyTorch port): momentum 0.1, which in mxnet keeps only 10% of the running
# statistics at each step.
BN_EPS = 0.001
BN_MOMENTUM = 0.1


def batch_norm():
    return nn.BatchNorm(epsilon=BN_EPS, momentum=BN_MOMENTUM)


def relu_conv_bn(channels):
    """ReLU -> 1x1 conv (no bias) -> BN."""
    block = nn.HybridSequential()
    block.add(nn.Activation('relu'))
    block.add(nn.Conv2D(channels, 1, strides=1, use_bias=False))
    block.add(batch_norm())
    return block


def _shift(F, x):
    """Drop the first row and column (the PyTorch code's x[:, :, 1:, 1:])."""
    return F.slice(x, begin=(None, None, 1, 1), end=(None, None, None, None))


def _pad(F, x, before, after):
    """Zero-pad the two spatial axes by `before` rows/columns at the start and `after` at the end."""
    return F.pad(x, mode='constant', constant_value=0,
                 pad_width=(0, 0, 0, 0, before, after, before, after))


class SeparableConv2d(nn.HybridBlock):
    """Depthwise kxk conv then pointwise 1x1 conv, both without bias."""

    def __init__(self, in_channels, out_channels, kernel, stride, padding):
        super().__init__()
        self.depthwise_conv2d = nn.Conv2D(in_channels, kernel, strides=stride, padding=padding,
                                          use_bias=False, groups=in_channels)
        self.pointwise_conv2d = nn.Conv2D(out_channels, 1, strides=1, use_bias=False)

    def hybrid_forward(self, F, x):
        return self.pointwise_conv2d(self.depthwise_conv2d(x))


class BranchSeparables(nn.HybridBlock):
    """ReLU -> separable conv (stride) -> BN -> ReLU -> separable conv -> BN.

    stem=True (the first cell's branches on the 96-channel conv0 output) changes the width in the
    first separable conv instead of the second. shifted=True (ReductionCell0) pads the input by one
    row and column at the start and drops them after the first separable conv.
    """

    def __init__(self, in_channels, out_channels, kernel, stride, padding, stem=False, shifted=False):
        super().__init__()
        middle = out_channels if stem else in_channels
        self.shifted = shifted
        self.relu = nn.Activation('relu')
        self.separable_1 = SeparableConv2d(in_channels, middle, kernel, stride, padding)
        self.bn_sep_1 = batch_norm()
        self.relu1 = nn.Activation('relu')
        self.separable_2 = SeparableConv2d(middle, out_channels, kernel, 1, padding)
        self.bn_sep_2 = batch_norm()

    def hybrid_forward(self, F, x):
        x = self.relu(x)
        if self.shifted:
            x = _shift(F, self.separable_1(_pad(F, x, 1, 0)))
        else:
            x = self.separable_1(x)
        x = self.relu1(self.bn_sep_1(x))
        return self.bn_sep_2(self.separable_2(x))


class ShiftedPool(nn.HybridBlock):
    """3x3/2 pooling of the input padded by one row and column at the start, then shifted back."""

    def __init__(self, pool_type):
        super().__init__()
        pool = nn.MaxPool2D if pool_type == 'max' else nn.AvgPool2D
        self.pool = pool(pool_size=3, strides=2, padding=1)

    def hybrid_forward(self, F, x):
        return _shift(F, self.pool(_pad(F, x, 1, 0)))


class FactorizedReduce(nn.HybridBlock):
    """Halve the previous cell's map: ReLU, two 1x1/2 paths (the second offset by one pixel), BN.

    Each path has `channels` filters, so the output has 2 * channels.
    """

    def __init__(self, channels):
        super().__init__()
        self.relu = nn.Activation('relu')
        self.path_1 = nn.HybridSequential()
        self.path_1.add(nn.AvgPool2D(pool_size=1, strides=2))
        self.path_1.add(nn.Conv2D(channels, 1, strides=1, use_bias=False))
        self.path_2_avgpool = nn.AvgPool2D(pool_size=1, strides=2)
        self.path_2_conv = nn.Conv2D(channels, 1, strides=1, use_bias=False)
        self.final_path_bn = batch_norm()

    def hybrid_forward(self, F, x):
        x = self.relu(x)
        path1 = self.path_1(x)
        path2 = self.path_2_conv(self.path_2_avgpool(_shift(F, _pad(F, x, 0, 1))))
        return self.final_path_bn(F.concat(path1, path2, dim=1))


class ReductionCell(nn.HybridBlock):
    """A stride-2 cell; `kind` picks the 2019 variant. Output: 4 * channels.

    'stem0'      (conv0 output): a = 1x1 conv of x, b = x itself, stem branches on b.
    'stem1'      (conv0 output, stem0 output): a = 1x1 conv of stem0, b = FactorizedReduce(conv0).
    'reduction0' (x, x_prev): a = 1x1 conv of x, b = 1x1 conv of x_prev, shifted branches and pools.
    'reduction1' (x, x_prev): as reduction0 with plain branches and pools.
    """

    def __init__(self, kind, channels, in_channels=None):
        super().__init__()
        self.kind = kind
        # Blocks are made in the 2019 order: it fixes the conv<k> / batchnorm<k> parameter names.
        if kind in ('reduction0', 'reduction1'):
            self.conv_prev_1x1 = relu_conv_bn(channels)
        self.conv_1x1 = relu_conv_bn(channels)
        if kind == 'stem1':
            self.reduce_prev = FactorizedReduce(channels // 2)
        shifted = kind == 'reduction0'

        def a_branch(kernel, stride, padding):
            return BranchSeparables(channels, channels, kernel, stride, padding, shifted=shifted)

        def b_branch(kernel, stride, padding):
            if kind == 'stem0':
                return BranchSeparables(in_channels, channels, kernel, stride, padding, stem=True)
            return a_branch(kernel, stride, padding)

        def pool(pool_type):
            if shifted:
                return ShiftedPool(pool_type)
            if pool_type == 'max':
                return nn.MaxPool2D(pool_size=3, strides=2, padding=1)
            return nn.AvgPool2D(pool_size=3, strides=2, padding=1)

        self.comb_iter_0_left = a_branch(5, 2, 2)
        self.comb_iter_0_right = b_branch(7, 2, 3)
        self.comb_iter_1_left = pool('max')
        self.comb_iter_1_right = b_branch(7, 2, 3)
        self.comb_iter_2_left = pool('avg')
        self.comb_iter_2_right = b_branch(5, 2, 2)
        self.comb_iter_3_right = nn.AvgPool2D(pool_size=3, strides=1, padding=1)
        self.comb_iter_4_left = a_branch(3, 1, 1)
        self.comb_iter_4_right = pool('max')

    def hybrid_forward(self, F, x, x_prev=None):
        if self.kind == 'stem0':
            a, b = self.conv_1x1(x), x
        elif self.kind == 'stem1':
            # x is conv0's output, x_prev the stem0 cell's.
            a, b = self.conv_1x1(x_prev), self.reduce_prev(x)
        else:
            a, b = self.conv_1x1(x), self.conv_prev_1x1(x_prev)
        comb0 = self.comb_iter_0_left(a) + self.comb_iter_0_right(b)
        comb1 = self.comb_iter_1_left(a) + self.comb_iter_1_right(b)
        comb2 = self.comb_iter_2_left(a) + self.comb_iter_2_right(b)
        comb3 = self.comb_iter_3_right(comb0) + comb1
        comb4 = self.comb_iter_4_left(comb0) + self.comb_iter_4_right(a)
        return F.concat(comb1, comb2, comb3, comb4, dim=1)


class NormalCell(nn.HybridBlock):
    """A stride-1 cell on (x, x_prev). Output: left + 5 * right_channels channels.

    first=True (the 2019 FirstCell, after a stem or reduction cell) halves x_prev with a
    FactorizedReduce into 2 * left_channels; otherwise x_prev goes through a 1x1 conv.
    """

    def __init__(self, left_channels, right_channels, first=False):
        super().__init__()
        self.first = first
        # Blocks are made in the 2019 order: it fixes the conv<k> / batchnorm<k> parameter names.
        if first:
            self.conv_1x1 = relu_conv_bn(right_channels)
            self.reduce_prev = FactorizedReduce(left_channels)
            left = 2 * left_channels
        else:
            self.conv_prev_1x1 = relu_conv_bn(left_channels)
            self.conv_1x1 = relu_conv_bn(right_channels)
            left = left_channels
        self.comb_iter_0_left = BranchSeparables(right_channels, right_channels, 5, 1, 2)
        self.comb_iter_0_right = BranchSeparables(left, left, 3, 1, 1)
        self.comb_iter_1_left = BranchSeparables(left, left, 5, 1, 2)
        self.comb_iter_1_right = BranchSeparables(left, left, 3, 1, 1)
        self.comb_iter_2_left = nn.AvgPool2D(pool_size=3, strides=1, padding=1)
        self.comb_iter_3_left = nn.AvgPool2D(pool_size=3, strides=1, padding=1)
        self.comb_iter_3_right = nn.AvgPool2D(pool_size=3, strides=1, padding=1)
        self.comb_iter_4_left = BranchSeparables(right_channels, right_channels, 3, 1, 1)

    def hybrid_forward(self, F, x, x_prev):
        left = self.reduce_prev(x_prev) if self.first else self.conv_prev_1x1(x_prev)
        right = self.conv_1x1(x)
        comb0 = self.comb_iter_0_left(right) + self.comb_iter_0_right(left)
        comb1 = self.comb_iter_1_left(left) + self.comb_iter_1_right(left)
        comb2 = self.comb_iter_2_left(right) + left
        comb3 = self.comb_iter_3_left(left) + self.comb_iter_3_right(left)
        comb4 = self.comb_iter_4_left(right) + right
        return F.concat(left, comb0, comb1, comb2, comb3, comb4, dim=1)


# The cells after the two stem cells: ('normal', left_channels, right_channels, first) or
# ('reduction', channels). Maps at 112x112 input: 28x28 (cells 0-5), 14x14 (6-11), 7x7 (12-17).
CELLS = (
    [('normal', 84, 168, True)] + [('normal', 168, 168, False)] * 5
    + [('reduction', 336)]
    + [('normal', 168, 336, True)] + [('normal', 336, 336, False)] * 5
    + [('reduction', 672)]
    + [('normal', 336, 672, True)] + [('normal', 672, 672, False)] * 5
)


class NASNetALarge(nn.HybridBlock):
    """The feature extractor: 112x112 input -> 7x7x4032 map (the 2019 code's `features`).

    Every block is made outside any name scope, so parameters are named by Gluon's global counter:
    `conv0_weight` ... `conv487_weight`, `batchnorm0_*` ... `batchnorm263_*`. The classifier of the
    2019 class was never used and is left out (it was made last, so names are unchanged).
    """

    def __init__(self):
        super().__init__()
        self.conv0 = nn.HybridSequential()
        self.conv0.add(nn.Conv2D(96, 3, padding=0, strides=1, use_bias=False))
        self.conv0.add(batch_norm())
        self.cell_stem_0 = ReductionCell('stem0', 42, in_channels=96)
        self.cell_stem_1 = ReductionCell('stem1', 84)
        self.cell_names = []  # (kind, attribute name) in order: cell_0 ... reduction_cell_0 ...
        counts = {'normal': 0, 'reduction': 0}
        for spec in CELLS:
            kind = spec[0]
            if kind == 'reduction':
                name = 'reduction_cell_%d' % counts[kind]
                setattr(self, name, ReductionCell('reduction%d' % counts[kind], spec[1]))
            else:
                name = 'cell_%d' % counts[kind]
                setattr(self, name, NormalCell(*spec[1:]))
            counts[kind] += 1
            self.cell_names.append((kind, name))

    def hybrid_forward(self, F, x):
        x_conv0 = self.conv0(x)
        x_prev = self.cell_stem_0(x_conv0)
        x = self.cell_stem_1(x_conv0, x_prev)
        for kind, name in self.cell_names:
            cell = getattr(self, name)
            if kind == 'reduction':
                # The next cell still reads the reduction cell's x_prev as its own x_prev.
                x = cell(x, x_prev)
            else:
                x, x_prev = cell(x, x_prev), x
        return x


def get_symbol(config):
    """NASNet-A-Large on the normalised `data`, then the fc1 head.

    The 2019 builder always used head 'E' (the default net_output). Gluon took the parameter names
    from mxnet's global name counter, so only the first build in a fresh process got them; we build
    inside a fresh `mx.name.NameManager()` so that every build gets those fresh-process names.
    """
    symbol_utils.check_gdc_channels(LAST_CHANNELS, config.net_output, network='NASNet-A-Large')
    with mx.name.NameManager():
        net = NASNetALarge()
        body = net(symbol_utils.normalize_input(mx.sym.Variable('data')))
        # The old heads always used PReLU.
        return symbol_utils.get_fc1(body, config.emb_size, config.net_output, act_type='prelu')
