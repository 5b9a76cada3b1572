"""Fixtures of the swarm tests: a PRIVATE single-node swarm (tests/swarm/engine.sh).

Swarm mode changes a whole engine (networks, the ingress network, the
gateway bridge): it never runs on the engine the other tests use.  The
session fixture ``swarm_engine`` starts a second dockerd in its own network
namespace, makes it a swarm manager (address pools in 172.30.0.0/16,
docker_gwbridge first, the ingress subnet checked) and removes all of it
afterwards; recipes reach it through ``engine-url`` as they would reach a
remote manager.  Set DKSWARM_KEEP=1 to leave the engine running between
sessions (it is then reused).

Several pytest processes may share the engine at the same time (the CI lane,
tests/swarm/lane.sh, starts it once and runs DKSWARM_SHARD=I/N processes over
it, each with DKSWARM_KEEP=1): every test names its objects with its own
prefix (``sprefix``), and takes the overlay subnets and published ports it
makes from ``sreserve``, which never hands one to two tests at once.
"""

import fcntl
import json
import os
import random
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
RUN = "/run/dockeroo-%s" % INSTANCE
URL = "unix://%s/docker.sock" % RUN


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


#: (part of a test id, expected wall seconds) for DKSWARM_SHARD, first match;
#: measured in the swarm lane (tests/swarm/lane.sh, three parts), rounded
WEIGHTS = [
    ("test_plan_swarm.py::test_service_and_secret_plans_match_the_run", 80),
    ("test_changed_options_update_in_place_and_hand_updates_are_repaired", 70),
    ("test_rebuilt_image_rolls_out_and_a_failing_one_rolls_back", 60),
    ("test_stack_create_rerun_secret_change_scale_uninstall", 50),
    ("[service-no-task-rename-part-network]", 15),
    ("[service-rename-part-network-foreign-service-no-task]", 25),
    ("test_cross_part_swarm[", 42),
    ("test_handover_killed_then_a_plain_run_converges[", 35),
    ("test_multinode.py", 35),
    ("test_list_options_change_in_place", 35),
    ("test_every_option_reaches_the_spec", 25),
    ("test_a_new_service_that_does_not_converge_is_removed", 10),
]


def pytest_collection_modifyitems(config, items):
    """DKSWARM_SHARD=I/N (1 <= I <= N): run only the I-th of N disjoint parts of
    the collected tests; the N parts together are all of them.  The tests are
    dealt longest first (WEIGHTS: expected seconds; 1 for the others, ties in
    collection order), each to the part with the least expected time so far:
    the same split every time.  Each part runs its tests in collection order."""
    shard = os.environ.get("DKSWARM_SHARD")
    if not shard:
        return
    index, count = (int(x) for x in shard.split("/"))
    assert 1 <= index <= count, shard

    def weight(item):
        return next((w for key, w in WEIGHTS if key in item.nodeid), 1.0)

    load, mine = [0.0] * count, set()
    for position in sorted(range(len(items)), key=lambda i: (-weight(items[i]), i)):
        part = min(range(count), key=lambda p: (load[p], p))
        load[part] += weight(items[position])
        if part == index - 1:
            mine.add(position)
    config.hook.pytest_deselected(items=[t for i, t in enumerate(items) if i not in mine])
    items[:] = [t for i, t in enumerate(items) if i in mine]


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
    """The busybox base image of tests/conftest.py, imported into the private engine
    (once: the pytest processes sharing the engine take turns to look)."""
    ref = "dockeroo-test/busybox:swarm"
    with open(os.path.join(RUN, "image.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if swarm_engine.inspect("image", ref) is None:
            path = str(tmp_path_factory.mktemp("swarm-rootfs") / "rootfs.tar")
            busybox_rootfs_tar(path)
            swarm_engine.docker("import", "--change", 'CMD ["/bin/sh"]', path, ref)
    return ref


class Reservations:
    """Overlay subnets and published ports one test holds on the private engine,
    apart from those of the tests running at the same time in other pytest
    processes: a file per value under RUN/reserved holding the pid of its
    process, made under a lock (a file whose process has ended holds nothing)."""

    DIR = os.path.join(RUN, "reserved")

    def __init__(self, swarm):
        self.swarm = swarm
        self.held = []
        os.makedirs(self.DIR, exist_ok=True)

    def take(self, kind, candidates, used=()):
        """One of CANDIDATES (the first from a random one on, round) that no test
        holds and that is not in USED."""
        candidates = list(candidates)
        start = random.randrange(len(candidates))
        with open(os.path.join(self.DIR, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for value in candidates[start:] + candidates[:start]:
                path = os.path.join(self.DIR, "%s-%s" % (kind, value))
                if value in used or (os.path.exists(path) and self._alive(path)):
                    continue
                with open(path, "w") as handle:
                    handle.write("%d\n" % os.getpid())
                self.held.append(path)
                return value
        raise AssertionError("no %s left to reserve" % kind)

    @staticmethod
    def _alive(path):
        try:
            pid = int(open(path).read())
            os.kill(pid, 0)
        except (OSError, ValueError) as exc:
            return not isinstance(exc, (ProcessLookupError, ValueError))
        return True

    def octets(self, count):
        """COUNT third octets N for overlay subnets 172.30.N.0/24 (100 .. 249),
        none in use on the engine."""
        ids = self.swarm.docker("network", "ls", "--quiet").split()
        # (not checked: a network another test removed since the listing is missing)
        found = self.swarm.docker("network", "inspect", *ids, check=False) if ids else ""
        used = {int(m.group(1)) for net in json.loads(found.strip() or "[]")
                for config in (net.get("IPAM") or {}).get("Config") or []
                for m in [re.match(r"^172\.30\.(\d+)\.", config.get("Subnet") or "")] if m}
        return [self.take("octet", range(100, 250), used) for _ in range(count)]

    def ports(self):
        """An even host port P (20000 .. 29998) to publish: P and P + 1 are the test's."""
        return self.take("ports", range(20000, 30000, 2))

    def release(self):
        for path in self.held:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.held = []


@pytest.fixture
def sreserve(swarm_engine):
    """Reservations of one test, released once its objects are removed (sprefix
    is torn down first)."""
    reservations = Reservations(swarm_engine)
    yield reservations
    reservations.release()


@pytest.fixture
def sprefix(swarm_engine, sreserve):
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
