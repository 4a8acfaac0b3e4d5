"""SphereFace residual nets 20/36/60/64/104 from the 2019 release's older src/symbols (--network sNN)."""
import mxnet as mx

from recognition.symbol import symbol_utils

# num_layers -> residual pairs in each of the 4 stages. Every stage starts with a strided conv, so
# the conv count is 4 + 2 * sum(units) == num_layers.
UNITS_PER_STAGE = {
    20: (1, 2, 4, 1),
    36: (2, 4, 8, 2),
    60: (3, 8, 14, 3),
    64: (3, 8, 16, 3),
    104: (3, 8, 36, 3),
}
FILTERS = (64, 128, 256, 512)
WORKSPACE = 256


def _conv(data, num_filter, stride, name, **params):
    return mx.sym.Convolution(data=data, num_filter=num_filter, kernel=(3, 3), stride=stride,
                              pad=(1, 1), workspace=WORKSPACE, name=name, **params)


def _stage(body, stage, num_filter, units):
    """conv<stage>_1 (3x3/2, with bias) + PReLU, then `units` residual pairs of bias-free convs.

    Only conv<stage>_1 carries its own init: weights Normal(0.01), bias 0 with lr_mult 2 and
    wd_mult 0. The 2019 train.py called a spherenet.init_weights that does not exist; the Variable
    attributes give the same initial values through any mxnet initializer.
    """
    name = 'conv%d_1' % stage
    weight = mx.sym.Variable(name + '_weight', lr_mult=1.0, init=mx.init.Normal(0.01))
    bias = mx.sym.Variable(name + '_bias', lr_mult=2.0, wd_mult=0.0, init=mx.init.Constant(0.0))
    body = _conv(body, num_filter, (2, 2), name, weight=weight, bias=bias)
    body = symbol_utils.Act(body, 'prelu', 'relu%d_1' % stage)
    for unit in range(units):
        first, second = 2 + 2 * unit, 3 + 2 * unit
        branch = _conv(body, num_filter, (1, 1), 'conv%d_%d' % (stage, first), no_bias=True)
        branch = symbol_utils.Act(branch, 'prelu', 'relu%d_%d' % (stage, first))
        branch = _conv(branch, num_filter, (1, 1), 'conv%d_%d' % (stage, second), no_bias=True)
        branch = symbol_utils.Act(branch, 'prelu', 'relu%d_%d' % (stage, second))
        body = body + branch
    return body


def get_symbol(config):
    """SphereNet-<config.num_layers> on the normalised `data`, ending in FullyConnected `fc1`.

    There is no BatchNorm anywhere and config.net_output is not used: fc1 (emb_size outputs, bias
    with lr_mult 2 / wd_mult 0) reads the flattened 7x7x512 map directly.
    """
    num_layers = config.get('num_layers')
    if num_layers not in UNITS_PER_STAGE:
        raise ValueError("num_layers=%r is not a SphereNet depth; expected one of %s"
                         % (num_layers, sorted(UNITS_PER_STAGE)))
    # The residual adds and the normalisation are unnamed; a fresh NameManager makes their names
    # the same on every build.
    with mx.name.NameManager():
        body = symbol_utils.normalize_input(mx.sym.Variable('data'))
        for stage, (num_filter, units) in enumerate(zip(FILTERS, UNITS_PER_STAGE[num_layers]), start=1):
            body = _stage(body, stage, num_filter, units)
        weight = mx.sym.Variable('fc1_weight', lr_mult=1.0)
        bias = mx.sym.Variable('fc1_bias', lr_mult=2.0, wd_mult=0.0)
        return mx.sym.FullyConnected(data=body, weight=weight, bias=bias, num_hidden=config.emb_size,
                                     name='fc1')
