"""A ``docker`` stand-in for fault injection: counts calls, kills at the k-th.

Installed first on PATH by :class:`support.faults.FaultDocker` (which
writes this file behind a ``#!<python> -SE`` line).  Every call takes the
next number from ``$DOCKEROO_FAULT_DIR/count`` (under ``flock``: the
engine runs inspects concurrently) and appends ``{"n": N, "argv": [...]}``
to ``$DOCKEROO_FAULT_DIR/calls.jsonl``.

Environment:

``DOCKEROO_FAULT_REAL``
    the real docker client.
``DOCKEROO_FAULT_AT``
    K: the call that triggers the fault (empty: only count).
``DOCKEROO_FAULT_WHEN``
    ``after`` (default): the K-th command runs to its end (its effect is
    in Docker, its answer never reaches buildout), then the fault
    happens.  ``before``: the fault happens and the K-th command never
    runs (the wrapper exits 143).  "after K" and "before K+1" leave Docker
    in the same state except for concurrent calls; the tests use
    ``after``.
``DOCKEROO_FAULT_ARGV``
    instead of K (``DOCKEROO_FAULT_AT`` empty): words (space-separated)
    that the call's argv holds in this order, e.g. ``network rm``: the
    first such call triggers the fault (for runs whose number of calls
    varies: polls).
``DOCKEROO_FAULT_SIGNAL``
    ``KILL`` (default), ``TERM`` or ``none``: sent to the buildout
    process, found by walking up from the wrapper's parent to the first
    process whose argv names ``buildout`` (``DOCKEROO_FAULT_PID`` overrides).
``DOCKEROO_FAULT_CONTAINER``
    a container to ``docker kill`` at the fault (before the signal).

Every call that is not the K-th ``exec``s the real client, so stdin and
stdout stream untouched (``docker cp -`` pipes, ``docker import -``).
The K-th in ``after`` mode runs it as a child with the same file
descriptors (nothing captured) and exits with its status.
"""

import fcntl
import json
import os
import signal
import sys

DIR = os.environ["DOCKEROO_FAULT_DIR"]
REAL = os.environ["DOCKEROO_FAULT_REAL"]


def next_number():
    fd = os.open(os.path.join(DIR, "count"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 64).decode().strip()
        number = int(text or "0") + 1
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(number).encode())
        record = json.dumps({"n": number, "argv": sys.argv[1:]}) + "\n"
        log = os.open(os.path.join(DIR, "calls.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                      0o600)
        os.write(log, record.encode())
        os.close(log)
    finally:
        os.close(fd)
    return number


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
    except OSError:
        return []


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def buildout_pid():
    if os.environ.get("DOCKEROO_FAULT_PID"):
        return int(os.environ["DOCKEROO_FAULT_PID"])
    pid = os.getppid()
    while pid > 1:
        if any("buildout" in os.path.basename(arg) for arg in cmdline(pid)[:2]):
            return pid
        pid = parent_of(pid)
    return 0


def run_real(args):
    """Run the real client with our file descriptors; its exit status."""
    child = os.fork()
    if child == 0:
        try:
            os.execv(REAL, [REAL] + args)
        finally:
            os._exit(127)
    _pid, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else (
        status >> 8)


def fault():
    container = os.environ.get("DOCKEROO_FAULT_CONTAINER")
    if container:
        null = os.open(os.devnull, os.O_RDWR)
        saved = [os.dup(1), os.dup(2)]
        os.dup2(null, 1)
        os.dup2(null, 2)
        try:
            run_real(["kill", container])
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    name = os.environ.get("DOCKEROO_FAULT_SIGNAL", "KILL").upper()
    if name != "NONE":
        pid = buildout_pid()
        if pid:
            with open(os.path.join(DIR, "fault.json"), "w") as handle:
                json.dump({"pid": pid, "signal": name, "argv": sys.argv[1:]}, handle)
            os.kill(pid, getattr(signal, "SIG" + name))


def holds(args, words):
    """Whether ARGS holds WORDS in this order (not necessarily together)."""
    rest = iter(args)
    return all(any(arg == word for arg in rest) for word in words)


def main():
    args = sys.argv[1:]
    number = next_number()
    at = os.environ.get("DOCKEROO_FAULT_AT", "")
    words = os.environ.get("DOCKEROO_FAULT_ARGV", "").split()
    if not (at and int(at) == number) and not (not at and words and holds(args, words)):
        os.execv(REAL, [REAL] + args)
    if os.environ.get("DOCKEROO_FAULT_WHEN", "after") == "before":
        fault()
        sys.exit(143)
    code = run_real(args)
    fault()
    sys.exit(code)


main()
