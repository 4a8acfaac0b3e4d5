"""Images/s and peak memory of PReLU networks on CPU: plain LeakyReLU vs fast_prelu vs ReLU; prints JSON.

Variants of one case are timed side by side (one step of each in turn, repeated), so a busy
machine slows them alike; the ratios are the result to read. Each case runs in a fresh process:
mxnet 1.9.1 runs batch 1 about 2x slower (and fast_prelu 3.5x slower) in a process that has
already run the batch-32 case, so the in-process figures depended on the order of the cases.
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

from common.symbol_rewrite import flatten_fc_inputs  # noqa: E402
from recognition import config_loader  # noqa: E402
from recognition.symbol import get_embedding_symbol  # noqa: E402

VARIANTS = ('plain', 'fast', 'relu')
NUM_CLASSES = 1000  # a small classifier head for training steps


def embedding(net, variant):
    """The fc1 symbol of preset `net`: 2019 PReLU graph, fast_prelu rewrite, or ReLU instead."""
    config = config_loader.generate(config_loader.load_sample_config(), net, 'emore', 'arcface')
    if variant == 'relu':
        config.net_act = 'relu'
    with contextlib.redirect_stdout(io.StringIO()):  # builders print their config
        sym = get_embedding_symbol(config, fast_prelu=(variant == 'fast'))
    # An explicit Flatten keeps the oneDNN inference graph working (see flatten_fc_inputs).
    return flatten_fc_inputs(sym)


def inference_module(sym, batch):
    module = mx.mod.Module(sym, context=mx.cpu(), label_names=None)
    module.bind(data_shapes=[('data', (batch, 3, 112, 112))], for_training=False)
    return module


def training_module(sym, batch):
    fc7 = mx.sym.FullyConnected(sym, num_hidden=NUM_CLASSES, name='fc7')
    loss = mx.sym.SoftmaxOutput(fc7, mx.sym.Variable('softmax_label'), name='softmax')
    module = mx.mod.Module(loss, context=mx.cpu())
    module.bind(data_shapes=[('data', (batch, 3, 112, 112))], label_shapes=[('softmax_label', (batch,))])
    return module


def make_step(module, batch, train):
    """A function running one forward (or forward_backward + update) and waiting for it."""
    mx.random.seed(0)
    module.init_params(mx.init.Xavier())
    if train:
        module.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 0.01, 'momentum': 0.9})
    rng = np.random.RandomState(0)
    data = mx.nd.array(rng.uniform(0, 255, (batch, 3, 112, 112)))
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


def bench_case(net, batch, train, seconds):
    make = training_module if train else inference_module
    steps = {v: make_step(make(embedding(net, v), batch), batch, train) for v in VARIANTS}
    return with_ratios(side_by_side(steps, batch, seconds))


def case_child(net, batch, train, seconds):
    """bench_case in a fresh process (see the module docstring)."""
    command = [sys.executable, os.path.abspath(__file__), '--case', net, str(batch),
               'train' if train else 'infer', str(seconds)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_child(net, variant, batch, train):
    """Peak RSS (MB) of a fresh process building `variant` and running 3 steps."""
    command = [sys.executable, os.path.abspath(__file__), '--child', net, variant, str(batch),
               'train' if train else 'infer']
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return round(int(out.stdout.strip().splitlines()[-1]) / 1024.0, 1)


def run_child(net, variant, batch, mode):
    """The --child process: 3 steps, then its peak RSS in kB on the last line.

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
    """
    train = mode == 'train'
    make = training_module if train else inference_module
    step = make_step(make(embedding(net, variant), int(batch)), int(batch), train)
    for _ in range(3):
        step()
    with open('/proc/self/status') as status:
        peak = [line.split()[1] for line in status if line.startswith('VmHWM:')]
    print(peak[0] if peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def onnx_ratio(seconds):
    """img/s of onnxruntime on the exported y1 (plain) vs mxnet with fast_prelu, batch 1 and 32."""
    import onnx
    import onnxruntime as ort
    sym = embedding('y1', 'plain')
    module = inference_module(sym, 1)
    mx.random.seed(0)
    module.init_params(mx.init.Xavier())
    arg_params, aux_params = module.get_params()
    params = dict(arg_params)
    params.update(aux_params)
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'y1.onnx')
        mx.onnx.export_model(sym, params, [(1, 3, 112, 112)], [np.float32], path,
                             dynamic=True, dynamic_input_shapes=[('batch', 3, 112, 112)])
        # mxnet stamps the installed onnx's newest opset (21) and IR version (10), newer than
        # onnxruntime 1.16 accepts; the operators y1 uses are the same in opset 19, and the
        # outputs are compared below.
        model = onnx.load(path)
        model.ir_version = min(model.ir_version, 9)
        for opset in model.opset_import:
            if opset.domain in ('', 'ai.onnx'):
                opset.version = min(opset.version, 19)
        # mxnet exports PReLU slopes as (C,), which ONNX broadcasts against the width axis.
        initializers = {init.name: init for init in model.graph.initializer}
        declared = {info.name: info for info in list(model.graph.input) + list(model.graph.value_info)}
        for node in model.graph.node:
            slope = initializers.get(node.input[1]) if node.op_type == 'PRelu' else None
            if slope is not None and len(slope.dims) == 1:
                slope.dims.extend([1, 1])
                if slope.name in declared:
                    shape = declared[slope.name].type.tensor_type.shape
                    shape.dim.add().dim_value = 1
                    shape.dim.add().dim_value = 1
        # Weights listed as graph inputs could be overridden, so onnxruntime would not fold them.
        inputs = [info for info in model.graph.input if info.name not in initializers]
        del model.graph.input[:]
        model.graph.input.extend(inputs)
        onnx.save(model, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ['OMP_NUM_THREADS'])
        options.log_severity_level = 3
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        for batch in (1, 32):
            data = np.random.RandomState(0).uniform(0, 255, (batch, 3, 112, 112)).astype(np.float32)
            fast = make_step(inference_module(embedding('y1', 'fast'), batch), batch, False)
            input_name = session.get_inputs()[0].name
            check = inference_module(sym, batch)
            check.set_params(arg_params, aux_params)
            check.forward(mx.io.DataBatch([mx.nd.array(data)]), is_train=False)
            expected = check.get_outputs()[0].asnumpy()
            got = session.run(None, {input_name: data})[0]
            if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max()):
                raise ValueError('onnxruntime outputs differ from mxnet: max abs difference %g'
                                 % np.abs(got - expected).max())
            steps = {'mxnet_fast': fast, 'onnxruntime': lambda: session.run(None, {input_name: data})}
            speeds = side_by_side(steps, batch, seconds)
            speeds['onnxruntime_vs_mxnet_fast'] = round(speeds['onnxruntime'] / speeds['mxnet_fast'], 2)
            result['batch%d' % batch] = speeds
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=6.0, help='timing budget per case')
    parser.add_argument('--nets', default='y1,r50', help='network presets to measure')
    parser.add_argument('--no-onnx', action='store_true', help='skip the onnxruntime comparison')
    parser.add_argument('--case', nargs=4, metavar=('NET', 'BATCH', 'MODE', 'SECONDS'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--child', nargs=4, metavar=('NET', 'VARIANT', 'BATCH', 'MODE'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(*args.child)
        return
    if args.case:
        net, batch, mode, seconds = args.case
        print(json.dumps(bench_case(net, int(batch), mode == 'train', float(seconds))))
        return
    report = {'omp_num_threads': int(os.environ['OMP_NUM_THREADS']), 'image_size': 112,
              'inference': {}, 'training': {}, 'peak_rss_mb': {}}
    for net in args.nets.split(','):
        for batch in (32, 1):
            report['inference']['%s_batch%d' % (net, batch)] = case_child(net, batch, False, args.seconds)
        report['training']['%s_batch16' % net] = case_child(net, 16, True, args.seconds)
        memory = {v: peak_rss_child(net, v, 16, True) for v in ('plain', 'fast')}
        report['peak_rss_mb']['%s_train_batch16' % net] = memory
    if not args.no_onnx:
        try:
            report['onnxruntime_y1'] = onnx_ratio(args.seconds)
        except Exception as err:  # optional comparison: report why it did not run
            report['onnxruntime_y1'] = 'skipped: %s' % str(err).splitlines()[0][:200]
    print(json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
