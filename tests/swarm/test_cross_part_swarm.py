"""Changes that span parts (issue 18) that need a swarm: a service switching
its secret, config and network parts, the old part removed (and the same
with ``keep = true``).  The checks are those of
tests/integration/test_cross_part.py (support/situations.py), on the
private swarm engine of tests/swarm."""

import os
import subprocess
import textwrap
import time

import pytest

from support.situations import Situation, check

pytestmark = pytest.mark.swarm


def secret(part, value, extra=""):
    return """
    [%s]
    recipe = dockeroo:docker.secret
    name = %%(p)s-%s
    file = %s.secret
    %s
    """ % (part, part, value, extra)


def config(part, value, extra=""):
    return """
    [%s]
    recipe = dockeroo:docker.config
    name = %%(p)s-%s
    content = colour = %s
    %s
    """ % (part, part, value, extra)


def overlay(part, third_octet, extra="", name=None):
    return """
    [%s]
    recipe = dockeroo:docker.network
    name = %%(p)s-%s
    driver = overlay
    attachable = true
    subnet = 172.30.%%(n%s)s.0/24
    %s
    """ % (part, name or part, third_octet, extra)


def service(secrets=None, configs=None, networks=None, replicas=1):
    lines = ["[app]", "recipe = dockeroo:docker.service", "name = %(p)s-app",
             "image = %(image)s", "command = sleep 100000", "replicas = %d" % replicas,
             "endpoint-mode = dnsrr", "update-monitor = 1s",
             # its task (sleep, pid 1) ignores SIGTERM: killed after 1 s, not 10
             "stop-grace-period = 1s"]
    if secrets:
        lines.append("secrets = %s" % secrets)
    if configs:
        lines.append("configs = %s,target=/etc/app.conf" % configs)
    if networks:
        lines.append("networks = %s" % networks)
    return "\n    " + "\n    ".join(lines) + "\n"


KEEP = "keep = true"


def _swarm_docker(ctx, *args):
    env = dict(os.environ, DOCKER_HOST=ctx.buildout.url)
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          env=env, timeout=120).stdout


def _task_containers(ctx, running=True):
    return _swarm_docker(ctx, "ps", "--quiet", *(() if running else ("--all",)), "--filter",
                         "label=com.docker.swarm.service.name=" + ctx.fill("%(p)s-hand")).split()


def _until(what, timeout=60):
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out waiting for %s" % what.__doc__
        time.sleep(0.5)


def hand_service(ctx, replicas=1):
    """A service made by hand (no part manages it) on the overlay network
    %(p)s-net, its task running (the plan sees it through its container
    and its spec); REPLICAS 0: no task, only its spec names the network."""
    _swarm_docker(ctx, "service", "create", "--detach", "--no-resolve-image", "--name",
                  ctx.fill("%(p)s-hand"), "--network", ctx.fill("%(p)s-net"),
                  "--replicas", str(replicas), "--endpoint-mode", "dnsrr",
                  "--stop-grace-period", "1s", ctx.values["image"], "sleep", "100000")
    if replicas:
        _until(lambda: _task_containers(ctx))


def hand_service_without_tasks(ctx):
    hand_service(ctx, replicas=0)


def drop_hand_service(ctx):
    """The service made by hand removed, and its task containers gone."""
    _swarm_docker(ctx, "service", "rm", ctx.fill("%(p)s-hand"))
    _until(lambda: not _task_containers(ctx, running=False))


SECRETS = {"first.secret": "first-value\n", "second.secret": "second-value\n"}
S = [
    Situation("service-switch-secret", [
        secret("db-a", "first") + service(secrets="db-a"),
        secret("db-b", "second") + service(secrets="db-b")], files=SECRETS),
    Situation("service-switch-config", [
        config("conf-a", "blue") + service(configs="conf-a"),
        config("conf-b", "green") + service(configs="conf-b")]),
    Situation("service-switch-network", [
        overlay("net-a", "1") + service(networks="${net-a:network}"),
        overlay("net-b", "2") + service(networks="${net-b:network}")]),
    Situation("service-switch-all", [
        secret("db-a", "first") + config("conf-a", "blue") + overlay("net-a", "1")
        + service(secrets="db-a", configs="conf-a", networks="${net-a:network}"),
        secret("db-b", "second") + config("conf-b", "green") + overlay("net-b", "2")
        + service(secrets="db-b", configs="conf-b", networks="${net-b:network}")],
        files=SECRETS),
    # a part renamed, its overlay network the same: handed over (made again as the new
    # part's, its services let go of it first and use the new one afterwards)
    Situation("service-rename-part-same-network", [
        overlay("net-a", "1", name="net") + service(networks="${net-a:network}"),
        overlay("net-b", "1", name="net") + service(networks="${net-b:network}")]),
    Situation("service-rename-part-network-new-subnet", [
        overlay("net-a", "1", name="net") + service(networks="${net-a:network}"),
        overlay("net-b", "2", name="net") + service(networks="${net-b:network}")]),
    # the service's part first in the buildout: the network is made again at its part's
    # turn, the service (its turn passed) takes it at once
    Situation("service-first-rename-part-network", [
        service(networks="${net-a:network}") + overlay("net-a", "1", name="net"),
        service(networks="${net-b:network}") + overlay("net-b", "1", name="net")]),
    # an overlay network recreated under its service (no part renamed)
    Situation("service-network-new-subnet", [
        overlay("net", "1") + service(networks="${net:network}"),
        overlay("net", "2") + service(networks="${net:network}")]),
    # a service of no part uses it: refused before anything changes, naming it
    Situation("service-rename-part-network-foreign-service", [
        overlay("net-a", "1", name="net") + service(networks="${net-a:network}"),
        overlay("net-b", "1", name="net") + service(networks="${net-b:network}")],
        outcome="refuse", refusal=r"%(p)s-net.*%(p)s-hand", setup=hand_service,
        teardown=drop_hand_service),
    # a service without tasks (replicas = 0): only its spec names the network (as for a
    # service whose tasks run on other nodes), and it must let go of it all the same
    Situation("service-no-task-rename-part-network", [
        overlay("net-a", "1", name="net") + service(networks="${net-a:network}", replicas=0),
        overlay("net-b", "1", name="net") + service(networks="${net-b:network}", replicas=0)]),
    Situation("service-rename-part-network-foreign-service-no-task", [
        overlay("net-a", "1", name="net") + service(networks="${net-a:network}"),
        overlay("net-b", "1", name="net") + service(networks="${net-b:network}")],
        outcome="refuse", refusal=r"%(p)s-net.*%(p)s-hand", setup=hand_service_without_tasks,
        teardown=drop_hand_service),
    Situation("keep-service-switch-secret", [
        secret("db-a", "first", KEEP) + service(secrets="db-a"),
        secret("db-b", "second") + service(secrets="db-b")], files=SECRETS,
        kept=[("secret", "%(p)s-db-a*")]),
]

#: situations the executor does not handle yet (strict xfail, with the failure seen):
#: remove an entry once it passes
KNOWN = {}


def param(s):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[s.name])] if s.name in KNOWN else []
    return pytest.param(s, id=s.name, marks=marks)


@pytest.mark.parametrize("s", [param(s) for s in S])
def test_cross_part_swarm(s, sbuildout, sprefix, sreserve, swarm_engine, swarm_image,
                          docker_recorder):
    n1, n2 = sreserve.octets(2)
    extra = {"image": swarm_image, "n1": str(n1), "n2": str(n2)}
    timing = check(s, sbuildout, sprefix, swarm_image, docker_recorder, env=swarm_engine.env,
                   swarm=True, values=extra)
    print("%s: %s" % (s.name, timing.seconds))


# -- a hand-over killed midway, then a plain run ------------------------------------------
#: where the run of "service-rename-part-network-new-subnet" is killed (SIGKILL right after
#: the first docker call whose argv holds these words): the service let go of the network
#: (the network still the old part's), the network removed, the new one made (the service
#: not on it yet)
KILLED_AFTER = ["service update --network-rm", "network rm", "network create"]


@pytest.mark.parametrize("words", KILLED_AFTER)
def test_handover_killed_then_a_plain_run_converges(words, sbuildout, sprefix, sreserve,
                                                    swarm_engine, swarm_image, tmp_path):
    from support.faults import FaultDocker
    from support.plan_exact import plan_of
    from support.situations import logged, objects
    situation = next(s for s in S if s.name == "service-rename-part-network-new-subnet")
    n1, n2 = sreserve.octets(2)
    values = {"p": sprefix, "image": swarm_image, "n1": str(n1), "n2": str(n2)}
    before, after = (textwrap.dedent(step) % values for step in situation.steps)
    sbuildout.configure(before)
    sbuildout.ok()
    sbuildout.configure(after)
    faulty = FaultDocker(str(tmp_path / "fault"))
    env = dict(faulty.env(), DOCKEROO_FAULT_ARGV=words)
    killed = sbuildout.run(env=env)
    assert not killed.ok and faulty.fault() is not None, killed.output
    assert all(w in faulty.fault()["argv"] for w in words.split()), faulty.fault()
    # a plain run converges: the network is net-b's, with its subnet, the service on it
    run = sbuildout.ok()
    assert "Traceback" not in run.output, run.output
    network = swarm_engine.inspect("network", sprefix + "-net")
    assert network["Labels"]["io.dockeroo.part"] == "net-b", network["Labels"]
    assert [c["Subnet"] for c in network["IPAM"]["Config"]] == ["172.30.%s.0/24" % values["n2"]]
    service = swarm_engine.inspect("service", sprefix + "-app")
    assert [n["Target"] for n in service["Spec"]["TaskTemplate"]["Networks"]] == [
        network["Id"]], service["Spec"]["TaskTemplate"]
    swarm_engine.wait_running(sprefix + "-app", 1)
    pending = sbuildout.path("parts", ".dockeroo", "pending")
    assert not [n for n in (os.listdir(pending) if os.path.isdir(pending) else [])
                if open(os.path.join(pending, n)).read().strip() not in ("", "[]")], run.output
    # a re-run changes nothing
    again = plan_of(sbuildout)
    assert again.code == 0, again.output + again.stderr
    assert logged(sbuildout.ok().output) == []
    # and buildout:parts= leaves nothing
    removal = sbuildout.run("buildout:parts=")
    assert removal.ok, removal.output
    assert objects(sprefix, swarm_engine.env, swarm=True) == []
