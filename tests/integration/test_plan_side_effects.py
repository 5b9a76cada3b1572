"""``dockeroo plan`` is free of side effects: every docker command it starts
is read-only (recorded by a ``docker`` wrapper first on PATH), it writes
nothing in the buildout (a snapshot of every path, type, size, mtime and
content before and after), and no Docker object appears.

Situations: the first plan before any install (no ``parts/`` yet: none
must be made), after the install, with a changed part, with a removed part.
"""

import os

from support.engine import free_subnet, objects_with_prefix
from support.plan_exact import plan_of
from support.side_effects import assert_plan_is_side_effect_free, read_only


def configure(buildout, prefix, base_image, subnet, volume="data", parts=None):
    buildout.write("ctx/Dockerfile", "ARG BASE\nFROM ${BASE}\nCOPY . /ctx/\n")
    buildout.write("ctx/hello.txt", "hello\n")
    buildout.configure("""
        [vol]
        recipe = dockeroo:docker.volume
        name = %(prefix)s-%(volume)s

        [net]
        recipe = dockeroo:docker.network
        name = %(prefix)s-net
        subnet = %(subnet)s

        [img]
        recipe = dockeroo:docker.build
        name = %(prefix)s-img:v1
        source = ctx
        build-args = BASE=%(base)s

        [app]
        recipe = dockeroo:docker.run
        name = %(prefix)s-app
        image = ${img:name}
        command = sleep 3600
        network = ${net:name}
        volumes = ${vol:volume}:/data
        """ % {"prefix": prefix, "volume": volume, "subnet": subnet, "base": base_image},
        parts=parts)


def test_the_allow_list_is_read_only_commands_only():
    """The oracle itself: read-only commands pass, every mutating one fails
    (also behind the docker CLI's global options)."""
    for argv in (["inspect", "x"], ["image", "inspect", "x"], ["image", "ls", "-q"],
                 ["network", "ls"], ["volume", "inspect", "v"], ["ps", "-a"], ["info"],
                 ["version", "--format", "{{json .}}"], ["history", "i"], ["images"],
                 ["system", "info"], ["--host", "tcp://h:1", "container", "inspect", "c"]):
        assert read_only(argv), argv
    for argv in (["run", "--rm", "i"], ["create", "i"], ["rm", "-f", "c"], ["build", "."],
                 ["pull", "i"], ["push", "i"], ["tag", "a", "b"], ["rmi", "i"], ["login", "r"],
                 ["image", "rm", "i"], ["image", "prune"], ["network", "create", "n"],
                 ["volume", "create", "v"], ["volume", "rm", "v"], ["container", "create", "i"],
                 ["system", "prune"], ["save", "i"], ["cp", "c:/x", "-"], ["commit", "c", "i"],
                 ["buildx", "build", "."], ["-H", "unix:///x", "rm", "c"]):
        assert not read_only(argv), argv


def test_plan_writes_nothing_and_changes_nothing(buildout, prefix, base_image, docker_recorder):
    subnet = free_subnet()
    configure(buildout, prefix, base_image, subnet)

    # before any install: not even parts/ (or eggs/, bin/) is made
    first = assert_plan_is_side_effect_free(buildout, docker_recorder, prefix)
    assert sorted(os.listdir(buildout.directory)) == ["buildout.cfg", "ctx"]
    assert first.code == 2
    assert {"part": "vol", "kind": "volume", "name": prefix + "-data", "action": "create",
            "reasons": ["new part"]} in first.actions

    buildout.ok()
    objects = objects_with_prefix(prefix)
    assert ("volume", prefix + "-data") in objects and ("container", prefix + "-app") in objects

    # after the install
    assert_plan_is_side_effect_free(buildout, docker_recorder, prefix)

    # a changed part (the volume renamed: the container using it changes too)
    configure(buildout, prefix, base_image, subnet, volume="data2")
    changed = assert_plan_is_side_effect_free(buildout, docker_recorder, prefix)
    names = {(a["kind"], a["name"]): a["action"] for a in changed.actions}
    assert names[("volume", prefix + "-data2")] == "create"
    assert names[("volume", prefix + "-data")] == "remove"

    # a removed part, and all parts removed
    configure(buildout, prefix, base_image, subnet, parts=["vol", "net", "img"])
    removed = assert_plan_is_side_effect_free(buildout, docker_recorder, prefix)
    assert any(a["part"] == "app" for a in removed.actions), removed.actions
    assert_plan_is_side_effect_free(buildout, docker_recorder, prefix, "buildout:parts=")


def test_plan_error_is_one_line(buildout, prefix):
    buildout.configure("""
        [vol]
        recipe = dockeroo:docker.volume
        name = %s/data
        """ % prefix)
    result = plan_of(buildout, json_output=False)
    assert result.code == 1, result.output + result.stderr
    assert result.stderr.startswith("Error: ") and "Part [vol]" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.output
    assert os.listdir(buildout.directory) == ["buildout.cfg"]


def test_plan_engine_unreachable_is_one_line(buildout, prefix):
    buildout.configure("""
        [vol]
        recipe = dockeroo:docker.volume
        name = %s-data
        engine-url = tcp://127.0.0.1:1
        """ % prefix)
    result = plan_of(buildout)
    assert result.code == 1, result.output + result.stderr
    assert result.stderr.startswith("Error: Part [vol]"), result.stderr
    assert "Traceback" not in result.stderr and result.output == ""
    assert os.listdir(buildout.directory) == ["buildout.cfg"]
