"""Trains a face embedding with softmax, margin (ArcFace/CosFace/combined) or triplet losses, as in 2019.

    cp sample_config.py config.py
    python train.py --network r100 --loss arcface --dataset emore

Contexts come from CUDA_VISIBLE_DEVICES (one GPU per listed id; unset or empty: CPU), or from
--ctx (e.g. cpu:2 for two CPU contexts). The batch is per_batch_size x contexts.
Several machines: --kvstore dist_sync under recognition/launch.py (README).
"""
import argparse
import json
import logging
import os
import random
import sys
import tempfile

import mxnet as mx
import numpy as np

from common import checkpoint
from common.devices import get_contexts
from common.flops_counter import count_flops
from recognition import config_loader, losses
from recognition.eval import verification
from recognition.image_iter import FaceImageIter
from recognition.triplet_image_iter import TripletFaceImageIter
from recognition.metric import AccMetric, LossValueMetric
from recognition.training_curve import TrainingHistory
from recognition.symbol import get_embedding_symbol

def build_parser(module):
    """The full command line; defaults come from the config module's `default` (after presets)."""
    default = module.default
    parser = argparse.ArgumentParser(description='Train a face recognition network.',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--dataset', default=default.dataset, help='dataset preset (config.py)')
    parser.add_argument('--network', default=default.network, help='network preset (config.py)')
    parser.add_argument('--loss', default=default.loss, help='loss preset (config.py)')
    parser.add_argument('--models-root', default=default.models_root, help='root directory to save models')
    parser.add_argument('--pretrained', default=default.pretrained,
                        help="checkpoint to start from: 'prefix,epoch', or a prefix with --pretrained-epoch")
    parser.add_argument('--pretrained-epoch', type=int, default=default.pretrained_epoch,
                        help='epoch of --pretrained when it is a bare prefix')
    parser.add_argument('--ckpt', type=int, default=default.ckpt,
                        help='checkpoint saving: 0 never, 1 when best, 2 always, 3 when best into epoch 1')
    parser.add_argument('--verbose', type=int, default=default.verbose,
                        help='run verification and maybe save every this many batches')
    parser.add_argument('--lr', type=float, default=default.lr, help='start learning rate')
    parser.add_argument('--lr-steps', type=str, default=default.lr_steps,
                        help='global batch numbers where the learning rate is multiplied by 0.1')
    parser.add_argument('--wd', type=float, default=default.wd, help='weight decay')
    parser.add_argument('--mom', type=float, default=default.mom, help='momentum')
    parser.add_argument('--frequent', type=int, default=default.frequent, help='Speedometer period in batches')
    parser.add_argument('--per-batch-size', type=int, default=default.per_batch_size,
                        help='batch size on each context')
    parser.add_argument('--kvstore', type=str, default=default.kvstore, help='kvstore type')
    parser.add_argument('--ctx', type=str, default=None,
                        help="contexts instead of CUDA_VISIBLE_DEVICES, e.g. 'cpu', 'cpu:2', 'gpu:0,1'")
    parser.add_argument('--seed', type=int, default=None,
                        help='seed of the data order, augmentation, initialisation and dropout '
                             '(default: a random one, printed and kept for --resume)')
    parser.add_argument('--resume', action='store_true',
                        help='continue the run in --models-root from its last verification step, '
                             'with weights, optimizer state, batch counter and data order')
    parser.add_argument('--config', default=None,
                        help='config file (default: ./config.py, then config.py beside train.py)')
    return parser


def parse_args(argv=None, script_dir=None, add_arguments=None):
    """Two phases like 2019: --network/--dataset/--loss pick presets, whose keys set the defaults.

    add_arguments(parser), if given, adds a caller's extra flags (train_parall's --worker-id).
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument('--config', default=None)
    known, _ = pre.parse_known_args(argv)
    path = known.config or config_loader.find_config_file(script_dir or os.path.dirname(__file__))
    module = config_loader.load_config_module(path)
    pre = argparse.ArgumentParser(add_help=False)
    for flag, value in (('--dataset', module.default.dataset), ('--network', module.default.network),
                        ('--loss', module.default.loss)):
        pre.add_argument(flag, default=value)
    known, _ = pre.parse_known_args(argv)
    parser = build_parser(module)
    try:
        config_loader.generate(module, known.network, known.dataset, known.loss)
    except ValueError as err:
        parser.error(str(err))
    parser = build_parser(module)  # rebuilt so the defaults reflect the presets
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if ',' in args.pretrained:  # the README's 'prefix,epoch' form
        args.pretrained, args.pretrained_epoch = checkpoint.parse_model_arg(args.pretrained)
    return args, module.config


def get_symbol(config, per_batch_size, fast_prelu=False):
    """Backbone + loss head, built under one fresh name counter for the 2019 node names.

    fast_prelu runs PReLU as oneDNN-native ops (same parameters and outputs, much faster on CPU,
    and free of mxnet 1.9.1's wrong LeakyReLU gamma gradients; decisions.md, S1).
    """
    with mx.name.NameManager():
        embedding = get_embedding_symbol(config, fast_prelu=fast_prelu)
        return losses.get_training_symbol(config, embedding, per_batch_size)


def embedding_symbol(sym):
    internals = sym.get_internals()
    if 'fc1_output' not in internals.list_outputs():
        raise ValueError("the network has no 'fc1' node (net_output 'Z', 'A', 'AX', 'B' and 'BX' "
                         "end elsewhere): it cannot be saved as an embedding checkpoint nor "
                         "evaluated; choose another net_output (e.g. 'E', 'GDC', 'GAP')")
    return internals['fc1_output']


def make_initializer(net_name):
    if net_name in ('fresnet', 'fmobilefacenet'):
        return mx.init.Xavier(rnd_type='gaussian', factor_type='out', magnitude=2)
    return mx.init.Xavier(rnd_type='uniform', factor_type='in', magnitude=2)


def is_distributed(kvstore):
    return 'dist' in kvstore


def shared_seed(kv, seed):
    """Rank 0's seed on every worker: the data partition needs one common shuffle."""
    kv.init('seed', mx.nd.array([seed]))  # the server keeps rank 0's value
    out = mx.nd.zeros((1,))
    kv.pull('seed', out=out)
    return int(out.asscalar())


def init_optimizer(model, kv, opt, kvstore_type):
    """Module.init_optimizer; with a synchronous dist kvstore the servers only sum gradients.

    mxnet's default for dist kvstores runs the optimizer on the servers, where the callback's
    lr steps never arrive and whose state cannot be saved for --resume. Instead every worker
    pulls the summed gradient and updates locally (MXNET_UPDATE_ON_KVSTORE=0), exactly like a
    single process; the workers then start from rank 0's weights, as the default would.
    dist_async needs the server-side optimizer and keeps it.
    """
    if not is_distributed(kvstore_type) or 'async' in kvstore_type:
        model.init_optimizer(kvstore=kv, optimizer=opt)
        return
    saved = os.environ.get('MXNET_UPDATE_ON_KVSTORE')
    os.environ['MXNET_UPDATE_ON_KVSTORE'] = '0'
    try:
        model.init_optimizer(kvstore=kv, optimizer=opt)
    finally:
        if saved is None:
            del os.environ['MXNET_UPDATE_ON_KVSTORE']
        else:
            os.environ['MXNET_UPDATE_ON_KVSTORE'] = saved
    arg, aux = model.get_params()
    arg = {name: value.copy() for name, value in arg.items()}
    for name in sorted(arg):
        kv.pull(name, out=arg[name])  # kv.init stored rank 0's values
    model.set_params(arg, aux)


def decay_lr_at_step(opt, lr_steps, mbatch):
    """The 2019 schedule: lr x 0.1 when the global batch equals a listed step, at most once per
    batch (a step listed twice decays once). Returns whether it decayed."""
    if mbatch in lr_steps:
        opt.lr *= 0.1
        print('lr change to', opt.lr)
        return True
    return False


def resume_path(prefix):
    return prefix + '-resume.params'


def get_params_synced(model):
    """model.get_params() after all pending work: in mxnet 1.9.1 the copy can otherwise read
    BatchNorm moving statistics from before the last forward pass (decisions.md, T4)."""
    mx.nd.waitall()
    return model.get_params()


def save_resume_state(path, model, state):
    """All weights (fc7 included), optimizer state and counters in one atomically written file."""
    arg, aux = get_params_synced(model)
    with tempfile.TemporaryDirectory() as tmp:
        states_file = os.path.join(tmp, 'optimizer.states')
        model.save_optimizer_states(states_file)
        with open(states_file, 'rb') as fin:
            optimizer_bytes = fin.read()
    save_dict = {'arg:%s' % k: v for k, v in arg.items()}
    save_dict.update({'aux:%s' % k: v for k, v in aux.items()})
    save_dict['state:optimizer'] = mx.nd.array(np.frombuffer(optimizer_bytes, np.uint8), dtype='uint8')
    save_dict['state:json'] = mx.nd.array(np.frombuffer(json.dumps(state).encode(), np.uint8),
                                          dtype='uint8')
    checkpoint.atomic_write(path, lambda tmp_path: mx.nd.save(tmp_path, save_dict))


def load_resume_state(path):
    """(arg_params, aux_params, optimizer state bytes, counters) from save_resume_state's file."""
    if not os.path.isfile(path):
        raise FileNotFoundError("--resume: no resume state %s; it is written at every verification "
                                "step (--verbose) of a run with the same --models-root, --network, "
                                "--loss and --dataset" % path)
    saved = mx.nd.load(path)
    if 'state:json' not in saved or 'state:optimizer' not in saved:
        raise ValueError("%s is not a resume state written by train.py" % path)
    arg = {k[4:]: v for k, v in saved.items() if k.startswith('arg:')}
    aux = {k[4:]: v for k, v in saved.items() if k.startswith('aux:')}
    state = json.loads(saved['state:json'].asnumpy().tobytes().decode())
    return arg, aux, saved['state:optimizer'].asnumpy().tobytes(), state


class BatchEndCallback:
    """lr steps, Speedometer, verification every `verbose` batches, best-model saving, max_steps."""

    def __init__(self, args, config, model, optimizer, prefix, sym, ver_sets, embedding=None):
        self.args, self.config, self.model, self.opt = args, config, model, optimizer
        self.prefix, self.sym, self.ver_sets = prefix, sym, ver_sets
        # the graph saved with ckpt_embedding (default: fc1 of the training graph)
        self.embedding = embedding if embedding is not None else embedding_symbol(sym)
        self.lr_steps = [int(x) for x in args.lr_steps.split(',')] if args.lr_steps else []
        self.speedometer = mx.callback.Speedometer(args.batch_size, args.frequent)
        self.global_step = 0
        self.save_step = 0
        self.highest_acc = [0.0, 0.0]  # [best sum (updated on ties only, as 2019), best last target]
        self.last_saved = None
        self.history = TrainingHistory(os.path.dirname(prefix))
        self.server_kv = None  # dist_async: the kvstore whose servers run the optimizer

    def state(self, param):
        """Counters for --resume, taken after batch param.nbatch of epoch param.epoch."""
        return {'global_step': self.global_step, 'save_step': self.save_step,
                'highest_acc': self.highest_acc, 'lr': self.opt.lr, 'last_saved': self.last_saved,
                'epoch': param.epoch, 'batches_done': param.nbatch + 1, 'seed': self.args.seed,
                'history': self.history.state()}

    def restore(self, state):
        self.global_step = state['global_step']
        self.save_step = state['save_step']
        self.highest_acc = state['highest_acc']
        self.last_saved = state['last_saved']
        self.opt.lr = state['lr']
        self.history.restore(state.get('history', {}))

    def ver_test(self, nbatch):
        results = []
        for name, data_set in self.ver_sets:
            _, _, acc2, std2, xnorm, _ = verification.test(data_set, self.model, self.args.batch_size, 10)
            print('[%s][%d]XNorm: %f' % (name, nbatch, xnorm))
            print('[%s][%d]Accuracy-Flip: %1.5f+-%1.5f' % (name, nbatch, acc2, std2))
            self.history.add_verification(nbatch, name, acc2)
            results.append(acc2)
        return results

    def loss_values(self):
        """The monitored loss output of the last batch, from every device, as one numpy array."""
        outputs = self.model.get_outputs(merge_multi_context=False)
        return np.concatenate([o.asnumpy().ravel() for o in outputs[-1]])

    def check_finite(self, mbatch):
        """Stop with a clear message when the loss output stops being finite."""
        values = self.loss_values()
        if not np.all(np.isfinite(values)):
            where = ('the last good checkpoint is %s' % self.last_saved if self.last_saved
                     else 'no checkpoint was saved yet')
            raise FloatingPointError("loss became %s at batch %d (lr %g); %s. Lower --lr or check "
                                     "the data" % (values[~np.isfinite(values)][0], mbatch,
                                                   self.opt.lr, where))

    def save(self, msave):
        arg, aux = get_params_synced(self.model)
        if self.config.ckpt_embedding:
            sym = self.embedding
            # Only the embedding's own arrays: not fc7, nor a loss head's state such as
            # SphereFace's sphereface_step (2019 dropped fc7* args and had no such state).
            arg = {k: v for k, v in arg.items() if k in set(sym.list_arguments())}
            aux = {k: v for k, v in aux.items() if k in set(sym.list_auxiliary_states())}
        else:
            sym = self.sym
        print('saving', msave)
        self.last_saved = checkpoint.save_checkpoint(self.prefix, msave, sym, arg, aux)

    def __call__(self, param):
        self.global_step += 1
        mbatch = self.global_step
        if decay_lr_at_step(self.opt, self.lr_steps, mbatch):
            if self.server_kv is not None and self.server_kv.rank == 0:
                # the only way to reach the servers' optimizer; it restarts their momentum
                self.server_kv.set_optimizer(self.opt)
        self.check_finite(mbatch)
        # Let BatchNorm finish its in-place moving-statistics update before anything reads
        # parameters: Module.fit's own epoch-end get_params/set_params would otherwise write
        # stale statistics back (decisions.md, T4).
        mx.nd.waitall()
        if param.eval_metric is not None and param.nbatch and param.nbatch % self.args.frequent == 0:
            # the averages the Speedometer is about to print (and reset), at the batches it prints
            self.history.add_metrics(mbatch, param.eval_metric.get_name_value())
        self.speedometer(param)
        if mbatch % 1000 == 0:
            print('lr-batch-epoch:', self.opt.lr, param.nbatch, param.epoch)
        if mbatch % self.args.verbose == 0:
            acc_list = self.ver_test(mbatch)
            self.save_step += 1
            msave = self.save_step
            is_highest = False
            if acc_list:
                score = sum(acc_list)
                if acc_list[-1] >= self.highest_acc[-1]:
                    if acc_list[-1] > self.highest_acc[-1]:
                        is_highest = True
                    elif score >= self.highest_acc[0]:
                        is_highest = True
                        self.highest_acc[0] = score
                    self.highest_acc[-1] = acc_list[-1]
            do_save = is_highest
            if self.args.ckpt == 0:
                do_save = False
            elif self.args.ckpt == 2:
                do_save = True
            elif self.args.ckpt == 3:
                msave = 1
            if do_save:
                self.save(msave)
            print('[%d]Accuracy-Highest: %1.5f' % (mbatch, self.highest_acc[-1]))
            logging.info('training curve: %s', self.history.save())
            if self.server_kv is None:  # dist_async: the optimizer state lives on the servers
                save_resume_state(resume_path(self.prefix), self.model, self.state(param))
        # Dropout draws from mxnet's RNG, whose state cannot be saved: reseeding it from the
        # batch counter lets a resumed run draw the same masks.
        mx.random.seed(self.args.seed + mbatch)
        if self.config.max_steps > 0 and mbatch > self.config.max_steps:
            sys.exit(0)


def make_optimizer(args, rescale_grad):
    """SGD as 2019 built it: without sym= or param_idx2name, so mxnet never reads the Variables'
    lr_mult / wd_mult, and weight decay applies to every parameter (decisions.md, T3)."""
    return mx.optimizer.SGD(learning_rate=args.lr, momentum=args.mom, wd=args.wd, rescale_grad=rescale_grad)


def describe_input(args, config, num_contexts):
    """Batch and input sizes from the contexts and the config, with the 2019 prints.

    Returns (image_size, data_shape, path_imgrec).
    """
    args.ctx_num = num_contexts
    args.batch_size = args.per_batch_size * args.ctx_num
    args.rescale_threshold = 0
    args.image_channel = config.image_shape[2]
    image_size = tuple(config.image_shape[0:2])
    if len(image_size) != 2 or image_size[0] != image_size[1]:
        raise ValueError("config image_shape must be square (H, W, 3), got %r" % (config.image_shape,))
    print('image_size', image_size)
    print('num_classes', config.num_classes)
    path_imgrec = os.path.join(config.dataset_path, 'train.rec')
    print('Called with argument:', args, config)
    return image_size, (args.image_channel,) + image_size, path_imgrec


def seed_everything(args, resume=None, kv=None):
    """args.seed from the resume state, --seed, or a fresh draw (rank 0's for a dist kvstore)."""
    if resume is not None:
        args.seed = resume['seed']
    elif args.seed is None:
        if kv is not None:  # small enough to pass exactly through a float32 key
            args.seed = shared_seed(kv, random.SystemRandom().randrange(2 ** 24))
        else:
            args.seed = random.SystemRandom().randrange(2 ** 31)
    print('seed', args.seed)
    mx.random.seed(args.seed if resume is None else args.seed + resume['global_step'])
    np.random.seed(args.seed)


def load_verification_sets(config, image_size):
    """[(name, data)] for every config.val_targets whose <dataset_path>/<name>.bin exists."""
    ver_sets = []
    for name in config.val_targets:
        path = os.path.join(config.dataset_path, name + '.bin')
        if os.path.exists(path):
            ver_sets.append((name, verification.load_bin(path, image_size)))
            print('ver', name)
    return ver_sets


def restore_optimizer_states(model, optimizer_states):
    """Module.load_optimizer_states from the bytes kept in a resume state."""
    with tempfile.TemporaryDirectory() as tmp:
        states_file = os.path.join(tmp, 'optimizer.states')
        with open(states_file, 'wb') as fout:
            fout.write(optimizer_states)
        model.load_optimizer_states(states_file)


def stop_prefetching(prefetching_iter):
    """End the threads of an mx.io.PrefetchingIter and wait for them.

    Its own __del__ can hang: a thread busy in next() when it runs clears the wake-up event
    afterwards and then waits on it forever. Setting the events until the thread is gone
    cannot miss.
    """
    prefetching_iter.started = False
    for thread in prefetching_iter.prefetch_threads:
        while thread.is_alive():
            for event in prefetching_iter.data_taken:
                event.set()
            thread.join(timeout=0.05)


def train_net(args, config):
    ctx = get_contexts(args.ctx)
    kv, rank, num_workers = args.kvstore, 0, 1
    if is_distributed(args.kvstore):
        if args.resume and 'async' in args.kvstore:
            raise ValueError("--resume does not work with --kvstore dist_async: its optimizer "
                             "state lives on the servers; use dist_sync")
        kv = mx.kv.create(args.kvstore)  # waits until the scheduler sees every node
        rank, num_workers = kv.rank, kv.num_workers
        print('worker', rank, 'of', num_workers)
    run_dir = os.path.join(args.models_root, '%s-%s-%s' % (args.network, args.loss, args.dataset))
    if rank > 0:  # the workers may share a file system: only rank 0 writes the usual place
        run_dir = os.path.join(run_dir, 'worker%d' % rank)
    prefix = os.path.join(run_dir, 'model')
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    print('prefix', prefix)
    image_size, data_shape, path_imgrec = describe_input(args, config, len(ctx))

    arg_params = aux_params = None
    resume = None
    if args.resume:
        arg_params, aux_params, optimizer_states, resume = load_resume_state(resume_path(prefix))
        print('resuming from', resume_path(prefix), 'at batch', resume['global_step'])
    seed_everything(args, resume, kv if is_distributed(args.kvstore) else None)

    if args.pretrained and resume is None:
        print('loading', args.pretrained, args.pretrained_epoch)
        _, arg_params, aux_params = checkpoint.load_checkpoint(args.pretrained, args.pretrained_epoch)
    fast_prelu = config.get('fast_prelu', True) and all(c.device_type == 'cpu' for c in ctx)
    sym = get_symbol(config, args.per_batch_size, fast_prelu=fast_prelu)
    # Checkpoints and FLOPs use the 2019 graph: the embedding, or with ckpt_embedding = False
    # the whole training graph (built a second time only then).
    saved_sym = sym
    if fast_prelu and not config.ckpt_embedding:
        saved_sym = get_symbol(config, args.per_batch_size)
    with mx.name.NameManager():
        embedding = embedding_symbol(get_embedding_symbol(config))
    if config.count_flops:
        flops = count_flops(embedding, data=(1,) + data_shape)
        print('Network FLOPs: %d' % flops)

    model = mx.mod.Module(context=ctx, symbol=sym)
    triplet = config.loss_name in losses.TRIPLET_LOSSES
    if triplet:
        train_dataiter = TripletFaceImageIter(
            batch_size=args.batch_size, data_shape=data_shape, path_imgrec=path_imgrec, shuffle=True,
            rand_mirror=config.data_rand_mirror, mean=None, cutoff=config.data_cutoff,
            ctx_num=args.ctx_num, images_per_identity=config.images_per_identity,
            triplet_params=[config.triplet_bag_size, config.triplet_alpha, config.triplet_max_ap],
            mx_model=model, seed=args.seed, num_parts=num_workers, part_index=rank)
        metrics = [LossValueMetric()]
    else:
        train_dataiter = FaceImageIter(
            batch_size=args.batch_size, data_shape=data_shape, path_imgrec=path_imgrec, shuffle=True,
            rand_mirror=config.data_rand_mirror, mean=None, cutoff=config.data_cutoff,
            color_jittering=config.data_color, images_filter=config.data_images_filter, seed=args.seed,
            num_parts=num_workers, part_index=rank)
        metrics = [AccMetric()]
        if config.ce_loss:
            metrics.append(LossValueMetric())
    eval_metrics = [mx.metric.create(m) for m in metrics]

    initializer = make_initializer(config.net_name)
    # The loss averages over each context's batch. With W workers the kvstore sums W x ctx_num
    # such gradients: dividing by W too makes the update that of one process with the same
    # global batch (2019 divided by ctx_num only, i.e. a W times larger step).
    opt = make_optimizer(args, rescale_grad=1.0 / (args.ctx_num * num_workers))
    ver_sets = load_verification_sets(config, image_size)
    callback = BatchEndCallback(args, config, model, opt, prefix, saved_sym, ver_sets, embedding=embedding)
    print('lr_steps', callback.lr_steps)

    # Bind and initialise before the prefetching thread starts, so that anything the iterator
    # does with the model sees it ready, and so a resumed optimizer state can be loaded.
    model.bind(data_shapes=train_dataiter.provide_data, label_shapes=train_dataiter.provide_label,
               for_training=True)
    model.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                      allow_missing=True)
    init_optimizer(model, kv, opt, args.kvstore)
    if is_distributed(args.kvstore) and 'async' in args.kvstore:
        callback.server_kv = kv
        print('dist_async: no resume state is written; lr steps restart the servers\' momentum')
    begin_epoch = 0
    if resume is not None:
        restore_optimizer_states(model, optimizer_states)
        callback.restore(resume)
        begin_epoch, batches_done = resume['epoch'], resume['batches_done']
        if triplet:
            begin_epoch += 1  # triplets are mined from the current weights: start a fresh "epoch"
        else:
            if batches_done >= train_dataiter.batches_per_epoch():
                begin_epoch, batches_done = begin_epoch + 1, 0
            train_dataiter.fast_forward(begin_epoch, batches_done)
    if triplet:
        # Mine once here, on the main thread with the module ready: an error in the prefetch
        # thread would leave fit() waiting forever (the 2019 start-up race).
        train_dataiter.reset()

    train_dataiter = mx.io.PrefetchingIter(train_dataiter)
    try:
        model.fit(train_dataiter, begin_epoch=begin_epoch, num_epoch=999999, eval_data=None,
                  eval_metric=eval_metrics, kvstore=kv, optimizer=opt, initializer=initializer,
                  arg_params=arg_params, aux_params=aux_params, allow_missing=True,
                  batch_end_callback=callback, epoch_end_callback=None)
    finally:
        # The callback ends training with sys.exit (as in 2019). Stop the prefetch thread first:
        # a triplet iterator there holds the model, and with it a dist kvstore, which then
        # outlives the interpreter and aborts the process ("terminate called ...").
        stop_prefetching(train_dataiter)
        del train_dataiter, model, callback


def main(argv=None):
    logging.getLogger().setLevel(logging.INFO)
    args, config = parse_args(argv, script_dir=os.path.dirname(os.path.abspath(__file__)))
    train_net(args, config)


if __name__ == '__main__':
    main()
