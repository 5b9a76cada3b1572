"""docker.pull against the real engine and the test registry."""

import os

from support.engine import build_image, docker, inspect


def pull_part(registry, image, part="img", extra=""):
    return registry.part("docker.pull", image, part, extra)


def test_pull_install_update_uninstall(buildout, prefix, base_image, registry, docker_recorder):
    registry.push(base_image, "%s-bb:1" % prefix)
    ref = "%s/%s-bb:1" % (registry.host, prefix)
    assert inspect("image", ref) is None
    base_id = inspect("image", base_image)["Id"]
    # a consumer part: ${img:image} lands in a volume label
    buildout.configure(pull_part(registry, "%s-bb:1" % prefix) + """
        [consumer]
        recipe = dockeroo:docker.volume
        name = %s-vol
        labels = pulled=${img:image}
        """ % prefix)
    result = buildout.ok(env=docker_recorder.env)
    # streamed docker pull output (Docker's, or Podman's)
    assert "Pulling from" in result.output or "Download complete" in result.output
    assert inspect("image", ref)["Id"] == base_id
    assert inspect("volume", prefix + "-vol")["Labels"]["pulled"] == ref
    assert docker_recorder.commands("pull") == [["pull", ref]]
    assert "repository = %s/%s-bb\n" % (registry.host, prefix) in buildout.installed()

    # -N (the tests' default): nothing pulled again
    docker_recorder.clear()
    result = buildout.ok(env=docker_recorder.env)
    assert docker_recorder.commands("pull") == []
    assert docker_recorder.commands("login") == []

    # newest mode: pulled again, nothing new, nothing changed
    docker_recorder.clear()
    result = buildout.ok("-n", env=docker_recorder.env)
    assert docker_recorder.commands("pull") == [["pull", ref]]
    assert "is up to date" in result.output
    assert inspect("image", ref)["Id"] == base_id
    assert not [c for c in docker_recorder.commands() if c[:2] == ["image", "rm"]]

    # offline: no pull even in newest mode
    docker_recorder.clear()
    buildout.ok("-n", "-o", env=docker_recorder.env)
    assert docker_recorder.commands("pull") == []

    # removed by hand: pulled again, even with -N
    docker("image", "rm", ref)
    docker_recorder.clear()
    buildout.ok(env=docker_recorder.env)
    assert docker_recorder.commands("pull") == [["pull", ref]]
    assert inspect("image", ref)["Id"] == base_id

    # uninstall removes the pulled reference only; the image keeps its other tag
    buildout.uninstall_all()
    assert inspect("image", ref) is None
    assert inspect("image", base_image)["Id"] == base_id
    assert not os.path.exists(buildout.path("parts", "img"))


def test_pull_keep(buildout, prefix, base_image, registry):
    registry.push(base_image, "%s-kept:2" % prefix)
    ref = "%s/%s-kept:2" % (registry.host, prefix)
    buildout.configure(pull_part(registry, ref, extra="keep = true"))  # name with the registry in it
    buildout.ok()
    assert inspect("image", ref) is not None
    result = buildout.uninstall_all()
    assert "keep = true" in result.output
    assert inspect("image", ref) is not None


def test_pull_reference_present_before_is_left(buildout, prefix, base_image, registry):
    registry.push(base_image, "%s-mine:1" % prefix)
    ref = "%s/%s-mine:1" % (registry.host, prefix)
    docker("tag", base_image, ref)  # the user's own tag, there before the part
    buildout.configure(pull_part(registry, "%s-mine:1" % prefix))
    buildout.ok()
    buildout.ok("-n")  # pulled again in newest mode: still the user's
    result = buildout.uninstall_all()
    assert "was in the engine before this part pulled it" in result.output
    assert inspect("image", ref) is not None


def test_pull_newer_image_in_newest_mode(buildout, prefix, base_image, registry):
    v1 = build_image(base_image, prefix + "-v:1", "one")
    v2 = build_image(base_image, prefix + "-v:2", "two")
    registry.push(prefix + "-v:1", "%s-app:stable" % prefix)
    docker("image", "rm", prefix + "-v:1")  # v1 now only exists as what the part pulls
    ref = "%s/%s-app:stable" % (registry.host, prefix)
    buildout.configure(pull_part(registry, "%s-app:stable" % prefix))
    buildout.ok()
    assert inspect("image", ref)["Id"] == v1

    registry.push(prefix + "-v:2", "%s-app:next" % prefix)
    registry.retag("%s-app" % prefix, "next", "stable")  # the registry moves on
    buildout.ok()  # -N: keeps what it has
    assert inspect("image", ref)["Id"] == v1
    result = buildout.ok("-n")
    assert "updated" in result.output
    assert inspect("image", ref)["Id"] == v2
    assert inspect("image", v1) is None, "the replaced image, pulled by the part, is removed"
    assert inspect("image", prefix + "-v:2")["Id"] == v2
    buildout.uninstall_all()
    assert inspect("image", ref) is None
    assert inspect("image", prefix + "-v:2")["Id"] == v2


def test_pull_name_change(buildout, prefix, base_image, registry):
    registry.push(base_image, "%s-a:1" % prefix)
    registry.push(base_image, "%s-b:1" % prefix)
    ref_a = "%s/%s-a:1" % (registry.host, prefix)
    ref_b = "%s/%s-b:1" % (registry.host, prefix)
    buildout.configure(pull_part(registry, "%s-a:1" % prefix))
    buildout.ok()
    assert inspect("image", ref_a) is not None
    buildout.configure(pull_part(registry, "%s-b:1" % prefix))
    result = buildout.ok()
    assert "Installing img" in result.output
    assert inspect("image", ref_b) is not None
    assert inspect("image", ref_a) is None
    buildout.uninstall_all()
    assert inspect("image", ref_b) is None


def test_pull_by_digest(buildout, prefix, base_image, registry):
    registry.push(base_image, "%s-dig:1" % prefix)
    manifest_digest = registry.manifest_digest("%s-dig" % prefix, "1")
    ref = "%s/%s-dig@%s" % (registry.host, prefix, manifest_digest)
    buildout.configure(pull_part(registry, "%s-dig@%s" % (prefix, manifest_digest)))
    buildout.ok()
    assert ref in inspect("image", ref)["RepoDigests"]
    result = buildout.ok("-n")
    assert "Pulling" not in result.output  # a digest never changes
    buildout.uninstall_all()
    # (Podman finds any image by its digest alone: here the base image, pushed as it)
    assert ref not in (inspect("image", ref) or {}).get("RepoDigests", [])
    assert inspect("image", base_image) is not None


def test_pull_missing_image_is_an_error(buildout, prefix, registry):
    buildout.configure(pull_part(registry, "%s-nothere:1" % prefix))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [img]" in line and "%s-nothere" % prefix in line, result.output
    assert registry.password not in result.output
    assert inspect("image", "%s/%s-nothere:1" % (registry.host, prefix)) is None


def test_pull_offline_missing_image(buildout, prefix, registry):
    buildout.configure(pull_part(registry, "%s-off:1" % prefix))
    result = buildout.fails("-o")
    assert "Part [img]" in result.error_line() and "offline" in result.error_line()


def test_pull_without_registry_uses_the_name(buildout, prefix, base_image, registry):
    """No username: the user's own docker config is used (here: anonymous, refused)."""
    buildout.configure("""
        [anon]
        recipe = dockeroo:docker.pull
        name = %s/%s-anon:1
        """ % (registry.host, prefix))
    result = buildout.fails()
    assert "Part [anon]" in result.error_line()
    assert ("no basic auth credentials" in result.output  # Docker
            or "authentication required" in result.output)  # Podman


def test_pull_bad_options(buildout, prefix, registry, docker_recorder):
    good = {"image": "%s-bad:1" % prefix, "registry": registry.host,
            "username": registry.username, "password": registry.password}
    os.environ.pop("DKT_UNSET_PASSWORD", None)
    cases = [
        ({"registry": "http://%s" % registry.host}, "'registry'", "without a scheme"),
        ({"registry": "myaccount"}, "'registry'", "not a registry host"),
        ({"registry": "bad host"}, "'registry'", "registry host"),
        ({"image": "Upper/Case"}, "'image'", "not a valid image reference"),
        ({"image": "other.example.com/x"}, "'image'", "names registry other.example.com"),
        ({"username": ""}, "'username'", "is required"),
        ({"password": ""}, "'password'", "needs a password"),
        ({"password-file": "pw.txt"}, "'password'", "only one of"),
        ({"password": "", "password-env": "DKT_UNSET_PASSWORD"}, "'password-env'", "not set"),
        ({"password": "", "password-file": "missing.txt"}, "'password-file'", "cannot read"),
        ({"keep": "maybe"}, "'keep'", "boolean"),
        ({"timeout": "soon"}, "'timeout'", "duration"),
    ]
    buildout.write("pw.txt", registry.password + "\n")
    for change, needle, why in cases:
        values = dict(good, **change)
        body = "\n".join("%s = %s" % (k, v) for k, v in values.items() if v != "")
        buildout.configure("[bad]\nrecipe = dockeroo:docker.pull\n" + body + "\n")
        result = buildout.fails(env=docker_recorder.env)
        line = result.error_line()
        assert "Part [bad]" in line and needle in line and why in line, (change, result.output)
        assert registry.password not in result.output
    assert docker_recorder.commands("pull") == [] and docker_recorder.commands("login") == []
    assert not any(r.startswith(prefix) for r in registry.catalog())


def test_pull_timeout_is_enforced(buildout, prefix, registry):
    buildout.configure(pull_part(registry, "%s-slow:1" % prefix, extra="timeout = 1ms"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [img]" in line and "timed out" in line, result.output
    assert registry.password not in result.output


def test_pull_uninstall_image_used_by_a_container(buildout, prefix, base_image, registry):
    build_image(base_image, prefix + "-used:1", "used")
    registry.push(prefix + "-used:1", "%s-used:1" % prefix)
    docker("image", "rm", prefix + "-used:1")
    ref = "%s/%s-used:1" % (registry.host, prefix)
    buildout.configure(pull_part(registry, "%s-used:1" % prefix))
    buildout.ok()
    docker("create", "--name", prefix + "-user", ref, "true")
    # a container no part manages uses it: refused before anything changes, naming it
    result = buildout.uninstall_all()
    assert not result.ok and "Traceback" not in result.output, result.output
    assert "used by container %s-user, which no part of this buildout manages" % prefix \
        in result.error_line(), result.output
    assert inspect("image", ref) is not None
    docker("rm", prefix + "-user")
    buildout.uninstall_all()
    assert inspect("image", ref) is None
