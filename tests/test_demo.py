"""The quick start end to end at a tiny size: synthetic faces, and real photos with --data."""
import os

from recognition import demo


def check_run(workdir, out):
    assert 'verification accuracy' in out and 'before training ->' in out
    assert 'same      pair: cosine similarity' in out
    prefix = os.path.join(workdir, 'models', 'demo-arcface-demo', 'model')
    assert os.path.isfile(prefix + '-0000.params')  # the untrained network, for "before"
    assert os.path.isfile(prefix + '-0002.params')  # verbose 2, 4 steps: two checkpoints
    for path in (os.path.join(workdir, 'roc.png'), os.path.join(os.path.dirname(prefix), 'training_curve.png')):
        with open(path, 'rb') as fin:
            assert fin.read(4) == b'\x89PNG', path
    accuracies = [float(line.split('Accuracy-Flip: ')[1].split('+-')[0])
                  for line in out.splitlines() if line.startswith('  [lfw]Accuracy-Flip')]
    assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies)


def test_demo_on_synthetic_faces(tmp_path, capfd):
    workdir = str(tmp_path / 'run')
    demo.main(['--workdir', workdir, '--identities', '6', '--images-per-identity', '4', '--pairs', '20',
               '--steps', '4', '--verbose', '2', '--batch-size', '4'])
    check_run(workdir, capfd.readouterr().out)


def test_demo_on_a_folder_of_photos(tmp_path, capfd, shared_dir):
    workdir = str(tmp_path / 'run')
    demo.main(['--workdir', workdir, '--data', os.path.join(shared_dir, 'data', 'orl_faces'),
               '--pairs', '20', '--steps', '4', '--verbose', '2', '--batch-size', '4'])
    out = capfd.readouterr().out
    check_run(workdir, out)
    # 40 people: 32 train the network, the 8 held out make the verification pairs
    with open(os.path.join(workdir, 'data', 'property')) as fin:
        assert fin.read().strip() == '32,112,112'
