"""``dockeroo plan`` is free of side effects: every docker command it starts
is read-only (recorded by a ``docker`` wrapper first on PATH), it writes
nothing in the buildout (a snapshot of every path, type, size, mtime and
content before and after), and no Docker object appears.

Situations: the first plan before any install (no ``parts/`` yet: none
must be made), after the install, with a changed part, with a removed part.
"""

import hashlib
import os
import stat

from conftest import free_subnet, objects_with_prefix
from support.plan_exact import plan_of

from dockeroo.engine.commands import plan_safe


def snapshot(root):
    """Every path under ROOT (ROOT included): type, size, mtime_ns, sha256."""
    found = {}
    for here, dirs, files in os.walk(root):
        for name in [""] + dirs + files:
            path = os.path.join(here, name) if name else here
            if name == "" and here != root:
                continue
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            found[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), st.st_size,
                                                  st.st_mtime_ns, digest)
    return found


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


def assert_plan_is_side_effect_free(buildout, recorder, prefix, *args):
    before = snapshot(buildout.directory)
    objects = sorted(objects_with_prefix(prefix))
    recorder.clear()
    result = plan_of(buildout, *args, env=recorder.env)
    assert result.code in (0, 2), result.output + result.stderr
    calls = recorder.commands()
    assert calls, "the plan asked the engine nothing"
    unsafe = [argv for argv in calls if not plan_safe(argv)]
    assert not unsafe, "dockeroo plan ran commands that are not read-only: %s" % unsafe
    after = snapshot(buildout.directory)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, "dockeroo plan changed the buildout: %s" % changed
    assert sorted(objects_with_prefix(prefix)) == objects
    # the text output too
    text = plan_of(buildout, *args, env=recorder.env, json_output=False)
    assert text.code == result.code, text.output + text.stderr
    assert snapshot(buildout.directory) == before
    return result


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
