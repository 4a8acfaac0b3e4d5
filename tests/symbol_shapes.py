"""Small helpers the backbone tests share: shapes of a symbol's parameters, its graph nodes."""
import json


def shapes_of(sym, data_shape=(1, 3, 112, 112)):
    """(name -> shape of every argument and auxiliary state, output shapes)."""
    args, outs, aux = sym.infer_shape(data=data_shape)
    shapes = dict(zip(sym.list_arguments(), args))
    shapes.update(zip(sym.list_auxiliary_states(), aux))
    return shapes, outs


def graph_nodes(sym):
    return json.loads(sym.tojson())['nodes']
