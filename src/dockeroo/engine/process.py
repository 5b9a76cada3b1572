"""Processes of the docker CLI: the supervisor that starts, times and kills
them, their results, default time limits."""

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from contextlib import suppress

from dockeroo.engine.errors import DockerError, Timeout


DEFAULT_TIMEOUT = 180
#: default for long operations (build, pull, push, scripts, copies)
DEFAULT_LONG_TIMEOUT = 3600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Result:
    args: list
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self):
        """Everything the command printed: its stdout, then its stderr."""
        return self.stdout + self.stderr

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    def tail(self, lines=20):
        """The last LINES lines of stdout, then of stderr, without colour codes."""
        parts = []
        for text in (self.stdout, self.stderr):
            kept = [l.rstrip() for l in ANSI_ESCAPE.sub("", text or "").splitlines() if l.strip()]
            parts.extend(kept[-lines:])
        return "\n".join(parts)


class Supervisor:
    """The processes of one operation under one deadline.

    The only place dockeroo starts a process of the docker CLI (through
    :meth:`DockerEngine.popen`) and the only implementation of a time
    limit: when TIMEOUT seconds have passed since the supervisor was made,
    every process it started is killed and :attr:`timed_out` is set
    (:meth:`timeout` is then the error to raise).  Leaving the ``with``
    block kills what still runs and reaps it, also on Ctrl-C or SIGTERM:
    no docker client is left orphaned.  With CLOSE the processes' pipes
    are closed too (not when threads may still block on them).
    """

    def __init__(self, timeout, close_pipes=True):
        self.limit = timeout
        self.deadline = time.monotonic() + (timeout if timeout is not None else 10 ** 9)
        self.procs = []
        self.timed_out = False
        self.close_pipes = close_pipes
        self._timer = threading.Timer(timeout, self.expire) if timeout is not None else None
        if self._timer is not None:  # None: no deadline (an engine's ssh connection)
            self._timer.daemon = True
            self._timer.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(failed=exc[0] is not None)
        return False

    def close(self, failed=False):
        """Stop the clock; kill what still runs and reap it (and close the
        pipes, unless FAILED: a thread may still read one, closing would block)."""
        if self._timer is not None:
            self._timer.cancel()
        for proc in self.procs:
            self.end(proc, close=self.close_pipes and not failed)

    def end(self, proc, close=True):
        """Kill PROC if it still runs, reap it and (with CLOSE) close its pipes."""
        self.kill(proc)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr) if close else ():
            if pipe:
                with suppress(OSError):
                    pipe.close()

    def start(self, argv, **kwargs):
        """``subprocess.Popen(ARGV, **KWARGS)``, killed with the others."""
        try:
            proc = subprocess.Popen(argv, **kwargs)
        except FileNotFoundError:
            raise DockerError(argv, 127, "%s: command not found" % argv[0])
        self.procs.append(proc)
        return proc

    def left(self):
        """Seconds left before the deadline."""
        return max(0.0, self.deadline - time.monotonic())

    def expired(self):
        return self.timed_out or time.monotonic() >= self.deadline

    def expire(self):
        """The deadline passed: kill every process (timed out if one still ran)."""
        if self.kill():
            self.timed_out = True

    def kill(self, *procs):
        """Kill PROCS (every process when none is named) that still run;
        whether one did."""
        running = [proc for proc in procs or self.procs if proc.poll() is None]
        for proc in running:
            proc.kill()
        return bool(running)

    def communicate(self, proc, input=None):
        """PROC's (stdout, stderr) as text; a process still running at the
        deadline is killed (then :attr:`timed_out` is set and the output is
        what it had printed)."""
        try:
            out, err = proc.communicate(input, timeout=self.left())
        except subprocess.TimeoutExpired as exc:
            self.timed_out = True
            self.kill()
            proc.wait()
            out, err = exc.stdout, exc.stderr
        return _text(out), _text(err)

    def collect(self, proc, stdout=True):
        """Read PROC's stderr (and its stdout, unless not STDOUT) to the end in
        threads; returns a function that waits for them and gives (stdout,
        stderr) as text."""
        sinks = ([], [])
        threads = [_drain(proc.stderr, sinks[1])]
        if stdout:
            threads.append(_drain(proc.stdout, sinks[0]))

        def join():
            for t in threads:
                t.join()
            return tuple(b"".join(sink).decode("utf-8", "replace") for sink in sinks)
        return join

    def answer(self, proc):
        """What PROC said on stderr, read after it ended."""
        proc.wait()
        return _text(proc.stderr.read())

    def error(self, proc, stderr, kind=None, **extra):
        """The error of PROC, which failed saying STDERR: typed from its answer,
        or a KIND of :mod:`~dockeroo.engine.errors` made with EXTRA."""
        if kind is not None:
            return kind(proc.args, proc.returncode, stderr, **extra)
        return DockerError.from_output(proc.args, proc.returncode, stderr)

    def timeout(self, proc, stderr=""):
        """The error that says PROC (a process or an argv) was killed at the deadline."""
        return Timeout(getattr(proc, "args", proc), None, stderr, timed_out=self.limit)


class Feed:
    """A consumer's stdin as a transform writes it: counts the bytes, and
    can end the stream so that the consumer refuses it.

    ``docker import -`` and ``docker load`` take a stream that ends cleanly
    between two tar members (even an empty one) for a whole archive and make
    an image of it; Podman 4.3 also makes one of what it received when the
    client dies in the middle of the request.  A stream whose writing failed
    is therefore never just closed nor cut off: :meth:`spoil` ends it inside
    a 512-byte block with bytes that are not a tar header's (nor the end of
    a compressed stream), which every tar reader refuses, and the consumer
    fails on its own.
    """

    BLOCK = 512

    def __init__(self, raw):
        self.raw = raw
        self.written = 0

    def write(self, data):
        result = self.raw.write(data)
        self.written += len(data)
        return result

    def spoil(self):
        """Write the bytes that make the stream invalid (a closed pipe is fine:
        the consumer is gone and its exit status tells)."""
        size = 1 if (self.written + 1) % self.BLOCK else 2
        with suppress(OSError, ValueError):
            self.raw.write(b"\xff" * size)
            self.written += size

    def __getattr__(self, name):
        return getattr(self.raw, name)


def _write_all(pipe, data):
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the process stopped reading: its exit status tells why
    finally:
        with suppress(OSError):
            pipe.close()


def _drain(pipe, sink):
    """A started thread that reads PIPE to its end into the list SINK."""
    t = threading.Thread(target=lambda: sink.append(pipe.read()), daemon=True)
    t.start()
    return t


def printed_id(stdout):
    """The image id ``docker import``/``commit`` printed (Podman prints ``ID: ID``)."""
    words = (stdout or "").split()
    return words[-1] if words else ""


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")
