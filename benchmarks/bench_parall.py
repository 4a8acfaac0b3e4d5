"""Peak memory and step time: model-parallel fc7 (ParallModule) vs train.py's replicated fc7; prints JSON.

Each configuration runs in its own subprocess so that peaks do not mix. All contexts are CPU
contexts of one process, so a context's share is the process's classifier memory / N: the peak RSS
minus the peak of the same run with a tiny classifier (1000 classes), divided by N.

    python benchmarks/bench_parall.py                 # 100k and 1M classes on 1, 2, 4 contexts
    python benchmarks/bench_parall.py --classes 100000 --contexts 1,2
"""
import argparse
import json
import os
import subprocess
import sys
import time

BASELINE_CLASSES = 1000


def rss_kib(field):
    """VmHWM (peak) or VmRSS (current) of this process, KiB."""
    with open('/proc/self/status') as fin:
        for line in fin:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no %s line" % field)


def available_gib():
    with open('/proc/meminfo') as fin:
        for line in fin:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) / 2 ** 20
    raise RuntimeError("/proc/meminfo has no MemAvailable line")


def small_embedding(emb_size):
    """A conv + fc1 backbone: small, so the classifier dominates the memory."""
    import mxnet as mx
    body = mx.sym.Convolution(mx.sym.Variable('data'), num_filter=16, kernel=(3, 3), stride=(2, 2),
                              pad=(1, 1), name='conv0')
    body = mx.sym.Activation(body, act_type='relu')
    return mx.sym.FullyConnected(body, num_hidden=emb_size, name='fc1')


def run_one(mode, num_classes, num_ctx, per_batch, emb_size, steps):
    """One configuration in this process: bind, init, `steps` timed SGD steps after a warm-up."""
    import mxnet as mx
    import numpy as np
    from easydict import EasyDict as edict

    from recognition import losses
    from recognition.parall_module import ParallModule

    config = edict(emb_size=emb_size, num_classes=num_classes, loss_name='margin_softmax', loss_s=64.0,
                   loss_m1=1.0, loss_m2=0.5, loss_m3=0.0, fc7_lr_mult=1.0, fc7_wd_mult=1.0,
                   fc7_no_bias=True, ce_loss=False)
    ctx = [mx.cpu(i) for i in range(num_ctx)]
    batch = per_batch * num_ctx
    if mode == 'model_parallel':
        model = ParallModule(small_embedding(emb_size), config, ctx, verbose=10 ** 9)
        rescale = 1.0 / batch
    else:  # train.py: every context holds the whole fc7
        model = mx.mod.Module(losses.get_training_symbol(config, small_embedding(emb_size), per_batch),
                              context=ctx)
        rescale = 1.0 / num_ctx
    model.bind(data_shapes=[('data', (batch, 3, 32, 32))], label_shapes=[('softmax_label', (batch,))])
    model.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2))
    model.init_optimizer(kvstore='device', optimizer=mx.optimizer.SGD(
        learning_rate=0.1, momentum=0.9, wd=5e-4, rescale_grad=rescale))
    rng = np.random.RandomState(0)
    data = mx.nd.array(rng.rand(batch, 3, 32, 32))
    step_times = []
    for _ in range(steps + 1):
        data_batch = mx.io.DataBatch([data], [mx.nd.array(rng.randint(0, num_classes, batch))])
        start = time.perf_counter()
        model.forward_backward(data_batch)
        model.update()
        mx.nd.waitall()
        step_times.append(time.perf_counter() - start)
    return {'peak_rss_gib': rss_kib('VmHWM') / 2 ** 20, 'rss_after_steps_gib': rss_kib('VmRSS') / 2 ** 20,
            'step_s': float(np.median(step_times[1:]))}


def measure(mode, num_classes, num_ctx, args):
    """run_one in a fresh subprocess; its JSON result."""
    cmd = [sys.executable, os.path.abspath(__file__), '--child', mode, str(num_classes), str(num_ctx),
           '--per-batch', str(args.per_batch), '--emb-size', str(args.emb_size), '--steps', str(args.steps)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (' '.join(cmd), done.returncode, done.stderr[-3000:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--classes', default='100000,1000000', help='comma-separated class counts')
    parser.add_argument('--contexts', default='1,2,4', help='comma-separated CPU context counts')
    parser.add_argument('--per-batch', type=int, default=8, help='batch per context')
    parser.add_argument('--emb-size', type=int, default=512)
    parser.add_argument('--steps', type=int, default=3, help='timed steps (after one warm-up)')
    parser.add_argument('--headroom', type=float, default=0.85,
                        help='skip a run whose estimated peak exceeds this share of MemAvailable')
    parser.add_argument('--child', nargs=3, metavar=('MODE', 'CLASSES', 'CONTEXTS'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, num_classes, num_ctx = args.child[0], int(args.child[1]), int(args.child[2])
        print(json.dumps(run_one(mode, num_classes, num_ctx, args.per_batch, args.emb_size, args.steps)))
        return

    contexts = [int(n) for n in args.contexts.split(',')]
    results = []
    for mode in ('model_parallel', 'data_parallel'):
        for num_ctx in contexts:
            base = measure(mode, BASELINE_CLASSES, num_ctx, args)
            per_class_gib = None  # classifier GiB per class for one fc7 copy, from the last run
            for num_classes in sorted(int(c) for c in args.classes.split(',')):
                row = {'mode': mode, 'contexts': num_ctx, 'classes': num_classes,
                       'batch': args.per_batch * num_ctx, 'emb_size': args.emb_size}
                copies = 1 if mode == 'model_parallel' else num_ctx
                if per_class_gib is not None:
                    estimate = base['peak_rss_gib'] + per_class_gib * num_classes * copies
                    if estimate > args.headroom * available_gib():
                        row['skipped'] = ('estimated peak %.1f GiB (%d fc7 copies) exceeds %.0f%% of the '
                                          '%.1f GiB available' % (estimate, copies, 100 * args.headroom,
                                                                  available_gib()))
                        results.append(row)
                        print(json.dumps(row), file=sys.stderr)
                        continue
                got = measure(mode, num_classes, num_ctx, args)
                classifier = got['peak_rss_gib'] - base['peak_rss_gib']
                per_class_gib = classifier / num_classes / copies
                row.update(got, baseline_peak_rss_gib=base['peak_rss_gib'], classifier_gib=classifier,
                           classifier_per_context_gib=classifier / num_ctx)
                results.append(row)
                print(json.dumps(row), file=sys.stderr)
    for row in results:  # per-context classifier memory against the 1-context run
        one = [r for r in results if r['mode'] == row['mode'] and r['classes'] == row['classes']
               and r['contexts'] == 1 and 'classifier_gib' in r]
        if one and 'classifier_gib' in row:
            row['per_context_vs_1_over_n'] = (row['classifier_per_context_gib']
                                              / (one[0]['classifier_per_context_gib'] / row['contexts']))
    print(json.dumps({'note': 'CPU contexts of one process; per-context = (peak RSS - peak RSS with %d '
                              'classes) / contexts; per_context_vs_1_over_n = 1.0 means exactly 1/N'
                              % BASELINE_CLASSES, 'results': results}, indent=1))


if __name__ == '__main__':
    main()
