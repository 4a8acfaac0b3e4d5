"""Training heads on the fc1 embedding: fc7 classifier with softmax / margin losses, and triplet losses.

Margin losses use one formula for the target class y (the others keep s*cos(theta_j)):

    logit_y = s * (cos(m1 * theta_y + m2) - m3)

nsoftmax is (1, 0, 0), ArcFace (1, 0.5, 0), CosFace (1, 0, 0.35), combined (1, 0.3, 0.2).
SphereFace (A-Softmax, from the 2019 legacy trainer) is the multiplicative margin with annealing:

    logit_y = (beta * |x| cos(theta_y) + |x| psi(theta_y)) / (1 + beta),
    psi(theta) = (-1)^k cos(m theta) - 2k  for theta in [k pi/m, (k+1) pi/m],
    beta = max(beta_min, beta0 * (1 + gamma * (step - freeze))^-power).
"""
import math

import mxnet as mx

# arccos has an infinite derivative at +-1 and float32 cosines of unit vectors can land just
# outside [-1, 1]; clipping a hair inside keeps the margin finite (decisions.md, L2).
COS_CLIP = 1.0 - 1e-6

SOFTMAX_LOSSES = ('softmax', 'margin_softmax', 'sphereface')
TRIPLET_LOSSES = ('triplet', 'atriplet')


def fc7_weight(config):
    """The classifier weight Variable `fc7_weight` (num_classes x emb_size), Normal(0.01) init.

    lr_mult / wd_mult are set as attributes like 2019, where the optimiser never read them
    (decisions.md, T3).
    """
    return mx.sym.Variable('fc7_weight', shape=(config.num_classes, config.emb_size),
                           lr_mult=config.fc7_lr_mult, wd_mult=config.fc7_wd_mult,
                           init=mx.init.Normal(0.01))


def margin_softmax_logits(embedding, label, weight, num_classes, s, m1, m2, m3):
    """s*cos(theta_j) for every class, with the margin applied to the label's class."""
    norm_weight = mx.sym.L2Normalization(weight, mode='instance')
    norm_embedding = mx.sym.L2Normalization(embedding, mode='instance', name='fc1n') * s
    fc7 = mx.sym.FullyConnected(data=norm_embedding, weight=norm_weight, no_bias=True,
                                num_hidden=num_classes, name='fc7')
    if (m1, m2, m3) == (1.0, 0.0, 0.0):
        return fc7
    if m1 == 1.0 and m2 == 0.0:
        # Pure additive cosine margin (CosFace): no arccos needed. Like 2019, taken even for m3 < 0.
        return fc7 - mx.sym.one_hot(label, depth=num_classes, on_value=s * m3, off_value=0.0)
    target = mx.sym.pick(fc7, label, axis=1)
    cos_t = mx.sym.clip(target / s, -COS_CLIP, COS_CLIP)
    theta = mx.sym.arccos(cos_t)
    if m1 != 1.0:
        theta = theta * m1
    if m2 > 0.0:  # 2019 train.py ignores a negative m2 or m3 (">", not "!=")
        theta = theta + m2
    body = mx.sym.cos(theta)
    if m3 > 0.0:
        body = body - m3
    diff = body * s - target
    onehot = mx.sym.one_hot(label, depth=num_classes, on_value=1.0, off_value=0.0)
    return fc7 + mx.sym.broadcast_mul(onehot, mx.sym.expand_dims(diff, 1))


def sphereface_beta(step, beta, beta_min, gamma, power, freeze):
    """The legacy trainer's annealing of the A-Softmax blend factor, as a function of the batch."""
    return max(beta_min, beta * math.pow(1.0 + gamma * max(step - freeze, 0), -power))


class _SphereFaceWeight(mx.operator.CustomOp):
    """Outputs 1/(1+beta(step)) per row; counts training batches in its auxiliary `step`."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def forward(self, is_train, req, in_data, out_data, aux):
        step = float(aux[0].asscalar())
        weight = 1.0 / (1.0 + sphereface_beta(step, *self.schedule))
        self.assign(out_data[0], req[0], mx.nd.full(out_data[0].shape, weight, ctx=out_data[0].context))
        if is_train:
            aux[0][:] = step + 1

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        self.assign(in_grad[0], req[0], mx.nd.zeros(in_grad[0].shape, ctx=in_grad[0].context))


@mx.operator.register('sphereface_weight')
class _SphereFaceWeightProp(mx.operator.CustomOpProp):
    def __init__(self, beta, beta_min, gamma, power, freeze):
        super().__init__(need_top_grad=False)
        self.schedule = tuple(float(v) for v in (beta, beta_min, gamma, power, freeze))

    def list_arguments(self):
        return ['data']

    def list_outputs(self):
        return ['output']

    def list_auxiliary_states(self):
        return ['step']

    def infer_shape(self, in_shape):
        return in_shape, [in_shape[0]], [(1,)]

    def create_operator(self, ctx, shapes, dtypes):
        return _SphereFaceWeight(self.schedule)


def sphereface_logits(embedding, label, weight, num_classes, m, beta, beta_min, gamma, power, freeze):
    """|x| cos(theta_j) with unit-norm class weights; the label's logit gets the annealed A-Softmax margin.

    The batch counter behind the annealing is the auxiliary state `sphereface_step`, so it is
    saved in --resume states and averaged like BatchNorm statistics across devices.
    """
    if int(m) != m or m < 1:
        raise ValueError("SphereFace needs an integer margin loss_m1 >= 1, got %r" % (m,))
    norm_weight = mx.sym.L2Normalization(weight, mode='instance')
    fc7 = mx.sym.FullyConnected(data=embedding, weight=norm_weight, no_bias=True,
                                num_hidden=num_classes, name='fc7')
    target = mx.sym.pick(fc7, label, axis=1)
    x_norm = mx.sym.sqrt(mx.sym.sum(mx.sym.square(embedding), axis=1) + 1e-10)
    theta = mx.sym.arccos(mx.sym.clip(target / x_norm, -COS_CLIP, COS_CLIP))
    k = mx.sym.BlockGrad(mx.sym.floor(theta * (m / math.pi)))
    sign = 1.0 - 2.0 * (k - 2.0 * mx.sym.floor(k / 2.0))  # (-1)^k
    psi = sign * mx.sym.cos(theta * m) - 2.0 * k
    step = mx.sym.Variable('sphereface_step', init=mx.init.Zero())
    blend = mx.sym.Custom(target, step, op_type='sphereface_weight', beta=beta, beta_min=beta_min,
                          gamma=gamma, power=power, freeze=freeze, name='sphereface')
    diff = (x_norm * psi - target) * blend
    onehot = mx.sym.one_hot(label, depth=num_classes, on_value=1.0, off_value=0.0)
    return fc7 + mx.sym.broadcast_mul(onehot, mx.sym.expand_dims(diff, 1))


def cross_entropy_value(fc7, label, num_classes, per_batch_size):
    """Mean cross-entropy of the (margin) logits over one device's batch, as a monitoring output.

    2019 took log(softmax(x)), which is +inf once p_y underflows; log_softmax gives the same value
    where that was finite and stays finite elsewhere (decisions.md, L3).
    """
    picked = mx.sym.log_softmax(fc7, axis=1) * mx.sym.one_hot(label, depth=num_classes,
                                                              on_value=-1.0, off_value=0.0)
    return mx.sym.sum(picked) / per_batch_size


def triplet_loss(embedding, per_batch_size, alpha, angular):
    """mean(relu(d(a,p) - d(a,n) + alpha)) on L2-normalised rows laid out [anchors, positives, negatives].

    d is the squared L2 distance ('triplet') or the angle ('atriplet').
    """
    if per_batch_size % 3:
        raise ValueError("triplet losses need per_batch_size divisible by 3 (anchor, positive, "
                         "negative thirds), got %d" % per_batch_size)
    third = per_batch_size // 3
    normed = mx.sym.L2Normalization(embedding, mode='instance', name='fc1n')
    anchor = mx.sym.slice_axis(normed, axis=0, begin=0, end=third)
    positive = mx.sym.slice_axis(normed, axis=0, begin=third, end=2 * third)
    negative = mx.sym.slice_axis(normed, axis=0, begin=2 * third, end=per_batch_size)
    if angular:
        ap = mx.sym.arccos(mx.sym.clip(mx.sym.sum(anchor * positive, axis=1, keepdims=True),
                                       -COS_CLIP, COS_CLIP))
        an = mx.sym.arccos(mx.sym.clip(mx.sym.sum(anchor * negative, axis=1, keepdims=True),
                                       -COS_CLIP, COS_CLIP))
    else:
        ap = mx.sym.sum(mx.sym.square(anchor - positive), axis=1, keepdims=True)
        an = mx.sym.sum(mx.sym.square(anchor - negative), axis=1, keepdims=True)
    return mx.sym.mean(mx.sym.relu(ap - an + alpha))


def get_training_symbol(config, embedding, per_batch_size):
    """The 2019 training outputs, addressed by position by the metrics and the verification.

    Softmax-type losses: [BlockGrad(fc1), SoftmaxOutput 'softmax' (b x C), BlockGrad(ce) (1,)]
    (the last only with config.ce_loss). Triplet losses: [BlockGrad(fc1), BlockGrad(label), MakeLoss].
    Unnamed ops take mxnet's global name counters: build the backbone and this head inside one
    fresh `mx.name.NameManager()` to get the 2019 names (blockgrad0_output, ...).
    """
    label = mx.sym.Variable('softmax_label')
    loss_name = config.loss_name
    outputs = [mx.sym.BlockGrad(embedding)]
    if loss_name in TRIPLET_LOSSES:
        loss = triplet_loss(embedding, per_batch_size, config.triplet_alpha, loss_name == 'atriplet')
        outputs += [mx.sym.BlockGrad(label), mx.sym.MakeLoss(loss)]
        return mx.sym.Group(outputs)
    if loss_name not in SOFTMAX_LOSSES:
        raise ValueError("unknown loss_name %r in config; expected one of %s"
                         % (loss_name, ', '.join(SOFTMAX_LOSSES + TRIPLET_LOSSES)))
    weight = fc7_weight(config)
    if loss_name == 'softmax':
        if config.fc7_no_bias:
            fc7 = mx.sym.FullyConnected(data=embedding, weight=weight, no_bias=True,
                                        num_hidden=config.num_classes, name='fc7')
        else:
            bias = mx.sym.Variable('fc7_bias', lr_mult=2.0, wd_mult=0.0)
            fc7 = mx.sym.FullyConnected(data=embedding, weight=weight, bias=bias,
                                        num_hidden=config.num_classes, name='fc7')
    elif loss_name == 'sphereface':
        fc7 = sphereface_logits(embedding, label, weight, config.num_classes, config.loss_m1,
                                config.loss_beta, config.loss_beta_min, config.loss_gamma,
                                config.loss_power, config.loss_beta_freeze)
    else:
        fc7 = margin_softmax_logits(embedding, label, weight, config.num_classes, config.loss_s,
                                    config.loss_m1, config.loss_m2, config.loss_m3)
    outputs.append(mx.sym.SoftmaxOutput(data=fc7, label=label, name='softmax',
                                        normalization='valid'))
    if config.ce_loss:
        outputs.append(mx.sym.BlockGrad(cross_entropy_value(fc7, label, config.num_classes,
                                                            per_batch_size)))
    return mx.sym.Group(outputs)
