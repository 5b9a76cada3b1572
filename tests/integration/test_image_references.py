"""Image references spelled in every way Docker accepts, against the real engine."""

import os

from support.engine import docker, inspect

SPELLINGS = ["{x}", "{x}:latest", "library/{x}", "docker.io/library/{x}:latest",
             "index.docker.io/library/{x}"]


def run_parts(prefix, images):
    return "".join("""
        [run{i}]
        recipe = dockeroo:docker.run
        name = {prefix}-c{i}
        image = {image}
        command = sleep 3600
        start = false
        """.format(i=i, prefix=prefix, image=image) for i, image in enumerate(images))


def test_run_finds_a_local_image_under_each_spelling(buildout, prefix, base_image):
    probe = prefix + "-probe"
    docker("tag", base_image, probe + ":latest")
    image_id = inspect("image", probe)["Id"]
    images = [s.format(x=probe) for s in SPELLINGS]
    buildout.configure(run_parts(prefix, images))
    buildout.ok()
    made = [inspect("container", "%s-c%d" % (prefix, i)) for i in range(len(images))]
    assert [c and c["Image"] for c in made] == [image_id] * len(images)
    # created from the local image, never pulled: the command names it as Docker shows it
    # (Podman shows it fully qualified)
    assert {c["Config"]["Image"] for c in made} <= {probe, probe + ":latest",
                                                    "docker.io/library/%s:latest" % probe}
    # a second run changes nothing
    buildout.ok()
    assert [inspect("container", c["Name"].lstrip("/"))["Id"] for c in made] == [c["Id"] for c in made]


def registry_part(registry, section, recipe, image, extra=""):
    return """
        [%s]
        recipe = dockeroo:docker.%s
        image = %s
        registry = %s
        username = %s
        password = %s
        %s
        """ % (section, recipe, image, registry.host, registry.username, registry.password, extra)


def test_push_then_pull_by_tag_and_digest(buildout, prefix, base_image, registry, docker_recorder):
    host = registry.host
    repo = "ns/%s-x" % prefix
    full = "%s/%s" % (host, repo)
    # an image of its own (not the base image's id), so that it leaves the engine
    docker("build", "-q", "-t", full + ":1", "-", input="FROM %s\nLABEL dkt.refs=%s\n"
           % (base_image, prefix), env=dict(os.environ, DOCKER_BUILDKIT="0"))
    image_id = inspect("image", full + ":1")["Id"]
    buildout.configure(registry_part(registry, "out", "push", full + ":1"))
    buildout.ok(env=docker_recorder.env)
    assert registry.tags(repo) == ["1"]
    assert docker_recorder.commands("push") == [["push", full + ":1"]]
    assert not [c for c in docker_recorder.commands() if c[:1] == ["tag"]], "already tagged"
    buildout.uninstall_all()
    docker("image", "rm", full + ":1")
    assert inspect("image", image_id) is None

    digest = registry.manifest_digest(repo, "1")
    by_digest = "%s@%s" % (full, digest)
    # by digest, and by tag and digest (the digest decides, as docker pull does); a
    # docker.run part finds the pulled image under either spelling
    buildout.configure(
        registry_part(registry, "bydigest", "pull", "%s/%s@%s" % (host, repo, digest))
        + registry_part(registry, "both", "pull", "%s:1@%s" % (repo, digest))
        + run_parts(prefix, ["${bydigest:image}", full + ":1@" + digest]))
    docker_recorder.clear()
    buildout.ok(env=docker_recorder.env)
    assert docker_recorder.commands("pull") == [["pull", by_digest]]
    pulled = inspect("image", by_digest)
    assert pulled["Id"] == image_id and pulled["RepoDigests"] == [by_digest]
    assert pulled["RepoTags"] == []
    for i in range(2):
        assert inspect("container", "%s-c%d" % (prefix, i))["Image"] == image_id
    assert buildout.installed().count("image = %s\n" % by_digest) == 3  # 2 pulls, run0
    # a digest is not pulled again in newest mode
    docker_recorder.clear()
    buildout.ok("-n", env=docker_recorder.env)
    assert docker_recorder.commands("pull") == []

    # by tag, without the tag (latest: not there), and by the registry's namespace
    registry.retag(repo, "1", "latest")
    buildout.configure(
        registry_part(registry, "bytag", "pull", full + ":1")
        + registry_part(registry, "latest", "pull", full)
        + registry_part(registry, "ns", "pull", "%s-x" % prefix).replace(
            "registry = %s" % host, "registry = %s/ns" % host)
        + run_parts(prefix, ["${bytag:image}", "${latest:image}", "${ns:image}"]))
    docker_recorder.clear()
    buildout.ok(env=docker_recorder.env)
    assert sorted(docker_recorder.commands("pull")) == [["pull", full + ":1"],
                                                         ["pull", full + ":latest"]]
    assert sorted(inspect("image", full)["RepoTags"]) == [full + ":1", full + ":latest"]
    for i in range(3):
        assert inspect("container", "%s-c%d" % (prefix, i))["Image"] == image_id

    buildout.uninstall_all()
    assert inspect("image", image_id) is None


def test_push_a_local_image_spelled_with_library(buildout, prefix, base_image, registry):
    """The local image is found under library/NAME; the registry path keeps the name as written."""
    local = prefix + "-app:1"
    docker("tag", base_image, local)
    buildout.configure(registry_part(registry, "out", "push", "library/" + local))
    buildout.ok()
    assert registry.tags("library/%s-app" % prefix) == ["1"]
    assert inspect("image", "%s/library/%s" % (registry.host, local)) is None
    assert inspect("image", local) is not None


def test_pull_without_tag_and_with_hub_spelling_errors(buildout, prefix, registry):
    buildout.configure(registry_part(registry, "bad", "pull", "docker.io/library/%s-x" % prefix))
    line = buildout.fails().error_line()
    assert "Part [bad], option 'image'" in line and "names registry docker.io" in line, line
    buildout.configure(registry_part(registry, "bad", "pull", "%s-X" % prefix))
    line = buildout.fails().error_line()
    assert "Part [bad], option 'image'" in line and "must be lowercase" in line, line
