"""Remote engines over ssh (issue 20): one ssh connection per engine and run,
host keys and keys checked, faults ending in one clean error.

Every assertion reads the remote dockerd directly (its socket on this side),
sshd's log (accepted connections) or /proc (ssh processes).
"""

import hashlib
import os
import signal
import subprocess
import time

import pytest

from support.buildout import BUILDOUT
from support.remote import SSH_DIR, rig, ssh_processes, wait_for


def twenty_parts(prefix, base_image):
    """20 parts: 2 networks, 8 volumes, 10 containers."""
    text = ""
    for i in range(2):
        text += "[net%d]\nrecipe = dockeroo:docker.network\nname = %s-net%d\n\n" % (i, prefix, i)
    for i in range(8):
        text += "[vol%d]\nrecipe = dockeroo:docker.volume\nname = %s-vol%d\n\n" % (i, prefix, i)
    for i in range(10):
        text += ("[c%d]\nrecipe = dockeroo:docker.run\nname = %s-c%d\nimage = %s\n"
                 "command = sleep 3600\nnetworks = ${net%d:name}\n%s\n"
                 % (i, prefix, i, base_image, i % 2,
                    "volumes = ${vol%d:name}:/data\n" % i if i < 8 else ""))
    return text


def test_twenty_parts_one_connection_each_run(rbuildout, prefix, base_image, remote_hosts):
    host = remote_hosts[0]
    rbuildout.configure(twenty_parts(prefix, base_image))
    before = host.accepted()
    rbuildout.ok()
    assert host.accepted() - before == 1
    assert len(host.names("container", prefix)) == 10
    assert len(host.names("volume", prefix)) == 8
    assert len(host.names("network", prefix)) == 2
    running = host.inspect("container", prefix + "-c3")
    assert running["State"]["Running"] and running["Mounts"][0]["Name"] == prefix + "-vol3"
    assert not ssh_processes(), "the connection must end with the run"

    before = host.accepted()
    result = rbuildout.ok()
    assert host.accepted() - before == 1, result.output
    assert "creating" not in result.output

    before = host.accepted()
    proc = subprocess.run([os.path.join(os.path.dirname(BUILDOUT),
                                        "dockeroo"), "plan"], cwd=rbuildout.directory,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **rbuildout.client.env))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert host.accepted() - before == 1

    before = host.accepted()
    rbuildout.uninstall_all()
    assert host.accepted() - before == 1
    for kind in ("container", "volume", "network"):
        assert host.names(kind, prefix) == []
    assert not ssh_processes()


def test_plan_over_ssh_names_changes(rbuildout, prefix, base_image, remote_hosts):
    rbuildout.configure("""
        [c]
        recipe = dockeroo:docker.run
        name = %s-c
        image = %s
        command = sleep 3600
        """ % (prefix, base_image))
    bin_dir = os.path.dirname(BUILDOUT)
    env = dict(os.environ, **rbuildout.client.env)
    proc = subprocess.run([os.path.join(bin_dir, "dockeroo"), "plan"], cwd=rbuildout.directory,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "create container %s-c" % prefix in proc.stdout
    assert remote_hosts[0].names("container", prefix) == []


def test_copy_five_mib_files_over_ssh(rbuildout, prefix, base_image, remote_hosts):
    host = remote_hosts[0]
    rbuildout.configure("""
        [src]
        recipe = dockeroo:docker.run
        name = %(p)s-src
        image = %(i)s
        command = sleep 3600
        script = head -c 5242880 /dev/urandom > /big.bin && mkdir /d && head -c 5242880 /dev/urandom > /d/two.bin

        [dst]
        recipe = dockeroo:docker.run
        name = %(p)s-dst
        image = %(i)s
        command = sleep 3600

        [copy]
        recipe = dockeroo:docker.copy
        container-from = ${src:name}
        container-to = ${dst:name}
        paths =
            /big.bin
            /d/
        """ % {"p": prefix, "i": base_image})
    before = host.accepted()
    rbuildout.ok()
    assert host.accepted() - before == 1
    for path in ("/big.bin", "/d/two.bin"):
        sums = [host.docker("exec", prefix + side, "sha256sum", path).split()[0]
                for side in ("-src", "-dst")]
        size = host.docker("exec", prefix + "-dst", "stat", "-c", "%s", path).strip()
        assert sums[0] == sums[1] and size == "5242880"


def test_build_over_ssh(rbuildout, prefix, base_image, remote_hosts):
    rbuildout.write("ctx/Dockerfile", "FROM %s\nCOPY hello.txt /hello.txt\n" % base_image)
    rbuildout.write("ctx/hello.txt", "built remotely\n")
    rbuildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %(p)s-img:1
        source = ctx

        [c]
        recipe = dockeroo:docker.run
        name = %(p)s-c
        image = ${img:image}
        command = sleep 3600
        """ % {"p": prefix})
    rbuildout.ok()
    host = remote_hosts[0]
    assert host.docker("exec", prefix + "-c", "cat", "/hello.txt") == "built remotely\n"
    assert host.inspect("image", prefix + "-img:1") is not None


# -- faults ------------------------------------------------------------------------------

def one_container(rbuildout, prefix, base_image, extra=""):
    rbuildout.configure("""
        [c]
        recipe = dockeroo:docker.run
        name = %s-c
        image = %s
        command = sleep 3600
        timeout = 20
        %s
        """ % (prefix, base_image, extra))


def assert_clean_failure(result, *words):
    line = result.error_line()
    assert line.startswith("Error: Part [c]") and "engine-url" in line, result.output
    for word in words:
        assert word in line, result.output


def test_changed_host_key_is_refused_naming_known_hosts(rbuildout, prefix, base_image,
                                                        remote_hosts, ssh_client, tmp_path):
    host = remote_hosts[0]
    ssh_client.write_known_hosts({host.address: ssh_client.other_key(str(tmp_path))})
    one_container(rbuildout, prefix, base_image)
    result = rbuildout.fails()
    assert_clean_failure(result, "Host key verification failed.", ssh_client.known_hosts)
    assert host.names("container", prefix) == []
    assert not ssh_processes()


def test_unknown_host_key_is_refused(rbuildout, prefix, base_image, remote_hosts, ssh_client):
    ssh_client.write_known_hosts({})
    one_container(rbuildout, prefix, base_image)
    result = rbuildout.fails()
    assert_clean_failure(result, "Host key verification failed.")
    assert remote_hosts[0].names("container", prefix) == []


def test_wrong_key_is_refused(rbuildout, prefix, base_image, remote_hosts, ssh_client):
    os.remove(ssh_client.key)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", ssh_client.key],
                   check=True)
    one_container(rbuildout, prefix, base_image)
    result = rbuildout.fails()
    assert_clean_failure(result, "Permission denied (publickey)")
    assert remote_hosts[0].names("container", prefix) == []
    assert not ssh_processes()


def test_unreachable_host_fails_within_timeout(rbuildout, prefix, base_image, remote_hosts):
    rig("cut", "2")
    try:
        rbuildout.url = remote_hosts[1].url
        rbuildout.configure("""
            [c]
            recipe = dockeroo:docker.run
            name = %s-c
            image = %s
            timeout = 4
            """ % (prefix, base_image))
        start = time.monotonic()
        result = rbuildout.fails()
        took = time.monotonic() - start
    finally:
        rig("uncut", "2")
    assert_clean_failure(result, "timed out")
    assert took < 4 + 10, took
    assert not ssh_processes()


def start_background(rbuildout):
    env = dict(os.environ, **rbuildout.client.env)
    return subprocess.Popen([BUILDOUT, "-N"], cwd=rbuildout.directory,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_sshd_stopped_mid_run(rbuildout, prefix, base_image, remote_hosts):
    host = remote_hosts[0]
    one_container(rbuildout, prefix, base_image, "script = sleep 30")
    proc = start_background(rbuildout)
    try:
        assert wait_for(lambda: host.names("container", prefix), 60)
        rig("sshd-stop", "1")
        start = time.monotonic()
        out, _ = proc.communicate(timeout=60)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rig("sshd-start", "1")
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    error = [l for l in out.splitlines() if l.startswith("Error:")][-1]
    assert error.startswith("Error: Part [c]") and "lost the ssh connection" in error, out
    assert "engine-url" in error, out
    assert took < 20, took
    assert not ssh_processes()
    # the next run converges (removes the half-made container, makes it again)
    one_container(rbuildout, prefix, base_image)
    rbuildout.ok()
    assert host.inspect("container", prefix + "-c")["State"]["Running"]


def test_kill_then_next_run_sweeps_the_connection(rbuildout, prefix, base_image, remote_hosts):
    host = remote_hosts[0]
    one_container(rbuildout, prefix, base_image, "script = sleep 30")
    proc = start_background(rbuildout)
    try:
        assert wait_for(lambda: host.names("container", prefix) and ssh_processes(proc.pid), 60)
        stray = ssh_processes(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stray and ssh_processes() == stray  # ssh outlives a SIGKILL of buildout...
    one_container(rbuildout, prefix, base_image)
    rbuildout.ok()  # ...and the next run ends it and converges
    assert not ssh_processes()
    assert not any(str(proc.pid) + "-" in n for n in os.listdir(SSH_DIR))
    assert host.inspect("container", prefix + "-c")["State"]["Running"]


def test_ctrl_c_ends_the_connection_after_the_rollback(rbuildout, prefix, base_image,
                                                       remote_hosts):
    host = remote_hosts[0]
    one_container(rbuildout, prefix, base_image, "script = sleep 30")
    proc = start_background(rbuildout)
    try:
        assert wait_for(lambda: host.names("container", prefix) and ssh_processes(proc.pid), 60)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert host.names("container", prefix) == [], out  # rolled back over the connection
    assert not ssh_processes()
