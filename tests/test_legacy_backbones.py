"""Tests of the older src/symbols backbones (irv2, DPN, Xception, MobileNetV2, NASNet, SphereNet)."""

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from recognition.symbol import get_embedding_symbol
from symbol_shapes import graph_nodes, shapes_of

LEGACY_PRESETS = ('irv2', 'dpn68', 'dpn92', 'dpn107', 'dpn131', 'xception', 'mv2', 'nasnet',
                  's20', 's36', 's60', 's64', 's104')

# original_training.md §3.8, DPN table: num_layers -> (k_R, G, k_sec, inc_sec).
SPEC_DPN = {
    68: (128, 32, (3, 4, 12, 3), (16, 32, 32, 64)),
    92: (96, 32, (3, 4, 20, 3), (16, 32, 24, 128)),
    107: (200, 50, (4, 8, 20, 3), (20, 64, 64, 128)),
    131: (160, 40, (4, 8, 28, 3), (16, 32, 32, 128)),
}

# original_training.md §3.8: SphereNet units per stage.
SPEC_SPHERE_UNITS = {20: (1, 2, 4, 1), 36: (2, 4, 8, 2), 60: (3, 8, 14, 3), 64: (3, 8, 16, 3),
                     104: (3, 8, 36, 3)}


def embed_once(sym, size, seed=0):
    """One inference-mode forward of a random 1x3xSxS image with a Xavier init (BN stats 0 / 1)."""
    mx.random.seed(seed)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', (1, 3, size, size))], for_training=False)
    mod.init_params(initializer=mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2))
    image = np.random.RandomState(seed).uniform(0, 255, size=(1, 3, size, size))
    mod.forward(mx.io.DataBatch([mx.nd.array(image)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


@pytest.mark.parametrize('preset', LEGACY_PRESETS)
def test_every_legacy_preset_ends_in_fc1_of_emb_size(make_config, preset):
    sym = get_embedding_symbol(make_config(preset, emb_size=128))
    assert sym.list_outputs() == ['fc1_output']
    _, outs = shapes_of(sym, (2, 3, 112, 112))
    assert outs == [(2, 128)]


def test_inception_resnet_v2_layers_names_and_quirks(make_config):
    sym = get_embedding_symbol(make_config('irv2'))
    shapes, _ = shapes_of(sym)
    # 244 conv+BN units (stem 12, 10x7 block35, 4, 20x5 block17, 7, 10x5 block8, the 1536 conv),
    # each with a conv bias; then the 'E' head (bn1, pre_fc1, fc1).
    assert len(sym.list_arguments()) - 1 == 244 * 4 + 6
    assert len(sym.list_auxiliary_states()) == 244 * 2 + 4
    assert shapes['convolution0_weight'] == (32, 3, 3, 3)
    assert shapes['convolution0_bias'] == (32,)
    assert shapes['batchnorm0_gamma'] == (32,)
    # the first block17's 1x1 tower has 129 filters (conv 87: 12 + 70 + 4 + 1)
    assert shapes['convolution87_weight'] == (129, 1088, 1, 1)
    assert shapes['convolution243_weight'] == (1536, 2080, 1, 1)
    assert 'convolution244_weight' not in shapes
    assert shapes['pre_fc1_weight'] == (512, 1536 * 12 * 12)
    # unnamed BatchNorms keep mxnet's defaults (fix_gamma=True, eps 1e-3)
    backbone_bns = [n for n in graph_nodes(sym)
                    if n['op'] == 'BatchNorm' and n['name'].startswith('batchnorm')]
    assert len(backbone_bns) == 244
    assert all('fix_gamma' not in n.get('attrs', {}) and 'eps' not in n.get('attrs', {})
               for n in backbone_bns)
    # the unused maxpool3a (pooling0) is not in the graph but still takes its name, as in 2019
    pools = [n['name'] for n in graph_nodes(sym) if n['op'] == 'Pooling']
    assert pools[:2] == ['pooling1', 'pooling2']
    # net_input 0: stride-2 first conv, 5x5 final map
    shapes0, _ = shapes_of(get_embedding_symbol(make_config('irv2', net_input=0)))
    assert shapes0['pre_fc1_weight'] == (512, 1536 * 5 * 5)


@pytest.mark.parametrize('num_layers', sorted(SPEC_DPN))
def test_dpn_widths_follow_the_spec_table(make_config, num_layers):
    k_r, groups, k_sec, inc_sec = SPEC_DPN[num_layers]
    sym = get_embedding_symbol(make_config('dpn%d' % num_layers))
    shapes, _ = shapes_of(sym)
    final_channels = 2048 + (k_sec[3] + 2) * inc_sec[3]
    assert shapes['pre_fc1_weight'] == (512, final_channels * 7 * 7)
    assert sum(name.endswith('_c1x1-a__conv_weight') for name in shapes) == sum(k_sec)
    for stage, width in zip((2, 3, 4, 5), (256, 512, 1024, 2048)):
        r = k_r * width // 256
        stride = 1 if stage == 2 else 2
        proj = shapes['conv%d_x__1_c1x1-w(s/%d)__conv_weight' % (stage, stride)]
        assert proj[0] == width + 2 * inc_sec[stage - 2]
        assert shapes['conv%d_x__1_c3x3-b__conv_weight' % stage] == (r, r // groups, 3, 3)
        assert shapes['conv%d_x__2_c1x1-c__conv_weight' % stage] == (width + inc_sec[stage - 2], r, 1, 1)
        assert 'conv%d_x__2_c1x1-w(s/1)__conv_weight' % stage not in shapes


def test_dpn_head_and_doubled_bn_names(make_config):
    sym = get_embedding_symbol(make_config('dpn68'))
    shapes, _ = shapes_of(sym)
    # get_head(data, 1, 128): 64-filter conv0 + PReLU, then the stride-2 residual unit 'head'
    assert shapes['conv0_weight'] == (64, 3, 3, 3)
    assert shapes['relu0_gamma'] == (64,)
    assert shapes['head_conv1_weight'] == (64, 64, 3, 3)
    assert shapes['head_conv2_weight'] == (64, 64, 3, 3)
    assert shapes['head_conv1sc_weight'] == (64, 64, 1, 1)
    assert shapes['head_relu1_gamma'] == (64,)
    for bn in ('bn0', 'head_bn1', 'head_bn2', 'head_bn3', 'head_sc'):
        assert shapes[bn + '_gamma'] == (64,)
    assert shapes['conv2_x__1_c1x1-w(s/1)__bn__bn_gamma'] == (64,)
    assert shapes['conv2_x__1_c1x1-w(s/1)__conv_weight'] == (256 + 2 * 16, 64, 1, 1)
    assert shapes['conv2_x__1_c1x1-a__bn__bn_moving_var'] == (64,)
    assert shapes['conv2_x__2_c1x1-a__bn__bn_gamma'] == (256 + 3 * 16,)
    bns = {n['name']: n.get('attrs', {}) for n in graph_nodes(sym) if n['op'] == 'BatchNorm'}
    assert 'eps' not in bns['conv2_x__1_c1x1-a__bn__bn']  # mxnet's default 1e-3
    assert float(bns['head_bn1']['eps']) == 2e-5
    relus = [n['name'] for n in graph_nodes(sym) if n['op'] == 'Activation']
    assert 'conv2_x__1_c1x1-a__ac__relu' in relus
    # net_input 0: 128-filter 7x7/2 conv0 + max-pool, 4x4 final map
    shapes0, _ = shapes_of(get_embedding_symbol(make_config('dpn68', net_input=0)))
    assert shapes0['conv0_weight'] == (128, 3, 7, 7)
    assert 'head_conv1_weight' not in shapes0
    assert shapes0['pre_fc1_weight'] == (512, 2368 * 4 * 4)


def test_xception_argument_count_names_and_wide_version(make_config):
    sym = get_embedding_symbol(make_config('xception'))
    shapes, _ = shapes_of(sym)
    assert len(sym.list_arguments()) - 1 == 23278  # original_training.md §3.8
    assert shapes['Entry_flow_b1_conv1_conv2d_weight'] == (32, 3, 3, 3)
    assert shapes['Entry_flow_b1_conv1_conv2d_bias'] == (32,)
    assert shapes['Middle_flow_block_0_sepconv1_depthwise_kernel_7_weight'] == (1, 1, 3, 3)
    assert shapes['Middle_flow_block_7_sepconv3_depthwise_kernel_363_bias'] == (1,)
    assert 'Middle_flow_block_7_sepconv3_depthwise_kernel_364_weight' not in shapes
    assert shapes['Exit_flow_b5_sepconv2_pointwise_kernel_conv2d_weight'] == (512, 364, 1, 1)
    assert shapes['Exit_flow_b6_sepconv2_bn_gamma'] == (1024,)
    assert shapes['pre_fc1_weight'] == (512, 1024 * 7 * 7)
    pools = [n['name'] for n in graph_nodes(sym) if n['op'] == 'Pooling']
    # the exit block's pool keeps its 2019 name
    assert pools == ['Entry_flow_b%d_pool' % i for i in (2, 3, 4, 5)]
    wide, _ = shapes_of(get_embedding_symbol(make_config('xception', net_input=2)))
    assert wide['Entry_flow_b2_conv1_conv2d_weight'] == (128, 64, 1, 1)
    assert wide['Middle_flow_block_0_sepconv1_pointwise_kernel_conv2d_weight'] == (728, 728, 1, 1)
    assert wide['pre_fc1_weight'] == (512, 2048 * 7 * 7)


@pytest.mark.parametrize('num_layers', sorted(SPEC_SPHERE_UNITS))
def test_spherenet_depth_counts_its_convs(make_config, num_layers):
    sym = get_embedding_symbol(make_config('s%d' % num_layers))
    shapes, _ = shapes_of(sym)
    conv_weights = [n for n in shapes if n.startswith('conv') and n.endswith('_weight')]
    assert len(conv_weights) == num_layers
    for stage, units in enumerate(SPEC_SPHERE_UNITS[num_layers], start=1):
        assert 'conv%d_%d_weight' % (stage, 1 + 2 * units) in shapes
        assert 'conv%d_%d_weight' % (stage, 2 + 2 * units) not in shapes
    assert sym.list_auxiliary_states() == []  # no BatchNorm anywhere, fc1 included
    assert shapes['fc1_weight'] == (512, 512 * 7 * 7)


def test_spherenet_first_convs_carry_bias_and_their_init(make_config):
    sym = get_embedding_symbol(make_config('s20'))
    shapes, _ = shapes_of(sym)
    assert shapes['conv1_1_weight'] == (64, 3, 3, 3)
    assert shapes['conv4_1_bias'] == (512,)
    assert 'conv1_2_bias' not in shapes
    attrs = sym.attr_dict()
    assert attrs['conv2_1_bias']['__lr_mult__'] == '2.0'
    assert attrs['conv2_1_bias']['__wd_mult__'] == '0.0'
    assert attrs['fc1_bias']['__wd_mult__'] == '0.0'
    # A global initializer still gives conv<i>_1 its own Normal(0.01) / zeros.
    init = mx.init.Constant(0.5)
    mx.random.seed(0)
    arrays = {}
    for name in ('conv1_1_weight', 'conv1_1_bias', 'conv1_2_weight'):
        arrays[name] = mx.nd.full(shapes[name], 7.0)
        init(mx.init.InitDesc(name, attrs.get(name, {})), arrays[name])
    assert abs(arrays['conv1_1_weight'].asnumpy().std() - 0.01) < 0.002
    assert (arrays['conv1_1_bias'].asnumpy() == 0).all()
    assert (arrays['conv1_2_weight'].asnumpy() == 0.5).all()


def test_mobilenetv2_names_of_a_fresh_2019_process(make_config):
    sym = get_embedding_symbol(make_config('mv2'))
    shapes, _ = shapes_of(sym)
    assert shapes['conv0_weight'] == (32, 3, 3, 3)
    assert shapes['batchnorm0_running_mean'] == (32,)
    blocks = {n.split('_')[0] for n in shapes if n.startswith('invertedresidual')}
    assert blocks == {'invertedresidual%d' % i for i in range(17)}
    # stride-1 sequence starts get a conv_res projection: blocks 0 (16), 6 (64) and 16 (320)
    projections = {n for n in shapes if n.endswith('_conv3_weight')}
    assert projections == {'invertedresidual0_conv3_weight', 'invertedresidual6_conv3_weight',
                           'invertedresidual16_conv3_weight'}
    assert shapes['invertedresidual16_conv3_weight'] == (320, 160, 1, 1)
    # later blocks still expand from the sequence's input width (24 * 6, not 32 * 6)
    assert shapes['invertedresidual4_conv0_weight'] == (144, 32, 1, 1)
    assert shapes['mobilenetv20_hybridsequential0_conv0_weight'] == (1280, 320, 1, 1)
    assert shapes['pre_fc1_weight'] == (512, 1280 * 7 * 7)


def test_nasnet_names_and_pytorch_batchnorm_settings(make_config):
    sym = get_embedding_symbol(make_config('nasnet'))
    shapes, _ = shapes_of(sym)
    convs = {n for n in shapes if n.startswith('conv') and n.endswith('_weight')}
    assert convs == {'conv%d_weight' % i for i in range(488)}
    bns = {n for n in shapes if n.startswith('batchnorm') and n.endswith('_gamma')}
    assert bns == {'batchnorm%d_gamma' % i for i in range(264)}
    assert shapes['conv0_weight'] == (96, 3, 3, 3)
    assert shapes['conv1_weight'] == (42, 96, 1, 1)  # cell_stem_0's 1x1
    assert shapes['conv2_weight'] == (42, 1, 5, 5)  # its first depthwise conv
    assert shapes['conv487_weight'] == (672, 672, 1, 1)
    assert shapes['pre_fc1_weight'] == (512, 4032 * 7 * 7)
    gluon_bns = [n['attrs'] for n in graph_nodes(sym) if n['op'] == 'BatchNorm' and n['name'] != 'bn1'
                 and n['name'] != 'fc1']
    assert len(gluon_bns) == 264
    assert all(float(a['momentum']) == 0.1 and float(a['eps']) == 0.001 for a in gluon_bns)


@pytest.mark.parametrize('preset', ['irv2', 'dpn68', 'xception', 'mv2', 'nasnet', 's20'])
def test_names_do_not_depend_on_what_was_built_before(make_config, preset):
    first = get_embedding_symbol(make_config(preset))
    # move mxnet's global counters on: unnamed symbols and a Gluon block outside any scope
    mx.sym.BatchNorm(mx.sym.Convolution(mx.sym.Variable('x'), num_filter=1, kernel=(1, 1)))
    nn.Conv2D(4, 1)
    second = get_embedding_symbol(make_config(preset))
    assert first.list_arguments() == second.list_arguments()
    assert first.tojson() == second.tojson()


# One inference forward per family at a small input (every net works from 32x32).
@pytest.mark.parametrize('preset', ['irv2', 'dpn68', 'xception', 'mv2', 'nasnet', 's20'])
def test_forward_gives_a_finite_embedding(make_config, preset):
    out = embed_once(get_embedding_symbol(make_config(preset, emb_size=64)), 32)
    assert out.shape == (1, 64)
    assert np.isfinite(out).all()
    assert np.abs(out).max() > 0


def test_old_heads_use_prelu_and_gdc_keeps_512_groups(make_config):
    shapes, _ = shapes_of(get_embedding_symbol(make_config('xception', net_output='D')))
    assert shapes['relu1_gamma'] == (1024,)
    assert shapes['fc1_relu_gamma'] == (512,)
    shapes, _ = shapes_of(get_embedding_symbol(make_config('irv2', net_output='GDC')))
    assert shapes['conv_6dw7_7_conv2d_weight'] == (512, 3, 7, 7)
    for preset in ('dpn92', 'mv2', 'nasnet'):
        with pytest.raises(ValueError, match='divisible by 512'):
            get_embedding_symbol(make_config(preset, net_output='GDC'))


def test_bad_depths_and_inputs_are_clear_errors(make_config):
    with pytest.raises(ValueError, match=r'num_layers=50 .*\[68, 92, 107, 131\]'):
        get_embedding_symbol(make_config('dpn68', num_layers=50))
    with pytest.raises(ValueError, match=r'num_layers=50 .*\[20, 36, 60, 64, 104\]'):
        get_embedding_symbol(make_config('s20', num_layers=50))
    for preset in ('irv2', 'dpn68', 'xception'):
        with pytest.raises(ValueError, match='net_input=-1'):
            get_embedding_symbol(make_config(preset, net_input=-1))
