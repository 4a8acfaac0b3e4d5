"""Tests of the symbolic backbones fresnet, fmobilefacenet and fmobilenet against the 2019 reference."""
import re

import mxnet as mx
import numpy as np
import pytest

from common.flops_counter import count_flops
from recognition.symbol import fresnet, get_embedding_symbol, symbol_utils
from symbol_shapes import graph_nodes, shapes_of

# original_training.md §3.7, measured on the 2019 code:
# preset -> (#arg arrays without data, #aux arrays, #param scalars, count_flops at 1x3x112x112).
REFERENCE = {
    'r100': (463, 308, 65156160, 24169929728),
    'r50': (238, 158, 43590848, 12612791296),
    'r50v1': (214, 110, 43585920, 12612791296),
    'y1': (184, 100, 1003264, 439821056),
    'y2': (378, 206, 1996288, 933336950),
    'm1': (115, 58, 3400960, 1132662629),
    'm05': (115, 58, 982016, 296705381),
}

# original_training.md §3.2: num_layers -> units per stage.
SPEC_UNITS = {
    18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 49: [3, 4, 14, 3], 50: [3, 4, 14, 3], 74: [3, 6, 24, 3],
    90: [3, 8, 30, 3], 98: [3, 4, 38, 3], 99: [3, 8, 35, 3], 100: [3, 13, 30, 3], 101: [3, 4, 23, 3],
    124: [3, 13, 40, 5], 152: [3, 8, 36, 3], 160: [3, 24, 49, 3], 200: [3, 24, 36, 3], 269: [3, 30, 48, 8],
}


def embed(sym, x, factor_type='out', rnd_type='gaussian', seed=0):
    """Forward pass in inference mode with the 2019 Xavier init (BN moving stats start at 0 / 1).

    fresnet and fmobilefacenet were initialised gaussian/out, fmobilenet uniform/in.
    """
    mx.random.seed(seed)
    mod = mx.mod.Module(sym, data_names=['data'], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[('data', x.shape)], for_training=False)
    mod.init_params(initializer=mx.init.Xavier(rnd_type=rnd_type, factor_type=factor_type, magnitude=2))
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


@pytest.mark.parametrize('preset', sorted(REFERENCE))
def test_preset_matches_reference_table(make_config, preset):
    sym = get_embedding_symbol(make_config(preset))
    n_args, n_aux, n_scalars, flops = REFERENCE[preset]
    args = [a for a in sym.list_arguments() if a != 'data']
    assert len(args) == n_args
    assert len(sym.list_auxiliary_states()) == n_aux
    shapes, _ = shapes_of(sym)
    assert sum(int(np.prod(shapes[a])) for a in args) == n_scalars
    assert count_flops(sym, data=(1, 3, 112, 112)) == flops
    assert sym.list_outputs() == ['fc1_output']


def test_r100_names_and_shapes(make_config):
    sym = get_embedding_symbol(make_config('r100'))
    shapes, outs = shapes_of(sym, (3, 3, 112, 112))
    assert sym.list_outputs() == ['fc1_output']
    assert outs == [(3, 512)]
    expected = {
        'conv0_weight': (64, 3, 3, 3), 'relu0_gamma': (64,), 'stage4_unit3_bn3_beta': (512,),
        'stage1_unit1_conv1_weight': (64, 64, 3, 3), 'stage1_unit1_conv1sc_weight': (64, 64, 1, 1),
        'bn1_gamma': (512,), 'bn1_beta': (512,), 'pre_fc1_weight': (512, 25088), 'pre_fc1_bias': (512,),
        'fc1_gamma': (512,), 'fc1_beta': (512,),
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert sym.list_arguments()[:17] == [
        'data', 'conv0_weight', 'bn0_gamma', 'bn0_beta', 'relu0_gamma',
        'stage1_unit1_bn1_gamma', 'stage1_unit1_bn1_beta', 'stage1_unit1_conv1_weight',
        'stage1_unit1_bn2_gamma', 'stage1_unit1_bn2_beta', 'stage1_unit1_relu1_gamma',
        'stage1_unit1_conv2_weight', 'stage1_unit1_bn3_gamma', 'stage1_unit1_bn3_beta',
        'stage1_unit1_conv1sc_weight', 'stage1_unit1_sc_gamma', 'stage1_unit1_sc_beta']
    # Stage 4 has 3 units and nothing more; the head follows it directly.
    assert 'stage4_unit4_bn1_gamma' not in shapes
    assert sym.list_arguments()[-6:] == ['bn1_gamma', 'bn1_beta', 'pre_fc1_weight', 'pre_fc1_bias',
                                         'fc1_gamma', 'fc1_beta']
    # Every BatchNorm has exactly its two moving statistics, in BN order.
    bn_names = [n['name'] for n in graph_nodes(sym) if n['op'] == 'BatchNorm']
    assert sym.list_auxiliary_states() == [bn + suffix for bn in bn_names
                                           for suffix in ('_moving_mean', '_moving_var')]


def test_r50v1_unit_parameters(make_config):
    sym = get_embedding_symbol(make_config('r50v1'))
    unit = [a[len('stage2_unit1_'):] for a in sym.list_arguments() if a.startswith('stage2_unit1_')]
    assert unit == ['conv1_weight', 'bn1_gamma', 'bn1_beta', 'relu1_gamma', 'conv2_weight', 'bn2_gamma',
                    'bn2_beta', 'conv1sc_weight', 'sc_gamma', 'sc_beta', 'relu3_gamma']
    # Units with matching shapes have no projection shortcut.
    second = [a for a in sym.list_arguments() if a.startswith('stage2_unit2_')]
    assert not any('sc_' in a for a in second) and 'stage2_unit2_relu3_gamma' in second
    shapes, _ = shapes_of(sym)
    # v1_L puts the stride on conv2: 56x56 -> 28x28 happens inside the unit, weights are 3x3.
    assert shapes['stage2_unit1_conv1_weight'] == (128, 64, 3, 3)
    assert shapes['stage2_unit1_conv2_weight'] == (128, 128, 3, 3)


def test_mobilefacenet_names_and_blocks(make_config):
    sym = get_embedding_symbol(make_config('y1'))
    shapes, outs = shapes_of(sym)
    assert outs == [(1, 128)]
    expected = {
        'conv_1_conv2d_weight': (64, 3, 3, 3), 'conv_1_batchnorm_gamma': (64,), 'conv_1_relu_gamma': (64,),
        'conv_2_dw_conv2d_weight': (64, 1, 3, 3),
        'res_3_block0_conv_sep_conv2d_weight': (128, 64, 1, 1),
        'res_3_block0_conv_dw_conv2d_weight': (128, 1, 3, 3),
        'res_3_block0_conv_proj_batchnorm_beta': (64,),
        'dconv_45_conv_sep_conv2d_weight': (512, 128, 1, 1),
        'res_5_block1_conv_sep_conv2d_weight': (256, 128, 1, 1),
        'conv_6sep_conv2d_weight': (512, 128, 1, 1),
        'conv_6dw7_7_conv2d_weight': (512, 1, 7, 7), 'pre_fc1_weight': (128, 512),
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    # net_blocks [1, 4, 6, 2]: a single depthwise conv instead of res_2, then 4, 6 and 2 blocks.
    for group, count in (('res_2', 0), ('res_3', 4), ('res_4', 6), ('res_5', 2)):
        blocks = {m.group(1) for m in (re.match(r'%s_block(\d+)_' % group, a) for a in shapes) if m}
        assert blocks == {str(i) for i in range(count)}, group

    y2 = get_embedding_symbol(make_config('y2'))
    y2_args = y2.list_arguments()
    assert 'conv_2_dw_conv2d_weight' not in y2_args
    assert 'res_2_block1_conv_dw_conv2d_weight' in y2_args
    assert 'res_4_block15_conv_proj_conv2d_weight' in y2_args
    assert 'res_4_block16_conv_proj_conv2d_weight' not in y2_args


@pytest.mark.parametrize('preset, gdc_shape, width', [('m1', (512, 2, 7, 7), 32), ('m05', (512, 1, 7, 7), 16)])
def test_mobilenet_width_and_grouped_gdc(make_config, preset, gdc_shape, width):
    shapes, outs = shapes_of(get_embedding_symbol(make_config(preset)))
    assert outs == [(1, 256)]
    assert shapes['conv_1_conv2d_weight'] == (width, 3, 3, 3)
    assert shapes['conv_2_conv2d_weight'] == (2 * width, width, 1, 1)
    assert shapes['conv_12_dw_conv2d_weight'] == (16 * width, 1, 3, 3)
    assert shapes['conv_14_conv2d_weight'] == (32 * width, 32 * width, 1, 1)
    assert 'conv_15_conv2d_weight' not in shapes
    # The GDC conv keeps input_channel=512 groups: grouped, not depthwise, for the 1024-wide m1.
    assert shapes['conv_6dw7_7_conv2d_weight'] == gdc_shape


def test_mobilenet_stem_stride_follows_net_input(make_config):
    # net_input 0 halves 112 in the stem, so the last map is 4x4 and the GDC 7x7 conv cannot apply.
    sym = get_embedding_symbol(make_config('m05', net_input=0, net_output='E'))
    shapes, _ = shapes_of(sym)
    assert shapes['pre_fc1_weight'] == (256, 512 * 4 * 4)
    shapes, _ = shapes_of(get_embedding_symbol(make_config('m05', net_output='E')))
    assert shapes['pre_fc1_weight'] == (256, 512 * 7 * 7)


def _batchnorm_attrs(sym):
    return {n['name']: n.get('attrs', {}) for n in graph_nodes(sym) if n['op'] == 'BatchNorm'}


def test_batchnorm_settings_per_family(make_config):
    res = _batchnorm_attrs(get_embedding_symbol(make_config('r50', bn_mom=0.8)))
    assert res['stage1_unit1_bn1'] == {'eps': '2e-05', 'fix_gamma': 'False', 'momentum': '0.8'}
    face = _batchnorm_attrs(get_embedding_symbol(make_config('y1', bn_mom=0.8)))
    # mxnet's default eps 1e-3 (no eps attribute), but bn_mom is honoured.
    assert face['res_3_block0_conv_dw_batchnorm'] == {'fix_gamma': 'False', 'momentum': '0.8'}
    mobile = _batchnorm_attrs(get_embedding_symbol(make_config('m1', bn_mom=0.8)))
    # fmobilenet ignores bn_mom and fixes gamma in its own blocks; the head still uses bn_mom.
    assert mobile['conv_5_dw_batchnorm'] == {'fix_gamma': 'True'}
    assert mobile['fc1']['momentum'] == '0.8'


@pytest.mark.parametrize('num_layers', sorted(SPEC_UNITS))
def test_every_fresnet_depth_builds(make_config, num_layers):
    sym = get_embedding_symbol(make_config('r50', num_layers=num_layers))
    _, outs = sym.infer_shape(data=(2, 3, 112, 112))[:2]
    assert outs == [(2, 512)]
    args = sym.list_arguments()
    for stage, count in enumerate(SPEC_UNITS[num_layers], start=1):
        units = {m.group(1) for m in (re.match(r'stage%d_unit(\d+)_conv1_weight$' % stage, a) for a in args) if m}
        assert units == {str(u) for u in range(1, count + 1)}, (num_layers, stage)


@pytest.mark.parametrize('num_layers', [0, 51, 102, 500])
def test_unknown_depth_lists_valid_depths(make_config, num_layers):
    with pytest.raises(ValueError, match=r'num_layers=%d.*18, 34, 49, 50, .*269' % num_layers):
        get_embedding_symbol(make_config('r50', num_layers=num_layers))


def test_unit_4_is_a_clear_error(make_config):
    with pytest.raises(ValueError, match='net_unit=4'):
        get_embedding_symbol(make_config('r50', num_layers=18, net_unit=4))


def test_negative_input_version_is_rejected(make_config):
    with pytest.raises(ValueError, match='net_input'):
        get_embedding_symbol(make_config('r50', num_layers=18, net_input=-1))


@pytest.mark.parametrize('net_se', [0, 1])
@pytest.mark.parametrize('net_input', [0, 1, 2])
@pytest.mark.parametrize('net_unit', [1, 2, 3])
def test_unit_input_se_combinations(make_config, net_unit, net_input, net_se):
    cfg = make_config('r50', num_layers=18, net_unit=net_unit, net_input=net_input, net_se=net_se, emb_size=64)
    sym = get_embedding_symbol(cfg)
    shapes, outs = shapes_of(sym, (2, 3, 112, 112))
    assert outs == [(2, 64)]
    names = list(shapes)
    # Stem: 7x7/2 without max-pool for input 0 (final map 4x4), else 3x3/1 (final map 7x7).
    kernel, side = (7, 4) if net_input == 0 else (3, 7)
    assert shapes['conv0_weight'] == (64, 3, kernel, kernel)
    assert shapes['pre_fc1_weight'] == (64, 512 * side * side)
    ops = {n['name']: n['op'] for n in graph_nodes(sym)}
    assert ('bn_data_gamma' in names) == (net_input == 2)
    assert (ops.get('id') == '_copy') == (net_input != 2)
    assert ('_minus_scalar' in ops.values()) == (net_input != 2)
    # SE gates on every unit when on, none when off; the SE convs carry a bias.
    se_units = {a.split('_se_')[0] for a in names if '_se_conv1_bias' in a}
    assert len(se_units) == (8 if net_se else 0)
    if net_se:
        assert shapes['stage3_unit2_se_conv1_weight'] == (256 // 16, 256, 1, 1)
        assert shapes['stage3_unit2_se_conv2_bias'] == (256,)
    # Parameters of one projecting unit, in list_arguments order; SE sits right after the branch.
    unit = [a[len('stage2_unit1_'):] for a in sym.list_arguments() if a.startswith('stage2_unit1_')]
    se = ['se_conv1_weight', 'se_conv1_bias', 'se_relu1_gamma', 'se_conv2_weight', 'se_conv2_bias'] if net_se else []
    if net_unit == 1:
        expected = (['conv1_weight', 'bn1_gamma', 'bn1_beta', 'relu1_gamma', 'conv2_weight', 'bn2_gamma',
                     'bn2_beta'] + se + ['conv1sc_weight', 'sc_gamma', 'sc_beta', 'relu3_gamma'])
    elif net_unit == 2:
        # Pre-activation: the projection shortcut is a bare conv named <unit>_sc.
        expected = (['bn1_gamma', 'bn1_beta', 'relu1_gamma', 'conv1_weight', 'bn2_gamma', 'bn2_beta',
                     'relu2_gamma', 'conv2_weight'] + se + ['sc_weight'])
    else:
        expected = (['bn1_gamma', 'bn1_beta', 'conv1_weight', 'bn2_gamma', 'bn2_beta', 'relu1_gamma',
                     'conv2_weight', 'bn3_gamma', 'bn3_beta'] + se + ['conv1sc_weight', 'sc_gamma', 'sc_beta'])
    assert unit == expected


def _internal_shape(sym, name, data_shape):
    internals = sym.get_internals()
    _, outs, _ = internals.infer_shape(data=data_shape)
    return dict(zip(internals.list_outputs(), outs))[name]


@pytest.mark.parametrize('net_unit, net_input, conv1_hw', [(1, 0, 14), (1, 1, 28), (2, 1, 14), (3, 1, 28)])
def test_where_each_unit_puts_its_stride(make_config, net_unit, net_input, conv1_hw):
    """Stage 2 unit 1 halves the map: on conv1 (v1, v2) or on the last conv (v1_L, v3)."""
    sym = get_embedding_symbol(make_config('r50', num_layers=18, net_unit=net_unit, net_input=net_input))
    # Input 56x56 reaches stage 2 at 28x28 (stem 1/2 for input 0, then stage 1 /2).
    side = 56 * (2 if net_input == 0 else 1)
    assert _internal_shape(sym, 'stage2_unit1_conv1_output', (1, 3, side, side))[2:] == (conv1_hw, conv1_hw)
    assert _internal_shape(sym, 'stage2_unit1_conv2_output', (1, 3, side, side))[2:] == (14, 14)


@pytest.mark.parametrize('net_unit, net_input, last_bn, stride_conv', [
    (1, 0, 'bn3', 'conv1'), (1, 1, 'bn3', 'conv3'), (2, 1, None, 'conv2'), (3, 1, 'bn4', 'conv3')])
def test_bottleneck_units(make_config, net_unit, net_input, last_bn, stride_conv):
    cfg = make_config('r50', net_unit=net_unit, net_input=net_input, net_se=1)
    sym = fresnet.resnet([1, 2, 1, 1], fresnet.BOTTLENECK_FILTERS, True, cfg)
    shapes, outs = shapes_of(sym, (1, 3, 112, 112))
    assert outs == [(1, 512)]
    # Quarter-width 1x1 -> 3x3 -> full-width 1x1, then a 1x1 reduction to 512 before the head.
    assert shapes['stage2_unit1_conv1_weight'] == (128, 256, 1, 1)
    assert shapes['stage2_unit1_conv2_weight'] == (128, 128, 3, 3)
    assert shapes['stage2_unit1_conv3_weight'] == (512, 128, 1, 1)
    assert shapes['convd_weight'] == (512, 2048, 1, 1)
    assert 'bnd_gamma' in shapes and 'relud_gamma' in shapes
    assert shapes['stage2_unit2_se_conv1_weight'] == (32, 512, 1, 1)
    if last_bn:
        assert shapes['stage2_unit1_%s_gamma' % last_bn] == (512,)
    side = 112 if net_input else 56
    assert _internal_shape(sym, 'stage2_unit1_%s_output' % stride_conv, (1, 3, 112, 112))[2] == side // 4


def test_every_activation_goes_through_symbol_utils_act(make_config, monkeypatch):
    calls = []
    real_act = symbol_utils.Act

    def recording_act(data, act_type, name):
        calls.append(name)
        return real_act(data, act_type, name)

    monkeypatch.setattr(symbol_utils, 'Act', recording_act)
    for preset, extra in (('r50', {'num_layers': 18, 'net_se': 1}), ('r50', {'num_layers': 18, 'net_unit': 2}),
                          ('r50v1', {'num_layers': 18}), ('y2', {}), ('m05', {})):
        calls.clear()
        sym = get_embedding_symbol(make_config(preset, **extra))
        act_nodes = [n['name'] for n in graph_nodes(sym) if n['op'] in ('LeakyReLU', 'Activation')
                     and not n['name'].endswith('_se_sigmoid')]
        assert act_nodes and sorted(act_nodes) == sorted(calls), preset


def _normalisation_output(sym):
    """Name of the output of the in-graph `(x - 127.5) * 0.0078125`, checking the two scalar ops."""
    nodes = graph_nodes(sym)
    muls = [n for n in nodes if n['op'] == '_mul_scalar']
    assert len(muls) == 1
    minus = nodes[muls[0]['inputs'][0][0]]
    assert minus['op'] == '_minus_scalar'
    assert float(minus['attrs']['scalar']) == 127.5 and float(muls[0]['attrs']['scalar']) == 0.0078125
    return muls[0]['name'] + '_output', nodes[minus['inputs'][0][0]]['name']


@pytest.mark.parametrize('preset, source', [('r50', 'id'), ('y1', 'data'), ('m05', 'data')])
def test_input_normalisation(make_config, preset, source):
    sym = get_embedding_symbol(make_config(preset))
    output, feeds_from = _normalisation_output(sym)
    assert feeds_from == source
    x = np.random.RandomState(0).uniform(0, 255, size=(2, 3, 4, 4)).astype(np.float32)
    normalised = sym.get_internals()[output].eval(data=mx.nd.array(x))[0].asnumpy()
    np.testing.assert_allclose(normalised, (x - 127.5) / 128.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(normalised[:, :, 0, 0] * 128 + 127.5, x[:, :, 0, 0], atol=1e-4)


def test_input_version_2_has_learned_normalisation(make_config):
    sym = get_embedding_symbol(make_config('r50', num_layers=18, net_input=2))
    nodes = graph_nodes(sym)
    assert not any(n['op'] in ('_minus_scalar', '_mul_scalar') for n in nodes)
    bn_data = next(n for n in nodes if n['name'] == 'bn_data')
    assert bn_data['op'] == 'BatchNorm' and bn_data['attrs']['fix_gamma'] == 'True'
    assert nodes[bn_data['inputs'][0][0]]['name'] == 'data'


@pytest.mark.parametrize('act', ['relu', 'prelu'])
def test_fresnet_forward_small_input(make_config, act):
    sym = get_embedding_symbol(make_config('r50', num_layers=18, net_act=act, emb_size=32))
    x = np.random.RandomState(1).uniform(0, 255, size=(2, 3, 32, 32)).astype(np.float32)
    out = embed(sym, x)
    assert out.shape == (2, 32) and np.all(np.isfinite(out))
    # Different images give different, non-zero embeddings.
    assert not np.allclose(out[0], out[1], rtol=1e-3, atol=0) and np.abs(out).max() > 0
    assert any(n['op'] == 'LeakyReLU' for n in graph_nodes(sym)) == (act == 'prelu')


@pytest.mark.parametrize('preset, factor_type, rnd_type', [('y1', 'out', 'gaussian'), ('m05', 'in', 'uniform')])
def test_mobile_forward_with_gdc(make_config, preset, factor_type, rnd_type):
    sym = get_embedding_symbol(make_config(preset, emb_size=16))
    x = np.random.RandomState(2).uniform(0, 255, size=(2, 3, 112, 112)).astype(np.float32)
    out = embed(sym, x, factor_type, rnd_type)
    assert out.shape == (2, 16) and np.all(np.isfinite(out))
    assert not np.allclose(out[0], out[1], rtol=1e-3, atol=0) and np.abs(out).max() > 0


@pytest.mark.parametrize('blocks', [[1, 4, 6], [1, 4, -1, 2], [1, 4, 6, 2.5]])
def test_mobilefacenet_rejects_bad_blocks(make_config, blocks):
    with pytest.raises(ValueError, match=r'net_blocks must be 4 non-negative block counts, got \['):
        get_embedding_symbol(make_config('y1', net_blocks=blocks))


def test_gdc_head_runs_repeated_inference_forwards(make_config):
    # mxnet 1.9.1's oneDNN inference graph broke on the second forward of a GDC head without an
    # explicit Flatten before pre_fc1 ("can't generate TBlob for MKLDNN data").
    sym = get_embedding_symbol(make_config('y1', net_act='relu'))
    module = mx.mod.Module(sym, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (2, 3, 112, 112))], for_training=False)
    module.init_params(mx.init.Xavier())
    rng = np.random.RandomState(0)
    outputs = []
    for _ in range(3):
        module.forward(mx.io.DataBatch([mx.nd.array(rng.rand(2, 3, 112, 112) * 255)]), is_train=False)
        outputs.append(module.get_outputs()[0].asnumpy())
    assert all(o.shape == (2, 128) and np.isfinite(o).all() for o in outputs)
    assert not np.allclose(outputs[0], outputs[1])


def test_gdc_head_on_a_width_it_cannot_group_is_a_clear_error(make_config):
    # m05 at multiplier 0.25 ends with 256 channels: 512 groups cannot divide them (2019 failed in mxnet)
    with pytest.raises(ValueError, match='divisible by 512'):
        get_embedding_symbol(make_config('m05', net_multiplier=0.25))


def test_builders_print_their_settings_as_in_2019(make_config, capsys):
    """fresnet prints 'se input output unit act', fmobilefacenet 'in_network <config>' (N10)."""
    from recognition.symbol import get_embedding_symbol
    get_embedding_symbol(make_config('r50'))
    assert capsys.readouterr().out.splitlines()[-1] == '0 1 E 3 prelu'
    config = make_config('y1')
    get_embedding_symbol(config)
    out = capsys.readouterr().out
    assert out.startswith('in_network ') and "'net_output': 'GDC'" in out and "'emb_size': 128" in out
