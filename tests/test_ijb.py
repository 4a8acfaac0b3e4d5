"""IJB-B/C 1:1 evaluation: metadata parsing, template aggregation, TAR@FAR, the CLI end to end."""
import itertools
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from common import checkpoint
from common.face_preprocess import REFERENCE_LANDMARKS_112x96, preprocess
from recognition import config_loader
from recognition.eval import ijb
from recognition.symbol import get_embedding_symbol

PEOPLE = (1, 2, 3, 4)
# Per person two templates; (image number, media offset) each: template A has a two-frame
# "video" (media 1) and a still (media 2), template B a still (3) and a two-frame video (4).
TEMPLATE_IMAGES = {1: [(1, 1), (2, 1), (3, 2)], 5: [(4, 3), (5, 4), (6, 4)]}


def _write(path, lines):
    with open(path, 'w') as out:
        out.write(''.join(line + '\n' for line in lines))
    return str(path)


@pytest.fixture(scope='module')
def ijb_root(tmp_path_factory):
    """A tiny IJB-B layout: ORL faces as loose crops, 8 templates, all 28 template pairs."""
    orl = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..',
                       'shared', 'data', 'orl_faces')
    root = tmp_path_factory.mktemp('IJBB')
    os.makedirs(root / 'meta')
    os.makedirs(root / 'loose_crop')
    rng = np.random.RandomState(7)
    # The 112x96 alignment template scaled onto the 92x112 ORL image, a plausible face layout.
    base = REFERENCE_LANDMARKS_112x96 * np.array([92.0 / 96.0, 1.0], dtype=np.float32)
    media_lines, list_lines, template_person = [], [], {}
    for person in PEOPLE:
        for offset, images in TEMPLATE_IMAGES.items():
            template = 10 * person + offset
            template_person[template] = person
            for number, media in images:
                name = 'p%d_%d.png' % (person, number)
                img = cv2.imread(os.path.join(orl, 's%d' % person, '%d.pgm' % number))
                assert img is not None
                cv2.imwrite(str(root / 'loose_crop' / name), img)
                points = base + rng.uniform(-1.5, 1.5, size=base.shape)
                score = rng.uniform(0.5, 1.0)
                media_lines.append('%s %d %d' % (name, template, 100 * person + media))
                list_lines.append(' '.join([name] + ['%.3f' % v for v in points.reshape(-1)]
                                           + ['%.4f' % score]))
    pair_lines = ['%d %d %d' % (a, b, int(template_person[a] == template_person[b]))
                  for a, b in itertools.combinations(sorted(template_person), 2)]
    _write(root / 'meta' / 'ijbb_face_tid_mid.txt', media_lines)
    _write(root / 'meta' / 'ijbb_template_pair_label.txt', pair_lines)
    _write(root / 'meta' / 'ijbb_name_5pts_score.txt', list_lines)
    return str(root)


def _meta(root, kind):
    return os.path.join(root, 'meta', 'ijbb_%s.txt' % kind)


@pytest.fixture(scope='module')
def model_prefix(tmp_path_factory):
    """A MobileFaceNet (y1, relu, 16-d) checkpoint.

    Xavier magnitude 8: with the default BatchNorm statistics, smaller weights shrink the
    embedding to ~1e-6 (magnitude 2), larger ones blow it up.
    """
    config = config_loader.generate(config_loader.load_sample_config(), 'y1', 'emore', 'arcface')
    config.emb_size = 16
    config.net_act = 'relu'
    symbol = get_embedding_symbol(config)
    module = mx.mod.Module(symbol, label_names=None, context=mx.cpu())
    module.bind(data_shapes=[('data', (1, 3, 112, 112))], for_training=False)
    mx.random.seed(3)
    module.init_params(mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=8))
    prefix = str(tmp_path_factory.mktemp('ijb-model') / 'model')
    checkpoint.save_checkpoint(prefix, 0, symbol, *module.get_params())
    return prefix


@pytest.fixture(scope='module')
def reference_features(ijb_root, model_prefix):
    """[original | mirror] embedding per image, one image at a time as the notebooks did."""
    names, landmarks, scores, _ = ijb.read_landmark_list(_meta(ijb_root, 'name_5pts_score'))
    model = checkpoint.load_inference_module(model_prefix, 0, mx.cpu(), (2, 3, 112, 112))
    feats = []
    for name, landmark in zip(names, landmarks):
        bgr = cv2.imread(os.path.join(ijb_root, 'loose_crop', name))
        rgb = cv2.cvtColor(preprocess(bgr, landmark=landmark, image_size='112,112'),
                           cv2.COLOR_BGR2RGB)
        blob = np.stack([np.transpose(rgb, (2, 0, 1)), np.transpose(np.fliplr(rgb), (2, 0, 1))])
        model.forward(mx.io.DataBatch(data=(mx.nd.array(blob),)), is_train=False)
        feats.append(model.get_outputs()[0].asnumpy().reshape(-1))
    return np.array(feats, dtype=np.float32), scores


def numpy_templates(feats, templates, medias):
    """{template: unit feature}: per media the mean of its images, summed over media."""
    result = {}
    for template in set(templates.tolist()):
        by_media = {}
        for feat, t, m in zip(feats, templates, medias):
            if t == template:
                by_media.setdefault(m, []).append(feat)
        total = sum(np.mean(group, axis=0) for group in by_media.values())
        result[template] = total / np.linalg.norm(total)
    return result


# ---- metadata files ----

def test_metadata_files_parse(ijb_root):
    names, templates, medias, lines = ijb.read_template_media(_meta(ijb_root, 'face_tid_mid'))
    assert len(names) == 24 and names[0] == 'p1_1.png' and names[-1] == 'p4_6.png'
    assert templates[:6].tolist() == [11, 11, 11, 15, 15, 15]
    assert medias[:6].tolist() == [101, 101, 102, 103, 104, 104]
    assert lines[:3].tolist() == [1, 2, 3]

    t1, t2, labels, _ = ijb.read_template_pairs(_meta(ijb_root, 'template_pair_label'))
    assert len(t1) == 28 and (t1[0], t2[0], labels[0]) == (11, 15, 1)
    assert (t1[1], t2[1], labels[1]) == (11, 21, 0)
    assert labels.sum() == 4

    list_names, landmarks, scores, _ = ijb.read_landmark_list(_meta(ijb_root, 'name_5pts_score'))
    assert list_names == names
    assert landmarks.shape == (24, 5, 2) and landmarks.dtype == np.float32
    assert scores.shape == (24,) and np.all((scores >= 0.5) & (scores <= 1.0))
    with open(_meta(ijb_root, 'name_5pts_score')) as f:
        first = f.readline().split()
    # interleaved x y pairs: the second value is the left eye's y
    assert landmarks[0, 0, 1] == np.float32(first[2]) and scores[0] == np.float32(first[11])


@pytest.mark.parametrize('reader, bad_line, message', [
    (ijb.read_template_media, 'c.jpg 7', r'expected 3 fields'),
    (ijb.read_template_media, 'c.jpg 7x 2', r'the template id must be an integer'),
    (ijb.read_template_pairs, '1 2 2', r'the label must be 1 \(same person\) or 0'),
    (ijb.read_template_pairs, '1 b 0', r'the second template id must be an integer'),
    (ijb.read_landmark_list, 'c.jpg 1 2 3 4 5 6 7 8 9 0.9', r'expected 12 fields'),
    (ijb.read_landmark_list, 'c.jpg 1 2 3 4 5 6 7 8 9 q 0.9', r'a landmark coordinate must be'),
    (ijb.read_landmark_list, 'c.jpg 1 2 3 4 5 6 7 8 9 10 high', r'the detector score must be'),
])
def test_malformed_lines_name_file_and_line(tmp_path, reader, bad_line, message):
    good = {ijb.read_template_media: ['a.jpg 1 1', 'b.jpg 1 2'],
            ijb.read_template_pairs: ['1 2 1', '1 3 0'],
            ijb.read_landmark_list: ['a.jpg 1 2 3 4 5 6 7 8 9 10 0.9'] * 2}[reader]
    # a blank line is skipped but still counted: the bad line is line 4
    path = _write(tmp_path / 'meta.txt', good[:1] + [''] + good[1:] + [bad_line])
    with pytest.raises(ValueError, match='%s:4: %s' % (path, message)):
        reader(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='ijbc_face_tid_mid.txt does not exist'):
        ijb.read_template_media(str(tmp_path / 'ijbc_face_tid_mid.txt'))
    empty = _write(tmp_path / 'pairs.txt', ['', '  '])
    with pytest.raises(ValueError, match='pairs.txt lists nothing'):
        ijb.read_template_pairs(empty)


def test_files_must_agree(tmp_path, ijb_root):
    names = ['a.jpg', 'b.jpg', 'c.jpg']
    with pytest.raises(ValueError, match=r'm.txt:3 lists image \'c.jpg\' where l.txt:4 lists '
                                         r'\'d.jpg\''):
        ijb.check_same_images('m.txt', names, [1, 2, 3], 'l.txt', ['a.jpg', 'b.jpg', 'd.jpg'],
                              [1, 2, 4])
    with pytest.raises(ValueError, match='m.txt lists 3 images but l.txt lists 2'):
        ijb.check_same_images('m.txt', names, [1, 2, 3], 'l.txt', names[:2], [1, 2])
    with pytest.raises(ValueError, match='p.txt:7: template 99 has no image'):
        ijb.check_pair_templates('p.txt', np.array([1, 2]), np.array([2, 99]), [5, 7],
                                 np.array([1, 2, 2]))
    with pytest.raises(FileNotFoundError, match=r'nope.png.*listed at l.txt:9'):
        next(ijb.aligned_faces(str(tmp_path), ['nope.png'], np.zeros((1, 5, 2)), 'l.txt', [9]))


# ---- features, templates, scores ----

def test_test_modes():
    assert ijb.parse_mode('N1D1F2') == (True, True, 2)
    assert ijb.parse_mode('N0D0F0') == (False, False, 0)
    with pytest.raises(ValueError, match='N0/N1, D0/D1, F0/F1/F2'):
        ijb.parse_mode('N1D1F3')
    originals = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
    flipped = np.array([[1.0, 2.0], [0.0, 1.0]], dtype=np.float32)
    scores = np.array([0.5, 2.0], dtype=np.float32)
    np.testing.assert_allclose(ijb.image_inputs(originals, flipped, scores, 'N1D1F2'),
                               [[2.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(ijb.image_inputs(originals, flipped, scores, 'N1D0F1'),
                               [[3, 4, 1, 2], [1, 0, 0, 1]])
    np.testing.assert_allclose(ijb.image_inputs(originals, flipped, scores, 'N0D1F0'),
                               [[0.3, 0.4], [2.0, 0.0]], rtol=1e-6)
    with pytest.raises(ValueError, match='N1D0F2 needs the mirror-image embeddings'):
        ijb.image_inputs(originals, None, scores, 'N1D0F2')


def test_template_aggregation_and_pair_scores_match_numpy(ijb_root):
    _, templates, medias, _ = ijb.read_template_media(_meta(ijb_root, 'face_tid_mid'))
    t1, t2, _, _ = ijb.read_template_pairs(_meta(ijb_root, 'template_pair_label'))
    feats = np.random.RandomState(0).normal(size=(24, 8)).astype(np.float32)
    template_feats, unique = ijb.template_features(feats, templates, medias)
    assert unique.tolist() == [11, 15, 21, 25, 31, 35, 41, 45]
    expected = numpy_templates(feats, templates, medias)
    for row, template in zip(template_feats, unique):
        np.testing.assert_allclose(row, expected[template], rtol=1e-6, atol=1e-7)
    # a two-frame video counts once: A = mean(img1, img2) + img3, not the mean of all three
    a = np.mean(feats[:2], axis=0) + feats[2]
    np.testing.assert_allclose(template_feats[0], a / np.linalg.norm(a), rtol=1e-6, atol=1e-7)

    scores = ijb.pair_scores(template_feats, unique, t1, t2)
    direct = [expected[a] @ expected[b] for a, b in zip(t1, t2)]
    np.testing.assert_allclose(scores, direct, rtol=1e-6, atol=1e-7)

    feats[:3] = 0.0  # template 11 has nothing left
    with pytest.raises(ValueError, match='template 11 has a zero feature'):
        ijb.template_features(feats, templates, medias)


def test_tar_at_far_hand_built():
    impostors = np.arange(0.05, 1.0, 0.1)                   # 10 scores: 0.05 ... 0.95
    genuines = np.array([1.0, 0.99, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    scores = np.concatenate([genuines, impostors])
    labels = np.array([1] * 10 + [0] * 10)
    tars, fpr, tpr, roc_auc = ijb.tar_at_far(labels, scores)
    # FAR 1e-6..1e-2 are nearest FPR 0, where the best TAR is 0.2 (1.0 and 0.99 beat every
    # impostor); FAR 0.1 allows the 0.95 impostor, and the threshold 0.9 accepts 3 genuines.
    assert tars == pytest.approx([0.2] * 5 + [0.3])
    assert roc_auc == pytest.approx(roc_auc_score(labels, scores))
    assert fpr[0] == 1.0 and tpr[0] == 1.0  # reversed: from the loosest threshold
    # the nearest FPR point decides: 0.14 -> FPR 0.1 (TAR 0.3), 0.16 -> FPR 0.2 (TAR 0.4)
    tars, _, _, _ = ijb.tar_at_far(labels, scores, far_targets=(0.14, 0.16))
    assert tars == pytest.approx([0.3, 0.4])
    with pytest.raises(ValueError, match='both genuine'):
        ijb.tar_at_far(np.ones(3), np.arange(3.0))


def test_table_format_is_the_notebooks():
    rows = [('MS1MV2-ResNet100-ArcFace-TestMode(N1D1F1)',
             [0.4091, 0.9081, 0.9477, 0.9636, 0.9755, 0.9863]),
            ('MS1MV2-ResNet100-ArcFace-TestMode(N0D1F2)',
             [0.4089, 0.8995, 0.9463, 0.9642, 0.9761, 0.9867])]
    # as printed by the 2019 IJB-B notebook (PrettyTable)
    rule = '+' + '-' * 43 + '+--------' * 6 + '+'
    assert ijb.format_table(rows).split('\n') == [
        rule,
        '|                  Methods                  |'
        ' 1e-06  | 1e-05  | 0.0001 | 0.001  |  0.01  |  0.1   |',
        rule,
        '| MS1MV2-ResNet100-ArcFace-TestMode(N1D1F1) |'
        ' 0.4091 | 0.9081 | 0.9477 | 0.9636 | 0.9755 | 0.9863 |',
        '| MS1MV2-ResNet100-ArcFace-TestMode(N0D1F2) |'
        ' 0.4089 | 0.8995 | 0.9463 | 0.9642 | 0.9761 | 0.9867 |',
        rule]


# ---- the model and the command line ----

def test_batched_features_match_one_image_at_a_time(ijb_root, model_prefix, reference_features):
    names, landmarks, _, lines = ijb.read_landmark_list(_meta(ijb_root, 'name_5pts_score'))
    model = checkpoint.load_inference_module(model_prefix, 0, mx.cpu(), (10, 3, 112, 112))
    faces = ijb.aligned_faces(os.path.join(ijb_root, 'loose_crop'), names, landmarks, 'l', lines)
    originals, flipped = ijb.extract_features(model, faces, 24, 5)  # last batch padded
    reference, _ = reference_features
    assert originals.shape == flipped.shape == (24, 16) and originals.dtype == np.float32
    assert np.abs(reference).max() > 1e-3  # the network is not dead
    np.testing.assert_allclose(originals, reference[:, :16], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flipped, reference[:, 16:], rtol=1e-4, atol=1e-5)
    assert not np.allclose(originals, flipped, atol=1e-3)
    few = list(ijb.aligned_faces(os.path.join(ijb_root, 'loose_crop'), names[:3], landmarks[:3],
                                 'l', lines[:3]))
    with pytest.raises(ValueError, match='expected 4 faces to embed, got 3'):
        ijb.extract_features(model, iter(few), 4, 5)


def test_cli_end_to_end(ijb_root, model_prefix, reference_features, tmp_path, capsys):
    out = tmp_path / 'result'
    roc = str(tmp_path / 'roc.png')
    argv = ['--model', model_prefix + ',0', '--target', 'IJBB', '--data-root', ijb_root,
            '--result-dir', str(out), '--batch-size', '5', '--gpu', '-1']
    assert ijb.main(argv + ['--modes', 'N1D1F2,N0D0F0', '--roc', roc]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert 'Feature Shape: (24 , 32) .' in printed

    # the scores, recomputed from per-image reference embeddings by plain numpy
    feats, faceness = reference_features
    _, templates, medias, _ = ijb.read_template_media(_meta(ijb_root, 'face_tid_mid'))
    t1, t2, labels, _ = ijb.read_template_pairs(_meta(ijb_root, 'template_pair_label'))
    inputs = {'N1D1F2': (feats[:, :16] + feats[:, 16:]) * faceness[:, None],
              'N0D0F0': feats[:, :16] / np.linalg.norm(feats[:, :16], axis=1, keepdims=True)}
    table = []
    for mode, image_feats in inputs.items():
        method = 'insightface-TestMode(%s)' % mode
        expected_templates = numpy_templates(image_feats, templates, medias)
        expected = np.array([expected_templates[a] @ expected_templates[b] for a, b in zip(t1, t2)])
        saved = np.load(str(out / (method + '.npy')))
        np.testing.assert_allclose(saved, expected, rtol=1e-4, atol=1e-5)
        tars, _, _, _ = ijb.tar_at_far(labels, saved)
        table.append('| %s | %s |' % (method, ' | '.join('%.4f' % t for t in tars)))
    rule = '+' + '-' * 30 + '+' + '+'.join(['-' * 8] * 6) + '+'
    header = ('|           Methods            |'
              ' 1e-06  | 1e-05  | 0.0001 | 0.001  |  0.01  |  0.1   |')
    at = printed.index(header)
    assert printed[at - 1:at + 5] == [rule, header, rule] + table + [rule]
    with open(roc, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert sorted(os.listdir(str(out))) == ['insightface-TestMode(N0D0F0).npy',
                                            'insightface-TestMode(N1D1F2).npy']
    assert not [n for n in os.listdir(str(tmp_path)) if n.endswith('.tmp')]

    # without flip the model runs on originals only; an earlier result joins the table
    earlier = str(out / 'insightface-TestMode(N0D0F0).npy')
    assert ijb.main(argv + ['--modes', 'N0D0F0', '--job', 'again', '--compare', earlier]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert 'Feature Shape: (24 , 16) .' in printed
    again = np.load(str(out / 'again-TestMode(N0D0F0).npy'))
    np.testing.assert_allclose(again, np.load(earlier), rtol=1e-5, atol=1e-6)
    rows = [line for line in printed if 'TestMode' in line]
    assert [r.split('|')[1].strip() for r in rows] == ['again-TestMode(N0D0F0)',
                                                       'insightface-TestMode(N0D0F0)']
    assert rows[0].split('|')[2:] == rows[1].split('|')[2:]


def test_cli_reports_bad_arguments(capsys):
    with pytest.raises(SystemExit):
        ijb.main(['--model', 'm,0', '--modes', 'N1D1F9'])
    assert 'N0/N1, D0/D1, F0/F1/F2' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ijb.main(['--model', 'm,x'])
    assert 'must be an integer' in capsys.readouterr().err
