"""The 2019 LFW evaluation straight from an aligned image folder: accuracy without and with flips."""
import os

import numpy as np
import sklearn.preprocessing

from common import verification_pack
from recognition.eval import verification


def read_pairs(pairs_filename):
    """Rows of pairs.txt (first line skipped): ['name', i, j] or ['name1', i, 'name2', j] strings.

    A list rather than 2019's numpy array of ragged rows, which numpy >= 1.24 refuses (Q5).
    """
    return verification_pack.read_lfw_pairs(pairs_filename)


def get_paths(lfw_dir, pairs, file_ext='jpg'):
    """(paths, issame_list): two image paths per pair; pairs with a missing file are skipped."""
    return verification_pack.lfw_pair_paths(lfw_dir, pairs, file_ext)


def load_dataset(lfw_dir, image_size, file_ext='jpg'):
    """([data, data_flipped], issame_list) like verification.load_bin, read from lfw_dir's files.

    lfw_dir holds pairs.txt and the aligned images NAME/NAME_%04d.jpg; the images must already
    have image_size (H, W): unlike load_bin nothing is resized.
    """
    pairs_path = os.path.join(lfw_dir, 'pairs.txt')
    if not os.path.isfile(pairs_path):
        raise FileNotFoundError("%s not found: lfw_dir must hold pairs.txt and the aligned "
                                "NAME/NAME_0001.%s images" % (pairs_path, file_ext))
    paths, issame_list = get_paths(lfw_dir, read_pairs(pairs_path), file_ext)
    encoded = []
    for path in paths:
        with open(path, 'rb') as fin:
            encoded.append(fin.read())
    data_list = verification.decode_images(encoded, image_size, lfw_dir, resize=False, names=paths)
    return data_list, issame_list


def test(lfw_set, mx_model, batch_size, nfolds=10):
    """(acc1, std1, acc2, std2, xnorm, embeddings_list) on a load_dataset() set.

    Unlike verification.test, acc1/std1 are computed (Q11): the fold accuracies of the
    L2-normalised embeddings of the original images alone; acc2/std2 use the normalised sum of
    original and flipped embeddings. xnorm: mean L2 norm of all unnormalised embeddings.
    """
    print('testing lfw..')
    embeddings_list, seconds = verification.compute_embeddings(lfw_set, mx_model, batch_size)
    print('infer time', seconds)
    xnorm = float(np.mean(np.linalg.norm(np.concatenate(embeddings_list), axis=1)))
    issame = lfw_set[1]
    _, _, accuracy, _, _, _ = verification.evaluate(
        sklearn.preprocessing.normalize(embeddings_list[0]), issame, nrof_folds=nfolds)
    acc1, std1 = np.mean(accuracy), np.std(accuracy)
    _, _, accuracy, _, _, _ = verification.evaluate(
        verification.flip_sum_normalize(embeddings_list), issame, nrof_folds=nfolds)
    acc2, std2 = np.mean(accuracy), np.std(accuracy)
    return acc1, std1, acc2, std2, xnorm, embeddings_list
