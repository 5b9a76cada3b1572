"""A forced reinstall of every part changes nothing in Docker.

Buildout reinstalls every part (``install()``, not ``update()``) when
anything is pip-installed into its environment, and also when
``.installed.cfg`` is gone.  Deleting ``.installed.cfg`` and running again
simulates that: every recipe must see that Docker already holds what its
part describes, and create, build, push, copy or remove nothing.
"""

import os
import textwrap

from support.engine import docker, free_subnet, inspect

#: docker commands (first words) that change nothing
READ_ONLY = {"inspect", "ps", "info", "version", "images", "image inspect", "container inspect",
             "network inspect", "volume inspect", "image ls", "network ls", "volume ls",
             "container ls", "--version", "buildx version"}


def changing(commands):
    """The recorded docker argv lists that may change an object."""
    found = []
    for argv in commands:
        head = argv[0] if argv else ""
        two = " ".join(argv[:2])
        if head in READ_ONLY or two in READ_ONLY:
            continue
        found.append(argv)
    return found


def state(prefix, names):
    """(kind, name) -> id, for the objects the parts made."""
    found = {}
    for kind, name in names:
        obj = inspect(kind, name)
        assert obj is not None, (kind, name)
        found[(kind, name)] = obj.get("Id") or obj.get("Name")
        if kind == "container":
            found[(kind, name, "running")] = obj["State"]["Running"]
            found[(kind, name, "started")] = obj["State"]["StartedAt"]
    return found


def test_reinstall_of_every_recipe_changes_nothing(buildout, prefix, base_image, registry, www,
                                                   docker_recorder):
    subnet = free_subnet()
    buildout.write("context/Dockerfile", "FROM %s\nCOPY hello /hello\n" % base_image)
    buildout.write("context/hello", "hello\n")
    buildout.write("layout/etc/app.conf", "x=1\n")
    values = dict(prefix=prefix, base=base_image, subnet=subnet, gateway=subnet[1],
                  registry=registry.host, user=registry.username, password=registry.password,
                  rootfs=www.url("rootfs.tar.gz"), sha=www.sha256("rootfs.tar.gz"))
    buildout.configure(textwrap.dedent("""
        [vol]
        recipe = dockeroo:docker.volume
        name = %(prefix)s-vol
        labels = a=b

        [net]
        recipe = dockeroo:docker.network
        name = %(prefix)s-net
        subnet = %(subnet)s
        gateway = %(gateway)s

        [img]
        recipe = dockeroo:docker.build
        name = %(prefix)s-img:1
        source = context
        build-args = A=1

        [push]
        recipe = dockeroo:docker.push
        name = ${img:image}
        registry = %(registry)s
        username = %(user)s
        password = %(password)s

        [pull]
        recipe = dockeroo:docker.pull
        image = %(registry)s/%(prefix)s-img:1
        username = %(user)s
        password = %(password)s
        dummy = ${push:pushed-image}

        [app]
        recipe = dockeroo:docker.run
        container = %(prefix)s-app
        image = ${img:image}
        command = sleep 3600
        networks = ${net:network}
        volumes = ${vol:volume}:/data
        layout = layout
        script = echo ran >> /data/runs

        [target]
        recipe = dockeroo:docker.run
        name = %(prefix)s-target
        image = %(base)s
        command = sleep 3600

        [copy]
        recipe = dockeroo:docker.copy
        container-from = ${app:container}
        container-to = ${target:container}
        paths =
            /hello
            /etc/app.conf /etc/copied.conf

        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %(prefix)s-boot:1
        container = %(prefix)s-boot
        archives = %(rootfs)s sha256:%(sha)s
        privileged = false
        script = echo booted > /booted

        [boot-commit]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %(prefix)s-bootc:1
        container = %(prefix)s-bootc
        archives = %(rootfs)s sha256:%(sha)s
        privileged = false
        commit = true
        script = echo booted > /booted
        """) % values)
    buildout.ok()
    names = [("volume", prefix + "-vol"), ("network", prefix + "-net"),
             ("image", prefix + "-img:1"), ("image", "%s/%s-img:1" % (registry.host, prefix)),
             ("container", prefix + "-app"), ("container", prefix + "-target"),
             ("image", prefix + "-boot:1"), ("container", prefix + "-boot"),
             ("image", prefix + "-bootc:1")]
    before = state(prefix, names)
    assert registry.tags(prefix + "-img") == ["1"]
    assert docker("exec", prefix + "-target", "cat", "/etc/copied.conf") == "x=1\n"
    assert docker("exec", prefix + "-app", "cat", "/data/runs") == "ran\n"

    # a marker the copy would overwrite, were it to copy again
    docker("exec", prefix + "-target", "sh", "-c", "echo changed > /etc/copied.conf")
    os.remove(buildout.path(".installed.cfg"))
    docker_recorder.clear()
    result = buildout.ok(env=docker_recorder.env)

    assert changing(docker_recorder.commands()) == [], result.output
    assert state(prefix, names) == before
    assert docker("exec", prefix + "-target", "cat", "/etc/copied.conf") == "changed\n"
    assert docker("exec", prefix + "-app", "cat", "/data/runs") == "ran\n"
