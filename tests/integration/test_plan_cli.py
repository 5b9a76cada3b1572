"""``dockeroo plan`` against the real engine: the plan is what the run does
(tests/support/plan_exact.py), on docker.volume (and docker.network, planned
as a whole part until its recipe plans)."""

from support.engine import docker, free_subnet, inspect
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


def replaced_image(buildout, prefix, base_image):
    """After a first run of the volume buildout: an untagged image labelled as
    the volume part's, recorded in its pending records as replaced earlier.
    Returns (owner, image id)."""
    import json
    import os
    from dockeroo.model.ownership import owner_id
    configure(buildout, prefix, network=False)
    buildout.ok()
    owner = owner_id(buildout.directory)
    labels = ["--label", "io.dockeroo.part=vol", "--label", "io.dockeroo.buildout=" + owner]
    ctx = buildout.write("old/Dockerfile", "FROM %s\nRUN echo %s > /old\n" % (base_image, prefix))
    image = docker("build", "-q", *labels, os.path.dirname(ctx)).strip()  # untagged
    folder = buildout.path("parts", ".dockeroo", "pending")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vol.json"), "w") as handle:
        json.dump([{"image": image, "engine": {}, "owner": owner}], handle)
    return owner, image


def test_plan_shows_pending_removals(buildout, prefix, base_image, docker_recorder):
    """What earlier runs left to remove (parts/.dockeroo/pending): a replaced
    image, and the volume of a part an interrupted run left behind."""
    import json
    owner, image = replaced_image(buildout, prefix, base_image)
    gone = prefix + "-gone"
    docker("volume", "create", "--label", "io.dockeroo.part=gone", "--label",
           "io.dockeroo.buildout=" + owner, gone)
    with open(buildout.path("parts", ".dockeroo", "pending", "gone.json"), "w") as handle:
        json.dump([{"options": {"recipe": "dockeroo:docker.volume", "name": gone,
                                "dockeroo-owner": owner}}], handle)
    try:
        exact = assert_plan_matches_run(buildout, docker_recorder)
        plan = {(a["kind"], a["name"]): a for a in exact.plan}
        assert plan[("image", image)]["action"] == "remove", exact.plan
        assert "replaced earlier" in plan[("image", image)]["reasons"][0]
        assert plan[("volume", gone)]["action"] == "remove", exact.plan
        assert exact.code == 2
        assert inspect("image", image) is None and inspect("volume", gone) is None
        code, actions = plan_of(buildout)
        assert code == 0, actions
    finally:
        docker("image", "rm", image, check=False)
        docker("volume", "rm", gone, check=False)


def test_plan_names_the_containers_keeping_a_replaced_image(buildout, prefix, base_image):
    """A replaced image a container still uses: ``maybe``, naming the
    container (by name, as every other "used by" message)."""
    _owner, image = replaced_image(buildout, prefix, base_image)
    user = prefix + "-user"
    try:
        docker("create", "--name", user, image, "true")
        code, actions = plan_of(buildout)
        plan = {(a["kind"], a["name"]): a for a in actions}
        assert code == 2 and plan[("image", image)]["action"] == "maybe", actions
        assert plan[("image", image)]["reasons"][0].endswith("(used now by %s)" % user)
        assert inspect("image", image) is not None  # plan removed nothing
    finally:
        docker("rm", "-f", user, check=False)
        docker("image", "rm", image, check=False)


def test_plan_on_the_demo_buildout(buildout, prefix, docker_recorder):
    """The repository's demo buildout.cfg (its names and subnet overridden,
    as tests/integration/test_demo.py does): planned, then run, then planned
    again; a change of the build arguments is planned too."""
    import os
    import shutil
    from support.buildout import HERE
    repo = os.path.dirname(HERE)
    shutil.copy(os.path.join(repo, "buildout.cfg"), buildout.path("buildout.cfg"))
    shutil.copytree(os.path.join(repo, "demo"), buildout.path("demo"))
    net = free_subnet()
    overrides = ["demo-network:name=%s-net" % prefix, "demo-network:subnet=%s" % net,
                 "demo-network:gateway=%s" % next(net.hosts()),
                 "demo-volume:name=%s-data" % prefix, "demo-image:name=%s-demo:latest" % prefix]
    first = assert_plan_matches_run(buildout, docker_recorder, *overrides)
    assert first.code == 2
    assert {a["part"] for a in first.plan} == {"demo-network", "demo-volume", "demo-image"}
    again = assert_plan_matches_run(buildout, docker_recorder, *overrides)
    assert [a["action"] for a in again.plan if a["part"] == "demo-volume"] == ["unchanged"]
    changed = assert_plan_matches_run(buildout, docker_recorder, *overrides + [
        "demo-image:build-args=GREETING=Hello again"])
    assert [a["action"] for a in changed.plan if a["part"] == "demo-volume"] == ["unchanged"]
    gone = assert_plan_matches_run(buildout, docker_recorder, *overrides + ["buildout:parts="])
    assert {(a["kind"], a["action"]) for a in gone.plan} >= {("volume", "remove"),
                                                             ("network", "remove")}
    assert inspect("volume", prefix + "-data") is None


FAKE_RECIPE = '''
import os


class Recipe:
    def __init__(self, buildout, name, options):
        self.path = os.path.join(buildout["buildout"]["parts-directory"], name)
        self.options = options

    def install(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "w") as handle:
            handle.write(self.options.get("text", ""))
        return [self.path]

    def update(self):
        pass
'''


def buildout_actions(output):
    """(verb, part) for buildout's own Installing/Updating/Uninstalling lines."""
    verbs = {"Installing": "install", "Updating": "update", "Uninstalling": "uninstall"}
    found = []
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word in verbs and rest.endswith("."):
            found.append((verbs[word], rest[:-1]))
    return found


def test_parts_of_other_recipes(buildout, prefix, tmp_path, docker_recorder):
    """A part of another recipe is listed as buildout treats it: install,
    update, uninstall then install when changed, uninstall when removed."""
    site = tmp_path / "site"
    (site / "fakerecipe-1.0.dist-info").mkdir(parents=True)
    (site / "fakerecipe-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fakerecipe\nVersion: 1.0\n")
    (site / "fakerecipe-1.0.dist-info" / "entry_points.txt").write_text(
        "[zc.buildout]\ndefault = fakerecipe:Recipe\n")
    (site / "fakerecipe.py").write_text(FAKE_RECIPE)
    env = dict(docker_recorder.env, PYTHONPATH=str(site))

    def setup(text, parts=None):
        buildout.configure("""
            [vol]
            recipe = dockeroo:docker.volume
            name = %s-data

            [other]
            recipe = fakerecipe
            text = %s
            """ % (prefix, text), parts=parts)

    def check(expected_code, expected):
        code, actions = plan_of(buildout, env=env)
        assert code == expected_code, (code, actions)
        others = [(a["action"], a["part"]) for a in actions if a["kind"] == "part"]
        assert others == expected, actions
        run = buildout.ok(env=env)
        done = [(v, p) for v, p in buildout_actions(run.output) if p == "other"]
        assert done == expected, run.output
        return actions

    setup("one")
    check(2, [("install", "other")])
    actions = check(0, [("update", "other")])
    assert [a["action"] for a in actions if a["part"] == "vol"] == ["unchanged"]
    setup("two")
    check(2, [("uninstall", "other"), ("install", "other")])
    setup("two", parts=["vol"])
    check(2, [("uninstall", "other")])
