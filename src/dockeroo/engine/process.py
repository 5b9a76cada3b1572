"""Processes of the docker CLI: results, timeouts, default time limits."""

import json
import re
import subprocess
import time
from dataclasses import dataclass


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

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    def json_lines(self):
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def tail(self, lines=20):
        """The last LINES lines of stdout, then of stderr, without colour codes."""
        parts = []
        for text in (self.stdout, self.stderr):
            kept = [l.rstrip() for l in ANSI_ESCAPE.sub("", text or "").splitlines() if l.strip()]
            parts.extend(kept[-lines:])
        return "\n".join(parts)


def _deadline_wait(proc, timeout):
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    except BaseException:  # Ctrl-C, SIGTERM: leave no orphaned docker client running
        proc.kill()
        proc.wait()
        raise


def _write_all(pipe, data):
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the process stopped reading: its exit status tells why
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def printed_id(stdout):
    """The image id ``docker import``/``commit`` printed (Podman prints ``ID: ID``)."""
    words = (stdout or "").split()
    return words[-1] if words else ""


def _text(data):
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def wait_until(predicate, timeout, interval=0.2):
    """Poll ``predicate`` until it returns a true value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
