"""Checkpoint files: 2019 layout, atomic writes, errors that name the missing or broken file."""
import os

import mxnet as mx
import numpy as np
import pytest

from common import checkpoint


def small_model():
    data = mx.sym.Variable('data')
    fc = mx.sym.FullyConnected(data, num_hidden=3, name='fc1')
    bn = mx.sym.BatchNorm(fc, name='bn')
    return bn, {'fc1_weight': mx.nd.ones((3, 2)), 'fc1_bias': mx.nd.zeros(3),
                'bn_gamma': mx.nd.ones(3), 'bn_beta': mx.nd.zeros(3)}, \
        {'bn_moving_mean': mx.nd.zeros(3), 'bn_moving_var': mx.nd.ones(3)}


def test_saved_files_load_with_mxnet_itself(tmp_path):
    sym, args, aux = small_model()
    prefix = str(tmp_path / 'model')
    assert checkpoint.save_checkpoint(prefix, 7, sym, args, aux) == prefix + '-0007.params'
    sym2, args2, aux2 = mx.model.load_checkpoint(prefix, 7)
    assert sym2.tojson() == sym.tojson()
    assert sorted(args2) == sorted(args) and sorted(aux2) == sorted(aux)
    np.testing.assert_array_equal(args2['fc1_weight'].asnumpy(), np.ones((3, 2)))
    assert sorted(os.listdir(tmp_path)) == ['model-0007.params', 'model-symbol.json']
    assert checkpoint.checkpoint_epochs(prefix) == [7]


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path):
    sym, args, aux = small_model()
    prefix = str(tmp_path / 'model')
    checkpoint.save_checkpoint(prefix, 1, sym, args, aux)
    before = open(prefix + '-0001.params', 'rb').read()

    def crash(path):
        with open(path, 'wb') as f:
            f.write(b'half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(prefix + '-0001.params', crash)
    assert open(prefix + '-0001.params', 'rb').read() == before
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]


def test_missing_and_broken_files_are_named(tmp_path):
    sym, args, aux = small_model()
    prefix = str(tmp_path / 'model')
    with pytest.raises(FileNotFoundError, match='model-symbol.json'):
        checkpoint.load_checkpoint(prefix, 0)
    checkpoint.save_checkpoint(prefix, 1, sym, args, aux)
    with pytest.raises(FileNotFoundError, match='model-0002.params'):
        checkpoint.load_checkpoint(prefix, 2)
    open(prefix + '-0003.params', 'wb').write(b'not an ndarray file')
    with pytest.raises(ValueError, match='model-0003.params'):
        checkpoint.load_checkpoint(prefix, 3)


def test_parse_model_arg():
    assert checkpoint.parse_model_arg('./models/m,12') == ('./models/m', 12)
    assert checkpoint.parse_model_arg('./m', default_epoch=3) == ('./m', 3)
    with pytest.raises(ValueError, match='prefix,epoch'):
        checkpoint.parse_model_arg('./m')
    with pytest.raises(ValueError, match='integer'):
        checkpoint.parse_model_arg('./m,x')


def test_inference_module_runs_a_2019_gdc_head_repeatedly(tmp_path):
    # 2019 GDC heads fed the depthwise conv's 1x1 map straight into pre_fc1; bound for inference,
    # mxnet 1.9.1's oneDNN graph failed from the second forward on unless a Flatten is inserted.
    data = mx.sym.Variable('data')
    body = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), no_bias=True, name='conv_1')
    body = mx.sym.BatchNorm(body, fix_gamma=False, name='bn')
    body = mx.sym.LeakyReLU(body, act_type='prelu', name='relu')
    body = mx.sym.Convolution(body, num_filter=8, num_group=8, kernel=(7, 7), no_bias=True,
                              name='conv_6dw7_7_conv2d')
    body = mx.sym.BatchNorm(body, fix_gamma=False, name='conv_6dw7_7_batchnorm')
    body = mx.sym.FullyConnected(body, num_hidden=4, name='pre_fc1')
    fc1 = mx.sym.BatchNorm(body, fix_gamma=True, eps=2e-5, name='fc1')
    module = mx.mod.Module(fc1, label_names=None)
    module.bind(data_shapes=[('data', (2, 3, 7, 7))])
    module.init_params(mx.init.Xavier())
    args, aux = module.get_params()
    prefix = str(tmp_path / 'model')
    checkpoint.save_checkpoint(prefix, 0, fc1, args, aux)
    rng = np.random.RandomState(0)
    batch = mx.nd.array(rng.rand(2, 3, 7, 7) * 255)
    reference = fc1.bind(mx.cpu(), args=dict(args, data=batch), aux_states=aux).forward()[0].asnumpy()
    for fast in (True, False):
        net = checkpoint.load_inference_module(prefix, 0, mx.cpu(), (2, 3, 7, 7), fast_cpu=fast)
        for _ in range(3):
            net.forward(mx.io.DataBatch([batch]), is_train=False)
            np.testing.assert_allclose(net.get_outputs()[0].asnumpy(), reference, rtol=1e-4, atol=1e-4)
