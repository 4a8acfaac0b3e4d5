"""FaceModel of the verification service: detect, align and embed faces of RGB images."""
import copy
import logging

import mxnet as mx
import numpy as np

from common import checkpoint, face_preprocess
from common.devices import gpu_context
from common.identity_embedding import l2_normalize
from deploy.face_model import parse_image_size
from deploy.mtcnn_detector import MtcnnDetector, central_face, check_color_image

logger = logging.getLogger('insightface.api')

# The 2019 service's detector settings (its TensorFlow MTCNN): it ignored faces under 50 px and
# used a finer pyramid and looser thresholds than deploy/face_model.
DETECT_MINSIZE = 50
DETECT_THRESHOLDS = [0.4, 0.6, 0.6]
DETECT_FACTOR = 0.9
# Second try for an image that must have a face (the source, or the last hope among targets).
FORCE_THRESHOLDS = [0.3, 0.3, 0.1]
# The original and its mirror image go through the network in one batch.
FLIP_BATCH = 2


class FaceModel:
    """The 2019 src/api FaceModel.

    `args` has image_size ('112,112'), model ('prefix,epoch' of a checkpoint with fc1), gpu
    (None or -1 for the CPU), threshold (squared-distance limit of is_same_id, 1.24 in 2019)
    and optionally mtcnn_path (a 2019 mtcnn-model folder; default: the mtcnn package's
    weights). Images are RGB H x W x 3 uint8.
    """

    def __init__(self, args):
        self.args = args
        self.image_size = parse_image_size(getattr(args, 'image_size', '112,112'))
        self.threshold = float(args.threshold)
        ctx = gpu_context(getattr(args, 'gpu', None))
        prefix, epoch = checkpoint.parse_model_arg(args.model)
        logger.info('loading %s %d', prefix, epoch)
        # Bound once for the (original, flip) pair; 2019 bound a new executor on every call.
        self.embedder = checkpoint.load_inference_module(
            prefix, epoch, ctx, (FLIP_BATCH, 3) + tuple(self.image_size))
        self.detector = MtcnnDetector(model_folder=getattr(args, 'mtcnn_path', None),
                                      minsize=DETECT_MINSIZE, threshold=DETECT_THRESHOLDS,
                                      factor=DETECT_FACTOR, accurate_landmark=False, ctx=ctx)
        # Same networks, other thresholds: a shallow copy shares the loaded nets.
        self.force_detector = copy.copy(self.detector)
        self.force_detector.threshold = list(FORCE_THRESHOLDS)

    def _detect(self, img, force):
        """(boxes, points) of the faces in RGB `img`, retrying with FORCE_THRESHOLDS if `force`."""
        bgr = np.ascontiguousarray(img[:, :, ::-1])  # the MXNet MTCNN takes BGR
        found = self.detector.detect_face(bgr)
        if (found is None or len(found[0]) == 0) and force:
            logger.info('force det %s', img.shape)
            found = self.force_detector.detect_face(bgr)
        if found is None or len(found[0]) == 0:
            return None
        return found

    def _align(self, img, box, points):
        landmark = np.asarray(points).reshape(2, 5).T  # rows (x, y)
        aligned = face_preprocess.preprocess(img, bbox=box[0:4], landmark=landmark,
                                             image_size='%d,%d' % tuple(self.image_size))
        return np.transpose(aligned, (2, 0, 1))

    def get_aligned_face(self, img, force=False):
        """The most central large face of RGB `img` aligned to RGB CHW uint8; None if none.

        The face kept maximises area - 2 * (distance of its centre from the image centre)^2.
        """
        check_color_image(img, 'get_aligned_face: img', channels='RGB')
        found = self._detect(img, force)
        if found is None:
            return None
        boxes, points = found
        chosen = central_face(boxes, img.shape[0], img.shape[1])
        return self._align(img, boxes[chosen], points[chosen])

    def get_all_faces(self, img):
        """Every face of RGB `img` (normal thresholds) aligned, in detection order."""
        check_color_image(img, 'get_all_faces: img', channels='RGB')
        found = self._detect(img, force=False)
        if found is None:
            return []
        boxes, points = found
        return [self._align(img, box, landmark) for box, landmark in zip(boxes, points)]

    def get_feature(self, face, norm=True):
        """Embedding of aligned `face` plus that of its mirror image, shape (1, D) float32;
        L2-normalised if `norm`."""
        face = np.asarray(face)
        expected = (3,) + tuple(self.image_size)
        if face.shape != expected:
            raise ValueError("get_feature: face must be an aligned RGB CHW array of shape %s "
                             "(as from get_aligned_face), got %s" % (expected, face.shape))
        pair = np.stack([face, face[:, :, ::-1]]).astype(np.float32)
        self.embedder.forward(mx.io.DataBatch(data=(mx.nd.array(pair),)), is_train=False)
        embedding = self.embedder.get_outputs()[0].asnumpy()
        embedding = embedding.sum(axis=0, keepdims=True)
        return l2_normalize(embedding) if norm else embedding

    def _source_and_target_faces(self, source_img, target_imgs):
        """Aligned source face and the aligned target faces found, with the 2019 force rule:
        the source is always forced; a target only if it is the last and none was found yet."""
        source_face = self.get_aligned_face(source_img, True)
        if source_face is None:
            raise ValueError("no face found in the source image (even with thresholds %s)"
                             % (FORCE_THRESHOLDS,))
        target_imgs = list(target_imgs)
        if not target_imgs:
            raise ValueError("no target image given")
        target_faces = []
        for index, img in enumerate(target_imgs):
            force = index == len(target_imgs) - 1 and not target_faces
            face = self.get_aligned_face(img, force)
            if face is not None:
                target_faces.append(face)
        if not target_faces:
            raise ValueError("no face found in any of the %d target image(s)" % len(target_imgs))
        logger.info('target faces: %d of %d', len(target_faces), len(target_imgs))
        return source_face, target_faces

    def is_same_id(self, source_img, target_imgs):
        """True if the squared L2 distance between the source's normalised feature and the
        normalised sum of the targets' unnormalised features is <= threshold."""
        source_face, target_faces = self._source_and_target_faces(source_img, target_imgs)
        source_feature = self.get_feature(source_face, True)
        target_feature = sum(self.get_feature(face, False) for face in target_faces)
        distance = float(np.sum(np.square(source_feature - l2_normalize(target_feature))))
        logger.info('dist %f', distance)
        return distance <= self.threshold

    def sim(self, source_img, target_imgs):
        """Highest cosine similarity between the source face and the target faces."""
        source_face, target_faces = self._source_and_target_faces(source_img, target_imgs)
        source_feature = self.get_feature(source_face, True)
        return max(float((source_feature @ self.get_feature(face, True).T)[0, 0])
                   for face in target_faces)
