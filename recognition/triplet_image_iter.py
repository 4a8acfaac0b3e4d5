"""TripletFaceImageIter: [anchor, positive, negative] batches mined semi-hard with the model in training."""
import random
import time

import mxnet as mx
import numpy as np

from recognition import image_iter

# The 2019 triplet iterator filled its cutout box with mid-grey 127.5 (image_iter uses 128).
CUTOFF_FILL = 127.5
# Anchor rows per distance block of pick_triplets: 1024 x bag float64, 59 MB for the default bag of 7200.
DISTANCE_BLOCK = 1024


def normalize_rows(embeddings):
    """L2-normalise each row in float64; an all-zero row stays zero (as sklearn's normalize)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    norms[norms == 0.0] = 1.0
    return embeddings / norms


def run_lengths(labels):
    """Sizes of the runs of equal consecutive labels: [0, 0, 3, 1, 1] -> [2, 1, 2]."""
    sizes = []
    for i, label in enumerate(labels):
        if i > 0 and label == labels[i - 1]:
            sizes[-1] += 1
        else:
            sizes.append(1)
    return sizes


def pick_triplets(embeddings, class_sizes, alpha, max_ap, rng):
    """FaceNet semi-hard mining on a bag laid out as consecutive class blocks of `class_sizes`.

    For every pair a < p inside a class (skipped if max_ap > 0 and d(a,p) > max_ap), the
    negatives are the images of other classes with d(a,p) < d(a,n) < d(a,p) + alpha (squared L2
    on the rows of `embeddings`, which should be L2-normalised); one is drawn uniformly with
    the numpy RandomState `rng`. Returns the (a, p, n) bag positions, shuffled with `rng`.
    """
    sizes = np.asarray(class_sizes)
    class_end = np.repeat(np.cumsum(sizes), sizes)
    class_start = class_end - np.repeat(sizes, sizes)
    sq_norms = np.einsum('ij,ij->i', embeddings, embeddings)
    triplets = []
    # Distance rows a block at a time: one big product is much faster than one per class.
    for first in range(0, len(embeddings), DISTANCE_BLOCK):
        rows = np.arange(first, min(first + DISTANCE_BLOCK, len(embeddings)))
        # Squared L2 in float64 (2019: float32 on hard-coded GPUs); rounding can dip below 0.
        block = sq_norms[rows, None] + sq_norms - 2.0 * (embeddings[rows] @ embeddings.T)
        block = np.maximum(block, 0.0)
        for a, neg in zip(rows, block):
            start, end = class_start[a], class_end[a]
            positives = neg[a + 1:end].copy()
            # The anchor's own class is never a negative (2019 set those distances to NaN).
            neg[start:end] = np.nan
            for p, pos in zip(range(a + 1, end), positives):
                if max_ap > 0.0 and pos > max_ap:
                    continue
                with np.errstate(invalid='ignore'):
                    candidates = np.flatnonzero((neg - pos < alpha) & (pos < neg))
                if len(candidates):
                    triplets.append((int(a), int(p), int(candidates[rng.randint(len(candidates))])))
    rng.shuffle(triplets)
    return triplets


class TripletFaceImageIter(image_iter.FaceImageIter):
    """Identity-structured .rec -> DataBatch whose every device slice is [A(T), P(T), N(T)], T = b // 3.

    reset() mines a new "epoch": bags of `bag_size` images (`images_per_identity` per identity,
    identities shuffled) are embedded by `mx_model` in inference mode, semi-hard triplets are
    picked (`pick_triplets`) and emitted until the epoch holds at least 2 * batch_size images.
    next() only mirrors (p=0.5) and applies the cutout (always, fill 127.5).

    `mx_model` is the training mx.mod.Module. It must be bound (for this batch_size) and have
    its parameters initialised before the first reset() or next(): call reset() once yourself
    on the main thread before wrapping the iterator in mx.io.PrefetchingIter, because an error
    raised inside the prefetch thread would leave Module.fit waiting forever:

        model.bind(it.provide_data, it.provide_label, for_training=True)
        model.init_params(initializer, arg_params, aux_params, allow_missing=True)
        it.reset()                                  # first mining, with the initial weights
        model.fit(mx.io.PrefetchingIter(it), ...)   # its bind/init_params are then no-ops

    `triplet_params` is [bag_size, alpha, max_ap]. `seed` seeds the iterator's own
    random.Random (identity and image order, per-image augmentation) and numpy RandomState
    (negative choice and triplet order), so a seeded run repeats exactly.

    For multi-machine training, `num_parts` workers each mine from their own identities:
    worker `part_index` takes every num_parts-th identity of the record file, so the parts are
    disjoint and together cover the set (2019 had every worker mine from all of them).
    """

    def __init__(self, batch_size, data_shape, path_imgrec=None, shuffle=False, aug_list=None,
                 rand_mirror=False, cutoff=0, ctx_num=1, images_per_identity=0,
                 triplet_params=None, mx_model=None, data_name='data', label_name='softmax_label',
                 num_threads=None, seed=None, num_parts=1, part_index=0, **kwargs):
        if not 0 <= part_index < num_parts:
            raise ValueError("part_index must be in 0..num_parts-1, got part %r of %r" % (part_index, num_parts))
        if not shuffle:
            raise ValueError("the triplet iterator needs shuffle=True (it always reshuffles identities)")
        if images_per_identity <= 0:
            raise ValueError("images_per_identity must be > 0 for triplet mining, got %r"
                             % (images_per_identity,))
        if triplet_params is None or len(triplet_params) != 3:
            raise ValueError("triplet_params must be [bag_size, alpha, max_ap], got %r" % (triplet_params,))
        if mx_model is None:
            raise ValueError("the triplet iterator needs mx_model, the training mx.mod.Module it mines with")
        bag_size, alpha, max_ap = triplet_params
        if not 0.0 <= alpha <= 1.0:
            raise ValueError("triplet alpha must be in [0, 1], got %r" % (alpha,))
        if ctx_num < 1 or batch_size % ctx_num:
            raise ValueError("batch_size %d must be a positive multiple of ctx_num %r (one slice per device)"
                             % (batch_size, ctx_num))
        per_batch_size = batch_size // ctx_num
        if per_batch_size < 3 or per_batch_size % 3:
            raise ValueError("per-device batch %d (batch_size %d / ctx_num %d) must be a positive multiple "
                             "of 3: anchor, positive and negative thirds"
                             % (per_batch_size, batch_size, ctx_num))
        if bag_size <= 0 or bag_size % batch_size:
            raise ValueError("triplet bag_size %r must be a positive multiple of batch_size %d "
                             "(the bag is embedded in whole batches)" % (bag_size, batch_size))
        super().__init__(batch_size, tuple(data_shape), path_imgrec=path_imgrec, shuffle=True,
                         aug_list=aug_list, rand_mirror=rand_mirror, cutoff=cutoff, data_name=data_name,
                         label_name=label_name, num_threads=num_threads, seed=seed)
        if self.reader.header is None:
            raise ValueError("%s has no identity header (record 0 with a [start, end) label); the "
                             "triplet iterator needs an identity-structured .rec" % path_imgrec)
        self.ctx_num = ctx_num
        self.per_batch_size = per_batch_size
        # Not FaceImageIter's num_parts (slices of one global batch): here whole identities.
        self.identity_parts = (num_parts, part_index)
        self.images_per_identity = images_per_identity
        self.mx_model = mx_model
        self.triplet_bag_size = int(bag_size)
        self.triplet_alpha = float(alpha)
        self.triplet_max_ap = float(max_ap)
        self.seq_min_size = 2 * batch_size
        self.np_rng = np.random.RandomState(seed)
        self.times = [0.0, 0.0, 0.0]  # seconds spent reading, embedding, picking
        self.triplet_cur = 0
        self.triplet_seq = []
        self.triplet_reset()
        self.seq = []

    def triplet_reset(self):
        """New identity order; each identity contributes its first images_per_identity shuffled images."""
        self.triplet_cur = 0
        num_parts, part_index = self.identity_parts
        identities = list(self.id2range)[part_index::num_parts]
        self.rng.shuffle(identities)
        self.triplet_seq = []
        for identity in identities:
            keys = list(range(*self.id2range[identity]))
            self.rng.shuffle(keys)
            self.triplet_seq += keys[:self.images_per_identity]
        print('triplet_seq', len(self.triplet_seq))
        if len(self.triplet_seq) < self.triplet_bag_size:
            share = '' if num_parts == 1 else ' (the %d identities of worker %d of %d)' % (
                len(identities), part_index, num_parts)
            raise ValueError("%s gives only %d images%s at images_per_identity=%d, fewer than the "
                             "triplet bag_size %d" % (self.reader.rec_path, len(self.triplet_seq), share,
                                                      self.images_per_identity, self.triplet_bag_size))

    def check_model(self):
        """The mining forward needs a bound, initialised module with this batch layout."""
        model = self.mx_model
        if not (model.binded and model.params_initialized):
            raise RuntimeError("triplet mining needs mx_model bound and initialised (binded=%s, "
                               "params_initialized=%s): call model.bind(...) and model.init_params(...) "
                               "before the first reset()/next(), and before wrapping the iterator in "
                               "PrefetchingIter" % (model.binded, model.params_initialized))
        bound_batch = model.data_shapes[0].shape[0]
        if bound_batch != self.batch_size:
            # Module.forward would silently reshape the training executors to our batch.
            raise RuntimeError("mx_model is bound for batch %d, the iterator's batch_size is %d"
                               % (bound_batch, self.batch_size))
        contexts = getattr(model, '_context', None)
        if contexts is not None and len(contexts) != self.ctx_num:
            raise RuntimeError("mx_model runs on %d devices but ctx_num is %d: each device slice must "
                               "be one [A, P, N] group" % (len(contexts), self.ctx_num))

    def read_plain(self, keys):
        """(labels, CHW float32 images) of `keys`, decoded only: the mining sees no augmentation."""
        labels = np.empty((len(keys),), dtype=np.float32)
        data = np.empty((len(keys),) + self.data_shape, dtype=np.float32)

        def fill(rows):
            for i in rows:
                labels[i], raw = self.reader.read_image(keys[i])
                img = image_iter.decode_rgb(raw, '%s record %d' % (self.reader.rec_path, keys[i]))
                self.check_size(img, keys[i])
                data[i] = img.transpose(2, 0, 1)

        slices = np.array_split(np.arange(len(keys)), self.num_threads)
        if self.pool is None:
            fill(slices[0])
        else:
            list(self.pool.map(fill, slices))
        return labels, data

    def check_size(self, img, key):
        if img.shape[:2] != self.data_shape[1:]:
            raise ValueError("%s record %d: image is %dx%d, the network wants %dx%d (the triplet "
                             "iterator does not resize)" % (self.reader.rec_path, key, img.shape[0],
                                                            img.shape[1], *self.data_shape[1:]))

    def embed_bag(self, keys):
        """(labels, L2-normalised float64 embeddings) of a bag, a batch at a time."""
        labels = []
        embeddings = []
        for start in range(0, len(keys), self.batch_size):
            chunk_labels, chunk = self.read_plain(keys[start:start + self.batch_size])
            self.mx_model.forward(mx.io.DataBatch(data=[mx.nd.array(chunk)]), is_train=False)
            # Output 0 is BlockGrad(fc1): the raw embedding, merged over the devices.
            embeddings.append(self.mx_model.get_outputs()[0].asnumpy())
            labels.append(chunk_labels)
        return np.concatenate(labels), normalize_rows(np.concatenate(embeddings))

    def select_triplets(self):
        """Mine bags until the epoch sequence holds at least seq_min_size images."""
        self.check_model()
        bag_size = self.triplet_bag_size
        third = self.per_batch_size // 3
        bags_per_pass = len(self.triplet_seq) // bag_size
        fruitless_bags = 0
        self.seq = []
        while len(self.seq) < self.seq_min_size:
            tic = time.time()
            print('eval %d images..' % bag_size, self.triplet_cur)
            print('triplet time stat', self.times)
            if self.triplet_cur + bag_size > len(self.triplet_seq):
                self.triplet_reset()
            keys = self.triplet_seq[self.triplet_cur:self.triplet_cur + bag_size]
            self.triplet_cur += bag_size
            self.times[0] += time.time() - tic

            tic = time.time()
            labels, embeddings = self.embed_bag(keys)
            self.times[1] += time.time() - tic

            tic = time.time()
            triplets = pick_triplets(embeddings, run_lengths(labels.tolist()), self.triplet_alpha,
                                     self.triplet_max_ap, self.np_rng)
            print('found triplets', len(triplets))
            before = len(self.seq)
            for start in range(0, len(triplets) - third + 1, third):
                group = triplets[start:start + third]  # the incomplete tail is dropped
                for role in range(3):
                    self.seq += [keys[triplet[role]] for triplet in group]
            self.times[2] += time.time() - tic

            # 2019 looped forever when the model yields no semi-hard triplets at all.
            fruitless_bags = fruitless_bags + 1 if len(self.seq) == before else 0
            if fruitless_bags > bags_per_pass:
                raise RuntimeError("triplet mining found no complete group of %d semi-hard triplets "
                                   "(alpha %g, max_ap %g) in %d bags in a row, more than a full pass over "
                                   "the identities; the embeddings may have collapsed"
                                   % (third, self.triplet_alpha, self.triplet_max_ap, fruitless_bags))

    def reset(self):
        print('call reset()')
        self.cur = 0
        self.select_triplets()
        print('seq len', len(self.seq))
        self.is_init = True  # a reset() on the main thread spares the prefetch thread the first mining

    def load_sample(self, key, seed):
        """Read and decode one image, random mirror, then the cutout box (always, when cutoff > 0)."""
        rng = random.Random(seed)
        label, data = self.reader.read_image(key)
        img = image_iter.decode_rgb(data, '%s record %d' % (self.reader.rec_path, key))
        self.check_size(img, key)
        if self.rand_mirror and rng.randint(0, 1) == 1:
            img = img[:, ::-1]
        img = img.astype(np.float32)
        if self.cutoff > 0:
            h, w = img.shape[:2]
            centre_h, centre_w = rng.randint(0, h - 1), rng.randint(0, w - 1)
            half = self.cutoff // 2
            img[max(0, centre_h - half):min(h, centre_h + half),
                max(0, centre_w - half):min(w, centre_w + half), :] = CUTOFF_FILL
        return label, img.transpose(2, 0, 1)


# The 2019 name of this class.
FaceImageIter = TripletFaceImageIter
