"""sample_config presets, generate_config precedence, config discovery and name checks."""
import os

import pytest

from recognition import config_loader

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Keys and defaults of the 2019 sample_config (spec §1.1 and §1.5).
CONFIG_DEFAULTS = {
    'bn_mom': 0.9, 'workspace': 256, 'emb_size': 512, 'ckpt_embedding': True, 'net_se': 0,
    'net_act': 'prelu', 'net_unit': 3, 'net_input': 1, 'net_blocks': [1, 4, 6, 2], 'net_output': 'E',
    'net_multiplier': 1.0, 'val_targets': ['lfw', 'cfp_fp', 'agedb_30'], 'ce_loss': True,
    'fc7_lr_mult': 1.0, 'fc7_wd_mult': 1.0, 'fc7_no_bias': False, 'max_steps': 0,
    'data_rand_mirror': True, 'data_cutoff': False, 'data_color': 0, 'data_images_filter': 0,
    'count_flops': True,
}
DEFAULT_DEFAULTS = {
    'network': 'r100', 'pretrained': '', 'pretrained_epoch': 1, 'dataset': 'emore', 'loss': 'arcface',
    'frequent': 20, 'verbose': 2000, 'kvstore': 'device', 'end_epoch': 10000, 'lr': 0.1, 'wd': 0.0005,
    'mom': 0.9, 'per_batch_size': 128, 'ckpt': 3, 'lr_steps': '100000,160000,220000',
    'models_root': './models',
}
ORIGINAL_NETWORKS = ['r100', 'r50', 'r50v1', 'd169', 'd201', 'y1', 'y2', 'm1', 'm05', 'mnas', 'mnas05',
                     'mnas025']
ORIGINAL_LOSSES = ['softmax', 'nsoftmax', 'arcface', 'cosface', 'combined', 'triplet', 'atriplet']


def test_sample_config_has_every_original_key_and_default():
    module = config_loader.load_sample_config()
    for key, value in CONFIG_DEFAULTS.items():
        assert module.config[key] == value, key
    for key, value in DEFAULT_DEFAULTS.items():
        assert module.default[key] == value, key
    assert set(ORIGINAL_NETWORKS) <= set(module.network)
    assert set(ORIGINAL_LOSSES) <= set(module.loss)
    assert {'emore', 'retina'} <= set(module.dataset)


def test_margin_presets():
    loss = config_loader.load_sample_config().loss
    margins = {name: (loss[name].loss_s, loss[name].loss_m1, loss[name].loss_m2, loss[name].loss_m3)
               for name in ('nsoftmax', 'arcface', 'cosface', 'combined')}
    assert margins == {'nsoftmax': (64, 1, 0, 0), 'arcface': (64, 1, 0.5, 0),
                       'cosface': (64, 1, 0, 0.35), 'combined': (64, 1, 0.3, 0.2)}


def test_root_and_recognition_sample_config_are_one_file():
    assert os.path.samefile(os.path.join(ROOT, 'sample_config.py'),
                            os.path.join(ROOT, 'recognition', 'sample_config.py'))


def test_generate_applies_loss_then_network_then_dataset():
    module = config_loader.load_sample_config()
    cfg = config_loader.generate(module, 'd169', 'emore', 'triplet')
    # triplet sets per_batch_size 60, d169 (applied later) sets 64: the network wins.
    assert cfg.per_batch_size == 64 and module.default.per_batch_size == 64
    assert cfg.lr == 0.05 and module.default.lr == 0.05
    assert (cfg.network, cfg.dataset, cfg.loss) == ('d169', 'emore', 'triplet')
    assert cfg.num_classes == 85742 and tuple(cfg.image_shape) == (112, 112, 3)
    assert cfg.net_name == 'fdensenet' and cfg.num_layers == 169


def test_triplet_changes_cli_defaults():
    module = config_loader.load_sample_config()
    config_loader.generate(module, 'r100', 'emore', 'triplet')
    assert module.default.per_batch_size == 60 and module.default.lr == 0.05


def test_generate_mutates_in_place_like_the_original_but_fresh_loads_are_clean():
    module = config_loader.load_sample_config()
    config_loader.generate(module, 'y1', 'emore', 'arcface')
    assert module.config.emb_size == 128
    # A second call in the same module keeps keys the first one set (the 2019 behaviour) ...
    config_loader.generate(module, 'r100', 'emore', 'arcface')
    assert module.config.net_output == 'GDC'
    # ... while a fresh load starts from the file again.
    fresh = config_loader.generate(config_loader.load_sample_config(), 'r100', 'emore', 'arcface')
    assert fresh.net_output == 'E' and fresh.emb_size == 512


def test_num_workers_from_dmlc_env(monkeypatch):
    monkeypatch.setenv('DMLC_NUM_WORKER', '3')
    cfg = config_loader.generate(config_loader.load_sample_config(), 'r100', 'emore', 'arcface')
    assert cfg.num_workers == 3
    monkeypatch.delenv('DMLC_NUM_WORKER')
    cfg = config_loader.generate(config_loader.load_sample_config(), 'r100', 'emore', 'arcface')
    assert cfg.num_workers == 1


@pytest.mark.parametrize('kind,args', [('network', ('r101', 'emore', 'arcface')),
                                       ('dataset', ('r100', 'webface', 'arcface')),
                                       ('loss', ('r100', 'emore', 'sphereface2'))])
def test_unknown_preset_names_list_the_valid_ones(kind, args):
    module = config_loader.load_sample_config()
    with pytest.raises(ValueError) as err:
        config_loader.generate(module, *args)
    message = str(err.value)
    assert '--' + kind in message
    valid = {'network': 'r100', 'dataset': 'emore', 'loss': 'arcface'}[kind]
    assert valid in message


def test_find_config_prefers_cwd_then_script_dir(tmp_path, monkeypatch):
    cwd, script_dir = tmp_path / 'cwd', tmp_path / 'scripts'
    cwd.mkdir()
    script_dir.mkdir()
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as err:
        config_loader.find_config_file(str(script_dir))
    assert 'cp sample_config.py config.py' in str(err.value)
    (script_dir / 'config.py').write_text('x = 1\n')
    assert config_loader.find_config_file(str(script_dir)) == str(script_dir / 'config.py')
    (cwd / 'config.py').write_text('x = 2\n')
    assert config_loader.find_config_file(str(script_dir)) == str(cwd / 'config.py')


def test_config_file_missing_names_is_reported(tmp_path):
    path = tmp_path / 'config.py'
    path.write_text('config = {}\n')
    with pytest.raises(AttributeError, match='default'):
        config_loader.load_config_module(str(path))


def test_copied_config_edits_take_effect(tmp_path):
    src = open(config_loader.SAMPLE_CONFIG).read()
    path = tmp_path / 'config.py'
    path.write_text(src + '\nconfig.emb_size = 64\nnetwork.tiny = {"net_name": "fresnet", "num_layers": 18}\n')
    module = config_loader.load_config_module(str(path))
    cfg = config_loader.generate(module, 'tiny', 'emore', 'softmax')
    assert cfg.emb_size == 64 and cfg.num_layers == 18
