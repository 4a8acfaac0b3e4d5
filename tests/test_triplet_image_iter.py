"""TripletFaceImageIter: semi-hard mining checked in numpy, batch layout, seeds, errors, a fit."""
import cv2
import mxnet as mx
import numpy as np
import pytest
from easydict import EasyDict as edict

from common.record_io import IdentityRecordWriter
from recognition import losses, triplet_image_iter
from recognition.metric import LossValueMetric
from recognition.triplet_image_iter import TripletFaceImageIter, pick_triplets

SIZE = 16
EMB = 8
PER_BATCH = 6  # T = 2 triplets per device slice
CONTEXTS = [mx.cpu(0), mx.cpu(1)]
BATCH = PER_BATCH * len(CONTEXTS)


def make_rec(path, identities=6, images=5, seed=0):
    """Each identity is a random base picture plus per-image noise, so classes overlap a little."""
    rng = np.random.RandomState(seed)
    with IdentityRecordWriter(str(path)) as writer:
        for label in range(identities):
            base = rng.randint(40, 216, size=(SIZE, SIZE, 3))
            for _ in range(images):
                img = np.clip(base + rng.randint(-40, 41, size=base.shape), 0, 255).astype(np.uint8)
                ok, buf = cv2.imencode('.png', img[:, :, ::-1])
                writer.add_image(buf.tobytes(), label, aligned=1)
    return str(path)


@pytest.fixture(scope='module')
def rec(tmp_path_factory):
    return make_rec(tmp_path_factory.mktemp('triplet') / 'train.rec')


def make_module(per_batch=PER_BATCH, contexts=CONTEXTS, alpha=0.3):
    """fc1 = FullyConnected of the flattened, 2019-normalised image, under the triplet head."""
    with mx.name.NameManager():
        data = mx.sym.Variable('data')
        flat = mx.sym.flatten((data - 127.5) * 0.0078125)
        fc1 = mx.sym.FullyConnected(flat, num_hidden=EMB, name='fc1')
        sym = losses.get_training_symbol(edict(loss_name='triplet', triplet_alpha=alpha), fc1, per_batch)
    return mx.mod.Module(sym, context=contexts)


def make_iter(rec, model, seed=0, bag=24, alpha=0.5, max_ap=0.0, **kwargs):
    settings = dict(batch_size=BATCH, data_shape=(3, SIZE, SIZE), path_imgrec=rec, shuffle=True,
                    ctx_num=len(CONTEXTS), images_per_identity=5, triplet_params=[bag, alpha, max_ap],
                    mx_model=model, num_threads=2, seed=seed)
    settings.update(kwargs)
    return TripletFaceImageIter(**settings)


def bind(model, it, init_seed=1):
    model.bind(data_shapes=it.provide_data, label_shapes=it.provide_label, for_training=True)
    mx.random.seed(init_seed)
    model.init_params(mx.init.Xavier(magnitude=2))


def numpy_embeddings(model, it):
    """key -> L2-normalised fc1 embedding, recomputed in numpy from the module's weights."""
    args, _ = model.get_params()
    weight, bias = args['fc1_weight'].asnumpy(), args['fc1_bias'].asnumpy()
    out = {}
    for key in it.imgidx:
        _, raw = it.reader.read_image(key)
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        x = (img.transpose(2, 0, 1).astype(np.float64) - 127.5) * 0.0078125
        e = weight.astype(np.float64) @ x.ravel() + bias
        out[key] = e / np.linalg.norm(e)
    return out


def emitted_triplets(it):
    """(anchor, positive, negative) keys of it.seq, per device slice of [A(T), P(T), N(T)]."""
    third = PER_BATCH // 3
    seq = it.seq
    assert len(seq) % PER_BATCH == 0
    triplets = []
    for start in range(0, len(seq), PER_BATCH):
        group = seq[start:start + PER_BATCH]
        triplets += zip(group[:third], group[third:2 * third], group[2 * third:])
    return triplets


def test_mined_triplets_are_semi_hard_and_batches_are_laid_out_per_device(rec):
    model = make_module()
    it = make_iter(rec, model, alpha=0.5)
    bind(model, it)
    it.reset()
    assert len(it.seq) >= 2 * BATCH
    emb = numpy_embeddings(model, it)
    labels = {key: it.reader.read_image(key)[0] for key in it.imgidx}
    for a, p, n in emitted_triplets(it):
        assert labels[a] == labels[p] != labels[n] and a != p
        pos = np.sum((emb[a] - emb[p]) ** 2)
        neg = np.sum((emb[a] - emb[n]) ** 2)
        assert pos < neg + 1e-5 and neg - pos < 0.5 + 1e-5, (pos, neg)

    batches = list(it)
    assert len(batches) == len(it.seq) // BATCH  # a partial last batch is dropped
    third = PER_BATCH // 3
    for number, batch in enumerate(batches):
        label = batch.label[0].asnumpy()
        assert label.tolist() == [labels[k] for k in it.seq[number * BATCH:(number + 1) * BATCH]]
        for dev in range(len(CONTEXTS)):
            part = label[dev * PER_BATCH:(dev + 1) * PER_BATCH]
            anchor, positive, negative = part[:third], part[third:2 * third], part[2 * third:]
            assert np.array_equal(anchor, positive) and np.all(anchor != negative)


def reference_candidates(emb, sizes, alpha, max_ap):
    """{(a, p): set of semi-hard negatives} for every pair that has at least one."""
    dist = ((emb[:, None, :] - emb[None, :, :]) ** 2).sum(-1)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    result = {}
    for a in range(len(emb)):
        for p in range(a + 1, len(emb)):
            if owner[a] != owner[p] or (max_ap > 0 and dist[a, p] > max_ap):
                continue
            negs = {n for n in range(len(emb)) if owner[n] != owner[a]
                    and dist[a, p] < dist[a, n] and dist[a, n] - dist[a, p] < alpha}
            if negs:
                result[(a, p)] = negs
    return result


@pytest.mark.parametrize('max_ap', [0.0, 0.8])
def test_pick_triplets_takes_one_semi_hard_negative_per_pair(max_ap, monkeypatch):
    rng = np.random.RandomState(5)
    sizes = [4, 1, 3, 5, 2]
    emb = triplet_image_iter.normalize_rows(rng.randn(sum(sizes), 3))
    expected = reference_candidates(emb, sizes, 0.4, max_ap)
    triplets = pick_triplets(emb, sizes, 0.4, max_ap, np.random.RandomState(0))
    assert sorted((a, p) for a, p, _ in triplets) == sorted(expected)
    for a, p, n in triplets:
        assert n in expected[(a, p)]
    if max_ap > 0:  # the filter removed some pairs that had candidates
        assert len(expected) < len(reference_candidates(emb, sizes, 0.4, 0.0))
    # Negatives are drawn at random and the list is shuffled, both from the given RandomState.
    again = pick_triplets(emb, sizes, 0.4, max_ap, np.random.RandomState(0))
    other = pick_triplets(emb, sizes, 0.4, max_ap, np.random.RandomState(1))
    assert again == triplets and other != triplets and sorted(other) != sorted(triplets)
    # Distance blocks that cut through classes change nothing.
    monkeypatch.setattr(triplet_image_iter, 'DISTANCE_BLOCK', 4)
    assert pick_triplets(emb, sizes, 0.4, max_ap, np.random.RandomState(0)) == triplets


def test_max_ap_limits_the_anchor_positive_distance(rec):
    model = make_module()
    it = make_iter(rec, model, alpha=1.0, max_ap=0.9)
    bind(model, it)
    it.reset()
    emb = numpy_embeddings(model, it)
    pos = [np.sum((emb[a] - emb[p]) ** 2) for a, p, _ in emitted_triplets(it)]
    assert pos and max(pos) <= 0.9 + 1e-5


def test_same_seed_same_epochs_and_other_seed_differs(rec):
    model = make_module()

    def two_epochs(seed):
        it = make_iter(rec, model, seed=seed, rand_mirror=True, cutoff=6)
        if not model.binded:
            bind(model, it)
        out = []
        for _ in range(2):
            it.reset()
            out.append([(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in it])
        return out

    first, again, other = two_epochs(3), two_epochs(3), two_epochs(4)
    for epoch_a, epoch_b in zip(first, again):
        assert len(epoch_a) == len(epoch_b)
        for (da, la), (db, lb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(la, lb)
            np.testing.assert_array_equal(da, db)
    flat = lambda epochs: np.concatenate([lbl for epoch in epochs for _, lbl in epoch])
    assert not np.array_equal(flat(first)[:BATCH * 2], flat(other)[:BATCH * 2])


def test_next_mirrors_and_always_cuts_out_with_127_5(rec):
    model = make_module()
    it = make_iter(rec, model, rand_mirror=True, cutoff=6)
    bind(model, it)
    batch = it.next()  # the first next() mines
    data = batch.data[0].asnumpy()
    mirrored = 0
    for row, key in enumerate(it.seq[:BATCH]):
        _, raw = it.reader.read_image(key)
        plain = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
        plain = plain.transpose(2, 0, 1).astype(np.float32)
        cut = data[row] == 127.5  # a uint8 image never holds 127.5
        assert cut.any() and cut.all(axis=0).sum() == cut[0].sum()  # a box over all channels
        if np.array_equal(data[row][~cut], plain[~cut]):
            continue
        np.testing.assert_array_equal(data[row][~cut], plain[:, :, ::-1][~cut])
        mirrored += 1
    assert 0 < mirrored < BATCH


def test_unbound_or_mismatched_model_is_a_clear_error(rec):
    model = make_module()
    it = make_iter(rec, model)
    with pytest.raises(RuntimeError, match='bound and initialised'):
        it.reset()
    with pytest.raises(RuntimeError, match='bound and initialised'):
        it.next()
    small = make_module(contexts=[mx.cpu()])
    small.bind(data_shapes=[('data', (PER_BATCH, 3, SIZE, SIZE))],
               label_shapes=[('softmax_label', (PER_BATCH,))])
    small.init_params()
    with pytest.raises(RuntimeError, match='bound for batch 6'):
        make_iter(rec, small).reset()
    one_device = make_module(per_batch=BATCH, contexts=[mx.cpu()])
    one_device.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    one_device.init_params()
    with pytest.raises(RuntimeError, match='1 devices but ctx_num is 2'):
        make_iter(rec, one_device).reset()


@pytest.mark.parametrize('change,message', [
    (dict(shuffle=False), 'shuffle=True'),
    (dict(images_per_identity=0), 'images_per_identity must be > 0'),
    (dict(triplet_params=None), r'\[bag_size, alpha, max_ap\]'),
    (dict(mx_model=None), 'needs mx_model'),
    (dict(alpha=1.5), r'alpha must be in \[0, 1\], got 1.5'),
    (dict(alpha=-0.1), r'alpha must be in \[0, 1\]'),
    (dict(bag=18), 'bag_size 18 must be a positive multiple of batch_size 12'),
    (dict(batch_size=8), 'per-device batch 4 .* multiple of 3'),
    (dict(batch_size=9), 'batch_size 9 must be a positive multiple of ctx_num 2'),
    (dict(bag=36), 'only 30 images at images_per_identity=5, fewer than the triplet bag_size 36'),
])
def test_invalid_settings_are_clear_errors(rec, change, message):
    model = make_module()
    with pytest.raises(ValueError, match=message):
        make_iter(rec, model, **change)


def test_flat_record_file_is_rejected(tmp_path):
    path = str(tmp_path / 'flat.rec')
    record = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'flat.idx'), path, 'w')
    ok, buf = cv2.imencode('.png', np.zeros((SIZE, SIZE, 3), np.uint8))
    for key in range(BATCH):
        record.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, 0.0, key, 0), buf.tobytes()))
    record.close()
    with pytest.raises(ValueError, match='no identity header'):
        make_iter(path, make_module())


def test_collapsed_embeddings_stop_with_an_error_instead_of_looping(rec):
    model = make_module()
    it = make_iter(rec, model)
    bind(model, it)
    args, aux = model.get_params()
    args['fc1_weight'][:] = 0.0  # every image gets the same embedding: nothing is semi-hard
    model.set_params(args, aux)
    with pytest.raises(RuntimeError, match='no complete group of 2 semi-hard triplets'):
        it.reset()


def test_fit_through_prefetching_iter_gives_a_finite_loss(rec):
    model = make_module()
    it = make_iter(rec, model, alpha=0.5)
    # The train.py wiring: bind and initialise, mine once on this thread, then prefetch and fit.
    bind(model, it)
    it.reset()
    losses_seen = []

    def record_loss(param):
        losses_seen.append(model.get_outputs()[-1].asnumpy()[0])

    model.fit(mx.io.PrefetchingIter(it), num_epoch=1, eval_metric=LossValueMetric(), optimizer='sgd',
              optimizer_params={'learning_rate': 0.05}, initializer=mx.init.Xavier(magnitude=2),
              allow_missing=True, batch_end_callback=record_loss)
    assert len(losses_seen) >= 2 and np.all(np.isfinite(losses_seen))
    assert max(losses_seen) > 0  # semi-hard triplets violate the margin, so the loss is positive


def test_2019_name_is_an_alias():
    assert triplet_image_iter.FaceImageIter is TripletFaceImageIter


def test_workers_mine_from_disjoint_identity_shares(rec):
    """With num_parts workers, each mines only its own every-num_parts-th identities."""
    identities = {}
    for part in range(2):
        model = make_module()
        it = make_iter(rec, model, bag=12, num_parts=2, part_index=part)
        bind(model, it)
        it.reset()
        labels = {int(it.reader.read_image(key)[0]) for key in it.triplet_seq}
        used = {int(it.reader.read_image(key)[0]) for key in it.seq}
        assert used <= labels and len(it.triplet_seq) == 3 * 5
        identities[part] = labels
    assert identities[0] == {0, 2, 4} and identities[1] == {1, 3, 5}
    # One worker alone sees all six identities (the first triplet_reset draws them in order).
    alone = make_iter(rec, make_module(), bag=24)
    assert {int(alone.reader.read_image(key)[0]) for key in alone.triplet_seq} == set(range(6))
    with pytest.raises(ValueError, match='part_index must be in 0..num_parts-1'):
        make_iter(rec, make_module(), num_parts=2, part_index=2)
    # A share too small for the bag names the worker.
    with pytest.raises(ValueError, match=r'only 15 images \(the 3 identities of worker 1 of 2\).*bag_size 24'):
        make_iter(rec, make_module(), bag=24, num_parts=2, part_index=1)
