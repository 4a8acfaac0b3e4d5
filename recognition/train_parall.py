"""Trains with the fc7 classifier split across the contexts (model parallelism), as train_parall.py in 2019.

    python train_parall.py --network r100 --loss arcface --dataset emore

Same flags as train.py plus --worker-id. Each context holds the backbone for its slice of the batch
and 1/N of the classes. Checkpoints are embedding-only (fc1_output) like train.py's; the fc7 shards
go beside them into prefix-NNNN.fc7.params and into the --resume state.
"""
import logging
import os

import mxnet as mx

from common import checkpoint
from common.devices import get_contexts
from common.flops_counter import count_flops
from recognition import losses, train
from recognition.image_iter import FaceImageIter
from recognition.parall_module import ParallModule, SHARD_NAME, fc7_shards_from
from recognition.symbol import get_embedding_symbol


def fc7_params_path(prefix, epoch):
    return '%s-%04d.fc7.params' % (prefix, epoch)


def add_worker_id(parser):
    parser.add_argument('--worker-id', type=int, default=0,
                        help='worker id for distributed training, from 0 (only 0: one worker is supported)')


def parse_args(argv=None):
    return train.parse_args(argv, script_dir=os.path.dirname(os.path.abspath(__file__)),
                            add_arguments=add_worker_id)


class ParallBatchEndCallback(train.BatchEndCallback):
    """train.py's callback; saves the backbone as an embedding checkpoint plus the fc7 shards."""

    def __call__(self, param):
        # 2019 passed no metric: the Speedometer line is 'Iter[E] Batch [n]\tSpeed: ...'
        super().__call__(param._replace(eval_metric=None))

    def loss_values(self):
        return self.model.loss_values().asnumpy()

    def save(self, msave):
        arg, aux = train.get_params_synced(self.model)
        shards = {k: v for k, v in arg.items() if SHARD_NAME.match(k)}
        backbone = {k: v for k, v in arg.items() if not k.startswith('fc7')}
        print('saving', msave)
        # The shards first: a backbone checkpoint never lacks the classifier it was saved with.
        checkpoint.atomic_write(fc7_params_path(self.prefix, msave),
                                lambda tmp: mx.nd.save(tmp, {'arg:%s' % k: v for k, v in shards.items()}))
        self.last_saved = checkpoint.save_checkpoint(self.prefix, msave, train.embedding_symbol(self.sym),
                                                     backbone, aux)


def load_pretrained(prefix, epoch, num_classes, num_shards):
    """(arg_params, aux_params) of a checkpoint, fc7 split into this run's shards when it has one.

    The fc7 comes from prefix-NNNN.fc7.params (train_parall, any number of contexts) or from the
    checkpoint's own fc7_weight (train.py with ckpt_embedding = False); otherwise it starts fresh.
    """
    _, arg_params, aux_params = checkpoint.load_checkpoint(prefix, epoch)
    fc7_file = fc7_params_path(prefix, epoch)
    if os.path.isfile(fc7_file):
        source, origin = checkpoint.load_params(fc7_file)[0], fc7_file
    else:
        source, origin = arg_params, checkpoint.params_path(prefix, epoch)
    shards = fc7_shards_from(source, num_classes, num_shards)
    print('fc7 from', origin if shards else 'nowhere (not in the checkpoint): initialised Normal(0.01)')
    arg_params = {k: v for k, v in arg_params.items() if not k.startswith('fc7')}
    arg_params.update(shards)
    return arg_params, aux_params


def train_net(args, config):
    ctx = get_contexts(args.ctx)
    prefix = os.path.join(args.models_root, '%s-%s-%s' % (args.network, args.loss, args.dataset), 'model')
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    print('prefix', prefix)
    if config.num_workers != 1:
        raise NotImplementedError("num_workers=%d (DMLC_NUM_WORKER): the 2019 code imported a "
                                  "parall_module_dist that never existed; run one worker"
                                  % config.num_workers)
    if 'dist' in args.kvstore:
        raise ValueError("--kvstore %s: model parallelism runs in one process; use 'device' or 'local'"
                         % args.kvstore)
    if args.worker_id != 0:
        raise ValueError("--worker-id %d: with one worker the only id is 0" % args.worker_id)
    if config.loss_name not in losses.SOFTMAX_LOSSES:
        raise ValueError("train_parall supports the softmax-type losses (%s), got loss_name %r"
                         % (', '.join(losses.SOFTMAX_LOSSES), config.loss_name))
    if args.per_batch_size == 0:
        args.per_batch_size = 128
    image_size, data_shape, path_imgrec = train.describe_input(args, config, len(ctx))

    arg_params = aux_params = None
    resume = None
    if args.resume:
        arg_params, aux_params, optimizer_states, resume = train.load_resume_state(train.resume_path(prefix))
        saved_shards = sum(1 for k in arg_params if SHARD_NAME.match(k))
        if saved_shards != len(ctx):
            raise ValueError("--resume: the state holds %d fc7 shards but this run has %d contexts; "
                             "resume with the same contexts (or start with --pretrained, which "
                             "re-splits fc7)" % (saved_shards, len(ctx)))
        print('resuming from', train.resume_path(prefix), 'at batch', resume['global_step'])
    train.seed_everything(args, resume)
    if args.pretrained and resume is None:
        print('loading', args.pretrained, args.pretrained_epoch)
        arg_params, aux_params = load_pretrained(args.pretrained, args.pretrained_epoch,
                                                 config.num_classes, len(ctx))

    with mx.name.NameManager():
        embedding = get_embedding_symbol(config)
    model = ParallModule(embedding, config, ctx, verbose=args.verbose)
    if config.count_flops:
        flops = count_flops(train.embedding_symbol(model.symbol), data=(1,) + data_shape)
        print('Network FLOPs: %d' % flops)
    train_dataiter = FaceImageIter(
        batch_size=args.batch_size, data_shape=data_shape, path_imgrec=path_imgrec, shuffle=True,
        rand_mirror=config.data_rand_mirror, mean=None, cutoff=config.data_cutoff,
        color_jittering=config.data_color, images_filter=config.data_images_filter, seed=args.seed)
    initializer = train.make_initializer(config.net_name)
    # The shards' gradient is the unnormalised p - onehot over the whole batch, hence 1/B.
    opt = train.make_optimizer(args, rescale_grad=1.0 / args.batch_size)
    ver_sets = train.load_verification_sets(config, image_size)
    callback = ParallBatchEndCallback(args, config, model, opt, prefix, model.symbol, ver_sets)
    print('lr_steps', callback.lr_steps)

    model.bind(data_shapes=train_dataiter.provide_data, label_shapes=train_dataiter.provide_label,
               for_training=True)
    model.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                      allow_missing=True)
    model.init_optimizer(kvstore=args.kvstore, optimizer=opt)
    begin_epoch = 0
    if resume is not None:
        train.restore_optimizer_states(model, optimizer_states)
        callback.restore(resume)
        begin_epoch, batches_done = resume['epoch'], resume['batches_done']
        if batches_done >= train_dataiter.batches_per_epoch():
            begin_epoch, batches_done = begin_epoch + 1, 0
        train_dataiter.fast_forward(begin_epoch, batches_done)

    train_dataiter = mx.io.PrefetchingIter(train_dataiter)
    # An empty metric: fit logs no Train-<metric> lines, as 2019's own fit did.
    model.fit(train_dataiter, begin_epoch=begin_epoch, num_epoch=999999, eval_data=None,
              eval_metric=mx.metric.CompositeEvalMetric(), kvstore=args.kvstore, optimizer=opt,
              initializer=initializer, batch_end_callback=callback)


def main(argv=None):
    logging.getLogger().setLevel(logging.INFO)
    args, config = parse_args(argv)
    train_net(args, config)


if __name__ == '__main__':
    main()
