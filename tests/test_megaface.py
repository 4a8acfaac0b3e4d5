"""MegaFace tools: the feature file format, gen_megaface on a tiny list, remove_noises' rules."""
import os
import struct

import cv2
import mxnet as mx
import numpy as np
import pytest

from common import checkpoint
from recognition.eval.megaface import gen_megaface, remove_noises
from recognition.eval.megaface.feature_file import encode_feature, read_feature, write_feature
from recognition.symbol import get_embedding_symbol


# ---- feature files ----

def test_feature_file_bytes_header_and_round_trip(tmp_path):
    values = [1.0, -2.5, 0.25]
    expected = (b'\x03\x00\x00\x00' b'\x01\x00\x00\x00' b'\x04\x00\x00\x00' b'\x05\x00\x00\x00'
                + b'\x00\x00\x80\x3f' + b'\x00\x00\x20\xc0' + b'\x00\x00\x80\x3e')
    assert encode_feature(values) == expected
    # what the 2019 writer produced: struct '4i' then '%df' in native (x86: little-endian) order
    assert expected == struct.pack('4i', 3, 1, 4, 5) + struct.pack('3f', *values)

    path = str(tmp_path / 'a.jpg_insightface.bin')
    write_feature(path, np.arange(512, dtype=np.float64) / 7)
    with open(path, 'rb') as f:
        data = f.read()
    assert len(data) == 16 + 512 * 4
    assert struct.unpack('4i', data[:16]) == (512, 1, 4, 5)
    back = read_feature(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, (np.arange(512) / 7).astype(np.float32))
    assert os.listdir(str(tmp_path)) == ['a.jpg_insightface.bin']


def test_malformed_feature_files_are_rejected(tmp_path):
    short = tmp_path / 'short.bin'
    short.write_bytes(b'\x01\x00')
    with pytest.raises(ValueError, match='too short'):
        read_feature(str(short))
    truncated = tmp_path / 'truncated.bin'
    truncated.write_bytes(struct.pack('4i', 4, 1, 4, 5) + b'\x00' * 12)
    with pytest.raises(ValueError, match='4 values'):
        read_feature(str(truncated))
    matrix = tmp_path / 'matrix.bin'
    matrix.write_bytes(struct.pack('4i', 2, 2, 8, 5) + b'\x00' * 16)
    with pytest.raises(ValueError, match=r'\(rows, 1, 4, 5\)'):
        read_feature(str(matrix))


# ---- gen_megaface ----

@pytest.fixture(scope='module')
def model_prefixes(tmp_path_factory):
    """Two MobileFaceNet checkpoints with different weights (16-d and 8-d embeddings).

    (A freshly initialised MobileNet's activations vanish to ~1e-16, which sklearn's normalize
    leaves as they are: no use for comparing features.)
    """
    from recognition import config_loader
    prefixes = []
    directory = tmp_path_factory.mktemp('megaface-models')
    for seed, emb_size in ((1, 16), (2, 8)):
        config = config_loader.generate(config_loader.load_sample_config(), 'y1', 'emore', 'arcface')
        config.emb_size = emb_size
        symbol = get_embedding_symbol(config)
        module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
        module.bind(data_shapes=[('data', (1, 3, 112, 112))], for_training=False)
        mx.random.seed(seed)
        module.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2))
        prefix = str(directory / ('model-%d' % seed))
        checkpoint.save_checkpoint(prefix, 0, symbol, *module.get_params())
        prefixes.append(prefix)
    return prefixes


_REFERENCE_MODULES = {}


def forward_one(prefix, chw):
    """fc1 of one RGB CHW image, straight through MXNet (one module per checkpoint)."""
    if prefix not in _REFERENCE_MODULES:
        symbol, arg_params, aux_params = checkpoint.load_checkpoint(prefix, 0)
        module = mx.mod.Module(symbol.get_internals()['fc1_output'], label_names=None,
                               context=mx.cpu())
        module.bind(data_shapes=[('data', (1,) + chw.shape)])
        module.set_params(arg_params, aux_params)
        _REFERENCE_MODULES[prefix] = module
    module = _REFERENCE_MODULES[prefix]
    module.forward(mx.io.DataBatch(data=(mx.nd.array(chw[np.newaxis].astype(np.float32)),)),
                   is_train=False)
    return module.get_outputs()[0].asnumpy().reshape(-1)


def unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture
def tiny_lists(tmp_path, shared_dir):
    """FaceScrub (Name/file) and MegaFace (a1/a2/file) trees of 112x112 ORL faces, and their lists."""
    images = {}
    fs_root, mf_root = tmp_path / 'fs_images', tmp_path / 'mf_images'
    fs_rel = ['Person_A/Person_A_1.png', 'Person_A/Person_A_2.png', 'Person_B/Person_B_1.png']
    mf_rel = ['123/45/111.jpg', '123/45/222.jpg', '9/77/333.png']
    for n, (root, rel) in enumerate([(fs_root, r) for r in fs_rel] + [(mf_root, r) for r in mf_rel]):
        grey = cv2.imread(os.path.join(shared_dir, 'data', 'orl_faces', 's%d' % (n + 1), '1.pgm'))
        img = cv2.resize(grey, (112, 112))
        img[:, :56, 2] = 255 - img[:, :56, 2]  # colour and asymmetry: catches BGR/RGB and flip mix-ups
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 100])
        images[rel] = cv2.imread(str(path))
    fs_lst, mf_lst = tmp_path / 'facescrub_lst', tmp_path / 'megaface_lst'
    fs_lst.write_text('\n'.join(fs_rel) + '\nPerson_B/missing.png\n')
    mf_lst.write_text('\n'.join(mf_rel) + '\n\n')
    return dict(fs_root=str(fs_root), mf_root=str(mf_root), fs_lst=str(fs_lst), mf_lst=str(mf_lst),
                fs_rel=fs_rel, mf_rel=mf_rel, images=images, out=str(tmp_path / 'feature_out'))


def run_gen(lists, model, *extra):
    return gen_megaface.main(['--gpu', '-1', '--batch_size', '2', '--algo', 'tiny', '--model', model,
                              '--facescrub-lst', lists['fs_lst'], '--megaface-lst', lists['mf_lst'],
                              '--facescrub-root', lists['fs_root'], '--megaface-root', lists['mf_root'],
                              '--output', lists['out']] + list(extra))


def out_path(lists, tree, rel):
    return os.path.join(lists['out'], tree, os.path.dirname(rel), os.path.basename(rel) + '_tiny.bin')


def test_gen_megaface_writes_flip_summed_unit_features(tiny_lists, model_prefixes, capsys):
    assert run_gen(tiny_lists, model_prefixes[0] + ',0') == 0
    printed = capsys.readouterr().out
    assert 'read error: ' + os.path.join(tiny_lists['fs_root'], 'Person_B/missing.png') in printed
    assert 'writing fs 0 0' in printed and 'fs stat 4 3' in printed
    assert 'writing mf 0 0' in printed and 'mf stat 3 3' in printed
    written = sorted(os.path.relpath(os.path.join(d, f), tiny_lists['out'])
                     for d, _, files in os.walk(tiny_lists['out']) for f in files)
    assert written == sorted(['facescrub/Person_A/Person_A_1.png_tiny.bin',
                              'facescrub/Person_A/Person_A_2.png_tiny.bin',
                              'facescrub/Person_B/Person_B_1.png_tiny.bin',
                              'megaface/123/45/111.jpg_tiny.bin', 'megaface/123/45/222.jpg_tiny.bin',
                              'megaface/9/77/333.png_tiny.bin'])
    for tree, rels in (('facescrub', tiny_lists['fs_rel']), ('megaface', tiny_lists['mf_rel'])):
        for rel in rels:
            feature = read_feature(out_path(tiny_lists, tree, rel))
            rgb = np.transpose(tiny_lists['images'][rel][:, :, ::-1], (2, 0, 1))
            expected = unit(forward_one(model_prefixes[0], rgb)
                            + forward_one(model_prefixes[0], rgb[:, :, ::-1]))
            assert feature.shape == (16,)
            np.testing.assert_allclose(feature, expected, atol=2e-5)


def test_gen_megaface_without_flip_and_with_two_models(tiny_lists, model_prefixes):
    rel = tiny_lists['mf_rel'][2]
    rgb = np.transpose(tiny_lists['images'][rel][:, :, ::-1], (2, 0, 1))
    assert run_gen(tiny_lists, model_prefixes[0] + ',0', '--flip', '0', '--skip-facescrub') == 0
    assert not os.path.exists(os.path.join(tiny_lists['out'], 'facescrub'))
    np.testing.assert_allclose(read_feature(out_path(tiny_lists, 'megaface', rel)),
                               unit(forward_one(model_prefixes[0], rgb)), atol=2e-5)

    assert run_gen(tiny_lists, '%s,0|%s,0' % tuple(model_prefixes), '--skip-megaface') == 0
    rel = tiny_lists['fs_rel'][1]
    rgb = np.transpose(tiny_lists['images'][rel][:, :, ::-1], (2, 0, 1))
    parts = [unit(forward_one(p, rgb) + forward_one(p, rgb[:, :, ::-1])) for p in model_prefixes]
    feature = read_feature(out_path(tiny_lists, 'facescrub', rel))
    assert feature.shape == (24,)
    np.testing.assert_allclose(feature, unit(np.concatenate(parts)), atol=2e-5)


def test_gen_megaface_rejects_unaligned_images_and_bad_lists(tiny_lists, model_prefixes, tmp_path):
    big = tmp_path / 'big' / 'P' / 'x.png'
    big.parent.mkdir(parents=True)
    cv2.imwrite(str(big), np.zeros((120, 100, 3), np.uint8))
    (tmp_path / 'big_lst').write_text('P/x.png\n')
    with pytest.raises(ValueError, match='is 120x100'):
        run_gen(dict(tiny_lists, fs_lst=str(tmp_path / 'big_lst'), fs_root=str(tmp_path / 'big')),
                model_prefixes[0] + ',0', '--skip-megaface')
    (tmp_path / 'flat_lst').write_text('x.jpg\n')
    with pytest.raises(ValueError, match='a1/a2/file'):
        run_gen(dict(tiny_lists, mf_lst=str(tmp_path / 'flat_lst')), model_prefixes[0] + ',0',
                '--skip-facescrub')
    with pytest.raises(SystemExit):
        gen_megaface.parse_args([])  # no --model


# ---- remove_noises ----

def write_tree(root, tree, rels, features):
    for rel, feature in zip(rels, features):
        directory = os.path.join(root, tree, os.path.dirname(rel))
        os.makedirs(directory, exist_ok=True)
        write_feature(os.path.join(directory, os.path.basename(rel) + '_ins.bin'), feature)


@pytest.fixture
def noisy_set(tmp_path):
    rng = np.random.RandomState(0)
    fs_rel = ['Anna/Anna_1.jpg', 'Anna/Anna_2.jpg', 'Anna/Anna_3.jpg', 'Bob/Bob_1.jpg', 'Bob/Bob_2.jpg']
    mf_rel = ['10/20/a.jpg', '10/20/b.jpg', '11/21/c.jpg']
    dim = 512
    fs_features = [unit(rng.randn(dim)) for _ in fs_rel]
    mf_features = [unit(rng.randn(dim)) for _ in mf_rel]
    write_tree(str(tmp_path / 'in'), 'facescrub', fs_rel, fs_features)
    write_tree(str(tmp_path / 'in'), 'megaface', mf_rel, mf_features)
    (tmp_path / 'fs_lst').write_text('\n'.join(fs_rel) + '\n')
    (tmp_path / 'mf_lst').write_text('\n'.join(mf_rel) + '\n')
    (tmp_path / 'fs_noises.txt').write_text('#file names\nAnna_2.jpg\n')
    (tmp_path / 'mf_noises.txt').write_text('#paths\n7\t10/20/b.jpg\n11/21/c.jpg\n')
    return dict(dir=tmp_path, fs_rel=fs_rel, mf_rel=mf_rel, fs=fs_features, mf=mf_features, dim=dim)


def run_clean(data, out='out', seed='3', **paths):
    d = data['dir']
    argv = ['--algo', 'ins', '--facescrub-lst', str(d / 'fs_lst'), '--megaface-lst', str(d / 'mf_lst'),
            '--facescrub-noises', paths.get('fs_noises', str(d / 'fs_noises.txt')),
            '--megaface-noises', str(d / 'mf_noises.txt'),
            '--feature-dir-input', str(d / 'in'), '--feature-dir-out', str(d / out)]
    return remove_noises.main(argv + (['--seed', seed] if seed is not None else []))


def test_remove_noises_rules(noisy_set, capsys):
    assert run_clean(noisy_set) == 0
    printed = capsys.readouterr().out.split()
    assert printed[:2] == ['seed', '3']
    out = str(noisy_set['dir'] / 'out')

    def cleaned(tree, rel):
        return read_feature(os.path.join(out, tree, os.path.dirname(rel),
                                         os.path.basename(rel) + '_ins.bin'))

    dim = noisy_set['dim']
    for i in (0, 2, 3, 4):  # clean probes: the same values plus an extra 0
        np.testing.assert_array_equal(cleaned('facescrub', noisy_set['fs_rel'][i]),
                                      np.append(noisy_set['fs'][i], 0).astype(np.float32))
    # the noisy probe: Anna's clean sum plus jitter of at most 0.001 per value, normalised
    replaced = cleaned('facescrub', noisy_set['fs_rel'][1])
    centre = (noisy_set['fs'][0].astype(np.float32) + noisy_set['fs'][2].astype(np.float32))
    assert replaced.shape == (dim + 1,) and replaced[dim] == 0
    assert abs(np.linalg.norm(replaced) - 1) < 1e-5
    # the jitter: one uniform draw of the original dimensions per replaced probe, seeded
    jitter = np.zeros(dim + 1, np.float32)
    jitter[:dim] = np.random.RandomState(3).uniform(-0.001, 0.001, dim)
    expected = np.append(centre, np.float32(0)) + jitter
    np.testing.assert_allclose(replaced, expected / np.linalg.norm(expected), rtol=0, atol=1e-7)
    assert np.abs(replaced[:dim] - unit(centre)).max() > 1e-5  # it did move
    # distractors: listed ones (by path, also as 'x<TAB>path') get 100.0, the others 0
    for rel, feature, fill in zip(noisy_set['mf_rel'], noisy_set['mf'], (0.0, 100.0, 100.0)):
        np.testing.assert_array_equal(cleaned('megaface', rel),
                                      np.append(feature, fill).astype(np.float32))

    # seeded: the same output again; another seed moves only the replaced probe
    assert run_clean(noisy_set, out='again') == 0
    anna_2 = os.path.join('facescrub', 'Anna', 'Anna_2.jpg_ins.bin')
    again = read_feature(os.path.join(str(noisy_set['dir']), 'again', anna_2))
    np.testing.assert_array_equal(again, replaced)
    assert run_clean(noisy_set, out='other', seed='4') == 0
    other = read_feature(os.path.join(str(noisy_set['dir']), 'other', anna_2))
    assert not np.array_equal(other, replaced)


def test_remove_noises_errors(noisy_set, capsys):
    with pytest.raises(FileNotFoundError, match='not shipped'):
        run_clean(noisy_set, fs_noises=str(noisy_set['dir'] / 'absent.txt'))
    (noisy_set['dir'] / 'bob_all.txt').write_text('Bob_1.jpg\nBob_2.jpg\n')
    with pytest.raises(ValueError, match="'Bob' has no clean image"):
        run_clean(noisy_set, fs_noises=str(noisy_set['dir'] / 'bob_all.txt'))
    write_feature(str(noisy_set['dir'] / 'in' / 'megaface' / '11' / '21' / 'c.jpg_ins.bin'),
                  np.ones(128))
    with pytest.raises(ValueError, match='128 values, the other features 512'):
        run_clean(noisy_set, out='mixed')


def test_remove_noises_draws_and_prints_a_seed_when_none_is_given(noisy_set, capsys):
    assert run_clean(noisy_set, seed=None) == 0
    printed = capsys.readouterr().out.split()
    assert printed[0] == 'seed' and printed[1].isdigit()
