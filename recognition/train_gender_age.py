"""Trains the 2019 gender-age network (202 outputs: gender softmax + 100 "age > i" softmaxes).

    python -m recognition.train_gender_age --data-dir DIR --network m --multiplier 0.25 \
        --lr-steps 10000,20000,30000 --prefix ./models/gamodel/model

DIR holds train.rec (and optionally val.rec): flat records labelled [gender, age], or the 100
age bits src/data/age_merge.py writes. The run saves `prefix-symbol.json` + `prefix-0000.params`
(the fc1 graph that deploy/face_model.py's --ga-model loads) when it stops: at the last lr step
(as in 2019), at --max-steps, or after --end-epoch epochs.
"""
import argparse
import logging
import os
import random

import mxnet as mx
import numpy as np

from common import checkpoint
from recognition.gender_age_iter import GenderAgeIter
from recognition.symbol import gender_age
from common.devices import get_contexts
from recognition.train import decay_lr_at_step, embedding_symbol, get_params_synced

SPEEDOMETER_FREQUENT = 20


class GenderAccMetric(mx.metric.EvalMetric):
    """Gender accuracy: argmax of fc1[0:2] against label column 0 (9999 labels count as wrong)."""

    def __init__(self):
        super().__init__('acc')

    def update(self, labels, preds):
        genders, _ = gender_age.decode_batch(preds[-1].asnumpy())
        truth = labels[0].asnumpy()[:, 0].astype(np.int64)
        self.sum_metric += int((genders == truth).sum())
        self.num_inst += len(truth)


def label_ages(labels):
    """Ages of (batch, 101) training labels: the number of age bits set."""
    return np.count_nonzero(labels.asnumpy()[:, 1:], axis=1)


class MAEMetric(mx.metric.EvalMetric):
    """Mean absolute age error of each batch, averaged over batches (as 2019 printed it)."""

    def __init__(self):
        super().__init__('MAE')

    def update(self, labels, preds):
        _, ages = gender_age.decode_batch(preds[-1].asnumpy())
        self.sum_metric += float(np.mean(np.abs(label_ages(labels[0]) - ages)))
        self.num_inst += 1


class CUMMetric(mx.metric.EvalMetric):
    """Share of faces whose age is off by less than n years (CUM_5 by default)."""

    def __init__(self, n=5):
        self.n = n
        super().__init__('CUM_%d' % n)

    def update(self, labels, preds):
        _, ages = gender_age.decode_batch(preds[-1].asnumpy())
        truth = label_ages(labels[0])
        self.sum_metric += int(np.sum(np.abs(truth - ages) < self.n))
        self.num_inst += len(truth)


def gender_age_metric():
    return mx.metric.CompositeEvalMetric([GenderAccMetric(), MAEMetric(), CUMMetric()])


def build_parser():
    parser = argparse.ArgumentParser(description='Train the gender-age network.',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--data-dir', default='', help='directory with train.rec (and val.rec)')
    parser.add_argument('--prefix', default='../model/model', help='checkpoint prefix to save')
    parser.add_argument('--pretrained', default='', help="checkpoint 'prefix,epoch' to start from")
    parser.add_argument('--ckpt', type=int, default=1, help='unused, as in 2019')
    parser.add_argument('--loss-type', type=int, default=4, help='unused, as in 2019')
    parser.add_argument('--verbose', type=int, default=2000, help='unused, as in 2019')
    parser.add_argument('--max-steps', type=int, default=0,
                        help='stop (and save) after this many batches; 0: no limit')
    parser.add_argument('--end-epoch', type=int, default=100000, help='number of epochs')
    parser.add_argument('--network', default='r50',
                        help="'m' (MobileNet, width from --multiplier) or 'r<depth>' (ResNet)")
    parser.add_argument('--image-size', default='112,112', help='input height,width (square)')
    parser.add_argument('--version-input', type=int, default=1, help='network input config')
    parser.add_argument('--version-output', type=str, default='GAP',
                        help='fc1 head type (GAP, E, ...)')
    parser.add_argument('--version-act', type=str, default='prelu', help='unused, as in 2019')
    parser.add_argument('--multiplier', type=float, default=1.0, help='MobileNet width multiplier')
    parser.add_argument('--lr', type=float, default=0.1, help='start learning rate')
    parser.add_argument('--lr-steps', type=str, default='',
                        help='batch numbers where the lr is multiplied by 0.1; the last one also '
                             'saves the model and stops training')
    parser.add_argument('--wd', type=float, default=0.0005, help='weight decay')
    parser.add_argument('--bn-mom', type=float, default=0.9, help='unused, as in 2019')
    parser.add_argument('--mom', type=float, default=0.9, help='momentum')
    parser.add_argument('--per-batch-size', type=int, default=128,
                        help='batch size on each context (0 means 128)')
    parser.add_argument('--rand-mirror', type=int, default=1, help='random horizontal flips')
    parser.add_argument('--cutoff', type=int, default=0, help='cutout square size (0: off)')
    parser.add_argument('--color', type=int, default=0,
                        help='colour jitter: 1 jitter, 2 also random JPEG re-compression')
    parser.add_argument('--ce-loss', default=False, action='store_true', help='unused, as in 2019')
    parser.add_argument('--ctx', default=None,
                        help="contexts instead of CUDA_VISIBLE_DEVICES, e.g. 'cpu', 'cpu:2', 'gpu:0,1'")
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of data order, augmentation and initialisation (default: random)')
    return parser


class StopTraining(Exception):
    """Raised by the batch callback once the model is saved (2019 called sys.exit(0))."""


class BatchEndCallback:
    """Speedometer, lr steps, and the stop-and-save at the last lr step or --max-steps."""

    def __init__(self, args, model, optimizer, fc1_symbol):
        self.args, self.model, self.opt, self.fc1_symbol = args, model, optimizer, fc1_symbol
        self.lr_steps = [int(x) for x in args.lr_steps.split(',')] if args.lr_steps else []
        self.speedometer = mx.callback.Speedometer(args.batch_size, SPEEDOMETER_FREQUENT)
        self.global_step = 0
        self.saved = None

    def save(self):
        arg, aux = get_params_synced(self.model)
        self.saved = checkpoint.save_checkpoint(self.args.prefix, 0, self.fc1_symbol, arg, aux)
        print('saved', self.saved)

    def __call__(self, param):
        # BatchNorm's moving statistics must be written before fit() or save() read the
        # parameters (decisions.md, T4).
        mx.nd.waitall()
        self.speedometer(param)
        self.global_step += 1
        mbatch = self.global_step
        decay_lr_at_step(self.opt, self.lr_steps, mbatch)
        if mbatch % 1000 == 0:
            print('lr-batch-epoch:', self.opt.lr, param.nbatch, param.epoch)
        last_lr_step = bool(self.lr_steps) and mbatch == self.lr_steps[-1]
        if last_lr_step or mbatch == self.args.max_steps:
            self.save()
            raise StopTraining()


def make_initializer(network):
    if network[0] in ('r', 'y'):
        return mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2)
    if network[0] in ('i', 'x'):
        return mx.init.Xavier(rnd_type='gaussian', factor_type='in', magnitude=2)
    return mx.init.Xavier(rnd_type='uniform', factor_type='in', magnitude=2)


def train_net(args):
    """Train as args say; returns the path of the saved .params."""
    ctx = get_contexts(args.ctx)
    os.makedirs(os.path.dirname(os.path.abspath(args.prefix)), exist_ok=True)
    args.ctx_num = len(ctx)
    if args.per_batch_size == 0:
        args.per_batch_size = 128
    args.batch_size = args.per_batch_size * args.ctx_num
    try:
        image_size = tuple(int(x) for x in args.image_size.split(','))
    except ValueError:
        image_size = ()
    if len(image_size) != 2 or image_size[0] != image_size[1]:
        raise ValueError("--image-size must be a square 'h,w' such as '112,112', got %r"
                         % args.image_size)
    print('image_size', image_size)
    if ',' in args.data_dir:
        raise ValueError("--data-dir takes one directory, got %r" % args.data_dir)
    path_imgrec = os.path.join(args.data_dir, 'train.rec')
    path_imgrec_val = os.path.join(args.data_dir, 'val.rec')
    if not os.path.isfile(path_imgrec):
        raise FileNotFoundError("--data-dir %r has no train.rec" % args.data_dir)
    print('Called with argument:', args)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2 ** 31)
    print('seed', args.seed)
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    data_shape = (3,) + image_size

    arg_params = aux_params = None
    if args.pretrained:
        prefix, epoch = checkpoint.parse_model_arg(args.pretrained)
        print('loading', prefix, epoch)
        _, arg_params, aux_params = checkpoint.load_checkpoint(prefix, epoch)
    fc1 = gender_age.get_symbol(args.network, args.multiplier, args.version_input,
                                args.version_output)
    sym = gender_age.training_symbol(fc1, args.per_batch_size)
    model = mx.mod.Module(context=ctx, symbol=sym)

    train_dataiter = GenderAgeIter(args.batch_size, data_shape, path_imgrec, shuffle=True,
                                   rand_mirror=args.rand_mirror, cutoff=args.cutoff,
                                   color_jittering=args.color, seed=args.seed)
    val_dataiter = None
    if os.path.isfile(path_imgrec_val):
        val_dataiter = GenderAgeIter(args.batch_size, data_shape, path_imgrec_val, shuffle=False,
                                     seed=args.seed)
    else:
        print('no val.rec in', args.data_dir, '- no evaluation at epoch ends')

    opt = mx.optimizer.SGD(learning_rate=args.lr, momentum=args.mom, wd=args.wd,
                           rescale_grad=1.0 / args.ctx_num)
    callback = BatchEndCallback(args, model, opt, embedding_symbol(sym))
    print('start fitting')
    try:
        model.fit(train_dataiter, begin_epoch=0, num_epoch=args.end_epoch,
                  eval_data=val_dataiter, eval_metric=gender_age_metric(), kvstore='device',
                  optimizer=opt, initializer=make_initializer(args.network),
                  arg_params=arg_params, aux_params=aux_params, allow_missing=True,
                  batch_end_callback=callback)
        callback.save()  # 2019 saved nothing when the epochs ran out before the last lr step
    except StopTraining:
        pass
    finally:
        train_dataiter.close()
        if val_dataiter is not None:
            val_dataiter.close()
    return callback.saved


def main(argv=None):
    logging.getLogger().setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    train_net(args)


if __name__ == '__main__':
    main()
