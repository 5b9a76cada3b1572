"""docker.network's plan against what the real run does (issue 9's exactness battery).

Each situation runs ``bin/buildout`` with the ``docker_recorder``: the
actions the run logs (``net: recreating network N because ...``, the
plan's verbs and reasons) must be exactly what its recorded mutating
docker commands did to each network, and what Docker holds afterwards.
"""

import re

import pytest

from conftest import docker, free_subnet, inspect

ACTION = re.compile(r"^(?P<part>[\w.-]+): (?P<doing>creating|recreating|updating|removing|"
                    r"repairing|checking) (?P<kind>\w+) (?P<name>\S+)(?: because (?P<why>.*))?$",
                    re.M)
DOING = {"creating": "create", "recreating": "recreate", "updating": "update",
         "removing": "remove", "repairing": "repair", "checking": "maybe"}


def logged(result):
    """(part, verb, kind, name, reasons) of the actions a real run logged."""
    return [(m["part"], DOING[m["doing"]], m["kind"], m["name"], m["why"] or "")
            for m in ACTION.finditer(result.output)]


def network_commands(recorder):
    """The mutating ``docker network`` commands of a run: [(verb, name)]."""
    out = []
    for argv in recorder.commands("network"):
        if argv[1] in ("create", "rm"):
            out.append((argv[1], argv[-1]))
    return out


def verbs_of(commands, name):
    """What the commands did to network NAME, as a plan verb."""
    done = [verb for verb, n in commands if n == name]
    return {(): "unchanged", ("create",): "create", ("rm", "create"): "recreate",
            ("rm",): "remove"}.get(tuple(done), repr(done))


PART = """
    [net]
    recipe = dockeroo:docker.network
    name = %(name)s
    subnet = %(subnet)s
    labels =
        tier=back
    %(extra)s
    """


@pytest.fixture
def configure(buildout, prefix):
    def write(name=None, subnet=None, extra="", parts=None):
        values = {"name": name or prefix + "-net", "subnet": subnet, "extra": extra}
        buildout.configure(PART % values, parts=parts)
    return write


def run(buildout, recorder):
    recorder.clear()
    result = buildout.ok(env=recorder.env)
    return result, network_commands(recorder)


def test_network_plan_matches_the_run(buildout, prefix, configure, docker_recorder):
    name = prefix + "-net"
    first = free_subnet()
    configure(subnet=first)
    result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "create", "network", name, "new part")]
    assert verbs_of(commands, name) == "create"

    # nothing changed: no action, no mutating command
    result, commands = run(buildout, docker_recorder)
    assert logged(result) == [] and commands == [], result.output

    # an option changed (subnet): recreated, the difference is the reason
    second = free_subnet(avoid=[first])
    configure(subnet=second)
    result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "recreate", "network", name, "addresses: has subnet=%s, "
                               "wants subnet=%s" % (first, second))]
    assert verbs_of(commands, name) == "recreate"
    assert inspect("network", name)["IPAM"]["Config"][0]["Subnet"] == str(second)

    # removed by hand: repaired
    docker("network", "rm", name)
    result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "repair", "network", name,
                               "network %s is missing (removed by hand?)" % name)]
    assert verbs_of(commands, name) == "create"
    assert inspect("network", name) is not None

    # renamed (the old one still holds its subnet until the new one exists): the
    # new one is created, the old one removed after it exists
    renamed = prefix + "-net2"
    configure(name=renamed, subnet=free_subnet(avoid=[first, second]))
    result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "create", "network", renamed,
                               "option 'name' changed (was %s)" % name)]
    assert verbs_of(commands, renamed) == "create" and verbs_of(commands, name) == "remove"
    assert inspect("network", name) is None and inspect("network", renamed) is not None
    assert commands.index(("create", renamed)) < commands.index(("rm", name))

    # the part removed: its network is removed
    buildout.configure("[other]\nrecipe = dockeroo:docker.volume\nname = %s-vol\n" % prefix)
    result, commands = run(buildout, docker_recorder)
    assert verbs_of(commands, renamed) == "remove"
    assert inspect("network", renamed) is None


def test_keep_leaves_the_network_of_a_removed_part(buildout, prefix, configure, docker_recorder):
    name = prefix + "-kept"
    configure(name=name, subnet=free_subnet(), extra="keep = true")
    run(buildout, docker_recorder)
    # keep is not part of what the network is: nothing to do
    configure(name=name, subnet=inspect("network", name)["IPAM"]["Config"][0]["Subnet"])
    result, commands = run(buildout, docker_recorder)
    assert logged(result) == [] and commands == [], result.output
    configure(name=name, subnet=inspect("network", name)["IPAM"]["Config"][0]["Subnet"],
              extra="keep = true")
    run(buildout, docker_recorder)
    buildout.configure("[other]\nrecipe = dockeroo:docker.volume\nname = %s-vol\n" % prefix)
    result, commands = run(buildout, docker_recorder)
    assert commands == [], result.output
    assert "keep = true: leaving network %s" % name in result.output
    assert inspect("network", name) is not None
    docker("network", "rm", name)


def test_labels_of_an_attached_network_are_kept_with_the_reason(buildout, prefix, configure,
                                                                 docker_recorder, base_image):
    name = prefix + "-lbl"
    subnet = free_subnet()
    configure(name=name, subnet=subnet)
    run(buildout, docker_recorder)
    docker("create", "--name", prefix + "-user", "--network", name, base_image, "true")
    buildout.configure((PART % {"name": name, "subnet": subnet, "extra": ""}).replace(
        "tier=back", "tier=front"))
    result, commands = run(buildout, docker_recorder)
    assert commands == [] and logged(result) == [], result.output
    assert "it keeps its old labels (labels cannot change while container(s) %s-user are " \
           "attached)" % prefix in result.output
    assert inspect("network", name)["Labels"]["tier"] == "back"
    docker("rm", prefix + "-user")
