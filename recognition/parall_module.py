"""Model-parallel classifier: the backbone data-parallel over all contexts, fc7 split by class ranges.

Shard i lives on context i and owns the classes [i*K, (i+1)*K), K = ceil(C / N); the rows of
the last shard(s) past C are phantom classes. Every shard sees the whole batch's embeddings; the
softmax over all C classes is assembled from per-shard row maxima and row sums, and the embedding
gradient is the sum of the shards' input gradients. One step equals train.py's full-fc7 step.
"""
import logging
import os
import pickle
import re
import tempfile

import mxnet as mx
import numpy as np
from mxnet.module import BaseModule, Module

from recognition import losses

SHARD_NAME = re.compile(r'^fc7_(\d+)_weight$')


def shard_weight_name(index):
    return 'fc7_%d_weight' % index


def ctx_num_classes(num_classes, num_shards):
    """Classes per shard, ceil(C / N) as 2019 (C // N + 1 when N does not divide C)."""
    if num_classes < 1 or num_shards < 1:
        raise ValueError("need at least one class and one shard, got num_classes=%d, num_shards=%d"
                         % (num_classes, num_shards))
    return -(-num_classes // num_shards)


def valid_classes(num_classes, num_shards):
    """How many real (non-phantom) classes each shard holds."""
    per_shard = ctx_num_classes(num_classes, num_shards)
    return [min(max(num_classes - i * per_shard, 0), per_shard) for i in range(num_shards)]


def split_fc7(weight, num_shards):
    """(C, D) classifier -> N arrays (K, D) on the CPU; phantom rows are zero."""
    weight = weight.asnumpy() if isinstance(weight, mx.nd.NDArray) else np.asarray(weight)
    num_classes, emb_size = weight.shape
    per_shard = ctx_num_classes(num_classes, num_shards)
    padded = np.zeros((per_shard * num_shards, emb_size), dtype=weight.dtype)
    padded[:num_classes] = weight
    return [mx.nd.array(padded[i * per_shard:(i + 1) * per_shard], dtype=weight.dtype)
            for i in range(num_shards)]


def merge_fc7(shards, num_classes):
    """N arrays (K, D) -> the (C, D) classifier, dropping the phantom rows."""
    full = np.concatenate([s.asnumpy() if isinstance(s, mx.nd.NDArray) else np.asarray(s)
                           for s in shards])
    if full.shape[0] < num_classes:
        raise ValueError("the fc7 shards hold %d rows in all, fewer than num_classes=%d"
                         % (full.shape[0], num_classes))
    return mx.nd.array(full[:num_classes], dtype=full.dtype)


def fc7_shards_from(arg_params, num_classes, num_shards):
    """{fc7_<i>_weight: (K, D)} for N shards from a checkpoint's params, or {} if it has no fc7.

    Takes shards saved from the same number of contexts as they are, re-splits shards saved from
    another number, and splits a single-device checkpoint's fc7_weight (C, D).
    """
    saved = {int(SHARD_NAME.match(k).group(1)): v for k, v in arg_params.items() if SHARD_NAME.match(k)}
    if saved:
        if sorted(saved) != list(range(len(saved))):
            raise ValueError("fc7 shards %s are not numbered 0..%d" % (sorted(saved), len(saved) - 1))
        per_shard = ctx_num_classes(num_classes, num_shards)
        if len(saved) == num_shards and all(v.shape[0] == per_shard for v in saved.values()):
            return {shard_weight_name(i): saved[i] for i in range(num_shards)}
        full = merge_fc7([saved[i] for i in range(len(saved))], num_classes)
    elif 'fc7_weight' in arg_params:
        full = arg_params['fc7_weight']
        if full.shape[0] != num_classes:
            raise ValueError("fc7_weight has %d classes, expected num_classes=%d"
                             % (full.shape[0], num_classes))
    else:
        return {}
    return {shard_weight_name(i): w for i, w in enumerate(split_fc7(full, num_shards))}


def embedding_group(embedding):
    """The backbone's outputs: [fc1 (its gradient comes from the shards), the batch labels]."""
    return mx.sym.Group([embedding, mx.sym.BlockGrad(mx.sym.Variable('softmax_label'))])


def shard_symbol(config, index, num_classes):
    """Logits of shard `index` (B x num_classes) for the global embedding batch `data`.

    Labels are shard-local (global label - shard start); a label outside the shard gets no margin.
    softmax has no bias and no scale, like 2019 (fc7_no_bias is ignored); the margin losses reuse
    train.py's formula.
    """
    data = mx.sym.Variable('data')
    label = mx.sym.Variable('softmax_label')
    weight = mx.sym.Variable(shard_weight_name(index), shape=(num_classes, config.emb_size),
                             lr_mult=config.fc7_lr_mult, wd_mult=config.fc7_wd_mult)
    with mx.name.NameManager():
        if config.loss_name == 'softmax':
            return mx.sym.FullyConnected(data=data, weight=weight, no_bias=True, num_hidden=num_classes,
                                         name='fc7_%d' % index)
        if config.loss_name == 'margin_softmax':
            return losses.margin_softmax_logits(data, label, weight, num_classes, config.loss_s,
                                                config.loss_m1, config.loss_m2, config.loss_m3)
    raise ValueError("the model-parallel classifier supports loss_name 'softmax' and "
                     "'margin_softmax', got %r" % config.loss_name)


class ParallModule(BaseModule):
    """A Module-like trainer: one backbone Module over all contexts plus one fc7 shard Module per context."""

    def __init__(self, embedding, config, context, verbose=2000, logger=logging):
        super().__init__(logger=logger)
        self._context = list(context)
        self._symbol = embedding_group(embedding)
        self._num_classes = config.num_classes
        self._emb_size = config.emb_size
        self._verbose = verbose
        self._iter = 0
        num_shards = len(self._context)
        self._per_shard = ctx_num_classes(config.num_classes, num_shards)
        self._starts = [i * self._per_shard for i in range(num_shards)]
        self._valid = valid_classes(config.num_classes, num_shards)
        self._backbone = Module(self._symbol, data_names=['data'], label_names=['softmax_label'],
                                logger=logger, context=self._context)
        self._shards = []
        for i, ctx in enumerate(self._context):
            sym = shard_symbol(config, i, self._per_shard)
            label_names = ['softmax_label'] if 'softmax_label' in sym.list_arguments() else None
            self._shards.append(Module(sym, data_names=['data'], label_names=label_names,
                                       logger=logger, context=ctx))
        # Phantom classes get a -inf logit: they drop out of the softmax, so one step equals a
        # softmax over exactly C classes (2019 let them into the denominator).
        self._masks = []
        for valid, ctx in zip(self._valid, self._context):
            mask = None
            if valid < self._per_shard:
                row = np.zeros((1, self._per_shard), np.float32)
                row[0, valid:] = -np.inf
                mask = mx.nd.array(row, ctx=ctx)
            self._masks.append(mask)
        self._label = None
        self._loss = None

    # --- what BaseModule asks for, answered by the backbone ---
    @property
    def data_names(self):
        return self._backbone.data_names

    @property
    def output_names(self):
        return self._backbone.output_names

    @property
    def data_shapes(self):
        return self._backbone.data_shapes

    @property
    def label_shapes(self):
        return self._backbone.label_shapes

    @property
    def output_shapes(self):
        return self._backbone.output_shapes

    @property
    def shard_modules(self):
        return list(self._shards)

    @property
    def backbone_module(self):
        return self._backbone

    def get_outputs(self, merge_multi_context=True):
        return self._backbone.get_outputs(merge_multi_context=merge_multi_context)

    def get_input_grads(self, merge_multi_context=True):
        return self._backbone.get_input_grads(merge_multi_context=merge_multi_context)

    def install_monitor(self, mon):
        self._backbone.install_monitor(mon)

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """No training metric, as 2019: the fc7 accuracy is printed every `verbose` batches instead."""

    # --- parameters ---
    def _split_params(self, arg_params):
        """(backbone params, [params of shard i]) from one dict."""
        backbone = {}
        shards = [{} for _ in self._shards]
        for name, value in (arg_params or {}).items():
            match = SHARD_NAME.match(name)
            if match is None:
                backbone[name] = value
                continue
            index = int(match.group(1))
            if index >= len(self._shards):
                raise ValueError("%s: this module has only %d fc7 shards (one per context)"
                                 % (name, len(self._shards)))
            shards[index][name] = value
        return backbone, shards

    def get_params(self):
        """Backbone and every fc7 shard (fc7_<i>_weight), on the CPU."""
        arg, aux = self._backbone.get_params()
        arg, aux = dict(arg), dict(aux)
        for shard in self._shards:
            shard_arg, shard_aux = shard.get_params()
            arg.update(shard_arg)
            aux.update(shard_aux)
        return arg, aux

    def get_export_params(self):
        """Backbone and head only: what the embedding checkpoints hold."""
        arg, aux = self._backbone.get_params()
        return dict(arg), dict(aux)

    def init_params(self, initializer=mx.init.Uniform(0.01), arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        """Backbone from `initializer`, shards from Normal(0.01) as 2019, unless given in arg_params."""
        if self.params_initialized and not force_init:
            return
        assert self.binded, 'call bind before initializing the parameters'
        backbone, shards = self._split_params(arg_params)
        self._backbone.init_params(initializer=initializer, arg_params=backbone or None,
                                   aux_params=aux_params, allow_missing=allow_missing,
                                   force_init=force_init, allow_extra=True)
        for shard, params in zip(self._shards, shards):
            shard.init_params(initializer=mx.init.Normal(0.01), arg_params=params or None,
                              allow_missing=allow_missing, force_init=force_init)
        self.params_initialized = True

    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True,
                   allow_extra=False):
        """Backbone keys to the backbone, fc7_<i>_weight to shard i."""
        backbone, shards = self._split_params(arg_params)
        self._backbone.set_params(backbone, aux_params, allow_missing=allow_missing,
                                  force_init=force_init, allow_extra=allow_extra)
        for shard, params in zip(self._shards, shards):
            shard.set_params(params, {}, allow_missing=allow_missing, force_init=force_init)
        self.params_initialized = True

    # --- binding and optimizer ---
    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req='write'):
        """The backbone on the per-context batch slices; each shard on the whole batch of embeddings."""
        if self.binded and not force_rebind:
            self.logger.warning('Already bound, ignoring bind()')
            return
        if shared_module is not None:
            raise ValueError("ParallModule cannot share memory with another module (shared_module)")
        print('in_bind', self.params_initialized, data_shapes, label_shapes)
        self._backbone.bind(data_shapes, label_shapes, for_training, inputs_need_grad,
                            force_rebind=force_rebind, grad_req=grad_req)
        batch_size = self._backbone.data_shapes[0].shape[0]
        print('_data_shape', self._backbone.data_shapes[0].shape, label_shapes)
        for shard in self._shards:
            shard_labels = [('softmax_label', (batch_size,))] if shard.label_names else None
            shard.bind([('data', (batch_size, self._emb_size))], shard_labels, for_training,
                       inputs_need_grad=True, force_rebind=force_rebind)
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self.binded = True

    def init_optimizer(self, kvstore='local', optimizer='sgd',
                       optimizer_params=(('learning_rate', 0.01),), force_init=False):
        """One optimizer for all: the backbone updates through `kvstore`, each shard locally."""
        assert self.binded and self.params_initialized
        if self.optimizer_initialized and not force_init:
            self.logger.warning('optimizer already initialized, ignoring.')
            return
        self._backbone.init_optimizer(kvstore, optimizer, optimizer_params, force_init=force_init)
        for shard in self._shards:
            # a single-context Module makes no kvstore for 'device'/'local': it updates in place
            shard.init_optimizer(kvstore, optimizer, optimizer_params, force_init=force_init)
        self.optimizer_initialized = True

    def save_optimizer_states(self, fname):
        """The backbone's and every shard's optimizer states in one file."""
        states = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, module in enumerate([self._backbone] + self._shards):
                path = os.path.join(tmp, '%d.states' % i)
                module.save_optimizer_states(path)
                with open(path, 'rb') as fin:
                    states.append(fin.read())
        with open(fname, 'wb') as fout:
            pickle.dump(states, fout)

    def load_optimizer_states(self, fname):
        with open(fname, 'rb') as fin:
            states = pickle.load(fin)
        modules = [self._backbone] + self._shards
        if not isinstance(states, list) or len(states) != len(modules):
            raise ValueError("%s holds optimizer states for %s modules, expected %d (backbone + %d fc7 "
                             "shards): resume with the same number of contexts"
                             % (fname, len(states) if isinstance(states, list) else 'unknown',
                                len(modules), len(self._shards)))
        with tempfile.TemporaryDirectory() as tmp:
            for i, (module, data) in enumerate(zip(modules, states)):
                path = os.path.join(tmp, '%d.states' % i)
                with open(path, 'wb') as fout:
                    fout.write(data)
                module.load_optimizer_states(path)

    # --- one step ---
    def forward(self, data_batch, is_train=None):
        """Backbone forward; when training, every shard's logits for the whole batch."""
        assert self.binded and self.params_initialized
        if is_train is None:
            is_train = self.for_training
        self._backbone.forward(data_batch, is_train=is_train)
        if not is_train:
            return
        self._iter += 1
        embedding, label = self._backbone.get_outputs(merge_multi_context=True)
        self._label = label.as_in_context(mx.cpu())
        for start, shard in zip(self._starts, self._shards):
            shard.forward(mx.io.DataBatch([embedding], [self._label - start]), is_train=True)

    def backward(self, out_grads=None):
        """Softmax cross-entropy over all shards; its gradient flows into each shard and the backbone.

        The gradient is p - onehot, not divided by the batch: the optimizer's rescale_grad = 1/B
        does that (2019).
        """
        assert self.binded and self.params_initialized
        if out_grads is not None:
            raise ValueError("ParallModule computes its own loss gradient; backward takes no out_grads")
        reduce_ctx = self._context[-1]
        raw = [shard.get_outputs()[0] for shard in self._shards]
        logits = [z if mask is None else mx.nd.broadcast_add(z, mask) for z, mask in zip(raw, self._masks)]
        shard_max = mx.nd.stack(*[mx.nd.max(z, axis=1).as_in_context(reduce_ctx) for z in logits], axis=1)
        row_max = mx.nd.max(shard_max, axis=1, keepdims=True)
        exps = [mx.nd.exp(mx.nd.broadcast_sub(z, row_max.as_in_context(z.context))) for z in logits]
        row_sum = mx.nd.add_n(*[mx.nd.sum(e, axis=1, keepdims=True).as_in_context(reduce_ctx)
                                for e in exps])
        self._loss = mx.nd.log(row_sum).reshape((-1,)) + row_max.reshape((-1,)) - self._target_logits(raw)
        if self._iter % self._verbose == 0:
            print('{fc7_acc}', self._iter, self._accuracy(logits))
        embedding_grad = None
        for shard, start, e in zip(self._shards, self._starts, exps):
            ctx = e.context
            onehot = mx.nd.one_hot((self._label - start).as_in_context(ctx), depth=self._per_shard)
            shard.backward(out_grads=[mx.nd.broadcast_div(e, row_sum.as_in_context(ctx)) - onehot])
            grad = shard.get_input_grads()[0].as_in_context(reduce_ctx)
            embedding_grad = grad if embedding_grad is None else embedding_grad + grad
        self._backbone.backward(out_grads=[embedding_grad])

    def _target_logits(self, raw):
        """Each row's logit of its own class, from the shard that owns it (on the reduce context)."""
        total = None
        for z, start in zip(raw, self._starts):
            local = (self._label - start).as_in_context(z.context)
            owned = (local >= 0) * (local < self._per_shard)
            picked = mx.nd.pick(z, mx.nd.clip(local, 0, self._per_shard - 1), axis=1) * owned
            picked = picked.as_in_context(self._context[-1])
            total = picked if total is None else total + picked
        return total

    def _accuracy(self, logits):
        """Share of rows whose largest logit (over all shards) is their label."""
        best = np.stack([mx.nd.max(z, axis=1).asnumpy() for z in logits], axis=1)
        where = np.stack([mx.nd.argmax(z, axis=1).asnumpy() for z in logits], axis=1)
        shard = best.argmax(axis=1)
        pred = np.array(self._starts)[shard] + where[np.arange(len(shard)), shard]
        return float(np.mean(pred == self._label.asnumpy()))

    def loss_values(self):
        """Per-sample cross-entropy of the last training batch (B,), for monitoring and NaN checks."""
        if self._loss is None:
            raise RuntimeError("no training step has run yet: loss_values() follows backward()")
        return self._loss

    def update(self):
        assert self.binded and self.params_initialized and self.optimizer_initialized
        self._backbone.update()
        for shard in self._shards:
            shard.update()
