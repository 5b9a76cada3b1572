"""docker.push against the real engine and the test registry."""

import json
import os

from support.engine import build_image, docker, inspect


def config_digest(registry, repo, tag):
    return registry.manifest(repo, tag)["config"]["digest"]


def push_part(registry, name, part="out", extra=""):
    return registry.part("docker.push", name, part, extra)


def test_push_install_noop_change_uninstall(buildout, prefix, base_image, registry, docker_recorder):
    local = prefix + "-app:1"
    first = build_image(base_image, local, "one")
    remote = "%s/%s-app:1" % (registry.host, prefix)
    buildout.configure(push_part(registry, local) + """
        [consumer]
        recipe = dockeroo:docker.volume
        name = %s-vol
        labels = pushed=${out:pushed-image}
        """ % prefix)
    result = buildout.ok(env=docker_recorder.env)
    assert "The push refers to repository" in result.output  # streamed
    assert "out: pushing image %s because first push of %s" % (remote, local) in result.output
    assert "creating image" not in result.output
    assert registry.tags(prefix + "-app") == ["1"]
    assert config_digest(registry, prefix + "-app", "1") == first
    assert docker_recorder.commands("push") == [["push", remote]]
    assert ["tag", local, remote] in docker_recorder.commands()
    assert inspect("image", remote) is None, "the tag added for the push is removed"
    assert inspect("image", local)["Id"] == first
    assert inspect("volume", prefix + "-vol")["Labels"]["pushed"] == remote
    assert "repository = %s/%s-app\n" % (registry.host, prefix) in buildout.installed()
    # the input stays as written; the pushed reference is its own output
    assert "\nimage = %s\n" % local in buildout.installed()
    assert "\npushed-image = %s\n" % remote in buildout.installed()
    state = json.load(open(buildout.path("parts", "out", "dockeroo-state.json")))
    assert state["pushed"][remote] == {"image-id": first,
                                       "digest": registry.manifest_digest(prefix + "-app", "1")}

    # nothing changed: no tag, no login, no push
    docker_recorder.clear()
    result = buildout.ok(env=docker_recorder.env)
    for command in ("push", "login", "tag"):
        assert docker_recorder.commands(command) == [], command
    result = buildout.ok("-n", env=docker_recorder.env)  # newest mode changes nothing for a push
    assert docker_recorder.commands("push") == []

    # the local image changes (rebuilt): pushed again on update
    second = build_image(base_image, local, "two")
    assert second != first
    docker("image", "rm", first)  # untagged by the rebuild: the test's own, else it leaks
    docker_recorder.clear()
    result = buildout.ok(env=docker_recorder.env)
    assert docker_recorder.commands("push") == [["push", remote]]
    assert config_digest(registry, prefix + "-app", "1") == second
    assert inspect("image", remote) is None

    # uninstall leaves the registry and the local image alone
    buildout.uninstall_all()
    assert registry.tags(prefix + "-app") == ["1"]
    assert inspect("image", local)["Id"] == second
    assert not os.path.exists(buildout.path("parts", "out"))


def test_push_keeps_the_users_own_tag(buildout, prefix, base_image, registry, docker_recorder):
    local = prefix + "-own:2"
    image_id = build_image(base_image, local, "own")
    remote = "%s/%s-own:2" % (registry.host, prefix)
    docker("tag", local, remote)  # the user tagged it already
    buildout.configure(push_part(registry, local))
    buildout.ok(env=docker_recorder.env)
    assert config_digest(registry, prefix + "-own", "2") == image_id
    assert docker_recorder.commands("tag") == []
    assert inspect("image", remote)["Id"] == image_id, "the user's tag stays"


def test_push_name_with_registry_and_namespace(buildout, prefix, base_image, registry):
    # registry with a namespace: pushed as HOST/team/NAME
    local = prefix + "-ns:3"
    image_id = build_image(base_image, local, "ns")
    buildout.configure("""
        [out]
        recipe = dockeroo:docker.push
        name = %s
        registry = %s/team
        username = %s
        password = %s
        """ % (local, registry.host, registry.username, registry.password))
    buildout.ok()
    assert config_digest(registry, "team/%s-ns" % prefix, "3") == image_id
    assert "image = %s/team/%s-ns:3" % (registry.host, prefix) in buildout.installed()

    # a name that already carries the registry: pushed as it is, no tag added or removed
    full = "%s/%s-full:4" % (registry.host, prefix)
    docker("tag", local, full)
    buildout.configure("""
        [out2]
        recipe = dockeroo:docker.push
        name = %s
        username = %s
        password = %s
        """ % (full, registry.username, registry.password))
    buildout.ok()
    assert config_digest(registry, "%s-full" % prefix, "4") == image_id
    assert inspect("image", full)["Id"] == image_id


def test_push_missing_local_image(buildout, prefix, registry):
    buildout.configure(push_part(registry, prefix + "-absent:1"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [out]" in line and "%s-absent:1 does not exist locally" % prefix in line, result.output
    assert not any(r.startswith(prefix) for r in registry.catalog())


def test_push_remote_tag_on_another_image(buildout, prefix, base_image, registry):
    local = prefix + "-x:1"
    build_image(base_image, local, "x")
    remote = "%s/%s-x:1" % (registry.host, prefix)
    docker("tag", base_image, remote)  # the registry name already tags something else
    buildout.configure(push_part(registry, local))
    result = buildout.fails()
    assert "Part [out]" in result.error_line() and "already tags another local image" in result.error_line()
    assert inspect("image", remote)["Id"] == inspect("image", base_image)["Id"]
    assert not any(r.startswith(prefix) for r in registry.catalog())


def test_push_failure_removes_the_added_tag(buildout, prefix, base_image, registry):
    local = prefix + "-fail:1"
    build_image(base_image, local, "fail")
    remote = "%s/%s-fail:1" % (registry.host, prefix)
    buildout.configure("""
        [out]
        recipe = dockeroo:docker.push
        name = %s
        registry = %s
        """ % (local, registry.host))  # no credentials: the registry refuses
    result = buildout.fails()
    assert "Part [out]" in result.error_line()
    assert ("no basic auth credentials" in result.output  # Docker
            or "authentication required" in result.output)  # Podman
    assert inspect("image", remote) is None
    assert inspect("image", local) is not None
    assert not os.path.exists(buildout.path("parts", "out", "dockeroo-state.json"))


def test_push_offline(buildout, prefix, base_image, registry, docker_recorder):
    local = prefix + "-off:1"
    build_image(base_image, local, "off")
    buildout.configure(push_part(registry, local))
    result = buildout.ok("-o", env=docker_recorder.env)
    assert "offline" in result.output
    assert docker_recorder.commands("push") == []
    buildout.ok(env=docker_recorder.env)  # online again: pushed now
    assert len(docker_recorder.commands("push")) == 1
    assert registry.tags(prefix + "-off") == ["1"]


def test_push_bad_options(buildout, prefix, registry, docker_recorder):
    good = {"image": "%s-bad:1" % prefix, "registry": registry.host,
            "username": registry.username, "password": registry.password}
    cases = [
        ({"registry": "https://%s" % registry.host}, "'registry'", "without a scheme"),
        ({"image": "%s-bad@sha256:%s" % (prefix, "a" * 64)}, "'image'", "not a digest"),
        ({"image": "UPPER"}, "'image'", "not a valid image reference"),
        ({"username": ""}, "'username'", "is required"),
        ({"password": "", "password-file": "nope/pw"}, "'password-file'", "cannot read"),
        ({"timeout": "0"}, "'timeout'", "greater than zero"),
    ]
    for change, needle, why in cases:
        values = dict(good, **change)
        body = "\n".join("%s = %s" % (k, v) for k, v in values.items() if v != "")
        buildout.configure("[bad]\nrecipe = dockeroo:docker.push\n" + body + "\n")
        result = buildout.fails(env=docker_recorder.env)
        line = result.error_line()
        assert "Part [bad]" in line and needle in line and why in line, (change, result.output)
        assert registry.password not in result.output
    assert docker_recorder.commands("push") == [] and docker_recorder.commands("tag") == []
