"""Two hosts in one buildout (issue 20): build on host A, run on A and on B, and
docker.copy from a container on A to one on B (from-engine-url), checked by
sha256 and size; one ssh connection per host and run; nothing left after removal."""

import os
import subprocess
import time

from support.buildout import BUILDOUT
from support.faults import FaultDocker
from support.remote import rig, ssh_processes

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


# -- kills and cuts --------------------------------------------------------------------

def fault_env(fault, client, **kwargs):
    env = fault.env(**kwargs)
    env["PATH"] = os.pathsep.join([fault.bin, client.bin, os.environ.get("PATH", "")])
    return env


def converged(prefix, a, b):
    """The two-host buildout's state: containers running, files equal (sha256, size)."""
    assert a.inspect("container", prefix + "-src")["State"]["Running"]
    assert b.inspect("container", prefix + "-dst")["State"]["Running"]
    for src_path, dst_path in (("/data/one.bin", "/data/one.bin"), ("/big.bin", "/copied/big.bin")):
        want = a.docker("exec", prefix + "-src", "sha256sum", src_path).split()[0]
        got = b.docker("exec", prefix + "-dst", "sha256sum", dst_path).split()[0]
        assert got == want, dst_path
    return True


def nothing_left(prefix, hosts):
    for host in hosts:
        for kind in ("container", "image", "volume", "network"):
            assert host.names(kind, prefix) == [], (host.index, kind)
    assert not ssh_processes()


def kill_points(count):
    """Every docker call with DKREMOTE_SWEEP=all, else every fifth one (the lane's time)."""
    step = 1 if os.environ.get("DKREMOTE_SWEEP") == "all" else 5
    return range(1, count + 1, step)


def test_two_host_buildout_converges_after_kills(rbuildout, prefix, base_image, remote_hosts,
                                                 ssh_client, tmp_path):
    a, b = remote_hosts
    rbuildout.write("ctx/Dockerfile", "FROM %s\nRUN mkdir /data && head -c %d /dev/urandom > "
                    "/data/one.bin && head -c %d /dev/urandom > /data/two.bin && head -c %d "
                    "/dev/urandom > /big.bin\n" % (base_image, FIVE_MIB, FIVE_MIB, FIVE_MIB))
    rbuildout.configure(two_host_parts(prefix, base_image, a, b))
    fault = FaultDocker(str(tmp_path / "fault"))
    rbuildout.ok(env=fault_env(fault, ssh_client))
    count = len(fault.calls())
    converged(prefix, a, b)
    rbuildout.uninstall_all()
    nothing_left(prefix, remote_hosts)
    for k in kill_points(count):
        rbuildout.configure(two_host_parts(prefix, base_image, a, b))  # uninstall_all emptied it
        fault.reset()
        killed = rbuildout.run(env=fault_env(fault, ssh_client, at=k))
        assert not killed.ok or fault.fault() is None, killed.output
        result = rbuildout.run()
        assert result.ok, "after a kill at call %d of %d: %s" % (k, count, result.output)
        try:
            converged(prefix, a, b)
        except (AssertionError, TypeError) as exc:
            raise AssertionError("after a kill at call %d of %d: %r\nkilled run:\n%s\nnext run:\n%s"
                                 % (k, count, exc, killed.output, result.output))
        assert not ssh_processes(), "kill at call %d" % k
        rbuildout.uninstall_all()
        nothing_left(prefix, remote_hosts)


def test_cut_mid_copy_is_a_clean_error(rbuildout, prefix, base_image, remote_hosts):
    a, b = remote_hosts
    rbuildout.configure("""
        [src]
        recipe = dockeroo:docker.run
        name = %(p)s-src
        image = %(i)s
        command = sleep 3600
        script = head -c 250000000 /dev/zero > /big.bin
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
        timeout = 8
        paths = /big.bin
        """ % {"p": prefix, "i": base_image, "a": a.url, "b": b.url})
    env = dict(os.environ, **rbuildout.client.env)
    proc = subprocess.Popen([BUILDOUT, "-N"], cwd=rbuildout.directory, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Copying" in line:
                rig("cut", "2")
                start = time.monotonic()
                break
        lines.extend(proc.stdout)
        proc.wait(timeout=120)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rig("uncut", "2")
    out = "".join(lines)
    assert proc.returncode == 1, out
    assert "Traceback" not in out, out
    error = [l for l in out.splitlines() if l.startswith("Error:")][-1]
    assert error.startswith("Error: Part [copy]") and "timeout" in error, out
    assert took < 8 + 15, took
    assert not ssh_processes()
    # the next run (with time enough on this loaded machine) copies again
    with open(rbuildout.path("buildout.cfg")) as handle:
        text = handle.read()
    with open(rbuildout.path("buildout.cfg"), "w") as handle:
        handle.write(text.replace("timeout = 8\n", "timeout = 600\n"))
    result = rbuildout.ok()
    assert "Copying" in result.output
    size = b.docker("exec", prefix + "-dst", "stat", "-c", "%s", "/big.bin").strip()
    assert size == "250000000"


def test_build_on_a_push_pull_and_run_on_b(rbuildout, prefix, base_image, remote_hosts,
                                           remote_registry):
    """The issue's example: build on host A, push to a registry, pull and run on host B."""
    a, b = remote_hosts
    rbuildout.write("ctx/Dockerfile", "FROM %s\nRUN echo built-on-a > /origin\n" % base_image)
    rbuildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %(r)s/%(p)s/app:1
        source = ctx
        engine-url = %(a)s

        [publish]
        recipe = dockeroo:docker.push
        image = ${img:name}
        engine-url = %(a)s

        [fetch]
        recipe = dockeroo:docker.pull
        image = ${publish:pushed-image}
        engine-url = %(b)s

        [app]
        recipe = dockeroo:docker.run
        name = %(p)s-app
        image = ${fetch:image}
        command = sleep 3600
        engine-url = %(b)s
        """ % {"p": prefix, "r": remote_registry, "a": a.url, "b": b.url})
    before = (a.accepted(), b.accepted())
    result = rbuildout.ok()
    assert (a.accepted() - before[0], b.accepted() - before[1]) == (1, 1), result.output
    assert b.docker("exec", prefix + "-app", "cat", "/origin") == "built-on-a\n"
    ref = "%s/%s/app:1" % (remote_registry, prefix)
    assert a.inspect("image", ref)["Id"] == b.inspect("image", ref)["Id"]
    rbuildout.uninstall_all()
    assert b.names("container", prefix) == []
    assert not ssh_processes()
