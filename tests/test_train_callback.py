"""The 2019 trainer's quirks kept on purpose: optimizer multipliers, best-model rule, save numbering, lr steps."""
import types

import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict

from recognition import train


def test_optimizer_ignores_lr_mult_and_wd_mult_and_decays_everything():
    # loss = sum(w): gradient 1 for every element; the Variable asks for lr_mult 2 and wd_mult 0
    w = mx.sym.Variable('fc7_bias', shape=(3,), lr_mult=2.0, wd_mult=0.0, init=mx.init.One())
    loss = mx.sym.MakeLoss(mx.sym.sum(w + mx.sym.Variable('data') * 0))
    module = mx.mod.Module(loss, label_names=None)
    module.bind(data_shapes=[('data', (3,))])
    module.init_params()
    args = types.SimpleNamespace(lr=0.1, mom=0.0, wd=0.5)
    module.init_optimizer(optimizer=train.make_optimizer(args, rescale_grad=1.0))
    module.forward_backward(mx.io.DataBatch([mx.nd.zeros(3)]))
    module.update()
    # base lr and full weight decay: 1 - 0.1 * (1 + 0.5 * 1) = 0.85 (lr_mult/wd_mult would give 0.8)
    np.testing.assert_allclose(module.get_params()[0]['fc7_bias'].asnumpy(), [0.85] * 3, rtol=1e-6)


class FakeModel:
    """Stands in for the Module: a finite loss output and parameters to 'save'."""

    def get_outputs(self, merge_multi_context=True):
        return [[mx.nd.array([1.0])]]

    def get_params(self):
        return {'w': mx.nd.ones(1), 'fc7_weight': mx.nd.ones(1)}, {}

    def save_optimizer_states(self, fname):
        open(fname, 'wb').close()


def make_callback(tmp_path, ckpt, accuracies, lr_steps='3,3,5'):
    args = EasyDict(lr_steps=lr_steps, batch_size=4, frequent=1000, verbose=1, ckpt=ckpt, seed=0)
    config = EasyDict(ckpt_embedding=True, max_steps=0)
    opt = types.SimpleNamespace(lr=1.0)
    callback = train.BatchEndCallback(args, config, FakeModel(), opt, str(tmp_path / 'model'),
                                      mx.sym.Variable('fc1_output'), [], embedding=mx.sym.Variable('fc1'))
    results = iter(accuracies)
    callback.ver_test = lambda nbatch: next(results)
    saved = []
    callback.save = lambda msave: saved.append(msave)
    return callback, opt, saved


def run(callback, batches):
    for n in range(batches):
        callback(mx.model.BatchEndParam(epoch=0, nbatch=n, eval_metric=None, locals=None))


@pytest.mark.parametrize('ckpt,expected', [(0, []), (1, [1, 2, 5]), (2, [1, 2, 3, 4, 5, 6]), (3, [1, 1, 1])])
def test_best_model_rule_and_save_numbering(tmp_path, ckpt, expected):
    # The best is judged on the last target; its sum is stored only on ties (2019):
    # 1: 0.9 strictly best (sum 1.4 NOT stored); 2: tie, sum 1.0 >= stored 0 -> best (stale rule);
    # 3: 0.8 worse; 4: tie, sum 0.9 < stored 1.0 -> not best; 5: 0.95 best; 6: 0.7 worse.
    accuracies = [[0.5, 0.9], [0.1, 0.9], [0.6, 0.8], [0.0, 0.9], [0.0, 0.95], [0.9, 0.7]]
    callback, _, saved = make_callback(tmp_path, ckpt, accuracies)
    run(callback, 6)
    # ckpt 1 saves under the running verification index, so numbers have gaps; 3 always into epoch 1
    assert saved == expected
    assert callback.highest_acc == [pytest.approx(1.0), pytest.approx(0.95)]


def test_lr_steps_exact_batches_once_each(tmp_path, capsys):
    callback, opt, _ = make_callback(tmp_path, 0, [[0.5]] * 6)
    run(callback, 6)
    out = capsys.readouterr().out
    # steps '3,3,5': a repeated step decays once, at batch 3, then at batch 5
    assert out.count('lr change to') == 2
    assert opt.lr == pytest.approx(0.01)
