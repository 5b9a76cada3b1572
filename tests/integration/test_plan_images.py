"""``dockeroo plan`` is what the run does, for docker.build, docker.pull and
docker.push (tests/support/plan_exact.py): each situation is planned, then
run, and the run's docker commands are compared with the plan, object by
object; the real run logs the same reasons."""

import os

from support.engine import docker, image_id, inspect
from support.plan_exact import assert_plan_matches_run
from support.side_effects import assert_plan_is_side_effect_free

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY . /ctx/
"""


def verbs(exact, part=None):
    return {(a["kind"], a["name"]): a["action"] for a in exact.plan
            if part is None or a["part"] == part}


def the(exact, name):
    found = [a for a in exact.plan if a["name"] == name]
    assert len(found) == 1, exact.plan
    return found[0]


def build_part(prefix, base_image, tag="v1", args="", extra=""):
    return """
        [img]
        recipe = dockeroo:docker.build
        name = %s-img:%s
        source = ctx
        build-args =
            BASE=%s
            %s
        %s
        """ % (prefix, tag, base_image, args, extra)


def test_plan_build(buildout, prefix, base_image, docker_recorder):
    ref = prefix + "-img:v1"
    buildout.write("ctx/Dockerfile", DOCKERFILE)
    buildout.write("ctx/app.py", "print(1)\n")
    buildout.write("ctx/data.txt", "data\n")
    buildout.configure(build_part(prefix, base_image))

    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert the(exact, ref)["action"] == "create"
    first = image_id(ref)

    # nothing changed: nothing built
    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert verbs(exact) == {("image", ref): "unchanged"}
    assert exact.code == 0 and image_id(ref) == first

    # a build option changed: rebuilt, the replaced image removed at the end of the run
    buildout.configure(build_part(prefix, base_image, args="MORE=1"))
    exact = assert_plan_matches_run(buildout, docker_recorder)
    act = the(exact, ref)
    assert (act["action"], act["reasons"]) == ("recreate", ["option 'build-args' changed"])
    assert verbs(exact)[("image", first)] == "remove"
    assert "img: recreating image %s because option 'build-args' changed" % ref in exact.run.output
    second = image_id(ref)
    assert second != first and inspect("image", first) is None

    # a file of the context changed: rebuilt, the file named
    buildout.write("ctx/app.py", "print(2)\n")
    exact = assert_plan_matches_run(buildout, docker_recorder)
    act = the(exact, ref)
    assert (act["action"], act["reasons"]) == ("recreate", ["context file app.py changed"])
    assert "because context file app.py changed" in exact.run.output
    assert docker("run", "--rm", ref, "cat", "/ctx/app.py") == "print(2)\n"
    third = image_id(ref)

    # removed by hand: repaired
    docker("image", "rm", ref)
    exact = assert_plan_matches_run(buildout, docker_recorder)
    act = the(exact, ref)
    assert (act["action"], act["reasons"]) == (
        "repair", ["image %s is missing (removed by hand?)" % ref])
    assert image_id(ref) is not None
    assert third  # (the repaired image may reuse the builder's cache)

    # renamed tag: the new tag built, the old one removed
    buildout.configure(build_part(prefix, base_image, tag="v2", args="MORE=1"))
    exact = assert_plan_matches_run(buildout, docker_recorder)
    plan = verbs(exact)
    assert plan[("image", prefix + "-img:v2")] == "create"
    assert plan[("image", ref)] == "remove"
    assert inspect("image", ref) is None and inspect("image", prefix + "-img:v2") is not None

    # the part removed: its image removed
    exact = assert_plan_matches_run(buildout, docker_recorder, "buildout:parts=")
    assert verbs(exact)[("image", prefix + "-img:v2")] == "remove"
    assert inspect("image", prefix + "-img:v2") is None


def test_plan_build_keep(buildout, prefix, base_image, docker_recorder):
    ref = prefix + "-img:v1"
    buildout.write("ctx/Dockerfile", DOCKERFILE)
    buildout.configure(build_part(prefix, base_image, extra="keep = true"))
    assert_plan_matches_run(buildout, docker_recorder)
    exact = assert_plan_matches_run(buildout, docker_recorder, "buildout:parts=")
    act = the(exact, ref)
    assert (act["action"], act["reasons"]) == ("unchanged", ["keep = true: left in place"])
    assert inspect("image", ref) is not None
    docker("image", "rm", ref)


def registry_parts(prefix, base_image, registry, pull=True, push=True):
    text = """
        [img]
        recipe = dockeroo:docker.build
        name = %s-app:1
        source = ctx
        build-args = BASE=%s
        """ % (prefix, base_image)
    if push:
        text += """
        [pub]
        recipe = dockeroo:docker.push
        name = ${img:image}
        registry = %s
        username = %s
        password = %s
        """ % (registry.host, registry.username, registry.password)
    if pull:
        text += """
        [get]
        recipe = dockeroo:docker.pull
        image = %s/%s-app:1
        username = %s
        password = %s
        """ % (registry.host, prefix, registry.username, registry.password)
    return text


def test_plan_push_and_pull(buildout, prefix, base_image, registry, docker_recorder):
    remote = "%s/%s-app:1" % (registry.host, prefix)
    buildout.write("ctx/Dockerfile", DOCKERFILE)
    buildout.configure(registry_parts(prefix, base_image, registry, pull=False))

    # first push
    exact = assert_plan_matches_run(buildout, docker_recorder)
    act = [a for a in exact.plan if a["part"] == "pub"][0]
    assert (act["action"], act["name"]) == ("create", remote)
    assert exact.effects[("image", remote)] >= {"push"}

    # nothing changed: not pushed again
    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert set(verbs(exact, "pub").values()) == {"unchanged"}
    assert not [argv for argv in exact.run_calls if argv[:1] == ["push"]]

    # the image rebuilt earlier in the same run: pushed again
    buildout.write("ctx/new.txt", "new\n")
    exact = assert_plan_matches_run(buildout, docker_recorder)
    act = [a for a in exact.plan if a["part"] == "pub"][0]
    assert act["action"] == "update"
    assert act["reasons"] == ["image %s-app:1 will be rebuilt" % prefix], act
    assert [argv for argv in exact.run_calls if argv[:1] == ["push"]]

    # pull the pushed image (the push's tag is gone): pulled
    buildout.configure(registry_parts(prefix, base_image, registry))
    exact = assert_plan_matches_run(buildout, docker_recorder)
    get = [a for a in exact.plan if a["part"] == "get"]
    assert [(a["action"], a["reasons"]) for a in get] == [("create", ["new part"])], get
    # present, not newest (-N): unchanged
    exact = assert_plan_matches_run(buildout, docker_recorder)
    get = [a for a in exact.plan if a["part"] == "get"]
    assert [a["action"] for a in get] == ["unchanged"], get
    assert exact.code == 0

    # removed by hand: pulled again
    docker("image", "rm", remote)
    exact = assert_plan_matches_run(buildout, docker_recorder)
    get = [a for a in exact.plan if a["part"] == "get" and a["kind"] == "image"]
    assert [a["action"] for a in get] == ["repair"], get
    assert inspect("image", remote) is not None

    # newest mode: the registry may have a newer image (nothing pulled, logged in or written)
    assert_plan_is_side_effect_free(buildout, docker_recorder, prefix, "-n")
    exact = assert_plan_matches_run(buildout, docker_recorder, "-n")
    get = [a for a in exact.plan if a["part"] == "get"]
    assert [(a["action"], a["reasons"]) for a in get] == [
        ("maybe", ["newest mode: the registry may have a newer image"])], get
    assert [argv for argv in exact.run_calls if argv[:1] == ["pull"]]


def test_plan_pull_missing(buildout, prefix, base_image, registry, docker_recorder):
    remote = "%s/%s-app:1" % (registry.host, prefix)
    docker("tag", base_image, remote)
    docker("login", "-u", registry.username, "--password-stdin", registry.host,
           input=registry.password)
    try:
        docker("push", remote)
    finally:
        docker("logout", registry.host)
        docker("image", "rm", remote)
    buildout.configure("""
        [get]
        recipe = dockeroo:docker.pull
        image = %s
        username = %s
        password = %s
        """ % (remote, registry.username, registry.password))
    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert verbs(exact) == {("image", remote): "create"}
    assert inspect("image", remote) is not None
    exact = assert_plan_matches_run(buildout, docker_recorder, "buildout:parts=")
    assert verbs(exact) == {("image", remote): "remove"}
    assert inspect("image", remote) is None


def test_plan_build_secrets_writes_and_runs_nothing(buildout, prefix, base_image,
                                                   docker_recorder):
    """secrets-rebuild = true: the plan makes no HMAC key, runs no secret command
    (only planned: the build itself needs BuildKit)."""
    buildout.write("ctx/Dockerfile", "FROM %s\n" % base_image)
    buildout.write("token", "t0ken\n")
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s-sec:1
        source = ctx
        builder = buildkit
        secrets =
            tok src=token
            cmd command=sh -c "touch ran; echo s3cret"
        secrets-rebuild = true
        """ % prefix)
    result = assert_plan_is_side_effect_free(buildout, docker_recorder, prefix)
    assert not os.path.exists(buildout.path("ran"))
    assert [(a["action"], a["reasons"]) for a in result.actions] == [("create", ["new part"])]
