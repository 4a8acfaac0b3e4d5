"""Model-parallel fc7: one step equals train.py's full-fc7 step; shards split, merge, save and reload."""
import logging

import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict as edict

from common import checkpoint
from recognition import losses, train_parall
from recognition.parall_module import (ParallModule, ctx_num_classes, fc7_shards_from, merge_fc7,
                                       split_fc7, valid_classes)
from test_train import write_config

EMB, IN = 8, 12
LOSSES = {  # name: (loss_name, s, m1, m2, m3)
    'softmax': ('softmax', 1.0, 1.0, 0.0, 0.0),
    'arcface': ('margin_softmax', 64.0, 1.0, 0.5, 0.0),
    'cosface': ('margin_softmax', 64.0, 1.0, 0.0, 0.35),
    'combined': ('margin_softmax', 64.0, 1.0, 0.3, 0.2),
}


def tiny_embedding():
    """A BatchNorm-free backbone, so N devices compute exactly what one device does."""
    hidden = mx.sym.FullyConnected(mx.sym.Variable('data'), num_hidden=10, name='pre_fc1')
    return mx.sym.FullyConnected(mx.sym.Activation(hidden, act_type='relu'), num_hidden=EMB, name='fc1')


def loss_config(loss, num_classes):
    name, s, m1, m2, m3 = LOSSES[loss]
    return edict(emb_size=EMB, num_classes=num_classes, loss_name=name, loss_s=s, loss_m1=m1,
                 loss_m2=m2, loss_m3=m3, fc7_lr_mult=1.0, fc7_wd_mult=1.0, fc7_no_bias=True, ce_loss=True)


def sgd(rescale_grad):
    return mx.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=5e-4, rescale_grad=rescale_grad)


def summed_grads(module):
    """{param name: gradient summed over the module's devices}."""
    group = module._exec_group
    return {name: sum(g.asnumpy() for g in grads)
            for name, grads in zip(group.param_names, group.grad_arrays)}


@pytest.mark.filterwarnings('ignore:Optimizer created manually outside Module')
@pytest.mark.parametrize('loss', sorted(LOSSES))
@pytest.mark.parametrize('num_ctx,num_classes', [(2, 11), (3, 11), (3, 4)])
def test_one_step_equals_the_single_module_full_fc7_step(loss, num_ctx, num_classes, capsys):
    # 11 classes: one phantom class on 2 and on 3 contexts; 4 on 3: the last shard is all phantom.
    batch = 6
    config = loss_config(loss, num_classes)
    rng = np.random.RandomState(0)
    init = {'pre_fc1_weight': rng.randn(10, IN) * 0.5, 'pre_fc1_bias': rng.randn(10) * 0.1,
            'fc1_weight': rng.randn(EMB, 10) * 0.5, 'fc1_bias': rng.randn(EMB) * 0.1,
            'fc7_weight': rng.randn(num_classes, EMB) * 0.5}
    init = {k: mx.nd.array(v) for k, v in init.items()}
    batches = [mx.io.DataBatch([mx.nd.array(rng.randn(batch, IN))],
                               [mx.nd.array(rng.randint(0, num_classes, batch))]) for _ in range(2)]
    shapes = dict(data_shapes=[('data', (batch, IN))], label_shapes=[('softmax_label', (batch,))])

    # train.py's path: the whole fc7 in one Module on one context, rescale_grad 1/N = 1
    reference = mx.mod.Module(losses.get_training_symbol(config, tiny_embedding(), batch), context=mx.cpu())
    reference.bind(**shapes)
    reference.init_params(arg_params=init)
    reference.init_optimizer(kvstore='device', optimizer=sgd(1.0))

    parallel = ParallModule(tiny_embedding(), config, [mx.cpu(i) for i in range(num_ctx)], verbose=1)
    parallel.bind(**shapes)
    params = {k: v for k, v in init.items() if k != 'fc7_weight'}
    params.update(fc7_shards_from(init, num_classes, num_ctx))
    parallel.init_params(arg_params=params)
    parallel.init_optimizer(kvstore='device', optimizer=sgd(1.0 / batch))

    valid = num_classes
    for step, data_batch in enumerate(batches, 1):  # the second step also checks the momentum
        reference.forward_backward(data_batch)
        parallel.forward_backward(data_batch)
        np.testing.assert_allclose(parallel.loss_values().asnumpy().mean(),
                                   reference.get_outputs()[2].asnumpy()[0], rtol=1e-5)
        expected = summed_grads(reference)
        got = summed_grads(parallel.backbone_module)
        for name in got:  # the parallel gradients are unnormalised sums: 1/B comes from rescale_grad
            np.testing.assert_allclose(got[name] / batch, expected[name], rtol=1e-4, atol=1e-6,
                                       err_msg=name)
        fc7_grad = np.concatenate([summed_grads(s)['fc7_%d_weight' % i]
                                   for i, s in enumerate(parallel.shard_modules)]) / batch
        np.testing.assert_allclose(fc7_grad[:valid], expected['fc7_weight'], rtol=1e-4, atol=1e-6)
        assert not fc7_grad[valid:].any()  # phantom classes are outside the softmax
        assert '{fc7_acc} %d ' % step in capsys.readouterr().out
        reference.update()
        parallel.update()
        ref_arg, _ = reference.get_params()
        par_arg, _ = parallel.get_params()
        for name in params:
            if not name.startswith('fc7'):
                np.testing.assert_allclose(par_arg[name].asnumpy(), ref_arg[name].asnumpy(),
                                           rtol=1e-5, atol=1e-6, err_msg=name)
        merged = merge_fc7([par_arg['fc7_%d_weight' % i] for i in range(num_ctx)], num_classes)
        np.testing.assert_allclose(merged.asnumpy(), ref_arg['fc7_weight'].asnumpy(), rtol=1e-5, atol=1e-6)


def test_shard_layout_split_merge_and_resplit():
    assert ctx_num_classes(85742, 8) == 10718           # the README example: 2 phantom classes
    assert valid_classes(85742, 8)[-1] == 10718 - 2
    assert valid_classes(4, 3) == [2, 2, 0]             # ceil division can leave a shard all phantom
    weight = np.arange(11 * 3, dtype=np.float32).reshape(11, 3)
    shards = split_fc7(weight, 3)
    assert [s.shape for s in shards] == [(4, 3)] * 3
    assert not shards[-1].asnumpy()[-1].any()           # the phantom row is zero
    np.testing.assert_array_equal(merge_fc7(shards, 11).asnumpy(), weight)
    # shards saved from 3 contexts re-split for 2; a full fc7_weight splits directly
    saved = {'fc7_%d_weight' % i: s for i, s in enumerate(shards)}
    two = fc7_shards_from(saved, 11, 2)
    assert sorted(two) == ['fc7_0_weight', 'fc7_1_weight'] and two['fc7_0_weight'].shape == (6, 3)
    np.testing.assert_array_equal(merge_fc7([two['fc7_0_weight'], two['fc7_1_weight']], 11).asnumpy(), weight)
    assert fc7_shards_from(saved, 11, 3)['fc7_1_weight'] is shards[1]  # same layout: taken as is
    assert fc7_shards_from({'x': shards[0]}, 11, 2) == {}
    full = fc7_shards_from({'fc7_weight': mx.nd.array(weight)}, 11, 3)
    np.testing.assert_array_equal(full['fc7_2_weight'].asnumpy(), shards[2].asnumpy())
    with pytest.raises(ValueError, match='fc7_weight has 11 classes, expected num_classes=12'):
        fc7_shards_from({'fc7_weight': mx.nd.array(weight)}, 12, 3)
    with pytest.raises(ValueError, match='fewer than num_classes=13'):
        fc7_shards_from(saved, 13, 2)


def run_parall(config_path, root, *extra):
    argv = ['--config', config_path, '--network', 'tiny', '--dataset', 'tiny', '--loss', 'arcface',
            '--models-root', str(root), '--per-batch-size', '2', '--ctx', 'cpu:2', '--lr', '0.01',
            '--lr-steps', '5', '--frequent', '2', '--verbose', '2', '--ckpt', '2', '--seed', '1']
    argv += list(extra)
    with pytest.raises(SystemExit) as stop:
        train_parall.main(argv)
    return stop.value.code


def shard_arrays(prefix, epoch):
    arg, aux = checkpoint.load_params(train_parall.fc7_params_path(prefix, epoch))
    assert not aux
    return arg


def test_training_saves_backbone_and_fc7_shards_and_resumes_exactly(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    # 5 classes (one with no images) on 2 contexts: 3 per shard, one phantom class.
    classes = "dataset.tiny.num_classes = 5\n"
    straight = write_config(tmp_path / 'a', max_steps=5, extra=classes)
    assert run_parall(straight, tmp_path / 'a' / 'models') == 0        # exits after batch 6
    out = capsys.readouterr().out
    assert 'Network FLOPs:' in out and '{fc7_acc} 2 ' in out
    # no training metric, as 2019: the Speedometer prints the speed alone
    assert any(r.getMessage().startswith('Iter[0] Batch [2]\tSpeed:') for r in caplog.records)
    prefix = str(tmp_path / 'a' / 'models' / 'tiny-arcface-tiny' / 'model')
    assert checkpoint.checkpoint_epochs(prefix) == [3, 2, 1]
    sym, arg, aux = checkpoint.load_checkpoint(prefix, 3)
    assert sym.list_outputs() == ['fc1_output'] and not any(k.startswith('fc7') for k in arg)
    module = mx.mod.Module(sym, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (2, 3, 32, 32))], for_training=False)
    module.set_params(arg, aux, allow_missing=False)
    shards = shard_arrays(prefix, 3)
    assert {k: v.shape for k, v in shards.items()} == {'fc7_0_weight': (3, 16), 'fc7_1_weight': (3, 16)}

    stopped = write_config(tmp_path / 'b', max_steps=3, extra=classes)
    assert run_parall(stopped, tmp_path / 'b' / 'models') == 0         # "killed" after batch 4
    resumed = write_config(tmp_path / 'b', max_steps=5, extra=classes)
    assert run_parall(resumed, tmp_path / 'b' / 'models', '--resume') == 0
    other = str(tmp_path / 'b' / 'models' / 'tiny-arcface-tiny' / 'model')
    _, got, _ = checkpoint.load_checkpoint(other, 3)
    for name, value in arg.items():
        np.testing.assert_allclose(got[name].asnumpy(), value.asnumpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    for name, value in shard_arrays(other, 3).items():
        np.testing.assert_allclose(value.asnumpy(), shards[name].asnumpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    capsys.readouterr()

    # --pretrained on 3 contexts re-splits the 2 saved shards; lr 0 keeps every weight
    assert run_parall(straight, tmp_path / 'c', '--ctx', 'cpu:3', '--pretrained', prefix + ',3',
                      '--lr', '0') == 0
    assert 'fc7 from %s' % train_parall.fc7_params_path(prefix, 3) in capsys.readouterr().out
    tuned_prefix = str(tmp_path / 'c' / 'tiny-arcface-tiny' / 'model')
    _, tuned, _ = checkpoint.load_checkpoint(tuned_prefix, 1)
    for name, value in arg.items():
        if name != 'fc1_gamma':  # a fix_gamma BatchNorm scale mxnet's CPU kernel may reset (test_train.py)
            np.testing.assert_allclose(tuned[name].asnumpy(), value.asnumpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=name)
    tuned_shards = shard_arrays(tuned_prefix, 1)
    assert sorted(tuned_shards) == ['fc7_0_weight', 'fc7_1_weight', 'fc7_2_weight']
    tuned_fc7 = merge_fc7([tuned_shards['fc7_%d_weight' % i] for i in range(3)], 5)
    saved_fc7 = merge_fc7([shards['fc7_0_weight'], shards['fc7_1_weight']], 5)
    np.testing.assert_allclose(tuned_fc7.asnumpy(), saved_fc7.asnumpy())

    # resuming needs the same number of contexts: the optimizer states are per shard
    with pytest.raises(ValueError, match='2 fc7 shards but this run has 3 contexts'):
        train_parall.main(['--config', resumed, '--network', 'tiny', '--dataset', 'tiny', '--loss', 'arcface',
                           '--models-root', str(tmp_path / 'b' / 'models'), '--ctx', 'cpu:3', '--resume'])


def test_worker_id_flag_and_unsupported_settings(tmp_path, capsys):
    path = write_config(tmp_path)
    with pytest.raises(SystemExit):
        train_parall.main(['--config', path, '--help'])
    assert '--worker-id' in capsys.readouterr().out
    common = ['--config', path, '--network', 'tiny', '--dataset', 'tiny', '--ctx', 'cpu:2',
              '--models-root', str(tmp_path / 'm')]
    with pytest.raises(ValueError, match='--worker-id 1'):
        train_parall.main(common + ['--worker-id', '1'])
    with pytest.raises(ValueError, match='--kvstore dist_sync: model parallelism runs in one process'):
        train_parall.main(common + ['--kvstore', 'dist_sync'])
    with pytest.raises(ValueError, match="softmax-type losses.*'triplet'"):
        train_parall.main(common + ['--loss', 'triplet'])
