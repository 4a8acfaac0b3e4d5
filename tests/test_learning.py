"""Proof that training learns: ArcFace on real (ORL) and synthetic faces, and every loss on a fixed batch."""
import os

import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict

from recognition import demo, losses


def test_arcface_learns_on_orl_faces(tmp_path, shared_dir):
    # 30 people train a small MobileFaceNet (ReLU) for 150 batches of 30; the 10 others make 300
    # verification pairs. Measured: 0.883 untrained -> 0.933 trained (seed 0).
    result = demo.main(['--workdir', str(tmp_path / 'run'), '--data', os.path.join(shared_dir, 'data', 'orl_faces'),
                        '--held-out', '0.25', '--pairs', '300', '--steps', '150', '--verbose', '150',
                        '--batch-size', '30'])
    assert result['after'] >= 0.90
    assert result['after'] >= result['before'] + 0.02
    assert result['similarities']['same'] > result['similarities']['different']


def test_arcface_learns_on_synthetic_faces(tmp_path):
    # 60 synthetic identities x 10 images, 150 batches of 30; 300 pairs of 20 held-out identities.
    # Measured: 0.807 untrained -> 0.930 trained (seed 0).
    result = demo.main(['--workdir', str(tmp_path / 'run'), '--identities', '60', '--images-per-identity', '10',
                        '--pairs', '300', '--steps', '150', '--verbose', '150', '--batch-size', '30'])
    assert result['after'] >= 0.88
    assert result['after'] >= result['before'] + 0.08


LOSS_CONFIGS = {
    'softmax': dict(loss_name='softmax'),
    'nsoftmax': dict(loss_name='margin_softmax', loss_s=64.0, loss_m1=1.0, loss_m2=0.0, loss_m3=0.0),
    'arcface': dict(loss_name='margin_softmax', loss_s=64.0, loss_m1=1.0, loss_m2=0.5, loss_m3=0.0),
    'cosface': dict(loss_name='margin_softmax', loss_s=64.0, loss_m1=1.0, loss_m2=0.0, loss_m3=0.35),
    'combined': dict(loss_name='margin_softmax', loss_s=64.0, loss_m1=1.0, loss_m2=0.3, loss_m3=0.2),
    'sphereface': dict(loss_name='sphereface', loss_m1=4, loss_beta=1000.0, loss_beta_min=5.0,
                       loss_gamma=0.12, loss_power=1.0, loss_beta_freeze=0),
    'triplet': dict(loss_name='triplet', triplet_alpha=0.3),
    'atriplet': dict(loss_name='atriplet', triplet_alpha=0.35),
}


@pytest.mark.parametrize('name', sorted(LOSS_CONFIGS))
def test_each_loss_decreases_on_a_fixed_batch(name):
    batch, classes, emb = 12, 4, 16
    config = EasyDict(num_classes=classes, emb_size=emb, fc7_lr_mult=1.0, fc7_wd_mult=1.0, fc7_no_bias=False,
                      ce_loss=True, **LOSS_CONFIGS[name])
    data = mx.sym.Variable('data')
    hidden = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=32, name='fc0'), act_type='relu')
    embedding = mx.sym.FullyConnected(hidden, num_hidden=emb, name='fc1')
    sym = losses.get_training_symbol(config, embedding, per_batch_size=batch)
    rng = np.random.RandomState(0)
    labels = np.repeat(np.arange(classes), batch // classes)
    if name in ('triplet', 'atriplet'):  # rows laid out [anchors, positives, negatives]
        labels = np.array([0, 1, 2, 3] * 2 + [1, 2, 3, 0])
    x = rng.randn(batch, 8) + labels[:, None] * 0.5
    module = mx.mod.Module(sym, context=mx.cpu())
    module.bind(data_shapes=[('data', (batch, 8))], label_shapes=[('softmax_label', (batch,))])
    mx.random.seed(0)
    module.init_params(mx.init.Xavier())
    module.init_optimizer(optimizer='sgd', optimizer_params={'learning_rate': 0.05, 'momentum': 0.9,
                                                              'rescale_grad': 1.0})
    data_batch = mx.io.DataBatch([mx.nd.array(x)], [mx.nd.array(labels)])
    values = []
    for _ in range(30):
        module.forward_backward(data_batch)
        module.update()
        values.append(float(module.get_outputs()[-1].asnumpy()[0]))
    assert all(np.isfinite(values))
    assert np.mean(values[-5:]) < 0.7 * np.mean(values[:3]), values
