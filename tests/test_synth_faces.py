"""Tests for the synthetic face generator: determinism, files, landmarks, separability, packing."""
import os

import cv2
import numpy as np
import pytest

from common.face_preprocess import alignment_matrix, preprocess
from common.record_io import parse_lst_line
from common.verification_pack import load_pairs_bin
from recognition.eval.verification import load_bin
from script_loader import load_script


synth_faces = load_script('synth_faces')
pairs2pack = load_script('pairs2pack')

NUM_IDS, NUM_IMAGES, NUM_VAL, NUM_PAIRS = 12, 4, 3, 10
# Where the ArcFace template puts the eyes in a 112x112 crop.
TEMPLATE_EYES = [(38.2946, 51.6963), (73.5318, 51.5014)]


def read_lst(path):
    with open(path) as f:
        return [parse_lst_line(line, '%s:%d' % (path, i)) for i, line in enumerate(f, 1)]


def patch_mean(grey, x, y, radius):
    x, y = int(round(x)), int(round(y))
    return grey[y - radius:y + radius + 1, x - radius:x + radius + 1].mean()


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('synth') / 'faces')
    synth_faces.main(['--output', out, '--num-identities', str(NUM_IDS),
                      '--images-per-identity', str(NUM_IMAGES), '--val-identities', str(NUM_VAL),
                      '--num-pairs', str(NUM_PAIRS), '--seed', '5'])
    return out


def tree_files(root):
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, 'rb') as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    def make(name, seed, ids=3):
        out = str(tmp_path / name)
        synth_faces.main(['--output', out, '--num-identities', str(ids),
                          '--images-per-identity', '3', '--num-pairs', '4', '--seed', str(seed)])
        files = tree_files(out)
        # train.lst holds absolute paths: compare it relative to its own folder.
        files['train.lst'] = files['train.lst'].replace(os.path.abspath(out).encode(), b'ROOT')
        return files

    first, again, other = make('a', 11), make('b', 11), make('c', 12)
    assert sorted(first) == sorted(again) == sorted(other)
    assert first == again
    images = [name for name in first if name.endswith('.jpg')]
    assert len(images) == 9
    assert all(first[name] != other[name] for name in images)
    # Identities do not depend on how many are generated: a smaller set is a prefix.
    fewer = make('d', 11, ids=2)
    assert all(fewer[name] == first[name] for name in fewer if name.endswith('.jpg'))


def test_layout_lst_property_and_pairs(dataset):
    with open(os.path.join(dataset, 'property'), 'rb') as f:
        assert f.read() == b'%d,112,112' % NUM_IDS  # no trailing newline
    folders = sorted(d for d in os.listdir(dataset) if os.path.isdir(os.path.join(dataset, d)))
    assert folders == ['%04d' % i for i in range(NUM_IDS + NUM_VAL)]
    for folder in folders:
        assert sorted(os.listdir(os.path.join(dataset, folder))) == [
            '%d.jpg' % k for k in range(NUM_IMAGES)]

    items = read_lst(os.path.join(dataset, 'train.lst'))
    assert len(items) == NUM_IDS * NUM_IMAGES  # the validation identities are not in it
    assert [label for _, _, label, _, _ in items] == [i // NUM_IMAGES for i in range(len(items))]
    for aligned, path, label, bbox, landmark in items:
        assert aligned == 0 and os.path.isabs(path) and os.path.isfile(path)
        assert os.path.basename(os.path.dirname(path)) == '%04d' % label
        assert bbox.shape == (4,) and landmark.shape == (5, 2)
        assert 0 <= bbox[0] < bbox[2] <= 127 and 0 <= bbox[1] < bbox[3] <= 127

    pairs = pairs2pack.read_pairs_file(os.path.join(dataset, 'verification_pairs.txt'))
    assert len(pairs) == NUM_PAIRS
    assert [p[3] for p in pairs] == [True, False] * (NUM_PAIRS // 2)  # balanced, alternating
    val_folders = set(folders[NUM_IDS:])
    for _, path1, path2, issame, landmark1, landmark2 in pairs:
        id1, id2 = os.path.dirname(path1), os.path.dirname(path2)
        assert {id1, id2} <= val_folders
        assert (id1 == id2) == issame and path1 != path2
        assert landmark1.shape == landmark2.shape == (5, 2)
    assert len({tuple(sorted(p[1:3])) for p in pairs}) == NUM_PAIRS  # no repeated pair


def test_landmarks_sit_on_the_drawn_features(dataset):
    items = read_lst(os.path.join(dataset, 'train.lst'))
    for _, path, _, bbox, landmark in items:
        grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE).astype(np.float64)
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = landmark
        # The eye landmarks are the pupils: dark blobs, much darker than the cheek below them.
        cheek = patch_mean(grey, (2 * lx + mlx) / 3, (2 * ly + mly) / 3, 2)
        for x, y in ((lx, ly), (rx, ry)):
            assert patch_mean(grey, x, y, 1) < 0.65 * cheek, path
        # Image-left eye first; nose below the eyes and mouth corners below the nose (poses are
        # within +-14 degrees, so plain image axes are enough).
        assert lx < rx and mlx < mrx
        assert ny > max(ly, ry) and min(mly, mry) > ny
        assert np.all(landmark[:, 0] > bbox[0]) and np.all(landmark[:, 0] < bbox[2])
        assert np.all(landmark[:, 1] > bbox[1]) and np.all(landmark[:, 1] < bbox[3])


def test_identities_separable_but_images_differ(dataset):
    items = read_lst(os.path.join(dataset, 'train.lst'))
    vectors, labels, raw = [], [], []
    for _, path, label, _, landmark in items:
        img = cv2.imread(path)
        raw.append(img)
        face = preprocess(img, landmark=landmark, image_size='112,112').astype(np.float64).ravel()
        face -= face.mean()
        vectors.append(face / np.linalg.norm(face))
        labels.append(label)
    vectors, labels = np.array(vectors), np.array(labels)
    cosine = vectors @ vectors.T
    same = (labels[:, None] == labels[None, :]) & ~np.eye(len(labels), dtype=bool)
    different = labels[:, None] != labels[None, :]
    # Raw-pixel cosine of aligned faces, no learning: same identity clearly closer on average...
    assert cosine[same].mean() - cosine[different].mean() > 0.25
    np.fill_diagonal(cosine, -np.inf)
    nearest_is_same = labels[cosine.argmax(axis=1)] == labels
    assert nearest_is_same.mean() > 0.5  # chance is 1/12
    # ...yet two images of one identity are never the same picture.
    assert cosine[same].max() < 0.99
    for i, j in zip(*np.nonzero(np.triu(same))):
        assert np.abs(raw[i].astype(int) - raw[j]).mean() > 3


def test_pairs2pack_aligns_synthetic_pairs(dataset, tmp_path):
    pairs_path = os.path.join(dataset, 'verification_pairs.txt')
    output = str(tmp_path / 'synth.bin')
    pairs2pack.main(['--pairs', pairs_path, '--output', output])
    bins, issame = load_pairs_bin(output)
    pairs = pairs2pack.read_pairs_file(pairs_path)
    assert issame == [p[3] for p in pairs] == [True, False] * (NUM_PAIRS // 2)
    assert len(bins) == 2 * NUM_PAIRS
    (data, _), _ = load_bin(output, (112, 112))
    assert data.shape == (2 * NUM_PAIRS, 3, 112, 112)
    landmarks = [landmark for p in pairs for landmark in p[4:6]]
    offsets = []
    for face, landmark in zip(data.asnumpy(), landmarks):
        grey = face.mean(axis=0)
        # Aligned by its landmarks, each image has its pupils where the alignment sends them:
        # within a few pixels of the template's eye points (a 5-point least-squares fit).
        matrix = alignment_matrix(landmark, '112,112')
        (lx, ly), (rx, ry), _, (mlx, mly), _ = landmark @ matrix[:, :2].T + matrix[:, 2]
        cheek = patch_mean(grey, (2 * lx + mlx) / 3, (2 * ly + mly) / 3, 2)
        for (x, y), (tx, ty) in zip([(lx, ly), (rx, ry)], TEMPLATE_EYES):
            assert patch_mean(grey, x, y, 1) < 0.65 * cheek
            offsets.append(np.hypot(x - tx, y - ty))
    assert max(offsets) < 6


def test_refuses_existing_output_and_impossible_pairs(tmp_path):
    existing = tmp_path / 'taken'
    existing.mkdir()
    (existing / 'keep.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='already exists'):
        synth_faces.main(['--output', str(existing), '--num-identities', '2',
                          '--images-per-identity', '2', '--num-pairs', '2'])
    assert os.listdir(existing) == ['keep.txt']
    # 2 identities x 2 images have only 2 distinct same-identity pairs.
    with pytest.raises(ValueError, match='cannot draw 3 distinct same-identity pairs'):
        synth_faces.main(['--output', str(tmp_path / 'new'), '--num-identities', '2',
                          '--images-per-identity', '2', '--num-pairs', '6'])
    with pytest.raises(ValueError, match='must be even'):
        synth_faces.main(['--output', str(tmp_path / 'new'), '--num-pairs', '5'])
    assert sorted(os.listdir(tmp_path)) == ['taken']  # nothing half-written


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        synth_faces.main(['--help'])
    assert exit_info.value.code == 0
    assert '--num-identities' in capsys.readouterr().out
