"""Margin-softmax, softmax and triplet heads against numpy references and the spec's worked values."""
import math

import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict

from recognition import losses

PRESETS = {'nsoftmax': (64.0, 1.0, 0.0, 0.0), 'arcface': (64.0, 1.0, 0.5, 0.0),
           'cosface': (64.0, 1.0, 0.0, 0.35), 'combined': (64.0, 1.0, 0.3, 0.2)}


def numpy_margin_logits(x, w, y, s, m1, m2, m3):
    """Reference in float64: s*cos(theta_j), target s*(cos(m1*theta+m2)-m3) with 2019's branches."""
    xn = x / np.sqrt((x ** 2).sum(1, keepdims=True) + 1e-10)
    wn = w / np.sqrt((w ** 2).sum(1, keepdims=True) + 1e-10)
    cos = xn @ wn.T
    logits = s * cos
    rows = np.arange(len(y))
    if (m1, m2, m3) == (1.0, 0.0, 0.0):
        return logits
    if m1 == 1.0 and m2 == 0.0:
        logits[rows, y] -= s * m3
        return logits
    theta = np.arccos(np.clip(cos[rows, y], -1, 1)) * m1 + max(m2, 0.0)
    logits[rows, y] = s * (np.cos(theta) - max(m3, 0.0))
    return logits


def numpy_loss(x, w, y, margins):
    z = numpy_margin_logits(x, w, y, *margins)
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(y)), y].sum() / len(y)


def evaluate_logits(cos_target, margins, num_classes=3):
    """Target logit for an embedding at a known angle to its class weight."""
    s, m1, m2, m3 = margins
    data, label, weight = mx.sym.Variable('data'), mx.sym.Variable('label'), mx.sym.Variable('w')
    sym = losses.margin_softmax_logits(data, label, weight, num_classes, s, m1, m2, m3)
    x = np.array([[1.0, 0.0]], dtype=np.float32)
    w = np.array([[cos_target, math.sqrt(1 - cos_target ** 2)], [0.0, 1.0], [-1.0, 0.0]],
                 dtype=np.float32)
    out = sym.eval(ctx=mx.cpu(), data=mx.nd.array(x), label=mx.nd.array([0]), w=mx.nd.array(w))[0]
    return out.asnumpy()[0]


@pytest.mark.parametrize('name,expected', [('arcface', 26.5223), ('cosface', 28.8), ('combined', 24.7653),
                                           ('nsoftmax', 51.2)])
def test_worked_target_logits(name, expected):
    logits = evaluate_logits(0.8, PRESETS[name])
    assert logits[0] == pytest.approx(expected, abs=2e-3)
    # other classes keep s*cos(theta_j): cos = 0 and -1 here
    assert logits[1] == pytest.approx(0.0, abs=1e-4)
    assert logits[2] == pytest.approx(-64.0, abs=1e-3)


def test_negative_margins_are_ignored_like_2019():
    # m2 < 0 with m3 < 0 takes the arccos branch, where 2019 applied only positive margins
    assert evaluate_logits(0.8, (64.0, 1.0, -0.2, -0.1))[0] == pytest.approx(51.2, abs=2e-3)


def _make_config(loss_name, margins=(64.0, 1.0, 0.5, 0.0), num_classes=5, emb_size=4, ce_loss=True):
    s, m1, m2, m3 = margins
    return EasyDict(loss_name=loss_name, num_classes=num_classes, emb_size=emb_size,
                    fc7_lr_mult=1.0, fc7_wd_mult=1.0, fc7_no_bias=False, ce_loss=ce_loss,
                    loss_s=s, loss_m1=m1, loss_m2=m2, loss_m3=m3)


def _bind(sym, batch, cfg, x, w, y):
    exe = sym.simple_bind(mx.cpu(), data=(batch, cfg.emb_size), softmax_label=(batch,), grad_req='write')
    exe.arg_dict['data'][:] = x
    exe.arg_dict['fc7_weight'][:] = w
    exe.arg_dict['softmax_label'][:] = y
    if 'fc7_bias' in exe.arg_dict:
        exe.arg_dict['fc7_bias'][:] = 0
    exe.forward(is_train=True)
    exe.backward()
    return exe


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_margin_loss_outputs_and_gradients_match_numpy(name):
    rng = np.random.RandomState(0)
    batch, cfg = 6, _make_config('margin_softmax', PRESETS[name])
    x = rng.randn(batch, cfg.emb_size)
    w = rng.randn(cfg.num_classes, cfg.emb_size)
    y = rng.randint(0, cfg.num_classes, size=batch)
    with mx.name.NameManager():  # a fresh counter, as in the 2019 trainer's fresh process
        sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=batch)
    assert sym.list_outputs() == ['blockgrad0_output', 'softmax_output', 'blockgrad1_output']
    exe = _bind(sym, batch, cfg, x, w, y)
    probs = exe.outputs[1].asnumpy()
    z = numpy_margin_logits(x, w, y, *PRESETS[name])
    p_ref = np.exp(z - z.max(1, keepdims=True))
    p_ref /= p_ref.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, p_ref, atol=1e-5)
    assert exe.outputs[2].asnumpy()[0] == pytest.approx(numpy_loss(x, w, y, PRESETS[name]), rel=1e-4)
    # gradients against central differences of the float64 reference loss
    eps = 1e-5
    for arg, value in (('data', x), ('fc7_weight', w)):
        numeric = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[idx] += eps
            minus[idx] -= eps
            args = (plus, w) if arg == 'data' else (x, plus)
            args_m = (minus, w) if arg == 'data' else (x, minus)
            numeric[idx] = (numpy_loss(*args, y, PRESETS[name]) - numpy_loss(*args_m, y, PRESETS[name])) / (2 * eps)
        np.testing.assert_allclose(exe.grad_dict[arg].asnumpy(), numeric, rtol=2e-3, atol=2e-4)


def test_plain_softmax_has_bias_and_no_scale():
    rng = np.random.RandomState(1)
    batch, cfg = 4, _make_config('softmax')
    x, w, y = rng.randn(batch, 4), rng.randn(5, 4), rng.randint(0, 5, size=batch)
    sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=batch)
    assert 'fc7_bias' in sym.list_arguments()
    exe = _bind(sym, batch, cfg, x, w, y)
    z = x @ w.T
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(exe.outputs[1].asnumpy(), p, atol=1e-5)
    onehot = np.eye(5)[y]
    np.testing.assert_allclose(exe.grad_dict['data'].asnumpy(), (p - onehot) @ w / batch, atol=1e-5)
    cfg.fc7_no_bias = True
    assert 'fc7_bias' not in losses.get_training_symbol(cfg, mx.sym.Variable('data'), batch).list_arguments()


def test_no_nan_at_the_ends_of_the_angle_range():
    cfg = _make_config('margin_softmax', PRESETS['arcface'], num_classes=2, emb_size=2)
    sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=2)
    x = np.array([[1.0, 0.0], [-1.0, 0.0]])   # theta = 0 and theta = pi to class 0
    w = np.array([[1.0, 0.0], [0.0, 1.0]])
    exe = _bind(sym, 2, cfg, x, w, np.array([0, 0]))
    for array in list(exe.outputs) + [exe.grad_dict['data'], exe.grad_dict['fc7_weight']]:
        assert np.isfinite(array.asnumpy()).all()


def test_atriplet_stays_finite_when_anchor_equals_positive_or_negative():
    """arccos(1) has an infinite slope: both cosines are clipped to +-(1 - 1e-6) first (L2)."""
    cfg = EasyDict(loss_name='atriplet', triplet_alpha=0.3)
    with mx.name.NameManager():
        sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=3)
    exe = sym.simple_bind(mx.cpu(), data=(3, 2), softmax_label=(3,))
    # a = p exactly (a.p = 1), n opposite (a.n = -1): the loss is relu(0 - pi + 0.3) = 0.
    exe.arg_dict['data'][:] = np.array([[3.0, 4.0], [0.6, 0.8], [-3.0, -4.0]])
    exe.forward(is_train=True)
    exe.backward()
    assert exe.outputs[2].asnumpy()[0] == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(exe.grad_dict['data'].asnumpy()).all()
    # a = n (a.n = 1) and a.p = 0: loss pi/2 + 0.3 - ~0, with finite gradients.
    exe.arg_dict['data'][:] = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    exe.forward(is_train=True)
    exe.backward()
    assert exe.outputs[2].asnumpy()[0] == pytest.approx(np.pi / 2 + 0.3, abs=2e-3)
    assert np.isfinite(exe.grad_dict['data'].asnumpy()).all()


def test_cross_entropy_output_stays_finite_when_probability_underflows():
    cfg = _make_config('margin_softmax', (64.0, 1.0, 0.0, 0.0), num_classes=2, emb_size=2)
    sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=1)
    exe = _bind(sym, 1, cfg, np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([0]))
    # logit gap is 128: exp(-128) underflows float32, log(softmax) would be inf; the true CE is ~128
    assert exe.outputs[2].asnumpy()[0] == pytest.approx(128.0, rel=1e-4)


@pytest.mark.parametrize('loss_name', ['triplet', 'atriplet'])
def test_triplet_losses_match_numpy(loss_name):
    rng = np.random.RandomState(2)
    batch, alpha = 6, 0.3
    cfg = EasyDict(loss_name=loss_name, triplet_alpha=alpha)
    with mx.name.NameManager():
        sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=batch)
    assert sym.list_outputs() == ['blockgrad0_output', 'blockgrad1_output', 'makeloss0_output']
    x = rng.randn(batch, 3)
    exe = sym.simple_bind(mx.cpu(), data=(batch, 3), softmax_label=(batch,))
    exe.arg_dict['data'][:] = x
    exe.forward(is_train=True)
    n = x / np.linalg.norm(x, axis=1, keepdims=True)
    a, p, ng = n[0:2], n[2:4], n[4:6]
    if loss_name == 'triplet':
        ap, an = ((a - p) ** 2).sum(1), ((a - ng) ** 2).sum(1)
    else:
        ap, an = np.arccos((a * p).sum(1)), np.arccos((a * ng).sum(1))
    expected = np.maximum(ap - an + alpha, 0).mean()
    assert exe.outputs[2].asnumpy()[0] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match='divisible by 3'):
        losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=4)


def numpy_sphereface_logits(x, w, y, m, beta):
    wn = w / np.sqrt((w ** 2).sum(1, keepdims=True) + 1e-10)
    logits = x @ wn.T
    xnorm = np.sqrt((x ** 2).sum(1) + 1e-10)
    rows = np.arange(len(y))
    cos = np.clip(logits[rows, y] / xnorm, -1, 1)
    theta = np.arccos(cos)
    k = np.floor(theta * m / np.pi)
    psi = (-1.0) ** k * np.cos(m * theta) - 2 * k
    logits[rows, y] = (beta * xnorm * cos + xnorm * psi) / (1 + beta)
    return logits


def sphereface_config(batch, beta=1000.0, beta_min=5.0, gamma=0.12, power=1.0, freeze=0):
    cfg = _make_config('sphereface')
    cfg.update(loss_m1=4, loss_beta=beta, loss_beta_min=beta_min, loss_gamma=gamma, loss_power=power,
               loss_beta_freeze=freeze)
    return cfg


def test_sphereface_annealing_schedule():
    assert losses.sphereface_beta(0, 1000, 5, 0.12, 1, 0) == 1000
    assert losses.sphereface_beta(10, 1000, 5, 0.12, 1, 0) == pytest.approx(1000 / 2.2)
    assert losses.sphereface_beta(10, 1000, 5, 0.12, 1, 20) == 1000  # frozen
    assert losses.sphereface_beta(10 ** 6, 1000, 5, 0.12, 1, 0) == 5


def test_sphereface_logits_gradients_and_annealing_match_numpy():
    rng = np.random.RandomState(4)
    batch = 6
    cfg = sphereface_config(batch, beta=3.0, beta_min=0.5, gamma=0.5, power=1.0)
    x = rng.randn(batch, cfg.emb_size) * 3
    w = rng.randn(cfg.num_classes, cfg.emb_size)
    y = rng.randint(0, cfg.num_classes, size=batch)
    x[0] = -w[y[0]] * 0.9 + 0.01  # theta near pi: k = 3, psi far below cos
    sym = losses.get_training_symbol(cfg, mx.sym.Variable('data'), per_batch_size=batch)
    assert 'sphereface_step' in sym.list_auxiliary_states()
    exe = _bind(sym, batch, cfg, x, w, y)
    for step in range(3):
        if step:
            exe.forward(is_train=True)
            exe.backward()
        beta = losses.sphereface_beta(step, 3.0, 0.5, 0.5, 1.0, 0)
        z = numpy_sphereface_logits(x, w, y, 4, beta)
        p_ref = np.exp(z - z.max(1, keepdims=True))
        p_ref /= p_ref.sum(1, keepdims=True)
        np.testing.assert_allclose(exe.outputs[1].asnumpy(), p_ref, atol=1e-5)

    def loss_of(xv, wv):
        z = numpy_sphereface_logits(xv, wv, y, 4, beta)
        z = z - z.max(1, keepdims=True)
        return -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(batch), y].sum() / batch

    eps = 1e-5
    numeric = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        numeric[idx] = (loss_of(plus, w) - loss_of(minus, w)) / (2 * eps)
    np.testing.assert_allclose(exe.grad_dict['data'].asnumpy(), numeric, rtol=2e-3, atol=2e-4)
    assert exe.aux_dict['sphereface_step'].asnumpy()[0] == 3
