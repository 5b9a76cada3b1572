"""Beyond one node: a manager and a worker, two private dockerds in their own
network namespaces linked by a veth pair; the buildout targets the manager
only (engine-url), as it would target a remote cluster."""

import os
import subprocess

import pytest

from .conftest import Swarm, engine_sh

pytestmark = pytest.mark.swarm

MANAGER, WORKER = "dkswarm-m", "dkswarm-w1"
MANAGER_ADDR, WORKER_ADDR = "172.28.199.1", "172.28.199.2"


@pytest.fixture(scope="module")
def cluster(swarm_engine, swarm_image):
    env_before = dict(os.environ)
    try:
        os.environ.update(DKSWARM_ADDR=MANAGER_ADDR, DKSWARM_LINK="%s:%s/24:%s/24" % (
            WORKER, MANAGER_ADDR, WORKER_ADDR))
        engine_sh("start", MANAGER)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    try:
        engine_sh("daemon", WORKER)
        manager = Swarm("unix:///run/dockeroo-%s/docker.sock" % MANAGER)
        worker = Swarm("unix:///run/dockeroo-%s/docker.sock" % WORKER)
        token = manager.docker("swarm", "join-token", "--quiet", "worker").strip()
        worker.docker("swarm", "join", "--token", token, "--advertise-addr", WORKER_ADDR,
                      MANAGER_ADDR + ":2377", timeout=120)
        # the same image (same id) on both nodes: saved from the single-node engine
        for node in (manager, worker):
            save = subprocess.Popen(["docker", "save", swarm_image], env=swarm_engine.env,
                                    stdout=subprocess.PIPE)
            subprocess.run(["docker", "load", "-q"], stdin=save.stdout, env=node.env, check=True,
                           capture_output=True, timeout=300)
            save.stdout.close()
            assert save.wait(timeout=60) == 0
        yield manager, worker
    finally:
        engine_sh("stop", WORKER)
        engine_sh("stop", MANAGER)


def test_two_nodes_constraints_global_mode_and_overlay(sbuildout, sprefix, cluster, swarm_image):
    manager, worker = cluster
    assert len(manager.docker("node", "ls", "-q").split()) == 2
    worker_id = worker.docker("info", "--format", "{{.Swarm.NodeID}}").strip()
    sbuildout.url = manager.url
    sbuildout.configure("""
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        driver = overlay
        attachable = true
        subnet = 172.30.77.0/24

        [pinned]
        recipe = dockeroo:docker.service
        name = %(p)s-pinned
        image = %(image)s
        command = sleep 1000
        stop-grace-period = 1s
        replicas = 2
        constraints =
            node.role == worker
        networks =
            ${net:network}

        [everywhere]
        recipe = dockeroo:docker.service
        name = %(p)s-all
        image = %(image)s
        command = sleep 1000
        stop-grace-period = 1s
        mode = global
        endpoint-mode = dnsrr
        networks =
            ${net:network}
        """ % {"p": sprefix, "image": swarm_image})
    sbuildout.ok()
    pinned = manager.tasks(sprefix + "-pinned")
    assert len(pinned) == 2 and {t["NodeID"] for t in pinned} == {worker_id}
    assert len(worker.task_containers(sprefix + "-pinned")) == 2
    assert manager.task_containers(sprefix + "-pinned") == []
    everywhere = manager.tasks(sprefix + "-all")
    assert len({t["NodeID"] for t in everywhere}) == 2
    # the overlay network spans both nodes: the manager's task reaches the worker's
    here = manager.task_containers(sprefix + "-all")[0]
    addresses = [t["NetworksAttachments"][0]["Addresses"][0].split("/")[0] for t in everywhere
                 if t["NodeID"] == worker_id and t.get("NetworksAttachments")]
    assert addresses
    assert "1 packets received" in manager.exec(here, "ping", "-c", "1", "-W", "5", addresses[0])
    assert sorted(manager.exec(here, "nslookup", "tasks.%s-all" % sprefix).split()).count(
        "Address:") >= 2

    result = sbuildout.uninstall_all()
    assert result.ok, result.output
    for kind in ("service", "network"):
        assert manager.names(kind, sprefix) == []
