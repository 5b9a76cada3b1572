"""Fixtures of the remote tests: Docker hosts reached over ssh (tests/remote/hosts.sh).

The session fixture ``remote_hosts`` starts two hosts (each a network
namespace with its own dockerd and sshd, 172.28.80.0/20) and stops them at
the end (DKREMOTE_KEEP=1 leaves them running for the next session).
``ssh_client`` is a private ssh configuration (the rig's key, a known_hosts
with the hosts' keys, no agent): the buildouts of these tests never read
the real ~/.ssh.  ``rbuildout`` is a buildout whose dockeroo parts all name
host 1 with ``engine-url = ssh://root@ADDRESS``.
"""

import hashlib
import os
import re
import shutil
import socket
import subprocess
import textwrap
import time
import uuid

import pytest

from support.buildout import Buildout
from support.busybox import BUSYBOX, busybox_rootfs_tar
from support.remote import SshClient, hosts, rig


def pytest_configure(config):
    config.addinivalue_line("markers", "remote: needs the ssh hosts of tests/remote/hosts.sh")


@pytest.fixture(scope="session")
def remote_hosts():
    if os.geteuid() != 0:
        pytest.fail("the remote tests start private dockerd and sshd instances and need root")
    rig("start", "2")
    yield hosts(2)
    if os.environ.get("DKREMOTE_KEEP") != "1":
        rig("stop", "2")


@pytest.fixture(scope="session")
def base_image(remote_hosts, tmp_path_factory):
    """The busybox image of tests/conftest.py, imported into every remote host."""
    with open(BUSYBOX, "rb") as handle:
        ref = "dockeroo-test/busybox:%s" % hashlib.sha256(handle.read()).hexdigest()[:12]
    path = str(tmp_path_factory.mktemp("remote-rootfs") / "rootfs.tar")
    for host in remote_hosts:
        if host.inspect("image", ref) is None:
            if not os.path.exists(path):
                busybox_rootfs_tar(path)
            host.docker("import", "--change", 'CMD ["/bin/sh"]', path, ref)
    return ref


@pytest.fixture(scope="session")
def remote_registry(remote_hosts, tmp_path_factory):
    """Debian's docker-registry (no auth, plain HTTP) on host 1's peer address on this
    side, where both hosts' engines reach it (hosts.sh allows it as insecure); its
    HOST:PORT."""
    exe = shutil.which("docker-registry")
    if not exe:
        pytest.fail("docker-registry is needed (see .ci/setup)")
    directory = str(tmp_path_factory.mktemp("remote-registry"))
    address = remote_hosts[0].peer
    with socket.socket() as s:
        s.bind((address, 0))
        port = s.getsockname()[1]
    config = os.path.join(directory, "config.yml")
    with open(config, "w") as handle:
        handle.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                     "    rootdirectory: %s/data\nhttp:\n  addr: %s:%d\n"
                     % (directory, address, port))
    log = open(os.path.join(directory, "registry.log"), "w")
    proc = subprocess.Popen([exe, "serve", config], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection((address, port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start")
    yield "%s:%d" % (address, port)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def prefix(remote_hosts):
    """A unique name prefix; everything so named is removed from the remote hosts."""
    value = "dkr%s" % uuid.uuid4().hex[:8]
    yield value
    for host in remote_hosts:
        host.remove_prefixed(value)


@pytest.fixture
def ssh_client(remote_hosts, tmp_path):
    return SshClient(str(tmp_path / "ssh"), remote_hosts)


class RemoteBuildout(Buildout):
    """A buildout whose dockeroo parts name a remote host (unless they name an
    engine themselves), run with the private ssh client on PATH."""

    def __init__(self, directory, prefix, url, client):
        super().__init__(directory, prefix)
        self.url = url
        self.client = client

    def configure(self, parts_text, parts=None):
        text = textwrap.dedent(parts_text)
        sections = re.split(r"(?m)^(?=\[)", text)
        text = "".join(s if re.search(r"(?m)^engine-url\s*=", s) else
                       re.sub(r"(?m)^(recipe\s*=\s*dockeroo:.*)$",
                              r"\1\nengine-url = %s" % self.url, s) for s in sections)
        super().configure(text, parts)

    def run(self, *args, env=None, **kwargs):
        environ = dict(self.client.env)
        environ.update(env or {})
        return super().run(*args, env=environ, **kwargs)


@pytest.fixture
def rbuildout(prefix, remote_hosts, ssh_client, tmp_path):
    bo = RemoteBuildout(str(tmp_path / "buildout"), prefix, remote_hosts[0].url, ssh_client)
    yield bo
    if os.path.exists(bo.path(".installed.cfg")):
        bo.uninstall_all()
