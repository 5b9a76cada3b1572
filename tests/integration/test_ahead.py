"""Creation ahead (dockeroo.runtime.ahead): the simple objects of the parts after the
one installing are made in parallel; what a failure or interrupt leaves is
undone; the order a script sees is kept.  Kills during it are swept in
test_faults.py (scenario "ahead")."""

import datetime
import re

from support.engine import docker, free_subnet, inspect, subnet_taken


def parts(prefix, subnet, apps=3, extra=""):
    text = """
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        subnet = %(subnet)s

        [vol]
        recipe = dockeroo:docker.volume
        name = %(p)s-vol
        %(extra)s
        """ % {"p": prefix, "subnet": subnet, "extra": extra}
    return text + containers(prefix, apps, "${net:name}", "${vol:name}")


def containers(prefix, apps, network, volume):
    """The parts app0... of APPS containers on NETWORK with VOLUME at /data."""
    return "".join("""
        [app%(i)d]
        recipe = dockeroo:docker.run
        name = %(p)s-app%(i)d
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0
        networks = %(network)s
        volumes = %(volume)s:/data
        """ % {"p": prefix, "i": i, "network": network, "volume": volume}
                   for i in range(apps))


def configure(buildout, base_image, text):
    buildout.configure(text)
    with open(buildout.path("buildout.cfg")) as handle:
        content = handle.read().replace("[buildout]\n", "[buildout]\nbase = %s\n" % base_image, 1)
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write(content)


def made_ahead(output):
    """How many parts the run made ahead (its "made ahead of their parts: ..." lines)."""
    return sum(len(m.split(", ")) for m in re.findall(r"made ahead of their parts: (.*)", output))


def names(prefix):
    return sorted(docker("ps", "-a", "--filter", "name=" + prefix,
                         "--format", "{{.Names}}").split())


def when(text):
    """A time Docker prints (RFC 3339, nanoseconds) as a datetime (microseconds)."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?", text)
    return datetime.datetime.fromisoformat(
        found.group(1) + "." + ((found.group(2) or "") + "000000")[:6])


def started_at(name):
    return when(inspect("container", name)["State"]["StartedAt"])


def test_first_apply_makes_the_later_parts_ahead(buildout, prefix, base_image):
    configure(buildout, base_image, parts(prefix, free_subnet()))
    result = buildout.ok()
    assert made_ahead(result.output) == 5, result.output
    for i in range(3):
        obj = inspect("container", "%s-app%d" % (prefix, i))
        assert obj["State"]["Running"]
        assert list(obj["NetworkSettings"]["Networks"]) == [prefix + "-net"]
        assert [m["Name"] for m in obj["Mounts"]] == [prefix + "-vol"]
    assert "[app2]" in buildout.installed()
    again = buildout.ok()  # each part found its object complete: nothing is made again
    assert "Created" not in again.output and "Creating" not in again.output, again.output
    buildout.uninstall_all()
    assert names(prefix) == []
    assert inspect("network", prefix + "-net") is None
    assert inspect("volume", prefix + "-vol") is None


def test_containers_listed_before_the_network_and_volume_they_name(buildout, prefix,
                                                                    base_image):
    # the containers name the network and volume literally, their parts first in parts:
    # the network and the volume are made first (each part's own install would fail:
    # "network ... does not exist"), the containers once they exist
    text = containers(prefix, 2, prefix + "-net", prefix + "-vol")
    text += """
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        subnet = %(subnet)s

        [vol]
        recipe = dockeroo:docker.volume
        name = %(p)s-vol
        """ % {"p": prefix, "subnet": free_subnet()}
    configure(buildout, base_image, text)
    result = buildout.ok()
    assert made_ahead(result.output) == 4, result.output
    network = inspect("network", prefix + "-net")
    for i in range(2):
        obj = inspect("container", "%s-app%d" % (prefix, i))
        assert obj["State"]["Running"]
        assert list(obj["NetworkSettings"]["Networks"]) == [prefix + "-net"]
        assert [m["Name"] for m in obj["Mounts"]] == [prefix + "-vol"]
        assert when(network["Created"]) < when(obj["Created"])
    again = buildout.ok()
    assert "Created" not in again.output and "Creating" not in again.output, again.output
    buildout.uninstall_all()
    assert names(prefix) == [] and inspect("network", prefix + "-net") is None
    assert inspect("volume", prefix + "-vol") is None


def installed_then_all_removed(buildout, prefix):
    """Install the configured buildout, then remove every part; the output of
    the removal, once nothing of the prefix is left."""
    buildout.ok()
    out = buildout.ok("buildout:parts=").output
    assert names(prefix) == [], out
    assert inspect("network", prefix + "-net") is None
    assert inspect("volume", prefix + "-vol") is None
    return out


def test_teardown_removes_volumes_and_networks_with_the_containers(buildout, prefix,
                                                                  base_image):
    """Everything removed (parts =): the first uninstall (app2) stops and
    removes the three containers together, then the volume and the network
    at once; the volume's and the network's own uninstalls find them gone."""
    configure(buildout, base_image, parts(prefix, free_subnet()))
    out = installed_then_all_removed(buildout, prefix)
    assert out.index("Uninstalling app2.") < out.index("vol: Removed volume") \
        < out.index("Uninstalling vol."), out
    assert out.index("net: Removed network") < out.index("Uninstalling vol."), out
    assert "[vol]" not in buildout.installed() and "[net]" not in buildout.installed()
    # each removal's Action line once, under its part, before it is done
    for part, kind in (("app0", "container"), ("app1", "container"), ("app2", "container"),
                       ("vol", "volume"), ("net", "network")):
        doing = "%s: removing %s " % (part, kind)
        assert out.count(doing) == 1, out
        assert out.index(doing) < out.index("%s: Removed %s" % (part, kind)), out


def test_teardown_together_leaves_a_network_in_use_to_its_part(buildout, prefix, base_image):
    """A container the buildout did not make is on the network: the run is
    refused before anything changes (issue 18's executor), naming that
    container; once it is gone, the teardown removes everything."""
    configure(buildout, base_image, parts(prefix, free_subnet(), apps=1))
    buildout.ok()
    docker("run", "-d", "--name", prefix + "-outsider", "--network", prefix + "-net",
           base_image, "sleep", "3600")
    try:
        result = buildout.fails("buildout:parts=")
        assert prefix + "-outsider" in result.error_line(), result.output
        assert "Part [net]" in result.error_line(), result.output
        assert inspect("volume", prefix + "-vol") is not None
        assert inspect("network", prefix + "-net") is not None
        assert inspect("container", prefix + "-app0") is not None
    finally:
        docker("rm", "-f", prefix + "-outsider", check=False)
    buildout.ok("buildout:parts=")
    assert inspect("network", prefix + "-net") is None


def test_teardown_together_stops_at_a_part_of_another_recipe(buildout, prefix, base_image):
    """A part of another recipe uninstalled between the containers and the
    volume: the volume and the network are still there when its uninstall
    runs, and are removed after it (together, at the volume's uninstall)."""
    text = parts(prefix, free_subnet()) + """
        [mid]
        recipe = zc.buildout:debug
        """
    configure(buildout, base_image, text)
    with open(buildout.path("buildout.cfg")) as handle:
        content = handle.read()
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write(content.replace("parts = net vol app0", "parts = net vol mid app0"))
    out = installed_then_all_removed(buildout, prefix)
    # the volume and the network are removed in parallel: either may be logged first
    for removed in ("vol: Removed volume", "net: Removed network"):
        assert out.index("app0: Removed container") < out.index("Uninstalling mid.") \
            < out.index(removed) < out.index("Uninstalling net."), out


def test_an_earlier_failure_removes_what_was_made_ahead(buildout, prefix, base_image):
    """The network part fails (its subnet is taken) after the volume and the
    containers of the later parts were made ahead: the containers are
    removed at exit, buildout reports the network's own error, and the
    volume (its part installed before the failure) stays."""
    taken = str(free_subnet())
    docker("network", "create", "--subnet", taken, prefix + "-taken")
    try:
        text = parts(prefix, taken).replace("        networks = ${net:name}\n", "")
        configure(buildout, base_image, text)
        with open(buildout.path("buildout.cfg")) as handle:
            content = handle.read()
        content = content.replace("parts = net vol", "parts = vol net")
        with open(buildout.path("buildout.cfg"), "w") as handle:
            handle.write(content)
        result = buildout.fails()
        assert made_ahead(result.output) == 4, result.output
        assert "Part [net]" in result.error_line(), result.output
        assert subnet_taken(result.error_line()), result.output
        assert names(prefix) == [], result.output
        assert inspect("network", prefix + "-net") is None
        assert inspect("volume", prefix + "-vol") is not None
        # fixed: everything comes up
        with open(buildout.path("buildout.cfg"), "w") as handle:
            handle.write(content.replace(taken, str(free_subnet())))
        buildout.ok()
        assert names(prefix) == [prefix + "-app%d" % i for i in range(3)]
    finally:
        buildout.uninstall_all()
        docker("network", "rm", prefix + "-taken", check=False)
    assert names(prefix) == []
    assert inspect("volume", prefix + "-vol") is None


def test_containers_after_a_script_part_start_after_its_script(buildout, prefix, base_image):
    """A part with a script ends the window: the container of the part after
    it starts only once the script has run (2 s)."""
    configure(buildout, base_image, """
        [first]
        recipe = dockeroo:docker.run
        name = %(p)s-first
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0

        [scripted]
        recipe = dockeroo:docker.run
        name = %(p)s-scripted
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0
        script = sleep 2

        [after]
        recipe = dockeroo:docker.run
        name = %(p)s-after
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0

        [last]
        recipe = dockeroo:docker.run
        name = %(p)s-last
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0
        """ % {"p": prefix})
    result = buildout.ok()
    scripted = started_at(prefix + "-scripted")
    assert started_at(prefix + "-first") <= scripted
    for name in ("after", "last"):
        assert (started_at("%s-%s" % (prefix, name)) - scripted).total_seconds() >= 1.9
    assert made_ahead(result.output) == 2, result.output  # after, last


# -- recreations stopped together ----------------------------------------------------------
def test_recreated_containers_are_stopped_together(buildout, prefix, base_image):
    """The running containers that the run recreates, in consecutive docker.run
    parts, are stopped in one docker stop (one wait of stop-timeout, not one per
    part); each is then made again in its turn."""
    text = parts(prefix, free_subnet()).replace("stop-timeout = 0", "stop-timeout = 2")
    configure(buildout, base_image, text)
    buildout.ok()
    configure(buildout, base_image, text.replace("sleep 3600", "sleep 3601"))
    result = buildout.ok()
    waits = [l for l in result.output.splitlines() if "to stop (stop-timeout)" in l]
    assert waits == ["app0: Waiting up to 2 s for %s to stop (stop-timeout)" % ", ".join(
        "%s-app%d" % (prefix, i) for i in range(3))], result.output
    for i in range(3):
        obj = inspect("container", "%s-app%d" % (prefix, i))
        assert obj["State"]["Running"] and obj["Config"]["Cmd"] == ["sleep", "3601"]
    assert names(prefix) == ["%s-app%d" % (prefix, i) for i in range(3)]
    assert "Waiting" not in buildout.ok().output  # nothing to recreate


def test_containers_stopped_together_run_again_when_a_recreation_fails(buildout, prefix,
                                                                      base_image):
    """A recreation that fails puts its old container back, running; the later
    parts' containers stopped ahead are started again at exit."""
    text = parts(prefix, free_subnet()).replace("stop-timeout = 0", "stop-timeout = 1")
    configure(buildout, base_image, text)
    buildout.ok()
    changed = text.replace("sleep 3600", "sleep 3601").replace(
        "name = %s-app1\n        image = ${buildout:base}\n        command = sleep 3601" % prefix,
        "name = %s-app1\n        image = ${buildout:base}\n        command = /no/such/command"
        % prefix)
    assert "/no/such/command" in changed
    configure(buildout, base_image, changed)
    result = buildout.fails()
    assert "Waiting up to 1 s for %s-app0, %s-app1, %s-app2 to stop" % ((prefix,) * 3) \
        in result.output, result.output
    commands = {i: inspect("container", "%s-app%d" % (prefix, i))["Config"]["Cmd"]
                for i in range(3)}
    assert commands == {0: ["sleep", "3601"], 1: ["sleep", "3600"], 2: ["sleep", "3600"]}
    for i in range(3):
        assert inspect("container", "%s-app%d" % (prefix, i))["State"]["Running"], i
    assert names(prefix) == ["%s-app%d" % (prefix, i) for i in range(3)]
