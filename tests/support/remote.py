"""Remote Docker hosts over ssh for tests/remote: the rig (tests/remote/hosts.sh) and a
private ssh client configuration.

dockeroo runs the user's ``ssh`` and so reads the user's ~/.ssh (OpenSSH finds
it through the password database, not $HOME).  The tests never touch the real
one: :class:`SshClient` puts a wrapper named ``ssh`` first on PATH that runs
the real client with ``-F`` (a private config: the rig's test key, no agent, a
private known_hosts).  The docker CLI's own ``ssh://`` support runs the same
``ssh`` from PATH, so the plain-ssh comparison uses the same configuration.
"""

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RIG = os.path.join(HERE, "remote", "hosts.sh")
CLIENT_KEY = "/run/dockeroo-dkremote/client_key"
#: where dockeroo keeps its connections' sockets (dockeroo.engine.ssh.base_directory)
SSH_DIR = os.path.join(tempfile.gettempdir(), "dockeroo-ssh-%d" % os.getuid())


def rig(*args, timeout=300):
    """Run ``tests/remote/hosts.sh ARGS``; its stdout."""
    proc = subprocess.run(["bash", RIG, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError("hosts.sh %s failed: %s%s" % (" ".join(args), proc.stdout,
                                                           proc.stderr))
    return proc.stdout


class RemoteHost:
    """Host I of the rig: its ssh URL, and its dockerd reached directly (for
    checking what it really holds, without ssh)."""

    def __init__(self, index, address, socket):
        self.index = int(index)
        self.address = address
        self.socket = socket
        self.url = "ssh://root@%s" % address
        self.env = dict(os.environ, DOCKER_HOST="unix://" + socket)
        for key in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            self.env.pop(key, None)

    @property
    def directory(self):
        return os.path.dirname(self.socket)

    @property
    def peer(self):
        """This side's address on host I's link (hosts.sh: .4I+1 of 172.28.80.0/24)."""
        return "172.28.80.%d" % (4 * self.index + 1)

    def docker(self, *args, check=True, input=None, timeout=120):
        proc = subprocess.run(["docker", *args], input=input, capture_output=True,
                              env=self.env, timeout=timeout,
                              text=not isinstance(input, bytes))
        if check and proc.returncode != 0:
            raise AssertionError("docker %s failed on host %d: %s" % (" ".join(args),
                                                                     self.index, proc.stderr))
        return proc.stdout

    def inspect(self, kind, name):
        proc = subprocess.run(["docker", kind, "inspect", name], capture_output=True, text=True,
                              env=self.env, timeout=60)
        return json.loads(proc.stdout)[0] if proc.returncode == 0 else None

    def names(self, kind, prefix):
        listing = {"container": ["ps", "-a", "--format", "{{.Names}}"],
                   "network": ["network", "ls", "--format", "{{.Name}}"],
                   "volume": ["volume", "ls", "--format", "{{.Name}}"],
                   "image": ["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]}[kind]
        names = self.docker(*listing).split()
        if kind == "image":  # also REGISTRY/PREFIX/...: pushed and pulled images
            return sorted(n for n in names if n.startswith(prefix) or "/%s" % prefix in n)
        return sorted(n for n in names if n.startswith(prefix))

    def remove_prefixed(self, prefix):
        containers = self.names("container", prefix)
        if containers:
            self.docker("rm", "-f", "-v", *containers, check=False)
        for kind in ("network", "volume"):
            names = self.names(kind, prefix)
            if names:
                self.docker(kind, "rm", *names, check=False)
        images = self.names("image", prefix)
        if images:
            self.docker("image", "rm", "-f", *images, check=False)

    def host_key(self):
        with open(os.path.join(self.directory, "host_key.pub")) as handle:
            return handle.read().split()[:2]

    def accepted(self):
        """How many connections sshd accepted (its log's "Accepted publickey" lines)."""
        try:
            with open(os.path.join(self.directory, "sshd.log"), errors="replace") as handle:
                return sum("Accepted publickey" in line for line in handle)
        except FileNotFoundError:
            return 0


def hosts(count=2):
    """The rig's hosts 1..COUNT (started)."""
    return [RemoteHost(*line.split()) for line in rig("env", str(count)).splitlines()
            if line.strip()]


class SshClient:
    """A private ssh client configuration in DIRECTORY: ``env`` puts its ``ssh``
    wrapper first on PATH."""

    def __init__(self, directory, hosts, key=CLIENT_KEY):
        self.directory = directory
        self.bin = os.path.join(directory, "bin")
        self.config = os.path.join(directory, "ssh_config")
        self.known_hosts = os.path.join(directory, "known_hosts")
        os.makedirs(self.bin, exist_ok=True)
        self.key = os.path.join(directory, "id_ed25519")
        shutil.copyfile(key, self.key)
        os.chmod(self.key, 0o600)
        self.write_known_hosts({h.address: h.host_key() for h in hosts})
        with open(self.config, "w") as handle:
            handle.write("Host *\n  IdentityFile %s\n  IdentitiesOnly yes\n  IdentityAgent none\n"
                         "  UserKnownHostsFile %s\n  GlobalKnownHostsFile /dev/null\n"
                         % (self.key, self.known_hosts))
        wrapper = os.path.join(self.bin, "ssh")
        with open(wrapper, "w") as handle:
            handle.write('#!/bin/sh\nexec %s -F %s "$@"\n' % (shutil.which("ssh") or "/usr/bin/ssh",
                                                              self.config))
        os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def write_known_hosts(self, keys):
        with open(self.known_hosts, "w") as handle:
            for address, (kind, key) in keys.items():
                handle.write("%s %s %s\n" % (address, kind, key))

    def other_key(self, directory):
        """A fresh host key pair's public half (kind, key): not any host's."""
        path = os.path.join(directory, "other_host_key")
        if not os.path.exists(path):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
        with open(path + ".pub") as handle:
            return handle.read().split()[:2]

    @property
    def env(self):
        return {"PATH": self.bin + os.pathsep + os.environ.get("PATH", "")}


def ssh_processes(owner=None):
    """Pids of dockeroo's ssh connections (found through their directories under
    SSH_DIR and the journal naming the buildout process that started them): those
    of buildout process OWNER, or without OWNER the strays, whose buildout is gone
    (other test processes may hold live connections at the same time)."""
    try:
        names = os.listdir(SSH_DIR)
    except FileNotFoundError:
        return []
    dirs = []
    for name in names:
        try:
            with open(os.path.join(SSH_DIR, name, "journal.json")) as handle:
                started_by = json.load(handle)["owner"]
        except (OSError, ValueError, KeyError):
            continue
        alive = os.path.exists("/proc/%d" % started_by) and not _zombie(started_by)
        if (owner is None and not alive) or started_by == owner:
            dirs.append(os.path.join(SSH_DIR, name).encode() + b"/")
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue
        if not words or os.path.basename(words[0]) != b"ssh":
            continue
        if any(d in w for d in dirs for w in words):
            found.append(int(pid))
        elif owner is None and any(_removed_dir(w) for w in words):
            found.append(int(pid))  # its directory is gone: nothing would ever end it
    return found


def _removed_dir(word):
    """Does WORD (an ssh argument) name a socket in a connection directory that is gone?"""
    base = SSH_DIR.encode() + b"/"
    if base not in word:
        return False
    rest = word[word.index(base) + len(base):]
    return not os.path.isdir(os.path.join(SSH_DIR, rest.split(b"/")[0].decode("utf-8", "replace")))


def _zombie(pid):
    try:
        with open("/proc/%d/status" % pid) as handle:
            return any(line.startswith("State:") and "Z" in line.split()[1:2] for line in handle)
    except OSError:
        return False


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
