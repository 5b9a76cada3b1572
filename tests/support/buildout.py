"""A test's buildout directory, and the recorder of the docker commands it runs."""

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass

#: the tests/ folder
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDOUT = os.path.join(os.path.dirname(sys.executable), "buildout")
#: the console script of ``dockeroo plan``
DOCKEROO = os.path.join(os.path.dirname(BUILDOUT), "dockeroo")

#: DOCKEROO_TEST_FORK=0 runs every buildout as its own ``bin/buildout``
#: process; else they are forked from one process that imported zc.buildout
#: once (support/buildout_server.py)
FORK = os.environ.get("DOCKEROO_TEST_FORK", "1") != "0"


class _ForkServer:
    """The buildout fork server of this test process, started on first use."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc = None
        self.path = None

    def socket_path(self):
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                folder = tempfile.mkdtemp(prefix="dockeroo-test-fork-")
                self.path = os.path.join(folder, "s")
                script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                      "buildout_server.py")
                self.proc = subprocess.Popen([sys.executable, script, self.path],
                                             stdin=subprocess.DEVNULL)
                atexit.register(self.stop, self.proc, folder)
                deadline = time.monotonic() + 60
                while not os.path.exists(self.path):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the buildout fork server did not start")
                    time.sleep(0.02)
            return self.path

    @staticmethod
    def stop(proc, folder):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


_SERVER = _ForkServer()
#: the CPU seconds of the forked buildouts that ended (they are not children of
#: this process: tests/conftest.py adds them to a test's CPU time)
FORKED_CPU = 0.0


def _forkable(environ):
    """Whether a forked child can stand for a new process in ENVIRON: not
    when it sets what Python reads only at startup (PYTHONPATH ...)."""
    return FORK and all(environ.get(k) == os.environ.get(k)
                        for k in set(environ) | set(os.environ) if k.startswith("PYTHON"))


def run_process(argv, cwd, env, timeout):
    """Run ARGV (``BUILDOUT`` or ``DOCKEROO`` first) like ``subprocess.run(argv,
    cwd=CWD, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)``;
    returns a CompletedProcess.  Forked from the fork server when it may."""
    program = {BUILDOUT: "buildout", DOCKEROO: "dockeroo"}.get(argv[0])
    if program is None or not _forkable(env):
        return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    payload = json.dumps({"program": program, "argv": list(argv), "cwd": cwd,
                          "env": dict(env)}).encode()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(_SERVER.socket_path())
        socket.send_fds(conn, [b"%d\n" % len(payload) + payload], [out.fileno(), err.fileno()])
        deadline = time.monotonic() + timeout
        lines, buffer, timed_out = [], b"", False
        while len(lines) < 2:  # the child's pid, then its return code and CPU seconds
            conn.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = conn.recv(4096)
            except socket.timeout:
                if not lines or timed_out:
                    raise
                timed_out = True
                os.kill(int(lines[0]), signal.SIGKILL)  # as subprocess.run does
                deadline = time.monotonic() + 60
                continue
            if not data:
                raise RuntimeError("the buildout fork server ended while running %s" % argv)
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                lines.append(line.decode())
        returncode, cpu = lines[1].split()
        global FORKED_CPU
        FORKED_CPU += float(cpu)
        output = []
        for handle in (out, err):
            handle.seek(0)
            output.append(handle.read().decode("utf-8", "replace"))
    if timed_out:
        raise subprocess.TimeoutExpired(argv, timeout, output=output[0], stderr=output[1])
    return subprocess.CompletedProcess(argv, int(returncode), output[0], output[1])


@dataclass
class BuildoutRun:
    returncode: int
    output: str

    @property
    def ok(self):
        return self.returncode == 0

    def error_line(self):
        lines = [l for l in self.output.splitlines() if l.startswith("Error:")]
        return lines[-1] if lines else ""


class Buildout:
    """A buildout directory for one test."""

    def __init__(self, directory, prefix):
        self.directory = directory
        self.prefix = prefix
        #: the parts any run's configuration said keep (None: one said it in a
        #: form this does not read, so any part may have kept something)
        self.kept = set()
        os.makedirs(directory, exist_ok=True)

    def _note_kept(self, args):
        try:
            with open(self.path("buildout.cfg")) as handle:
                text = handle.read()
        except OSError:
            text = ""
        part = None
        for line in text.splitlines() + ["[%s]\nkeep = %s" % tuple(a.split(":keep=", 1))
                                         for a in args if ":keep=" in a]:
            for piece in line.splitlines():
                header = re.match(r"\s*\[([^\]]+)\]", piece)
                if header:
                    part = header.group(1)
                elif re.match(r"\s*keep\s*=\s*(true|yes|on|1)\s*$", piece, re.I):
                    if self.kept is not None:
                        self.kept.add(part)
                elif re.match(r"\s*keep\s*[+-]?=", piece) and \
                        not re.match(r"\s*keep\s*=\s*(false|no|off|0)?\s*$", piece, re.I):
                    self.kept = None

    def path(self, *names):
        return os.path.join(self.directory, *names)

    def write(self, name, text):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(text))
        return path

    def configure(self, parts_text, parts=None):
        """Write buildout.cfg from part sections; ``parts`` defaults to all sections."""
        text = textwrap.dedent(parts_text)
        if parts is None:
            parts = [line.strip()[1:-1] for line in text.splitlines()
                     if line.strip().startswith("[") and line.strip().endswith("]")
                     and not line.startswith(" ")]
        header = "[buildout]\nparts = %s\n" % " ".join(parts)
        with open(self.path("buildout.cfg"), "w") as handle:
            handle.write(header + "\n" + text)

    def run(self, *args, env=None, timeout=1200):
        self._note_kept(args)
        environ = dict(os.environ)
        environ.update(env or {})
        proc = run_process([BUILDOUT, "-N", *args] if "-n" not in args else [BUILDOUT, *args],
                           cwd=self.directory, env=environ, timeout=timeout)
        return BuildoutRun(proc.returncode, proc.stdout + proc.stderr)

    def ok(self, *args, **kwargs):
        result = self.run(*args, **kwargs)
        assert result.ok, result.output
        assert "Traceback" not in result.output, result.output
        return result

    def fails(self, *args, **kwargs):
        result = self.run(*args, **kwargs)
        assert not result.ok, result.output
        assert "Traceback" not in result.output, result.output
        return result

    def installed(self):
        path = self.path(".installed.cfg")
        return open(path).read() if os.path.exists(path) else ""

    def uninstall_all(self):
        with open(self.path("buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        return self.run()


@dataclass
class DockerRecorder:
    """A ``docker`` wrapper first on PATH that records every call, then runs the real one.

    Each record: ``argv`` (without the program), ``docker_config`` (the
    DOCKER_CONFIG it saw) and, for login/pull/push, ``context`` (what
    ``docker context show`` answers in that environment).
    """

    directory: str
    real: str

    @property
    def log(self):
        return os.path.join(self.directory, "calls.jsonl")

    @property
    def env(self):
        """Environment for ``buildout.run(env=...)``."""
        return {"PATH": self.directory + os.pathsep + os.environ.get("PATH", "")}

    def _records(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def calls(self):
        """The recorded calls: {"argv": ..., "docker_config": ...}."""
        return [r for r in self._records() if "argv" in r]

    def commands(self, command=None):
        """Recorded argv lists, optionally only those of COMMAND (e.g. "push")."""
        return [c["argv"] for c in self.calls() if command is None or c["argv"][:1] == [command]]

    def made_ids(self):
        """The image ids (whole, or a prefix) that the recorded imports,
        commits and builds (their steps) printed."""
        return [i for r in self._records() for i in r.get("printed", "").split()]

    def clear(self):
        if os.path.exists(self.log):
            os.remove(self.log)


def real_docker():
    """The docker client first on PATH."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "docker")
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def make_docker_recorder(directory, real):
    """A DockerRecorder whose ``docker`` in DIRECTORY records, then runs REAL."""
    os.makedirs(directory)
    recorder = DockerRecorder(directory, real)
    wrapper = os.path.join(directory, "docker")
    with open(wrapper, "w") as handle:
        handle.write(textwrap.dedent("""\
            #!%(python)s -SE
            import json, os, subprocess, sys
            REAL = %(real)r
            args = sys.argv[1:]
            record = {"argv": args, "docker_config": os.environ.get("DOCKER_CONFIG")}
            if args[:1] in (["login"], ["pull"], ["push"]):
                record["context"] = subprocess.run([REAL, "context", "show"], capture_output=True,
                                                   text=True).stdout.strip()
            def append(record):
                fd = os.open(%(log)r, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                os.write(fd, (json.dumps(record) + "\\n").encode())
                os.close(fd)
            append(record)
            if args[:1] not in (["import"], ["commit"], ["build"]):
                os.execv(REAL, [REAL] + args)
            # the ids an import, commit or build (its steps) prints: an image the run
            # makes and removes again by its id is a helper (see plan_exact.classify);
            # the output is passed on as it comes, and the real client dies with this
            # wrapper (a timeout kills the wrapper)
            import ctypes, re, signal
            libc = ctypes.CDLL(None, use_errno=True)
            proc = subprocess.Popen([REAL] + args, stdout=subprocess.PIPE,
                                    preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))
            out = []
            for chunk in iter(lambda: os.read(proc.stdout.fileno(), 65536), b""):
                os.write(1, chunk)
                out.append(chunk)
            code = proc.wait()
            text = b"".join(out).decode(errors="replace")
            if args[0] == "build":  # the steps' images, not those taken from the cache
                ids, cached = [], False
                for line in text.splitlines():
                    if re.match(r"\\s*-?--> Using cache", line):
                        cached = True
                        continue
                    found = re.match(r"\\s*-?--> ([0-9a-f]{11,64})\\s*$", line)
                    if found and not cached:
                        ids.append(found.group(1))
                    cached = cached and not found
            else:
                ids = text.split()[-1:] if code == 0 else []
            if ids:
                append({"printed": " ".join(ids), "by": args[0]})
            sys.exit(code if code >= 0 else 128 - code)
            """) % {"python": sys.executable, "real": real, "log": recorder.log})
    os.chmod(wrapper, 0o755)
    return recorder
