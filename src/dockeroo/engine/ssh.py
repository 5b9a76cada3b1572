"""Remote engines over ssh: one ssh connection per engine and run.

``engine-url = ssh://[user@]host[:port][/remote/docker.sock]`` (or a Docker
context, or ``DOCKER_HOST``, whose endpoint is ``ssh://``) makes every docker
command of the run go through ONE ssh connection: the first command that
needs the engine starts

    ssh -N -o ExitOnForwardFailure=yes -o BatchMode=yes \\
        -L <private dir>/docker.sock:/var/run/docker.sock [-p port] [-l user] host

and the docker CLI is pointed at ``unix://<private dir>/docker.sock`` for
every call of the run (measured: the docker CLI's own ``ssh://`` opens one
ssh session, with its handshake, per command; see docs/remote.rst).

- The ssh client is the user's: their ``~/.ssh/config``, agent and
  ``known_hosts`` apply; dockeroo never turns host key checking off
  (``BatchMode=yes`` only means nothing is asked on a terminal: an unknown
  or changed host key, or a refused key, is an error).
- The private directory is ``$TMPDIR/dockeroo-ssh-UID/PID-XXXX`` (0700;
  a socket path must stay under 108 bytes, which a buildout's own
  ``parts/.dockeroo`` cannot promise; /tmp when $TMPDIR is too long a path
  for that).  Its ``journal.json`` names the
  buildout process, written before ssh starts, then the ssh process.
- The connection ends with the process: :func:`disconnect_all` runs at exit
  (the Run's last exit step, and an ``atexit`` hook for ``dockeroo plan``),
  on Ctrl-C and SIGTERM too (ssh runs in its own session, so the terminal's
  Ctrl-C does not cut the connection the rollback still needs).  After a
  SIGKILL, the next run (:func:`sweep`, from the Run's sweep and before any
  connection starts) kills the ssh process a dead buildout left and removes
  its directory and socket.
- ``dockeroo plan``: starting the connection changes nothing in Docker or in
  the buildout (the directory is outside it): allowed in plan mode.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from contextlib import suppress

from dockeroo.base import scratch
from dockeroo.base.scratch import NotPrivate, start_time
from dockeroo.engine.errors import SshFailed
from dockeroo.engine.process import Supervisor

#: the remote engine's socket when the URL names none
REMOTE_SOCKET = "/var/run/docker.sock"
#: DOCKEROO_SSH_TUNNEL=0: hand ssh:// URLs to the docker CLI as they are (one ssh
#: session per docker command: the comparison of benchmarks/bench_remote.py)
TUNNEL_ENV = "DOCKEROO_SSH_TUNNEL"


def tunnelled():
    return os.environ.get(TUNNEL_ENV, "1").strip() not in ("0", "no", "false", "off")


def parse(url):
    """(user, host, port, remote socket) of an ``ssh://`` URL; ValueError if it is not one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise ValueError("must be ssh://[user@]host[:port]")
    if parts.password is not None:
        raise ValueError("must not contain a password (use a key or the ssh agent)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port")
    host = parts.hostname
    if host.startswith("-") or (parts.username or "").startswith("-"):
        raise ValueError("host and user must not start with '-'")
    return parts.username, host, port, parts.path if parts.path not in ("", "/") else REMOTE_SOCKET


#: the longest socket path ssh can forward to (sun_path holds 108 bytes with its
#: NUL; ssh says "Bad local forwarding specification" beyond), and what a
#: connection's directory and socket add to the private folder's path
SOCKET_PATH_MAX = 104
SOCKET_SUFFIX = len("/%d-xxxxxxxx/docker.sock" % (2 ** 22))


def base_directory(url=""):
    """The user's private directory of connection sockets (made 0700 if
    missing): in $TMPDIR, or in /tmp when $TMPDIR is too long a path for
    the sockets.  URL: the engine's, for the error."""
    parent = tempfile.gettempdir()
    if len(os.path.join(parent, "dockeroo-ssh-%d" % os.getuid())) + SOCKET_SUFFIX \
            > SOCKET_PATH_MAX:
        parent = "/tmp"
    try:
        return scratch.private_folder("ssh", parent)
    except NotPrivate as exc:
        raise SshFailed(["ssh"], None, "%s: refusing to put the engine's socket there" % exc,
                        url=url)


class Tunnel:
    """The ssh connection of one remote engine, started on first use."""

    def __init__(self, url):
        self.url = url
        self.user, self.host, self.port, self.remote = parse(url)
        self.proc = None
        self.directory = None
        self.failure = None  # the SshFailed that ended it, once it died
        self._lock = threading.Lock()
        self._group = None

    @property
    def socket(self):
        return os.path.join(self.directory, "docker.sock")

    def argv(self, wait):
        argv = ["ssh", "-N", "-T",
                "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes",
                "-o", "ConnectTimeout=%d" % max(1, int(wait)),
                "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
                # our own connection, not a session of a control master the user keeps
                "-o", "ControlMaster=no", "-o", "ControlPath=none",
                "-L", "%s:%s" % (self.socket, self.remote)]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.user:
            argv += ["-l", self.user]
        return argv + ["--", self.host]

    def docker_host(self, wait, cmd=()):
        """``unix://SOCKET`` of the forwarded engine socket, starting the
        connection (waiting at most WAIT seconds) the first time."""
        with self._lock:
            if self.proc is None:
                self._start(wait, cmd)
            elif self.proc.poll() is not None:
                raise self.died(cmd)
            return "unix://" + self.socket

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def died(self, cmd=()):
        """The error that says the connection is gone (ssh's own last words)."""
        if self.failure is None:
            self.failure = SshFailed(list(cmd) or ["ssh"], self.proc.returncode,
                                     self._stderr(), url=self.url, lost=True)
        return self.failure

    def _stderr(self):
        try:
            with open(os.path.join(self.directory, "ssh.err"), errors="replace") as handle:
                return handle.read()
        except OSError:
            return ""

    def _start(self, wait, cmd):
        sweep()
        self.directory = tempfile.mkdtemp(prefix="%d-" % os.getpid(), dir=base_directory(self.url))
        journal = os.path.join(self.directory, "journal.json")
        _write(journal, {"owner": os.getpid(), "owner_start": start_time(os.getpid()),
                         "url": self.url})
        self._group = Supervisor(None)
        with open(os.path.join(self.directory, "ssh.err"), "wb") as err:
            self.proc = self._group.start(self.argv(wait), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=err,
                                          start_new_session=True)
        _write(journal, {"owner": os.getpid(), "owner_start": start_time(os.getpid()),
                         "url": self.url, "ssh": self.proc.pid})
        deadline = time.monotonic() + wait
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None:
                self.failure = SshFailed(list(cmd) or ["ssh"], self.proc.returncode,
                                         self._stderr(), url=self.url)
                self.close()
                raise self.failure
            if time.monotonic() >= deadline:
                self.failure = SshFailed(list(cmd) or ["ssh"], None, "no connection within %ss"
                                         % int(wait), url=self.url, timed_out=int(wait))
                self.close()
                raise self.failure
            time.sleep(0.02)

    def close(self):
        """End the connection and remove its directory (never raises)."""
        if self._group is not None:
            with suppress(Exception):
                for proc in self._group.procs:
                    if proc.poll() is None:
                        proc.terminate()
                        with suppress(subprocess.TimeoutExpired):
                            proc.wait(3)
                self._group.close()
            self._group = None
        if self.directory:
            if self.alive() is False and self.failure is None and self.proc is not None:
                self.died()  # ssh's last words, read before they are removed
            shutil.rmtree(self.directory, ignore_errors=True)


def sweep():
    """Kill the ssh connections (and remove the directories and sockets) of
    buildout processes that ended without closing them (SIGKILL)."""
    try:
        base = base_directory()
        names = os.listdir(base)
    except (OSError, SshFailed):
        return
    for name in names:
        path = os.path.join(base, name)
        try:
            with open(os.path.join(path, "journal.json")) as handle:
                entry = json.load(handle)
            owner = int(entry["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            if _age(path) < 60:  # being made right now by another process
                continue
            entry, owner = {}, None
        if owner is not None and start_time(owner) == entry.get("owner_start") \
                and start_time(owner) is not None:
            continue  # its buildout still runs
        for pid in _processes_using(path):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def _processes_using(path):
    """Pids of the ssh processes whose command line names PATH (the stray
    connection of a killed buildout)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue
        if words and os.path.basename(words[0]) == b"ssh" \
                and any(path.encode() + b"/" in w for w in words):
            found.append(int(pid))
    return found


def _age(path):
    try:
        return time.time() - os.stat(path).st_mtime
    except OSError:
        return 0


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
