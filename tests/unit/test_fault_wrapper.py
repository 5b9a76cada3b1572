"""The fault-injection docker wrapper (tests/support/docker_fault.py), with a fake docker."""

import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.faults import FaultDocker, changes_docker

#: a fake buildout: runs ``docker N`` for N = 1..COUNT in order, then prints "done"
PARENT = textwrap.dedent("""\
    import subprocess, sys
    for n in range(1, int(sys.argv[1]) + 1):
        subprocess.run(["docker", str(n)])
    print("done", flush=True)
    """)


@pytest.fixture
def fake(tmp_path):
    real = tmp_path / "real-docker"
    ran = tmp_path / "ran"
    real.write_text("#!/bin/sh\necho \"$*\" >> %s\nexec cat\n" % ran)
    real.chmod(0o755)
    parent = tmp_path / "fake-buildout"
    parent.write_text(PARENT)
    wrapper = FaultDocker(str(tmp_path / "fault"), real=str(real))
    return wrapper, parent, ran


def run_parent(wrapper, parent, count, **fault):
    env = dict(os.environ, **wrapper.env(**fault))
    return subprocess.run([sys.executable, str(parent), str(count)], env=env, input="",
                          capture_output=True, text=True, timeout=60)


def test_counts_and_streams(fake):
    wrapper, _parent, ran = fake
    env = dict(os.environ, **wrapper.env())
    data = os.urandom(300 * 1024)  # more than a pipe holds: exec'd, not captured
    out = subprocess.run(["docker", "cp", "-", "x:/"], input=data, env=env, capture_output=True,
                         check=True).stdout
    assert out == data
    assert wrapper.calls() == [["cp", "-", "x:/"]]
    assert ran.read_text() == "cp - x:/\n"


def test_concurrent_calls_get_distinct_numbers(fake):
    wrapper, _parent, _ran = fake
    env = dict(os.environ, **wrapper.env())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: subprocess.run(["docker", "ps", str(i)], env=env, input=b"",
                                               capture_output=True, check=True), range(24)))
    path = os.path.join(wrapper.directory, "calls.jsonl")
    numbers = sorted(int(line.split('"n": ')[1].split(",")[0]) for line in open(path))
    assert numbers == list(range(1, 25))


@pytest.mark.parametrize("name, code", [("KILL", -signal.SIGKILL), ("TERM", -signal.SIGTERM)])
def test_kills_the_buildout_after_the_kth_call(fake, name, code):
    wrapper, parent, ran = fake
    result = run_parent(wrapper, parent, 5, at=3, signal=name)
    assert result.returncode == code
    assert "done" not in result.stdout
    assert ran.read_text().split() == ["1", "2", "3"]  # the 3rd ran to its end
    assert wrapper.fault()["signal"] == name


def test_before_mode_does_not_run_the_kth_call(fake):
    wrapper, parent, ran = fake
    result = run_parent(wrapper, parent, 5, at=3, when="before")
    assert result.returncode == -signal.SIGKILL
    assert ran.read_text().split() == ["1", "2"]


def test_without_a_fault_point_nothing_is_killed(fake):
    wrapper, parent, ran = fake
    result = run_parent(wrapper, parent, 4)
    assert result.returncode == 0 and "done" in result.stdout
    assert ran.read_text().split() == ["1", "2", "3", "4"]
    assert wrapper.fault() is None


def test_container_kill_without_signal(fake):
    wrapper, parent, ran = fake
    result = run_parent(wrapper, parent, 3, at=2, signal="none", container="c1")
    assert result.returncode == 0
    assert ran.read_text().split("\n")[:4] == ["1", "2", "kill c1", "3"]


@pytest.mark.parametrize("argv, changes", [
    (["container", "inspect", "--", "a"], False), (["image", "ls"], False), (["ps", "-a"], False),
    (["cp", "a:/x", "-"], False), (["cp", "-", "a:/"], True), (["create", "busybox"], True),
    (["image", "rm", "x"], True), (["volume", "create", "v"], True), (["exec", "a", "true"], True),
    (["network", "connect", "n", "a"], True), (["start", "a"], True), (["login", "r"], False)])
def test_changes_docker(argv, changes):
    assert changes_docker(argv) is changes
