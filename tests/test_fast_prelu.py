"""The oneDNN-friendly PReLU: same outputs, gradients and parameters as LeakyReLU(prelu)."""
import contextlib
import io
import json

import mxnet as mx
import numpy as np
import pytest

from common import checkpoint
from common import symbol_rewrite
from common.symbol_rewrite import (cpu_inference_model, fast_prelu_symbol, flatten_fc_inputs,
                                   prelu_for_inference)
from recognition import config_loader
from recognition.symbol import get_embedding_symbol


def ops(sym):
    return [node['op'] for node in json.loads(sym.tojson())['nodes']]


def quiet_build(config, fast_prelu=False):
    # Builders print their config, as in 2019.
    with contextlib.redirect_stdout(io.StringIO()):
        return get_embedding_symbol(config, fast_prelu=fast_prelu)


def random_params(sym, data_shape, seed=0):
    """Random arguments and plausible BN statistics; PReLU slopes positive, spread around 0.25.

    (With a negative slope, mxnet 1.9.1's in-place LeakyReLU also gets the data gradient wrong.)
    """
    rng = np.random.RandomState(seed)
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    args = {name: mx.nd.array(rng.uniform(0.05, 0.5, shape) if 'relu' in name and name.endswith('_gamma')
                              else rng.normal(0, 0.2, shape))
            for name, shape in zip(sym.list_arguments(), arg_shapes) if name != 'data'}
    aux = {name: mx.nd.array(rng.uniform(0.5, 1.5, shape) if name.endswith('var')
                             else rng.normal(0, 0.1, shape))
           for name, shape in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux


def run(sym, data, args, aux, is_train, out_grad=None):
    """Forward (and backward with out_grad) on one executor; returns (output, grads by name)."""
    shapes = {name: value.shape for name, value in args.items()}
    exe = sym.simple_bind(mx.cpu(), data=data.shape, grad_req='write' if is_train else 'null', **shapes)
    exe.copy_params_from(args, {k: v.copy() for k, v in aux.items()})
    exe.arg_dict['data'][:] = data
    out = exe.forward(is_train=is_train)[0].asnumpy()
    grads = {}
    if out_grad is not None:
        exe.backward(mx.nd.array(out_grad))
        grads = {name: g.asnumpy() for name, g in exe.grad_dict.items()}
    return out, grads


def prelu_run(sym, x, gamma, dy):
    exe = sym.simple_bind(mx.cpu(), data=x.shape)
    exe.arg_dict['data'][:] = x
    exe.arg_dict['act_gamma'][:] = gamma
    out = exe.forward(is_train=True)[0].asnumpy()
    exe.backward(mx.nd.array(dy))
    return out, exe.grad_dict['data'].asnumpy(), exe.grad_dict['act_gamma'].asnumpy()


def test_formulation_equals_leakyrelu_on_negative_positive_and_zero_inputs():
    x = np.array([-3.0, -1.5, -1e-30, 0.0, -0.0, 1e-30, 0.5, 7.0] * 12, np.float32).reshape(2, 3, 4, 4)
    gamma = np.array([0.25, -0.7, 0.0], np.float32)
    dy = np.random.RandomState(1).normal(size=x.shape).astype(np.float32)
    # LeakyReLU straight on a Variable: the case mxnet 1.9.1 differentiates correctly.
    plain = mx.sym.LeakyReLU(mx.sym.Variable('data'), act_type='prelu', name='act')
    fast = fast_prelu_symbol(plain, data_shape=x.shape)
    assert 'LeakyReLU' not in ops(fast)
    out0, dx0, dg0 = prelu_run(plain, x, gamma, dy)
    out1, dx1, dg1 = prelu_run(fast, x, gamma, dy)
    # Outputs and data gradients are exact, but at x = 0 the slope is 0 instead of gamma;
    # the gamma gradient is a sum taken in another order.
    np.testing.assert_array_equal(out1, out0)
    np.testing.assert_array_equal(out0, np.where(x > 0, x, x * gamma.reshape(1, 3, 1, 1)))
    np.testing.assert_array_equal(dx1[x != 0], dx0[x != 0])
    np.testing.assert_array_equal(dx0[x == 0], (dy * gamma.reshape(1, 3, 1, 1))[x == 0])
    np.testing.assert_array_equal(dx1[x == 0], 0)
    np.testing.assert_allclose(dg1, dg0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dg1, (np.minimum(x, 0) * dy).sum(axis=(0, 2, 3)), rtol=1e-5)


def test_plain_prelu_after_an_operator_gets_gamma_times_the_gamma_gradient():
    """mxnet 1.9.1 bug: fed by another operator in a bound graph, LeakyReLU(prelu) returns gamma
    times the true gamma gradient (as if its backward read its output as its input): 0 for
    gamma = 0, sign flipped for gamma < 0. In y1 with the GAP head it hits conv_6sep_relu (feeding
    bn1) and relu1 (feeding the pooling), not the PReLUs that feed a convolution. The fast
    formulation gives the true gradient."""
    rng = np.random.RandomState(0)
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    dy = rng.normal(size=x.shape).astype(np.float32)
    gamma = np.array([0.25, -0.7, 0.0], np.float32)
    plain = mx.sym.LeakyReLU(mx.sym.Variable('data') * 1.0, act_type='prelu', name='act')
    fast = fast_prelu_symbol(plain, data_shape=x.shape)
    true = (np.minimum(x, 0) * dy).sum(axis=(0, 2, 3))
    out0, dx0, dg0 = prelu_run(plain, x, gamma, dy)
    out1, dx1, dg1 = prelu_run(fast, x, gamma, dy)
    np.testing.assert_array_equal(out1, out0)
    np.testing.assert_array_equal(dx1, dx0)
    np.testing.assert_allclose(dg0, gamma * true, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dg1, true, rtol=1e-5, atol=1e-6)


def broadcast_prelu_symbol(sym, skip=()):
    """A second, independent PReLU rewrite (relu + broadcast product) as a gradient reference.

    For 4-D inputs only: name any PReLU on a 2-D input in `skip`.
    """
    def replace(node, nodes, inputs):
        if node['op'] != 'LeakyReLU' or node['name'] in skip:
            return None
        data, gamma = inputs
        positive = mx.sym.relu(data)
        slope = mx.sym.reshape(gamma, shape=(1, -1, 1, 1))
        return positive + mx.sym.broadcast_mul(slope, data - positive)
    return symbol_rewrite._replace_nodes(sym, replace)


@pytest.mark.parametrize('network, overrides, size', [
    ('y1', dict(net_blocks=[1, 1, 1, 1], emb_size=16, net_output='GAP'), 32),
    ('r50', dict(num_layers=18, emb_size=16, net_output='FC'), 32),
])
def test_small_networks_give_the_same_outputs_and_gradients(make_config, network, overrides, size):
    config = make_config(network, **overrides)
    plain, fast = quiet_build(config), quiet_build(config, fast_prelu=True)
    assert 'LeakyReLU' in ops(plain) and 'LeakyReLU' not in ops(fast)
    shape = (4, 3, size, size)
    args, aux = random_params(plain, shape)
    rng = np.random.RandomState(2)
    data = mx.nd.array(rng.uniform(0, 255, shape))
    out_grad = rng.normal(size=(4, 16))
    out0, _ = run(plain, data, args, aux, is_train=False)
    out1, _ = run(fast, data, args, aux, is_train=False)
    np.testing.assert_allclose(out1, out0, rtol=1e-4, atol=1e-5)
    out0, grads0 = run(plain, data, args, aux, True, out_grad)
    out1, grads1 = run(fast, data, args, aux, True, out_grad)
    np.testing.assert_allclose(out1, out0, rtol=1e-4, atol=1e-5)
    _, reference = run(broadcast_prelu_symbol(plain), data, args, aux, True, out_grad)
    scale = max(np.abs(g).max() for g in grads0.values())
    gammas = [name for name in args if name.endswith('_gamma') and 'relu' in name]
    assert gammas and grads1.keys() == grads0.keys()
    for name in grads0:
        # mxnet 1.9.1's LeakyReLU gets some gamma gradients wrong (see above): those are
        # checked against the independent rewrite.
        expected = reference[name] if name in gammas else grads0[name]
        np.testing.assert_allclose(grads1[name] / scale, expected / scale, atol=1e-5, err_msg=name)


def all_presets():
    return sorted(config_loader.load_sample_config().network)


@pytest.mark.parametrize('preset', all_presets())
def test_every_preset_keeps_its_arguments_shapes_and_attributes(make_config, preset):
    config = make_config(preset)
    plain, fast = quiet_build(config), quiet_build(config, fast_prelu=True)
    assert fast.list_arguments() == plain.list_arguments()
    assert fast.list_auxiliary_states() == plain.list_auxiliary_states()
    assert fast.list_outputs() == plain.list_outputs()
    assert fast.infer_shape(data=(1, 3, 112, 112)) == plain.infer_shape(data=(1, 3, 112, 112))
    fast_attrs, plain_attrs = fast.attr_dict(), plain.attr_dict()
    for name in plain.list_arguments():
        assert fast_attrs.get(name) == plain_attrs.get(name), name
    gammas = [n for n in plain.list_arguments() if n.endswith('_gamma') and 'relu' in n]
    for name in gammas:
        assert json.loads(plain_attrs[name]['__init__']) == ['Constant', {'value': 0.25}]


def test_switch_off_gives_the_2019_leakyrelu_graph(make_config):
    config = make_config('y1')
    assert config.fast_prelu is True  # the sample config's default, for the trainer to pass on
    with contextlib.redirect_stdout(io.StringIO()):
        default = get_embedding_symbol(config)
    plain, fast = quiet_build(config, fast_prelu=False), quiet_build(config, fast_prelu=True)
    assert ops(default) == ops(plain) and default.list_arguments() == plain.list_arguments()
    prelus = ops(plain).count('LeakyReLU')
    assert prelus == 33  # 15 blocks x 2 + conv_1, conv_2_dw, conv_6sep
    assert ops(fast).count('LeakyReLU') == 0
    assert ops(fast).count('Convolution') == ops(plain).count('Convolution') + 2 * prelus
    # Per PReLU 9 operators replace LeakyReLU, 4 of them tiny weight operators (two constants,
    # -gamma, a reshape): each runs on every forward, which shows at batch 1.
    assert len(ops(fast)) == len(ops(plain)) + 8 * prelus
    # A symbol without PReLU (already rewritten) comes back unchanged.
    assert fast_prelu_symbol(fast) is fast


def shared_slope_net():
    """conv -> Gluon-style PReLU (one slope `alpha` of shape (1,)) -> FC -> 2-D PReLU."""
    data = mx.sym.Variable('data')
    conv = mx.sym.Convolution(data * 1.0, num_filter=4, kernel=(3, 3), name='conv')
    shared = mx.sym.LeakyReLU(conv, gamma=mx.sym.Variable('shared_alpha', shape=(1,)),
                              act_type='prelu', name='shared')
    flat = mx.sym.FullyConnected(shared, num_hidden=6, name='fc')
    return mx.sym.LeakyReLU(flat, act_type='prelu', name='fc_relu')


def test_shared_slope_prelu_is_rewritten_and_2d_prelu_left_alone():
    sym = shared_slope_net()
    fast = fast_prelu_symbol(sym, data_shape=(1, 3, 8, 8))
    assert [n['name'] for n in json.loads(fast.tojson())['nodes'] if n['op'] == 'LeakyReLU'] == ['fc_relu']
    assert fast.list_arguments() == sym.list_arguments()
    assert fast.infer_shape(data=(2, 3, 8, 8)) == sym.infer_shape(data=(2, 3, 8, 8))
    rng = np.random.RandomState(8)
    args, aux = random_params(sym, (2, 3, 8, 8))
    args['shared_alpha'] = mx.nd.array([0.3])
    args['fc_relu_gamma'] = mx.nd.array(rng.uniform(0.05, 0.5, 6))
    data = mx.nd.array(rng.normal(size=(2, 3, 8, 8)))
    out_grad = rng.normal(size=(2, 6))
    out0, grads0 = run(sym, data, args, aux, True, out_grad)
    out1, grads1 = run(fast, data, args, aux, True, out_grad)
    np.testing.assert_allclose(out1, out0, rtol=1e-5, atol=1e-6)
    # The shared slope's gradient sums over every channel; checked against the broadcast rewrite
    # (mxnet's own LeakyReLU gets it wrong behind another operator, as for per-channel slopes).
    _, reference = run(broadcast_prelu_symbol(sym, skip=('fc_relu',)), data, args, aux, True, out_grad)
    assert grads1['shared_alpha'].shape == (1,)
    for name in grads0:
        expected = reference[name] if name == 'shared_alpha' else grads0[name]
        np.testing.assert_allclose(grads1[name], expected, rtol=1e-4, atol=1e-5, err_msg=name)
    inference, params = prelu_for_inference(sym, args, data_shape=(1, 3, 8, 8))
    assert 'shared_alpha' not in inference.list_arguments() and 'fc_relu_gamma' in inference.list_arguments()
    np.testing.assert_allclose(params['shared_kink_weight'].asnumpy(), np.full((4, 1, 1, 1), 0.7), rtol=1e-6)
    np.testing.assert_allclose(inference_run(inference, params, data), out0, rtol=1e-5, atol=1e-6)


def test_wrong_data_shape_says_what_to_pass(make_config):
    sym = quiet_build(make_config('y1'))
    with pytest.raises(ValueError, match=r'data_shape=\(1, 3, height, width\)'):
        fast_prelu_symbol(sym, data_shape=(1, 3, 20, 20))


@pytest.mark.parametrize('network, overrides', [
    ('y1', dict(emb_size=32)),
    ('r50', dict(num_layers=18, emb_size=32)),
])
def test_rewritten_2019_checkpoint_gives_identical_embeddings(make_config, tmp_path, network, overrides):
    """A plain checkpoint, loaded and rewritten, gives the same fc1 from the same params file."""
    config = make_config(network, **overrides)
    sym = quiet_build(config)
    args, aux = random_params(sym, (1, 3, 112, 112), seed=3)
    prefix = str(tmp_path / 'model')
    checkpoint.save_checkpoint(prefix, 0, sym, args, aux)
    loaded, arg_params, aux_params = checkpoint.load_checkpoint(prefix, 0)
    assert 'LeakyReLU' in ops(loaded)
    data = mx.nd.array(np.random.RandomState(4).uniform(0, 255, (2, 3, 112, 112)))

    def embed(symbol, for_training):
        model = mx.mod.Module(symbol, context=mx.cpu(), label_names=None)
        model.bind(data_shapes=[('data', data.shape)], for_training=for_training)
        model.set_params(arg_params, aux_params)
        outputs = []
        for _ in range(2):  # the oneDNN inference graph used to fail on the second forward
            model.forward(mx.io.DataBatch([data]), is_train=False)
            outputs.append(model.get_outputs()[0].asnumpy())
        np.testing.assert_array_equal(outputs[1], outputs[0])
        return outputs[0]

    reference = embed(loaded, for_training=True)
    fast = fast_prelu_symbol(loaded)
    assert fast.list_arguments() == loaded.list_arguments()
    np.testing.assert_allclose(embed(fast, for_training=True), reference, rtol=1e-5, atol=1e-4)
    # Bound for inference, oneDNN fuses conv+BN(+relu); the folded BN changes rounding only.
    inference, arg_params = cpu_inference_model(loaded, arg_params)
    assert 'LeakyReLU' not in ops(inference)
    np.testing.assert_allclose(embed(inference, for_training=False), reference, rtol=1e-3, atol=1e-3)


def test_flatten_fc_inputs_fixes_the_2019_gdc_head_bound_for_inference():
    """The 2019 GDC head feeds pre_fc1 straight from a 7x7 depthwise conv + BatchNorm."""
    data = mx.sym.Variable('data')
    conv = mx.sym.Convolution(data, num_filter=8, num_group=8, kernel=(7, 7), no_bias=True, name='dw')
    head = mx.sym.BatchNorm(conv, fix_gamma=False, name='dw_bn')
    sym = mx.sym.FullyConnected(head, num_hidden=4, name='pre_fc1')
    flat = flatten_fc_inputs(sym)
    assert flat.list_arguments() == sym.list_arguments()
    assert [n['name'] for n in json.loads(flat.tojson())['nodes'] if n['op'] == 'Flatten'] == \
        ['pre_fc1_flatten']
    assert flatten_fc_inputs(flat).tojson() == flat.tojson()  # already flat: nothing to add
    args, aux = random_params(sym, (2, 8, 7, 7))
    x = mx.nd.array(np.random.RandomState(5).normal(size=(2, 8, 7, 7)))
    expected, _ = run(sym, x, args, aux, is_train=False)
    exe = flat.simple_bind(mx.cpu(), data=x.shape, grad_req='null')
    exe.copy_params_from(args, aux)
    for _ in range(3):  # without the Flatten, the second forward fails
        exe.arg_dict['data'][:] = x
        np.testing.assert_allclose(exe.forward(is_train=False)[0].asnumpy(), expected, rtol=1e-5, atol=1e-5)


def inference_run(sym, params, x):
    """Output of `sym` bound for inference (oneDNN fusion on), forwarded twice to catch stale buffers."""
    exe = sym.simple_bind(mx.cpu(), data=x.shape, grad_req='null')
    exe.copy_params_from({k: v for k, v in params.items() if k in exe.arg_dict}, allow_extra_params=True)
    outputs = []
    for _ in range(2):
        exe.arg_dict['data'][:] = x
        outputs.append(exe.forward(is_train=False)[0].asnumpy())
    np.testing.assert_array_equal(outputs[1], outputs[0])
    return outputs[0]


def conv_prelu_net(num_channels=3):
    """conv -> PReLU -> conv: each PReLU input made by an operator, as in the real networks."""
    data = mx.sym.Variable('data')
    conv = mx.sym.Convolution(data, num_filter=num_channels, kernel=(3, 3), pad=(1, 1), name='conv')
    act = mx.sym.LeakyReLU(conv, act_type='prelu', name='act')
    return mx.sym.Convolution(act, num_filter=2, kernel=(1, 1), name='out')


@pytest.mark.parametrize('gamma, form', [
    ([0.25, -0.7, 0.0], 'kink'),      # slopes <= 1: relu((1 - g) x) + g x, two operators
    ([0.25, 1.0, -0.3], 'kink'),      # a slope of exactly 1 is still convex
    ([0.25, 1.6, 0.1], 'negate'),     # a slope above 1 (concave): the exact 3-operator form
])
def test_prelu_for_inference_gives_the_prelu_outputs(gamma, form):
    rng = np.random.RandomState(0)
    x = mx.nd.array(rng.normal(size=(2, 4, 6, 6)))
    sym = conv_prelu_net()
    args, _ = random_params(sym, x.shape)
    args['act_gamma'] = mx.nd.array(gamma)
    expected = inference_run(sym, args, x)
    conv_out = inference_run(sym.get_internals()['conv_output'], args, x)
    g = np.array(gamma, np.float32).reshape(1, 3, 1, 1)
    prelu = np.where(conv_out > 0, conv_out, g * conv_out)
    assert (conv_out < 0).any() and (conv_out > 0).any()
    rewritten, params = prelu_for_inference(sym, args, data_shape=x.shape)
    assert 'LeakyReLU' not in ops(rewritten) and 'act_gamma' not in rewritten.list_arguments()
    weights = {'kink': ('act_linear_weight', 'act_kink_weight'),
               'negate': ('act_negate_weight', 'act_scale_weight')}[form]
    assert set(weights) <= set(rewritten.list_arguments())
    expected_weights = {'act_linear_weight': g, 'act_kink_weight': 1 - g,
                        'act_negate_weight': -np.ones_like(g), 'act_scale_weight': -g}
    for name in weights:
        np.testing.assert_allclose(params[name].asnumpy().reshape(1, 3, 1, 1), expected_weights[name])
    # The original params stay as they were (a copy is extended).
    assert 'act_linear_weight' not in args and 'act_negate_weight' not in args
    # Two operators per PReLU in the kink form (conv+relu fused, conv+sum fused), three otherwise.
    assert ops(rewritten).count('Convolution') == 2 + 2
    np.testing.assert_allclose(inference_run(rewritten, params, x), expected, rtol=1e-5, atol=1e-6)
    # And the PReLU itself, not only the net's output.
    internals = rewritten.get_internals()
    np.testing.assert_allclose(inference_run(internals['act_output'], params, x), prelu,
                               rtol=1e-5, atol=1e-6)


def test_prelu_for_inference_names_a_missing_slope():
    sym = conv_prelu_net()
    args, _ = random_params(sym, (1, 4, 6, 6))
    del args['act_gamma']
    with pytest.raises(ValueError, match="arg_params has no 'act_gamma'.*PReLU 'act'"):
        prelu_for_inference(sym, args, data_shape=(1, 4, 6, 6))


def test_prelu_for_inference_leaves_2d_and_prelu_free_graphs_alone():
    data = mx.sym.Variable('data')
    flat = mx.sym.FullyConnected(data, num_hidden=6, name='fc')
    vector = mx.sym.LeakyReLU(flat, act_type='prelu', name='fc_relu')
    args = {'fc_relu_gamma': mx.nd.array(np.full(6, 0.3))}
    rewritten, params = prelu_for_inference(vector, args, data_shape=(1, 3, 8, 8))
    assert rewritten.tojson() == vector.tojson() and params == args
    relu = mx.sym.Activation(flat, act_type='relu')
    assert prelu_for_inference(relu, {}, data_shape=(1, 3, 8, 8))[0] is relu


@pytest.mark.parametrize('network, overrides', [
    ('y1', dict(net_blocks=[1, 1, 1, 1], emb_size=16, net_output='GDC')),
    ('r50', dict(num_layers=18, emb_size=16, net_output='E')),
    ('mnas05', dict(emb_size=16)),  # Gluon blocks: one shared slope per PReLU
])
def test_prelu_for_inference_on_whole_networks(make_config, network, overrides):
    """Two operators per PReLU (all slopes <= 1 here) and the plain network's embedding."""
    config = make_config(network, **overrides)
    plain = quiet_build(config)
    shape = (2, 3, 112, 112)
    args, aux = random_params(plain, shape, seed=6)
    prelus = ops(plain).count('LeakyReLU')
    rewritten, params = cpu_inference_model(plain, args, data_shape=(1, 3, 112, 112))
    assert ops(rewritten).count('LeakyReLU') == 0
    # conv x2, relu and sum instead of each PReLU: no per-forward weight arithmetic.
    operators = [op for op in ops(rewritten) if op not in ('null', 'Flatten')]
    assert len(operators) == len([op for op in ops(plain) if op not in ('null', 'Flatten')]) + 3 * prelus
    assert operators.count('Convolution') == ops(plain).count('Convolution') + 2 * prelus
    data = mx.nd.array(np.random.RandomState(7).uniform(0, 255, shape))
    expected, _ = run(plain, data, args, aux, is_train=False)
    exe = rewritten.simple_bind(mx.cpu(), data=shape, grad_req='null')
    exe.copy_params_from(params, aux, allow_extra_params=True)
    exe.arg_dict['data'][:] = data
    got = exe.forward(is_train=False)[0].asnumpy()
    assert np.abs(expected).max() > 1e-2  # a live network, not one that rounds to zero
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
