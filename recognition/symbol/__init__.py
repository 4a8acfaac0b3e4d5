"""Network builders: each module has get_symbol(config) returning the fc1 embedding symbol."""
import importlib

from common import symbol_rewrite

# config.net_name -> module recognition.symbol.<net_name>
NET_NAMES = ('fresnet', 'fmobilefacenet', 'fmobilenet', 'fmnasnet', 'fdensenet',
             'finception_resnet_v2', 'fdpn', 'fxception', 'fmobilenetv2', 'fnasnet', 'spherenet')


def get_embedding_symbol(config, fast_prelu=False):
    """Build the backbone + head named by `config.net_name`; its output is `fc1_output`.

    fast_prelu=True runs every per-channel PReLU as oneDNN-native operators (same arguments,
    same outputs; see common/symbol_rewrite.py); False gives the 2019 graph.
    """
    net_name = config.get('net_name')
    if net_name not in NET_NAMES:
        raise ValueError("unknown net_name %r in config; expected one of: %s"
                         % (net_name, ', '.join(NET_NAMES)))
    module = importlib.import_module('recognition.symbol.' + net_name)
    sym = module.get_symbol(config)
    if fast_prelu:
        height, width = config.get('image_shape', (112, 112, 3))[:2]
        sym = symbol_rewrite.fast_prelu_symbol(sym, data_shape=(1, 3, height, width))
    return sym
