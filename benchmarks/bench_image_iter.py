"""Images/s of FaceImageIter (1..N threads) against a 2019-style sequential mx.image loop; prints JSON."""
import argparse
import json
import os
import random
import tempfile
import time

import cv2
import mxnet as mx
import numpy as np

from common.record_io import IdentityRecordWriter, RecordReader
from recognition.image_iter import FaceImageIter


def make_rec(path, num_images, size=112, per_identity=20, seed=0):
    """Smooth random 112x112 JPEGs (quality 95, like face2rec2) in the face2rec2 layout."""
    rng = np.random.RandomState(seed)
    with IdentityRecordWriter(path) as writer:
        for i in range(num_images):
            small = rng.randint(0, 256, size=(14, 14, 3), dtype=np.uint8)
            img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
            img = np.clip(img + rng.randint(-8, 9, size=img.shape), 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            writer.add_image(buf.tobytes(), i // per_identity, aligned=1)


def sequential_2019_loop(rec_path, batch_size, num_batches, color_jittering):
    """The 2019 iterator's per-image loop: mx.image decode, nd.flip, ColorJitterAug, one by one."""
    reader = RecordReader(rec_path)
    keys = reader.image_keys()
    random.shuffle(keys)
    jitter = mx.image.ColorJitterAug(0.125, 0.125, 0.125)
    pos = 0
    start = time.perf_counter()
    for _ in range(num_batches):
        batch = mx.nd.empty((batch_size, 3, 112, 112))
        for i in range(batch_size):
            header, data = mx.recordio.unpack(reader.read_raw(keys[pos % len(keys)]))
            pos += 1
            img = mx.image.imdecode(data)
            if random.randint(0, 1) == 1:
                img = mx.nd.flip(data=img, axis=1)
            if color_jittering > 0:
                img = jitter(img.astype('float32', copy=False))
            batch[i][:] = mx.nd.transpose(img, axes=(2, 0, 1))
        batch.wait_to_read()
    return batch_size * num_batches / (time.perf_counter() - start)


def face_image_iter(rec_path, batch_size, num_batches, color_jittering, threads):
    it = FaceImageIter(batch_size=batch_size, data_shape=(3, 112, 112), path_imgrec=rec_path,
                       shuffle=True, rand_mirror=True, color_jittering=color_jittering,
                       num_threads=threads, seed=0)
    it.next().data[0].wait_to_read()  # warm-up: thread start, first reset
    start = time.perf_counter()
    for _ in range(num_batches):
        it.next().data[0].wait_to_read()
    speed = batch_size * num_batches / (time.perf_counter() - start)
    it.close()
    return speed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--images', type=int, default=2048)
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--batches', type=int, default=12)
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    thread_counts = sorted({1, 2, cores})
    results = {'benchmark': 'image_iter', 'cores': cores, 'batch_size': args.batch_size,
               'omp_num_threads': os.environ.get('OMP_NUM_THREADS'), 'cases': []}
    with tempfile.TemporaryDirectory() as tmp:
        rec = os.path.join(tmp, 'train.rec')
        make_rec(rec, args.images)
        for color in (0, 1):
            case = {'rand_mirror': True, 'color_jittering': color}
            base = sequential_2019_loop(rec, args.batch_size, args.batches, color)
            case['sequential_2019_loop_images_per_s'] = round(base, 1)
            for threads in thread_counts:
                speed = face_image_iter(rec, args.batch_size, args.batches, color, threads)
                case['face_image_iter_%d_threads_images_per_s' % threads] = round(speed, 1)
                case['ratio_%d_threads_vs_2019_loop' % threads] = round(speed / base, 2)
            results['cases'].append(case)
    print(json.dumps(results, indent=2))
    return results


if __name__ == '__main__':
    main()
