"""Demo of deploy.face_model: gender and age of the face in an image, or the similarity of two faces.

    python deploy/test.py --ga-model ./models/gamodel-r50/model,0 --image face.jpg --gpu -1
    python deploy/test.py --model ./models/model-r100-ii/model,0 --image a.jpg --image2 b.jpg
"""
import argparse
import sys

import cv2
import numpy as np

from deploy.face_model import FaceModel


def build_parser():
    parser = argparse.ArgumentParser(description='face model test',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--image-size', default='112,112', help='network input height,width')
    parser.add_argument('--model', default='', help="recognition checkpoint 'prefix,epoch'")
    parser.add_argument('--ga-model', default='', help="gender-age checkpoint 'prefix,epoch'")
    parser.add_argument('--gpu', default=0, type=int, help='GPU id; -1 for the CPU')
    parser.add_argument('--det', default=0, type=int,
                        help='0: full MTCNN detection; else the image is already a face crop')
    parser.add_argument('--flip', default=0, type=int, help='unused by face_model, as in 2019')
    parser.add_argument('--threshold', default=1.24, type=float,
                        help='verification distance threshold (unused by face_model)')
    parser.add_argument('--mtcnn-path', default=None,
                        help="a 2019 'mtcnn-model' folder (det1..det4); default: the mtcnn "
                             "package's weights")
    parser.add_argument('--image', default='Tom_Hanks_54745.png', help='photo with a face (BGR file)')
    parser.add_argument('--image2', default='',
                        help='second photo: print the squared distance and cosine similarity of '
                             'the two embeddings (needs --model)')
    return parser


def aligned_face(model, path):
    """The aligned best face of the image file `path` (SystemExit if unreadable or faceless)."""
    img = cv2.imread(path)
    if img is None:
        raise SystemExit('test.py: cannot read image %s' % path)
    aligned = model.get_input(img)
    if aligned is None:
        raise SystemExit('test.py: no face found in %s' % path)
    return aligned


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.model and not args.ga_model:
        raise SystemExit('test.py: give --model (embeddings) and/or --ga-model (gender and age)')
    if args.image2 and not args.model:
        raise SystemExit('test.py: --image2 compares embeddings, so it needs --model')
    model = FaceModel(args)
    aligned = aligned_face(model, args.image)
    if args.ga_model:
        gender, age = model.get_ga(aligned)
        print(gender)
        print(age)
    if args.model:
        f1 = model.get_feature(aligned)
        print(f1[0:10])
        if args.image2:
            f2 = model.get_feature(aligned_face(model, args.image2))
            print(np.sum(np.square(f1 - f2)))  # squared distance, compared with --threshold
            print(np.dot(f1, f2))  # cosine similarity
    sys.stdout.flush()


if __name__ == '__main__':
    main()
