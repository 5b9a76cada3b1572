"""docker.manifest against the real engine and the test registry: one tag, two platforms.

The amd64 member is built FROM the test's busybox image; the arm64 member
is an arm64 root filesystem (dockeroo's own static aarch64 ``freeze``
binary as /bin/hello) imported by docker.gentoo-bootstrap without running
anything of it: Docker 20.10 records the engine's architecture (amd64) for
it, as it does for ``docker import --platform linux/arm64``, and the part
pushes it with a corrected config.
"""

import json
import os
import tarfile
import tempfile

import dockeroo.runtime.freeze as freeze_pkg
from support.engine import docker, engine_kind, inspect
from support.plan_exact import assert_plan_matches_run

ARM_BINARY = os.path.join(os.path.dirname(freeze_pkg.__file__), "freeze-aarch64")

PARTS = """
[amd]
recipe = dockeroo:docker.build
name = %(p)s-amd:1
source = %(dir)s/amd
build-args = V=%(v)s

[arm]
recipe = dockeroo:docker.gentoo-bootstrap
image = %(p)s-arm:1
archives = %(dir)s/arm.tar
commit = true
privileged = false

[multi]
recipe = dockeroo:docker.manifest
name = %(p)s-multi:1
registry = %(host)s
username = %(user)s
password-file = %(dir)s/registry-password
members =
    ${amd:image} linux/amd64
    ${arm:image} linux/arm64/v8
"""


def configure(buildout, registry, base_image, v):
    amd = buildout.path("amd")
    os.makedirs(amd, exist_ok=True)
    with open(os.path.join(amd, "Dockerfile"), "w") as handle:
        handle.write("FROM %s\nARG V\nRUN echo $V > /v\n" % base_image)
    if not os.path.exists(buildout.path("arm.tar")):  # written again, it is imported again
        with tarfile.open(buildout.path("arm.tar"), "w") as tar:
            tar.add(ARM_BINARY, "bin/hello")
    with open(buildout.path("registry-password"), "w") as handle:
        handle.write(registry.password + "\n")  # a file: uninstall reads it to delete the list
    buildout.configure(PARTS % {"p": buildout.prefix, "dir": buildout.directory, "v": v,
                                "host": registry.host, "user": registry.username,
                                "password": registry.password})


def platforms(registry, ref):
    with tempfile.TemporaryDirectory() as config:
        env = registry.login(config)
        listed = json.loads(docker("manifest", "inspect", "--insecure", ref, env=env))
    assert listed["mediaType"].endswith("manifest.list.v2+json"), listed
    return {(m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")):
            m["digest"] for m in listed["manifests"]}


def pull(registry, ref, platform):
    with tempfile.TemporaryDirectory() as config:
        env = registry.login(config)
        docker("pull", "-q", "--platform", platform, ref, env=env)
    obj = inspect("image", ref)
    docker("image", "rm", ref)
    return obj


def test_manifest_list_of_two_platforms(buildout, prefix, base_image, registry, docker_recorder):
    configure(buildout, registry, base_image, "1")
    ref = "%s/%s-multi:1" % (registry.host, prefix)
    exact = assert_plan_matches_run(buildout, docker_recorder)
    planned = {(a["kind"], a["name"]): a["action"] for a in exact.plan if a["part"] == "multi"}
    assert planned == {("image", ref + "-amd64"): "create", ("image", ref + "-arm64v8"): "create",
                       ("manifest", ref): "create"}, planned
    arm_local = inspect("image", prefix + "-arm:1")
    assert arm_local["Architecture"] == "amd64", "what Docker 20.10 records (the fix's reason)"
    assert "corrected config" in exact.run.output

    found = platforms(registry, ref)
    assert set(found) == {("linux", "amd64", None), ("linux", "arm64", "v8")}, found
    state = json.load(open(buildout.path("parts", "multi", "dockeroo-state.json")))
    arm = pull(registry, ref, "linux/arm64")
    assert arm["Architecture"] == "arm64"
    # Podman's image inspect has no Variant field
    assert arm.get("Variant") == "v8" or engine_kind() == "podman", arm.get("Variant")
    assert arm["Id"] == state["members"][ref + "-arm64v8"]["pushed-id"]
    assert arm["RootFS"]["Layers"] == arm_local["RootFS"]["Layers"], "the same files"
    amd = pull(registry, ref, "linux/amd64")
    assert amd["Id"] == inspect("image", prefix + "-amd:1")["Id"]
    assert inspect("image", ref + "-arm64v8") is None and inspect("image", ref + "-amd64") is None, \
        "the tags made for the pushes are removed"

    # nothing changed: nothing pushed
    exact = assert_plan_matches_run(buildout, docker_recorder)
    assert {a["action"] for a in exact.plan} == {"unchanged"}
    assert [c for c in exact.run_calls if c[:1] in (["push"], ["manifest"], ["save"])] == []

    # one member changes: it and the list are pushed again, the other member is not
    configure(buildout, registry, base_image, "2")
    exact = assert_plan_matches_run(buildout, docker_recorder)
    planned = {(a["kind"], a["name"]): a["action"] for a in exact.plan if a["part"] == "multi"}
    assert planned == {("image", ref + "-amd64"): "update", ("image", ref + "-arm64v8"): "unchanged",
                       ("manifest", ref): "update"}, planned
    assert [c for c in exact.run_calls if c[:1] == ["push"]] == [["push", ref + "-amd64"]]
    now = platforms(registry, ref)
    assert now[("linux", "arm64", "v8")] == found[("linux", "arm64", "v8")]
    assert now[("linux", "amd64", None)] != found[("linux", "amd64", None)]

    # uninstall deletes the list's tag from the registry (the members stay)
    buildout.uninstall_all()
    tags = registry.tags(prefix + "-multi")
    assert "1" not in tags and {"1-amd64", "1-arm64v8"} <= set(tags), tags


def test_manifest_bad_options(buildout, prefix, registry, docker_recorder):
    cases = [
        ("members =", "'members'", "is required"),
        ("members = x linux", "'members'", "OS/ARCH"),
        ("members =\n    a linux/amd64\n    b linux/amd64", "'members'", "two members"),
        ("members = a linux/amd64 extra", "'members'", "IMAGE OS/ARCH"),
    ]
    for text, option, why in cases:
        buildout.configure("[bad]\nrecipe = dockeroo:docker.manifest\nname = %s-m:1\n"
                           "registry = %s\n%s\n" % (prefix, registry.host, text))
        result = buildout.fails(env=docker_recorder.env)
        line = result.error_line()
        assert "Part [bad]" in line and option in line and why in line, (text, result.output)
    assert docker_recorder.commands("push") == [] and docker_recorder.commands("manifest") == []
