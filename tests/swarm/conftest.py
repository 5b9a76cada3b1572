"""Fixtures of the swarm tests: a PRIVATE single-node swarm (tests/swarm/engine.sh).

Swarm mode changes a whole engine (networks, the ingress network, the
gateway bridge): it never runs on the engine the other tests use.  The
session fixture ``swarm_engine`` starts a second dockerd in its own network
namespace, makes it a swarm manager (address pools in 172.30.0.0/16,
docker_gwbridge first, the ingress subnet checked) and removes all of it
afterwards; recipes reach it through ``engine-url`` as they would reach a
remote manager.  Set DKSWARM_KEEP=1 to leave the engine running between
sessions (it is then reused).
"""

import json
import os
import re
import subprocess
import textwrap
import time
import uuid

import pytest

from support.buildout import Buildout
from support.busybox import busybox_rootfs_tar

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINE_SH = os.path.join(HERE, "engine.sh")
INSTANCE = "dkswarm"
URL = "unix:///run/dockeroo-%s/docker.sock" % INSTANCE


def pytest_configure(config):
    config.addinivalue_line("markers", "swarm: needs the private swarm engine (tests/swarm)")


class Swarm:
    """The docker CLI against one private engine."""

    def __init__(self, url):
        self.url = url
        self.env = dict(os.environ, DOCKER_HOST=url)
        for key in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            self.env.pop(key, None)

    def docker(self, *args, check=True, input=None, timeout=120):
        proc = subprocess.run(["docker", *args], input=input, capture_output=True, text=True,
                              env=self.env, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError("docker %s failed: %s" % (" ".join(args), proc.stderr))
        return proc.stdout

    def inspect(self, kind, name):
        proc = subprocess.run(["docker", kind, "inspect", name], capture_output=True, text=True,
                              env=self.env, timeout=60)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)[0]

    def names(self, kind, prefix):
        listing = {"service": ["service", "ls"], "secret": ["secret", "ls"],
                   "config": ["config", "ls"], "network": ["network", "ls"],
                   "container": ["ps", "-a"], "volume": ["volume", "ls"]}[kind]
        out = self.docker(*listing, "--format", "{{.Name}}" if kind != "container" else "{{.Names}}")
        return sorted(n for n in out.split() if n.startswith(prefix))

    def tasks(self, service, state="running"):
        """Inspect JSON of the tasks of SERVICE desired in STATE (None: all)."""
        args = ["service", "ps", "--quiet", "--no-trunc", service]
        if state:
            args[3:3] = ["--filter", "desired-state=" + state]
        ids = self.docker(*args).split()
        return json.loads(self.docker("inspect", "--type", "task", *ids)) if ids else []

    def task_containers(self, service):
        """Ids of the running containers of SERVICE."""
        return self.docker("ps", "--quiet", "--filter",
                           "label=com.docker.swarm.service.name=" + service).split()

    def exec(self, container, *argv):
        return self.docker("exec", container, *argv)

    def wait_running(self, service, count, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            running = [t for t in self.tasks(service) if t["Status"]["State"] == "running"]
            if len(running) == count and len(self.task_containers(service)) == count:
                return running
            if time.monotonic() > deadline:
                raise AssertionError("service %s: %d tasks running, wanted %d"
                                     % (service, len(running), count))
            time.sleep(0.5)

    def remove_prefixed(self, prefix):
        services = self.names("service", prefix)
        if services:
            self.docker("service", "rm", *services, check=False)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(
                    self.task_containers(s) for s in services):
                time.sleep(0.5)
        containers = self.names("container", prefix)
        if containers:
            self.docker("rm", "-f", "-v", *containers, check=False)
        for kind in ("secret", "config", "network", "volume"):
            names = self.names(kind, prefix)
            if names:
                self.docker(kind, "rm", *names, check=False)


def engine_sh(*args):
    proc = subprocess.run(["bash", ENGINE_SH, *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail("tests/swarm/engine.sh %s failed: %s%s" % (" ".join(args), proc.stdout,
                                                              proc.stderr))
    return proc.stdout


@pytest.fixture(scope="session")
def swarm_engine():
    """The private engine, a single-node swarm manager, for the whole session."""
    if os.geteuid() != 0:
        pytest.fail("the swarm tests start a private dockerd and need root")
    engine_sh("start", INSTANCE)
    swarm = Swarm(URL)
    ingress = swarm.inspect("network", "ingress")
    subnets = [c["Subnet"] for c in ingress["IPAM"]["Config"]]
    assert all(s.startswith("172.30.") for s in subnets), subnets
    yield swarm
    if os.environ.get("DKSWARM_KEEP") != "1":
        engine_sh("stop", INSTANCE)


@pytest.fixture(scope="session")
def swarm_image(swarm_engine, tmp_path_factory):
    """The busybox base image of tests/conftest.py, imported into the private engine."""
    ref = "dockeroo-test/busybox:swarm"
    if swarm_engine.inspect("image", ref) is None:
        path = str(tmp_path_factory.mktemp("swarm-rootfs") / "rootfs.tar")
        busybox_rootfs_tar(path)
        swarm_engine.docker("import", "--change", 'CMD ["/bin/sh"]', path, ref)
    return ref


@pytest.fixture
def sprefix(swarm_engine):
    """A unique name prefix; everything so named is removed from the private engine."""
    value = "dks%s" % uuid.uuid4().hex[:8]
    yield value
    swarm_engine.remove_prefixed(value)


class SwarmBuildout(Buildout):
    """A buildout whose dockeroo parts all target the private engine (engine-url)."""

    def __init__(self, directory, prefix, url):
        super().__init__(directory, prefix)
        self.url = url

    def configure(self, parts_text, parts=None):
        text = re.sub(r"(?m)^(recipe\s*=\s*dockeroo:.*)$", r"\1\nengine-url = %s" % self.url,
                      textwrap.dedent(parts_text))
        super().configure(text, parts)


@pytest.fixture
def sbuildout(sprefix, swarm_engine, tmp_path):
    bo = SwarmBuildout(str(tmp_path / "buildout"), sprefix, swarm_engine.url)
    yield bo
    if os.path.exists(bo.path(".installed.cfg")):
        bo.uninstall_all()
