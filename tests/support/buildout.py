"""A test's buildout directory, and the recorder of the docker commands it runs."""

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

#: the tests/ folder
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDOUT = os.path.join(os.path.dirname(sys.executable), "buildout")


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
        os.makedirs(directory, exist_ok=True)

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
        environ = dict(os.environ)
        environ.update(env or {})
        proc = subprocess.run([BUILDOUT, "-N", *args] if "-n" not in args else [BUILDOUT, *args],
                              cwd=self.directory, capture_output=True, text=True, env=environ,
                              timeout=timeout)
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

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def commands(self, command=None):
        """Recorded argv lists, optionally only those of COMMAND (e.g. "push")."""
        return [c["argv"] for c in self.calls() if command is None or c["argv"][:1] == [command]]

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
            fd = os.open(%(log)r, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, (json.dumps(record) + "\\n").encode())
            os.close(fd)
            os.execv(REAL, [REAL] + args)
            """) % {"python": sys.executable, "real": real, "log": recorder.log})
    os.chmod(wrapper, 0o755)
    return recorder
