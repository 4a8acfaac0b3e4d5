"""FaceModel: detect and align a face with MTCNN, then embed it or estimate gender and age."""
import logging

import cv2
import mxnet as mx
import numpy as np

from common import checkpoint, face_preprocess
from common.devices import gpu_context
from deploy.mtcnn_detector import MtcnnDetector, check_color_image

__all__ = ['FaceModel', 'get_model', 'align_best_face', 'decode_gender_age',
           'parse_image_size', 'DETECT_THRESHOLDS', 'WHOLE_IMAGE_THRESHOLDS']

# det == 0: the full MTCNN cascade; any other det: the image is already a face crop, so the
# whole image is the one candidate box and only O-Net has to agree, a little.
DETECT_THRESHOLDS = [0.6, 0.7, 0.8]
WHOLE_IMAGE_THRESHOLDS = [0.0, 0.0, 0.2]
# get_input always aligns to 112x112, whatever image_size says (as in 2019).
ALIGNED_SIZE = '112,112'
GA_OUTPUTS = 202  # 2 gender logits, then 100 pairs "age > i: no / yes"


def parse_image_size(text):
    """(height, width) from 'h,w'."""
    try:
        size = tuple(int(v) for v in str(text).split(','))
    except ValueError:
        size = ()
    if len(size) != 2:
        raise ValueError("image_size must be 'height,width' (e.g. '112,112'), got %r" % (text,))
    return size


def get_model(ctx, image_size, model_str, layer='fc1', fast_cpu=True):
    """Module running `<layer>_output` of checkpoint 'prefix,epoch' on one (3, h, w) image.

    On the CPU the graph runs PReLU as oneDNN-native operators (same outputs, several times
    faster); fast_cpu=False keeps the saved graph as it is.
    """
    prefix, epoch = checkpoint.parse_model_arg(model_str)
    print('loading', prefix, epoch)  # the 2019 log line
    return checkpoint.load_inference_module(prefix, epoch, ctx, (1, 3) + tuple(image_size), layer=layer,
                                            fast_cpu=fast_cpu)


def align_best_face(face_img, boxes, points):
    """Row 0 of a detection (the best score) aligned by its landmarks: RGB CHW uint8 112x112."""
    landmarks = points[0].reshape(2, 5).T  # rows (x, y)
    aligned = face_preprocess.preprocess(face_img, boxes[0, 0:4], landmarks,
                                         image_size=ALIGNED_SIZE)
    aligned = cv2.cvtColor(aligned, cv2.COLOR_BGR2RGB)
    return np.transpose(aligned, (2, 0, 1))


def decode_gender_age(output):
    """(gender, age) from the 202 gender-age outputs.

    gender = argmax of the first two; age = how many of the 100 "older than i" pairs vote yes
    (a tie votes no).
    """
    values = np.asarray(output, dtype=np.float32).reshape(-1)
    if values.size != GA_OUTPUTS:
        raise ValueError("gender-age output must have %d values, got %d"
                         % (GA_OUTPUTS, values.size))
    gender = int(np.argmax(values[0:2]))
    age = int(np.argmax(values[2:].reshape(100, 2), axis=1).sum())
    return gender, age


class FaceModel:
    """The 2019 deploy API.

    `args` has image_size ('112,112'), model and ga_model ('prefix,epoch' or ''), gpu (None or
    -1 for CPU), det (0: full MTCNN, else the image is the face), flip and threshold (kept, not
    used), and optionally mtcnn_path: a 2019 mtcnn-model folder (det1..det4), used with L-Net
    landmark refinement as in 2019; without it the `mtcnn` package's P/R/O-Net weights are used
    and the landmarks are O-Net's.
    """

    def __init__(self, args):
        self.args = args
        ctx = gpu_context(getattr(args, 'gpu', None))
        self.image_size = parse_image_size(getattr(args, 'image_size', ALIGNED_SIZE))
        model = getattr(args, 'model', '') or ''
        ga_model = getattr(args, 'ga_model', '') or ''
        fast_cpu = getattr(args, 'fast_prelu', True)
        self.model = get_model(ctx, self.image_size, model, fast_cpu=fast_cpu) if model else None
        self.ga_model = get_model(ctx, self.image_size, ga_model, fast_cpu=fast_cpu) if ga_model else None
        self.threshold = getattr(args, 'threshold', None)
        self.det = getattr(args, 'det', 0)
        mtcnn_path = getattr(args, 'mtcnn_path', None)
        thresholds = DETECT_THRESHOLDS if self.det == 0 else WHOLE_IMAGE_THRESHOLDS
        self.detector = MtcnnDetector(model_folder=mtcnn_path, threshold=thresholds, ctx=ctx,
                                      accurate_landmark=mtcnn_path is not None)

    def get_input(self, face_img):
        """Best face of a BGR uint8 image aligned to RGB CHW uint8 (3, 112, 112); None if none."""
        check_color_image(face_img, 'get_input: face_img')
        face_img = np.ascontiguousarray(face_img)
        found = self.detector.detect_face(face_img, det_type=self.det)
        if found is None or len(found[0]) == 0:
            logging.info('no face found')
            return None
        return align_best_face(face_img, *found)

    def _forward(self, model, aligned, what):
        if model is None:
            raise ValueError("%s needs a model: args.%s is empty"
                             % (what, 'model' if what == 'get_feature' else 'ga_model'))
        if isinstance(aligned, mx.io.DataBatch):
            # The 2019 gender-age face_model's get_input gave a DataBatch of one (1, 3, H, W) face.
            aligned = aligned.data[0].asnumpy()[0]
        data = np.asarray(aligned)
        expected = (3,) + tuple(self.image_size)
        if data.shape != expected:
            raise ValueError("%s: aligned face must have shape %s (RGB CHW as from get_input), "
                             "got %s" % (what, expected, data.shape))
        model.forward(mx.io.DataBatch(data=(mx.nd.array(data[np.newaxis]),)), is_train=False)
        return model.get_outputs()[0].asnumpy()

    def get_feature(self, aligned):
        """L2-normalised float32 embedding of one aligned face (no flip)."""
        embedding = self._forward(self.model, aligned, 'get_feature').reshape(-1)
        norm = np.linalg.norm(embedding)
        if norm > 0:  # sklearn's normalize leaves an all-zero vector as it is
            embedding = embedding / norm
        return embedding.astype(np.float32)

    def get_ga(self, aligned):
        """(gender, age) of one aligned face (or the 2019 gender-age DataBatch holding it)."""
        return decode_gender_age(self._forward(self.ga_model, aligned, 'get_ga'))
