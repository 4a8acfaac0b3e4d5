"""ONNX export of embedding checkpoints: the exporter workarounds, dynamic batch, parity with MXNet."""
import json
import os

import mxnet as mx
import numpy as np
import onnx
import pytest

from common import checkpoint
from deploy import export_onnx
from recognition.symbol import get_embedding_symbol

NETWORKS = {
    # MobileFaceNet: PReLU everywhere, GDC head (needs 112x112)
    'y1': dict(network='y1'),
    # fresnet with the E head: BatchNorm, Dropout, FC, fix_gamma BatchNorm fc1, in-graph scaling
    'r18': dict(network='r50', num_layers=18, emb_size=64),
    # MobileNet 0.5 with the GDC head
    'm05': dict(network='m05'),
}


def save_random_checkpoint(make_config, directory, name):
    """A checkpoint with random weights and BatchNorm statistics, fix_gamma gammas far from 1."""
    overrides = dict(NETWORKS[name])
    symbol = get_embedding_symbol(make_config(overrides.pop('network'), **overrides))
    module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (1, 3, 112, 112))], for_training=False)
    mx.random.seed(3)
    module.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2))
    arg_params, aux_params = module.get_params()
    rng = np.random.RandomState(5)
    for params, suffix, low, high in ((arg_params, 'gamma', 0.5, 1.5), (arg_params, 'beta', -0.2, 0.2),
                                      (aux_params, 'moving_mean', -0.2, 0.2),
                                      (aux_params, 'moving_var', 0.5, 1.5)):
        for key in params:
            if key.endswith(suffix):
                params[key] = mx.nd.array(rng.uniform(low, high, params[key].shape))
    arg_params['fc7_weight'] = mx.nd.zeros((10, 8))  # a training checkpoint's classifier: ignored
    prefix = os.path.join(str(directory), 'model-' + name)
    checkpoint.save_checkpoint(prefix, 1, symbol, arg_params, aux_params)
    return prefix


@pytest.mark.parametrize('name', sorted(NETWORKS))
def test_export_matches_mxnet_at_batch_1_and_3_and_on_a_real_face(name, make_config, tmp_path,
                                                                  shared_dir, capsys):
    prefix = save_random_checkpoint(make_config, tmp_path, name)
    output = str(tmp_path / (name + '.onnx'))
    face = os.path.join(shared_dir, 'data', 'orl_faces', 's7', '3.pgm')
    status = export_onnx.main(['--model', prefix + ',1', '--output', output,
                               '--check-images', face, '--check-batch', '1', '3'])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert 'check passed' in printed
    assert 'random batch 3: min cosine' in printed and '1 image(s): min cosine' in printed
    assert [f for f in os.listdir(str(tmp_path)) if f.endswith('.tmp')] == []

    model = onnx.load(output)
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import] == [export_onnx.EXPORT_OPSET]
    assert [i.name for i in model.graph.input] == ['data']  # parameters are constants
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == 'batch' and [d.dim_value for d in dims[1:]] == [3, 112, 112]
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    emb_size = NETWORKS[name].get('emb_size', 128 if name == 'y1' else 256)
    assert out_dims[0].dim_param == 'batch' and out_dims[1].dim_value == emb_size

    # the checks themselves, directly: a batch of 3 real faces, every row close to MXNet
    faces = np.stack([export_onnx.load_face(os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % p,
                                                         '1.pgm')) for p in (1, 2, 3)])
    [(label, cosines)] = export_onnx.compare(output, prefix + ',1', [('orl', faces)])
    assert cosines.shape == (3,) and cosines.min() >= export_onnx.MIN_COSINE


def test_prepare_for_export_makes_the_exporter_bugs_harmless(make_config, tmp_path):
    prefix = save_random_checkpoint(make_config, tmp_path, 'r18')
    symbol, arg_params, aux_params = checkpoint.load_checkpoint(prefix, 1)
    symbol, params, prelu_ranks = export_onnx.prepare_for_export(
        export_onnx.embedding_symbol(symbol), arg_params, aux_params, (1, 3, 112, 112))
    nodes = json.loads(symbol.tojson())['nodes']
    assert [n['attrs']['flatten'] for n in nodes if n['op'] == 'FullyConnected'] == ['True']
    assert [n for n in nodes if n['op'] == 'Flatten'] == []  # the E head: FC on the 4-D map
    # fix_gamma BatchNorm exported with gamma 1
    assert np.all(params['fc1_gamma'].asnumpy() == 1)
    assert arg_params['fc1_gamma'].asnumpy().min() < 0.99
    # fix_gamma=False ones keep their learned gamma
    np.testing.assert_array_equal(params['bn1_gamma'].asnumpy(), arg_params['bn1_gamma'].asnumpy())
    assert 'fc7_weight' not in params
    assert prelu_ranks['relu0_gamma'] == 4


def test_a_wrong_export_fails_the_check(make_config, tmp_path, monkeypatch, capsys):
    """Without the fix_gamma workaround mxnet's exporter gives other embeddings: the check says so."""
    prefix = save_random_checkpoint(make_config, tmp_path, 'm05')
    real_prepare = export_onnx.prepare_for_export

    def keep_stored_gammas(symbol, arg_params, aux_params, data_shape):
        symbol, params, ranks = real_prepare(symbol, arg_params, aux_params, data_shape)
        return symbol, {k: arg_params.get(k, aux_params.get(k)) for k in params}, ranks

    monkeypatch.setattr(export_onnx, 'prepare_for_export', keep_stored_gammas)
    status = export_onnx.main(['--model', prefix + ',1', '--output', str(tmp_path / 'bad.onnx'),
                               '--check-batch', '2'])
    assert status == 1
    assert 'check FAILED' in capsys.readouterr().out


# The E head's FullyConnected takes the 4-D feature map (GDC heads flatten explicitly before it).
@pytest.mark.parametrize('knock_out, node, name', [('flatten', 'Gemm', 'r18'),
                                                   ('prelu', 'PRelu', 'm05')])
def test_the_other_two_exporter_bugs_still_break_a_plain_export(knock_out, node, name, make_config,
                                                                 tmp_path, monkeypatch):
    """mxnet 1.9.1 still needs each workaround: without it onnxruntime rejects the model."""
    prefix = save_random_checkpoint(make_config, tmp_path, name)
    real_prepare = export_onnx.prepare_for_export

    def without_one_fix(symbol, arg_params, aux_params, data_shape):
        symbol, params, ranks = real_prepare(symbol, arg_params, aux_params, data_shape)
        if knock_out == 'prelu':
            return symbol, params, {}
        graph = json.loads(symbol.tojson())
        for n in graph['nodes']:
            if n['op'] == 'FullyConnected':
                del n['attrs']['flatten']
        return mx.sym.load_json(json.dumps(graph)), params, ranks

    monkeypatch.setattr(export_onnx, 'prepare_for_export', without_one_fix)
    with pytest.raises(Exception, match=node):
        export_onnx.main(['--model', prefix + ',1', '--output', str(tmp_path / 'bad.onnx'),
                          '--check-batch', '1'])


def test_missing_checkpoint_and_layer_are_clear_errors(make_config, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope-symbol.json'):
        export_onnx.export(str(tmp_path / 'nope'), 0, str(tmp_path / 'x.onnx'))
    prefix = save_random_checkpoint(make_config, tmp_path, 'm05')
    with pytest.raises(ValueError, match="'fc9_output'"):
        export_onnx.export(prefix, 1, str(tmp_path / 'x.onnx'), layer='fc9')
    assert not os.path.exists(str(tmp_path / 'x.onnx'))


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_onnx.parse_args(['--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert '--model' in out and '--check-images' in out and '--check-batch' in out
