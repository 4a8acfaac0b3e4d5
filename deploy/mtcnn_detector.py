"""MTCNN face detector (P-Net, R-Net, O-Net, L-Net) on MXNet, as in the 2019 deploy folder."""
import importlib.util
import math
import os

import cv2
import mxnet as mx
import numpy as np

from common import checkpoint

# P-Net looks at 12x12 windows: the pyramid stops once the shorter side is no longer above this.
MIN_DET_SIZE = 12
# The nets take BGR pixels in [0, 255] mapped to about [-1, 1].
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125
# mtcnn_path folders hold det1..det4-symbol.json and detN-0001.params, like deploy/mtcnn-model.
FOLDER_EPOCH = 1
NET_NAMES = ('det1', 'det2', 'det3', 'det4')
# Input size used to check parameter shapes for each net.
CHECK_SHAPES = {'det1': (1, 3, 12, 12), 'det2': (1, 3, 24, 24), 'det3': (1, 3, 48, 48),
                'det4': (1, 15, 24, 24)}
PYPI_REQUIREMENT = "mtcnn>=1.0,<2"


# ---------------------------------------------------------------------------------------------
# The four networks, with the layer names of the 2019 det1..det4 files so their params load.

def _conv_prelu(data, num_filter, kernel, suffix):
    conv = mx.sym.Convolution(data=data, num_filter=num_filter, kernel=kernel,
                              name='conv' + suffix)
    return mx.sym.LeakyReLU(data=conv, act_type='prelu', name='prelu' + suffix)


def _fc_prelu(data, num_hidden, fc_name, prelu_name):
    fc = mx.sym.FullyConnected(data=data, num_hidden=num_hidden, name=fc_name)
    return mx.sym.LeakyReLU(data=fc, act_type='prelu', name=prelu_name)


def _max_pool(data, kernel, name):
    # 'full' rounds the output size up, as Caffe did; the weights were trained that way.
    return mx.sym.Pooling(data=data, kernel=(kernel, kernel), stride=(2, 2), pool_type='max',
                          pooling_convention='full', name=name)


def pnet_symbol():
    """det1, fully convolutional: outputs [box regression (N,4,h,w), face probability (N,2,h,w)]."""
    x = _conv_prelu(mx.sym.Variable('data'), 10, (3, 3), '1')
    x = _max_pool(x, 2, 'pool1')
    x = _conv_prelu(x, 16, (3, 3), '2')
    x = _conv_prelu(x, 32, (3, 3), '3')
    regression = mx.sym.Convolution(data=x, num_filter=4, kernel=(1, 1), name='conv4_2')
    logits = mx.sym.Convolution(data=x, num_filter=2, kernel=(1, 1), name='conv4_1')
    return mx.sym.Group([regression, mx.sym.softmax(logits, axis=1, name='prob1')])


def rnet_symbol():
    """det2 on 24x24 crops: outputs [box regression (N,4), face probability (N,2)]."""
    x = _conv_prelu(mx.sym.Variable('data'), 28, (3, 3), '1')
    x = _max_pool(x, 3, 'pool1')
    x = _conv_prelu(x, 48, (3, 3), '2')
    x = _max_pool(x, 3, 'pool2')
    x = _conv_prelu(x, 64, (2, 2), '3')
    x = _fc_prelu(x, 128, 'conv4', 'prelu4')
    regression = mx.sym.FullyConnected(data=x, num_hidden=4, name='conv5_2')
    logits = mx.sym.FullyConnected(data=x, num_hidden=2, name='conv5_1')
    return mx.sym.Group([regression, mx.sym.softmax(logits, axis=1, name='prob1')])


def onet_symbol():
    """det3 on 48x48 crops: outputs [landmarks (N,10), box regression (N,4), face prob. (N,2)]."""
    x = _conv_prelu(mx.sym.Variable('data'), 32, (3, 3), '1')
    x = _max_pool(x, 3, 'pool1')
    x = _conv_prelu(x, 64, (3, 3), '2')
    x = _max_pool(x, 3, 'pool2')
    x = _conv_prelu(x, 64, (3, 3), '3')
    x = _max_pool(x, 2, 'pool3')
    x = _conv_prelu(x, 128, (2, 2), '4')
    x = _fc_prelu(x, 256, 'conv5', 'prelu5')
    landmarks = mx.sym.FullyConnected(data=x, num_hidden=10, name='conv6_3')
    regression = mx.sym.FullyConnected(data=x, num_hidden=4, name='conv6_2')
    logits = mx.sym.FullyConnected(data=x, num_hidden=2, name='conv6_1')
    return mx.sym.Group([landmarks, regression, mx.sym.softmax(logits, axis=1, name='prob1')])


def lnet_symbol():
    """det4: five 24x24 patches stacked as 15 channels -> five (N,2) point offsets in the patch."""
    patches = mx.sym.split(mx.sym.Variable('data'), num_outputs=5, axis=1, name='slice')
    branches = []
    for k in range(1, 6):
        x = _conv_prelu(patches[k - 1], 28, (3, 3), '1_%d' % k)
        x = _max_pool(x, 3, 'pool1_%d' % k)
        x = _conv_prelu(x, 48, (3, 3), '2_%d' % k)
        x = _max_pool(x, 3, 'pool2_%d' % k)
        branches.append(_conv_prelu(x, 64, (2, 2), '3_%d' % k))
    shared = _fc_prelu(mx.sym.concat(*branches, dim=1, name='concat'), 256, 'fc4', 'prelu4')
    outputs = []
    for k in range(1, 6):
        x = _fc_prelu(shared, 64, 'fc4_%d' % k, 'prelu4_%d' % k)
        outputs.append(mx.sym.FullyConnected(data=x, num_hidden=2, name='fc5_%d' % k))
    return mx.sym.Group(outputs)


SYMBOL_BUILDERS = {'det1': pnet_symbol, 'det2': rnet_symbol, 'det3': onet_symbol,
                   'det4': lnet_symbol}


# ---------------------------------------------------------------------------------------------
# Weights: a folder of 2019 MXNet files, or the arrays shipped by the `mtcnn` PyPI package.

def load_folder_params(folder, name):
    """(arg_params, file) of `<folder>/<name>-0001.params` (an original mtcnn-model folder)."""
    path = checkpoint.params_path(os.path.join(folder, name), FOLDER_EPOCH)
    arg_params, _ = checkpoint.load_params(path)
    return arg_params, path


def pypi_weights_dir():
    """The folder of pnet/rnet/onet.lz4 inside the installed `mtcnn` package.

    The package itself is not imported: its __init__ needs TensorFlow, its weight files do not.
    """
    spec = importlib.util.find_spec('mtcnn')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the default MTCNN weights come from the `mtcnn` package, which is not "
                          "installed: pip install '%s', or pass an mtcnn-model folder "
                          "(det1..det4 -symbol.json / -0001.params)" % PYPI_REQUIREMENT)
    return os.path.join(list(spec.submodule_search_locations)[0], 'assets', 'weights')


# For each net: the weight file of the `mtcnn` package, then its Keras layers in stored order as
# (kind, MXNet layer they fill). Keras stores conv kernels as (kh, kw, in, out), PReLU slopes per
# channel, dense weights as (in, out); 'rgb_conv' is the first conv, whose inputs are RGB there
# and BGR here; 'flat_dense' follows a Permute((2,1,3)) + Flatten, i.e. (x, y, c) input order.
PYPI_LAYOUT = {
    'det1': ('pnet.lz4', [('rgb_conv', 'conv1'), ('prelu', 'prelu1'), ('conv', 'conv2'),
                          ('prelu', 'prelu2'), ('conv', 'conv3'), ('prelu', 'prelu3'),
                          ('conv', 'conv4_2'), ('conv', 'conv4_1')]),
    'det2': ('rnet.lz4', [('rgb_conv', 'conv1'), ('prelu', 'prelu1'), ('conv', 'conv2'),
                          ('prelu', 'prelu2'), ('conv', 'conv3'), ('prelu', 'prelu3'),
                          ('flat_dense', 'conv4'), ('prelu', 'prelu4'), ('dense', 'conv5_2'),
                          ('dense', 'conv5_1')]),
    'det3': ('onet.lz4', [('rgb_conv', 'conv1'), ('prelu', 'prelu1'), ('conv', 'conv2'),
                          ('prelu', 'prelu2'), ('conv', 'conv3'), ('prelu', 'prelu3'),
                          ('conv', 'conv4'), ('prelu', 'prelu4'), ('flat_dense', 'conv5'),
                          ('prelu', 'prelu5'), ('dense', 'conv6_2'), ('dense', 'conv6_3'),
                          ('dense', 'conv6_1')]),
}


def convert_pypi_weights(arrays, name, source='<arrays>'):
    """MXNet arg_params of net `name` ('det1'..'det3') from the Keras weight list of `mtcnn`."""
    layers = PYPI_LAYOUT[name][1]
    wanted = sum(1 if kind == 'prelu' else 2 for kind, _ in layers)
    if len(arrays) != wanted:
        raise ValueError("%s: expected %d weight arrays for %s, found %d"
                         % (source, wanted, name, len(arrays)))
    params = {}
    channels = None  # output channels of the last conv, to unflatten the first dense layer
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    position = 0
    for kind, layer in layers:
        if kind == 'prelu':
            params[layer + '_gamma'] = arrays[position].reshape(-1)
            position += 1
            continue
        weight, bias = arrays[position], arrays[position + 1]
        position += 2
        if kind in ('conv', 'rgb_conv'):
            weight = weight.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
            if kind == 'rgb_conv':
                weight = weight[:, ::-1]
            channels = weight.shape[0]
        elif kind == 'flat_dense':
            inputs, outputs = weight.shape
            side = int(round(math.sqrt(inputs / channels)))
            # rows are ordered (x, y, c); MXNet's Flatten orders (c, y, x)
            weight = weight.reshape(side, side, channels, outputs).transpose(3, 2, 1, 0)
            weight = weight.reshape(outputs, inputs)
        else:
            weight = weight.T
        params[layer + '_weight'] = np.ascontiguousarray(weight)
        params[layer + '_bias'] = bias.reshape(-1)
    return {key: mx.nd.array(value) for key, value in params.items()}


def load_pypi_params(name):
    """(arg_params, file) of det1..det3, converted from the `mtcnn` package's pnet/rnet/onet.lz4."""
    import joblib  # a dependency of `mtcnn`; only needed for these files

    path = os.path.join(pypi_weights_dir(), PYPI_LAYOUT[name][0])
    if not os.path.isfile(path):
        raise FileNotFoundError("MTCNN weight file %s is missing from the `mtcnn` package "
                                "(expected %s)" % (path, PYPI_REQUIREMENT))
    return convert_pypi_weights(joblib.load(path), name, source=path), path


def check_params(symbol, arg_params, name, source):
    """Raise if a parameter of the net is missing or has the wrong shape."""
    arg_shapes, _, _ = symbol.infer_shape(data=CHECK_SHAPES[name])
    for arg, shape in zip(symbol.list_arguments(), arg_shapes):
        if arg == 'data':
            continue
        if arg not in arg_params:
            raise ValueError("%s: parameter %r of MTCNN %s is missing" % (source, arg, name))
        if tuple(arg_params[arg].shape) != tuple(shape):
            raise ValueError("%s: parameter %r of MTCNN %s has shape %s, expected %s"
                             % (source, arg, name, tuple(arg_params[arg].shape), tuple(shape)))


class Net:
    """One MTCNN net: its symbol and weights, with an executor bound per input shape."""

    MAX_EXECUTORS = 64  # pyramid levels x image sizes; rebinding is cheap, memory is not free

    def __init__(self, name, arg_params, source, ctx):
        self.name = name
        self.symbol = SYMBOL_BUILDERS[name]()
        check_params(self.symbol, arg_params, name, source)
        self.ctx = ctx
        self.params = {k: arg_params[k].as_in_context(ctx)
                       for k in self.symbol.list_arguments() if k != 'data'}
        self.executors = {}

    def __call__(self, batch):
        """Forward a float32 NCHW batch; the outputs as numpy arrays, in the symbol's order."""
        shape = tuple(batch.shape)
        executor = self.executors.get(shape)
        if executor is None:
            if len(self.executors) >= self.MAX_EXECUTORS:
                self.executors.clear()
            args = dict(self.params, data=mx.nd.zeros(shape, ctx=self.ctx))
            executor = self.symbol.bind(self.ctx, args=args, grad_req='null')
            self.executors[shape] = executor
        executor.arg_dict['data'][:] = batch
        return [out.asnumpy() for out in executor.forward(is_train=False)]


# ---------------------------------------------------------------------------------------------
# Box arithmetic of the 2019 helper.py / mtcnn_detector.py (np.round is round-half-to-even).

def pyramid_scales(height, width, minsize=20.0, factor=0.709):
    """Image scales at which P-Net's 12 px window covers faces from `minsize` up."""
    first = MIN_DET_SIZE / float(minsize)
    side = min(height, width) * first
    scales = []
    while side > MIN_DET_SIZE:
        scales.append(first * factor ** len(scales))
        side *= factor
    return scales


def nms(boxes, threshold, mode='Union'):
    """Indices kept by greedy non-maximum suppression, highest score first.

    Areas count pixels inclusively (+1). 'Union' compares intersection over union, 'Min'
    intersection over the smaller box; a box overlapping a kept one by more than `threshold`
    is dropped. Ties follow np.argsort's order, as in 2019.
    """
    if len(boxes) == 0:
        return []
    x1, y1, x2, y2, scores = (boxes[:, i] for i in range(5))
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        best, rest = order[-1], order[:-1]
        keep.append(best)
        width = np.maximum(0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        inter = width * height
        with np.errstate(divide='ignore', invalid='ignore'):
            if mode == 'Min':
                overlap = inter / np.minimum(areas[best], areas[rest])
            else:
                overlap = inter / (areas[best] + areas[rest] - inter)
        order = rest[~(overlap > threshold)]  # a NaN overlap keeps the box, as in 2019
    return keep


def generate_boxes(face_map, regression, scale, threshold):
    """P-Net cells above threshold -> rows [x1, y1, x2, y2, score, dx1, dy1, dx2, dy2].

    A cell (row, col) is the 12x12 window at (2*col, 2*row) of the scaled image; the 2019 code
    adds 1 (a leftover of the 1-based MATLAB original) before mapping back to the image.
    """
    rows, cols = np.where(face_map > threshold)
    if rows.size == 0:
        return np.zeros((0, 9))
    offsets = [regression[0, i, rows, cols] for i in range(4)]
    return np.vstack([np.round((2 * cols + 1) / scale),
                      np.round((2 * rows + 1) / scale),
                      np.round((2 * cols + 1 + MIN_DET_SIZE) / scale),
                      np.round((2 * rows + 1 + MIN_DET_SIZE) / scale),
                      face_map[rows, cols]] + offsets).T


def to_square(boxes):
    """Grow each box to a square around the same centre (inclusive pixel sizes)."""
    square = boxes.copy()
    heights = boxes[:, 3] - boxes[:, 1] + 1
    widths = boxes[:, 2] - boxes[:, 0] + 1
    sides = np.maximum(heights, widths)
    square[:, 0] = boxes[:, 0] + widths * 0.5 - sides * 0.5
    square[:, 1] = boxes[:, 1] + heights * 0.5 - sides * 0.5
    square[:, 2] = square[:, 0] + sides - 1
    square[:, 3] = square[:, 1] + sides - 1
    return square


def calibrate(boxes, regression):
    """Shift box corners by the regression offsets times the box width/height, in place."""
    widths = boxes[:, 2] - boxes[:, 0] + 1
    heights = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, 0:4] += np.stack([widths, heights, widths, heights], axis=1) * regression
    return boxes


def crop_geometry(boxes, width, height):
    """Where each box's pixels come from and go to when it is cut out with zero padding.

    Returns int32 arrays (dy, edy, dx, edx, y, ey, x, ex, box_w, box_h): the canvas is
    box_h x box_w, rows dy..edy / columns dx..edx (inclusive) of it receive image rows y..ey /
    columns x..ex. The image part is the box clipped to the image.
    """
    box_w = boxes[:, 2] - boxes[:, 0] + 1
    box_h = boxes[:, 3] - boxes[:, 1] + 1
    x, y = boxes[:, 0].copy(), boxes[:, 1].copy()
    ex, ey = boxes[:, 2].copy(), boxes[:, 3].copy()
    dx, dy = np.zeros(len(boxes)), np.zeros(len(boxes))
    edx, edy = box_w - 1, box_h - 1

    right = ex > width - 1
    edx = np.where(right, box_w + width - 2 - ex, edx)
    ex = np.where(right, width - 1, ex)
    bottom = ey > height - 1
    edy = np.where(bottom, box_h + height - 2 - ey, edy)
    ey = np.where(bottom, height - 1, ey)
    left = x < 0
    dx = np.where(left, -x, dx)
    x = np.where(left, 0, x)
    top = y < 0
    dy = np.where(top, -y, dy)
    y = np.where(top, 0, y)
    return [v.astype(np.int32) for v in (dy, edy, dx, edx, y, ey, x, ex, box_w, box_h)]


def clip_to_image(boxes, width, height):
    """Clip box corners to the image, in place.

    The 2019 pad() did this as a side effect (it wrote through views of the boxes), so the
    R-Net and O-Net stages score, calibrate and place landmarks with the clipped boxes.
    """
    boxes[:, 0] = np.maximum(boxes[:, 0], 0)
    boxes[:, 1] = np.maximum(boxes[:, 1], 0)
    boxes[:, 2] = np.minimum(boxes[:, 2], width - 1)
    boxes[:, 3] = np.minimum(boxes[:, 3], height - 1)
    return boxes


def to_net_input(img):
    """HWC image -> (1, C, H, W) float32 in the nets' input range."""
    data = img.astype(np.float32).transpose(2, 0, 1)[np.newaxis]
    return (data - PIXEL_MEAN) * PIXEL_SCALE


def crop_batch(img, boxes, size, dtype, square_canvas=False):
    """Cut each box out of img (zero padding outside), resize to size x size, stack as a batch.

    R-Net crops go through a uint8 canvas and O-Net / L-Net crops through a float32 one, as in
    2019 (it changes the resize's rounding). L-Net patches use a box_w x box_w canvas.
    """
    dy, edy, dx, edx, y, ey, x, ex, box_w, box_h = crop_geometry(boxes, img.shape[1], img.shape[0])
    batch = np.zeros((len(boxes), img.shape[2], size, size), dtype=np.float32)
    for i in range(len(boxes)):
        canvas_h = box_w[i] if square_canvas else box_h[i]
        canvas = np.zeros((canvas_h, box_w[i], img.shape[2]), dtype=dtype)
        canvas[dy[i]:edy[i] + 1, dx[i]:edx[i] + 1] = img[y[i]:ey[i] + 1, x[i]:ex[i] + 1]
        batch[i] = to_net_input(cv2.resize(canvas, (size, size)))[0]
    return batch


def check_color_image(img, what='the image', channels='BGR'):
    """Raise ValueError unless img is a non-empty H x W x 3 uint8 array (`channels`: 'BGR' as
    from cv2.imread, or 'RGB')."""
    source = ' as from cv2.imread' if channels == 'BGR' else ''
    if not isinstance(img, np.ndarray):
        raise ValueError("%s must be a numpy array (%s, H x W x 3, uint8%s), got %s"
                         % (what, channels, source, type(img).__name__))
    if img.ndim != 3 or img.shape[2] != 3:
        hint = " (grey image: convert with cv2.cvtColor(img, cv2.COLOR_GRAY2%s))" % channels \
            if img.ndim == 2 else ""
        raise ValueError("%s must be H x W x 3 %s, got shape %s%s" % (what, channels, img.shape, hint))
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError("%s is empty (shape %s)" % (what, img.shape))
    if img.dtype != np.uint8:
        raise ValueError("%s must be uint8 pixels in [0, 255], got dtype %s" % (what, img.dtype))


def central_face(boxes, height, width):
    """Row of the face to keep among `boxes` (N x 4+, [x1 y1 x2 y2 ...]) in a height x width image.

    The 2019 packers' rule: argmax of box area (x2 - x1) * (y2 - y1) minus twice the squared
    distance of the box centre from the image centre (width / 2, height / 2); ties go to the
    first row.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[0] == 0 or boxes.shape[1] < 4:
        raise ValueError("central_face: expected boxes N x 4 (or N x 5 with scores), N >= 1, "
                         "got shape %s" % (boxes.shape,))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    offset_x = (boxes[:, 0] + boxes[:, 2]) / 2.0 - width / 2.0
    offset_y = (boxes[:, 1] + boxes[:, 3]) / 2.0 - height / 2.0
    return int(np.argmax(areas - 2.0 * (offset_x ** 2 + offset_y ** 2)))


# ---------------------------------------------------------------------------------------------

class MtcnnDetector:
    """Faces and five landmarks (eyes, nose, mouth corners) in a BGR image.

    model_folder: None loads P/R/O-Net from the `mtcnn` PyPI package; otherwise a folder with the
    2019 det1..det4 -0001.params (and -symbol.json). accurate_landmark=True refines landmarks
    with the L-Net det4, which only such a folder provides. num_worker is accepted for the 2019
    signature; the 2019 code ran its P-Net copies one after the other, so one net is used.
    """

    def __init__(self, model_folder=None, minsize=20, threshold=(0.6, 0.7, 0.8), factor=0.709,
                 num_worker=1, accurate_landmark=False, ctx=None):
        ctx = ctx if ctx is not None else mx.cpu()
        if len(threshold) != 3:
            raise ValueError("threshold must hold 3 values (P-Net, R-Net, O-Net), got %r"
                             % (threshold,))
        if model_folder is not None and not os.path.isdir(model_folder):
            raise FileNotFoundError("MTCNN model folder %s does not exist (expected det1..det4 "
                                    "-symbol.json and -0001.params)" % model_folder)
        if accurate_landmark and model_folder is None:
            raise ValueError("accurate_landmark=True needs the L-Net det4, which the `mtcnn` "
                             "package does not ship: pass model_folder with det4-0001.params "
                             "(e.g. the 2019 deploy/mtcnn-model), or accurate_landmark=False")
        self.minsize = float(minsize)
        self.factor = float(factor)
        self.threshold = list(threshold)
        self.num_worker = num_worker
        self.accurate_landmark = accurate_landmark
        self.model_folder = model_folder

        names = NET_NAMES if accurate_landmark else NET_NAMES[:3]
        nets = {}
        for name in names:
            if model_folder is None:
                arg_params, source = load_pypi_params(name)
            else:
                arg_params, source = load_folder_params(model_folder, name)
            nets[name] = Net(name, arg_params, source, ctx)
        self.PNet, self.RNet, self.ONet = nets['det1'], nets['det2'], nets['det3']
        self.LNet = nets.get('det4')

    # -- stages --------------------------------------------------------------------------------

    def propose(self, img):
        """P-Net over the image pyramid: squared, rounded candidate boxes (N x 5) or None."""
        height, width = img.shape[:2]
        found = []
        for scale in pyramid_scales(height, width, self.minsize, self.factor):
            size = (int(math.ceil(width * scale)), int(math.ceil(height * scale)))
            scaled = cv2.resize(img, size)
            regression, probability = self.PNet(to_net_input(scaled))
            boxes = generate_boxes(probability[0, 1], regression, scale, self.threshold[0])
            if len(boxes):
                found.append(boxes[nms(boxes[:, 0:5], 0.5, 'Union')])
        if not found:
            return None
        boxes = np.vstack(found)
        boxes = boxes[nms(boxes[:, 0:5], 0.7, 'Union')]
        widths = boxes[:, 2] - boxes[:, 0] + 1
        heights = boxes[:, 3] - boxes[:, 1] + 1
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * widths,
                          boxes[:, 1] + boxes[:, 6] * heights,
                          boxes[:, 2] + boxes[:, 7] * widths,
                          boxes[:, 3] + boxes[:, 8] * heights,
                          boxes[:, 4]], axis=1)
        boxes = to_square(boxes)
        boxes[:, 0:4] = np.round(boxes[:, 0:4])
        return boxes

    def refine(self, img, boxes):
        """R-Net on 24x24 crops: kept, rescored, calibrated, squared boxes or None."""
        batch = crop_batch(img, boxes, 24, np.uint8)
        clip_to_image(boxes, img.shape[1], img.shape[0])
        regression, probability = self.RNet(batch)
        passed = probability[:, 1] > self.threshold[1]
        boxes = boxes[passed]
        if len(boxes) == 0:
            return None
        boxes[:, 4] = probability[passed, 1]
        regression = regression[passed]
        keep = nms(boxes, 0.7, 'Union')
        boxes = calibrate(boxes[keep], regression[keep])
        boxes = to_square(boxes)
        boxes[:, 0:4] = np.round(boxes[:, 0:4])
        return boxes

    def output(self, img, boxes):
        """O-Net on 48x48 crops: (final boxes N x 5, landmarks N x 10 float) or None."""
        batch = crop_batch(img, boxes, 48, np.float32)
        clip_to_image(boxes, img.shape[1], img.shape[0])
        points, regression, probability = self.ONet(batch)
        passed = probability[:, 1] > self.threshold[2]
        boxes = boxes[passed]
        if len(boxes) == 0:
            return None
        boxes[:, 4] = probability[passed, 1]
        regression = regression[passed]
        points = points[passed]
        # landmarks are relative to the box O-Net saw, before its own regression moves it
        widths = (boxes[:, 2] - boxes[:, 0] + 1)[:, np.newaxis]
        heights = (boxes[:, 3] - boxes[:, 1] + 1)[:, np.newaxis]
        points[:, 0:5] = boxes[:, 0:1] + widths * points[:, 0:5]
        points[:, 5:10] = boxes[:, 1:2] + heights * points[:, 5:10]
        boxes = calibrate(boxes, regression)
        keep = nms(boxes, 0.7, 'Min')
        return boxes[keep], points[keep]

    def refine_landmarks(self, img, boxes, points):
        """L-Net on a patch around each landmark: int32 landmarks N x 10."""
        sides = np.maximum(boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1)
        patch = np.round(sides * 0.25)
        patch[np.mod(patch, 2) == 1] += 1  # even, so the patch centres on the point
        batch = np.zeros((len(boxes), 15, 24, 24), dtype=np.float32)
        corners = []
        for k in range(5):
            left = np.round(points[:, k] - 0.5 * patch)
            top = np.round(points[:, k + 5] - 0.5 * patch)
            corners.append((left, top))
            patch_boxes = np.stack([left, top, left + patch - 1, top + patch - 1], axis=1)
            batch[:, 3 * k:3 * k + 3] = crop_batch(img, patch_boxes, 24, np.float32,
                                                   square_canvas=True)
        offsets = self.LNet(batch)
        refined_x = np.zeros((len(boxes), 5))
        refined_y = np.zeros((len(boxes), 5))
        for k in range(5):
            offset = offsets[k]
            # a point that would move far from the O-Net estimate is left at the patch centre
            offset[np.any(np.abs(offset - 0.5) > 0.35, axis=1)] = 0.5
            left, top = corners[k]
            refined_x[:, k] = left + offset[:, 0] * patch
            refined_y[:, k] = top + offset[:, 1] * patch
        return np.hstack([refined_x, refined_y]).astype(np.int32)

    def finish(self, img, boxes):
        """O-Net, then L-Net when accurate_landmark: (boxes, points) or None."""
        result = self.output(img, boxes)
        if result is None or not self.accurate_landmark:
            return result
        boxes, points = result
        return boxes, self.refine_landmarks(img, boxes, points)

    # -- entry points --------------------------------------------------------------------------

    def whole_image_box(self, img):
        # [0, 0, W, H] is one pixel wider and taller than the image, as in 2019: the crop gets a
        # black last column and row.
        return np.array([[0.0, 0.0, img.shape[1], img.shape[0], 0.9]], dtype=np.float32)

    def detect_face(self, img, det_type=0):
        """Faces in a BGR uint8 image: None, or (boxes N x 5 [x1 y1 x2 y2 score], points N x 10
        [x1..x5, y1..y5]), best score first.

        det_type 0 runs the whole cascade; any other value skips P-Net and treats the whole image
        as the one candidate face (for images that are already face crops).
        """
        check_color_image(img)
        img = np.ascontiguousarray(img)  # OpenCV refuses negative strides (img[..., ::-1])
        if det_type == 0:
            boxes = self.propose(img)
        else:
            boxes = self.whole_image_box(img)
        if boxes is None:
            return None
        boxes = self.refine(img, boxes)
        if boxes is None:
            return None
        return self.finish(img, boxes)

    def detect_face_limited(self, img, det_type=2):
        """The whole image as the face box: det_type >= 2 starts at R-Net, others at O-Net."""
        check_color_image(img)
        img = np.ascontiguousarray(img)
        boxes = self.whole_image_box(img)
        if det_type >= 2:
            boxes = self.refine(img, boxes)
            if boxes is None:
                return None
        return self.finish(img, boxes)
