"""The older embedding API: the image is taken as a face crop, embedded with optional flip-sum."""

import mxnet as mx
import numpy as np

from common.devices import gpu_context
from deploy.face_model import align_best_face, get_model, parse_image_size
from deploy.mtcnn_detector import MtcnnDetector, check_color_image

# The crop is the face: R-Net and O-Net only have to be a little sure of it.
THRESHOLDS = [0.0, 0.0, 0.2]


class FaceModel:
    """`args`: image_size, model ('prefix,epoch', required), gpu (None / -1 for CPU), det (2 or
    more: R-Net then O-Net on the whole image, else O-Net only), flip (1: add the mirrored face's
    embedding), threshold (kept, unused), optional mtcnn_path as in deploy.face_model."""

    def __init__(self, args):
        self.args = args
        ctx = gpu_context(getattr(args, 'gpu', None))
        self.image_size = parse_image_size(getattr(args, 'image_size', '112,112'))
        self.threshold = getattr(args, 'threshold', None)
        self.model = get_model(ctx, self.image_size, args.model)
        mtcnn_path = getattr(args, 'mtcnn_path', None)
        self.detector = MtcnnDetector(model_folder=mtcnn_path, threshold=THRESHOLDS, ctx=ctx,
                                      accurate_landmark=mtcnn_path is not None)

    def _embed(self, aligned):
        data = mx.nd.array(aligned[np.newaxis])
        self.model.forward(mx.io.DataBatch(data=(data,)), is_train=False)
        return self.model.get_outputs()[0].asnumpy().reshape(-1)

    def get_feature(self, face_img):
        """L2-normalised embedding of a BGR face crop (sum with its mirror if flip), or None."""
        check_color_image(face_img, 'get_feature: face_img')
        face_img = np.ascontiguousarray(face_img)
        found = self.detector.detect_face_limited(face_img, det_type=getattr(self.args, 'det', 2))
        if found is None or len(found[0]) == 0:
            return None
        aligned = align_best_face(face_img, *found)
        embedding = self._embed(aligned)
        if getattr(self.args, 'flip', 0):
            # the sum of both embeddings, normalised once, as in 2019
            embedding = embedding + self._embed(np.ascontiguousarray(aligned[:, :, ::-1]))
        norm = np.linalg.norm(embedding)
        return (embedding / norm if norm > 0 else embedding).astype(np.float32)
