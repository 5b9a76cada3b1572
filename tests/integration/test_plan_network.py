"""docker.network's plan against what the real run does (issue 9's exactness battery).

Each situation is planned with ``dockeroo plan`` and then run with
``bin/buildout`` under the ``docker_recorder``
(``support.plan_exact.assert_plan_matches_run``: the plan started only
read-only commands, and each object's verb is what the run's recorded
docker commands did to it); the actions the run logs (``net: recreating
network N because ...``) are the plan's, with the same reasons, and Docker
holds what they say.
"""


import pytest

from support.engine import docker, free_subnet, inspect
from support import plan_exact
from support.plan_exact import assert_plan_matches_run

def logged(result):
    """(part, verb, kind, name, reasons) of the actions a real run logged."""
    return plan_exact.logged(result.output)


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


def run(buildout, recorder, *args):
    """Plan, run (checked by the harness); the run's result and network commands,
    after checking that the run logged the plan's actions with their reasons."""
    exact = assert_plan_matches_run(buildout, recorder, *args)
    planned = [(a["part"], a["action"], a["kind"], a["name"], "; ".join(a["reasons"]))
               for a in exact.plan if a["kind"] == "network" and a["action"] != "unchanged"]
    assert [(p, v, k, n) for p, v, k, n, _ in logged(exact.run) if k == "network"] == \
        [(p, v, k, n) for p, v, k, n, _ in planned], exact.run.output
    commands = [(argv[1], argv[-1]) for argv in exact.run_calls
                if argv[:1] == ["network"] and argv[1] in ("create", "rm")]
    return exact, exact.run, commands


def planned(exact, name):
    """(verb, reasons) of the plan for network NAME."""
    return [(a["action"], "; ".join(a["reasons"])) for a in exact.plan
            if a["kind"] == "network" and a["name"] == name]


def test_network_plan_matches_the_run(buildout, prefix, configure, docker_recorder):
    name = prefix + "-net"
    first = free_subnet()
    configure(subnet=first)
    exact, result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "create", "network", name, "the part is new")]
    assert planned(exact, name) == [("create", "new part")] and exact.code == 2
    assert verbs_of(commands, name) == "create"

    # nothing changed: no action, no mutating command
    exact, result, commands = run(buildout, docker_recorder)
    assert logged(result) == [] and commands == [], result.output
    assert planned(exact, name) == [("unchanged", "")] and exact.code == 0

    # an option changed (subnet): recreated, the difference is the reason
    second = free_subnet(avoid=[first])
    configure(subnet=second)
    exact, result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "recreate", "network", name, "addresses: has subnet=%s, "
                               "wants subnet=%s" % (first, second))]
    assert planned(exact, name) == [("recreate", "addresses: has subnet=%s, wants subnet=%s"
                                      % (first, second))]
    assert verbs_of(commands, name) == "recreate"
    assert inspect("network", name)["IPAM"]["Config"][0]["Subnet"] == str(second)

    # removed by hand: repaired
    docker("network", "rm", name)
    exact, result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "repair", "network", name,
                               "network %s is missing (removed by hand?)" % name)]
    assert planned(exact, name) == [("repair", "network %s is missing (removed by hand?)" % name)]
    assert verbs_of(commands, name) == "create"
    assert inspect("network", name) is not None

    # renamed (the old one still holds its subnet until the new one exists): the
    # new one is created, the old one removed after it exists
    renamed = prefix + "-net2"
    configure(name=renamed, subnet=free_subnet(avoid=[first, second]))
    exact, result, commands = run(buildout, docker_recorder)
    assert logged(result) == [("net", "create", "network", renamed,
                               "option 'name' changed (was %s)" % name),
                              ("net", "remove", "network", name,
                               "replaced by network %s" % renamed)]
    assert planned(exact, name) == [("remove", "replaced by network %s" % renamed)]
    assert verbs_of(commands, renamed) == "create" and verbs_of(commands, name) == "remove"
    assert inspect("network", name) is None and inspect("network", renamed) is not None
    assert commands.index(("create", renamed)) < commands.index(("rm", name))

    # the part removed: its network is removed
    buildout.configure("[other]\nrecipe = dockeroo:docker.volume\nname = %s-vol\n" % prefix)
    exact, result, commands = run(buildout, docker_recorder)
    assert [verb for verb, _why in planned(exact, renamed)] == ["remove"]
    assert verbs_of(commands, renamed) == "remove"
    assert inspect("network", renamed) is None


def test_keep_leaves_the_network_of_a_removed_part(buildout, prefix, configure, docker_recorder):
    name = prefix + "-kept"
    configure(name=name, subnet=free_subnet(), extra="keep = true")
    run(buildout, docker_recorder)
    # keep is not part of what the network is: nothing to do
    configure(name=name, subnet=inspect("network", name)["IPAM"]["Config"][0]["Subnet"])
    exact, result, commands = run(buildout, docker_recorder)
    assert logged(result) == [] and commands == [], result.output
    configure(name=name, subnet=inspect("network", name)["IPAM"]["Config"][0]["Subnet"],
              extra="keep = true")
    run(buildout, docker_recorder)
    buildout.configure("[other]\nrecipe = dockeroo:docker.volume\nname = %s-vol\n" % prefix)
    exact, result, commands = run(buildout, docker_recorder)
    assert commands == [], result.output
    assert planned(exact, name) == [("unchanged", "keep = true: left in place")]
    assert "keep = true: leaving network %s" % name in result.output
    assert inspect("network", name) is not None
    docker("network", "rm", name)


def test_labels_of_a_network_a_container_of_no_part_uses_are_refused(
        buildout, prefix, configure, docker_recorder, base_image):
    """Issue 18: a label change needs the network recreated.  Under a
    container no part manages, the plan and the run refuse it (exit 1,
    naming the container), before anything changes; never "No changes".
    Once that container is gone, one run applies the labels."""
    from support.plan_exact import plan_of
    name = prefix + "-lbl"
    subnet = free_subnet()
    configure(name=name, subnet=subnet)
    run(buildout, docker_recorder)
    docker("create", "--name", prefix + "-user", "--network", name, base_image, "true")
    buildout.configure((PART % {"name": name, "subnet": subnet, "extra": ""}).replace(
        "tier=back", "tier=front"))
    plan = plan_of(buildout, json_output=False)
    assert plan.code == 1, plan.output + plan.stderr
    assert "No changes" not in plan.output
    refusal = ("Part [net]: cannot recreate network %s: used by container %s-user, which no "
               "part of this buildout manages" % (name, prefix))
    assert refusal in plan.stderr
    result = buildout.fails()
    assert refusal in result.output
    assert inspect("network", name)["Labels"]["tier"] == "back"
    docker("rm", prefix + "-user")
    exact, result, commands = run(buildout, docker_recorder)
    assert commands == [("rm", name), ("create", name)], result.output
    assert inspect("network", name)["Labels"]["tier"] == "front"
