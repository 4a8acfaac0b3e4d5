"""The 2019 gender-age network: a MobileNet or ResNet body with 202 fc1 outputs, and its training head."""
import mxnet as mx
import numpy as np
from easydict import EasyDict as edict

from recognition.symbol import fmobilenet, fresnet, symbol_utils

AGE = 100
# fc1 = 2 gender logits, then one (no, yes) pair per question "is the age above i?", i = 0..99.
NUM_OUTPUTS = 2 + 2 * AGE
# Gender label of age-only records: the gender loss skips it (use_ignore), as in 2019.
GENDER_IGNORE = 9999
# Depths of the 2019 gender-age fresnet that use basic units; deeper ones (101 and up) used
# bottleneck units without the recognition fresnet's 512-channel reduction, not ported.
RESNET_DEPTHS = (18, 34, 49, 50, 74, 90, 100)


def mobilenet_fc1(multiplier=1.0, version_input=1, version_output='GAP'):
    """fmobilenet body with ReLU blocks; the head's activation is PReLU whatever the blocks use.

    The shipped 2019 model is multiplier 0.25 (8 to 256 channels), version_input 1 (stride-1
    stem), version_output 'GAP' (bn1 -> PReLU relu1 -> global average pool -> pre_fc1 -> fc1).
    """
    base = int(32 * multiplier)
    if base < 1:
        raise ValueError("multiplier=%r gives a base width of %d channels; expected at least 1/32"
                         % (multiplier, base))
    if version_input < 0:
        raise ValueError("version_input must be 0 or more, got %r" % (version_input,))
    print(version_input, version_output, base)  # the 2019 log line
    body = symbol_utils.normalize_input(mx.sym.Variable(name='data'))
    stem_stride = (2, 2) if version_input == 0 else (1, 1)
    body = fmobilenet._conv_bn_act(body, base, (3, 3), stem_stride, (1, 1), 'conv_1', 'relu')
    channels = base
    for index, (width, stride) in enumerate(fmobilenet.PAIRS, start=2):
        body = fmobilenet._conv_bn_act(body, channels, (3, 3), (stride, stride), (1, 1),
                                       'conv_%d_dw' % index, 'relu', num_group=channels)
        channels = base * width
        body = fmobilenet._conv_bn_act(body, channels, (1, 1), (1, 1), (0, 0), 'conv_%d' % index,
                                       'relu')
    # The gender-age symbol_utils always used PReLU in its heads.
    return symbol_utils.get_fc1(body, NUM_OUTPUTS, version_output, act_type='prelu', bn_mom=0.9)


def resnet_fc1(num_layers, version_input=1, version_output='GAP'):
    """fresnet body (IR units v3, no SE, PReLU) as the 2019 gender-age trainer built it."""
    if num_layers not in RESNET_DEPTHS:
        raise ValueError("gender-age resnet depth %r is not supported; valid depths: %s"
                         % (num_layers, ', '.join(str(d) for d in RESNET_DEPTHS)))
    config = edict(num_layers=num_layers, net_se=0, net_input=version_input,
                   net_output=version_output, net_unit=3, net_act='prelu', bn_mom=0.9,
                   workspace=256, emb_size=NUM_OUTPUTS)
    return fresnet.get_symbol(config)


def get_symbol(network='r50', multiplier=1.0, version_input=1, version_output='GAP'):
    """The fc1 symbol (202 outputs) of network 'm<anything>' (MobileNet) or 'r<depth>' (ResNet).

    Built under a fresh name counter, so the unnamed nodes get the 2019 names (flatten0, ...).
    """
    kind, depth = str(network)[:1], str(network)[1:]
    if kind not in ('m', 'r') or (kind == 'r' and not depth.isdigit()):
        raise ValueError("gender-age network must be 'm...' (MobileNet, width from multiplier) "
                         "or 'r<depth>' (ResNet, e.g. r50), got %r" % (network,))
    with mx.name.NameManager():
        if kind == 'm':
            return mobilenet_fc1(multiplier, version_input, version_output)
        return resnet_fc1(int(depth), version_input, version_output)


def training_symbol(fc1, per_batch_size):
    """fc1 sliced into the 2019 losses: softmax on [0:2] for gender, one per pair [2+2i, 4+2i].

    The label is (batch, 101): gender, then 100 bits "age > i". Outputs: gender_softmax,
    age_softmax_0..99, then BlockGrad(fc1) (what the metrics decode).
    """
    label = mx.sym.Variable('softmax_label')

    def column(i):
        return mx.sym.reshape(mx.sym.slice_axis(label, axis=1, begin=i, end=i + 1),
                              shape=(per_batch_size,))

    gender_fc1 = mx.sym.slice_axis(fc1, axis=1, begin=0, end=2)
    outputs = [mx.sym.SoftmaxOutput(data=gender_fc1, label=column(0), name='gender_softmax',
                                    normalization='valid', use_ignore=True,
                                    ignore_label=GENDER_IGNORE)]
    for i in range(AGE):
        age_fc1 = mx.sym.slice_axis(fc1, axis=1, begin=2 + 2 * i, end=4 + 2 * i)
        outputs.append(mx.sym.SoftmaxOutput(data=age_fc1, label=column(i + 1),
                                            name='age_softmax_%d' % i, normalization='valid',
                                            grad_scale=1))
    outputs.append(mx.sym.BlockGrad(fc1))
    return mx.sym.Group(outputs)


def decode_batch(fc1):
    """(genders, ages) int arrays from (batch, 202) outputs, as face_model.decode_gender_age."""
    values = np.asarray(fc1, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != NUM_OUTPUTS:
        raise ValueError("gender-age outputs must have shape (batch, %d), got %s"
                         % (NUM_OUTPUTS, values.shape))
    genders = np.argmax(values[:, 0:2], axis=1)
    ages = np.argmax(values[:, 2:].reshape(-1, AGE, 2), axis=2).sum(axis=1)
    return genders.astype(np.int64), ages.astype(np.int64)
