"""Images/s and peak memory of PReLU networks on CPU: plain LeakyReLU vs the fast forms vs ReLU; prints JSON.

Inference compares the 2019 graph with what face_model and the verification tool run
(prelu_for_inference: two oneDNN operators per PReLU, weights computed once) and with the same
network built with ReLU (the practical ceiling); training compares it with train.py's graph
(fast_prelu) and ReLU.

The weights are "live": Xavier init, PReLU slopes drawn from [-0.1, 0.6], and every BatchNorm's
moving statistics set from a training-mode pass, as a trained model's are, so activations have
mixed signs at unit scale. The plain graph's speed depends on the values: mxnet's LeakyReLU runs
about 3x slower on randomly mixed signs than on one sign (branch mispredictions) and slower still
on denormal floats, which untouched statistics (mean 0, variance 1) produce deep in the network.

Variants of one case are timed side by side (one step of each in turn, repeated), so a busy
machine slows them alike; the ratios are the result to read. Each case runs in a fresh process:
mxnet 1.9.1 runs batch 1 about 2x slower in a process that has already run larger batches or
training steps.
Usage:
    python benchmarks/bench_prelu.py [--seconds 6] [--nets y1,r50] [--no-onnx]
"""
import os

os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402

from common import checkpoint  # noqa: E402
from common.symbol_rewrite import flatten_fc_inputs, prelu_for_inference  # noqa: E402
from deploy import export_onnx  # noqa: E402
from recognition import config_loader  # noqa: E402
from recognition.symbol import get_embedding_symbol  # noqa: E402

VARIANTS = ('plain', 'fast', 'relu')
NUM_CLASSES = 1000  # a small classifier head for training steps
SHAPE = (3, 112, 112)


def embedding(net, variant, bn_mom=None):
    """The fc1 symbol of preset `net`: 2019 PReLU graph, train.py's fast_prelu graph, or ReLU."""
    config = config_loader.generate(config_loader.load_sample_config(), net, 'emore', 'arcface')
    if variant == 'relu':
        config.net_act = 'relu'
    if bn_mom is not None:
        config.bn_mom = bn_mom
    with contextlib.redirect_stdout(io.StringIO()):  # builders print their config
        sym = get_embedding_symbol(config, fast_prelu=(variant == 'fast'))
    # An explicit Flatten keeps the oneDNN inference graph working (see flatten_fc_inputs).
    return flatten_fc_inputs(sym)


def params_path(param_dir, net, variant):
    # plain and fast share their parameters; the ReLU network has its own statistics.
    return os.path.join(param_dir, '%s-%s.params' % (net, 'relu' if variant == 'relu' else 'prelu'))


def write_live_params(net, variant, path, batch=16):
    """Save Xavier weights, PReLU slopes in [-0.1, 0.6] and BN statistics of one training pass.

    Built with BN momentum 0, so the moving statistics become those of the pass itself.
    """
    sym = embedding(net, variant, bn_mom=0.0)
    mx.random.seed(0)
    rng = np.random.RandomState(0)
    module = mx.mod.Module(mx.sym.make_loss(mx.sym.mean(sym)), context=mx.cpu(), label_names=None)
    module.bind(data_shapes=[('data', (batch,) + SHAPE)])
    module.init_params(mx.init.Xavier())
    args, aux = module.get_params()
    for name, value in args.items():
        if name.endswith('_gamma') and name in sym.list_arguments() and 'relu' in name:
            args[name] = mx.nd.array(rng.uniform(-0.1, 0.6, value.shape))
    module.set_params(args, aux)
    module.forward_backward(mx.io.DataBatch([mx.nd.array(rng.uniform(0, 255, (batch,) + SHAPE))]))
    mx.nd.waitall()
    module._params_dirty = True  # forward_backward alone does not mark the statistics as changed
    args, aux = module.get_params()
    saved = {'arg:' + k: v for k, v in args.items()}
    saved.update({'aux:' + k: v for k, v in aux.items()})
    mx.nd.save(path, saved)


def load_params(path):
    saved = mx.nd.load(path)
    args = {k[4:]: v for k, v in saved.items() if k.startswith('arg:')}
    aux = {k[4:]: v for k, v in saved.items() if k.startswith('aux:')}
    return args, aux


def inference_model(net, variant, param_dir):
    """(symbol, arg_params, aux_params) as run for inference: `fast` is face_model's graph."""
    args, aux = load_params(params_path(param_dir, net, variant))
    if variant == 'fast':
        sym, args = prelu_for_inference(embedding(net, 'plain'), args, (1,) + SHAPE)
        return flatten_fc_inputs(sym), args, aux
    return embedding(net, variant), args, aux


def inference_module(sym, batch):
    module = mx.mod.Module(sym, context=mx.cpu(), label_names=None)
    module.bind(data_shapes=[('data', (batch,) + SHAPE)], for_training=False)
    return module


def training_module(sym, batch):
    fc7 = mx.sym.FullyConnected(sym, num_hidden=NUM_CLASSES, name='fc7')
    loss = mx.sym.SoftmaxOutput(fc7, mx.sym.Variable('softmax_label'), name='softmax')
    module = mx.mod.Module(loss, context=mx.cpu())
    module.bind(data_shapes=[('data', (batch,) + SHAPE)], label_shapes=[('softmax_label', (batch,))])
    return module


def make_step(net, variant, batch, train, param_dir):
    """A function running one forward (or forward_backward + update) and waiting for it."""
    if train:
        args, aux = load_params(params_path(param_dir, net, variant))
        module = training_module(embedding(net, variant), batch)
    else:
        sym, args, aux = inference_model(net, variant, param_dir)
        module = inference_module(sym, batch)
    mx.random.seed(0)
    module.init_params(mx.init.Xavier(), arg_params=args, aux_params=aux, allow_missing=train,
                       allow_extra=True)
    if train:
        module.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 0.01, 'momentum': 0.9})
    rng = np.random.RandomState(0)
    data = mx.nd.array(rng.uniform(0, 255, (batch,) + SHAPE))
    labels = [mx.nd.array(rng.randint(0, NUM_CLASSES, batch))] if train else None
    data_batch = mx.io.DataBatch([data], labels)

    def step():
        if train:
            module.forward_backward(data_batch)
            module.update()
        else:
            module.forward(data_batch, is_train=False)
        for out in module.get_outputs():
            out.wait_to_read()
        mx.nd.waitall()
    return step


def side_by_side(steps, batch, seconds):
    """img/s (median step) of each variant, stepping them in turn for about `seconds`."""
    for step in steps.values():
        step()  # warm-up: oneDNN primitive creation, weight reorders
    times = {name: [] for name in steps}
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or min(len(t) for t in times.values()) < 3:
        for name, step in steps.items():
            begin = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - begin)
    return {name: round(batch / float(np.median(t)), 2) for name, t in times.items()}


def with_ratios(speeds):
    speeds['fast_vs_plain'] = round(speeds['fast'] / speeds['plain'], 2)
    speeds['relu_vs_plain'] = round(speeds['relu'] / speeds['plain'], 2)
    return speeds


def bench_case(net, batch, train, seconds, param_dir):
    steps = {v: make_step(net, v, batch, train, param_dir) for v in VARIANTS}
    return with_ratios(side_by_side(steps, batch, seconds))


def check_same_outputs(net, param_dir):
    """Max relative difference of face_model's fast graph from the plain one (fc1, batch 2)."""
    data = mx.io.DataBatch([mx.nd.array(np.random.RandomState(1).uniform(0, 255, (2,) + SHAPE))])
    outputs = []
    for variant in ('plain', 'fast'):
        sym, args, aux = inference_model(net, variant, param_dir)
        module = inference_module(sym, 2)
        module.set_params(args, aux, allow_extra=True)
        module.forward(data, is_train=False)
        outputs.append(module.get_outputs()[0].asnumpy())
    return float(np.abs(outputs[1] - outputs[0]).max() / np.abs(outputs[0]).max())


def child(*arguments):
    """Run this script with `arguments` in a fresh process; its last stdout line, parsed."""
    command = [sys.executable, os.path.abspath(__file__)] + [str(a) for a in arguments]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss(net, variant, batch, mode, param_dir):
    """The --child process: 3 steps, then its peak RSS in kB.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
    """
    step = make_step(net, variant, int(batch), mode == 'train', param_dir)
    for _ in range(3):
        step()
    with open('/proc/self/status') as status:
        peak = [line.split()[1] for line in status if line.startswith('VmHWM:')]
    return int(peak[0]) if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def onnx_case(batch, seconds, param_dir):
    """img/s of onnxruntime on the exported y1 (plain) vs mxnet's fast graph and ReLU."""
    import onnxruntime as ort
    sym, args, aux = inference_model('y1', 'plain', param_dir)
    data = np.random.RandomState(0).uniform(0, 255, (batch,) + SHAPE).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        prefix, path = os.path.join(tmp, 'y1'), os.path.join(tmp, 'y1.onnx')
        checkpoint.save_checkpoint(prefix, 0, sym, args, aux)
        export_onnx.export(prefix, 0, path)  # the project's exporter, with its fixes
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ['OMP_NUM_THREADS'])
        options.log_severity_level = 3
        # Without this its threads keep spinning after each run, stealing the cores mxnet's
        # steps (timed in turn with it) need.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    check = inference_module(sym, batch)
    check.set_params(args, aux)
    check.forward(mx.io.DataBatch([mx.nd.array(data)]), is_train=False)
    expected = check.get_outputs()[0].asnumpy()
    got = session.run(None, {input_name: data})[0]
    if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max()):
        raise ValueError('onnxruntime outputs differ from mxnet: max abs difference %g'
                         % np.abs(got - expected).max())
    steps = {'mxnet_fast': make_step('y1', 'fast', batch, False, param_dir),
             'mxnet_relu': make_step('y1', 'relu', batch, False, param_dir),
             'onnxruntime': lambda: session.run(None, {input_name: data})}
    speeds = side_by_side(steps, batch, seconds)
    speeds['onnxruntime_vs_mxnet_fast'] = round(speeds['onnxruntime'] / speeds['mxnet_fast'], 2)
    speeds['mxnet_relu_vs_mxnet_fast'] = round(speeds['mxnet_relu'] / speeds['mxnet_fast'], 2)
    return speeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=6.0, help='timing budget per case')
    parser.add_argument('--nets', default='y1,r50', help='network presets to measure')
    parser.add_argument('--no-onnx', action='store_true', help='skip the onnxruntime comparison')
    parser.add_argument('--case', nargs=5, metavar=('NET', 'BATCH', 'MODE', 'SECONDS', 'PARAM_DIR'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--child', nargs=5, metavar=('NET', 'VARIANT', 'BATCH', 'MODE', 'PARAM_DIR'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(peak_rss(*args.child))
        return
    if args.case:
        net, batch, mode, seconds, param_dir = args.case
        if mode == 'onnx':
            print(json.dumps(onnx_case(int(batch), float(seconds), param_dir)))
        elif mode == 'check':
            print(json.dumps(check_same_outputs(net, param_dir)))
        else:
            print(json.dumps(bench_case(net, int(batch), mode == 'train', float(seconds), param_dir)))
        return
    report = {'omp_num_threads': int(os.environ['OMP_NUM_THREADS']), 'image_size': SHAPE[1],
              'inference': {}, 'training': {}, 'peak_rss_mb': {}, 'fast_inference_max_rel_diff': {}}
    with tempfile.TemporaryDirectory() as param_dir:
        for net in args.nets.split(','):
            for variant in ('plain', 'relu'):
                write_live_params(net, variant, params_path(param_dir, net, variant))
            report['fast_inference_max_rel_diff'][net] = child('--case', net, 2, 'check', 0, param_dir)
            for batch in (32, 1):
                report['inference']['%s_batch%d' % (net, batch)] = child(
                    '--case', net, batch, 'infer', args.seconds, param_dir)
            report['training']['%s_batch16' % net] = child('--case', net, 16, 'train', args.seconds, param_dir)
            report['peak_rss_mb']['%s_train_batch16' % net] = {
                v: round(child('--child', net, v, 16, 'train', param_dir) / 1024.0, 1) for v in ('plain', 'fast')}
            report['peak_rss_mb']['%s_infer_batch32' % net] = {
                v: round(child('--child', net, v, 32, 'infer', param_dir) / 1024.0, 1) for v in ('plain', 'fast')}
        if not args.no_onnx:
            if 'y1' not in args.nets.split(','):
                write_live_params('y1', 'plain', params_path(param_dir, 'y1', 'plain'))
                write_live_params('y1', 'relu', params_path(param_dir, 'y1', 'relu'))
            try:
                report['onnxruntime_y1'] = {'batch%d' % b: child('--case', 'y1', b, 'onnx', args.seconds, param_dir)
                                            for b in (1, 32)}
            except subprocess.CalledProcessError as err:  # optional comparison: say why it did not run
                report['onnxruntime_y1'] = 'skipped: %s' % (err.stderr or '').strip().splitlines()[-1:]
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
