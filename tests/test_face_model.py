"""Tests for deploy.face_model: detection + alignment, embeddings, gender-age, loading errors."""
import json
import logging
import os
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict as edict

from common import checkpoint, face_preprocess
from deploy import face_model
from recognition.symbol import get_embedding_symbol


def orl_bgr(shared_dir, person, number):
    """An ORL face (grey 92x112) enlarged 2x and turned into a BGR uint8 image."""
    path = os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % person, '%d.pgm' % number)
    grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    assert grey is not None, path
    return cv2.cvtColor(cv2.resize(grey, (184, 224)), cv2.COLOR_GRAY2BGR)


def make_args(**overrides):
    args = edict(image_size='112,112', model='', ga_model='', gpu=-1, det=0, flip=0,
                 threshold=1.24, mtcnn_path=None)
    args.update(overrides)
    return args


def crafted_ga_vector(gender, age, tie_at=None):
    """202 values decoding to (gender, age): pairs 0..age-1 vote yes; `tie_at` is an equal pair."""
    v = np.zeros(202, dtype=np.float32)
    v[gender] = 2.0
    v[1 - gender] = -1.0
    for i in range(100):
        no, yes = (0.2, 0.7) if i < age else (0.6, 0.1)
        v[2 + 2 * i], v[3 + 2 * i] = no, yes
    if tie_at is not None:
        v[2 + 2 * tie_at] = v[3 + 2 * tie_at] = 0.5
    return v


@pytest.fixture(scope='module')
def recognition_prefix(tmp_path_factory):
    """A y1 (MobileFaceNet) checkpoint saved like a 2019 training run: fc1 graph + fc7 weights."""
    from recognition import config_loader
    config = config_loader.generate(config_loader.load_sample_config(), 'y1', 'emore', 'arcface')
    symbol = get_embedding_symbol(config)
    module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (1, 3, 112, 112))], for_training=False)
    mx.random.seed(7)
    module.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2))
    arg_params, aux_params = module.get_params()
    arg_params['fc7_weight'] = mx.nd.zeros((10, 128))  # the classifier a training checkpoint keeps
    prefix = str(tmp_path_factory.mktemp('rec') / 'model-y1')
    checkpoint.save_checkpoint(prefix, 3, symbol, arg_params, aux_params)
    return prefix


def save_ga_checkpoint(prefix, vector):
    """A fake gender-age model whose fc1 output is `vector` whatever the face."""
    data = mx.sym.Variable('data')
    fc1 = mx.sym.FullyConnected((data - 127.5) * 0.0078125, num_hidden=202, name='fc1')
    args = {'fc1_weight': mx.nd.zeros((202, 3 * 112 * 112)), 'fc1_bias': mx.nd.array(vector)}
    checkpoint.save_checkpoint(prefix, 0, fc1, args, {})
    return '%s,0' % prefix


# --- get_input ---------------------------------------------------------------------------------

@pytest.mark.parametrize('use_2019_folder', [False, True], ids=['pypi-weights', 'mtcnn-model'])
def test_get_input_aligns_the_best_face_to_rgb_chw(shared_dir, use_2019_folder):
    folder = os.path.join(shared_dir, 'models', 'mtcnn-model') if use_2019_folder else None
    model = face_model.FaceModel(make_args(mtcnn_path=folder))
    assert model.detector.accurate_landmark == use_2019_folder
    img = orl_bgr(shared_dir, 3, 1)
    img[..., 0] //= 2  # less blue, so a BGR/RGB mix-up shows
    aligned = model.get_input(img)
    assert aligned.shape == (3, 112, 112) and aligned.dtype == np.uint8

    boxes, points = model.detector.detect_face(img)
    expected = face_preprocess.preprocess(img, boxes[0, :4], points[0].reshape(2, 5).T,
                                          image_size='112,112')
    np.testing.assert_array_equal(aligned, expected[..., ::-1].transpose(2, 0, 1))
    assert aligned[2].mean() < aligned[0].mean()  # channel 2 is the halved blue


def test_get_input_on_a_face_crop_with_det_1(shared_dir):
    model = face_model.FaceModel(make_args(det=1))
    assert model.detector.threshold == [0.0, 0.0, 0.2]
    assert model.get_input(orl_bgr(shared_dir, 8, 2)).shape == (3, 112, 112)


def test_no_face_gives_none_and_a_log_line(caplog):
    model = face_model.FaceModel(make_args())
    with caplog.at_level(logging.INFO):
        assert model.get_input(np.full((224, 184, 3), 128, dtype=np.uint8)) is None
    assert 'no face found' in caplog.text


def test_bad_input_images_raise():
    model = face_model.FaceModel(make_args())
    with pytest.raises(ValueError, match='get_input: face_img must be a numpy array'):
        model.get_input('face.jpg')
    with pytest.raises(ValueError, match='get_input: face_img is empty'):
        model.get_input(np.zeros((0, 0, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match='H x W x 3'):
        model.get_input(np.zeros((60, 60), dtype=np.uint8))


# --- get_feature -------------------------------------------------------------------------------

def test_get_feature_is_a_unit_vector_that_separates_faces(shared_dir, recognition_prefix):
    model = face_model.FaceModel(make_args(model=recognition_prefix + ',3'))
    first = model.get_input(orl_bgr(shared_dir, 1, 1))
    other = model.get_input(orl_bgr(shared_dir, 20, 1))
    feature = model.get_feature(first)
    assert feature.shape == (128,) and feature.dtype == np.float32
    assert abs(np.linalg.norm(feature) - 1.0) < 1e-5
    again = model.get_feature(first.copy())
    np.testing.assert_array_equal(feature, again)
    assert float(feature @ model.get_feature(other)) < float(feature @ again) - 1e-4


def test_get_feature_matches_a_direct_forward(shared_dir, recognition_prefix):
    """The embedding is fc1_output of the checkpoint on RGB 0..255 input, divided by its norm."""
    model = face_model.FaceModel(make_args(model=recognition_prefix + ',3'))
    aligned = model.get_input(orl_bgr(shared_dir, 2, 4))
    symbol, arg_params, aux_params = checkpoint.load_checkpoint(recognition_prefix, 3)
    args = {k: v for k, v in arg_params.items() if k in symbol.list_arguments()}
    args['data'] = mx.nd.array(aligned[np.newaxis].astype(np.float32))
    raw = symbol.bind(mx.cpu(), args=args, aux_states=aux_params, grad_req='null') \
        .forward(is_train=False)[0].asnumpy()[0]
    np.testing.assert_allclose(model.get_feature(aligned), raw / np.linalg.norm(raw), atol=1e-5)


def test_missing_models_and_calls_without_a_model(tmp_path, recognition_prefix):
    with pytest.raises(FileNotFoundError, match='nope-symbol.json'):
        face_model.FaceModel(make_args(model=str(tmp_path / 'nope') + ',0'))
    with pytest.raises(FileNotFoundError, match='model-y1-0009.params'):
        face_model.FaceModel(make_args(model=recognition_prefix + ',9'))
    with pytest.raises(ValueError, match='prefix,epoch'):
        face_model.FaceModel(make_args(model=recognition_prefix))
    with pytest.raises(ValueError, match="image_size must be 'height,width'"):
        face_model.FaceModel(make_args(image_size='112x112'))
    model = face_model.FaceModel(make_args())
    aligned = np.zeros((3, 112, 112), dtype=np.uint8)
    with pytest.raises(ValueError, match='args.model is empty'):
        model.get_feature(aligned)
    with pytest.raises(ValueError, match='args.ga_model is empty'):
        model.get_ga(aligned)


def test_aligned_input_of_the_wrong_shape(recognition_prefix):
    model = face_model.FaceModel(make_args(model=recognition_prefix + ',3'))
    with pytest.raises(ValueError, match=r'shape \(3, 112, 112\)'):
        model.get_feature(np.zeros((112, 112, 3), dtype=np.uint8))


# --- get_ga ------------------------------------------------------------------------------------

def test_decode_gender_age_by_hand():
    assert face_model.decode_gender_age(crafted_ga_vector(1, 37)) == (1, 37)
    assert face_model.decode_gender_age(crafted_ga_vector(0, 0)) == (0, 0)
    assert face_model.decode_gender_age(crafted_ga_vector(0, 100)) == (0, 100)
    # a tie inside the "yes" run counts as "no": 37 - 1
    assert face_model.decode_gender_age(crafted_ga_vector(1, 37, tie_at=10)) == (1, 36)
    v = np.zeros(202)
    v[3::2] = 1.0           # every pair votes yes
    v[0], v[1] = 0.5, 0.5   # a gender tie is class 0, np.argmax's first maximum
    assert face_model.decode_gender_age(v) == (0, 100)
    with pytest.raises(ValueError, match='202 values, got 200'):
        face_model.decode_gender_age(np.zeros(200))


def test_get_ga_with_a_fake_checkpoint(tmp_path, shared_dir):
    ga_model = save_ga_checkpoint(str(tmp_path / 'ga'), crafted_ga_vector(1, 42))
    model = face_model.FaceModel(make_args(ga_model=ga_model))
    aligned = model.get_input(orl_bgr(shared_dir, 5, 5))
    gender, age = model.get_ga(aligned)
    assert (gender, age) == (1, 42) and type(gender) is int and type(age) is int
    # 2019's gender-age/face_model passed get_ga a DataBatch of the (1, 3, 112, 112) face
    batch = mx.io.DataBatch(data=(mx.nd.array(aligned[np.newaxis]),))
    assert model.get_ga(batch) == (1, 42)


# --- packaging ---------------------------------------------------------------------------------

def test_import_face_model_from_any_directory(tmp_path):
    code = ('import face_model; '
            'print(face_model.FaceModel.__module__, face_model.get_model.__name__)')
    result = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['deploy.face_model', 'get_model']


# --- face_embedding (the older API) ------------------------------------------------------------

def test_face_embedding_flip_sums_both_embeddings(shared_dir, recognition_prefix):
    from deploy import face_embedding
    img = orl_bgr(shared_dir, 11, 3)
    plain = face_embedding.FaceModel(make_args(model=recognition_prefix + ',3', det=2, flip=0))
    flipped = face_embedding.FaceModel(make_args(model=recognition_prefix + ',3', det=2, flip=1))
    assert plain.detector.threshold == [0.0, 0.0, 0.2]

    aligned = face_model.align_best_face(img, *plain.detector.detect_face_limited(img, 2))
    one, mirrored = plain._embed(aligned), plain._embed(aligned[:, :, ::-1].copy())
    np.testing.assert_allclose(plain.get_feature(img), one / np.linalg.norm(one), atol=1e-5)
    both = one + mirrored
    np.testing.assert_allclose(flipped.get_feature(img), both / np.linalg.norm(both), atol=1e-5)
    assert not np.allclose(one / np.linalg.norm(one), both / np.linalg.norm(both), atol=1e-3)


def test_fast_prelu_graph_on_cpu_gives_the_same_embedding(shared_dir, recognition_prefix):
    fast = face_model.FaceModel(make_args(model=recognition_prefix + ',3'))
    plain = face_model.FaceModel(make_args(model=recognition_prefix + ',3', fast_prelu=False))
    ops = lambda model: {n['op'] for n in json.loads(model.model.symbol.tojson())['nodes']}  # noqa: E731
    assert 'LeakyReLU' not in ops(fast) and 'LeakyReLU' in ops(plain)
    aligned = fast.get_input(orl_bgr(shared_dir, 3, 1))
    for _ in range(2):  # inference-bound graphs must survive repeated forwards
        np.testing.assert_allclose(fast.get_feature(aligned), plain.get_feature(aligned), atol=1e-5)
