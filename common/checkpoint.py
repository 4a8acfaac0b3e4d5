"""MXNet checkpoints (prefix-symbol.json + prefix-NNNN.params): atomic saving, loading with clear errors."""
import logging
import os
import uuid

import mxnet as mx


def symbol_path(prefix):
    return '%s-symbol.json' % prefix


def params_path(prefix, epoch):
    return '%s-%04d.params' % (prefix, epoch)


def parse_model_arg(text, default_epoch=None):
    """'prefix,epoch' -> (prefix, epoch); a bare prefix takes `default_epoch` (error if None)."""
    prefix, sep, epoch = str(text).rpartition(',')
    if not sep:
        if default_epoch is None:
            raise ValueError("expected a model as 'prefix,epoch' (e.g. ./models/model-r100,0), got %r"
                             % text)
        return text, int(default_epoch)
    try:
        return prefix, int(epoch)
    except ValueError:
        raise ValueError("the epoch in %r must be an integer, as in 'prefix,epoch'" % text) from None


def _temporary(path):
    directory, name = os.path.split(os.path.abspath(path))
    return os.path.join(directory, '.%s.%s.tmp' % (name, uuid.uuid4().hex[:8]))


def atomic_write(path, write):
    """Call write(tmp_path), then rename tmp_path to path; nothing is left under path on failure."""
    tmp = _temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params):
    """mx.model.save_checkpoint's files and keys, each written to a temporary name then renamed.

    The params go first: a symbol file that is newer than its params is never seen.
    """
    save_dict = {'arg:%s' % k: v.as_in_context(mx.cpu()) for k, v in arg_params.items()}
    save_dict.update({'aux:%s' % k: v.as_in_context(mx.cpu()) for k, v in aux_params.items()})
    path = params_path(prefix, epoch)
    atomic_write(path, lambda tmp: mx.nd.save(tmp, save_dict))
    if symbol is not None:
        atomic_write(symbol_path(prefix), symbol.save)
    logging.info('Saved checkpoint to "%s"', path)
    return path


def load_params(path):
    """(arg_params, aux_params) from a .params file, with the file named in every error."""
    if not os.path.isfile(path):
        raise FileNotFoundError("checkpoint parameters %s do not exist" % path)
    try:
        saved = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise ValueError("cannot read checkpoint parameters %s: %s"
                         % (path, str(err).splitlines()[0])) from None
    if not isinstance(saved, dict):
        raise ValueError("%s holds an unnamed array list, not 'arg:'/'aux:' parameters" % path)
    arg_params, aux_params = {}, {}
    for key, value in saved.items():
        kind, _, name = key.partition(':')
        if kind == 'arg':
            arg_params[name] = value
        elif kind == 'aux':
            aux_params[name] = value
        else:
            raise ValueError("%s: parameter key %r is neither 'arg:<name>' nor 'aux:<name>'"
                             % (path, key))
    return arg_params, aux_params


def load_checkpoint(prefix, epoch):
    """(symbol, arg_params, aux_params) like mx.model.load_checkpoint, naming a missing file."""
    sym_file = symbol_path(prefix)
    if not os.path.isfile(sym_file):
        raise FileNotFoundError("checkpoint symbol %s does not exist (model prefix %r, epoch %d)"
                                % (sym_file, prefix, epoch))
    arg_params, aux_params = load_params(params_path(prefix, epoch))
    try:
        symbol = mx.sym.load(sym_file)
    except mx.base.MXNetError as err:
        raise ValueError("cannot read checkpoint symbol %s: %s"
                         % (sym_file, str(err).splitlines()[0])) from None
    return symbol, arg_params, aux_params


def checkpoint_epochs(prefix):
    """Epoch numbers of the prefix-NNNN.params files that exist, newest first."""
    directory = os.path.dirname(os.path.abspath(prefix))
    base = os.path.basename(prefix) + '-'
    epochs = []
    for name in os.listdir(directory) if os.path.isdir(directory) else []:
        if name.startswith(base) and name.endswith('.params'):
            number = name[len(base):-len('.params')]
            if number.isdigit():
                epochs.append(int(number))
    return sorted(epochs, reverse=True)


def load_inference_module(prefix, epoch, ctx, data_shape, layer='fc1', fast_cpu=True):
    """A Module running `<layer>_output` of a checkpoint, bound for inference at `data_shape`.

    The loaded graph gets an explicit Flatten before each FullyConnected (mxnet 1.9.1's oneDNN
    inference graph needs it for 2019 GDC heads) and, on a CPU context with fast_cpu, PReLU as
    two oneDNN operators with weights computed from the slopes once (prelu_for_inference);
    outputs are the same to float precision either way. Extra params (fc7 of a training
    checkpoint) are ignored.
    """
    from common import symbol_rewrite  # imported here: only inference needs the rewrites

    symbol, arg_params, aux_params = load_checkpoint(prefix, epoch)
    output = layer + '_output'
    internals = symbol.get_internals()
    if output not in internals.list_outputs():
        raise ValueError("%s has no %r layer: expected a network whose embedding layer is named %r"
                         % (symbol_path(prefix), output, layer))
    symbol = internals[output]
    contexts = ctx if isinstance(ctx, (list, tuple)) else [ctx]
    if fast_cpu and all(c.device_type == 'cpu' for c in contexts):
        symbol, arg_params = symbol_rewrite.prelu_for_inference(symbol, arg_params,
                                                                (1,) + tuple(data_shape[1:]))
    symbol = symbol_rewrite.flatten_fc_inputs(symbol)
    model = mx.mod.Module(symbol=symbol, context=ctx, label_names=None)
    model.bind(data_shapes=[('data', tuple(data_shape))], for_training=False)
    model.set_params(arg_params, aux_params, allow_extra=True)
    return model
