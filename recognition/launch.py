"""Starts an MXNet parameter-server job: 1 scheduler, S servers and W workers, locally or over ssh.

    python -m recognition.launch -n 2 -s 1 -- python -m recognition.train --kvstore dist_sync ...
    python -m recognition.launch -n 4 -s 2 -H hosts --scheduler-host 10.0.0.1 -- python ...

Every process gets the DMLC_* variables of MXNet's parameter server (ps-lite). The scheduler and
the servers are `python -c "import mxnet"`: importing mxnet with DMLC_ROLE=scheduler or server
runs that node's loop until the workers finish. A process that exits with an error, or the
--timeout, stops the whole job, so a crashed worker never leaves the others waiting forever.
"""
import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

SERVER_COMMAND = ['-c', 'import mxnet']  # after the python executable
POLL_SECONDS = 0.2
GRACE_SECONDS = 5  # between SIGTERM and SIGKILL


def free_port(host='127.0.0.1'):
    """A TCP port nobody listens on right now at `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def read_hosts(path):
    """Hosts file: one `host` or `host:ssh_port` per line; blank lines and '#' comments skipped."""
    hosts = []
    with open(path) as fin:
        for line in fin:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            host, _, port = line.partition(':')
            if port and not port.isdigit():
                raise ValueError("%s: %r is not 'host' or 'host:ssh_port'" % (path, line))
            hosts.append((host, int(port) if port else None))
    if not hosts:
        raise ValueError("%s lists no hosts; write one host (or host:ssh_port) per line" % path)
    return hosts


def dmlc_env(role, root_uri, root_port, num_servers, num_workers, node_host):
    """The variables ps-lite reads to find the scheduler and to know its own role and address."""
    return {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': root_uri, 'DMLC_PS_ROOT_PORT': str(root_port),
            'DMLC_NUM_SERVER': str(num_servers), 'DMLC_NUM_WORKER': str(num_workers),
            'DMLC_NODE_HOST': node_host}


def plan_job(num_workers, num_servers, command, root_port, python=sys.executable, hosts=None,
             scheduler_host='127.0.0.1', workdir=None, extra_env=None):
    """[(name, argv, env)] of the job: env holds what to set on top of the inherited environment.

    Without hosts every process is local on 127.0.0.1. With hosts [(host, ssh_port)], the
    scheduler is local (others reach it at scheduler_host) and servers and workers go round-robin
    over the hosts through ssh, each with its variables in the remote command line.
    """
    extra_env = dict(extra_env or {})
    server_argv = [python] + SERVER_COMMAND
    roles = ([('scheduler', None, server_argv)]
             + [('server %d' % i, i, server_argv) for i in range(num_servers)]
             + [('worker %d' % i, i, list(command)) for i in range(num_workers)])
    plan = []
    for name, index, argv in roles:
        role = name.split()[0]
        if hosts is None or role == 'scheduler':
            node_host, ssh_port = scheduler_host, None
        else:
            node_host, ssh_port = hosts[index % len(hosts)]
        env = dmlc_env(role, scheduler_host, root_port, num_servers, num_workers, node_host)
        env.update(extra_env)
        if hosts is None or role == 'scheduler':
            plan.append((name, argv, env))
        else:
            plan.append((name, ssh_command(node_host, ssh_port, argv, env, workdir or os.getcwd()),
                         {}))
    return plan


def ssh_command(host, ssh_port, argv, env, workdir):
    """ssh argv running `argv` in `workdir` on `host` with `env` exported.

    -tt gives the remote process a terminal, so it receives SIGHUP and ends when the local ssh
    client is terminated; BatchMode makes a missing key fail at once instead of asking.
    """
    remote = 'cd %s && env %s %s' % (
        shlex.quote(workdir), ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in sorted(env.items())),
        ' '.join(shlex.quote(a) for a in argv))
    ssh = ['ssh', '-tt', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no']
    if ssh_port:
        ssh += ['-p', str(ssh_port)]
    return ssh + [host, remote]


def stop_all(running):
    """SIGTERM every process still running, then SIGKILL whatever is left after GRACE_SECONDS."""
    for proc in running.values():
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + GRACE_SECONDS
    for proc in running.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def describe_exit(code):
    return 'was killed by signal %d' % -code if code < 0 else 'exited with code %d' % code


def run_job(plan, timeout=None, log=print):
    """Start every process of `plan`; 0 when all end well, else 1 after stopping the rest.

    Failures: any process exiting non-zero, the timeout, or scheduler/servers still running
    6 x GRACE_SECONDS after the last worker ended (they normally stop on their own).
    """
    running = {}
    try:
        for name, argv, env in plan:
            proc = subprocess.Popen(argv, env=dict(os.environ, **env))
            running[name] = proc
            log('launch: started %s (pid %d)' % (name, proc.pid))
        start = time.monotonic()
        workers_done_at = None
        while True:
            for name, proc in running.items():
                code = proc.poll()
                if code not in (None, 0):
                    log('launch: error: %s (pid %d) %s; stopping the job'
                        % (name, proc.pid, describe_exit(code)))
                    return 1
            if all(p.poll() is not None for p in running.values()):
                log('launch: all processes finished')
                return 0
            now = time.monotonic()
            if workers_done_at is None and all(running[n].poll() is not None
                                               for n in running if n.startswith('worker')):
                workers_done_at = now
            if workers_done_at is not None and now - workers_done_at > 6 * GRACE_SECONDS:
                log('launch: error: the workers finished but the scheduler/servers did not end '
                    'within %d s; stopping them' % (6 * GRACE_SECONDS))
                return 1
            if timeout is not None and now - start > timeout:
                log('launch: error: the job ran longer than --timeout %g s; stopping it' % timeout)
                return 1
            time.sleep(POLL_SECONDS)
    finally:
        stop_all(running)


def parse_env(items):
    env = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise argparse.ArgumentTypeError("--env wants KEY=VALUE, got %r" % item)
        env[key] = value
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Launch an MXNet parameter-server job (1 scheduler, S servers, W workers).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('-n', '--num-workers', type=int, required=True, help='number of workers')
    parser.add_argument('-s', '--num-servers', type=int, default=None,
                        help='number of servers (default: as many as workers)')
    parser.add_argument('-H', '--hostfile', default=None,
                        help='hosts to ssh to, one host or host:ssh_port a line; none: all local')
    parser.add_argument('--scheduler-host', default=None,
                        help='address of this machine that the hosts reach (needed with -H); '
                             'the scheduler runs here')
    parser.add_argument('--port', type=int, default=None,
                        help='scheduler port (default: a free one)')
    parser.add_argument('--python', default=sys.executable,
                        help='python that runs the scheduler and servers (same path on every host)')
    parser.add_argument('--workdir', default=os.getcwd(),
                        help='directory the remote commands run in (same path on every host)')
    parser.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                        help='extra environment variable for every process (repeatable)')
    parser.add_argument('--timeout', type=float, default=None,
                        help='stop the whole job after this many seconds')
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help="the worker command, after '--'")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ['--'] else args.command
    if not command:
        parser.error("give the worker command after '--', e.g. -- python -m recognition.train "
                     "--kvstore dist_sync")
    if args.num_workers < 1:
        parser.error('--num-workers must be at least 1')
    num_servers = args.num_workers if args.num_servers is None else args.num_servers
    if num_servers < 1:
        parser.error('--num-servers must be at least 1')
    try:
        extra_env = parse_env(args.env)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    hosts = None
    scheduler_host = args.scheduler_host or '127.0.0.1'
    if args.hostfile:
        if not args.scheduler_host:
            parser.error('-H needs --scheduler-host: the address of this machine the hosts can reach')
        hosts = read_hosts(args.hostfile)
    port = args.port or free_port(scheduler_host if hosts is None else '')
    plan = plan_job(args.num_workers, num_servers, command, port, python=args.python, hosts=hosts,
                    scheduler_host=scheduler_host, workdir=args.workdir, extra_env=extra_env)
    # a terminated launcher still stops its processes (run_job's finally clause)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    code = run_job(plan, timeout=args.timeout, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    sys.exit(code)


if __name__ == '__main__':
    main()
