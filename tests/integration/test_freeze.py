"""freeze: the no-op init shipped for x86_64 and aarch64, run in real containers."""

import os
import shutil
import signal
import struct
import subprocess
import time

import pytest

from support.engine import docker, inspect

from dockeroo.runtime import freeze
from dockeroo.engine.docker import DockerEngine

EM_X86_64, EM_AARCH64 = 62, 183


def elf_machine(path):
    with open(path, "rb") as handle:
        head = handle.read(20)
    assert head[:4] == b"\x7fELF", "%s is not an ELF file" % path
    assert head[4] == 2 and head[5] == 1, "%s is not 64-bit little-endian" % path
    assert struct.unpack("<H", head[16:18])[0] == 2, "%s is not a static executable (ET_EXEC)" % path
    return struct.unpack("<H", head[18:20])[0]


def test_binaries_are_small_static_elf_for_their_architecture():
    assert freeze.available() == ["aarch64", "x86_64"]
    for arch, machine in (("amd64", EM_X86_64), ("x86_64", EM_X86_64),
                          ("arm64", EM_AARCH64), ("aarch64", EM_AARCH64),
                          ("linux/arm64", EM_AARCH64)):
        path = freeze.binary_path(arch)
        assert os.path.getsize(path) < 16 * 1024
        assert os.access(path, os.X_OK)
        assert elf_machine(path) == machine


def test_unknown_architecture_says_what_exists():
    with pytest.raises(freeze.FreezeUnavailable) as info:
        freeze.binary_path("riscv64")
    assert isinstance(info.value, ValueError)
    assert "riscv64" in str(info.value) and "aarch64, x86_64" in str(info.value)


@pytest.fixture
def frozen(base_image, prefix):
    """A busybox container whose command is /bin/freeze, running."""
    name = prefix + "-frozen"
    docker("create", "--name", name, base_image, "/bin/freeze")
    freeze.install(DockerEngine(), name)
    docker("start", name)
    return name


def test_install_into_created_container(frozen):
    out = docker("exec", frozen, "stat", "-c", "%a %u %g %s", "/bin/freeze")
    mode, uid, gid, size = out.split()
    assert (mode, uid, gid) == ("755", "0", "0")
    assert int(size) == os.path.getsize(freeze.binary_path("amd64"))
    assert docker("exec", frozen, "cat", "/proc/1/cmdline").rstrip("\0") == "/bin/freeze"


def test_stop_is_immediate_and_exits_zero(frozen):
    start = time.monotonic()
    # SIGTERM; docker would SIGKILL after 10 s (Podman at once without --time)
    docker("stop", "--time", "10", frozen)
    assert time.monotonic() - start < 2
    state = inspect("container", frozen)["State"]
    assert state["ExitCode"] == 0 and not state["OOMKilled"]


@pytest.mark.parametrize("sig", ["INT", "QUIT", "HUP"])
def test_other_signals_exit_zero(frozen, sig):
    docker("kill", "--signal", sig, frozen)
    for _ in range(50):
        if not inspect("container", frozen)["State"]["Running"]:
            break
        time.sleep(0.1)
    assert inspect("container", frozen)["State"]["ExitCode"] == 0


def zombies(container):
    """Zombie processes in CONTAINER (state Z in /proc/PID/stat)."""
    out = docker("exec", container, "sh", "-c",
                 "for f in /proc/[0-9]*/stat; do cat $f 2>/dev/null; echo; done")
    found = []
    for line in out.splitlines():
        if ")" in line and line.rsplit(")", 1)[1].split()[0] == "Z":
            found.append(line)
    return found


def test_orphans_are_reaped(frozen):
    for _ in range(4):
        docker("exec", frozen, "sh", "-c", "sleep 0.1 & sleep 0.1 & exit 0")
    time.sleep(0.8)
    assert zombies(frozen) == []
    assert inspect("container", frozen)["State"]["Running"]


def test_without_freeze_orphans_stay_zombies(base_image, prefix):
    """The check above can see zombies: a PID 1 that does not reap leaves them."""
    name = prefix + "-noreap"
    docker("run", "-d", "--name", name, base_image, "sleep", "600")
    docker("exec", name, "sh", "-c", "sleep 0.1 & exit 0")
    time.sleep(0.8)
    assert len(zombies(name)) == 1


def test_committed_image_from_scratch(prefix):
    """An image holding nothing but freeze runs, and stops at once."""
    image = prefix + "-scratch:1"
    subprocess.run(["docker", "import", "-", image], input=b"\0" * 10240,  # an empty tar
                   capture_output=True, check=True)
    name = prefix + "-scratch"
    docker("create", "--name", name, image, "/sbin/freeze")
    assert freeze.install(DockerEngine(), name, arch="x86_64", path="/sbin/freeze") == "/sbin/freeze"
    docker("start", name)
    time.sleep(0.2)
    assert inspect("container", name)["State"]["Running"]
    start = time.monotonic()
    docker("stop", "--time", "10", name)
    assert time.monotonic() - start < 2
    assert inspect("container", name)["State"]["ExitCode"] == 0


@pytest.mark.skipif(not shutil.which("qemu-aarch64-static"),
                    reason="qemu-user-static is not installed")
@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_binary_waits_and_exits_zero_on_sigterm(arch):
    argv = [freeze.binary_path(arch)]
    if arch == "aarch64" and os.uname().machine != "aarch64":
        argv.insert(0, shutil.which("qemu-aarch64-static"))
    proc = subprocess.Popen(argv)
    time.sleep(0.5)
    assert proc.poll() is None, "freeze must wait for a signal"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0


@pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("aarch64-linux-gnu-gcc")),
                    reason="the compilers build.sh uses are not installed")
def test_build_reproduces_the_committed_binaries(tmp_path):
    here = os.path.dirname(freeze.binary_path("x86_64"))
    for name in ("freeze.c", "build.sh"):
        shutil.copy2(os.path.join(here, name), tmp_path / name)
    subprocess.run(["sh", str(tmp_path / "build.sh")], check=True, capture_output=True)
    for arch in ("x86_64", "aarch64"):
        with open(tmp_path / ("freeze-" + arch), "rb") as new, \
                open(freeze.binary_path(arch), "rb") as old:
            assert new.read() == old.read(), "freeze-%s is stale: run build.sh" % arch
