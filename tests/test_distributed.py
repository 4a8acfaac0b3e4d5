"""Multi-machine training on 127.0.0.1: the launcher, the per-worker data split and dist_sync equality."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from recognition import launch, train
from recognition.image_iter import FaceImageIter
from test_train import make_dataset, run_train, write_config

JOB_TIMEOUT = 150  # hard limit of one launcher run in these tests


def run_launcher(args, timeout=JOB_TIMEOUT):
    """Run recognition.launch in its own process group; kill the whole group if it overruns."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MXNET_SUBGRAPH_VERBOSE='0', PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([sys.executable, '-m', 'recognition.launch'] + args, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail('the launcher did not end within %d s:\n%s' % (timeout, out))
    return proc.returncode, out


def assert_all_gone(out):
    """Every process the launcher reports having started has ended."""
    pids = [int(p) for p in re.findall(r'started .* \(pid (\d+)\)', out)]
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_partitions_are_disjoint_slices_of_the_single_process_batches(tmp_path):
    make_dataset(str(tmp_path))  # 4 identities x 6 images
    rec = str(tmp_path / 'train.rec')
    kwargs = dict(data_shape=(3, 32, 32), path_imgrec=rec, shuffle=True, rand_mirror=True,
                  seed=5, num_threads=1)
    whole = FaceImageIter(batch_size=8, **kwargs)
    parts = [FaceImageIter(batch_size=4, num_parts=2, part_index=k, **kwargs) for k in range(2)]
    assert [p.batches_per_epoch() for p in parts] == [whole.batches_per_epoch()] * 2 == [3, 3]
    for epoch in range(2):
        for it in [whole] + parts:
            it.reset()
            it.is_init = True
        seen = [[], []]
        for batch in whole:
            for k, part in enumerate(parts):
                mine = part.next()
                np.testing.assert_array_equal(mine.data[0].asnumpy(),
                                              batch.data[0].asnumpy()[4 * k:4 * k + 4])
                np.testing.assert_array_equal(mine.label[0].asnumpy(),
                                              batch.label[0].asnumpy()[4 * k:4 * k + 4])
                seen[k] += part.seq[part.cur - 8 + 4 * k:part.cur - 4 + 4 * k]
        for part in parts:
            with pytest.raises(StopIteration):
                part.next()
        assert not set(seen[0]) & set(seen[1]) and len(seen[0]) == len(seen[1]) == 12
    # fast_forward keeps a part in step with its uninterrupted self
    straight = FaceImageIter(batch_size=4, num_parts=2, part_index=1, **kwargs)
    for _ in range(3 + 2):  # one epoch and two batches
        try:
            straight.next()
        except StopIteration:
            straight.reset()
            straight.next()
    again = FaceImageIter(batch_size=4, num_parts=2, part_index=1, **kwargs)
    again.fast_forward(1, 2)
    np.testing.assert_array_equal(again.next().data[0].asnumpy(), straight.next().data[0].asnumpy())
    with pytest.raises(ValueError, match='part_index'):
        FaceImageIter(batch_size=4, num_parts=2, part_index=2, **kwargs)


def test_dist_sync_workers_match_a_single_process_with_the_same_global_batch(tmp_path):
    # 24 images; global batch 8 = 2 workers x 4 = 2 contexts x 4; verification and resume
    # state after batches 2 and 4, exit after batch 4 (crossing an epoch end). The 'FC' head has
    # no Dropout: its masks come from each process's own random generator, so with it the
    # workers' masks could not equal those of the single run's second context.
    config = write_config(tmp_path, max_steps=3, extra="network.tiny.net_output = 'FC'\n")
    start = time.monotonic()
    worker = [sys.executable, '-m', 'recognition.train', '--config', config, '--network', 'tiny',
              '--dataset', 'tiny', '--loss', 'arcface', '--models-root', str(tmp_path / 'dist'),
              '--per-batch-size', '4', '--ctx', 'cpu', '--lr', '0.01', '--frequent', '2',
              '--verbose', '2', '--ckpt', '2', '--seed', '1', '--kvstore', 'dist_sync']
    code, out = run_launcher(['-n', '2', '-s', '1', '--timeout', '120', '--'] + worker)
    assert code == 0, out
    assert_all_gone(out)
    print('distributed job: %.1f s' % (time.monotonic() - start))
    assert run_train(config, tmp_path, '--models-root', str(tmp_path / 'single'), '--ctx', 'cpu:2') == 0

    run = 'tiny-arcface-tiny'
    w0 = train.load_resume_state(str(tmp_path / 'dist' / run / 'model-resume.params'))
    w1 = train.load_resume_state(str(tmp_path / 'dist' / run / 'worker1' / 'model-resume.params'))
    one = train.load_resume_state(str(tmp_path / 'single' / run / 'model-resume.params'))
    assert w0[3]['global_step'] == w1[3]['global_step'] == one[3]['global_step'] == 4
    assert sorted(w0[0]) == sorted(w1[0]) == sorted(one[0]) and 'fc7_weight' in one[0]
    for name in one[0]:
        # the workers apply the same summed gradient to the same weights: bit for bit equal
        np.testing.assert_array_equal(w0[0][name].asnumpy(), w1[0][name].asnumpy(), err_msg=name)
        # the same sums in another order (threads per process): float rounding only
        np.testing.assert_allclose(w0[0][name].asnumpy(), one[0][name].asnumpy(), rtol=1e-4,
                                   atol=2e-5, err_msg=name)
    # BatchNorm moving statistics are per worker, as they are per context in the single run,
    # whose get_params averages the contexts: the workers' mean is the comparable value.
    for name in one[1]:
        mean = (w0[1][name].asnumpy() + w1[1][name].asnumpy()) / 2
        np.testing.assert_allclose(mean, one[1][name].asnumpy(), rtol=1e-3, atol=2e-5, err_msg=name)
    assert any(not np.array_equal(w0[1][n].asnumpy(), w1[1][n].asnumpy()) for n in one[1])


def test_dist_sync_triplet_training_mines_per_worker_and_keeps_workers_equal(tmp_path):
    # 4 identities x 6 images; each worker mines bags of 6 from its own 2 identities x 3 images.
    extra = ("loss.triplet.triplet_bag_size = 6\nloss.triplet.images_per_identity = 3\n"
             "loss.triplet.triplet_alpha = 1.0\nnetwork.tiny.net_output = 'FC'\n")
    config = write_config(tmp_path, max_steps=2, extra=extra)
    worker = [sys.executable, '-m', 'recognition.train', '--config', config, '--network', 'tiny',
              '--dataset', 'tiny', '--loss', 'triplet', '--models-root', str(tmp_path / 'dist'),
              '--per-batch-size', '6', '--ctx', 'cpu', '--lr', '0.01', '--frequent', '1',
              '--verbose', '2', '--ckpt', '2', '--seed', '3', '--kvstore', 'dist_sync']
    code, out = run_launcher(['-n', '2', '-s', '1', '--timeout', '120', '--'] + worker)
    assert code == 0, out
    assert_all_gone(out)
    # Each worker's epochs draw from its half of the identities (2 x images_per_identity 3).
    assert out.count('triplet_seq 6') >= 2 and 'triplet_seq 12' not in out, out
    run = 'tiny-triplet-tiny'
    w0 = train.load_resume_state(str(tmp_path / 'dist' / run / 'model-resume.params'))
    w1 = train.load_resume_state(str(tmp_path / 'dist' / run / 'worker1' / 'model-resume.params'))
    assert w0[3]['global_step'] == w1[3]['global_step'] == 2
    for name in w0[0]:
        # different triplets per worker, one summed gradient: the weights stay equal
        np.testing.assert_array_equal(w0[0][name].asnumpy(), w1[0][name].asnumpy(), err_msg=name)


def test_a_failing_worker_stops_the_whole_job_quickly(tmp_path):
    # rank 0 waits in a dist_sync push for rank 1, which crashes: without the launcher's
    # check, rank 0, the server and the scheduler would wait forever.
    script = tmp_path / 'crash.py'
    script.write_text(
        "import os, mxnet as mx\n"
        "kv = mx.kv.create('dist_sync')\n"
        "kv.init('w', mx.nd.ones((2,)))\n"
        "if kv.rank == 1:\n"
        "    os._exit(3)\n"
        "kv.push('w', mx.nd.ones((2,)))\n"
        "out = mx.nd.zeros((2,))\n"
        "kv.pull('w', out=out)\n"
        "out.wait_to_read()\n")
    start = time.monotonic()
    code, out = run_launcher(['-n', '2', '-s', '1', '--timeout', '100', '--',
                              sys.executable, str(script)], timeout=60)
    elapsed = time.monotonic() - start
    assert code == 1
    assert re.search(r'error: worker [01] \(pid \d+\) exited with code 3; stopping the job', out), out
    assert elapsed < 30
    assert_all_gone(out)


def test_timeout_stops_a_job_that_never_ends(tmp_path):
    start = time.monotonic()
    code, out = run_launcher(['-n', '1', '-s', '1', '--timeout', '2', '--', sys.executable, '-c',
                              'import time; time.sleep(600)'], timeout=60)
    assert code == 1 and 'longer than --timeout 2 s' in out, out
    assert time.monotonic() - start < 20
    assert_all_gone(out)


def test_local_plan_sets_the_dmlc_variables():
    plan = launch.plan_job(2, 1, ['python', 'train.py'], 9000, python='py')
    assert [name for name, _, _ in plan] == ['scheduler', 'server 0', 'worker 0', 'worker 1']
    assert plan[0][1] == plan[1][1] == ['py', '-c', 'import mxnet']
    assert plan[3][1] == ['python', 'train.py']
    for (name, _, env), role in zip(plan, ['scheduler', 'server', 'worker', 'worker']):
        assert env == {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': '127.0.0.1', 'DMLC_PS_ROOT_PORT': '9000',
                       'DMLC_NUM_SERVER': '1', 'DMLC_NUM_WORKER': '2', 'DMLC_NODE_HOST': '127.0.0.1'}


def test_ssh_plan_builds_remote_command_lines(tmp_path):
    hostfile = tmp_path / 'hosts'
    hostfile.write_text('# machines\nnode-a\n\nnode-b:2222  # second\n')
    hosts = launch.read_hosts(str(hostfile))
    assert hosts == [('node-a', None), ('node-b', 2222)]
    plan = launch.plan_job(3, 2, ['python', '-m', 'recognition.train', '--lr', '0.1 x'], 9100,
                           python='/opt/py', hosts=hosts, scheduler_host='10.0.0.1',
                           workdir='/data/my run', extra_env={'OMP_NUM_THREADS': '4'})
    names = [name for name, _, _ in plan]
    assert names == ['scheduler', 'server 0', 'server 1', 'worker 0', 'worker 1', 'worker 2']
    # the scheduler runs here; the others go round-robin over the hosts
    assert plan[0][1] == ['/opt/py', '-c', 'import mxnet'] and plan[0][2]['DMLC_NODE_HOST'] == '10.0.0.1'
    expected_hosts = {'server 0': 'node-a', 'server 1': 'node-b', 'worker 0': 'node-a',
                      'worker 1': 'node-b', 'worker 2': 'node-a'}
    for name, argv, env in plan[1:]:
        host = expected_hosts[name]
        assert env == {}
        port = ['-p', '2222'] if host == 'node-b' else []
        assert argv[:-2] == ['ssh', '-tt', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no'] + port
        assert argv[-2] == host
        remote = argv[-1]
        assert remote.startswith("cd '/data/my run' && env ")
        for var in ('DMLC_NODE_HOST=%s' % host, 'DMLC_PS_ROOT_URI=10.0.0.1', 'DMLC_PS_ROOT_PORT=9100',
                    'DMLC_NUM_SERVER=2', 'DMLC_NUM_WORKER=3', 'OMP_NUM_THREADS=4',
                    'DMLC_ROLE=%s' % name.split()[0]):
            assert ' %s ' % var in remote
        tail = "/opt/py -c 'import mxnet'" if name.startswith('server') else \
            "python -m recognition.train --lr '0.1 x'"
        assert remote.endswith(tail)
    with pytest.raises(SystemExit):
        launch.main(['-n', '2', '-H', str(hostfile), '--', 'python', 'x.py'])  # no --scheduler-host
    (tmp_path / 'empty').write_text('# nothing\n')
    with pytest.raises(ValueError, match='no hosts'):
        launch.read_hosts(str(tmp_path / 'empty'))
