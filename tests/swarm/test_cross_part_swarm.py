"""Changes that span parts (issue 18) that need a swarm: a service switching
its secret, config and network parts, the old part removed (and the same
with ``keep = true``).  The checks are those of
tests/integration/test_cross_part.py (support/situations.py), on the
private swarm engine of tests/swarm."""

import os
import subprocess
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


def service(secrets=None, configs=None, networks=None):
    lines = ["[app]", "recipe = dockeroo:docker.service", "name = %(p)s-app",
             "image = %(image)s", "command = sleep 100000", "replicas = 1",
             "endpoint-mode = dnsrr", "update-monitor = 1s"]
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


def hand_service(ctx):
    """A service made by hand (no part manages it) on the overlay network
    %(p)s-net, its task running (the plan sees it through its container)."""
    _swarm_docker(ctx, "service", "create", "--detach", "--no-resolve-image", "--name",
                  ctx.fill("%(p)s-hand"), "--network", ctx.fill("%(p)s-net"),
                  "--endpoint-mode", "dnsrr", "--stop-grace-period", "1s", ctx.values["image"],
                  "sleep", "100000")
    _until(lambda: _task_containers(ctx))


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
    # a service of no part uses it: refused before anything changes, naming it
    Situation("service-rename-part-network-foreign-service", [
        overlay("net-a", "1", name="net") + service(networks="${net-a:network}"),
        overlay("net-b", "1", name="net") + service(networks="${net-b:network}")],
        outcome="refuse", refusal=r"%(p)s-net.*%(p)s-hand", setup=hand_service,
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
def test_cross_part_swarm(s, sbuildout, sprefix, swarm_engine, swarm_image, docker_recorder):
    octet = 100 + int(sprefix[-2:], 16) % 50
    extra = {"image": swarm_image, "n1": str(octet), "n2": str(octet + 50)}
    timing = check(s, sbuildout, sprefix, swarm_image, docker_recorder, env=swarm_engine.env,
                   swarm=True, values=extra)
    print("%s: %s" % (s.name, timing.seconds))
