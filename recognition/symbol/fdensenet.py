"""DenseNet-BC backbone (built with Gluon) under the fc1 embedding head."""
import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.contrib.nn import HybridConcurrent, Identity

from recognition.symbol import symbol_utils

# Names of the 2019 checkpoints come from the first Gluon net of a fresh process ('densenet0_');
# the explicit prefix keeps them the same on every build.
PREFIX = 'densenet0_'

# num_layers -> (channels of the stem, growth rate, layers per dense block)
DENSENET_SPEC = {
    121: (64, 32, (6, 12, 24, 16)),
    161: (96, 48, (6, 12, 36, 24)),
    169: (64, 32, (6, 12, 32, 32)),
    201: (64, 32, (6, 12, 48, 32)),
}

# The bottleneck 1x1 conv has BN_SIZE * growth_rate channels.
BN_SIZE = 4


def gluon_act(act_type):
    """Gluon PReLU (a single learned slope `alpha` of shape (1,)) for 'prelu', else Activation."""
    if act_type == 'prelu':
        return nn.PReLU()
    return nn.Activation(act_type)


def dense_layer(growth_rate, dropout, act_type):
    """BN-act-conv1x1-BN-act-conv3x3 (+ dropout), its `growth_rate` new channels concatenated to x.

    Call it inside the stage's name scope: its layers then take their numbers from the stage, so
    the k of `stage1_conv<k>` counts across the whole stage, as in the 2019 checkpoints.
    """
    branch = nn.HybridSequential(prefix='')
    branch.add(nn.BatchNorm(), gluon_act(act_type),
               nn.Conv2D(BN_SIZE * growth_rate, kernel_size=1, use_bias=False),
               nn.BatchNorm(), gluon_act(act_type),
               nn.Conv2D(growth_rate, kernel_size=3, padding=1, use_bias=False))
    if dropout:
        branch.add(nn.Dropout(dropout))
    layer = HybridConcurrent(axis=1, prefix='')
    layer.add(Identity())
    layer.add(branch)
    return layer


def dense_block(num_layers, growth_rate, dropout, act_type, stage_index):
    """`num_layers` dense layers named `stage<stage_index>_...`."""
    block = nn.HybridSequential(prefix='stage%d_' % stage_index)
    with block.name_scope():
        for _ in range(num_layers):
            block.add(dense_layer(growth_rate, dropout, act_type))
    return block


def transition(channels, act_type):
    """BN-act-conv1x1 to `channels`, then 2x2 average pooling; its layers are named by the caller's scope."""
    block = nn.HybridSequential(prefix='')
    block.add(nn.BatchNorm(), gluon_act(act_type),
              nn.Conv2D(channels, kernel_size=1, use_bias=False),
              nn.AvgPool2D(pool_size=2, strides=2))
    return block


def densenet(num_layers, act_type, dropout):
    """The DenseNet feature extractor; returns (block, channels of its output).

    A 112x112 input gives a 7x7 map. The stem and final activations are ReLU whatever act_type is
    (2019 checkpoints depend on it); only the inner ones follow act_type.
    """
    init_channels, growth_rate, block_layers = DENSENET_SPEC[num_layers]
    net = nn.HybridSequential(prefix=PREFIX)
    with net.name_scope():
        net.add(nn.Conv2D(init_channels, kernel_size=3, strides=1, padding=1, use_bias=False),
                nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(pool_size=3, strides=2, padding=1))
        channels = init_channels
        for i, layers in enumerate(block_layers):
            net.add(dense_block(layers, growth_rate, dropout, act_type, i + 1))
            channels += layers * growth_rate
            if i != len(block_layers) - 1:
                channels //= 2
                net.add(transition(channels, act_type))
        net.add(nn.BatchNorm(), nn.Activation('relu'))
    return net, channels


def get_symbol(config):
    """DenseNet-<config.num_layers> on the normalised `data`, then the fc1 head."""
    num_layers = config.num_layers
    if num_layers not in DENSENET_SPEC:
        raise ValueError("num_layers=%r is not a DenseNet depth; expected one of %s"
                         % (num_layers, sorted(DENSENET_SPEC)))
    # Presets set densenet_dropout; a hand-made one without it gets no dropout, the Gluon default.
    dropout = config.get('densenet_dropout', 0.0)
    net, channels = densenet(num_layers, config.net_act, dropout)
    body = net(symbol_utils.normalize_input(mx.sym.Variable('data')))
    # Like 2019, the 'GDC' head keeps its default of 512 groups whatever the channel count: a
    # DenseNet-121 GDC checkpoint has a grouped (512, 2, 7, 7) conv (as fmobilenet m1 does).
    symbol_utils.check_gdc_channels(channels, config.net_output, network='DenseNet-%d' % num_layers)
    return symbol_utils.get_fc1(body, config.emb_size, config.net_output,
                                act_type=config.net_act, bn_mom=config.bn_mom)
