"""Tests for the src/data tools dataset_relabel, dataset_c2c and dataset_clean."""
import os
import re
import warnings

import cv2
import mxnet as mx
import numpy as np
import pytest

from common import checkpoint, record_io
from common.record_io import RecordReader
from script_loader import load_script


dataset_relabel = load_script('dataset_relabel')
dataset_c2c = load_script('dataset_c2c')
dataset_clean = load_script('dataset_clean')

SIZE = (8, 8)
# fc1 scales red, green, blue differently (exactly, powers of 2), so channel order matters.
CHANNEL_SCALES = np.array([1.0, 0.5, 0.25])


def pixel_image(colour, seed):
    """PNG bytes of an 8x8 noise image whose pixel (0, 0) has the RGB `colour`."""
    rng = np.random.RandomState(seed)
    rgb = rng.randint(0, 256, SIZE + (3,)).astype(np.uint8)
    rgb[0, 0] = colour
    return cv2.imencode('.png', rgb[:, :, ::-1])[1].tobytes()  # BGR on disk, as face2rec2


def save_pixel_model(prefix, full_graph):
    """A checkpoint whose fc1 embedding is exactly CHANNEL_SCALES * the RGB colour of pixel (0, 0).

    full_graph: the training graph with an fc7 + softmax head (train.py, ckpt_embedding = False);
    otherwise only fc1, saved the way train.py saves it by default.
    """
    fc1 = mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Variable('data')), num_hidden=3, name='fc1')
    weight = np.zeros((3, 3 * SIZE[0] * SIZE[1]), np.float32)
    for channel in range(3):
        # CHW order: the first pixel of each channel
        weight[channel, channel * SIZE[0] * SIZE[1]] = CHANNEL_SCALES[channel]
    params = {'fc1_weight': mx.nd.array(weight), 'fc1_bias': mx.nd.zeros(3)}
    if full_graph:
        rng = np.random.RandomState(0)
        sym = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(fc1, num_hidden=4, name='fc7'),
                                   name='softmax')
        params.update({'fc7_weight': mx.nd.array(rng.randn(4, 3)), 'fc7_bias': mx.nd.zeros(4)})
        mx.model.save_checkpoint(prefix, 1, sym, params, {})
    else:
        checkpoint.save_checkpoint(prefix, 1, fc1, params, {})
    return '%s,1' % prefix


def make_dataset(folder, identities, labels=None):
    """train.rec (face2rec2 layout, [label, aligned] labels) + property from
    identities = [[(colour, aligned), ...], ...]; returns the image payloads by key (1..)."""
    folder.mkdir()
    labels = labels if labels is not None else [10 + 3 * i for i in range(len(identities))]
    payloads = {}
    with record_io.IdentityRecordWriter(str(folder / 'train.rec')) as writer:
        for label, images in zip(labels, identities):
            for colour, aligned in images:
                data = pixel_image(colour, seed=len(payloads))
                payloads[writer.add_image(data, label, aligned=aligned)] = data
    record_io.write_property(str(folder), len(identities), SIZE)
    return payloads


def expected_cosines(colours):
    """Cosine of each embedding (scaled colour) to the normalised mean of the normalised ones."""
    rows = np.array(colours, dtype=np.float64) * CHANNEL_SCALES
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    mean = rows.mean(axis=0)
    return rows @ (mean / np.linalg.norm(mean))


def idx_keys(folder):
    with open(folder / 'train.idx') as fin:
        return [int(line.split('\t')[0]) for line in fin]


def check_identity_layout(folder, sizes):
    """The file in folder has images 1..N, then identities with these sizes, then header 0."""
    n = sum(sizes)
    assert idx_keys(folder) == list(range(1, n + 1 + len(sizes))) + [0]
    with RecordReader(str(folder / 'train.rec')) as reader:
        header = reader.read(0)[0]
        assert header.flag == 2 and header.id == 0
        assert header.label.tolist() == [n + 1, n + 1 + len(sizes)]
        start = 1
        for offset, size in enumerate(sizes):
            record = reader.read(n + 1 + offset)[0]
            assert record.flag == 2 and record.id == n + 1 + offset
            assert record.label.tolist() == [start, start + size]
            start += size


@pytest.fixture
def cpu(monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')


# --- dataset_relabel ----------------------------------------------------------------------------

def test_relabel_numbers_identities_keeps_keys_and_2019_order(tmp_path, capsys):
    payloads = make_dataset(tmp_path / 'in', [[((9, 9, 9), 1)] * 2, [((9, 9, 9), 0)],
                                               [((9, 9, 9), 1)] * 3], labels=[5, 9, 2])
    out = tmp_path / 'out'
    assert dataset_relabel.main(['--include', str(tmp_path / 'in'), '--output', str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['header0 label [ 7. 10.]', 'max label 2']
    assert sorted(os.listdir(out)) == ['train.idx', 'train.rec']  # no property, no temp files
    # header first, then each identity record followed by its images
    assert idx_keys(out) == [0, 7, 1, 2, 8, 3, 9, 4, 5, 6]
    with RecordReader(str(tmp_path / 'in' / 'train.rec')) as old, \
            RecordReader(str(out / 'train.rec')) as new:
        for key in (0, 7, 8, 9):
            assert new.read_raw(key) == old.read_raw(key)
        for key, label in zip(range(1, 7), [0, 0, 1, 2, 2, 2]):
            # the 2019 call: scalar label (flag 0), id = the same key, old label floats gone
            expected = mx.recordio.pack(mx.recordio.IRHeader(0, label, key, 0), payloads[key])
            assert new.read_raw(key) == expected


def test_relabel_two_inputs_collide_and_the_last_record_wins(tmp_path, capsys):
    make_dataset(tmp_path / 'a', [[((1, 2, 3), 1)], [((1, 2, 3), 1)]])
    make_dataset(tmp_path / 'b', [[((1, 2, 3), 1)] * 3])
    out = tmp_path / 'out'
    assert dataset_relabel.main(['--include', '%s,%s' % (tmp_path / 'a', tmp_path / 'b'),
                                 '--output', str(out)]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.out.splitlines() if line.startswith('max label')] == \
        ['max label 1', 'max label 0']
    assert 'keys (0 included) collide' in captured.err
    assert idx_keys(out) == [0, 3, 1, 4, 2, 0, 4, 1, 2, 3]
    with RecordReader(str(out / 'train.rec')) as reader:
        assert reader.header == (4, 5)  # b's header, read last
        assert [reader.read(k)[0].label for k in (1, 2, 3)] == [0, 0, 0]


def test_relabel_refuses_a_flat_file(tmp_path):
    (tmp_path / 'flat').mkdir()
    record = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'flat' / 'train.idx'),
                                           str(tmp_path / 'flat' / 'train.rec'), 'w')
    record.write_idx(0, record_io.pack_record(0, 0, pixel_image((1, 1, 1), 0)))
    record.close()
    with pytest.raises(SystemExit, match=r'flat.train\.rec: record 0 is not a header'):
        dataset_relabel.main(['--include', str(tmp_path / 'flat'), '--output',
                              str(tmp_path / 'out')])
    assert not os.path.exists(tmp_path / 'out' / 'train.rec')


# --- dataset_c2c --------------------------------------------------------------------------------

C2C_IDENTITIES = [
    [((200, 10, 0), 1), ((180, 40, 20), 0), ((10, 10, 200), 1)],
    [((0, 255, 0), 0)],
    [((50, 60, 70), 1), ((70, 60, 50), 1)],
]


def test_c2c_lines_are_key_cosine_to_mean_and_aligned_flag(tmp_path, cpu, capsys):
    make_dataset(tmp_path / 'in', C2C_IDENTITIES)
    full = save_pixel_model(str(tmp_path / 'full'), full_graph=True)
    embedding_only = save_pixel_model(str(tmp_path / 'emb'), full_graph=False)
    # batch size 2: the first identity takes two forward passes, the last one a single image
    assert dataset_c2c.main(['--input', str(tmp_path / 'in'), '--model', full,
                             '--batch-size', '2']) == 0
    out = capsys.readouterr().out
    assert 'header0 label [ 7. 10.]' in out and 'id2range 3' in out
    assert 'image_size [8, 8]' in out and 'loading %s 1' % (tmp_path / 'full') in out
    assert sorted(os.listdir(tmp_path / 'in')) == ['c2c', 'property', 'train.idx', 'train.rec']
    first = (tmp_path / 'in' / 'c2c').read_bytes()
    text = first.decode()
    assert text.endswith('\n')
    lines = text.splitlines()
    key = 1
    expected = []
    for images in C2C_IDENTITIES:
        cosines = expected_cosines([colour for colour, _ in images])
        for (_, aligned), cosine in zip(images, cosines):
            expected.append((key, cosine, aligned))
            key += 1
    assert len(lines) == len(expected)
    for line, (key, cosine, aligned) in zip(lines, expected):
        match = re.fullmatch(r'(\d+),(-?\d+\.\d{6}),(\d+)', line)
        assert match, line
        assert int(match.group(1)) == key and int(match.group(3)) == aligned
        assert abs(float(match.group(2)) - cosine) < 6e-7, (line, cosine)
    assert lines[3] == '4,1.000000,0'

    # The fc1-only checkpoint train.py saves gives the same file: fc1 is used either way.
    assert dataset_c2c.main(['--input', str(tmp_path / 'in'), '--model', embedding_only]) == 0
    assert (tmp_path / 'in' / 'c2c').read_bytes() == first


def test_2019_model_loading_fails_on_an_embedding_checkpoint(tmp_path):
    """Why the tools take fc1_output: 2019 bound Module.load's whole graph with softmax_label,
    which an fc1-only checkpoint (train.py's default) does not have."""
    prefix = save_pixel_model(str(tmp_path / 'emb'), full_graph=False).split(',')[0]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        legacy = mx.mod.Module.load(prefix, 1, context=[mx.cpu()])
    with pytest.raises(KeyError, match='softmax_label'):
        legacy.bind(data_shapes=[('data', (2, 3) + SIZE)], label_shapes=[('softmax_label', (2,))])


def test_c2c_on_scalar_labels_names_the_record_and_keeps_the_old_file(tmp_path, cpu):
    folder = tmp_path / 'in'
    folder.mkdir()
    with record_io.IdentityRecordWriter(str(folder / 'train.rec')) as writer:
        writer.add_image(pixel_image((1, 2, 3), 0), 0)
    record_io.write_property(str(folder), 1, SIZE)
    (folder / 'c2c').write_text('old\n')
    model = save_pixel_model(str(tmp_path / 'm'), full_graph=False)
    with pytest.raises(SystemExit, match=r'in.train\.rec: image record 1 has a scalar label; .*'
                                         r'face2rec2-made'):
        dataset_c2c.main(['--input', str(folder), '--model', model])
    assert (folder / 'c2c').read_text() == 'old\n'
    assert sorted(os.listdir(folder)) == ['c2c', 'property', 'train.idx', 'train.rec']


# --- dataset_clean ------------------------------------------------------------------------------

# Two orthogonal colours: both cosines to the mean are exactly fl(0.5 / sqrt(0.5)).
BOUNDARY = 0.5 / np.sqrt(0.5)


def clean_dataset(folder):
    rng = np.random.RandomState(3)
    near = np.clip(np.array([120, 100, 80]) + rng.randint(-40, 41, (15, 3)), 0, 255)
    identities = [
        [((200, 20, 0), 1), ((30, 200, 10), 1), ((180, 60, 20), 0), ((190, 30, 30), 1),
         ((100, 120, 40), 1), ((0, 0, 220), 1)],
        [((100, 0, 0), 1), ((0, 100, 0), 0)],
        [((200, 20, 0), 1)] * 16,  # more than 15 images: removed whatever they look like
        [(tuple(c), 1) for c in near],  # exactly 15: cleaned as usual
    ]
    make_dataset(folder, identities)
    return [[colour for colour, _ in images] for images in identities]


def test_clean_mode1_keeps_cosines_at_or_above_threshold_in_ascending_order(tmp_path, cpu, capsys):
    colours = clean_dataset(tmp_path / 'in')
    model = save_pixel_model(str(tmp_path / 'm'), full_graph=True)
    first_keys = np.cumsum([1] + [len(c) for c in colours])  # key of each identity's first image
    cosines = [expected_cosines(c) for c in colours]
    assert cosines[1].tolist() == [BOUNDARY, BOUNDARY]
    for values in (cosines[0], cosines[3]):  # the set-up is clear of the threshold and of ties
        assert np.abs(values - BOUNDARY).min() > 1e-3 and np.diff(np.sort(values)).min() > 1e-5

    def expected_keys(identity, threshold):
        order = np.argsort(cosines[identity])
        return [int(first_keys[identity] + i) for i in order if cosines[identity][i] >= threshold]

    with RecordReader(str(tmp_path / 'in' / 'train.rec')) as source:
        for threshold, boundary_kept in ((BOUNDARY, True), (np.nextafter(BOUNDARY, 1), False)):
            out = tmp_path / ('out_%s' % boundary_kept)
            assert dataset_clean.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                                       '--model', model, '--threshold', repr(float(threshold)),
                                       '--batch-size', '4']) == 0
            kept = [expected_keys(0, threshold), expected_keys(3, threshold)]
            assert kept[0] == [1, 4, 3, 5] and len(kept[1]) == 15
            if boundary_kept:
                kept.insert(1, [7, 8])
            n_kept = sum(len(k) for k in kept)
            lines = capsys.readouterr().out.splitlines()
            assert lines[-1] == '%d %d' % (n_kept, 39 - n_kept)
            assert sorted(os.listdir(out)) == ['train.idx', 'train.rec']  # no property
            check_identity_layout(out, [len(k) for k in kept])
            with RecordReader(str(out / 'train.rec')) as cleaned:
                new_key = 1
                for old_keys in kept:
                    got = [cleaned.read_raw(k) for k in range(new_key, new_key + len(old_keys))]
                    want = [source.read_raw(k) for k in old_keys]
                    if old_keys == [7, 8]:  # equal cosines: either order
                        got, want = sorted(got), sorted(want)
                    assert got == want  # verbatim: old id and old [label, aligned]
                    new_key += len(old_keys)

    # dataset_relabel then replaces the stale labels (10, 13, 19) by 0, 1, 2.
    relabelled = tmp_path / 'relabelled'
    assert dataset_relabel.main(['--include', str(tmp_path / 'out_True'),
                                 '--output', str(relabelled)]) == 0
    assert 'max label 2' in capsys.readouterr().out
    with RecordReader(str(relabelled / 'train.rec')) as reader:
        assert [reader.read(k)[0].label for k in range(1, 22)] == [0] * 4 + [1] * 2 + [2] * 15


def test_clean_prints_stat_every_100_identities_and_test_mode_writes_nothing(tmp_path, cpu, capsys):
    identities = [[((i + 1, 50, 50), 1)] for i in range(101)]
    identities[49] = [((1, 2, 3), 1)] * 16
    make_dataset(tmp_path / 'in', identities)
    model = save_pixel_model(str(tmp_path / 'm'), full_graph=False)
    out = tmp_path / 'out'
    assert dataset_clean.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                               '--model', model, '--test', '1']) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[:5] == ['use cpu', 'header0 label [117. 218.]', 'id2range 101',
                         'image_size [8, 8]', 'loading %s 1' % (tmp_path / 'm')]
    # before the 100th identity: 98 single images kept, the 16 of identity 50 removed
    assert lines[5:] == ['stat 98 16', '100 16']
    assert '1 identities had more than 15 images' in captured.err
    assert not out.exists()


DBSCAN_IDENTITIES = [
    # groups a (0, 2), b (1, 3, 4) and an outlier: b is the largest cluster
    ['a', 'b', 'a', 'b', 'b', 'o'],
    # one cluster and an outlier
    ['c', 'c', 'c', 'a'],
    # every image alone: all noise, the identity disappears
    ['a', 'o'],
    # two clusters of two: the first found (the one holding image 0) wins the tie
    ['b', 'a', 'b', 'a'],
]
GROUP_COLOURS = {'a': [(200, 10, 10), (190, 30, 10), (210, 20, 5)],
                 'b': [(10, 200, 10), (20, 190, 30), (10, 210, 20)],
                 'c': [(100, 200, 150), (110, 190, 160), (90, 210, 140)],
                 'o': [(10, 10, 200)]}


def test_clean_dbscan_keeps_the_largest_cluster(tmp_path, cpu, capsys):
    identities = []
    for names in DBSCAN_IDENTITIES:
        used = {name: 0 for name in GROUP_COLOURS}
        images = []
        for name in names:
            images.append((GROUP_COLOURS[name][used[name] % len(GROUP_COLOURS[name])], 1))
            used[name] += 1
        identities.append(images)
    make_dataset(tmp_path / 'in', identities)
    eps = 0.3
    # The construction: normalised colours of a group are within eps, of different groups not.
    unit = {n: [np.array(c) * CHANNEL_SCALES / np.linalg.norm(np.array(c) * CHANNEL_SCALES)
                for c in cs] for n, cs in GROUP_COLOURS.items()}
    for n1, vs1 in unit.items():
        for n2, vs2 in unit.items():
            distances = [np.linalg.norm(u - v) for u in vs1 for v in vs2]
            assert max(distances) < eps - 0.1 if n1 == n2 else min(distances) > eps + 0.1
    model = save_pixel_model(str(tmp_path / 'm'), full_graph=False)
    out = tmp_path / 'out'
    assert dataset_clean.main(['--input', str(tmp_path / 'in'), '--output', str(out),
                               '--model', model, '--mode', '2', '--threshold', str(eps)]) == 0
    kept = [[2, 4, 5], [7, 8, 9], [13, 15]]  # old keys, image order
    assert capsys.readouterr().out.splitlines()[-1] == '8 8'
    check_identity_layout(out, [3, 3, 2])
    with RecordReader(str(tmp_path / 'in' / 'train.rec')) as source, \
            RecordReader(str(out / 'train.rec')) as cleaned:
        assert [cleaned.read_raw(k) for k in range(1, 9)] == \
            [source.read_raw(k) for keys in kept for k in keys]


def test_clean_errors_name_the_record(tmp_path, cpu, capsys):
    folder = tmp_path / 'in'
    folder.mkdir()
    good = pixel_image((1, 2, 3), 0)
    record = mx.recordio.MXIndexedRecordIO(str(folder / 'train.idx'), str(folder / 'train.rec'),
                                           'w')
    record.write_idx(1, record_io.pack_record([0, 1], 1, good))
    record.write_idx(2, record_io.pack_record([2, 1], 2, b'not an image'))
    record.write_idx(0, record_io.pack_record([3, 6], 0, b''))
    record.write_idx(3, record_io.pack_record([1, 2], 3, b''))
    record.write_idx(4, record_io.pack_record([2, 2], 4, b''))  # no images
    record.write_idx(5, record_io.pack_record([2, 3], 5, b''))
    record.close()
    record_io.write_property(str(folder), 3, SIZE)
    model = save_pixel_model(str(tmp_path / 'm'), full_graph=False)
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match=r'in.train\.rec: image record 2 \(12 bytes\) cannot be '
                                         r'decoded'):
        dataset_clean.main(['--input', str(folder), '--output', str(out), '--model', model])
    assert 'identity record 4 has no images; left out' in capsys.readouterr().err
    assert os.listdir(out) == []  # nothing half-written

    record_io.write_property(str(folder), 3, (8, 6))  # the model's fc1 expects 8x8 inputs
    with pytest.raises(SystemExit, match=r"dataset_clean: cannot run --model %s on 8x6 images "
                                         r"\(the property file's size\): .*expected \[3,192\]"
                                         % re.escape(model)):
        dataset_clean.main(['--input', str(folder), '--output', str(out), '--model', model])

    other = tmp_path / 'other'
    other.mkdir()
    with record_io.IdentityRecordWriter(str(other / 'train.rec')) as writer:
        writer.add_image(cv2.imencode('.png', np.zeros((10, 8, 3), np.uint8))[1].tobytes(), 0, 1)
    record_io.write_property(str(other), 1, SIZE)
    with pytest.raises(ValueError, match=r'other.train\.rec: image record 1 is 10x8 \(HxW\), but '
                                         r'the property file says 8x8'):
        dataset_clean.main(['--input', str(other), '--output', str(out), '--model', model])
    with pytest.raises(SystemExit, match=r"dataset_clean: --model: expected a model as "
                                         r"'prefix,epoch'"):
        dataset_clean.main(['--input', str(folder), '--output', str(out), '--model', 'nocomma'])
    with pytest.raises(SystemExit, match='--input and --output are required'):
        dataset_clean.main(['--input', str(folder)])


@pytest.mark.parametrize('script', [dataset_relabel, dataset_c2c, dataset_clean])
def test_scripts_have_help(script, capsys):
    with pytest.raises(SystemExit) as excinfo:
        script.main(['--help'])
    assert excinfo.value.code == 0
    assert 'usage:' in capsys.readouterr().out
