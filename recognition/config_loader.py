"""Finds and loads the user's config.py (or the packaged sample) and checks preset names."""
import importlib.util
import os

SAMPLE_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'sample_config.py')


def load_config_module(path):
    """Execute a config file as a fresh module: every call returns new, unmutated globals."""
    if not os.path.isfile(path):
        raise FileNotFoundError("config file %s does not exist" % path)
    spec = importlib.util.spec_from_file_location('config', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ('config', 'default', 'generate_config', 'network', 'dataset', 'loss'):
        if not hasattr(module, name):
            raise AttributeError("config file %s defines no %r; start again from sample_config.py "
                                 "(cp sample_config.py config.py)" % (path, name))
    return module


def find_config_file(script_dir):
    """config.py in the current directory, else beside the script; a clear error if neither."""
    candidates = [os.path.abspath('config.py'), os.path.join(os.path.abspath(script_dir), 'config.py')]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise SystemExit("no config.py found (looked in %s). Create one from the sample: "
                     "cp sample_config.py config.py" % ' and '.join(dict.fromkeys(candidates)))


def load_sample_config():
    """A fresh copy of the packaged sample_config.py."""
    return load_config_module(SAMPLE_CONFIG)


def check_preset_names(module, network=None, dataset=None, loss=None):
    """Raise ValueError naming the valid choices when a --network/--dataset/--loss is unknown."""
    for kind, name, presets in (('network', network, module.network), ('dataset', dataset, module.dataset),
                                ('loss', loss, module.loss)):
        if name is not None and name not in presets:
            raise ValueError("unknown --%s %r; valid names: %s"
                             % (kind, name, ', '.join(sorted(presets.keys()))))


def generate(module, network, dataset, loss):
    """Check the three names, then run the config file's generate_config; returns module.config."""
    check_preset_names(module, network, dataset, loss)
    module.generate_config(network, dataset, loss)
    return module.config
