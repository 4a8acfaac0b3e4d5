"""Runs every benchmark (each beside its baseline) in its own process and prints one JSON document.

    python benchmarks/run_all.py            # everything, about 20 minutes on 2 cores
    python benchmarks/run_all.py --quick    # smaller sizes, a few minutes
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def last_json_document(text):
    """The JSON object a benchmark printed last (benchmarks may log other lines before it)."""
    decoder = json.JSONDecoder()
    start = len(text)
    while True:
        start = text.rfind('{', 0, start)
        if start < 0:
            raise ValueError('no JSON document in the output')
        if start == 0 or text[start - 1] == '\n':
            try:
                value, end = decoder.raw_decode(text, start)
                if not text[end:].strip():
                    return value
            except ValueError:
                pass


def run(name, command, results):
    print('running %s: %s' % (name, ' '.join(command)), file=sys.stderr, flush=True)
    started = time.time()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    entry = {'command': ' '.join(command), 'seconds': round(time.time() - started, 1)}
    if done.returncode != 0:
        entry['error'] = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'exit %d' % done.returncode
    else:
        try:
            entry['result'] = last_json_document(done.stdout)
        except ValueError as err:
            entry['error'] = str(err)
    results[name] = entry


def make_face_model_inputs(workdir):
    """A y1 checkpoint (random weights: latency does not depend on them) and one synthetic face."""
    import cv2
    import mxnet as mx

    from common import checkpoint
    from recognition import config_loader
    from recognition.symbol import get_embedding_symbol

    config = config_loader.generate(config_loader.load_sample_config(), 'y1', 'emore', 'arcface')
    sym = get_embedding_symbol(config)
    module = mx.mod.Module(sym, label_names=None)
    module.bind(data_shapes=[('data', (1, 3, 112, 112))])
    module.init_params(mx.init.Xavier())
    prefix = os.path.join(workdir, 'y1')
    checkpoint.save_checkpoint(prefix, 0, sym, *module.get_params())
    faces = os.path.join(workdir, 'faces')
    subprocess.run([sys.executable, os.path.join(ROOT, 'src', 'data', 'synth_faces.py'), '--output', faces,
                    '--num-identities', '1', '--images-per-identity', '1', '--num-pairs', '0'],
                   check=True, stdout=subprocess.DEVNULL)
    image = os.path.join(workdir, 'face.png')
    cv2.imwrite(image, cv2.resize(cv2.imread(os.path.join(faces, '0000', '0.jpg')), (112, 112)))
    return prefix + ',0', image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='smaller sizes, for a fast look')
    parser.add_argument('--skip', default='', help='comma-separated benchmark names to leave out')
    args = parser.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))
    os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')
    python = sys.executable
    skip = set(filter(None, args.skip.split(',')))
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON document
            model, image = make_face_model_inputs(workdir)
        plan = {
            'image_iter': [python, 'benchmarks/bench_image_iter.py'] + (['--images', '1024', '--batches', '6']
                                                                         if args.quick else []),
            'verification': [python, 'benchmarks/bench_verification.py'],
            'prelu_speed': [python, 'benchmarks/bench_prelu.py', '--no-onnx'] + (['--seconds', '2']
                                                                                 if args.quick else []),
            'face_model_latency': [python, 'deploy/benchmark.py', '--model', model, '--image', image, '--det', '1',
                                   '--runs', '20' if args.quick else '100'],
            'model_parallel': [python, 'benchmarks/bench_parall.py'] + (['--classes', '100000']
                                                                        if args.quick else []),
        }
        for name, command in plan.items():
            if name not in skip:
                run(name, command, results)
    document = {'omp_num_threads': os.environ['OMP_NUM_THREADS'], 'cores': os.cpu_count(),
                'quick': args.quick, 'benchmarks': results}
    print(json.dumps(document, indent=2))
    return document


if __name__ == '__main__':
    main()
