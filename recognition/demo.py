"""The quick start: make a face dataset, pack it, train ArcFace on CPU, evaluate, and embed faces.

    python -m recognition.demo                      # synthetic faces (the default)
    python -m recognition.demo --data ~/photos      # a folder with one sub-folder per person

Every step runs the same command a user would type (it is printed first), so the log doubles as
a tutorial. Everything goes under --workdir (default ./demo_run).
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import time

import numpy as np

from common import checkpoint, face_preprocess, record_io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(ROOT, 'src', 'data')

# A MobileFaceNet-shaped network with ReLU (PReLU is slow on CPU with mxnet 1.9.1) and 128-d output.
DEMO_PRESETS = """
# ---- added by the quick start ----
network.demo = edict()
network.demo.net_name = 'fmobilefacenet'
network.demo.emb_size = 128
network.demo.net_output = 'GDC'
network.demo.net_act = 'relu'

dataset.demo = edict()
dataset.demo.dataset = 'demo'
dataset.demo.dataset_path = {data_dir!r}
dataset.demo.num_classes = {num_classes}
dataset.demo.image_shape = (112, 112, 3)
dataset.demo.val_targets = ['lfw']

config.max_steps = {max_steps}
config.ce_loss = True
"""


class Steps:
    """Numbered progress lines with the elapsed time."""

    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.time()

    def __call__(self, what):
        self.done += 1
        print('\n[%d/%d %5.0fs] %s' % (self.done, self.total, time.time() - self.start, what), flush=True)


def run(command, log_path=None):
    """Run a command (printed first); its output goes to the terminal or, with log_path, to a file."""
    print('$ ' + ' '.join(command), flush=True)
    if log_path is None:
        subprocess.run(command, check=True)
        return ''
    with open(log_path, 'w') as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    with open(log_path) as log:
        return log.read()


def python(script, *args):
    return [sys.executable, script] + [str(a) for a in args]


def split_photo_folder(data, out_dir, held_out_fraction, num_pairs, seed):
    """A folder of identities -> train.lst (most identities) + pairs of the held-out ones."""
    full_lst = os.path.join(out_dir, 'all.lst')
    run(python(os.path.join(TOOLS, 'dir2lst.py'), data, '--aligned', '0', '--output', full_lst))
    by_label = {}
    with open(full_lst) as fin:
        for line_no, line in enumerate(fin, 1):
            _, path, label, _, _ = record_io.parse_lst_line(line, '%s:%d' % (full_lst, line_no))
            by_label.setdefault(label, []).append(path)
    labels = sorted(by_label)
    held_out = max(2, int(round(len(labels) * held_out_fraction)))
    if len(labels) - held_out < 2:
        raise SystemExit("--data %s has %d usable identities (2+ images each); the demo needs at "
                         "least 4" % (data, len(labels)))
    train_labels, val_labels = labels[:-held_out], labels[-held_out:]
    with open(os.path.join(out_dir, 'train.lst'), 'w') as fout:
        for new_label, label in enumerate(train_labels):
            for path in by_label[label]:
                fout.write(record_io.format_lst_line(0, path, new_label) + '\n')
    record_io.write_property(out_dir, len(train_labels), (112, 112))
    rng = random.Random(seed)
    pairs = []
    for k in range(num_pairs):
        if k % 2 == 0:
            label = rng.choice(val_labels)
            first, second = rng.sample(by_label[label], 2)
        else:
            label_a, label_b = rng.sample(val_labels, 2)
            first, second = rng.choice(by_label[label_a]), rng.choice(by_label[label_b])
        pairs.append((first, second, k % 2 == 0, None, None))
    with open(os.path.join(out_dir, 'verification_pairs.txt'), 'w') as fout:
        for first, second, same, _, _ in pairs:
            fout.write('%s %s %d\n' % (first, second, int(same)))
    return len(train_labels), pairs


def read_pairs(path, base_dir):
    """(path1, path2, same, landmarks1, landmarks2) from a pairs2pack list."""
    pairs = []
    with open(path) as fin:
        for line in fin:
            fields = line.split()
            if len(fields) < 3 or fields[0].startswith('#'):
                continue
            marks = [None, None]
            if len(fields) >= 23:
                values = np.array([float(v) for v in fields[3:23]], dtype=np.float32)
                marks = [values[:10].reshape(5, 2), values[10:].reshape(5, 2)]
            pairs.append((os.path.join(base_dir, fields[0]), os.path.join(base_dir, fields[1]),
                          fields[2] in ('1', 'true', 'True'), marks[0], marks[1]))
    return pairs


def aligned_rgb(path, landmark):
    """The 112x112 face as FaceModel.get_feature wants it: RGB, CHW, uint8."""
    img = face_preprocess.read_image(path, mode='rgb')
    face = face_preprocess.preprocess(img, landmark=landmark, image_size='112,112')
    return np.transpose(face, (2, 0, 1))


def parse_verification(output):
    """{epoch: {'accuracy': (acc, std), 'threshold': (l2, cosine)}} for the lfw target.

    The tool prints every `loading prefix epoch` line first, then the models' results in that order.
    """
    epochs = [int(m.group(1)) for m in re.finditer(r'^loading (?!bin )\S.* (\d+)$', output, re.M)]
    results = {epoch: {} for epoch in epochs}
    for key, pattern in (('accuracy', r'^\[lfw\]Accuracy-Flip: ([\d.]+)\+-([\d.]+)'),
                         ('threshold', r'^\[lfw\]Threshold: ([\d.]+) .*?, ([-\d.]+) \(cosine')):
        for epoch, match in zip(epochs, re.finditer(pattern, output, re.M)):
            results[epoch][key] = tuple(float(v) for v in match.groups())
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default='', help='folder of identities (default: synthetic faces)')
    parser.add_argument('--workdir', default='demo_run', help='where everything is written')
    parser.add_argument('--identities', type=int, default=200, help='synthetic training identities')
    parser.add_argument('--images-per-identity', type=int, default=12)
    parser.add_argument('--pairs', type=int, default=600, help='verification pairs of held-out identities')
    parser.add_argument('--held-out', type=float, default=0.2,
                        help='with --data: fraction of the identities kept out of training for the pairs')
    parser.add_argument('--steps', type=int, default=500, help='training batches')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=0.1)
    parser.add_argument('--verbose', type=int, default=100, help='verify and save every this many batches')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    steps = Steps(7)
    work = os.path.abspath(args.workdir)
    if os.path.exists(work):
        shutil.rmtree(work)
    data_dir = os.path.join(work, 'data')
    os.makedirs(work)

    if args.data:
        steps('Listing the photos in %s (held-out identities make the verification pairs)' % args.data)
        os.makedirs(data_dir)
        num_classes, pairs = split_photo_folder(os.path.abspath(args.data), data_dir, args.held_out, args.pairs,
                                                  args.seed)
    else:
        steps('Rendering %d synthetic identities x %d faces (+20 held out for verification)'
              % (args.identities, args.images_per_identity))
        run(python(os.path.join(TOOLS, 'synth_faces.py'), '--output', data_dir, '--num-identities',
                   args.identities, '--images-per-identity', args.images_per_identity,
                   '--val-identities', 20, '--num-pairs', args.pairs, '--seed', args.seed))
        num_classes = args.identities
        pairs = read_pairs(os.path.join(data_dir, 'verification_pairs.txt'), data_dir)

    steps('Packing train.lst into train.rec/train.idx and the pairs into lfw.bin')
    run(python(os.path.join(TOOLS, 'face2rec2.py'), os.path.join(data_dir, 'train'), '--num-thread', 2))
    run(python(os.path.join(TOOLS, 'pairs2pack.py'), '--pairs', os.path.join(data_dir, 'verification_pairs.txt'),
               '--output', os.path.join(data_dir, 'lfw.bin')))
    run(python(os.path.join(TOOLS, 'dataset_info.py'), '--input', data_dir, '--check'))

    steps('Writing config.py (sample_config.py plus a "demo" network and dataset) and the untrained model')
    config_path = os.path.join(work, 'config.py')
    with open(os.path.join(ROOT, 'sample_config.py')) as fin, open(config_path, 'w') as fout:
        fout.write(fin.read())
        fout.write(DEMO_PRESETS.format(data_dir=data_dir, num_classes=num_classes, max_steps=args.steps - 1))
    models_root = os.path.join(work, 'models')
    prefix = os.path.join(models_root, 'demo-arcface-demo', 'model')
    save_untrained_model(config_path, prefix, args.seed)

    steps('Training with ArcFace for %d batches of %d on CPU (verification every %d)'
          % (args.steps, args.batch_size, args.verbose))
    train_log = os.path.join(work, 'train.log')
    print('(full log: %s)' % train_log)
    train = subprocess.Popen(
        python(os.path.join(ROOT, 'recognition', 'train.py'), '--config', config_path, '--network', 'demo',
               '--loss', 'arcface', '--dataset', 'demo', '--models-root', models_root, '--pretrained',
               prefix + ',0', '--per-batch-size', args.batch_size, '--lr', args.lr, '--lr-steps',
               int(args.steps * 0.75), '--verbose', args.verbose, '--frequent', 10, '--ckpt', 2,
               '--seed', args.seed, '--ctx', 'cpu'),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(train_log, 'w') as log:
        for line in train.stdout:
            log.write(line)
            if 'Speed:' in line or 'Accuracy-Flip' in line or 'lr change' in line:
                print('  ' + line.split('INFO:root:')[-1].rstrip(), flush=True)
    if train.wait() != 0:
        raise SystemExit('training failed; see %s' % train_log)
    last_epoch = max(checkpoint.checkpoint_epochs(prefix))

    steps('Evaluating the untrained and the trained checkpoint with the verification tool')
    roc_path = os.path.join(work, 'roc.png')
    output = run(python(os.path.join(ROOT, 'recognition', 'eval', 'verification.py'), '--data-dir', data_dir,
                        '--model', '%s,0|%d' % (prefix, last_epoch), '--target', 'lfw', '--gpu', -1,
                        '--roc', roc_path), log_path=os.path.join(work, 'verification.log'))
    results = parse_verification(output)
    for line in output.splitlines():
        if line.startswith('[lfw]') or line.startswith('Max of'):
            print('  ' + line)

    steps('Embedding a same-identity and a different-identity pair with face_model')
    import face_model  # noqa: E402  (imported late: it loads mxnet and the MTCNN weights)
    model = face_model.FaceModel(argparse.Namespace(image_size='112,112', model='%s,%d' % (prefix, last_epoch),
                                                    ga_model='', gpu=-1, det=0, flip=0, threshold=1.24))
    same = next(p for p in pairs if p[2])
    different = next(p for p in pairs if not p[2])
    after = results.get(last_epoch, {})
    threshold = after.get('threshold', (None, None))[1]
    similarities = {}
    for name, (first, second, _, mark1, mark2) in (('same', same), ('different', different)):
        emb1 = model.get_feature(aligned_rgb(first, mark1))
        emb2 = model.get_feature(aligned_rgb(second, mark2))
        similarities[name] = float(np.dot(emb1, emb2))
        verdict = ''
        if threshold is not None:
            verdict = '-> %s' % ('same person' if similarities[name] > threshold else 'different people')
        print('  %-9s pair: cosine similarity %.3f %s  (%s, %s)'
              % (name, similarities[name], verdict, first, second))

    steps('Summary')
    before = results.get(0, {})
    print('  verification accuracy (%d held-out pairs): %.4f before training -> %.4f after'
          % (len(pairs), before.get('accuracy', (float('nan'),))[0], after.get('accuracy', (float('nan'),))[0]))
    if 'threshold' in after:
        print('  1:1 threshold: squared L2 distance %.3f, i.e. cosine similarity %.3f'
              % after['threshold'])
    print('  same pair %.3f, different pair %.3f' % (similarities['same'], similarities['different']))
    print('  checkpoint:     %s' % checkpoint.params_path(prefix, last_epoch))
    print('  training curve: %s' % os.path.join(os.path.dirname(prefix), 'training_curve.png'))
    print('  ROC curve:      %s' % roc_path)
    print('  logs:           %s, %s' % (train_log, os.path.join(work, 'verification.log')))
    print('  total time:     %.0f s' % (time.time() - steps.start))
    return {'before': before.get('accuracy', (None,))[0], 'after': after.get('accuracy', (None,))[0],
            'threshold': threshold, 'similarities': similarities,
            'checkpoint': checkpoint.params_path(prefix, last_epoch)}


def save_untrained_model(config_path, prefix, seed):
    """Epoch 0: the network as the trainer initialises it, so 'before training' can be measured."""
    import mxnet as mx

    from recognition import config_loader
    from recognition.symbol import get_embedding_symbol
    from recognition.train import make_initializer

    module = config_loader.load_config_module(config_path)
    config = config_loader.generate(module, 'demo', 'demo', 'arcface')
    with mx.name.NameManager():
        sym = get_embedding_symbol(config)
    mx.random.seed(seed)
    net = mx.mod.Module(sym, label_names=None, context=mx.cpu())
    net.bind(data_shapes=[('data', (1, 3, 112, 112))])
    net.init_params(make_initializer(config.net_name))
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    arg, aux = net.get_params()
    checkpoint.save_checkpoint(prefix, 0, sym, arg, aux)


if __name__ == '__main__':
    main()
