"""Graph rewrites that make a saved or freshly built Symbol run faster on CPU, with identical outputs."""
import json

import mxnet as mx

# Names of a replacement sub-graph's inputs; spliced onto the replaced node's own inputs.
_PLACEHOLDER = '__rewrite_input%d__'


def fast_prelu(data, gamma, num_channels, name, shared=False):
    """PReLU of 4-D `data` with per-channel `gamma` (or one shared slope), from oneDNN-native operators.

    prelu(x) = relu(x) + (-gamma) * relu((-1) * x), both products being depthwise 1x1
    convolutions: oneDNN fuses the first with its relu and the second with the sum. Every step is
    exact, so outputs and gradients equal LeakyReLU(act_type='prelu') (the gamma gradient up to
    summation order), except the data gradient at exactly x = 0: 0 here, gamma there (both
    valid; relu's slope at 0 is 0). The output keeps the name `name`. shared=True takes a (1,)
    `gamma` (Gluon's nn.PReLU) and spreads it over the channels.
    """
    # Few, tiny weight operators (run on every forward; they cost about 10% at batch 1): the -1
    # kernel is a constant, and multiplying by a constant (C,) vector, unlike a reshape, lets
    # shape inference find gamma's (C,) from the data shape alone.
    minus_one = mx.sym.full(shape=(num_channels, 1, 1, 1), val=-1.0, name=name + '_minus_one')
    minus_ones = mx.sym.full(shape=(num_channels,), val=-1.0, name=name + '_minus_ones')
    if shared:
        gamma = mx.sym.broadcast_to(gamma, shape=(num_channels,), name=name + '_spread')
    minus_gamma = mx.sym.elemwise_mul(gamma, minus_ones, name=name + '_minus_gamma')
    minus_gamma = mx.sym.reshape(minus_gamma, shape=(num_channels, 1, 1, 1), name=name + '_minus_gamma_w')
    return _exact_prelu(data, minus_one, minus_gamma, num_channels, name)


def _depthwise(data, weight, num_channels, name):
    """Depthwise 1x1 convolution: channel c times weight[c] (a (C, 1, 1, 1) symbol)."""
    return mx.sym.Convolution(data, weight=weight, num_filter=num_channels, num_group=num_channels,
                              kernel=(1, 1), no_bias=True, name=name)


def _exact_prelu(data, minus_one, minus_gamma, num_channels, name):
    """relu(x) + (-gamma) * relu((-1) * x) with the (C, 1, 1, 1) weights -1 and -gamma given."""
    negated = _depthwise(data, minus_one, num_channels, name + '_negate')
    negative_part = mx.sym.Activation(negated, act_type='relu', name=name + '_negative_part')
    scaled = _depthwise(negative_part, minus_gamma, num_channels, name + '_scale')
    # relu(x) feeds only the sum: oneDNN's fused conv+sum accumulates into that operand's buffer,
    # and mxnet 1.9.1's inference graph computes wrong values when the operand has other
    # consumers (as x - relu(x) = x + (-1) * relu(x) did).
    positive_part = mx.sym.Activation(data, act_type='relu', name=name + '_positive_part')
    return mx.sym.elemwise_add(scaled, positive_part, name=name)


def _is_prelu(node):
    return node['op'] == 'LeakyReLU' and node.get('attrs', {}).get('act_type') == 'prelu'


def _placeholders(count):
    return [mx.sym.Variable(_PLACEHOLDER % i) for i in range(count)]


def _replace_nodes(sym, replace):
    """A copy of `sym` where replace(node, nodes, inputs) may swap an operator node for a sub-graph.

    `replace` gets the JSON node, all JSON nodes (to look its inputs up) and one placeholder
    Variable per node input; it returns None (keep the node) or a Symbol built on those
    placeholders (and on new Variables, which become new arguments) whose first output takes
    the node's place.
    """
    graph = json.loads(sym.tojson())
    new_nodes = []
    moved = {}  # old node index -> (new node index, output index or None to keep the old one)

    def entry(old):
        new_index, output = moved[old[0]]
        return [new_index, old[1] if output is None else output, 0]

    for index, node in enumerate(graph['nodes']):
        replacement = None
        if node['op'] != 'null':
            replacement = replace(node, graph['nodes'], _placeholders(len(node['inputs'])))
        if replacement is None:
            copied = dict(node)
            copied['inputs'] = [entry(i) for i in node['inputs']]
            new_nodes.append(copied)
            moved[index] = (len(new_nodes) - 1, None)
            continue
        # Splice the sub-graph in: its placeholders become the node's own input entries.
        sub = json.loads(replacement.tojson())
        inputs = {_PLACEHOLDER % i: entry(old) for i, old in enumerate(node['inputs'])}
        sub_entries = {}  # sub-graph node index -> entry of its output 0 in the new graph

        def sub_entry(sub_input):
            first = sub_entries[sub_input[0]]
            return [first[0], first[1] + sub_input[1], 0]

        for sub_index, sub_node in enumerate(sub['nodes']):
            if sub_node['op'] == 'null' and sub_node['name'] in inputs:
                sub_entries[sub_index] = inputs[sub_node['name']]
                continue
            copied = dict(sub_node)
            copied['inputs'] = [sub_entry(i) for i in sub_node['inputs']]
            new_nodes.append(copied)
            sub_entries[sub_index] = [len(new_nodes) - 1, 0, 0]
        head = sub_entry(sub['heads'][0])
        moved[index] = (head[0], head[1])

    graph['nodes'] = new_nodes
    graph['arg_nodes'] = [i for i, node in enumerate(new_nodes) if node['op'] == 'null']
    graph['heads'] = [entry(h) for h in graph['heads']]
    # Derived data (output offsets per node) that mxnet recomputes on load.
    graph.pop('node_row_ptr', None)
    return mx.sym.load_json(json.dumps(graph))


def _rewritable_prelus(sym, data_shape):
    """{node name: (channel count, shared slope?)} of the PReLUs on 4-D inputs in `sym`."""
    internals = sym.get_internals()
    try:
        arg_shapes, out_shapes, _ = internals.infer_shape_partial(data=tuple(data_shape))
    except mx.base.MXNetError as err:
        raise ValueError("cannot infer the PReLU channel counts with data shape %s: %s; pass the "
                         "network's input shape as data_shape=(1, 3, height, width)"
                         % (tuple(data_shape), str(err).splitlines()[0])) from None
    outputs = dict(zip(internals.list_outputs(), out_shapes or []))
    args = dict(zip(internals.list_arguments(), arg_shapes or []))
    nodes = json.loads(sym.tojson())['nodes']
    channels = {}
    for node in nodes:
        if not _is_prelu(node):
            continue
        shape = tuple(outputs.get(node['name'] + '_output') or ())
        gamma_shape = tuple(args.get(nodes[node['inputs'][1][0]]['name']) or ())
        if len(shape) == 4 and shape[1] > 0 and gamma_shape in ((shape[1],), (1,)):
            channels[node['name']] = (shape[1], gamma_shape == (1,) and shape[1] != 1)
    return channels


def fast_prelu_symbol(sym, data_shape=(1, 3, 112, 112)):
    """`sym` with every per-channel LeakyReLU(prelu) on a 4-D input replaced by fast_prelu.

    The arguments (names, order, attributes such as the gammas' Constant(0.25) init) and the
    outputs' names stay the same, so the same params load and `<name>_output` internals still
    exist. A PReLU with one shared slope (Gluon nn.PReLU) is rewritten too; one on a 2-D input
    (an embedding head, a tiny tensor) is left as it is.
    `data_shape` is only used to learn channel counts; any size the network accepts will do.
    """
    if not any(_is_prelu(node) for node in json.loads(sym.tojson())['nodes']):
        return sym
    channels = _rewritable_prelus(sym, data_shape)

    def replace(node, nodes, inputs):
        if node['name'] not in channels:
            return None
        count, shared = channels[node['name']]
        return fast_prelu(inputs[0], inputs[1], count, node['name'], shared=shared)

    return _replace_nodes(sym, replace)


def prelu_for_inference(sym, arg_params, data_shape=(1, 3, 112, 112)):
    """(symbol, arg_params) running every per-channel PReLU of `sym` as 2 oneDNN operators.

    For inference only: the slopes are read from arg_params once and turned into depthwise 1x1
    weights (new `<name>_linear_weight` / `<name>_kink_weight` params added to a copy of
    arg_params), so no weight arithmetic runs per forward. With all slopes of a PReLU at most 1,
    prelu(x) = relu((1 - gamma) * x) + gamma * x: the relu fuses into its convolution and the sum
    into it too, 2 operators instead of fast_prelu's 3 (the two terms add up to x with one
    rounding for x > 0, so outputs match to float precision, not bit for bit). A PReLU with a
    slope above 1 is concave, which no relu plus linear term can give: it keeps fast_prelu's
    exact form, with `<name>_negate_weight` (-1) and `<name>_scale_weight` (-gamma) as params.
    A shared slope (Gluon's nn.PReLU) is spread over the channels; 2-D PReLUs are left as they are.
    """
    channels = _rewritable_prelus(sym, data_shape)
    params = dict(arg_params)

    def replace(node, nodes, inputs):
        name = node['name']
        if name not in channels:
            return None
        gamma_name = nodes[node['inputs'][1][0]]['name']
        if gamma_name not in arg_params:
            raise ValueError("arg_params has no %r: the slopes of PReLU %r are needed to rewrite it "
                             "for inference" % (gamma_name, name))
        count, shared = channels[name]
        gamma = arg_params[gamma_name].astype('float32').reshape((-1, 1, 1, 1))
        if shared:
            gamma = mx.nd.broadcast_to(gamma, shape=(count, 1, 1, 1))
        def weight(suffix, value):
            params[name + suffix] = value
            return mx.sym.Variable(name + suffix, shape=(count, 1, 1, 1))

        if float(gamma.max().asscalar()) <= 1.0:
            linear = _depthwise(inputs[0], weight('_linear_weight', gamma), count, name + '_linear')
            kink = _depthwise(inputs[0], weight('_kink_weight', 1.0 - gamma), count, name + '_kink')
            kink = mx.sym.Activation(kink, act_type='relu', name=name + '_kink_relu')
            # The sum's other operand feeds nothing else (see _exact_prelu).
            return mx.sym.elemwise_add(kink, linear, name=name)
        return _exact_prelu(inputs[0], weight('_negate_weight', mx.nd.full((count, 1, 1, 1), -1.0)),
                            weight('_scale_weight', -gamma), count, name)

    if not channels:
        return sym, params
    return _replace_nodes(sym, replace), params


def flatten_fc_inputs(sym):
    """`sym` with an explicit Flatten before every flattening FullyConnected: identical outputs.

    Works around mxnet 1.9.1's oneDNN inference graph (bound with for_training=False), where a
    FullyConnected fed straight by a 4-D convolution output (the GDC head: 7x7 depthwise conv,
    BatchNorm, pre_fc1) fails from the second forward on with "We can't generate TBlob for
    MKLDNN data". Binding for inference is what turns on oneDNN's conv+BN+act fusion.
    """
    def replace(node, nodes, inputs):
        attrs = node.get('attrs', {})
        if node['op'] != 'FullyConnected' or attrs.get('flatten', 'True').lower() not in ('true', '1'):
            return None
        if nodes[node['inputs'][0][0]]['op'] == 'Flatten':
            return None
        flat = mx.sym.Flatten(inputs[0], name=node['name'] + '_flatten')
        return mx.sym.FullyConnected(flat, *inputs[1:], name=node['name'], **attrs)

    return _replace_nodes(sym, replace)


def cpu_inference_model(sym, arg_params, data_shape=(1, 3, 112, 112)):
    """prelu_for_inference and flatten_fc_inputs: bind the result with for_training=False."""
    sym, arg_params = prelu_for_inference(sym, arg_params, data_shape)
    return flatten_fc_inputs(sym), arg_params
