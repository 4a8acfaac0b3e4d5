"""train.py end to end on a tiny network and a tiny .rec: CLI, contexts, logs, checkpoints, max_steps."""
import json
import logging
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from common import checkpoint
from common.devices import get_contexts, gpu_context
from common.record_io import IdentityRecordWriter
from recognition import config_loader, train

TINY_PRESETS = """
network.tiny = edict()
network.tiny.net_name = 'fresnet'
network.tiny.num_layers = 18
network.tiny.emb_size = 16
network.tiny.net_act = 'relu'
dataset.tiny = edict()
dataset.tiny.dataset = 'tiny'
dataset.tiny.dataset_path = %r
dataset.tiny.num_classes = 4
dataset.tiny.image_shape = (32, 32, 3)
dataset.tiny.val_targets = []
config.max_steps = %d
"""


def make_dataset(directory, identities=4, per_identity=6, size=32):
    rng = np.random.RandomState(0)
    os.makedirs(directory, exist_ok=True)
    with IdentityRecordWriter(os.path.join(directory, 'train.rec')) as writer:
        for label in range(identities):
            base = rng.randint(0, 256, size=(size, size, 3))
            for _ in range(per_identity):
                img = np.clip(base + rng.randint(-20, 21, size=base.shape), 0, 255).astype(np.uint8)
                writer.add_image(cv2.imencode('.png', img)[1].tobytes(), label, aligned=1)


def write_config(tmp_path, max_steps=3, extra=''):
    data_dir = str(tmp_path / 'data')
    if not os.path.exists(data_dir):
        make_dataset(data_dir)
    path = tmp_path / 'config.py'
    path.write_text(open(config_loader.SAMPLE_CONFIG).read() + TINY_PRESETS % (data_dir, max_steps) + extra)
    return str(path)


def run_train(config_path, tmp_path, *extra):
    argv = ['--config', config_path, '--network', 'tiny', '--dataset', 'tiny', '--loss', 'arcface',
            '--models-root', str(tmp_path / 'models'), '--per-batch-size', '4', '--ctx', 'cpu',
            '--lr', '0.01', '--frequent', '2', '--verbose', '2', '--ckpt', '2', '--seed', '1'] + list(extra)
    with pytest.raises(SystemExit) as stop:
        train.main(argv)
    return stop.value.code


def test_help_lists_every_flag(tmp_path, capsys):
    path = write_config(tmp_path)
    with pytest.raises(SystemExit):
        train.main(['--config', path, '--help'])
    out = capsys.readouterr().out
    for flag in ('--dataset', '--network', '--loss', '--models-root', '--pretrained', '--pretrained-epoch',
                 '--ckpt', '--verbose', '--lr', '--lr-steps', '--wd', '--mom', '--frequent',
                 '--per-batch-size', '--kvstore'):
        assert flag in out


def test_presets_set_cli_defaults_and_pretrained_forms(tmp_path):
    path = write_config(tmp_path)
    args, config = train.parse_args(['--config', path, '--loss', 'triplet'])
    assert (args.per_batch_size, args.lr) == (60, 0.05)
    args, _ = train.parse_args(['--config', path, '--pretrained', './m/model,7'])
    assert (args.pretrained, args.pretrained_epoch) == ('./m/model', 7)
    args, _ = train.parse_args(['--config', path, '--pretrained', './m/model', '--pretrained-epoch', '3'])
    assert (args.pretrained, args.pretrained_epoch) == ('./m/model', 3)
    with pytest.raises(SystemExit):
        train.parse_args(['--config', path, '--network', 'nope'])


def test_contexts_from_environment():
    assert get_contexts(environ={}) == [mx.cpu()]
    assert get_contexts(environ={'CUDA_VISIBLE_DEVICES': ' '}) == [mx.cpu()]
    assert get_contexts(environ={'CUDA_VISIBLE_DEVICES': '3,5'}) == [mx.gpu(0), mx.gpu(1)]
    assert get_contexts('cpu:2') == [mx.cpu(0), mx.cpu(1)]
    with pytest.raises(ValueError, match='--ctx'):
        get_contexts('tpu:1')


def test_gpu_id_contexts():
    assert gpu_context(None) == mx.cpu() and gpu_context(-1) == mx.cpu()
    # this machine has no GPU: an id falls back to the CPU (with a note) instead of failing later
    assert gpu_context(0) == (mx.cpu() if mx.context.num_gpus() == 0 else mx.gpu(0))


def test_training_run_saves_embedding_checkpoints_and_stops_after_max_steps(tmp_path, caplog, capsys):
    caplog.set_level(logging.INFO)
    path = write_config(tmp_path, max_steps=3)
    assert run_train(path, tmp_path) == 0
    out = capsys.readouterr().out
    prefix = str(tmp_path / 'models' / 'tiny-arcface-tiny' / 'model')
    assert 'prefix %s' % prefix in out
    assert 'Network FLOPs:' in out and 'saving 1' in out and 'saving 2' in out
    assert '[4]Accuracy-Highest: 0.00000' in out
    speed_lines = [r.getMessage() for r in caplog.records if 'Speed:' in r.getMessage()]
    assert speed_lines and 'acc=' in speed_lines[0] and 'lossvalue=' in speed_lines[0]
    # verbose=2 and max_steps=3: verification at batches 2 and 4, exit after batch 4
    assert checkpoint.checkpoint_epochs(prefix) == [2, 1]
    sym, arg_params, aux_params = checkpoint.load_checkpoint(prefix, 2)
    assert sym.list_outputs() == ['fc1_output']
    assert not any(k.startswith('fc7') for k in arg_params)
    # the saved embedding loads into a freshly built backbone with nothing missing
    module = mx.mod.Module(sym, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (2, 3, 32, 32))], for_training=False)
    module.set_params(arg_params, aux_params, allow_missing=False)
    module.forward(mx.io.DataBatch([mx.nd.ones((2, 3, 32, 32))]), is_train=False)
    assert module.get_outputs()[0].shape == (2, 16)
    # the training curve is drawn at every verification step, its numbers kept as JSON
    run_dir = os.path.dirname(prefix)
    history = json.load(open(os.path.join(run_dir, 'training_history.json')))
    # recorded where the Speedometer prints (epoch batch index 2 = global batch 3, frequent=2)
    assert [b for b, _ in history['metrics']['lossvalue']] == [3]
    assert all(np.isfinite(v) for _, v in history['metrics']['lossvalue'])
    with open(os.path.join(run_dir, 'training_curve.png'), 'rb') as fin:
        assert fin.read(8) == b'\x89PNG\r\n\x1a\n'
    # no temporary files are left beside the checkpoints
    assert not [n for n in os.listdir(os.path.dirname(prefix)) if n.endswith('.tmp')]


def test_two_contexts_and_pretrained_fine_tuning(tmp_path, capsys):
    path = write_config(tmp_path, max_steps=1)
    assert run_train(path, tmp_path, '--ctx', 'cpu:2') == 0
    prefix = str(tmp_path / 'models' / 'tiny-arcface-tiny' / 'model')
    _, first, _ = checkpoint.load_checkpoint(prefix, 1)
    capsys.readouterr()
    # fine-tune from it with the README's 'prefix,epoch' form into another models root
    assert run_train(path, tmp_path, '--pretrained', prefix + ',1', '--models-root',
                     str(tmp_path / 'models2'), '--lr', '0.0') == 0
    out = capsys.readouterr().out
    assert 'loading %s 1' % prefix in out
    _, tuned, _ = checkpoint.load_checkpoint(str(tmp_path / 'models2' / 'tiny-arcface-tiny' / 'model'), 1)
    # lr 0: the weights equal the pretrained ones. fc1_gamma is a fix_gamma BatchNorm scale whose
    # stored value mxnet's CPU kernel may reset to 1; it is 1 in every forward pass either way.
    for name, value in first.items():
        if name == 'fc1_gamma':
            continue
        np.testing.assert_allclose(tuned[name].asnumpy(), value.asnumpy(), rtol=1e-5, atol=1e-6)


def test_missing_pretrained_file_is_named(tmp_path):
    path = write_config(tmp_path)
    with pytest.raises(FileNotFoundError, match='nothere-symbol.json'):
        train.main(['--config', path, '--network', 'tiny', '--dataset', 'tiny', '--ctx', 'cpu',
                    '--models-root', str(tmp_path / 'm'), '--pretrained', str(tmp_path / 'nothere') + ',1'])


def test_nan_loss_stops_with_message_naming_batch_and_checkpoint(tmp_path):
    path = write_config(tmp_path, max_steps=50)
    with pytest.raises(FloatingPointError, match=r'at batch \d+.*last good checkpoint is .*model-0001.params'):
        train.main(['--config', path, '--network', 'tiny', '--dataset', 'tiny', '--loss', 'softmax',
                    '--models-root', str(tmp_path / 'models'), '--per-batch-size', '4', '--ctx', 'cpu',
                    '--lr', '1e30', '--verbose', '1', '--ckpt', '2', '--seed', '0'])


@pytest.mark.parametrize('ctx', ['cpu', 'cpu:2'])
def test_resume_after_a_stop_ends_with_the_same_weights(tmp_path, ctx):
    # 24 images, batch 4: 6 batches an epoch; verification/saving every 2 batches.
    common = ['--ctx', ctx, '--per-batch-size', '4' if ctx == 'cpu' else '2', '--lr-steps', '5']
    straight = write_config(tmp_path / 'a', max_steps=7)
    assert run_train(straight, tmp_path / 'a', *common) == 0          # exits after batch 8
    stopped = write_config(tmp_path / 'b', max_steps=3)
    assert run_train(stopped, tmp_path / 'b', *common) == 0           # "killed" after batch 4
    resumed = write_config(tmp_path / 'b', max_steps=7)
    assert run_train(resumed, tmp_path / 'b', *common, '--resume') == 0  # batches 5..8
    _, expected, expected_aux = checkpoint.load_checkpoint(
        str(tmp_path / 'a' / 'models' / 'tiny-arcface-tiny' / 'model'), 4)
    _, got, got_aux = checkpoint.load_checkpoint(
        str(tmp_path / 'b' / 'models' / 'tiny-arcface-tiny' / 'model'), 4)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name].asnumpy(), expected[name].asnumpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    for name in expected_aux:
        np.testing.assert_allclose(got_aux[name].asnumpy(), expected_aux[name].asnumpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)


def test_resume_without_state_says_what_is_missing(tmp_path):
    path = write_config(tmp_path)
    with pytest.raises(FileNotFoundError, match='model-resume.params'):
        train.main(['--config', path, '--network', 'tiny', '--dataset', 'tiny', '--ctx', 'cpu',
                    '--models-root', str(tmp_path / 'models'), '--resume'])


@pytest.mark.parametrize('loss', ['triplet', 'atriplet'])
def test_triplet_training_runs_with_mining(tmp_path, capsys, loss):
    extra = ("loss.%s.triplet_bag_size = 12\nloss.%s.images_per_identity = 3\n"
             "loss.%s.triplet_alpha = 1.0\n" % (loss, loss, loss))
    path = write_config(tmp_path, max_steps=2, extra=extra)
    argv = ['--config', path, '--network', 'tiny', '--dataset', 'tiny', '--loss', loss,
            '--models-root', str(tmp_path / 'models'), '--per-batch-size', '6', '--ctx', 'cpu',
            '--lr', '0.01', '--verbose', '2', '--ckpt', '2', '--seed', '3', '--frequent', '1']
    with pytest.raises(SystemExit) as stop:
        train.main(argv)
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert 'found triplets' in out and 'saving 1' in out
    prefix = str(tmp_path / 'models' / ('tiny-%s-tiny' % loss) / 'model')
    sym, args, _ = checkpoint.load_checkpoint(prefix, 1)
    assert sym.list_outputs() == ['fc1_output'] and 'fc7_weight' not in args


@pytest.mark.parametrize('loss', ['softmax', 'nsoftmax', 'cosface', 'combined', 'sphereface'])
def test_every_softmax_type_loss_trains(tmp_path, capsys, loss):
    path = write_config(tmp_path, max_steps=1)
    assert run_train(path, tmp_path, '--loss', loss) == 0
    assert 'saving 1' in capsys.readouterr().out
    prefix = str(tmp_path / 'models' / ('tiny-%s-tiny' % loss) / 'model')
    sym, args, aux = checkpoint.load_checkpoint(prefix, 1)
    assert all(np.isfinite(v.asnumpy()).all() for v in args.values())
    # The embedding checkpoint holds exactly the embedding's arrays: no fc7, and no loss-head
    # state such as SphereFace's sphereface_step.
    assert sorted(args) == sorted(n for n in sym.list_arguments() if n != 'data')
    assert sorted(aux) == sorted(sym.list_auxiliary_states())


def test_resumed_triplet_run_mines_afresh_from_the_saved_weights(tmp_path, capsys):
    """P6: triplets depend on the weights, so a resumed run starts a new mining round."""
    extra = ("loss.triplet.triplet_bag_size = 12\nloss.triplet.images_per_identity = 3\n"
             "loss.triplet.triplet_alpha = 1.0\n")
    argv = ['--network', 'tiny', '--dataset', 'tiny', '--loss', 'triplet', '--models-root',
            str(tmp_path / 'models'), '--per-batch-size', '6', '--ctx', 'cpu', '--lr', '0.01',
            '--verbose', '2', '--ckpt', '2', '--seed', '3', '--frequent', '1']
    for max_steps, more in ((1, []), (3, ['--resume'])):
        path = write_config(tmp_path, max_steps=max_steps, extra=extra)
        with pytest.raises(SystemExit) as stop:
            train.main(['--config', path] + argv + more)
        assert stop.value.code == 0
    out = capsys.readouterr().out
    resumed = out[out.index('resuming from'):]
    assert 'at batch 2' in resumed.splitlines()[0]
    assert 'call reset()' in resumed and 'found triplets' in resumed
    state = train.load_resume_state(train.resume_path(str(tmp_path / 'models' / 'tiny-triplet-tiny' / 'model')))
    # the two resumed batches are the first of a new epoch (stopped in epoch 0 after batch 2)
    assert (state[3]['global_step'], state[3]['epoch'], state[3]['batches_done']) == (4, 1, 2)


@pytest.mark.parametrize('ckpt_embedding', [True, False])
def test_prelu_network_trains_fast_and_saves_the_2019_graph(tmp_path, ckpt_embedding):
    extra = "network.tiny.net_act = 'prelu'\nconfig.ckpt_embedding = %r\n" % ckpt_embedding
    path = write_config(tmp_path, max_steps=1, extra=extra)
    assert run_train(path, tmp_path) == 0
    prefix = str(tmp_path / 'models' / 'tiny-arcface-tiny' / 'model')
    sym, args, _ = checkpoint.load_checkpoint(prefix, 1)
    ops = [node['op'] for node in json.loads(sym.tojson())['nodes']]
    # trained with the oneDNN formulation, saved as plain LeakyReLU with the same gammas,
    # the embedding or (ckpt_embedding = False) the whole 2019 training graph
    assert 'LeakyReLU' in ops and '_full' not in ops and 'Reshape' not in ops
    with mx.name.NameManager():
        expected = train.get_symbol(train.parse_args(['--config', path, '--network', 'tiny', '--dataset',
                                                      'tiny', '--loss', 'arcface'])[1], 4)
    if ckpt_embedding:
        assert sym.list_outputs() == ['fc1_output'] and 'fc7_weight' not in args
    else:
        assert sym.tojson() == expected.tojson() and 'fc7_weight' in args
    assert args['relu0_gamma'].shape == (64,)
    assert not np.allclose(args['relu0_gamma'].asnumpy(), 0.25)  # the slopes were trained


@pytest.mark.parametrize('net_output', ['Z', 'A', 'B'])
def test_heads_without_fc1_are_refused_before_training(tmp_path, net_output):
    # 2019 failed later (KeyError in count_flops or at the first save); without count_flops
    # it trained into checkpoints nothing could load as an embedding.
    extra = "network.tiny.net_output = %r\nconfig.count_flops = False\n" % net_output
    path = write_config(tmp_path, max_steps=1, extra=extra)
    with pytest.raises(ValueError, match="no 'fc1' node.*choose another net_output"):
        run_train(path, tmp_path)
    assert not os.path.exists(str(tmp_path / 'models' / 'tiny-arcface-tiny' / 'model-0001.params'))


def test_train_softmax_is_the_same_trainer(tmp_path):
    import subprocess
    import sys
    path = write_config(tmp_path)
    script = os.path.join(os.path.dirname(train.__file__), 'train_softmax.py')
    done = subprocess.run([sys.executable, script, '--config', path, '--help'], capture_output=True, text=True)
    assert done.returncode == 0 and '--per-batch-size' in done.stdout and '--resume' in done.stdout


def test_killing_training_at_any_moment_leaves_loadable_checkpoints(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    path = write_config(tmp_path, max_steps=10 ** 6)
    prefix = str(tmp_path / 'models' / 'tiny-arcface-tiny' / 'model')
    command = [sys.executable, os.path.join(os.path.dirname(train.__file__), 'train.py'), '--config', path,
               '--network', 'tiny', '--dataset', 'tiny', '--loss', 'arcface', '--models-root',
               str(tmp_path / 'models'), '--per-batch-size', '4', '--ctx', 'cpu', '--verbose', '1', '--ckpt', '2',
               '--seed', '0']
    for delay in (0.0, 0.13, 0.29):  # every batch saves: a kill lands during a write sooner or later
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while len(checkpoint.checkpoint_epochs(prefix)) < 3 and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        epochs = checkpoint.checkpoint_epochs(prefix)
        assert len(epochs) >= 3
        for epoch in epochs:
            sym, args, _ = checkpoint.load_checkpoint(prefix, epoch)
            assert sym.list_outputs() == ['fc1_output'] and 'conv0_weight' in args
        arg, _, _, state = train.load_resume_state(train.resume_path(prefix))
        assert state['global_step'] >= 1 and 'fc7_weight' in arg
        for name in os.listdir(os.path.dirname(prefix)):  # leftovers only under hidden temporary names
            assert not name.endswith('.params') or name.startswith('model-'), name


def test_stop_prefetching_ends_a_thread_caught_inside_next():
    """mxnet's PrefetchingIter.__del__ hangs when its thread is inside next(); ours returns."""
    import threading
    import time

    class SlowIter(mx.io.DataIter):
        def __init__(self):
            super().__init__(batch_size=1)
            self.provide_data = [mx.io.DataDesc('data', (1, 2))]
            self.provide_label = []

        def next(self):
            time.sleep(0.3)
            return mx.io.DataBatch([mx.nd.zeros((1, 2))], [])

        def reset(self):
            pass

    prefetching = mx.io.PrefetchingIter(SlowIter())
    time.sleep(0.05)  # the thread is now sleeping inside next()
    stopper = threading.Thread(target=train.stop_prefetching, args=(prefetching,), daemon=True)
    stopper.start()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert not any(thread.is_alive() for thread in prefetching.prefetch_threads)
