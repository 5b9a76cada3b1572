"""``dockeroo plan`` against the real engine: the plan is what the run does
(tests/support/plan_exact.py), on docker.volume (and docker.network, planned
as a whole part until its recipe plans)."""

from conftest import docker, free_subnet, inspect
from support.plan_exact import assert_plan_matches_run, plan_of


def configure(buildout, prefix, volume="data", keep=False, network=True, subnet=None):
    text = """
        [vol]
        recipe = dockeroo:docker.volume
        name = %s-%s
        %s
        """ % (prefix, volume, "keep = true" if keep else "")
    if network:
        text += """
        [net]
        recipe = dockeroo:docker.network
        name = %s-net
        subnet = %s
        """ % (prefix, subnet)
    buildout.configure(text)


def verbs(actions):
    return {(a["part"], a["kind"], a["name"]): a["action"] for a in actions}


def test_plan_matches_run_volume_and_network(buildout, prefix, docker_recorder):
    subnet = free_subnet()
    vol = prefix + "-data"
    configure(buildout, prefix, subnet=subnet)

    # first install: the volume is created; the network part cannot plan yet
    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert verbs(exact.plan)[("vol", "volume", vol)] == "create"
    assert exact.effects[("volume", vol)] == {"create"}
    # the real run logs the action with the plan's reasons
    assert "vol: creating volume %s because the part is new" % vol in exact.run.output
    net = [a for a in exact.plan if a["part"] == "net"]
    assert net and all(a["action"] in ("create", "maybe") for a in net), net
    assert inspect("volume", vol) is not None and inspect("network", prefix + "-net") is not None

    # nothing changed: the volume is left alone, nothing is made
    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert verbs(exact.plan)[("vol", "volume", vol)] == "unchanged"
    assert ("volume", vol) not in exact.effects

    # removed by hand: repaired
    docker("volume", "rm", vol)
    exact = assert_plan_matches_run(buildout, docker_recorder)
    act = [a for a in exact.plan if a["name"] == vol][0]
    assert act["action"] == "repair" and "removed by hand" in act["reasons"][0], act
    assert "vol: repairing volume %s because volume %s is missing (removed by hand?)" % (
        vol, vol) in exact.run.output
    assert inspect("volume", vol) is not None

    # renamed: the new volume is created, the old one removed at the end of the run
    configure(buildout, prefix, volume="data2", subnet=subnet)
    exact = assert_plan_matches_run(buildout, docker_recorder)
    plan = verbs(exact.plan)
    assert plan[("vol", "volume", prefix + "-data2")] == "create"
    assert plan[("vol", "volume", vol)] == "remove"
    old = [a for a in exact.plan if a["name"] == vol][0]
    assert old["reasons"] == ["replaced by volume %s-data2" % prefix], old
    assert inspect("volume", vol) is None

    # the parts removed: what they made is removed
    exact = assert_plan_matches_run(buildout, docker_recorder, "buildout:parts=")
    plan = verbs(exact.plan)
    assert plan[("vol", "volume", prefix + "-data2")] == "remove"
    assert plan[("net", "network", prefix + "-net")] == "remove"
    assert inspect("volume", prefix + "-data2") is None
    assert inspect("network", prefix + "-net") is None


def test_plan_keep_leaves_volume(buildout, prefix, docker_recorder):
    vol = prefix + "-kept"
    configure(buildout, prefix, volume="kept", keep=True, network=False)
    buildout.ok()
    exact = assert_plan_matches_run(buildout, docker_recorder, "buildout:parts=")
    act = [a for a in exact.plan if a["name"] == vol][0]
    assert act["action"] == "unchanged" and act["reasons"] == ["keep = true: left in place"], act
    assert exact.code == 0
    assert inspect("volume", vol) is not None
    docker("volume", "rm", vol)


def test_plan_not_ours_is_left(buildout, prefix, docker_recorder):
    vol = prefix + "-data"
    configure(buildout, prefix, network=False)
    buildout.ok()
    # the volume is replaced by hand with one this part did not make
    docker("volume", "rm", vol)
    docker("volume", "create", vol)
    exact = assert_plan_matches_run(buildout, docker_recorder, "buildout:parts=")
    act = [a for a in exact.plan if a["name"] == vol][0]
    assert act["action"] == "unchanged" and act["reasons"] == ["not created by this part"], act
    assert inspect("volume", vol) is not None
    code, _ = plan_of(buildout, "buildout:parts=")
    assert code == 0
