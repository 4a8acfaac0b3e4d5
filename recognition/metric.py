"""Training metrics printed by the Speedometer: accuracy on the softmax output, and the loss value."""
import mxnet as mx
import numpy as np


class AccMetric(mx.metric.EvalMetric):
    """'acc': argmax of the softmax output (preds[1]) against the label, per device update.

    With a margin loss these are the margin-adjusted probabilities, as in 2019.
    """

    def __init__(self):
        super().__init__('acc', axis=1, output_names=None, label_names=None)
        self.axis = 1
        self.count = 0

    def update(self, labels, preds):
        self.count += 1
        label = labels[0].asnumpy()
        pred = preds[1].asnumpy()
        if pred.shape != label.shape:
            pred = np.argmax(pred, axis=self.axis)
        if label.ndim == 2:
            label = label[:, 0]
        pred = pred.astype('int32').ravel()
        label = label.astype('int32').ravel()
        if len(pred) != len(label):
            raise ValueError("AccMetric: %d predictions for %d labels" % (len(pred), len(label)))
        self.sum_metric += int((pred == label).sum())
        self.num_inst += len(pred)


class LossValueMetric(mx.metric.EvalMetric):
    """'lossvalue': the last output's first element (the ce or triplet loss), averaged over updates."""

    def __init__(self):
        super().__init__('lossvalue', output_names=None, label_names=None)

    def update(self, labels, preds):
        self.sum_metric += float(preds[-1].asnumpy()[0])
        self.num_inst += 1
