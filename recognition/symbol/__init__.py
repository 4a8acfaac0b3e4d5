"""Network builders: each module has get_symbol(config) returning the fc1 embedding symbol."""
import importlib

# config.net_name -> module recognition.symbol.<net_name>
NET_NAMES = ('fresnet', 'fmobilefacenet', 'fmobilenet', 'fmnasnet', 'fdensenet',
             'finception_resnet_v2', 'fdpn', 'fxception', 'fmobilenetv2', 'fnasnet', 'spherenet')


def get_embedding_symbol(config):
    """Build the backbone + head named by `config.net_name`; its output is `fc1_output`."""
    net_name = config.get('net_name')
    if net_name not in NET_NAMES:
        raise ValueError("unknown net_name %r in config; expected one of: %s"
                         % (net_name, ', '.join(NET_NAMES)))
    module = importlib.import_module('recognition.symbol.' + net_name)
    return module.get_symbol(config)
