"""Imports the plain scripts of src/data as modules, so tests can call their main(argv)."""
import importlib.util
import os
import sys

SCRIPTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'src', 'data')


def load_script(name):
    """src/data/<name>.py as module 'src_data_<name>' (registered, so worker processes find it)."""
    module_name = 'src_data_' + name
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(SCRIPTS_DIR, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
