"""Private scratch directories of one process (dockeroo.base.scratch): what a
killed process leaves (a throw-away DOCKER_CONFIG with credentials) is swept."""

import os
import signal
import subprocess
import sys

import pytest

from dockeroo.base import scratch


@pytest.fixture
def tmpdir_(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(scratch.tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return tmp_path


def test_owned_directory_is_private_and_named_after_its_process(tmpdir_):
    path = scratch.owned_directory("login")
    folder = os.path.dirname(path)
    assert folder == str(tmpdir_ / ("dockeroo-login-%d" % os.getuid()))
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    pid, started, _ = os.path.basename(path).split("-", 2)
    assert int(pid) == os.getpid() and int(started) == scratch.start_time(os.getpid())
    scratch.sweep("login")
    assert os.path.isdir(path)  # this process still runs


def test_the_directory_of_a_killed_process_is_swept(tmpdir_):
    child = subprocess.run(
        [sys.executable, "-c", "import os, signal; from dockeroo.base import scratch; "
         "p = scratch.owned_directory('login'); "
         "open(os.path.join(p, 'config.json'), 'w').write('{\"auths\": {}}'); print(p, flush=True); "
         "os.kill(os.getpid(), signal.SIGKILL)"],
        capture_output=True, text=True, env=dict(os.environ, TMPDIR=str(tmpdir_)))
    assert child.returncode == -signal.SIGKILL
    left = child.stdout.strip()
    assert os.path.exists(os.path.join(left, "config.json"))
    mine = scratch.owned_directory("login")  # sweeps first
    assert not os.path.exists(left)
    assert os.listdir(os.path.dirname(mine)) == [os.path.basename(mine)]


def test_a_reused_pid_does_not_keep_a_directory(tmpdir_):
    folder = scratch.private_folder("login")
    stale = os.path.join(folder, "%d-1-abc" % os.getpid())  # this pid, another start time
    os.mkdir(stale)
    other = os.path.join(folder, "notapid")  # not ours to judge
    os.mkdir(other)
    scratch.sweep("login")
    assert not os.path.exists(stale) and os.path.exists(other)


def test_a_folder_others_can_read_is_refused(tmpdir_):
    folder = scratch.private_folder("login")
    os.chmod(folder, 0o755)
    with pytest.raises(scratch.NotPrivate):
        scratch.owned_directory("login")
