"""Export an embedding checkpoint to ONNX with mxnet's own exporter and check it against MXNet."""
import argparse
import json
import os
import sys
import tempfile

import cv2
import mxnet as mx
import numpy as np

from common import checkpoint
from deploy.face_model import get_model, parse_image_size

# mxnet 1.9.1 only has opset 12 and 13 translations, but stamps the model with the newest opset
# (and IR version) of the installed onnx package, which onnxruntime may not know yet.
EXPORT_OPSET = 13
EXPORT_IR_VERSION = 7
MIN_COSINE = 0.9999


def _is_true(value, default):
    """An MXNet boolean attribute as written in symbol JSON ('True', '1', ...); absent: default."""
    if value is None:
        return default
    return str(value).strip().lower() in ('true', '1')


def _output_names(node, index):
    """How get_internals() may list output `index` of a symbol-JSON node."""
    if node['op'] == 'null':
        return [node['name']]
    return ['%s_output' % node['name'], '%s_output%d' % (node['name'], index)]


def embedding_symbol(symbol, layer='fc1'):
    """The `<layer>_output` internal of a (training or embedding) checkpoint symbol."""
    output = layer + '_output'
    internals = symbol.get_internals()
    if output not in internals.list_outputs():
        raise ValueError("the checkpoint symbol has no %r: expected a recognition network whose "
                         "embedding layer is %r" % (output, layer))
    return internals[output]


def prepare_for_export(symbol, arg_params, aux_params, data_shape):
    """(symbol, params, prelu_ranks) worked around mxnet 1.9.1's exporter bugs.

    - FullyConnected without a `flatten` attribute: MXNet's default is True, the exporter reads
      False and flattens only the last axis. The attribute is written out.
    - BatchNorm with fix_gamma (MXNet's default too): MXNet uses gamma = 1 whatever is stored,
      the exporter takes the stored gamma. Those gammas are exported as ones.
    - PReLU: returned as {gamma name: rank of its input}, fixed after export (see fix_onnx_model).
    """
    graph = json.loads(symbol.tojson())
    nodes = graph['nodes']
    fixed_gammas = set()
    prelu_inputs = {}
    for node in nodes:
        attrs = node.setdefault('attrs', {})
        if node['op'] == 'FullyConnected' and 'flatten' not in attrs:
            attrs['flatten'] = 'True'
        elif node['op'] == 'BatchNorm' and _is_true(attrs.get('fix_gamma'), True):
            fixed_gammas.add(nodes[node['inputs'][1][0]]['name'])
        elif node['op'] == 'LeakyReLU' and attrs.get('act_type') == 'prelu':
            data_id, data_index = node['inputs'][0][:2]
            gamma_name = nodes[node['inputs'][1][0]]['name']
            prelu_inputs[gamma_name] = _output_names(nodes[data_id], data_index)
    symbol = mx.sym.load_json(json.dumps(graph))

    needed = set(symbol.list_arguments()) | set(symbol.list_auxiliary_states())
    params = {}
    for name, value in list(arg_params.items()) + list(aux_params.items()):
        if name in needed:
            params[name] = mx.nd.ones_like(value) if name in fixed_gammas else value
    missing = sorted(needed - set(params) - {'data'})
    if missing:
        raise ValueError("the checkpoint lacks parameters of its own symbol: %s" % ', '.join(missing))

    prelu_ranks = {}
    if prelu_inputs:
        internals = symbol.get_internals()
        _, shapes, _ = internals.infer_shape(data=data_shape)
        rank_of = dict(zip(internals.list_outputs(), (len(s) for s in shapes)))
        for gamma_name, candidates in prelu_inputs.items():
            found = [rank_of[name] for name in candidates if name in rank_of]
            if not found:
                raise ValueError("cannot find the input of the PReLU with slope %r" % gamma_name)
            prelu_ranks[gamma_name] = found[0]
    return symbol, params, prelu_ranks


def fix_onnx_model(model, prelu_ranks, embedding_size=None):
    """Post-export fixes on the onnx ModelProto (in place); returns it.

    - PRelu slopes: MXNet keeps (C,), ONNX broadcasts from the last axis, so on an (N, C, H, W)
      input the slope must be (C, 1, 1).
    - opset / IR version: the translations are opset-13 ones; say so (see EXPORT_OPSET).
    - parameters are also listed as graph inputs: dropped there, so the runtime treats them as
      constants and the only input is the image batch.
    - the dynamic batch dimension is left unnamed: named 'batch' on input and output, and the
      output's embedding size is written in.
    """
    from onnx import numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    for gamma_name, rank in prelu_ranks.items():
        if rank > 2 and gamma_name in initializers:
            init = initializers[gamma_name]
            slope = numpy_helper.to_array(init)
            reshaped = slope.reshape((slope.size,) + (1,) * (rank - 2))
            init.CopyFrom(numpy_helper.from_array(reshaped, gamma_name))
    del model.opset_import[:]
    opset = model.opset_import.add()
    opset.domain, opset.version = '', EXPORT_OPSET
    model.ir_version = EXPORT_IR_VERSION
    inputs = [value for value in model.graph.input if value.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) > 0:
            dims[0].dim_param = 'batch'
    if embedding_size is not None:
        for value in model.graph.output:
            dims = value.type.tensor_type.shape.dim
            if len(dims) == 2:
                dims[1].dim_value = embedding_size
    return model


def export(prefix, epoch, output, image_size=(112, 112), layer='fc1'):
    """Write `<layer>_output` of checkpoint prefix,epoch to `output` as ONNX (dynamic batch)."""
    import onnx  # optional dependency: pip install '.[onnx]'

    symbol, arg_params, aux_params = checkpoint.load_checkpoint(prefix, epoch)
    symbol = embedding_symbol(symbol, layer)
    height, width = image_size
    symbol, params, prelu_ranks = prepare_for_export(symbol, arg_params, aux_params,
                                                     (1, 3, height, width))
    with tempfile.TemporaryDirectory() as scratch:
        raw_path = os.path.join(scratch, 'raw.onnx')
        mx.onnx.export_model(symbol, params, in_shapes=[(1, 3, height, width)],
                             in_types=[np.float32], onnx_file_path=raw_path, dynamic=True,
                             dynamic_input_shapes=[(None, 3, height, width)])
        _, (out_shape,), _ = symbol.infer_shape(data=(1, 3, height, width))
        model = fix_onnx_model(onnx.load(raw_path), prelu_ranks, int(np.prod(out_shape[1:])))
    onnx.checker.check_model(model)
    checkpoint.atomic_write(output, lambda tmp: onnx.save(model, tmp))
    return output


def onnx_session(path):
    """A CPU onnxruntime session for `path`, with the runtime's warnings silenced."""
    import onnxruntime  # optional dependency: pip install '.[onnx]'

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def row_cosines(a, b):
    """Cosine similarity of each row of a with the same row of b."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def load_face(path, image_size=(112, 112)):
    """An image file as an RGB CHW float32 array resized to image_size (h, w)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("cannot read image %s" % path)
    img = cv2.resize(img, (image_size[1], image_size[0]))
    return np.transpose(img[:, :, ::-1], (2, 0, 1)).astype(np.float32)


def compare(onnx_path, model_str, batches, image_size=(112, 112), layer='fc1'):
    """[(label, per-row cosines)] of the ONNX model against MXNet on each (label, NCHW batch)."""
    session = onnx_session(onnx_path)
    input_name = session.get_inputs()[0].name
    reference = get_model(mx.cpu(), image_size, model_str, layer=layer)
    results = []
    for label, batch in batches:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        reference.forward(mx.io.DataBatch(data=(mx.nd.array(batch),)), is_train=False)
        expected = reference.get_outputs()[0].asnumpy()
        got = session.run(None, {input_name: batch})[0]
        if got.shape != expected.shape:
            raise ValueError("%s: ONNX output shape %s differs from MXNet's %s"
                             % (label, got.shape, expected.shape))
        results.append((label, row_cosines(got, expected)))
    return results


def check_batches(image_size, batch_sizes=(1, 3), images=(), seed=0):
    """Random-pixel batches of each size, plus one batch of the given image files."""
    rng = np.random.RandomState(seed)
    height, width = image_size
    batches = [('random batch %d' % n, rng.uniform(0, 255, (n, 3, height, width)))
               for n in batch_sizes]
    if images:
        batches.append(('%d image(s)' % len(images),
                        np.stack([load_face(path, image_size) for path in images])))
    return batches


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--model', required=True, help="checkpoint as 'prefix,epoch'")
    parser.add_argument('--output', required=True, help='ONNX file to write')
    parser.add_argument('--image-size', default='112,112', help="input 'height,width'")
    parser.add_argument('--layer', default='fc1', help='embedding layer whose output is exported')
    parser.add_argument('--check-images', nargs='*', default=[],
                        help='image files (resized to the input size) also compared with MXNet')
    parser.add_argument('--check-batch', type=int, nargs='*', default=[1, 3],
                        help='random batch sizes compared with MXNet (shows the dynamic batch)')
    parser.add_argument('--no-check', action='store_true', help='export only')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    prefix, epoch = checkpoint.parse_model_arg(args.model)
    image_size = parse_image_size(args.image_size)
    export(prefix, epoch, args.output, image_size, args.layer)
    print('exported %s,%d %s_output to %s' % (prefix, epoch, args.layer, args.output))
    if args.no_check:
        return 0
    batches = check_batches(image_size, args.check_batch, args.check_images)
    worst = 1.0
    for label, cosines in compare(args.output, args.model, batches, image_size, args.layer):
        print('%s: min cosine ONNX vs MXNet %.6f' % (label, cosines.min()))
        worst = min(worst, float(cosines.min()))
    ok = worst >= MIN_COSINE
    print('check %s: worst cosine %.6f (needs >= %s)'
          % ('passed' if ok else 'FAILED', worst, MIN_COSINE))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
