"""The engine's process supervisor: the plan guard at every spawn, deadlines that kill.

A fake ``docker`` (a shell script) stands in for the client: no engine needed.
"""

import stat
import time

import pytest

from dockeroo.base import mode
from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.errors import Timeout
from dockeroo.engine.process import Supervisor


def fake_docker(tmp_path, body):
    """A ``docker`` that logs its arguments to ``ran`` and then runs BODY."""
    ran = tmp_path / "ran"
    script = tmp_path / "docker"
    script.write_text('#!/bin/sh\necho "$*" >> %s\n%s\n' % (ran, body))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return DockerEngine(docker=str(script)), ran


def ran(log):
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def planning():
    saved = mode.PLANNING
    mode.PLANNING = True
    try:
        yield
    finally:
        mode.PLANNING = saved


@pytest.mark.parametrize("call", [
    lambda e: e.run(["rm", "--force", "c"]),
    lambda e: e.popen(["rm", "--force", "c"], Supervisor(5)),
    lambda e: e.pipe(["export", "c"], ["import", "-"]),
    lambda e: e.feed(["cp", "-", "c:/"], lambda out: out.write(b"")),
    lambda e: e.reader(["cp", "-", "c:/x"], lambda src: src.read()),
], ids=["run", "popen", "pipe", "feed", "reader"])
def test_plan_mode_refuses_a_mutating_command_at_every_spawn(tmp_path, planning, call):
    engine, log = fake_docker(tmp_path, "exit 0")
    with pytest.raises(mode.PlanViolation):
        call(engine)
    assert ran(log) == []  # refused before any process started


def test_plan_mode_lets_the_batched_inspect_run(tmp_path, planning):
    engine, log = fake_docker(tmp_path, "echo '[]'")
    assert engine.inspect("volume", "v") is None
    assert ran(log) == ["volume inspect -- v"]


def test_plan_mode_guards_the_program_of_docker_machine(tmp_path, planning):
    engine, log = fake_docker(tmp_path, "exit 0")
    with pytest.raises(mode.PlanViolation):
        engine.run(["ssh", "m", "--", "true"], program=engine.docker)
    engine.run(["ip", "m"], program=engine.docker)  # reads only
    assert ran(log) == ["ip m"]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def pid_of(tmp_path):
    return int((tmp_path / "pid").read_text())


SLEEPER = 'echo $$ > "$(dirname "$0")/pid"\nexec sleep 30'


@pytest.mark.parametrize("call", [
    lambda e: e.run(["version"], timeout=1),
    lambda e: e.run(["build", "."], timeout=1, stream=__import__("logging").getLogger("t")),
    lambda e: e.reader(["cp", "c:/x", "-"], lambda src: src.read(), timeout=1),
    lambda e: e.feed(["cp", "-", "c:/"], lambda out: out.write(b"x"), timeout=1),
    lambda e: e.with_timeout(1).inspect("container", "c"),
], ids=["run", "streamed", "reader", "feed", "inspect"])
def test_a_timeout_kills_the_process_and_says_so(tmp_path, call):
    engine, _log = fake_docker(tmp_path, SLEEPER)
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        call(engine)
    assert time.monotonic() - started < 10
    assert "timed out after 1s and was killed" in str(info.value)
    assert not alive(pid_of(tmp_path))


def test_leaving_the_supervisor_kills_and_reaps_what_runs(tmp_path):
    engine, _log = fake_docker(tmp_path, SLEEPER)
    with pytest.raises(KeyboardInterrupt):
        with Supervisor(60) as group:
            proc = engine.popen(["cp", "c:/x", "-"], group, stdout=-1)
            while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
                time.sleep(0.02)
            raise KeyboardInterrupt
    assert proc.returncode is not None  # reaped
    assert not alive(pid_of(tmp_path))
    assert not group.timed_out


def test_a_process_that_ends_in_time_is_not_a_timeout(tmp_path):
    engine, _log = fake_docker(tmp_path, "echo out; echo err >&2; exit 3")
    result = engine.run(["version"], check=False, timeout=5)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_a_reader_hands_over_the_output(tmp_path):
    engine, _log = fake_docker(tmp_path, "echo out")
    assert engine.reader(["cp", "c:/x", "-"], lambda src: src.read(), timeout=5) == b"out\n"
