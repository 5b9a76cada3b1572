"""The run's executor (issue 18): changes that span parts, applied in one
run in the order the plan shows, or refused before anything changes.

1. a container moves to new network and volume parts, the old parts are
   removed: their removal waits for the container's replacement;
2. a container switches to another docker.build part, the old one is
   removed: the old image is removed once the container no longer uses it;
3. a network's subnet (then its labels) changes under this buildout's
   containers: the containers are released and made again with it;
   a volume's driver options change: refused without ``recreate = true``;
and a network used by a container of no part: refused, naming it.

Each: ``dockeroo plan`` predicted it (exit 2, or 1 for a refusal), a re-run
changes nothing, ``buildout buildout:parts=`` leaves nothing."""

import re

import pytest

from support.engine import docker, free_subnet, inspect, leftovers, objects_with_prefix
from support.plan_exact import plan_of

DOCKERFILE = "ARG BASE\nFROM ${BASE}\nLABEL dkt.variant=%s\n"


def subnets():
    """Two free /24s of the test pool, as text."""
    first = free_subnet()
    return str(first), str(free_subnet(avoid=[first]))


def network(part, name, subnet, extra=""):
    return """
        [{part}]
        recipe = dockeroo:docker.network
        name = {name}
        subnet = {subnet}
        {extra}
        """.format(part=part, name=name, subnet=subnet, extra=extra)


def volume(part, name, extra=""):
    return """
        [{part}]
        recipe = dockeroo:docker.volume
        name = {name}
        {extra}
        """.format(part=part, name=name, extra=extra)


def build(part, name, base, source):
    return """
        [{part}]
        recipe = dockeroo:docker.build
        name = {name}
        source = {source}
        build-args = BASE={base}
        """.format(part=part, name=name, base=base, source=source)


def app(prefix, image, network_part=None, volume_part=None, name="app"):
    lines = ["", "[%s]" % name, "recipe = dockeroo:docker.run", "name = %s-%s" % (prefix, name),
             "image = %s" % image, "command = sleep 3600", "stop-timeout = 0"]
    if network_part:
        lines.append("networks = ${%s:name}" % network_part)
    if volume_part:
        lines.append("volumes = ${%s:name}:/data" % volume_part)
    return "\n".join("        " + line for line in lines) + "\n"


def networks_of(name):
    return set(inspect("container", name)["NetworkSettings"]["Networks"])


def volumes_of(name):
    return {m.get("Name") for m in inspect("container", name)["Mounts"] if m.get("Name")}


def no_changes(buildout):
    assert plan_of(buildout, json_output=False).code == 0
    result = buildout.ok()
    assert not re.search(r"\b(creating|recreating|removing|releasing)\b", result.output), \
        result.output
    return result


def removed_all(buildout, prefix):
    buildout.ok("buildout:parts=")
    assert leftovers(prefix, buildout) == []
    assert objects_with_prefix(prefix) == []


def test_container_moves_to_new_network_and_volume_parts(buildout, prefix, base_image):
    first, second = subnets()
    buildout.configure(network("net", prefix + "-net", first) + volume("vol", prefix + "-vol")
                       + app(prefix, base_image, "net", "vol"))
    buildout.ok()
    docker("exec", prefix + "-app", "sh", "-c", "echo kept > /data/file")
    buildout.configure(network("net2", prefix + "-net2", second)
                       + volume("vol2", prefix + "-vol2") + app(prefix, base_image, "net2", "vol2"))

    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.stderr
    lines = [l.strip() for l in plan.output.splitlines()]
    order = [l for l in lines if l[:1] in "+~-"]
    # the order the run follows: make the new, recreate the user, then remove the old
    assert order == [
        "+ create network %s-net2: new part" % prefix,
        "+ create volume %s-vol2: new part" % prefix,
        "~ recreate container %s-app: option 'networks' changed; option 'volumes' changed"
        % prefix,
        "- remove volume %s-vol: part removed" % prefix,
        "- remove network %s-net: part removed" % prefix,
    ], plan.output

    result = buildout.ok()
    assert networks_of(prefix + "-app") == {prefix + "-net2"}
    assert volumes_of(prefix + "-app") == {prefix + "-vol2"}
    assert inspect("network", prefix + "-net") is None
    assert inspect("volume", prefix + "-vol") is None
    # the deferred removal is logged in the plan's format when the end of the run does it
    removing = "net: removing network %s-net because the part was removed\n" % prefix
    assert removing in result.output, result.output
    assert result.output.index(removing) > result.output.index(
        "recreating container %s-app" % prefix), result.output
    no_changes(buildout)
    removed_all(buildout, prefix)


def test_container_switches_build_parts(buildout, prefix, base_image):
    buildout.write("one/Dockerfile", DOCKERFILE % "one")
    buildout.write("two/Dockerfile", DOCKERFILE % "two")
    buildout.configure(build("img", prefix + "-one:1", base_image, "one")
                       + app(prefix, "${img:name}"))
    buildout.ok()
    old = inspect("image", prefix + "-one:1")["Id"]
    buildout.configure(build("img2", prefix + "-two:1", base_image, "two")
                       + app(prefix, "${img2:name}"))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.stderr
    order = [l.strip() for l in plan.output.splitlines() if l.strip()[:1] in "+~-?"]
    assert order[0] == "+ create image %s-two:1: new part" % prefix, plan.output
    assert order[1].startswith("~ recreate container %s-app: option 'image' changed" % prefix)
    assert order[2] == "- remove image %s-one:1: part removed" % prefix, plan.output

    buildout.ok()
    assert inspect("container", prefix + "-app")["Image"] == \
        inspect("image", prefix + "-two:1")["Id"]
    assert inspect("image", prefix + "-one:1") is None
    assert inspect("image", old) is None
    no_changes(buildout)
    removed_all(buildout, prefix)


def test_subnet_then_labels_change_under_managed_containers(buildout, prefix, base_image):
    first, second = subnets()
    net = prefix + "-net"

    def configure(subnet, labels=""):
        buildout.configure(network("net", net, subnet, labels)
                           + app(prefix, base_image, "net", name="web")
                           + app(prefix, base_image, "net", name="db"))
    configure(first)
    buildout.ok()
    before = {n: inspect("container", "%s-%s" % (prefix, n))["Id"] for n in ("web", "db")}

    configure(second)
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.stderr
    order = [l.strip() for l in plan.output.splitlines() if l.strip()[:1] in "+~-"]
    assert order[0].startswith("~ recreate network %s: addresses: has subnet=%s" % (net, first))
    assert order[1].startswith("~ recreate container %s-web: network %s is recreated (" % (
        prefix, net)), plan.output
    assert order[2].startswith("~ recreate container %s-db: network %s is recreated (" % (
        prefix, net)), plan.output
    result = buildout.ok()
    assert "releasing container %s-web because network %s is recreated" % (prefix, net) \
        in result.output
    assert inspect("network", net)["IPAM"]["Config"][0]["Subnet"] == second
    for name in ("web", "db"):
        obj = inspect("container", "%s-%s" % (prefix, name))
        assert obj["Id"] != before[name] and obj["State"]["Running"]
        assert set(obj["NetworkSettings"]["Networks"]) == {net}
        address = obj["NetworkSettings"]["Networks"][net]["IPAddress"]
        assert address.startswith(second.rsplit(".", 1)[0] + "."), address
    no_changes(buildout)

    # labels: applied (recreated), never "No changes"
    configure(second, "labels = tier=front")
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.output
    assert "No changes" not in plan.output
    assert "~ recreate network %s: labels: has {}, wants {'tier': 'front'}" % net in plan.output
    buildout.ok()
    assert inspect("network", net)["Labels"]["tier"] == "front"
    assert networks_of(prefix + "-web") == {net} and networks_of(prefix + "-db") == {net}
    no_changes(buildout)
    removed_all(buildout, prefix)


def test_network_used_by_a_container_of_no_part_is_refused(buildout, prefix, base_image):
    first, second = subnets()
    net = prefix + "-net"
    buildout.configure(network("net", net, first) + app(prefix, base_image, "net"))
    buildout.ok()
    docker("run", "-d", "--name", prefix + "-stranger", "--network", net, base_image,
           "sleep", "3600")
    # removing the part: refused before anything changes (the app stays too)
    buildout.configure(app(prefix, base_image).replace("[app]", "[other]").replace(
        "-app", "-other"))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 1, plan.output + plan.stderr
    assert "Part [net]: cannot remove network %s: used by container %s-stranger, which no " \
        "part of this buildout manages" % (net, prefix) in plan.stderr
    result = buildout.fails()
    assert "used by container %s-stranger, which no part of this buildout manages" % prefix \
        in result.output
    assert inspect("container", prefix + "-app") is not None     # nothing changed
    assert inspect("container", prefix + "-other") is None
    assert inspect("network", net) is not None
    # a subnet change under it: refused too
    buildout.configure(network("net", net, second) + app(prefix, base_image, "net"))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 1, plan.output + plan.stderr
    result = buildout.fails()
    assert "%s-stranger, which no part of this buildout manages" % prefix in result.output
    assert inspect("network", net)["IPAM"]["Config"][0]["Subnet"] == first
    docker("rm", "-f", prefix + "-stranger")
    buildout.ok()
    assert inspect("network", net)["IPAM"]["Config"][0]["Subnet"] == second
    removed_all(buildout, prefix)


@pytest.mark.podman_limit("volume size", "Podman's local volume driver takes o=size= as a "
                          "quota, which needs a filesystem with project quotas")
def test_volume_driver_options_change_needs_recreate(buildout, prefix, base_image):
    vol = prefix + "-vol"
    opts = "driver-opts =\n            type=tmpfs\n            device=tmpfs\n            o=size=%s"
    buildout.configure(volume("vol", vol, opts % "1m") + app(prefix, base_image, None, "vol"))
    buildout.ok()
    buildout.configure(volume("vol", vol, opts % "2m") + app(prefix, base_image, None, "vol"))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 1
    result = buildout.fails()
    assert "set recreate = true in [vol]" in result.output
    assert inspect("volume", vol)["Options"]["o"] == "size=1m"
    buildout.configure(volume("vol", vol, (opts % "2m") + "\n        recreate = true")
                       + app(prefix, base_image, None, "vol"))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.output + plan.stderr
    assert "~ recreate container %s-app: volume %s is recreated" % (prefix, vol) in plan.output
    buildout.ok()
    assert inspect("volume", vol)["Options"]["o"] == "size=2m"
    assert volumes_of(prefix + "-app") == {vol}
    assert inspect("container", prefix + "-app")["State"]["Running"]
    no_changes(buildout)
    removed_all(buildout, prefix)


def test_rebuild_whose_users_are_recreated_removes_the_old_image(buildout, prefix, base_image):
    """The old image of a rebuild whose only container the same plan
    recreates: a plain ``- remove``, listed last (done at the end of the
    run), not ``? maybe``; the run removes it."""
    buildout.write("ctx/Dockerfile", DOCKERFILE % "one")
    buildout.configure(build("img", prefix + "-img:1", base_image, "ctx")
                       + app(prefix, "${img:name}"))
    buildout.ok()
    old = inspect("image", prefix + "-img:1")["Id"]
    buildout.write("ctx/Dockerfile", DOCKERFILE % "two")
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.stderr
    order = [l.strip() for l in plan.output.splitlines() if l.strip()[:1] in "+~-?"]
    assert [l.split(":")[0] for l in order] == [
        "~ recreate image %s-img" % prefix, "~ recreate container %s-app" % prefix,
        "- remove image sha256"], plan.output
    assert order[2] == ("- remove image %s: replaced by the new build of %s-img:1, removed at "
                        "the end of the run (its users %s-app are recreated first)"
                        % (old, prefix, prefix)), plan.output
    assert "unknown" not in plan.output
    buildout.ok()
    assert inspect("image", old) is None
    assert inspect("container", prefix + "-app")["Image"] == inspect("image", prefix + "-img:1")["Id"]
    no_changes(buildout)
    removed_all(buildout, prefix)


def test_built_image_used_by_a_container_of_no_part_is_refused(buildout, prefix, base_image):
    """The image of a removed build part that a container no part manages uses: refused
    before anything changes, on Docker and on Podman (which tags it localhost/NAME)."""
    image = prefix + "-img:1"
    buildout.write("one/Dockerfile", DOCKERFILE % "one")
    buildout.configure(build("img", image, base_image, "one"))
    buildout.ok()
    docker("create", "--name", prefix + "-stranger", image, "true")
    result = buildout.uninstall_all()
    assert not result.ok, result.output
    assert "used by container %s-stranger, which no part of this buildout manages" % prefix \
        in result.error_line(), result.output
    assert inspect("image", image) is not None
    docker("rm", prefix + "-stranger")
    assert buildout.uninstall_all().ok
    assert inspect("image", image) is None


def started_at(text):
    """Docker's RFC 3339 time TEXT (nanoseconds, UTC) as seconds since the epoch."""
    import datetime
    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp() + float("0." + (fraction or "0"))


def spans_of(prefix, names, net):
    """(created, started) of the running containers PREFIX-NAME on NET, in order."""
    spans = []
    for n in names:
        obj = inspect("container", "%s-%s" % (prefix, n))
        assert obj["State"]["Running"] and set(obj["NetworkSettings"]["Networks"]) == {net}
        spans.append((started_at(obj["Created"]), started_at(obj["State"]["StartedAt"])))
    return sorted(spans)


def overlap(spans):
    """Whether one container was created before the one created before it started
    (made one after the other, each is created after the one before started)."""
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def test_users_of_a_recreated_network_whose_turn_passed_are_made_again_together(
        buildout, prefix, base_image):
    """A network recreated under 4 containers of parts that come first in
    ``parts`` (their turn has passed when the network's comes): they are
    made again together right after it (their ``docker run`` overlap in
    time), logged in the plan's order under their own parts.  (They were
    made one after the other.)"""
    first, second = subnets()
    net = prefix + "-net"
    names = ["a%d" % i for i in range(4)]
    users = "".join(app(prefix, base_image, name=n) + "        networks = %s\n" % net
                    for n in names)
    buildout.configure(network("net", net, first) + users)
    buildout.ok()
    buildout.configure(users + network("net", net, second))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.stderr
    order = [l.strip().split(":")[0] for l in plan.output.splitlines() if l.strip()[:1] in "+~-"]
    assert order == ["~ recreate network %s" % net] + [
        "~ recreate container %s-%s" % (prefix, n) for n in names], plan.output
    result = buildout.ok()
    spans = spans_of(prefix, names, net)
    assert overlap(spans), (spans, result.output)
    lines = [l for l in result.output.splitlines() if "recreating " in l]
    assert [l.split(":")[0] for l in lines] == ["net"] + names, result.output
    assert result.output.count("recreating container") == len(names), result.output
    no_changes(buildout)
    removed_all(buildout, prefix)


def test_users_of_a_recreated_network_are_made_again_right_after_it(
        buildout, prefix, base_image):
    """A network recreated under 4 containers of later parts, a volume part
    between: they are made again together at the network's turn, not at
    the turn of the first of them (creation ahead), logged in the plan's
    order under their own parts; their own turns then find them as they
    describe (no second recreation)."""
    first, second = subnets()
    net = prefix + "-net"
    names = ["a%d" % i for i in range(4)]

    def configure(subnet):
        buildout.configure(network("net", net, subnet) + volume("vol", prefix + "-vol")
                           + "".join(app(prefix, base_image, "net", name=n) for n in names))
    configure(first)
    buildout.ok()
    configure(second)
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 2, plan.stderr
    order = [l.strip().split(":")[0] for l in plan.output.splitlines() if l.strip()[:1] in "+~-"]
    assert order == ["~ recreate network %s" % net] + [
        "~ recreate container %s-%s" % (prefix, n) for n in names], plan.output
    result = buildout.ok()
    assert overlap(spans_of(prefix, names, net)), result.output
    lines = [l for l in result.output.splitlines() if "recreating container" in l]
    assert [l.split(":")[0] for l in lines] == names, result.output
    # made at the network's turn, before buildout reached the next part
    turn = result.output.index("Updating vol.")
    assert all(result.output.index(l) < turn for l in lines), result.output
    assert result.output.count("recreating container") == len(names), result.output
    no_changes(buildout)
    removed_all(buildout, prefix)


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failed_remake_is_raised_under_its_part(buildout, prefix, base_image):
    """Two users of a recreated network made again together, one of which
    cannot start (both publish the same host port): the other is made, the
    run fails naming the part that failed, its container is not left
    half-made (created, not started), and a plain run of a configuration
    that works converges."""
    first, second = subnets()
    net = prefix + "-net"
    ports = "        ports = 127.0.0.1:%d:80\n" % free_port()

    def configure(subnet, published):
        buildout.configure(network("net", net, subnet) + "".join(
            app(prefix, base_image, "net", name=name) + (ports if name in published else "")
            for name in ("web", "db")))
    configure(first, ["web"])
    buildout.ok()
    configure(second, ["web", "db"])
    result = buildout.fails()
    failed = re.search(r"Part \[(web|db)\]", result.error_line())
    assert failed, result.output
    other = {"web": "db", "db": "web"}[failed.group(1)]
    assert inspect("container", "%s-%s" % (prefix, failed.group(1))) is None, result.output
    assert inspect("container", "%s-%s" % (prefix, other))["State"]["Running"], result.output
    configure(second, [other])  # the one that got the port keeps it
    buildout.ok()
    for name in ("web", "db"):
        obj = inspect("container", "%s-%s" % (prefix, name))
        assert obj["State"]["Running"] and set(obj["NetworkSettings"]["Networks"]) == {net}
    no_changes(buildout)
    removed_all(buildout, prefix)
