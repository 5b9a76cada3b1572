"""Changes that span parts (issue 18): the battery of cross-part situations.

Each situation (support/situations.py) applies its "before"
configurations, then checks the change end to end against the real
engine: the plan (exit 2, or 1 for a refusal) predicts exactly the
actions the run logs, in the plan's order; a refused run changes
nothing; a re-run changes nothing; ``buildout:parts=`` leaves nothing
but what ``keep = true`` keeps.

The situations the session selects run WORKERS at a time
(DOCKEROO_CROSS_WORKERS, default 3), each in its own buildout with its own
prefix and subnets, when the first of them is asked for; each test then
reports its own.

test_cross_part_faults sweeps every applied situation with the fault
sweep (support/faults.py): its change killed right after its first and its
middle docker call that changes something, then a plain run must reach the
state of the uninterrupted change, a re-run must change nothing and
``buildout:parts=`` must leave only what ``keep = true`` keeps
(test_cross_part_faults_full, ``-m slow``: right after every such call;
test_cross_part_faults_term, ``-m slow``: SIGTERM instead of SIGKILL at the
first and middle points).
The Podman lane runs neither.

The swarm situations (a service switching its secret, config and network
parts) need the private swarm engine: tests/swarm/test_cross_part_swarm.py.
docker.gentoo-build moves are not here: a gentoo-build part needs the real
Portage builder (tests/gentoo, minutes per build), far beyond this
battery's budget; its graph edges (base image, builder) are those of
docker.build's image users, which the build moves cover.
"""

import fnmatch
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from support.buildout import Buildout, make_docker_recorder, real_docker
from support.engine import docker, inspect, own_image, remove_with_prefix
from support.faults import Scenario, Step, Sweep, changes_docker, sweep
from support.situations import Context, Situation, check, release_subnets, reserve_subnets

# -- the parts the situations are made of -------------------------------------------------
def net(part, name, subnet, extra=""):
    return """
    [%s]
    recipe = dockeroo:docker.network
    name = %%(p)s-%s
    subnet = %%(%s)s
    %s
    """ % (part, name, subnet, extra)


def vol(part, name, extra=""):
    return """
    [%s]
    recipe = dockeroo:docker.volume
    name = %%(p)s-%s
    %s
    """ % (part, name, extra)


def build(part, name, variant, extra=""):
    return """
    [%s]
    recipe = dockeroo:docker.build
    name = %%(p)s-%s
    source = ctx
    build-args =
        BASE=%%(base)s
        V=%s
    %s
    """ % (part, name, variant, extra)


def pull(part, tag, extra=""):
    return """
    [%s]
    recipe = dockeroo:docker.pull
    image = %%(host)s/%%(p)s-bb:%s
    username = %%(user)s
    password = %%(password)s
    %s
    """ % (part, tag, extra)


def run(part, name, image="%(base)s", networks=None, volumes=None, command="sleep 3600",
        extra=""):
    lines = ["[%s]" % part, "recipe = dockeroo:docker.run", "name = %%(p)s-%s" % name,
             "image = %s" % image, "command = %s" % command, "stop-timeout = 0"]
    if networks:
        lines.append("networks = %s" % networks)
    if volumes:
        lines.append("volumes = %s" % volumes)
    if extra:
        lines.append(extra)
    return "\n    " + "\n    ".join(lines) + "\n"


def copy(source):
    return """
    [dst]
    recipe = dockeroo:docker.run
    name = %%(p)s-dst
    image = %%(base)s
    command = /nothing
    start = false

    [copy]
    recipe = dockeroo:docker.copy
    container-from = ${%s:container}
    container-to = ${dst:container}
    paths = /etc/passwd /opt/passwd
    """ % source


DOCKERFILE = {"ctx/Dockerfile": "ARG BASE\nFROM ${BASE}\nARG V\nRUN echo $V > /v\n"}
#: a tmpfs volume with the mount options %s (not size=: Podman takes that for a quota)
TMPFS = "driver-opts =\n        type=tmpfs\n        device=tmpfs\n        o=%s"


# -- set-ups: objects made by hand (no part manages them) ----------------------------------
def by_hand(kind_option):
    """A set-up that makes container PREFIX-hand using the object KIND_OPTION names."""
    def setup(ctx):
        args = {"network": ["--network", ctx.fill("%(p)s-net-a")],
                "volume": ["-v", ctx.fill("%(p)s-vol-a:/data")]}.get(kind_option, [])
        image = ctx.fill("%(p)s-img-a:1") if kind_option == "image" else ctx.values["base"]
        docker("create", "--name", ctx.fill("%(p)s-hand"), *args, image, "true")
    return setup


def drop_by_hand(ctx):
    docker("rm", "-f", ctx.fill("%(p)s-hand"))


def pushed(ctx):
    """Two images in the registry, %(host)s/%(p)s-bb:1 and :2."""
    for tag in ("1", "2"):
        local = own_image(ctx.values["base"], ctx.fill("%(p)s-local:") + tag, ctx.prefix + tag)
        ctx.registry.push(local, ctx.fill("%(p)s-bb:") + tag)
        docker("image", "rm", local)


def networks_of(ctx, container):
    return set(inspect("container", ctx.fill(container))["NetworkSettings"]["Networks"])


def holds_networks(container, *networks):
    def holds(ctx):
        assert networks_of(ctx, container) == {ctx.fill(n) for n in networks}
    return holds


def holds_subnet(network, subnet, *users):
    def holds(ctx):
        found = inspect("network", ctx.fill(network))
        assert found["IPAM"]["Config"][0]["Subnet"] == ctx.fill(subnet)
        for user in users:
            assert ctx.fill(network) in networks_of(ctx, user)
            assert inspect("container", ctx.fill(user))["State"]["Running"]
    return holds


def holds_image(container, part_image):
    def holds(ctx):
        assert inspect("container", ctx.fill(container))["Image"] == \
            inspect("image", ctx.fill(part_image))["Id"]
    return holds


def holds_network(key, value):
    """%(p)s-net has VALUE under KEY of its inspect (user labels only), and
    %(p)s-web runs on it."""
    def holds(ctx):
        found = inspect("network", ctx.fill("%(p)s-net"))[key]
        if key == "Labels":
            found = {k: v for k, v in found.items() if not k.startswith("io.dockeroo.")}
        assert found == value
        holds_subnet("%(p)s-net", "%(s1)s", "%(p)s-web")(ctx)
    return holds


def holds_taken_over(kind, name, part, check):
    """Object NAME (KIND) carries PART's label (it was handed over), and CHECK holds."""
    def holds(ctx):
        found = inspect(kind, ctx.fill(name))
        assert found["Labels"]["io.dockeroo.part"] == part
        check(ctx)
    return holds


def holds_owned(owners, *checks):
    """Each object {(kind, name): part} of OWNERS carries PART's label, and CHECKS hold."""
    def holds(ctx):
        for (kind, name), part in owners.items():
            assert inspect(kind, ctx.fill(name))["Labels"]["io.dockeroo.part"] == part, (
                kind, name)
        for check in checks:
            check(ctx)
    return holds


def holds_mounted(container, volume):
    """CONTAINER runs with VOLUME mounted."""
    def holds(ctx):
        found = inspect("container", ctx.fill(container))
        assert found["State"]["Running"]
        assert ctx.fill(volume) in [m.get("Name") for m in found["Mounts"]]
    return holds


def holds_running(container):
    def holds(ctx):
        assert inspect("container", ctx.fill(container))["State"]["Running"]
    return holds


def holds_volume_options(mount_options):
    def holds(ctx):
        assert inspect("volume", ctx.fill("%(p)s-vol"))["Options"]["o"] == mount_options
        assert inspect("container", ctx.fill("%(p)s-web"))["State"]["Running"]
    return holds


# -- the situations --------------------------------------------------------------------------
S = []


def situation(*args, **kwargs):
    if kwargs.get("registry"):
        kwargs["first"] = pushed
    S.append(Situation(*args, **kwargs))


# moves between parts, the old part removed
situation("move-network", [
    net("net-a", "net-a", "s1") + run("web", "web", networks="${net-a:name}"),
    net("net-b", "net-b", "s2") + run("web", "web", networks="${net-b:name}")],
    holds=holds_networks("%(p)s-web", "%(p)s-net-b"))
situation("move-network-two-users", [
    net("net-a", "net-a", "s1") + run("web", "web", networks="${net-a:name}")
    + run("db", "db", networks="${net-a:name}"),
    net("net-b", "net-b", "s2") + run("web", "web", networks="${net-b:name}")
    + run("db", "db", networks="${net-b:name}")],
    holds=holds_networks("%(p)s-db", "%(p)s-net-b"))
situation("move-volume", [
    vol("vol-a", "vol-a") + run("web", "web", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol-b") + run("web", "web", volumes="${vol-b:name}:/data")])
situation("move-network-and-volume", [
    net("net-a", "net-a", "s1") + vol("vol-a", "vol-a")
    + run("web", "web", networks="${net-a:name}", volumes="${vol-a:name}:/data"),
    net("net-b", "net-b", "s2") + vol("vol-b", "vol-b")
    + run("web", "web", networks="${net-b:name}", volumes="${vol-b:name}:/data")],
    holds=holds_networks("%(p)s-web", "%(p)s-net-b"))
situation("move-build", [
    build("img-a", "img-a:1", "a") + run("web", "web", image="${img-a:name}"),
    build("img-b", "img-b:1", "b") + run("web", "web", image="${img-b:name}")],
    files=DOCKERFILE, holds=holds_image("%(p)s-web", "%(p)s-img-b:1"))
situation("move-pull", [
    pull("pull-a", "1") + run("web", "web", image="${pull-a:image}"),
    pull("pull-b", "2") + run("web", "web", image="${pull-b:image}")],
    registry=True, holds=holds_image("%(p)s-web", "%(host)s/%(p)s-bb:2"))
situation("move-build-to-pull", [
    build("img-a", "img-a:1", "a") + run("web", "web", image="${img-a:name}"),
    pull("pull-b", "2") + run("web", "web", image="${pull-b:image}")],
    files=DOCKERFILE, registry=True, holds=holds_image("%(p)s-web", "%(host)s/%(p)s-bb:2"))
situation("move-pull-to-build", [
    pull("pull-a", "1") + run("web", "web", image="${pull-a:image}"),
    build("img-b", "img-b:1", "b") + run("web", "web", image="${img-b:name}")],
    files=DOCKERFILE, registry=True, holds=holds_image("%(p)s-web", "%(p)s-img-b:1"))
situation("move-build-two-users", [
    build("img-a", "img-a:1", "a") + run("web", "web", image="${img-a:name}")
    + run("db", "db", image="${img-a:name}"),
    build("img-b", "img-b:1", "b") + run("web", "web", image="${img-b:name}")
    + run("db", "db", image="${img-b:name}")],
    files=DOCKERFILE, holds=holds_image("%(p)s-db", "%(p)s-img-b:1"))

# a removal waits for its users only: a later part's change comes after it
situation("move-network-later-part", [
    net("net-a", "net-a", "s1") + run("web", "web", networks="${net-a:name}")
    + run("db", "db"),
    net("net-b", "net-b", "s2") + run("web", "web", networks="${net-b:name}")
    + run("db", "db", command="sleep 3601")],
    planned=("create network %(p)s-net-b", "recreate container %(p)s-web",
             "remove network %(p)s-net-a", "recreate container %(p)s-db"),
    holds=holds_networks("%(p)s-web", "%(p)s-net-b"))
situation("rename-network-later-part", [
    net("net", "net-a", "s1") + run("web", "web", networks="${net:name}") + run("db", "db"),
    net("net", "net-b", "s2") + run("web", "web", networks="${net:name}")
    + run("db", "db", command="sleep 3601")],
    planned=("create network %(p)s-net-b", "recreate container %(p)s-web",
             "remove network %(p)s-net-a", "recreate container %(p)s-db"),
    holds=holds_networks("%(p)s-web", "%(p)s-net-b"))

# an object renamed, used by other parts
situation("rename-network-two-users", [
    net("net", "net-a", "s1") + run("web", "web", networks="${net:name}")
    + run("db", "db", networks="${net:name}"),
    net("net", "net-b", "s2") + run("web", "web", networks="${net:name}")
    + run("db", "db", networks="${net:name}")],
    holds=holds_networks("%(p)s-web", "%(p)s-net-b"))
situation("rename-volume", [
    vol("vol", "vol-a") + run("web", "web", volumes="${vol:name}:/data"),
    vol("vol", "vol-b") + run("web", "web", volumes="${vol:name}:/data")])
situation("rename-image", [
    build("img", "img-a:1", "a") + run("web", "web", image="${img:name}"),
    build("img", "img-a:2", "a") + run("web", "web", image="${img:name}")],
    files=DOCKERFILE, holds=holds_image("%(p)s-web", "%(p)s-img-a:2"))
# a part renamed, its object the same: handed over (recreated as the new part's)
situation("rename-part-same-network", [
    net("net-a", "net", "s1") + run("web", "web", networks="${net-a:name}"),
    net("net-b", "net", "s1") + run("web", "web", networks="${net-b:name}")],
    holds=holds_taken_over("network", "%(p)s-net", "net-b",
                           holds_subnet("%(p)s-net", "%(s1)s", "%(p)s-web")))
situation("rename-part-same-volume-refused", [
    # its data would be dropped: only with recreate = true in the new part
    vol("vol-a", "vol") + run("web", "web", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol") + run("web", "web", volumes="${vol-b:name}:/data")],
    outcome="refuse", refusal=r"%(p)s-vol.*recreate = true in \[vol-b\]")
situation("rename-part-same-volume-recreate", [
    vol("vol-a", "vol") + run("web", "web", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol", "recreate = true") + run("web", "web", volumes="${vol-b:name}:/data")],
    holds=holds_taken_over("volume", "%(p)s-vol", "vol-b", holds_running("%(p)s-web")))
situation("rename-part-unused-volume", [
    # no container uses it: the removed part removes it, the new part makes it again
    vol("vol-a", "vol") + run("web", "web"),
    vol("vol-b", "vol") + run("web", "web")],
    holds=holds_taken_over("volume", "%(p)s-vol", "vol-b", lambda ctx: None))
# a part renamed and its object changed in the same run: handed over with the new settings
situation("rename-part-network-new-subnet", [
    net("net-a", "net", "s1") + run("web", "web", networks="${net-a:name}"),
    net("net-b", "net", "s2") + run("web", "web", networks="${net-b:name}")],
    holds=holds_taken_over("network", "%(p)s-net", "net-b",
                           holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web")))
situation("rename-part-network-new-labels", [
    net("net-a", "net", "s1", "labels = tier=back") + run("web", "web", networks="${net-a:name}"),
    net("net-b", "net", "s1", "labels = tier=front") + run("web", "web",
                                                          networks="${net-b:name}")],
    holds=holds_taken_over("network", "%(p)s-net", "net-b", holds_network("Labels",
                                                                          {"tier": "front"})))
situation("rename-part-volume-new-options-recreate", [
    vol("vol-a", "vol", TMPFS % "nodev") + run("web", "web", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol", TMPFS % "nodev,noexec" + "\n    recreate = true")
    + run("web", "web", volumes="${vol-b:name}:/data")],
    holds=holds_taken_over("volume", "%(p)s-vol", "vol-b", holds_volume_options("nodev,noexec")))
situation("rename-part-volume-new-options-refused", [
    vol("vol-a", "vol", TMPFS % "nodev") + run("web", "web", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol", TMPFS % "nodev,noexec") + run("web", "web", volumes="${vol-b:name}:/data")],
    outcome="refuse", refusal=r"%(p)s-vol.*recreate = true in \[vol-b\]")
# a part that stays but names another object, while another part now describes its old one:
# handed over to that part (not removed at the end of the run), the new object made
situation("part-renames-network-other-takes-it", [
    net("net", "net-x", "s1") + run("web", "web", networks="${net:name}"),
    net("net", "net-y", "s2") + net("net2", "net-x", "s1")
    + run("web", "web", networks="${net2:name}")],
    holds=holds_owned({("network", "%(p)s-net-x"): "net2", ("network", "%(p)s-net-y"): "net"},
                      holds_subnet("%(p)s-net-x", "%(s1)s", "%(p)s-web"),
                      holds_subnet("%(p)s-net-y", "%(s2)s")))
situation("part-renames-network-other-takes-it-new-subnet", [
    net("net", "net-x", "s1") + run("web", "web", networks="${net:name}"),
    net("net", "net-y", "s2") + net("net2", "net-x", "s3")
    + run("web", "web", networks="${net2:name}")],
    holds=holds_owned({("network", "%(p)s-net-x"): "net2", ("network", "%(p)s-net-y"): "net"},
                      holds_subnet("%(p)s-net-x", "%(s3)s", "%(p)s-web"),
                      holds_subnet("%(p)s-net-y", "%(s2)s")))
situation("part-renames-volume-other-takes-it-recreate", [
    vol("vol", "vol-x") + run("web", "web", volumes="${vol:name}:/data"),
    vol("vol", "vol-y") + vol("vol2", "vol-x", "recreate = true")
    + run("web", "web", volumes="${vol2:name}:/data")],
    holds=holds_owned({("volume", "%(p)s-vol-x"): "vol2", ("volume", "%(p)s-vol-y"): "vol"},
                      holds_mounted("%(p)s-web", "%(p)s-vol-x")))
situation("part-renames-volume-other-takes-it-refused", [
    vol("vol", "vol-x") + run("web", "web", volumes="${vol:name}:/data"),
    vol("vol", "vol-y") + vol("vol2", "vol-x")
    + run("web", "web", volumes="${vol2:name}:/data")],
    outcome="refuse", refusal=r"%(p)s-vol-x.*recreate = true in \[vol2\]")
situation("rebuild-image-two-users", [
    build("img", "img-a:1", "a") + run("web", "web", image="${img:name}")
    + run("db", "db", image="${img:name}"),
    build("img", "img-a:1", "b") + run("web", "web", image="${img:name}")
    + run("db", "db", image="${img:name}")],
    files=DOCKERFILE, holds=holds_image("%(p)s-db", "%(p)s-img-a:1"))

# a network changed under managed users: recreated with its users
situation("network-subnet-one-user", [
    net("net", "net", "s1") + run("web", "web", networks="${net:name}"),
    net("net", "net", "s2") + run("web", "web", networks="${net:name}")],
    holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web"))
situation("network-subnet-two-users", [
    net("net", "net", "s1") + run("web", "web", networks="${net:name}")
    + run("db", "db", networks="${net:name}"),
    net("net", "net", "s2") + run("web", "web", networks="${net:name}")
    + run("db", "db", networks="${net:name}")],
    holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web", "%(p)s-db"))
situation("network-subnet-user-installed-first", [
    # the network named literally: after the change the container's part comes first
    # in parts, its turn passes before the network is recreated
    net("net", "net", "s1") + run("web", "web", networks="%(p)s-net"),
    run("web", "web", networks="%(p)s-net") + net("net", "net", "s2")],
    holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web"))
situation("network-internal-with-users", [
    net("net", "net", "s1") + run("web", "web", networks="${net:name}"),
    net("net", "net", "s1", "internal = true") + run("web", "web", networks="${net:name}")],
    holds=holds_network("Internal", True))
situation("network-labels-with-users", [
    net("net", "net", "s1", "labels = tier=back") + run("web", "web", networks="${net:name}"),
    net("net", "net", "s1", "labels = tier=front") + run("web", "web", networks="${net:name}")],
    holds=holds_network("Labels", {"tier": "front"}))
situation("network-subnet-and-container-change", [
    net("net", "net", "s1") + run("web", "web", networks="${net:name}"),
    net("net", "net", "s2") + run("web", "web", networks="${net:name}",
                                  command="sleep 3601")],
    holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web"))
# made again together right after the network (docs/cross-part.rst): the users whose other
# inputs are ready; one whose image a later part rebuilds, or that also uses a volume
# recreated later, is made at its own turn (or right after that volume)
situation("network-subnet-users-ready-and-not", [
    net("net", "net", "s1") + run("web", "web", networks="${net:name}")
    + build("img", "img:1", "a") + run("db", "db", image="${img:name}", networks="${net:name}"),
    net("net", "net", "s2") + run("web", "web", networks="${net:name}")
    + build("img", "img:1", "b") + run("db", "db", image="${img:name}", networks="${net:name}")],
    files=DOCKERFILE, holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web", "%(p)s-db"))
situation("network-and-volume-recreated-under-users", [
    net("net", "net", "s1") + vol("vol", "vol", TMPFS % "nodev")
    + run("web", "web", networks="${net:name}", volumes="${vol:name}:/data")
    + run("db", "db", networks="${net:name}"),
    net("net", "net", "s2") + vol("vol", "vol", TMPFS % "nodev,noexec" + "\n    recreate = true")
    + run("web", "web", networks="${net:name}", volumes="${vol:name}:/data")
    + run("db", "db", networks="${net:name}")],
    holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web", "%(p)s-db"))
situation("network-subnet-user-moves-volume-made-together", [
    # web, made again right after the network, also leaves vol-a (a removed part): vol-a is
    # removed right after that (its user is gone), before db's turn
    vol("vol-a", "vol-a") + net("net", "net", "s1") + run("db", "db")
    + run("web", "web", networks="${net:name}", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol-b") + net("net", "net", "s2") + run("db", "db", command="sleep 3601")
    + run("web", "web", networks="${net:name}", volumes="${vol-b:name}:/data")],
    holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web"))

# a volume changed under managed users: its data is dropped only when the configuration says so
situation("volume-driver-opts-with-user-refused", [
    vol("vol", "vol", TMPFS % "nodev") + run("web", "web", volumes="${vol:name}:/data"),
    vol("vol", "vol", TMPFS % "nodev,noexec") + run("web", "web", volumes="${vol:name}:/data")],
    outcome="refuse", refusal=r"%(p)s-vol.*(data|recreate)")
situation("volume-driver-opts-with-user-recreate", [
    vol("vol", "vol", TMPFS % "nodev") + run("web", "web", volumes="${vol:name}:/data"),
    vol("vol", "vol", TMPFS % "nodev,noexec" + "\n    recreate = true")
    + run("web", "web", volumes="${vol:name}:/data")],
    holds=holds_volume_options("nodev,noexec"))

# a copy part whose source container is replaced
situation("copy-source-replaced", [
    run("src", "src") + copy("src"),
    run("src", "src", command="sleep 3601") + copy("src")])
situation("copy-source-moved", [
    run("src-a", "src-a") + copy("src-a"),
    run("src-b", "src-b") + copy("src-b")])

# an object also used by a container of no part: refused before anything changes
situation("foreign-user-of-removed-network", [
    net("net-a", "net-a", "s1") + run("web", "web", networks="${net-a:name}"),
    run("web", "web")],
    setup=by_hand("network"), teardown=drop_by_hand, outcome="refuse",
    refusal=r"%(p)s-net-a.*%(p)s-hand")
situation("foreign-user-of-removed-volume", [
    vol("vol-a", "vol-a") + run("web", "web"),
    run("web", "web")],
    setup=by_hand("volume"), teardown=drop_by_hand, outcome="refuse",
    refusal=r"%(p)s-vol-a.*%(p)s-hand")
situation("foreign-user-of-removed-image", [
    build("img-a", "img-a:1", "a") + run("web", "web", image="${img-a:name}"),
    run("web", "web")],
    files=DOCKERFILE, setup=by_hand("image"), teardown=drop_by_hand, outcome="refuse",
    refusal=r"%(p)s-img-a:1.*%(p)s-hand")
situation("foreign-user-of-recreated-network", [
    net("net-a", "net-a", "s1") + run("web", "web", networks="${net-a:name}"),
    net("net-a", "net-a", "s2") + run("web", "web", networks="${net-a:name}")],
    setup=by_hand("network"), teardown=drop_by_hand, outcome="refuse",
    refusal=r"%(p)s-net-a.*%(p)s-hand")
situation("managed-user-keeps-removed-network", [
    # db names the network literally: removing net-a's part would cut it off
    net("net-a", "net-a", "s1") + run("web", "web", networks="${net-a:name}")
    + run("db", "db", networks="%(p)s-net-a"),
    run("web", "web") + run("db", "db", networks="%(p)s-net-a")],
    outcome="refuse", refusal=r"%(p)s-net-a.*%(p)s-db")

# the same with keep = true: the old object stays, nothing is refused for it
KEEP = "keep = true"
situation("keep-move-network", [
    net("net-a", "net-a", "s1", KEEP) + run("web", "web", networks="${net-a:name}"),
    net("net-b", "net-b", "s2") + run("web", "web", networks="${net-b:name}")],
    kept=[("network", "%(p)s-net-a")], holds=holds_networks("%(p)s-web", "%(p)s-net-b"))
situation("keep-move-volume", [
    vol("vol-a", "vol-a", KEEP) + run("web", "web", volumes="${vol-a:name}:/data"),
    vol("vol-b", "vol-b") + run("web", "web", volumes="${vol-b:name}:/data")],
    kept=[("volume", "%(p)s-vol-a")])
situation("keep-move-build", [
    build("img-a", "img-a:1", "a", KEEP) + run("web", "web", image="${img-a:name}"),
    build("img-b", "img-b:1", "b") + run("web", "web", image="${img-b:name}")],
    files=DOCKERFILE, kept=[("image", "%(p)s-img-a:1")],
    holds=holds_image("%(p)s-web", "%(p)s-img-b:1"))
situation("keep-move-pull", [
    pull("pull-a", "1", KEEP) + run("web", "web", image="${pull-a:image}"),
    pull("pull-b", "2") + run("web", "web", image="${pull-b:image}")],
    registry=True, kept=[("image", "%(host)s/%(p)s-bb:1")],
    holds=holds_image("%(p)s-web", "%(host)s/%(p)s-bb:2"))
situation("keep-rename-network-two-users", [
    net("net", "net-a", "s1", KEEP) + run("web", "web", networks="${net:name}")
    + run("db", "db", networks="${net:name}"),
    net("net", "net-b", "s2", KEEP) + run("web", "web", networks="${net:name}")
    + run("db", "db", networks="${net:name}")],
    kept=[("network", "%(p)s-net-a"), ("network", "%(p)s-net-b")],
    holds=holds_networks("%(p)s-web", "%(p)s-net-b"))
situation("keep-network-subnet-with-users", [
    net("net", "net", "s1", KEEP) + run("web", "web", networks="${net:name}"),
    net("net", "net", "s2", KEEP) + run("web", "web", networks="${net:name}")],
    kept=[("network", "%(p)s-net")], holds=holds_subnet("%(p)s-net", "%(s2)s", "%(p)s-web"))
situation("keep-foreign-user-of-removed-network", [
    # the kept network is left in place: its user made by hand is no obstacle
    net("net-a", "net-a", "s1", KEEP) + run("web", "web", networks="${net-a:name}"),
    run("web", "web")],
    setup=by_hand("network"), teardown=drop_by_hand, kept=[("network", "%(p)s-net-a")])
situation("keep-foreign-user-of-removed-image", [
    build("img-a", "img-a:1", "a", KEEP) + run("web", "web", image="${img-a:name}"),
    run("web", "web")],
    files=DOCKERFILE, setup=by_hand("image"), teardown=drop_by_hand,
    kept=[("image", "%(p)s-img-a:1")])
situation("keep-copy-source-moved", [
    run("src-a", "src-a", extra=KEEP) + copy("src-a"),
    run("src-b", "src-b") + copy("src-b")],
    kept=[("container", "%(p)s-src-a")])


#: situations the executor does not handle yet, with the failure seen (strict xfail):
#: remove an entry once it passes
#: (seen on h18e with --runxfail; the first assertion that fails is named first)
KNOWN = {}

def param(s):
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN[s.name])] if s.name in KNOWN else []
    return pytest.param(s, id=s.name, marks=marks)


#: situations run at once (threads; each its own buildout, prefix and subnets)
WORKERS = int(os.environ.get("DOCKEROO_CROSS_WORKERS", "3"))


@pytest.fixture(scope="module")
def outcomes(request, engine, base_image, tmp_path_factory):
    """{situation name: (Timing or None, exception or None)} of the situations this
    session selected, run WORKERS at a time when first asked for."""
    chosen = [item.callspec.params["s"] for item in request.session.items
              if item.module.__name__ == __name__ and hasattr(item, "callspec")
              and "s" in item.callspec.params]
    registry = request.getfixturevalue("registry") if any(s.registry for s in chosen) else None
    real = real_docker()
    # made once before the threads: made by the first mktemp, in several threads at once, it
    # is made several times ("... is not a normalized and relative path" for the others)
    tmp_path_factory.getbasetemp()

    def one(s):
        prefix = "dkt%s" % uuid.uuid4().hex[:8]
        root = tmp_path_factory.mktemp(s.name)
        bo = Buildout(str(root / "buildout"), prefix)
        recorder = make_docker_recorder(str(root / "docker-recorder"), real)
        try:
            return check(s, bo, prefix, base_image, recorder, registry), None
        except BaseException as exc:  # reported by the situation's own test
            return None, exc
        finally:
            if os.path.exists(bo.path(".installed.cfg")):
                bo.uninstall_all()
            remove_with_prefix(prefix)

    with ThreadPoolExecutor(max(1, WORKERS)) as pool:
        return dict(zip([s.name for s in chosen], pool.map(one, chosen)))


@pytest.mark.parametrize("s", [param(s) for s in S])
def test_cross_part(s, outcomes):
    timing, error = outcomes[s.name]
    if error is not None:
        raise error
    print("%s: %s" % (s.name, timing.seconds))


# -- the battery under faults (issue 18: "a kill after every docker call, then a plain run
# converges, then removal leaves nothing") ------------------------------------------------
#
# Every applied situation (not a refusal: a refused run changes nothing, there is nothing
# to interrupt) is swept with the fault sweep's machinery (support/faults.py): its "before"
# configurations applied by plain runs (its set-up included), the uninterrupted change once
# (the reference: its docker calls, the state Docker holds), then for each kill point k the
# change killed (SIGKILL) right after its k-th docker call, a plain run that must reach the
# reference's state (the sweep's snapshot, and the situation's ``holds``), one more run that
# must make no docker call that changes something, and ``buildout:parts=`` that must leave
# only what the situation's ``kept`` lists.
#
# Default selection: two kill points of every applied situation, right after the first
# docker call of the change that changes something and right after the middle one
# (test_cross_part_faults).  test_cross_part_faults_full (``-m slow``): right after every
# call that changes something.  The Podman lane runs neither (the faults lane runs them on
# Docker).


class BatterySweep(Sweep):
    """A :class:`support.faults.Sweep` of one battery situation: its set-up after the
    "before" configurations, its teardown before each removal, its kept objects allowed
    (then removed: the next case starts from nothing), its ``holds`` part of the state."""

    def __init__(self, s, workdir, prefix, base_image, registry, subnets):
        self.situation = s
        steps = [Step(step, files=s.files if i == 0 else {}) for i, step in enumerate(s.steps)]
        # a container's fingerprint holds the id of the image each case builds anew (the
        # re-run, which must change nothing, checks that it is the right one)
        volatile = ("io.dockeroo.fingerprint",) if "recipe = dockeroo:docker.build" in "".join(
            s.steps) else ()
        scenario = Scenario(s.name, steps, setup=self.first if s.first else None,
                            registry=registry if s.registry else None, volatile=volatile)
        values = {"base": base_image, "s1": str(subnets[0]), "s2": str(subnets[1]),
                  "s3": str(subnets[2])}
        if registry is not None:
            values.update(host=registry.host, user=registry.username,
                          password=registry.password)
        super().__init__(scenario, workdir, prefix, values)
        self.ctx = Context(self.bo, prefix, self.values, registry)
        #: {k: the argv the fault came after} of the faulted runs
        self.faults = {}
        #: whether the buildout holds parts (installed since the last removal)
        self.installed = False
        #: how many docker calls the last faulted run made
        self.made = 0
        #: the kill points tried again, and (k, the call killed instead) (see case)
        self.retried, self.substituted = [], []

    def first(self, prefix):
        self.situation.first(self.ctx)
        return {}

    def run(self, step, **fault):
        result = super().run(step, **fault)
        if fault.get("at"):
            found = self.docker.fault()
            self.faults[fault["at"]] = found["argv"] if found else None
            self.made = len(self.docker.calls())
        return result

    def case(self, k, *args, **kwargs):
        """The case of kill point K, tried again (up to twice) when the faulted run's K-th
        docker call is not the reference's (a read-only call more or less before it, calls
        made in parallel in another order: the kill came after another call, or never).
        After three such attempts, a kill right after another call that changes something
        stands for K (listed in the report); a kill that never comes, or only after a call
        that changes nothing, is a problem of its own."""
        wanted, notes, found = self.calls[k - 1][:2], [], []
        for attempt in range(3):
            self.faults.pop(k, None)
            outcome = super().case(k, *args, **kwargs)
            killed = self.faults.get(k)
            if killed is not None and killed[:2] == wanted:
                break
            note = "attempt %d killed after %s, not `%s`" % (
                attempt + 1, "`%s`" % " ".join(killed[:4]) if killed else
                "no call (it made %d)" % self.made,
                " ".join(self.calls[k - 1][:4]))
            notes.append(note)
            self.retried.append(k)
            if outcome.problems:  # what an attempt that killed elsewhere found counts too
                found.append("%s: %s" % (note, "; ".join(outcome.problems)))
        else:
            if killed is not None and changes_docker(killed):
                # right after another call that changes something (made in parallel with
                # the reference's k-th call: the order of a batch varies): a kill point
                # all the same (what the attempts found is in FOUND)
                self.substituted.append((k, " ".join(killed[:4])))
                outcome.problems[:] = []
            else:
                outcome.problems[:] = ["the kill never came after the reference's call: "
                                       + " | ".join(notes)]
        outcome.problems += found
        return outcome

    def prepare(self):
        problems = super().prepare()
        self.installed = True
        if not problems and self.situation.setup:
            self.situation.setup(self.ctx)
        return problems

    def state(self):
        found = super().state()
        if self.situation.holds:
            try:
                self.situation.holds(self.ctx)
                found[("holds", self.situation.name)] = "holds"
            except Exception as exc:  # noqa: BLE001 - a difference, reported as such
                found[("holds", self.situation.name)] = "fails: %r" % (exc,)
        return found

    def removal(self, problems, when):
        """Teardown, ``buildout:parts=``: only the kept objects are left (then removed)."""
        self.installed = False
        if self.situation.teardown:
            try:
                self.situation.teardown(self.ctx)
            except Exception as exc:  # noqa: BLE001
                problems.append("teardown %s failed: %r" % (when, exc))
        result = self.bo.run("buildout:parts=")
        if not result.ok:
            problems.append("uninstall %s failed: %s" % (when, result.error_line()))
        left = self.leftovers()
        kept = [(kind, self.ctx.fill(name)) for kind, name in self.situation.kept]
        matched = [o for o in left if any(
            o[0] == kind and fnmatch.fnmatchcase(o[1], pattern) for kind, pattern in kept)]
        # a kept image built by the classic builder keeps its parent chain (its intermediate
        # images, labelled as the buildout's): the engine removes them with it, not before
        ancestors = set()
        for kind, name in matched:
            parent = (inspect("image", name) or {}).get("Parent") if kind == "image" else None
            while parent and ("image", parent) not in ancestors:
                ancestors.add(("image", parent))
                parent = (inspect("image", parent) or {}).get("Parent")
        unexpected = sorted(o for o in left if o not in matched and o not in ancestors)
        gone = [k for k in kept if not any(
            o[0] == k[0] and fnmatch.fnmatchcase(o[1], k[1]) for o in left)]
        if unexpected:
            problems.append("left %s: %s" % (when, unexpected))
        if gone:
            problems.append("keep = true objects gone %s: %s" % (when, gone))
        self.clean(left)

    def uninstall_earlier(self, problems):
        if self.installed:  # the reference (the cases are removed by converged)
            self.removal(problems, "after the reference")

    def converged(self, problems):
        result = self.run(self.scenario.steps[-1])
        changed = [c for c in self.docker.calls() if changes_docker(c)]
        if not result.ok:
            problems.append("re-run failed: %s" % result.error_line())
        elif changed:
            problems.append("re-run changed Docker: %s" % [" ".join(c[:4]) for c in changed])
        self.removal(problems, "after uninstall")
        temporary = self.docker.temporary_files()
        if temporary:
            problems.append("temporary files left after a plain run: %s" % temporary)


def changing_calls(calls):
    """The kill points right after each docker call that changes something."""
    return [i + 1 for i, c in enumerate(calls) if changes_docker(c)]


def first_and_middle(n, calls):
    found = changing_calls(calls)
    return sorted({found[0], found[len(found) // 2]}) if found else []


FAULT_SELECT = {"sampled": first_and_middle, "every": lambda n, calls: changing_calls(calls),
                "sampled-TERM": first_and_middle}
#: the signal the buildout gets at each kill point of a selection (SIGKILL by default)
FAULT_SIGNAL = {"sampled-TERM": "TERM"}

#: kill points of the battery that do not converge yet: situation -> (reason, the kill
#: points that fail, as "first"/"middle" or k).  A listed kill point that converges is a
#: failure of its own: remove the entry once it is fixed
FAULT_KNOWN = {}


def sweep_situation(s, root, base_image, registry, select):
    """Sweep situation S: (report line, [(k, label, reference call, faulted call,
    problems)] of the kill points that do not converge, [labels swept])."""
    prefix = "dkt%s" % uuid.uuid4().hex[:8]
    subnets = reserve_subnets(3)
    sweeps = []

    def make(i):
        sweeps.append(BatterySweep(s, str(root / ("w%d" % i)), prefix, base_image,
                                   registry if s.registry else None, subnets))
        return sweeps[-1]

    try:
        n, chosen, failures, seconds, calls = sweep(make, FAULT_SELECT[select],
                                                    FAULT_SIGNAL.get(select, "KILL"),
                                                    workers=1, check=False)
    finally:
        release_subnets(subnets)
        remove_with_prefix(prefix)
    changing = changing_calls(calls)
    labels = {}
    if changing:
        labels[changing[len(changing) // 2]] = "middle"
        labels[changing[0]] = "first"
    report = "%s: N=%d docker calls (%d changing), SIG%s points %s%s, %.0fs" % (
        s.name, n, len(changing), FAULT_SIGNAL.get(select, "KILL"), chosen,
        "".join([" (tried again: %s)" % sweeps[0].retried if sweeps[0].retried else "",
                 " (killed after another call at: %s)" % sweeps[0].substituted
                 if sweeps[0].substituted else ""]), seconds)
    found = [(f.k, labels.get(f.k, str(f.k)), " ".join(calls[f.k - 1][:4]) if f.k else "-",
              " ".join((sweeps[0].faults.get(f.k) or ["(no fault)"])[:4]), f.problems)
             for f in failures]
    return report, found, [labels.get(k, str(k)) for k in chosen]


@pytest.fixture(scope="module")
def fault_outcomes(request, engine, base_image, tmp_path_factory):
    """{(situation name, selection): (report, failures, labels) or an exception} of the
    situations this session's fault tests selected, WORKERS at a time."""
    chosen = [(item.callspec.params["fs"], item.callspec.params["select"])
              for item in request.session.items
              if item.module.__name__ == __name__ and hasattr(item, "callspec")
              and "fs" in item.callspec.params and not item.get_closest_marker("skip")]
    registry = request.getfixturevalue("registry") if any(s.registry for s, _ in chosen) \
        else None
    tmp_path_factory.getbasetemp()  # once, before the threads (see outcomes)

    def one(item):
        s, select = item
        try:
            return sweep_situation(s, tmp_path_factory.mktemp("fault-" + s.name), base_image,
                                   registry, select)
        except BaseException as exc:  # reported by the situation's own test
            return exc

    with ThreadPoolExecutor(max(1, WORKERS)) as pool:
        return dict(zip([(s.name, select) for s, select in chosen], pool.map(one, chosen)))


def check_fault_outcome(s, select, fault_outcomes):
    result = fault_outcomes[(s.name, select)]
    if isinstance(result, BaseException):
        raise result
    report, failures, labels = result
    print(report)
    reason, known = FAULT_KNOWN.get(s.name, ("", set()))
    surprises = [f for f in failures if f[1] not in known]
    fixed = (set(labels) & known) - {f[1] for f in failures}
    assert not surprises and not fixed, "%s\n%s%s" % (report, "".join(
        "  k=%d (%s): killed after `%s` (this run: `%s`):\n    %s\n" % (
            k, label, call, faulted, "\n    ".join(problems))
        for k, label, call, faulted, problems in surprises),
        "  converges at %s now: update FAULT_KNOWN (%s)\n" % (sorted(fixed), reason)
        if fixed else "")


APPLIED = [s for s in S if s.outcome == "apply" and not s.xfail]


@pytest.mark.parametrize("fs, select", [pytest.param(s, "sampled", id=s.name)
                                        for s in APPLIED])
def test_cross_part_faults(fs, select, fault_outcomes):
    """SIGKILL right after the change's first and middle docker calls that change
    something: the next run converges, a re-run changes nothing, removal leaves only
    what keep = true keeps."""
    check_fault_outcome(fs, select, fault_outcomes)


@pytest.mark.parametrize("fs, select", [pytest.param(s, "every", id=s.name,
                                                     marks=pytest.mark.slow)
                                        for s in APPLIED])
def test_cross_part_faults_full(fs, select, fault_outcomes):
    """The same, right after every docker call of the change that changes something."""
    check_fault_outcome(fs, select, fault_outcomes)


@pytest.mark.parametrize("fs, select", [pytest.param(s, "sampled-TERM", id=s.name,
                                                     marks=pytest.mark.slow)
                                        for s in APPLIED])
def test_cross_part_faults_term(fs, select, fault_outcomes):
    """SIGTERM (buildout stops, dockeroo undoes what the interrupted step half made)
    at the first and middle kill points: the next run converges the same way."""
    check_fault_outcome(fs, select, fault_outcomes)
