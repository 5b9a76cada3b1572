"""docker.run and docker.copy: what the plan says for each situation of the
exactness battery, and that the real run does exactly that.

Each situation installs a buildout, changes it (an option, a layout file,
the image's build context, a removed or renamed part, a container removed
or stopped by hand, ``keep``), then:

- checks what ``dockeroo plan`` says (verbs and reasons) and that the
  following real run does exactly that (``assert_plan_matches_run``: the
  run's recorded mutating docker commands, classified per object);
- checks the reasons the real run logs and what Docker holds afterwards.
"""

import textwrap


from support.engine import docker, inspect

from dockeroo.model import plan as plan_mod

from support import plan_exact
from support.plan_exact import assert_plan_matches_run, plan_of

def logged(result):
    """{(part, kind, name): (verb, reasons)} of the actions a real run logged."""
    return {(part, kind, name): (verb, tuple(r for r in why.split("; ") if r))
            for part, verb, kind, name, why in plan_exact.logged(result.output)}


def spoken(value):
    """VALUE (verb, reasons) of a plan as a real run logs it."""
    said = getattr(plan_mod, "SPOKEN", {})
    return value[0], tuple(said.get(r, r) for r in value[1])


def planned(buildout):
    """{(part, kind, name): (verb, reasons)} of ``dockeroo plan --json``."""
    result = plan_of(buildout)
    code, actions = result
    assert code in (0, 2), (code, result.output, result.stderr)
    return {(a["part"], a["kind"], a["name"]): (a["action"], tuple(a["reasons"]))
            for a in actions if a.get("kind")}


def run_part(part, name, image, extra=""):
    return textwrap.dedent("""
        [%s]
        recipe = dockeroo:docker.run
        name = %s
        image = %s
        command = sleep 3600
        stop-timeout = 1
        """) % (part, name, image) + textwrap.dedent(extra)


def exact(buildout, recorder, expected):
    """The plan holds EXPECTED ({(part, kind, name): (verb, reasons)}), the
    real run does exactly what the plan said and logs the same reasons."""
    plan = planned(buildout)
    for key, value in expected.items():
        assert plan.get(key) == value, (key, plan)
    result = assert_plan_matches_run(buildout, recorder).run
    said = logged(result)
    for key, value in expected.items():
        if value[0] != "unchanged":
            assert said.get(key) == spoken(value), (key, said, result.output)
        else:
            assert key not in said, (key, said, result.output)
    return result


def container_id(name):
    obj = inspect("container", name)
    return obj["Id"] if obj else None


# -- docker.run ---------------------------------------------------------------------------
def test_option_change(buildout, prefix, base_image, docker_recorder):
    app = prefix + "-app"
    buildout.configure(run_part("app", app, base_image))
    buildout.ok()
    before = container_id(app)
    buildout.configure(run_part("app", app, base_image, "user = nobody\n"))
    exact(buildout, docker_recorder, {
        ("app", "container", app): ("recreate", ("option 'user' added",))})
    assert container_id(app) not in (None, before)
    assert inspect("container", app)["Config"]["User"] == "nobody"


def test_layout_content_change(buildout, prefix, base_image, docker_recorder):
    app = prefix + "-app"
    buildout.write("layout/etc/app.conf", "x=1\n")
    buildout.configure(run_part("app", app, base_image, "layout = layout\n"))
    buildout.ok()
    buildout.write("layout/etc/app.conf", "x=2\n")
    exact(buildout, docker_recorder, {
        ("app", "container", app): ("recreate", ("layout content changed",))})
    assert docker("exec", app, "cat", "/etc/app.conf") == "x=2\n"


def test_image_rebuilt_by_an_earlier_part_cascades(buildout, prefix, base_image,
                                                   docker_recorder):
    app, ref = prefix + "-app", prefix + "-img:1"
    buildout.write("context/Dockerfile", "FROM %s\nCOPY hello /hello\n" % base_image)
    buildout.write("context/hello", "hello\n")
    buildout.configure(textwrap.dedent("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = context
        """) % ref + run_part("app", app, "${img:name}"))
    buildout.ok()
    buildout.write("context/hello", "hello again\n")
    plan = planned(buildout)
    # the cascade needs docker.build's own plan: a part that cannot plan ("maybe")
    # is the regression this test guards
    maybes = {key: value for key, value in plan.items() if key[1] == "part" and value[0] == "maybe"}
    assert not maybes, "a part plans maybe where the plan must be exact: %s" % maybes
    assert plan[("img", "image", ref)][0] == "recreate", plan
    verb, reasons = plan[("app", "container", app)]
    assert verb == "recreate" and len(reasons) == 1, plan
    assert reasons[0].startswith("image %s will be rebuilt (" % ref), reasons
    result = assert_plan_matches_run(buildout, docker_recorder).run
    new_image = inspect("image", ref)["Id"]
    # the real run made the same decision, logged with the run plan's reasons
    assert logged(result)[("app", "container", app)] == ("recreate", tuple(reasons)), \
        result.output
    assert inspect("container", app)["Image"] == new_image
    assert docker("exec", app, "cat", "/hello") == "hello again\n"


def test_removed_part(buildout, prefix, base_image, docker_recorder):
    app, other = prefix + "-app", prefix + "-other"
    buildout.configure(run_part("app", app, base_image) + run_part("other", other, base_image))
    buildout.ok()
    buildout.configure(run_part("other", other, base_image))
    plan = planned(buildout)
    assert plan[("app", "container", app)][0] == "remove", plan
    assert plan[("other", "container", other)] == ("unchanged", ()), plan
    assert_plan_matches_run(buildout, docker_recorder)
    assert inspect("container", app) is None and container_id(other)


def test_keep_on_removal(buildout, prefix, base_image, docker_recorder):
    app = prefix + "-app"
    buildout.configure(run_part("app", app, base_image, "keep = true\n"))
    buildout.ok()
    buildout.configure("", parts=[])
    plan = planned(buildout)
    assert plan.get(("app", "container", app), ("unchanged",))[0] == "unchanged", plan
    assert_plan_matches_run(buildout, docker_recorder)
    assert container_id(app)
    docker("rm", "--force", app)


def test_renamed_container(buildout, prefix, base_image, docker_recorder):
    old, new = prefix + "-old", prefix + "-new"
    buildout.configure(run_part("app", old, base_image))
    buildout.ok()
    buildout.configure(run_part("app", new, base_image))
    plan = planned(buildout)
    assert plan[("app", "container", new)] == (
        "create", ("option 'name' changed (was %s)" % old,)), plan
    assert plan[("app", "container", old)][0] == "remove", plan
    assert_plan_matches_run(buildout, docker_recorder)
    assert inspect("container", old) is None and container_id(new)


def test_container_removed_by_hand(buildout, prefix, base_image, docker_recorder):
    app = prefix + "-app"
    buildout.configure(run_part("app", app, base_image))
    buildout.ok()
    docker("rm", "--force", app)
    exact(buildout, docker_recorder, {
        ("app", "container", app): ("repair", ("container %s is missing (removed by hand?)"
                                               % app,))})
    assert inspect("container", app)["State"]["Running"]


def test_container_stopped_by_hand(buildout, prefix, base_image, docker_recorder):
    app = prefix + "-app"
    buildout.configure(run_part("app", app, base_image))
    buildout.ok()
    before = container_id(app)
    docker("stop", "--time", "1", app)
    exact(buildout, docker_recorder, {
        ("app", "container", app): ("repair", ("container %s is stopped" % app,))})
    obj = inspect("container", app)
    assert obj["Id"] == before and obj["State"]["Running"]


def test_nothing_changed(buildout, prefix, base_image, docker_recorder):
    app = prefix + "-app"
    buildout.configure(run_part("app", app, base_image))
    buildout.ok()
    before = container_id(app)
    result = exact(buildout, docker_recorder, {("app", "container", app): ("unchanged", ())})
    assert not logged(result), result.output
    assert container_id(app) == before


# -- docker.copy ---------------------------------------------------------------------------
def copy_parts(prefix, base_image, dst_command="sleep 3600", paths="/etc/passwd /copied"):
    return (run_part("src", prefix + "-src", base_image)
            + run_part("dst", prefix + "-dst", base_image, "command = %s\n" % dst_command)
            + textwrap.dedent("""
                [copy]
                recipe = dockeroo:docker.copy
                container-from = ${src:container}
                container-to = ${dst:container}
                paths = %s
                """) % paths)


def test_copy_situations(buildout, prefix, base_image, docker_recorder):
    dst = prefix + "-dst"
    buildout.configure(copy_parts(prefix, base_image))
    buildout.ok()
    # nothing changed
    exact(buildout, docker_recorder, {("copy", "container", dst): ("unchanged", ())})
    # the target is recreated by an earlier part: copied again
    buildout.configure(copy_parts(prefix, base_image, dst_command="sleep 3601"))
    plan = planned(buildout)
    assert plan[("copy", "container", dst)] == ("update", (
        "container %s will be recreated (option 'command' changed)" % dst,)), plan
    result = assert_plan_matches_run(buildout, docker_recorder).run
    assert logged(result)[("copy", "container", dst)] == plan[("copy", "container", dst)], \
        result.output
    assert docker("exec", dst, "head", "-c", "4", "/copied") == "root"
    # the paths changed
    buildout.configure(copy_parts(prefix, base_image, dst_command="sleep 3601",
                                  paths="/etc/group /copied"))
    exact(buildout, docker_recorder, {("copy", "container", dst): ("update", (
        "option 'paths' changed",))})
    assert docker("exec", dst, "head", "-c", "4", "/copied") == "root"
    # the copy part removed: nothing in Docker changes
    buildout.configure(copy_parts(prefix, base_image, dst_command="sleep 3601"),
                       parts=["src", "dst"])
    assert_plan_matches_run(buildout, docker_recorder)
    assert docker("exec", dst, "head", "-c", "4", "/copied") == "root"
