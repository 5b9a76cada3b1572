"""docker.volume against the real engine."""

import pytest

from support.engine import docker, inspect


def test_volume_install_update_uninstall(buildout, prefix):
    name = prefix + "-data"
    buildout.configure("""
        [data]
        recipe = dockeroo:docker.volume
        name = %s
        labels =
            tier=db
            note=a b=c
        """ % name)
    buildout.ok()
    vol = inspect("volume", name)
    assert vol["Driver"] == "local"
    assert vol["Labels"]["tier"] == "db"
    assert vol["Labels"]["note"] == "a b=c"
    assert vol["Labels"]["io.dockeroo.part"] == "data"
    created = vol["CreatedAt"]

    result = buildout.ok()
    assert "Updating data" in result.output
    assert inspect("volume", name)["CreatedAt"] == created

    buildout.uninstall_all()
    assert inspect("volume", name) is None


@pytest.mark.podman_limit("volume size", "Podman's local volume driver takes o=size= as a "
                          "quota, which needs a filesystem with project quotas")
def test_volume_driver_opts_and_keep(buildout, prefix):
    name = prefix + "-tmpfs"
    buildout.configure("""
        [scratch]
        recipe = dockeroo:docker.volume
        name = %s
        driver-opts =
            type=tmpfs
            device=tmpfs
            o=size=1m,uid=1000
        keep = true
        """ % name)
    buildout.ok()
    assert inspect("volume", name)["Options"] == {"type": "tmpfs", "device": "tmpfs",
                                                   "o": "size=1m,uid=1000"}
    buildout.uninstall_all()
    assert inspect("volume", name) is not None, "keep = true must leave the volume"
    docker("volume", "rm", name)


def test_volume_existing_with_other_options_is_an_error(buildout, prefix):
    name = prefix + "-other"
    docker("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", name)
    buildout.configure("""
        [v]
        recipe = dockeroo:docker.volume
        name = %s
        """ % name)
    result = buildout.fails()
    assert "Part [v]" in result.error_line()
    assert "already exists" in result.error_line()
    assert inspect("volume", name)["Options"] == {"type": "tmpfs", "device": "tmpfs"}


def test_volume_in_use_uninstall_error(buildout, prefix, base_image):
    name = prefix + "-busy"
    buildout.configure("""
        [v]
        recipe = dockeroo:docker.volume
        name = %s
        """ % name)
    buildout.ok()
    docker("create", "--name", prefix + "-user", "-v", name + ":/data", base_image, "true")
    result = buildout.uninstall_all()
    assert not result.ok
    assert "cannot remove volume %s: used by container %s-user, which no part of this " \
        "buildout manages" % (name, prefix) in result.output
    assert "Traceback" not in result.output
    assert inspect("volume", name) is not None
    docker("rm", prefix + "-user")
    buildout.uninstall_all()
    assert inspect("volume", name) is None


def test_volume_not_created_by_part_is_left_alone(buildout, prefix):
    name = prefix + "-foreign"
    docker("volume", "create", name)
    buildout.configure("""
        [v]
        recipe = dockeroo:docker.volume
        name = %s
        """ % name)
    buildout.ok()
    result = buildout.uninstall_all()
    assert "was not created by this part" in result.output
    assert inspect("volume", name) is not None


def test_volume_bad_options(buildout, prefix):
    for option, value, needle in [
        ("keep", "maybe", "'keep'"),
        ("labels", "novalue", "'labels'"),
        ("driver", "two words", "'driver'"),
        ("timeout", "soon", "'timeout'"),
    ]:
        buildout.configure("""
            [bad]
            recipe = dockeroo:docker.volume
            name = %s-bad
            %s = %s
            """ % (prefix, option, value))
        result = buildout.fails()
        line = result.error_line()
        assert "Part [bad]" in line and needle in line, result.output
        assert inspect("volume", prefix + "-bad") is None


def test_volume_bad_names(buildout, prefix):
    """Names Docker refuses, or that the docker CLI would read as options,
    are errors naming the option before any docker call changes anything."""
    for name in ("-x", "--help", "%s bad" % prefix, "x", "ünï%s" % prefix, "%s/a" % prefix):
        buildout.configure("""
            [bad]
            recipe = dockeroo:docker.volume
            name = %s
            """ % name)
        line = buildout.fails().error_line()
        assert "Part [bad], option 'name'" in line and "2 or more letters" in line, (name, line)
    # the name defaults to the part name: the error says so
    buildout.configure("[v]\nrecipe = dockeroo:docker.volume\n")
    line = buildout.fails().error_line()
    assert "Part [v], option 'name' = 'v'" in line and "defaults to the part name" in line, line
    assert [o for o in docker("volume", "ls", "--format", "{{.Name}}").split()
            if prefix in o or o in ("-x", "--help", "x", "v")] == []
