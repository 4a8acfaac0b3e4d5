"""AccMetric and LossValueMetric on hand-made outputs."""
import mxnet as mx
import pytest

from recognition.metric import AccMetric, LossValueMetric


def test_acc_metric_argmax_of_second_output():
    metric = AccMetric()
    probs = mx.nd.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    labels = [mx.nd.array([1, 1, 1])]
    metric.update(labels, [mx.nd.zeros((3, 4)), probs, mx.nd.array([0.5])])
    assert metric.get() == ('acc', pytest.approx(2 / 3))
    # a 2-D label uses its first column; a second device's update accumulates
    probs3 = mx.nd.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    metric.update([mx.nd.array([[1, 9], [0, 9], [1, 9]])], [None, probs3, None])
    assert metric.get() == ('acc', pytest.approx(4 / 6))
    assert metric.count == 2


def test_loss_value_metric_averages_the_last_output():
    metric = LossValueMetric()
    metric.update(None, [None, None, mx.nd.array([2.0])])
    metric.update(None, [None, None, mx.nd.array([4.0])])
    assert metric.get() == ('lossvalue', pytest.approx(3.0))
    metric.reset()
    assert metric.num_inst == 0


def test_metrics_survive_mx_metric_create():
    acc = AccMetric()
    assert mx.metric.create(acc) is acc
