"""Two hosts in one buildout (issue 20): build on host A, run on A and on B, and
docker.copy from a container on A to one on B (from-engine-url), checked by
sha256 and size; one ssh connection per host and run; nothing left after removal."""

import pytest

from support.remote import ssh_processes

FIVE_MIB = 5 * 1024 * 1024


def two_host_parts(prefix, base_image, a, b):
    return """
        [img]
        recipe = dockeroo:docker.build
        name = %(p)s-img:1
        source = ctx
        engine-url = %(a)s

        [src]
        recipe = dockeroo:docker.run
        name = %(p)s-src
        image = ${img:name}
        command = sleep 3600
        engine-url = %(a)s

        [dst]
        recipe = dockeroo:docker.run
        name = %(p)s-dst
        image = %(i)s
        command = sleep 3600
        engine-url = %(b)s

        [copy]
        recipe = dockeroo:docker.copy
        container-from = ${src:name}
        from-engine-url = %(a)s
        container-to = ${dst:name}
        engine-url = %(b)s
        paths =
            /data/
            /big.bin /copied/big.bin
        """ % {"p": prefix, "i": base_image, "a": a.url, "b": b.url}


def test_build_on_a_copy_to_b(rbuildout, prefix, base_image, remote_hosts):
    a, b = remote_hosts
    rbuildout.write("ctx/Dockerfile", "FROM %s\nRUN mkdir /data && head -c %d /dev/urandom > "
                    "/data/one.bin && head -c %d /dev/urandom > /data/two.bin && head -c %d "
                    "/dev/urandom > /big.bin\n" % (base_image, FIVE_MIB, FIVE_MIB, FIVE_MIB))
    rbuildout.configure(two_host_parts(prefix, base_image, a, b))
    before = (a.accepted(), b.accepted())
    result = rbuildout.ok()
    assert (a.accepted() - before[0], b.accepted() - before[1]) == (1, 1), result.output
    assert a.inspect("image", prefix + "-img:1") is not None
    assert b.inspect("image", prefix + "-img:1") is None  # built on A only
    for src_path, dst_path in (("/data/one.bin", "/data/one.bin"),
                               ("/data/two.bin", "/data/two.bin"),
                               ("/big.bin", "/copied/big.bin")):
        want = a.docker("exec", prefix + "-src", "sha256sum", src_path).split()[0]
        got = b.docker("exec", prefix + "-dst", "sha256sum", dst_path).split()[0]
        size = b.docker("exec", prefix + "-dst", "stat", "-c", "%s", dst_path).strip()
        assert got == want and int(size) == FIVE_MIB, dst_path
    assert not ssh_processes()

    # a no-op run: nothing copied again, one connection per host
    before = (a.accepted(), b.accepted())
    result = rbuildout.ok()
    assert "Copying" not in result.output
    assert (a.accepted() - before[0], b.accepted() - before[1]) == (1, 1), result.output

    rbuildout.uninstall_all()
    for host in (a, b):
        for kind in ("container", "image", "volume", "network"):
            assert host.names(kind, prefix) == [], (host.index, kind)
    assert not ssh_processes()


def test_missing_source_on_the_other_host_names_the_option(rbuildout, prefix, base_image,
                                                           remote_hosts):
    a, b = remote_hosts
    rbuildout.configure("""
        [dst]
        recipe = dockeroo:docker.run
        name = %(p)s-dst
        image = %(i)s
        command = sleep 3600
        engine-url = %(b)s

        [copy]
        recipe = dockeroo:docker.copy
        container-from = %(p)s-nowhere
        from-engine-url = %(a)s
        container-to = ${dst:name}
        engine-url = %(b)s
        paths = /etc/hostname
        """ % {"p": prefix, "i": base_image, "a": a.url, "b": b.url})
    result = rbuildout.fails()
    assert "container-from" in result.error_line() and prefix + "-nowhere" in result.error_line()
    assert not ssh_processes()
