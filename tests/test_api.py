"""Tests for src/api: the verification FaceModel and the HTTP service in front of it."""
import base64
import functools
import http.server
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict as edict

from common import checkpoint, face_preprocess

API_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'src', 'api')
EMBEDDING_SIZE = 24


def load_app():
    """src/api/app.py as module 'insightface_api_app' (src/api is not a package)."""
    name = 'insightface_api_app'
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(API_DIR, 'app.py'))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


app = load_app()
api_face_model = app.face_model


def orl_path(shared_dir, person, number):
    return os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % person, '%d.pgm' % number)


def orl_rgb(shared_dir, person, number):
    """An ORL face (92x112) as RGB uint8 with red halved, so a channel mix-up shows."""
    bgr = cv2.imread(orl_path(shared_dir, person, number))
    assert bgr is not None
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    rgb[:, :, 0] //= 2
    return rgb


def central_index(boxes, height, width):
    """The 2019 api rule written out: argmax of area - 2 * squared centre offset."""
    best, best_score = None, None
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes)[:, :4].tolist()):
        score = (x2 - x1) * (y2 - y1) - 2 * (((x1 + x2) / 2 - width / 2) ** 2
                                             + ((y1 + y2) / 2 - height / 2) ** 2)
        if best_score is None or score > best_score:
            best, best_score = i, score
    return best


@pytest.fixture(scope='module')
def fc_weights():
    rng = np.random.RandomState(11)
    weight = rng.normal(0, 0.01, (EMBEDDING_SIZE, 3 * 112 * 112)).astype(np.float32)
    bias = rng.normal(0, 0.1, EMBEDDING_SIZE).astype(np.float32)
    return weight, bias


@pytest.fixture(scope='module')
def model_prefix(tmp_path_factory, fc_weights):
    """A checkpoint whose fc1 is a FullyConnected on the normalised image: easy to redo in numpy."""
    weight, bias = fc_weights
    data = mx.sym.Variable('data')
    fc1 = mx.sym.FullyConnected((data - 127.5) * 0.0078125, num_hidden=EMBEDDING_SIZE, name='fc1')
    prefix = str(tmp_path_factory.mktemp('api') / 'model-fc')
    checkpoint.save_checkpoint(prefix, 2, fc1, {'fc1_weight': mx.nd.array(weight),
                                                'fc1_bias': mx.nd.array(bias)}, {})
    return prefix


def numpy_embedding(face_chw, fc_weights):
    weight, bias = fc_weights
    x = (face_chw.astype(np.float64) - 127.5) * 0.0078125
    return weight.astype(np.float64) @ x.reshape(-1) + bias


def make_args(prefix, **overrides):
    args = edict(image_size='112,112', model=prefix + ',2', gpu=-1, threshold=1.24,
                 mtcnn_path=None)
    args.update(overrides)
    return args


@pytest.fixture(scope='module')
def model(model_prefix):
    return api_face_model.FaceModel(make_args(model_prefix))


# --- detection and alignment --------------------------------------------------------------------

def test_detectors_use_the_2019_api_settings(model):
    assert model.detector.minsize == 50 and model.detector.factor == 0.9
    assert model.detector.threshold == [0.4, 0.6, 0.6]
    assert model.force_detector.threshold == [0.3, 0.3, 0.1]
    assert model.force_detector.minsize == 50 and model.force_detector.factor == 0.9
    assert model.force_detector.PNet is model.detector.PNet  # one copy of the weights
    assert model.detector.accurate_landmark is False


def test_api_settings_find_every_orl_face(shared_dir, model):
    for person in range(1, 41):
        img = cv2.imread(orl_path(shared_dir, person, 1))  # grey: the same in RGB and BGR
        found = model.detector.detect_face(img)
        assert found is not None, 's%d/1.pgm' % person
        boxes = found[0]
        # the kept faces are above the 50 px minimum size, so minsize 50 is a fair setting
        assert (boxes[0, 2] - boxes[0, 0]) >= 50 and (boxes[0, 3] - boxes[0, 1]) >= 50
        assert model.get_aligned_face(img) is not None


def test_get_aligned_face_is_the_preprocessed_face_in_rgb_chw(shared_dir, model):
    img = orl_rgb(shared_dir, 3, 1)
    aligned = model.get_aligned_face(img)
    assert aligned.shape == (3, 112, 112) and aligned.dtype == np.uint8
    boxes, points = model.detector.detect_face(np.ascontiguousarray(img[:, :, ::-1]))
    assert len(boxes) == 1
    expected = face_preprocess.preprocess(img, boxes[0, :4], points[0].reshape(2, 5).T,
                                          image_size='112,112')
    np.testing.assert_array_equal(aligned, expected.transpose(2, 0, 1))
    assert aligned[0].mean() < 0.7 * aligned[2].mean()  # channel 0 is still the halved red


def two_face_picture(shared_dir):
    """A 480x640 RGB picture: a small ORL face in the centre, a larger one near a corner."""
    canvas = np.full((480, 640, 3), 90, dtype=np.uint8)
    small = orl_rgb(shared_dir, 1, 1)
    large = cv2.resize(orl_rgb(shared_dir, 5, 1), None, fx=1.6, fy=1.6)
    canvas[240 - 56:240 + 56, 320 - 46:320 + 46] = small
    canvas[480 - large.shape[0] - 5:475, 640 - large.shape[1] - 5:635] = large
    return canvas


def test_get_aligned_face_keeps_the_central_face_not_the_best_score(shared_dir, model):
    img = two_face_picture(shared_dir)
    boxes, points = model.detector.detect_face(np.ascontiguousarray(img[:, :, ::-1]))
    assert len(boxes) == 2
    chosen = central_index(boxes, 480, 640)
    centre_x = (boxes[chosen, 0] + boxes[chosen, 2]) / 2
    centre_y = (boxes[chosen, 1] + boxes[chosen, 3]) / 2
    assert abs(centre_x - 320) < 40 and abs(centre_y - 240) < 40  # the small central face
    assert chosen != 0, 'the larger face scores best here, so row 0 would be the wrong pick'
    expected = face_preprocess.preprocess(img, boxes[chosen, :4], points[chosen].reshape(2, 5).T,
                                          image_size='112,112')
    np.testing.assert_array_equal(model.get_aligned_face(img), expected.transpose(2, 0, 1))


def test_get_all_faces_aligns_every_detection_in_order(shared_dir, model):
    img = two_face_picture(shared_dir)
    boxes, points = model.detector.detect_face(np.ascontiguousarray(img[:, :, ::-1]))
    faces = model.get_all_faces(img)
    assert len(faces) == len(boxes) == 2
    for face, box, landmark in zip(faces, boxes, points):
        expected = face_preprocess.preprocess(img, box[:4], landmark.reshape(2, 5).T,
                                              image_size='112,112')
        np.testing.assert_array_equal(face, expected.transpose(2, 0, 1))
    assert model.get_all_faces(np.full((200, 200, 3), 128, dtype=np.uint8)) == []


def low_contrast_face(shared_dir):
    """s1/3.pgm squeezed to a quarter of its contrast: only the forced thresholds find it."""
    grey = cv2.imread(orl_path(shared_dir, 1, 3)).astype(np.float32)
    return np.clip((grey - 128) * 0.25 + 128, 0, 255).astype(np.uint8)


def test_forced_retry_finds_a_face_the_normal_thresholds_miss(shared_dir, model):
    img = low_contrast_face(shared_dir)
    assert model.detector.detect_face(img[:, :, ::-1]) is None
    assert model.get_aligned_face(img) is None
    forced = model.get_aligned_face(img, force=True)
    assert forced is not None and forced.shape == (3, 112, 112)
    boxes, points = model.force_detector.detect_face(img[:, :, ::-1])
    chosen = central_index(boxes, img.shape[0], img.shape[1])
    expected = face_preprocess.preprocess(img, boxes[chosen, :4], points[chosen].reshape(2, 5).T,
                                          image_size='112,112')
    np.testing.assert_array_equal(forced, expected.transpose(2, 0, 1))


def test_forced_retry_runs_only_when_the_first_detection_fails(shared_dir, model, monkeypatch):
    calls = []
    real_detect = model.force_detector.detect_face
    monkeypatch.setattr(model.force_detector, 'detect_face',
                        lambda img, det_type=0: calls.append(img.shape) or real_detect(img))
    face = orl_rgb(shared_dir, 2, 2)
    assert model.get_aligned_face(face, force=True) is not None
    assert calls == []  # found with the normal thresholds
    # no face can pass thresholds above 1, so only the retry can find it
    monkeypatch.setattr(model.detector, 'threshold', [1.0, 1.0, 1.0])
    assert model.get_aligned_face(face, force=False) is None
    assert calls == []
    assert model.get_aligned_face(face, force=True) is not None
    assert calls == [face.shape]


def test_bad_images_raise_clear_errors(model):
    with pytest.raises(ValueError, match='get_aligned_face: img must be a numpy array'):
        model.get_aligned_face('face.jpg')
    with pytest.raises(ValueError, match='H x W x 3 RGB'):
        model.get_aligned_face(np.zeros((60, 60), dtype=np.uint8))
    with pytest.raises(ValueError, match='get_feature: face must be .* shape \\(3, 112, 112\\)'):
        model.get_feature(np.zeros((112, 112, 3), dtype=np.uint8))


# --- features -----------------------------------------------------------------------------------

def test_get_feature_sums_the_face_and_its_mirror(shared_dir, model, fc_weights):
    face = model.get_aligned_face(orl_rgb(shared_dir, 4, 5))
    raw = numpy_embedding(face, fc_weights) + numpy_embedding(face[:, :, ::-1], fc_weights)
    unnormalised = model.get_feature(face, norm=False)
    assert unnormalised.shape == (1, EMBEDDING_SIZE) and unnormalised.dtype == np.float32
    np.testing.assert_allclose(unnormalised[0], raw, rtol=1e-4, atol=1e-4)
    feature = model.get_feature(face)
    assert feature.shape == (1, EMBEDDING_SIZE)
    np.testing.assert_allclose(feature[0], raw / np.linalg.norm(raw), atol=1e-5)
    # the mirror matters: without it the feature would be this, a different direction
    alone = numpy_embedding(face, fc_weights)
    assert np.abs(feature[0] - alone / np.linalg.norm(alone)).max() > 1e-3


def test_get_feature_binds_nothing_per_call(shared_dir, model, monkeypatch):
    face = model.get_aligned_face(orl_rgb(shared_dir, 6, 1))
    first = model.get_feature(face)

    def no_binding(*args, **kwargs):
        raise AssertionError('get_feature bound a new executor')
    monkeypatch.setattr(mx.mod.Module, 'bind', no_binding)
    monkeypatch.setattr(mx.sym.Symbol, 'bind', no_binding)
    monkeypatch.setattr(mx.sym.Symbol, 'simple_bind', no_binding)
    for _ in range(3):
        np.testing.assert_array_equal(model.get_feature(face), first)


# --- is_same_id and sim on chosen features ------------------------------------------------------

class FakeFaces:
    """Stand-ins for get_aligned_face / get_feature: images are names, features are chosen."""

    def __init__(self, features, faceless=()):
        self.features = {name: np.array([vector], dtype=np.float32)
                         for name, vector in features.items()}
        self.faceless = set(faceless)
        self.align_calls = []
        self.feature_calls = []

    def get_aligned_face(self, img, force=False):
        self.align_calls.append((img, force))
        return None if img in self.faceless else img

    def get_feature(self, face, norm=True):
        self.feature_calls.append((face, norm))
        feature = self.features[face]
        return feature / np.linalg.norm(feature) if norm else feature.copy()


def install(model, monkeypatch, fake):
    monkeypatch.setattr(model, 'get_aligned_face', fake.get_aligned_face)
    monkeypatch.setattr(model, 'get_feature', fake.get_feature)


def test_is_same_id_normalises_the_sum_of_raw_target_features(model, monkeypatch):
    fake = FakeFaces({'src': [2.0, 0.0], 'a': [3.0, 4.0], 'b': [1.0, 0.0]})
    install(model, monkeypatch, fake)
    # targets summed raw: (4, 4) -> (1, 1)/sqrt(2); distance to (1, 0) is 2 - sqrt(2) = 0.586.
    # (Normalising each target first would give 0.211, summing nothing 0.2.)
    monkeypatch.setattr(model, 'threshold', 0.59)
    assert model.is_same_id('src', ['a', 'b']) is True
    monkeypatch.setattr(model, 'threshold', 0.58)
    assert model.is_same_id('src', ['a', 'b']) is False
    assert fake.feature_calls[:3] == [('src', True), ('a', False), ('b', False)]


def test_sim_is_the_best_cosine_over_the_targets(model, monkeypatch):
    fake = FakeFaces({'src': [1.0, 0.0, 0.0], 'a': [0.0, 5.0, 0.0], 'b': [3.0, 4.0, 0.0],
                      'c': [-1.0, 0.0, 1.0]})
    install(model, monkeypatch, fake)
    assert model.sim('src', ['a', 'b', 'c']) == pytest.approx(0.6, abs=1e-6)
    assert model.sim('src', ['c']) == pytest.approx(-2 ** -0.5, abs=1e-6)
    assert isinstance(model.sim('src', ['a']), float)


def test_sim_forces_the_source_and_the_last_target_only_when_nothing_was_found(model, monkeypatch):
    fake = FakeFaces({'src': [1.0, 0.0], 'a': [1.0, 1.0], 'b': [0.0, 1.0]}, faceless={'x', 'y'})
    install(model, monkeypatch, fake)
    model.sim('src', ['x', 'y', 'b'])
    assert fake.align_calls == [('src', True), ('x', False), ('y', False), ('b', True)]
    fake.align_calls.clear()
    model.sim('src', ['a', 'x', 'b'])
    assert fake.align_calls == [('src', True), ('a', False), ('x', False), ('b', False)]
    fake.align_calls.clear()
    model.is_same_id('src', ['x', 'b'])
    assert fake.align_calls == [('src', True), ('x', False), ('b', True)]


def test_sim_without_faces_raises(model, monkeypatch):
    fake = FakeFaces({'src': [1.0, 0.0]}, faceless={'x', 'nobody'})
    install(model, monkeypatch, fake)
    with pytest.raises(ValueError, match='no face found in the source image'):
        model.sim('nobody', ['src'])
    with pytest.raises(ValueError, match='no face found in any of the 2 target'):
        model.sim('src', ['x', 'x'])
    with pytest.raises(ValueError, match='no target image'):
        model.sim('src', [])


# --- the HTTP service ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Requests to 127.0.0.1 must not go through a proxy the environment may name."""
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'):
        monkeypatch.delenv(name, raising=False)


def serve(server):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return 'http://127.0.0.1:%d' % server.server_address[1]


@pytest.fixture
def service(model):
    """The service with the real model on an ephemeral port: (base url, model)."""
    server = app.make_server(model, '127.0.0.1', 0)
    yield serve(server), model
    server.shutdown()
    server.server_close()


def request(url, body=None, headers=None):
    """(status, text) of GET (no body) or POST."""
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read().decode('utf-8')
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode('utf-8', 'replace')


def post_ver(base, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode('utf-8')
    status, text = request(base + '/ver', body, {'Content-Type': 'application/json'})
    assert status == 200
    return text


def encoded(shared_dir, person, number, ext):
    ok, buf = cv2.imencode(ext, cv2.imread(orl_path(shared_dir, person, number)))
    assert ok
    return buf.tobytes()


def as_rgb(raw):
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].copy()


def b64(raw):
    return base64.b64encode(raw).decode('ascii')


def test_get_root_says_hello(service):
    base, _ = service
    with urllib.request.urlopen(base + '/', timeout=30) as response:
        assert response.status == 200
        assert response.read().decode('utf-8') == 'Hello, This is InsightFace!'
        assert response.headers['Content-Type'].startswith('text/html')
    assert request(base + '/nowhere')[0] == 404
    assert request(base + '/ver')[0] == 405


def test_post_ver_answers_the_similarity_of_two_photos(shared_dir, service):
    base, model = service
    png, jpeg = encoded(shared_dir, 7, 1, '.png'), encoded(shared_dir, 7, 4, '.jpg')
    text = post_ver(base, {'source': {'data': b64(png)}, 'target': {'data': b64(jpeg)}})
    assert re.fullmatch(r'-?\d\.\d{3}', text), text
    expected = model.sim(as_rgb(png), [as_rgb(jpeg)])
    assert text == '%1.3f' % expected
    assert -1.0 <= float(text) <= 1.0


def test_post_ver_takes_a_list_of_targets(shared_dir, service):
    base, model = service
    source = encoded(shared_dir, 9, 1, '.png')
    targets = [encoded(shared_dir, 9, 2, '.jpg'), encoded(shared_dir, 30, 1, '.png')]
    text = post_ver(base, {'source': {'data': b64(source)},
                           'target': {'data': [b64(raw) for raw in targets]}})
    assert text == '%1.3f' % model.sim(as_rgb(source), [as_rgb(raw) for raw in targets])
    one = post_ver(base, {'source': {'data': b64(source)}, 'target': {'data': b64(targets[1])}})
    assert float(text) >= float(one)  # the best of the two targets


def test_post_ver_reads_the_body_whatever_its_content_type(shared_dir, service):
    base, model = service
    raw = encoded(shared_dir, 15, 1, '.png')
    body = json.dumps({'source': {'data': b64(raw)}, 'target': {'data': b64(raw)}}).encode()
    for headers in ({}, {'Content-Type': 'application/x-www-form-urlencoded'},
                    {'Content-Type': 'text/plain'}):
        status, text = request(base + '/ver', body, headers)
        assert (status, text) == (200, '%1.3f' % model.sim(as_rgb(raw), [as_rgb(raw)]))
    assert text == '1.000'  # a face against itself


def test_post_ver_fetches_http_urls(shared_dir, service, tmp_path):
    base, model = service
    (tmp_path / 'a.png').write_bytes(encoded(shared_dir, 12, 1, '.png'))
    (tmp_path / 'b.jpg').write_bytes(encoded(shared_dir, 12, 6, '.jpg'))
    handler = functools.partial(QuietFileHandler, directory=str(tmp_path))
    files = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    files_base = serve(files)
    try:
        text = post_ver(base, {'source': {'url': files_base + '/a.png'},
                               'target': {'url': files_base + '/b.jpg'}})
        by_data = post_ver(base, {'source': {'data': b64((tmp_path / 'a.png').read_bytes())},
                                  'target': {'data': b64((tmp_path / 'b.jpg').read_bytes())}})
        assert re.fullmatch(r'-?\d\.\d{3}', text) and text == by_data
        assert post_ver(base, {'source': {'url': files_base + '/missing.png'},
                               'target': {'url': files_base + '/b.jpg'}}) == '-1'
    finally:
        files.shutdown()
        files.server_close()


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass


def test_bad_requests_answer_minus_one_and_log_why(shared_dir, service, caplog):
    base, _ = service
    face = b64(encoded(shared_dir, 3, 3, '.png'))
    blank = b64(cv2.imencode('.png', np.full((200, 200, 3), 128, np.uint8))[1].tobytes())
    cases = [
        (b'not json', 'not JSON'),
        ({'source': {'data': face}}, "'source' and 'target'"),
        ({'source': {'data': face}, 'target': {'image': face}}, "neither 'url' nor 'data'"),
        ({'source': {'data': b64(b'not an image')}, 'target': {'data': face}},
         'source data: cannot decode'),
        ({'source': {'data': [face, face]}, 'target': {'data': face}}, 'source must be one image'),
        ({'source': {'data': face}, 'target': {'data': []}}, 'empty list'),
        ({'source': {'data': face}, 'target': {'data': [face, 7]}}, 'target data\\[1\\]'),
        ({'source': {'url': 'file:///etc/hostname'}, 'target': {'data': face}}, 'http://'),
        ({'source': {'url': '/etc/hostname'}, 'target': {'data': face}}, 'http://'),
        ({'source': {'data': blank}, 'target': {'data': face}}, 'no face found in the source'),
    ]
    for payload, reason in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger='insightface.api'):
            assert post_ver(base, payload) == '-1', payload
        assert re.search(reason, caplog.text), (reason, caplog.text)
        assert 'answered -1' in caplog.text


class RecordingModel:
    """A model whose sim records its inputs and notes how many calls overlap."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.inputs = []
        self.running = 0
        self.most_running = 0
        self.guard = threading.Lock()

    def sim(self, source, targets):
        with self.guard:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        time.sleep(self.delay)
        self.inputs.append((source, targets))
        with self.guard:
            self.running -= 1
        return 0.12345


def test_the_model_gets_rgb_downscaled_images(shared_dir):
    fake = RecordingModel()
    server = app.make_server(fake, '127.0.0.1', 0)
    base = serve(server)
    try:
        rng = np.random.RandomState(3)
        wide = rng.randint(0, 256, (700, 1300, 3)).astype(np.uint8)  # BGR, as the file stores it
        small = rng.randint(0, 256, (90, 80, 3)).astype(np.uint8)
        text = post_ver(base, {'source': {'data': b64(cv2.imencode('.png', small)[1].tobytes())},
                               'target': {'data': b64(cv2.imencode('.png', wide)[1].tobytes())}})
        assert text == '0.123'
        source, targets = fake.inputs[0]
        np.testing.assert_array_equal(source, small[:, :, ::-1])  # RGB
        scale = 640.0 / 700
        size = (int(1300 * scale), int(700 * scale))  # 2019 truncates
        assert len(targets) == 1 and targets[0].shape == (size[1], size[0], 3)
        np.testing.assert_array_equal(targets[0], cv2.resize(wide, size)[:, :, ::-1])
    finally:
        server.shutdown()
        server.server_close()


def test_concurrent_requests_use_the_model_one_at_a_time():
    fake = RecordingModel(delay=0.05)
    server = app.make_server(fake, '127.0.0.1', 0)
    base = serve(server)
    png = b64(cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    answers = []
    try:
        threads = [threading.Thread(target=lambda: answers.append(post_ver(
            base, {'source': {'data': png}, 'target': {'data': png}}))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        server.shutdown()
        server.server_close()
    assert answers == ['0.123'] * 4
    assert fake.most_running == 1


def test_downscale_keeps_the_shorter_side_at_most_640():
    big = np.zeros((1001, 1503, 3), dtype=np.uint8)
    shrunk = app.downscale(big)
    scale = 640.0 / 1001
    assert shrunk.shape == (int(1001 * scale), int(1503 * scale), 3)
    assert 639 <= min(shrunk.shape[:2]) <= 640
    tall = np.zeros((3000, 800, 3), dtype=np.uint8)
    assert app.downscale(tall).shape == (2400, 640, 3)
    for shape in ((640, 900, 3), (100, 50, 3)):  # no enlarging, and 640 itself stays
        image = np.zeros(shape, dtype=np.uint8)
        assert app.downscale(image) is image


# --- command line -------------------------------------------------------------------------------

def test_parse_args_defaults_are_2019s():
    args = app.parse_args(['--model', 'm,1'])
    assert (args.host, args.port, args.image_size, args.threshold, args.gpu) == \
        ('0.0.0.0', 18080, '112,112', 1.24, 0)
    assert args.mtcnn_path is None


def test_bad_model_names_the_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        app.main(['--model', str(tmp_path / 'absent') + ',3', '--gpu', '-1', '--port', '0'])
    assert exit_info.value.code == 2
    assert 'absent-symbol.json does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        app.main(['--model', str(tmp_path / 'absent'), '--gpu', '-1'])
    assert "'prefix,epoch'" in capsys.readouterr().err


def test_app_runs_as_a_script_from_any_directory(tmp_path, model_prefix):
    """python src/api/app.py serves from another working directory (the sibling face_model is
    found by path), then is stopped."""
    env = dict(os.environ, OMP_NUM_THREADS='2', MXNET_SUBGRAPH_VERBOSE='0')
    server = subprocess.Popen([sys.executable, os.path.join(API_DIR, 'app.py'), '--model',
                               model_prefix + ',2', '--gpu', '-1', '--host', '127.0.0.1',
                               '--port', '0'],
                              cwd=str(tmp_path), env=env, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stderr:  # the log line naming the port comes once it listens
            found = re.search(r'serving on http://127\.0\.0\.1:(\d+)', line)
            if found:
                port = int(found.group(1))
                break
        assert port, 'the service never said where it listens'
        assert request('http://127.0.0.1:%d/' % port) == (200, 'Hello, This is InsightFace!')
    finally:
        server.terminate()
        server.wait(30)
        server.stderr.close()
