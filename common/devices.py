"""Which MXNet contexts a tool runs on: from CUDA_VISIBLE_DEVICES / --ctx, or from a --gpu id."""
import os
import sys

import mxnet as mx


def get_contexts(ctx_arg=None, environ=None):
    """--ctx if given; else one GPU per CUDA_VISIBLE_DEVICES entry (numbered 0..k-1); else CPU."""
    environ = os.environ if environ is None else environ
    if ctx_arg:
        kind, _, spec = ctx_arg.partition(':')
        if kind not in ('cpu', 'gpu'):
            raise ValueError("--ctx must look like 'cpu', 'cpu:2' or 'gpu:0,1', got %r" % ctx_arg)
        if kind == 'cpu':
            return [mx.cpu(i) for i in range(int(spec or 1))]
        return [mx.gpu(int(i)) for i in spec.split(',')] if spec else [mx.gpu(0)]
    cvd = environ.get('CUDA_VISIBLE_DEVICES', '').strip()
    if not cvd:
        print('use cpu')
        return [mx.cpu()]
    ctx = [mx.gpu(i) for i in range(len(cvd.split(',')))]
    print('gpu num:', len(ctx))
    return ctx


def gpu_context(gpu):
    """mx.gpu(gpu); the CPU for gpu None or < 0, or (with a note) on a machine without GPUs."""
    if gpu is None or int(gpu) < 0:
        return mx.cpu()
    gpu = int(gpu)
    num_gpus = mx.context.num_gpus()
    if num_gpus == 0:
        print('no GPU found: running on the CPU', file=sys.stderr)
        return mx.cpu()
    if gpu >= num_gpus:
        raise ValueError("--gpu %d: this machine has %d GPU(s); use 0..%d, or -1 for the CPU"
                         % (gpu, num_gpus, num_gpus - 1))
    return mx.gpu(gpu)
