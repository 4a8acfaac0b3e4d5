"""Tests for the Gluon-built backbones: MNasNet (fmnasnet) and DenseNet (fdensenet)."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from common.flops_counter import count_flops
from recognition.symbol import fdensenet, fmnasnet, get_embedding_symbol

# Reference numbers of the 2019 code (spec original_training.md §3.7): #arg arrays without data,
# #aux arrays, #scalars in the arg arrays, count_flops at 1x3x112x112.
REFERENCE = {
    'mnas': (199, 108, 3260556, 597881670),
    'mnas05': (199, 108, 925400, 163954630),
    'mnas025': (199, 108, 286782, 48221190),
    'd169': (679, 342, 54228263, 6599875072),
    'd201': (807, 406, 66259783, 8474701312),
}


def arg_shapes(sym, data_shape=(1, 3, 112, 112)):
    """name -> shape for every argument except data."""
    shapes, _, _ = sym.infer_shape(data=data_shape)
    return {name: shape for name, shape in zip(sym.list_arguments(), shapes) if name != 'data'}


def op_count(sym, op):
    return sum(1 for node in json.loads(sym.tojson())['nodes'] if node['op'] == op)


@pytest.mark.parametrize('network', sorted(REFERENCE))
def test_counts_and_flops_match_reference(make_config, network):
    sym = get_embedding_symbol(make_config(network))
    num_args, num_aux, num_scalars, flops = REFERENCE[network]
    shapes = arg_shapes(sym)
    assert sym.list_outputs() == ['fc1_output']
    assert len(shapes) == num_args
    assert len(sym.list_auxiliary_states()) == num_aux
    assert sum(int(np.prod(s)) for s in shapes.values()) == num_scalars
    assert count_flops(sym, data=(1, 3, 112, 112)) == flops


def test_mnasnet_names_and_shapes(make_config):
    sym = fmnasnet.get_symbol(make_config('mnas'))
    shapes = arg_shapes(sym)
    assert sym.list_arguments()[:5] == [
        'data', 'mnasnet0_stage1_conv0_conv0_weight', 'mnasnet0_stage1_conv0_batchnorm0_gamma',
        'mnasnet0_stage1_conv0_batchnorm0_beta', 'mnasnet0_stage1_conv0_prelu0_alpha']
    assert shapes['mnasnet0_stage1_conv0_conv0_weight'] == (32, 3, 3, 3)
    # Gluon PReLU: one slope per layer, not per channel.
    assert shapes['mnasnet0_stage1_conv0_prelu0_alpha'] == (1,)
    for part in ('conv0_weight', 'batchnorm0_gamma', 'prelu0_alpha', 'conv1_weight',
                 'batchnorm1_beta', 'prelu1_alpha'):
        assert 'mnasnet0_stage1_sepconv0_' + part in shapes
    assert shapes['mnasnet0_stage1_sepconv0_conv1_weight'] == (16, 32, 1, 1)
    assert shapes['mnasnet0_stage2_expandedconv0_expand_conv0_weight'] == (48, 16, 1, 1)
    assert 'mnasnet0_stage2_expandedconv0_linear_batchnorm0_beta' in shapes
    assert 'mnasnet0_stage2_expandedconv0_linear_prelu0_alpha' not in shapes
    # Quirk kept: kernel 5 only in the first block of a sequence.
    assert shapes['mnasnet0_stage3_expandedconv0_dwise_conv0_weight'] == (72, 1, 5, 5)
    assert shapes['mnasnet0_stage3_expandedconv1_dwise_conv0_weight'] == (120, 1, 3, 3)
    assert shapes['mnasnet0_stage5_1_expandedconv3_dwise_conv0_weight'] == (1152, 1, 3, 3)
    assert shapes['mnasnet0_stage5_3_conv0_weight'] == (1024, 320, 1, 1)
    assert shapes['conv_6dw7_7_conv2d_weight'] == (1024, 1, 7, 7)
    assert shapes['pre_fc1_weight'] == (256, 1024)
    assert 'mnasnet0_stage5_3_batchnorm0_running_var' in sym.list_auxiliary_states()
    # Residual adds: every block but the first of each sequence (2+2+2+1+3+0).
    assert op_count(sym, 'elemwise_add') == 10


@pytest.mark.parametrize('network, bn_name, alpha_name', [
    ('mnas025', 'mnasnet0_stage1_conv0_batchnorm0_fwd', 'mnasnet0_stage1_conv0_prelu0_alpha'),
    ('d169', 'densenet0_stage1_batchnorm0_fwd', 'densenet0_stage1_prelu0_alpha'),
])
def test_backbone_keeps_gluon_defaults(make_config, network, bn_name, alpha_name):
    sym = get_embedding_symbol(make_config(network, bn_mom=0.5))
    nodes = {node['name']: node for node in json.loads(sym.tojson())['nodes']}
    # Backbone BN: Gluon's eps 1e-5 and momentum 0.9; only the head follows config.bn_mom.
    assert float(nodes[bn_name]['attrs']['eps']) == 1e-5
    assert float(nodes[bn_name]['attrs']['momentum']) == 0.9
    assert nodes[bn_name]['attrs']['fix_gamma'] == 'False'
    assert float(nodes['fc1']['attrs']['momentum']) == 0.5
    # PReLU slopes start at 0.25 through the variable's own initializer.
    assert json.loads(sym.attr_dict()[alpha_name]['__init__']) == ['constant', {'value': 0.25}]


def test_mnasnet_relu_has_no_alpha(make_config):
    sym = fmnasnet.get_symbol(make_config('mnas05', net_act='relu'))
    assert not [name for name in sym.list_arguments() if name.endswith('_alpha')]
    assert arg_shapes(sym)['mnasnet0_stage5_3_conv0_weight'] == (512, 160, 1, 1)


def test_densenet_names_and_shapes(make_config):
    sym = fdensenet.get_symbol(make_config('d169'))
    shapes = arg_shapes(sym)
    assert sym.list_arguments()[1:4] == ['densenet0_conv0_weight', 'densenet0_batchnorm0_gamma',
                                         'densenet0_batchnorm0_beta']
    assert shapes['densenet0_conv0_weight'] == (64, 3, 3, 3)
    assert shapes['densenet0_stage1_conv0_weight'] == (128, 64, 1, 1)
    # Layer numbers count across the stage: layer 6 of stage 1 holds conv10 and conv11.
    assert shapes['densenet0_stage1_conv11_weight'] == (32, 128, 3, 3)
    assert shapes['densenet0_stage1_prelu11_alpha'] == (1,)
    assert 'densenet0_stage1_conv12_weight' not in shapes
    # First transition: 64 + 6*32 = 256 channels halved.
    assert shapes['densenet0_conv1_weight'] == (128, 256, 1, 1)
    # Stem and final activations are ReLU: only the three transitions own top-level PReLUs.
    top_alphas = sorted(n for n in shapes if n.startswith('densenet0_prelu'))
    assert top_alphas == ['densenet0_prelu0_alpha', 'densenet0_prelu1_alpha', 'densenet0_prelu2_alpha']
    assert shapes['densenet0_batchnorm4_gamma'] == (1664,)
    assert shapes['pre_fc1_weight'] == (512, 81536)
    assert op_count(sym, 'Dropout') == 1  # only the 'E' head's: densenet_dropout is 0.0


def test_densenet_other_depths_and_dropout(make_config):
    d121 = fdensenet.get_symbol(make_config('d169', num_layers=121))
    assert arg_shapes(d121)['densenet0_batchnorm4_gamma'] == (1024,)
    d161 = fdensenet.get_symbol(make_config('d169', num_layers=161))
    shapes = arg_shapes(d161)
    assert shapes['densenet0_conv0_weight'] == (96, 3, 3, 3)
    assert shapes['densenet0_stage1_conv0_weight'] == (192, 96, 1, 1)
    assert shapes['densenet0_batchnorm4_gamma'] == (2208,)
    # GDC keeps 2019's 512 groups: grouped, not depthwise, on DenseNet-121's 1024 channels ...
    gdc121 = arg_shapes(fdensenet.get_symbol(make_config('d169', num_layers=121, net_output='GDC')))
    assert gdc121['conv_6dw7_7_conv2d_weight'] == (512, 2, 7, 7)
    # ... and a clear error where 2019 failed inside mxnet (1664 channels)
    with pytest.raises(ValueError, match='divisible by 512'):
        fdensenet.get_symbol(make_config('d169', net_output='GDC'))
    with_dropout = fdensenet.get_symbol(make_config('d169', num_layers=121, densenet_dropout=0.2))
    assert op_count(with_dropout, 'Dropout') == 6 + 12 + 24 + 16 + 1
    assert with_dropout.list_arguments() == d121.list_arguments()


def test_densenet_rejects_unknown_depth(make_config):
    with pytest.raises(ValueError, match='num_layers=100'):
        fdensenet.get_symbol(make_config('d169', num_layers=100))


def test_mnasnet_rejects_tiny_multiplier(make_config):
    with pytest.raises(ValueError, match='net_multiplier=0.01'):
        fmnasnet.get_symbol(make_config('mnas', net_multiplier=0.01))


@pytest.mark.parametrize('network', ['mnas025', 'd169'])
def test_names_do_not_depend_on_earlier_builds(make_config, network):
    first = get_embedding_symbol(make_config(network))
    second = get_embedding_symbol(make_config(network))
    # Unprefixed Gluon blocks advance the global name counter (hybridsequential0_, mnasnet0_, ...).
    nn.HybridSequential().add(nn.Dense(4))
    nn.HybridSequential(prefix=None)
    third = get_embedding_symbol(make_config(network))
    for sym in (second, third):
        assert sym.list_arguments() == first.list_arguments()
        assert sym.list_auxiliary_states() == first.list_auxiliary_states()


def forward(sym, data_shape, seed=0):
    """One inference forward pass with random parameters; returns fc1 as numpy."""
    mx.random.seed(seed)
    exe = sym.simple_bind(mx.cpu(), data=data_shape, grad_req='null')
    rng = np.random.RandomState(seed)
    for name, array in exe.arg_dict.items():
        if name == 'data':
            array[:] = rng.uniform(0, 255, size=array.shape)
        elif name.endswith('_gamma') or name.endswith('_alpha'):
            array[:] = rng.uniform(0.2, 1.0, size=array.shape)
        elif name.endswith('_weight'):
            # He-style scale keeps the signal alive through the ReLUs.
            fan_in = int(np.prod(array.shape[1:]))
            array[:] = rng.normal(0, np.sqrt(2.0 / fan_in), size=array.shape)
        else:
            array[:] = rng.normal(0, 0.05, size=array.shape)
    for name, array in exe.aux_dict.items():
        array[:] = 1.0 if name.endswith('_var') else 0.0
    return exe.forward(is_train=False)[0].asnumpy()


def test_mnasnet_forward(make_config):
    out = forward(get_embedding_symbol(make_config('mnas025', net_act='relu')), (2, 3, 112, 112))
    assert out.shape == (2, 256)
    assert np.all(np.isfinite(out))
    assert not np.allclose(out[0], out[1])


def test_densenet_forward(make_config):
    # 32x32 gives a 2x2 final map; the 'E' head flattens whatever size it gets.
    sym = get_embedding_symbol(make_config('d169', num_layers=121, emb_size=64))
    assert arg_shapes(sym, (1, 3, 32, 32))['pre_fc1_weight'] == (64, 1024 * 2 * 2)
    out = forward(sym, (2, 3, 32, 32))
    assert out.shape == (2, 64)
    assert np.all(np.isfinite(out))
    assert not np.allclose(out[0], out[1])
