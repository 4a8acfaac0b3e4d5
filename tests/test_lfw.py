"""recognition/eval/lfw.py: the 2019 LFW evaluation from an image folder, acc1 computed too."""
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
import sklearn.preprocessing

from recognition.eval import lfw, verification
from test_verification_pack import make_lfw_tree


@pytest.fixture
def lfw_dir(shared_dir, tmp_path):
    root = str(tmp_path / 'lfw')
    make_lfw_tree(shared_dir, root)  # ORL s1..s4 as NAME/NAME_%04d.jpg, 92x112 (W x H)
    with open(os.path.join(root, 'pairs.txt'), 'w') as f:
        f.write('10\t3\n'
                's1\t1\t2\ns2\t3\t4\ns3\t5\t6\ns4\t7\t8\ns1\t9\t10\n'
                's1\t1\ts2\t1\ns2\t2\ts3\t2\ns3\t3\ts4\t3\ns4\t4\ts1\t4\ns1\t5\ts3\t5\n'
                's1\t1\t99\n')  # a missing image: skipped
    return root


def test_load_dataset_reads_pairs_in_order_and_flips(lfw_dir, capsys):
    assert lfw.read_pairs(os.path.join(lfw_dir, 'pairs.txt'))[5] == ['s1', '1', 's2', '1']
    (data, flipped), issame = lfw.load_dataset(lfw_dir, (112, 92))
    assert issame == [True] * 5 + [False] * 5
    assert 'Skipped 1 image pairs' in capsys.readouterr().out
    assert data.shape == (20, 3, 112, 92)
    first = cv2.imread(os.path.join(lfw_dir, 's1', 's1_0001.jpg'))[:, :, ::-1]  # RGB
    np.testing.assert_array_equal(data[0].asnumpy(), first.transpose(2, 0, 1))
    np.testing.assert_array_equal(flipped[0].asnumpy(), first[:, ::-1].transpose(2, 0, 1))
    second = cv2.imread(os.path.join(lfw_dir, 's1', 's1_0002.jpg'))[:, :, ::-1]
    np.testing.assert_array_equal(data[1].asnumpy(), second.transpose(2, 0, 1))
    # No resizing, unlike load_bin: another size is an error naming the file.
    with pytest.raises(ValueError, match=r's1_0001\.jpg decodes to 112x92 \(HxW\), expected 112x112'):
        lfw.load_dataset(lfw_dir, (112, 112))


def test_test_computes_acc1_from_the_unflipped_embeddings(lfw_dir):
    lfw_set = lfw.load_dataset(lfw_dir, (112, 92))
    rng = np.random.RandomState(0)
    weight = rng.randn(8, 3 * 112 * 92)
    fc1 = mx.sym.FullyConnected(mx.sym.flatten(mx.sym.Variable('data')), num_hidden=8, no_bias=True,
                                name='fc1')
    module = mx.mod.Module(fc1, label_names=None)
    module.bind(data_shapes=[('data', (4, 3, 112, 92))], for_training=False)
    module.set_params({'fc1_weight': mx.nd.array(weight)}, {})
    acc1, std1, acc2, std2, xnorm, embeddings_list = lfw.test(lfw_set, module, 4, nfolds=5)
    images = [x.asnumpy().reshape(20, -1).astype(np.float64) for x in lfw_set[0]]
    plain, flipped = images[0] @ weight.T, images[1] @ weight.T
    expected1 = verification.evaluate(sklearn.preprocessing.normalize(plain), lfw_set[1], nrof_folds=5)[2]
    expected2 = verification.evaluate(sklearn.preprocessing.normalize(plain + flipped), lfw_set[1],
                                      nrof_folds=5)[2]
    assert acc1 == pytest.approx(np.mean(expected1)) and std1 == pytest.approx(np.std(expected1))
    assert acc2 == pytest.approx(np.mean(expected2)) and std2 == pytest.approx(np.std(expected2))
    assert acc1 > 0  # unlike verification.test, whose acc1 is always 0 (Q11)
    norms = np.linalg.norm(np.concatenate([plain, flipped]), axis=1)
    assert xnorm == pytest.approx(norms.mean(), rel=1e-4)
    np.testing.assert_allclose(embeddings_list[0], plain, rtol=1e-3, atol=1e-2)
