"""Fixtures shared by all dockeroo tests (their helpers live in tests/support).

Integration tests run real buildouts against the real Docker engine.
Every object a test creates is named with the test's unique ``prefix``
and removed in teardown; objects not named so are never touched.
"""

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import uuid

import pytest

import support.buildout
from support.busybox import BUSYBOX, busybox_rootfs_tar
from support.buildout import Buildout, make_docker_recorder, real_docker
from support.engine import docker, engine_kind, inspect, remove_with_prefix
from support.registry import Registry, free_port
from dockeroo.model.ownership import owner_id


def pytest_configure(config):
    # a shell without job control starts background commands with SIGINT
    # ignored, and an ignored signal stays ignored in every child: the tests
    # of Ctrl-C (and the buildouts they start) need the default disposition
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers", "podman_limit(feature, why): the test needs what Podman 4.3 cannot do "
        "(FEATURE: a key of dockeroo.engine.capabilities.PODMAN_LIMITS, or WHY); skipped on Podman")
    config.addinivalue_line("markers", "slow: exhaustive runs (fault sweeps), only with -m slow")


def pytest_collection_modifyitems(config, items):
    """Skip the ``slow`` tests unless a mark expression is given (``-m slow``), and
    the tests marked ``podman_limit`` when the engine is Podman, saying why."""
    if not config.getoption("markexpr", ""):
        slow = pytest.mark.skip(reason="slow: run with -m slow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(slow)
    marked = [(item, item.get_closest_marker("podman_limit")) for item in items]
    marked = [(item, mark) for item, mark in marked if mark is not None]
    if not marked or engine_kind() != "podman":
        return
    from dockeroo.engine.capabilities import PODMAN_LIMITS
    for item, mark in marked:
        feature = mark.args[0]
        why = mark.args[1] if len(mark.args) > 1 else PODMAN_LIMITS[feature]
        item.add_marker(pytest.mark.skip(reason="Podman 4.3 limit (%s): %s" % (feature, why)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With DOCKEROO_TEST_CPU=FILE, append each test's CPU seconds (this process,
    the children it waited for, the buildouts forked for it: buildouts, docker
    CLIs) and wall seconds to
    FILE, for .ci/run to list the lanes' costliest tests (engines not counted)."""
    path = os.environ.get("DOCKEROO_TEST_CPU")
    if not path:
        yield
        return

    def cpu():
        return support.buildout.FORKED_CPU + sum(
            r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                              resource.getrusage(resource.RUSAGE_CHILDREN)))
    cpu_start, wall_start = cpu(), time.monotonic()
    yield
    with open(path, "a") as handle:
        handle.write("%.1f\t%.1f\t%s\n" % (cpu() - cpu_start, time.monotonic() - wall_start,
                                           item.nodeid))


@pytest.fixture(scope="session")
def engine():
    """The Docker engine must answer (``.ci/run`` starts it)."""
    proc = subprocess.run(["docker", "info", "--format", "{{json .ServerVersion}}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("no Docker engine answers: start dockerd (see .ci/run): " + proc.stderr)
    return json.loads(proc.stdout)


@pytest.fixture
def prefix(engine):
    """A unique name prefix for the objects of one test; cleaned afterwards."""
    value = "dkt%s" % uuid.uuid4().hex[:8]
    yield value
    remove_with_prefix(value)


@pytest.fixture(scope="session")
def base_image(engine, tmp_path_factory):
    """A busybox image imported from Debian's busybox-static; removed at the end."""
    if not os.path.exists(BUSYBOX):
        pytest.fail("busybox-static is needed (apt-get install busybox-static)")
    with open(BUSYBOX, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:12]
    ref = "dockeroo-test/busybox:%s" % digest
    if inspect("image", ref) is None:
        path = str(tmp_path_factory.mktemp("rootfs") / "rootfs.tar")
        busybox_rootfs_tar(path)
        docker("import", "--change", "CMD [\"/bin/sh\"]", path, ref)
    return ref


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's docker-registry with htpasswd auth on 127.0.0.1."""
    exe = shutil.which("docker-registry")
    if not exe or not shutil.which("htpasswd"):
        pytest.fail("docker-registry and apache2-utils are needed (see .ci/run)")
    directory = str(tmp_path_factory.mktemp("registry"))
    username, password = "dockeroo", "s3cret-%s" % uuid.uuid4().hex[:10]
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True,
                              text=True, check=True).stdout
    with open(os.path.join(directory, "htpasswd"), "w") as handle:
        handle.write(htpasswd)
    port = free_port()
    config = os.path.join(directory, "config.yml")
    with open(config, "w") as handle:
        handle.write(textwrap.dedent("""\
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: %(dir)s/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:%(port)d
            auth:
              htpasswd:
                realm: dockeroo-test
                path: %(dir)s/htpasswd
            """ % {"dir": directory, "port": port}))
    log = open(os.path.join(directory, "registry.log"), "w")
    proc = subprocess.Popen([exe, "serve", config], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start")
    # Podman's API logs in over plain HTTP only to localhost:PORT (.ci/podman lists
    # localhost and 127.0.0.1 as insecure registries for its pushes and pulls)
    host = "localhost" if engine_kind() == "podman" else "127.0.0.1"
    yield Registry("%s:%d" % (host, port), username, password, directory)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def buildout(prefix, tmp_path):
    """A fresh buildout directory; uninstalls all its parts afterwards, and
    fails the test if that left an untagged image with the buildout's label,
    or a container, volume or network of a part no configuration kept."""
    bo = Buildout(str(tmp_path / "buildout"), prefix)
    yield bo
    if os.path.exists(bo.path(".installed.cfg")):
        bo.uninstall_all()
    # an untagged image is named by no prefix: it is found by this buildout's label
    label = "label=io.dockeroo.buildout=" + owner_id(bo.directory)
    left = docker("image", "ls", "--quiet", "--no-trunc", "--filter", "dangling=true",
                  "--filter", label).split()
    for image in left:
        subprocess.run(["docker", "image", "rm", "--force", image], capture_output=True)
    assert not left, "untagged images of this buildout left behind: %s" % left
    # what the parts made goes with their uninstall, but for the parts a
    # configuration said keep (the prefix's cleanup removes those)
    if bo.kept is not None:
        stray = [(kind, name, part) for kind, name, part in _labelled(label)
                 if part not in bo.kept]
        assert not stray, "objects of this buildout's parts left after their uninstall: %s" % (
            stray,)


def _labelled(label):
    """(kind, name, part) of the containers, volumes and networks with LABEL."""
    found = []
    for kind, listing in (("container", ["ps", "--all"]), ("volume", ["volume", "ls"]),
                          ("network", ["network", "ls"])):
        out = docker(*listing, "--filter", label, "--format",
                     '{{.Name%s}}\t{{.Label "io.dockeroo.part"}}'
                     % ("s" if kind == "container" else ""))
        found += [(kind,) + tuple(line.split("\t", 1)) for line in out.splitlines()
                  if "\t" in line]
    return found


@pytest.fixture
def docker_recorder(tmp_path):
    real = real_docker()
    assert real, "no docker client on PATH"
    return make_docker_recorder(str(tmp_path / "docker-recorder"), real)


# -- the real Portage builder of the Gentoo tests (tests/gentoo/) ------------------
from gentoo.fixtures import portage_builder  # noqa: E402,F401
