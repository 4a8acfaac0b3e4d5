"""Training configuration: global keys, network / dataset / loss presets and CLI defaults.

Copy this file to config.py and edit it (``cp sample_config.py config.py``); train.py reads config.py
from the current directory, or from beside itself.
"""
import os

from easydict import EasyDict as edict

config = edict()

config.bn_mom = 0.9
config.workspace = 256
config.emb_size = 512
config.ckpt_embedding = True
config.net_se = 0
config.net_act = 'prelu'
config.net_unit = 3
config.net_input = 1
config.net_blocks = [1, 4, 6, 2]
config.net_output = 'E'
config.net_multiplier = 1.0
config.val_targets = ['lfw', 'cfp_fp', 'agedb_30']
config.ce_loss = True
config.fc7_lr_mult = 1.0
config.fc7_wd_mult = 1.0
config.fc7_no_bias = False
config.max_steps = 0
config.data_rand_mirror = True
config.data_cutoff = False
config.data_color = 0
config.data_images_filter = 0
config.count_flops = True
# Run PReLU as oneDNN-native ops on CPU (common/symbol_rewrite.py): same params, same outputs.
config.fast_prelu = True


# ---- network presets (--network) ----
network = edict()

network.r100 = edict()
network.r100.net_name = 'fresnet'
network.r100.num_layers = 100

network.r100fc = edict()
network.r100fc.net_name = 'fresnet'
network.r100fc.num_layers = 100
network.r100fc.net_output = 'FC'

network.r50 = edict()
network.r50.net_name = 'fresnet'
network.r50.num_layers = 50

network.r50v1 = edict()
network.r50v1.net_name = 'fresnet'
network.r50v1.num_layers = 50
network.r50v1.net_unit = 1

network.d169 = edict()
network.d169.net_name = 'fdensenet'
network.d169.num_layers = 169
network.d169.per_batch_size = 64
network.d169.densenet_dropout = 0.0

network.d201 = edict()
network.d201.net_name = 'fdensenet'
network.d201.num_layers = 201
network.d201.per_batch_size = 64
network.d201.densenet_dropout = 0.0

network.y1 = edict()
network.y1.net_name = 'fmobilefacenet'
network.y1.emb_size = 128
network.y1.net_output = 'GDC'

network.y2 = edict()
network.y2.net_name = 'fmobilefacenet'
network.y2.emb_size = 256
network.y2.net_output = 'GDC'
network.y2.net_blocks = [2, 8, 16, 4]

network.m1 = edict()
network.m1.net_name = 'fmobilenet'
network.m1.emb_size = 256
network.m1.net_output = 'GDC'
network.m1.net_multiplier = 1.0

network.m05 = edict()
network.m05.net_name = 'fmobilenet'
network.m05.emb_size = 256
network.m05.net_output = 'GDC'
network.m05.net_multiplier = 0.5

network.mnas = edict()
network.mnas.net_name = 'fmnasnet'
network.mnas.emb_size = 256
network.mnas.net_output = 'GDC'
network.mnas.net_multiplier = 1.0

network.mnas05 = edict()
network.mnas05.net_name = 'fmnasnet'
network.mnas05.emb_size = 256
network.mnas05.net_output = 'GDC'
network.mnas05.net_multiplier = 0.5

network.mnas025 = edict()
network.mnas025.net_name = 'fmnasnet'
network.mnas025.emb_size = 256
network.mnas025.net_output = 'GDC'
network.mnas025.net_multiplier = 0.25

# Backbones of the 2019 release's older generation (src/symbols), selectable here too.
network.irv2 = edict()
network.irv2.net_name = 'finception_resnet_v2'
network.irv2.net_input = 1

network.dpn68 = edict()
network.dpn68.net_name = 'fdpn'
network.dpn68.num_layers = 68

network.dpn92 = edict()
network.dpn92.net_name = 'fdpn'
network.dpn92.num_layers = 92

network.dpn107 = edict()
network.dpn107.net_name = 'fdpn'
network.dpn107.num_layers = 107

network.dpn131 = edict()
network.dpn131.net_name = 'fdpn'
network.dpn131.num_layers = 131

network.xception = edict()
network.xception.net_name = 'fxception'
network.xception.net_input = 1

network.mv2 = edict()
network.mv2.net_name = 'fmobilenetv2'

network.nasnet = edict()
network.nasnet.net_name = 'fnasnet'

network.s20 = edict()
network.s20.net_name = 'spherenet'
network.s20.num_layers = 20

network.s36 = edict()
network.s36.net_name = 'spherenet'
network.s36.num_layers = 36

network.s60 = edict()
network.s60.net_name = 'spherenet'
network.s60.num_layers = 60

network.s64 = edict()
network.s64.net_name = 'spherenet'
network.s64.num_layers = 64

network.s104 = edict()
network.s104.net_name = 'spherenet'
network.s104.num_layers = 104


# ---- dataset presets (--dataset) ----
dataset = edict()

dataset.emore = edict()
dataset.emore.dataset = 'emore'
dataset.emore.dataset_path = '../datasets/faces_emore'
dataset.emore.num_classes = 85742
dataset.emore.image_shape = (112, 112, 3)
dataset.emore.val_targets = ['lfw', 'cfp_fp', 'agedb_30']

dataset.retina = edict()
dataset.retina.dataset = 'retina'
dataset.retina.dataset_path = '../datasets/ms1m-retinaface-t1'
dataset.retina.num_classes = 93431
dataset.retina.image_shape = (112, 112, 3)
dataset.retina.val_targets = ['lfw', 'cfp_fp', 'agedb_30']


# ---- loss presets (--loss); margin logit of the target class: s * (cos(m1*theta + m2) - m3) ----
loss = edict()

loss.softmax = edict()
loss.softmax.loss_name = 'softmax'

loss.nsoftmax = edict()
loss.nsoftmax.loss_name = 'margin_softmax'
loss.nsoftmax.loss_s = 64.0
loss.nsoftmax.loss_m1 = 1.0
loss.nsoftmax.loss_m2 = 0.0
loss.nsoftmax.loss_m3 = 0.0

loss.arcface = edict()
loss.arcface.loss_name = 'margin_softmax'
loss.arcface.loss_s = 64.0
loss.arcface.loss_m1 = 1.0
loss.arcface.loss_m2 = 0.5
loss.arcface.loss_m3 = 0.0

loss.cosface = edict()
loss.cosface.loss_name = 'margin_softmax'
loss.cosface.loss_s = 64.0
loss.cosface.loss_m1 = 1.0
loss.cosface.loss_m2 = 0.0
loss.cosface.loss_m3 = 0.35

loss.combined = edict()
loss.combined.loss_name = 'margin_softmax'
loss.combined.loss_s = 64.0
loss.combined.loss_m1 = 1.0
loss.combined.loss_m2 = 0.3
loss.combined.loss_m3 = 0.2

# SphereFace (A-Softmax) of the 2019 legacy trainer: integer margin m, blend factor beta annealed
# from loss_beta to loss_beta_min as beta * (1 + gamma * (batch - freeze)) ** -power.
loss.sphereface = edict()
loss.sphereface.loss_name = 'sphereface'
loss.sphereface.loss_m1 = 4
loss.sphereface.loss_beta = 1000.0
loss.sphereface.loss_beta_min = 5.0
loss.sphereface.loss_beta_freeze = 0
loss.sphereface.loss_gamma = 0.12
loss.sphereface.loss_power = 1.0

loss.triplet = edict()
loss.triplet.loss_name = 'triplet'
loss.triplet.images_per_identity = 5
loss.triplet.triplet_alpha = 0.3
loss.triplet.triplet_bag_size = 7200
loss.triplet.triplet_max_ap = 0.0
loss.triplet.per_batch_size = 60
loss.triplet.lr = 0.05

loss.atriplet = edict()
loss.atriplet.loss_name = 'atriplet'
loss.atriplet.images_per_identity = 5
loss.atriplet.triplet_alpha = 0.35
loss.atriplet.triplet_bag_size = 7200
loss.atriplet.triplet_max_ap = 0.0
loss.atriplet.per_batch_size = 60
loss.atriplet.lr = 0.05


# ---- defaults of the train.py command line ----
default = edict()

default.network = 'r100'
default.pretrained = ''
default.pretrained_epoch = 1
default.dataset = 'emore'
default.loss = 'arcface'
default.frequent = 20
default.verbose = 2000
default.kvstore = 'device'

default.end_epoch = 10000
default.lr = 0.1
default.wd = 0.0005
default.mom = 0.9
default.per_batch_size = 128
default.ckpt = 3
default.lr_steps = '100000,160000,220000'
default.models_root = './models'


def generate_config(_network, _dataset, _loss):
    """Fold the chosen presets into `config`: loss first, then network, then dataset.

    A preset key that is also a CLI default (per_batch_size, lr, ...) updates `default` too, so a
    later preset wins. Like the 2019 code, this changes the module's globals in place.
    """
    for preset in (loss[_loss], network[_network], dataset[_dataset]):
        for k, v in preset.items():
            config[k] = v
            if k in default:
                default[k] = v
    config.loss = _loss
    config.network = _network
    config.dataset = _dataset
    config.num_workers = int(os.environ.get('DMLC_NUM_WORKER', 1))
