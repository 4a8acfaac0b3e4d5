"""The PReLU benchmark measures what it says: live weights, and a fast graph with the plain outputs."""
import importlib.util
import os

import mxnet as mx
import numpy as np

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks', 'bench_prelu.py')


def load_bench():
    spec = importlib.util.spec_from_file_location('bench_prelu', BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_live_params_give_unit_scale_mixed_sign_activations_and_equal_fast_outputs(tmp_path):
    bench = load_bench()
    path = bench.params_path(str(tmp_path), 'y1', 'plain')
    bench.write_live_params('y1', 'plain', path, batch=4)
    args, aux = bench.load_params(path)
    # BN statistics come from a pass, not the untouched (0, 1) that makes activations vanish.
    variances = np.concatenate([v.asnumpy() for k, v in aux.items() if k.endswith('moving_var')])
    assert not np.allclose(variances, 1.0) and variances.min() > 0
    slopes = np.concatenate([v.asnumpy() for k, v in args.items() if k.endswith('_gamma') and 'relu' in k])
    assert -0.1 <= slopes.min() < 0 < slopes.max() <= 0.6
    sym, args, aux = bench.inference_model('y1', 'plain', str(tmp_path))
    internals = sym.get_internals()
    prelu_input = internals['conv_6sep_batchnorm_output']
    exe = prelu_input.simple_bind(mx.cpu(), data=(4, 3, 112, 112), grad_req='null')
    exe.copy_params_from(args, aux, allow_extra_params=True)
    exe.arg_dict['data'][:] = np.random.RandomState(3).uniform(0, 255, (4, 3, 112, 112))
    values = exe.forward(is_train=False)[0].asnumpy()
    assert 0.2 < (values < 0).mean() < 0.8 and 0.1 < values.std() < 10
    assert bench.check_same_outputs('y1', str(tmp_path)) < 1e-4
