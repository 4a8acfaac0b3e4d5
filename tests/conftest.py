"""Shared fixtures: fresh configs, the ../shared reference folder, quiet and threaded MXNet."""
import os

os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')
os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))

import pytest  # noqa: E402

from recognition import config_loader  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(os.path.dirname(REPO_ROOT), 'shared')


@pytest.fixture
def make_config():
    """make_config('y1', loss='arcface', **overrides) -> a generated config from a fresh sample copy."""
    def _make(network, dataset='emore', loss='arcface', **overrides):
        module = config_loader.load_sample_config()
        cfg = config_loader.generate(module, network, dataset, loss)
        cfg.update(overrides)
        return cfg
    return _make


@pytest.fixture
def shared_dir():
    """../shared beside the project; CI provides it, so its absence is an error, not a skip."""
    assert os.path.isdir(SHARED_DIR), "expected the shared reference folder at %s" % SHARED_DIR
    return SHARED_DIR
