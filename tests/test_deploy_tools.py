"""Tests for deploy/model_slim.py, ga_merge.py, test.py and benchmark.py on tiny checkpoints."""
import json
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from common import checkpoint
from deploy import benchmark, ga_merge, model_slim
from deploy import test as deploy_test
from deploy.face_model import decode_gender_age


def tiny_embedding(emb_size=8):
    data = mx.sym.Variable('data')
    body = mx.sym.Convolution((data - 127.5) * 0.0078125, num_filter=4, kernel=(3, 3),
                              stride=(4, 4), name='conv0')
    body = mx.sym.BatchNorm(body, name='bn0')
    return mx.sym.FullyConnected(body, num_hidden=emb_size, name='fc1')


def init_params(symbol, seed, size=112):
    module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (1, 3, size, size))], for_training=False)
    mx.random.seed(seed)
    module.init_params(mx.init.Xavier(magnitude=2))
    return module.get_params()


@pytest.fixture
def training_checkpoint(tmp_path):
    """A 2019 training checkpoint: the whole graph with the fc7 classifier and softmax."""
    fc1 = tiny_embedding()
    fc7 = mx.sym.FullyConnected(fc1, num_hidden=5, name='fc7')
    full = mx.sym.SoftmaxOutput(fc7, name='softmax')
    arg_params, aux_params = init_params(fc1, seed=1)
    arg_params['fc7_weight'] = mx.nd.ones((5, 8))
    arg_params['fc7_bias'] = mx.nd.zeros((5,))
    prefix = str(tmp_path / 'model')
    mx.model.save_checkpoint(prefix, 60, full, arg_params, aux_params)
    return prefix


def orl_face_file(shared_dir, tmp_path, person, number):
    grey = cv2.imread(os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % person,
                                   '%d.pgm' % number), cv2.IMREAD_GRAYSCALE)
    path = str(tmp_path / ('s%d_%d.png' % (person, number)))
    cv2.imwrite(path, cv2.cvtColor(cv2.resize(grey, (184, 224)), cv2.COLOR_GRAY2BGR))
    return path


# --- model_slim --------------------------------------------------------------------------------

def test_model_slim_keeps_fc1_and_drops_fc7(training_checkpoint, capsys):
    model_slim.main(['--model', training_checkpoint + ',60'])
    assert 'loading %s 60' % training_checkpoint in capsys.readouterr().out
    symbol, arg_params, aux_params = checkpoint.load_checkpoint(training_checkpoint + 's', 0)
    assert symbol.list_outputs() == ['fc1_output']
    assert sorted(arg_params) == ['bn0_beta', 'bn0_gamma', 'conv0_bias', 'conv0_weight',
                                  'fc1_bias', 'fc1_weight']
    _, original_args, original_aux = checkpoint.load_checkpoint(training_checkpoint, 60)
    np.testing.assert_array_equal(arg_params['fc1_weight'].asnumpy(),
                                  original_args['fc1_weight'].asnumpy())
    assert sorted(aux_params) == sorted(original_aux)
    assert not [n for n in os.listdir(os.path.dirname(training_checkpoint)) if n.endswith('.tmp')]


def test_model_slim_errors(tmp_path, training_checkpoint):
    with pytest.raises(SystemExit, match="prefix,epoch"):
        model_slim.main(['--model', training_checkpoint])
    with pytest.raises(FileNotFoundError, match='model-0061.params'):
        model_slim.main(['--model', training_checkpoint + ',61'])
    prefix = str(tmp_path / 'nofc1')
    out = mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=2, name='embedding')
    checkpoint.save_checkpoint(prefix, 0, out, {'embedding_weight': mx.nd.ones((2, 3)),
                                                'embedding_bias': mx.nd.ones((2,))}, {})
    with pytest.raises(ValueError, match="nofc1-symbol.json has no 'fc1' node"):
        model_slim.main(['--model', prefix + ',0'])


# --- ga_merge ----------------------------------------------------------------------------------

def two_branch_fc1():
    """fc1 = [gender logits (2), age pairs (200)], each branch with its own prefixed params."""
    data = (mx.sym.Variable('data') - 127.5) * 0.0078125
    gender = mx.sym.FullyConnected(data, num_hidden=2, name='gender_fc')
    age = mx.sym.BatchNorm(mx.sym.Convolution(data, num_filter=2, kernel=(3, 3), stride=(8, 8),
                                              name='age_conv'), name='age_bn')
    age = mx.sym.FullyConnected(age, num_hidden=200, name='age_fc')
    return mx.sym.concat(gender, age, dim=1, name='fc1')


def test_ga_merge_takes_age_and_gender_params_from_their_models(tmp_path, capsys):
    fc1 = two_branch_fc1()
    for name, seed in (('age', 1), ('gender', 2)):
        arg_params, aux_params = init_params(fc1, seed)
        aux_params = {k: v + seed for k, v in aux_params.items()}
        arg_params['fc7_weight'] = mx.nd.ones((3, 202))  # dropped: neither age* nor gender*
        mx.model.save_checkpoint(str(tmp_path / name), 0, fc1, arg_params, aux_params)
    ga_merge.main(['--age-model', str(tmp_path / 'age') + ',0',
                   '--gender-model', str(tmp_path / 'gender') + ',0',
                   '--prefix', str(tmp_path / 'ga')])
    out = capsys.readouterr().out
    assert 'arg 0 age_fc_weight' in out and 'arg 1 gender_fc_weight' in out
    assert 'aux 0 age_bn_moving_mean' in out
    _, merged_args, merged_aux = checkpoint.load_checkpoint(str(tmp_path / 'ga'), 0)
    _, age_args, age_aux = checkpoint.load_checkpoint(str(tmp_path / 'age'), 0)
    _, gender_args, _ = checkpoint.load_checkpoint(str(tmp_path / 'gender'), 0)
    assert 'fc7_weight' not in merged_args
    for name, value in merged_args.items():
        source = age_args if name.startswith('age') else gender_args
        np.testing.assert_array_equal(value.asnumpy(), source[name].asnumpy())
    np.testing.assert_array_equal(merged_aux['age_bn_moving_mean'].asnumpy(),
                                  age_aux['age_bn_moving_mean'].asnumpy())


def test_ga_merge_refuses_a_graph_with_unprefixed_params(tmp_path):
    fc1 = tiny_embedding()
    arg_params, aux_params = init_params(fc1, 1)
    mx.model.save_checkpoint(str(tmp_path / 'm'), 0, fc1, arg_params, aux_params)
    with pytest.raises(SystemExit, match='neither .age. nor .gender.*conv0_weight'):
        ga_merge.main(['--age-model', str(tmp_path / 'm') + ',0',
                       '--gender-model', str(tmp_path / 'm') + ',0', '--prefix',
                       str(tmp_path / 'out')])
    assert not os.path.exists(str(tmp_path / 'out-0000.params'))
    with pytest.raises(SystemExit, match='--gender-model is required'):
        ga_merge.main(['--age-model', str(tmp_path / 'm') + ',0', '--prefix', 'x'])


# --- test.py (the demo) --------------------------------------------------------------------------

@pytest.fixture
def ga_and_recognition(tmp_path):
    fc1 = two_branch_fc1()
    arg_params, aux_params = init_params(fc1, 3)
    mx.model.save_checkpoint(str(tmp_path / 'ga'), 0, fc1, arg_params, aux_params)
    rec = tiny_embedding()
    arg_params, aux_params = init_params(rec, 4)
    mx.model.save_checkpoint(str(tmp_path / 'rec'), 0, rec, arg_params, aux_params)
    return str(tmp_path / 'ga') + ',0', str(tmp_path / 'rec') + ',0'


def test_demo_prints_gender_age_and_similarity(shared_dir, tmp_path, capsys, ga_and_recognition):
    ga_model, rec_model = ga_and_recognition
    first = orl_face_file(shared_dir, tmp_path, 1, 1)
    second = orl_face_file(shared_dir, tmp_path, 1, 2)
    deploy_test.main(['--ga-model', ga_model, '--model', rec_model, '--gpu', '-1', '--det', '1',
                      '--image', first, '--image2', second])
    lines = capsys.readouterr().out.strip().splitlines()
    lines = [line for line in lines if not line.startswith('loading')]
    gender, age = int(lines[0]), int(lines[1])
    assert gender in (0, 1) and 0 <= age <= 100
    dist, sim = float(lines[-2]), float(lines[-1])
    assert 0 <= dist <= 4 and dist == pytest.approx(2 - 2 * sim, abs=1e-4)

    # the same image twice: distance 0, similarity 1
    deploy_test.main(['--model', rec_model, '--gpu', '-1', '--det', '1', '--image', first,
                      '--image2', first])
    lines = capsys.readouterr().out.strip().splitlines()
    assert float(lines[-2]) == pytest.approx(0, abs=1e-5)
    assert float(lines[-1]) == pytest.approx(1, abs=1e-5)


def test_demo_gender_age_equals_decoding_the_model_output(shared_dir, tmp_path, capsys,
                                                          ga_and_recognition):
    from deploy.face_model import FaceModel
    from easydict import EasyDict as edict
    ga_model, _ = ga_and_recognition
    image = orl_face_file(shared_dir, tmp_path, 7, 3)
    deploy_test.main(['--ga-model', ga_model, '--gpu', '-1', '--det', '1', '--image', image])
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith('loading')]
    model = FaceModel(edict(image_size='112,112', model='', ga_model=ga_model, gpu=-1, det=1))
    aligned = model.get_input(cv2.imread(image))
    raw = model._forward(model.ga_model, aligned, 'get_ga')
    assert (int(lines[0]), int(lines[1])) == decode_gender_age(raw)


def test_demo_errors(tmp_path, ga_and_recognition):
    ga_model, rec_model = ga_and_recognition
    with pytest.raises(SystemExit, match='give --model'):
        deploy_test.main(['--gpu', '-1'])
    with pytest.raises(SystemExit, match='cannot read image .*Tom_Hanks_54745.png'):
        deploy_test.main(['--ga-model', ga_model, '--gpu', '-1',
                          '--image', str(tmp_path / 'Tom_Hanks_54745.png')])
    with pytest.raises(SystemExit, match='--image2 compares embeddings'):
        deploy_test.main(['--ga-model', ga_model, '--gpu', '-1', '--image2', 'x.png'])
    blank = str(tmp_path / 'blank.png')
    cv2.imwrite(blank, np.full((200, 200, 3), 128, dtype=np.uint8))
    with pytest.raises(SystemExit, match='no face found in .*blank.png'):
        deploy_test.main(['--model', rec_model, '--gpu', '-1', '--image', blank])


# --- benchmark.py ----------------------------------------------------------------------------------

def test_benchmark_prints_json_latencies(shared_dir, tmp_path, capsys, ga_and_recognition):
    ga_model, rec_model = ga_and_recognition
    image = orl_face_file(shared_dir, tmp_path, 2, 2)
    result = benchmark.main(['--model', rec_model, '--ga-model', ga_model, '--image', image,
                             '--runs', '3', '--warmup', '1'])
    out = capsys.readouterr().out
    printed = json.loads(out[out.index('{'):])
    assert printed == json.loads(json.dumps(result))
    for step in ('get_input', 'get_feature', 'get_ga'):
        assert printed[step]['runs'] == 3
        assert 0 < printed[step]['median_ms'] and 0 < printed[step]['mean_ms']
    assert printed['batch_size'] == 1 and printed['context'] == 'cpu'

    result = benchmark.main(['--model', rec_model, '--runs', '2', '--warmup', '0'])
    assert 'get_input' not in result and result['get_feature']['runs'] == 2
    with pytest.raises(SystemExit, match='--runs must be >= 1'):
        benchmark.main(['--model', rec_model, '--runs', '0'])
