"""A fork server for the tests' buildouts: ``python buildout_server.py SOCKET``.

Every ``bin/buildout`` process first imports zc.buildout, which imports
setuptools and pip: about 0.6 CPU seconds of the 1 s a small run costs, paid
by each of the thousands of buildouts the suite runs.  This server imports
``zc.buildout.buildout`` once, then forks one child per request; the child
is the buildout process: it takes the request's argv, working directory,
environment and output files, runs what the console script runs
(``sys.exit(main())`` of zc.buildout, or of ``dockeroo.cli`` for
``dockeroo plan``), runs the exit handlers, and exits with main's status.
Nothing of dockeroo is imported before the fork: each child loads the
recipes afresh, as a new process does.

Protocol (one connection per run, AF_UNIX stream): the client sends
``LENGTH\\n`` and that many bytes of JSON (program, argv, cwd, env), with the
child's stdout and stderr file descriptors attached (SCM_RIGHTS); the server
answers ``PID\\n`` once the child runs and ``RETURNCODE CPU\\n`` when it ended
(negative: the signal that killed it, as in :mod:`subprocess`; CPU: the
seconds it and its children used).

The client side is :func:`support.buildout.run_process`.
"""

import json
import os
import selectors
import signal
import socket
import sys


def child(request, fds, closing):
    """The buildout process (never returns)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for obj in closing:
            obj.close()
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile
        tempfile.tempdir = None  # TMPDIR is read again
        sys.argv = list(request["argv"])
        if request["program"] == "dockeroo":
            from dockeroo.cli import main
        else:
            from zc.buildout.buildout import main
        code = main()
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:  # what the interpreter does at exit: join the threads, the atexit handlers
        import threading
        threading._shutdown()
        import atexit
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code & 0xFF)


def serve(path):
    # what bin/buildout has as sys.path[0]: the folder of the console scripts
    sys.path[0] = os.path.dirname(sys.executable)
    import zc.buildout.buildout  # noqa: F401  (the cost paid once)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    listener.listen(128)
    os.rename(path + ".new", path)  # the client connects once PATH exists
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_args: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    parent = os.getppid()
    children = {}  # pid -> the client's connection
    while os.getppid() == parent:
        for key, _events in selector.select(timeout=2):
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = receive(conn)
                except (OSError, ValueError) as exc:
                    print("buildout_server: bad request: %s" % exc, file=sys.stderr)
                    conn.close()
                    continue
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    child(request, fds, [listener, conn, selector] +
                          [c for c in children.values()])
                for fd in fds:
                    os.close(fd)
                conn.sendall(b"%d\n" % pid)
                children[pid] = conn
            else:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
                reap(children)
        reap(children)
    for pid in children:  # the tests ended: no buildout outlives them
        os.kill(pid, signal.SIGKILL)


def receive(conn):
    data, fds, _flags, _addr = socket.recv_fds(conn, 65536, 2)
    header, _, rest = data.partition(b"\n")
    length = int(header)
    while len(rest) < length:
        more = conn.recv(length - len(rest))
        if not more:
            raise ValueError("connection closed mid-request")
        rest += more
    if len(fds) != 2:
        raise ValueError("expected 2 file descriptors, got %d" % len(fds))
    return json.loads(rest), fds


def reap(children):
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                conn.sendall(b"%d %.3f\n" % (os.waitstatus_to_exitcode(status),
                                              usage.ru_utime + usage.ru_stime))
            except OSError:
                pass
            conn.close()


if __name__ == "__main__":
    serve(sys.argv[1])
