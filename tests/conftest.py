"""Fixtures shared by all dockeroo tests.

Integration tests run real buildouts against the real Docker engine.
Every object a test creates is named with the test's unique ``prefix``
and removed in teardown; objects not named so are never touched.
"""

import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILDOUT = os.path.join(os.path.dirname(sys.executable), "buildout")
KINDS = ("container", "image", "network", "volume")


def docker(*args, check=True, input=None, env=None):
    """Run the docker CLI, return stdout (str).

    A listing of images that fails because an image went away while it was
    being listed (Podman: "image not known", when another test removes
    images at the same time) is asked again."""
    for attempt in range(5):
        proc = subprocess.run(["docker", *args], input=input, capture_output=True, text=True,
                              env=env)
        listing = "ls" in args[:2] or args[:1] in (("images",), ("ps",))
        if proc.returncode == 0 or not listing or "image not known" not in proc.stderr:
            break
        time.sleep(0.5)
    if check and proc.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout


def used_subnets():
    ids = docker("network", "ls", "--quiet").split()
    nets = json.loads(docker("network", "inspect", *ids)) if ids else []
    return [ipaddress.ip_network(c["Subnet"], strict=False)
            for n in nets for c in ((n.get("IPAM") or {}).get("Config") or []) if c.get("Subnet")]


def subnet_pool():
    """The networks tests take their /24s from: DOCKEROO_TEST_SUBNETS (networks
    inside 172.28.0.0/14, separated by commas), all of 172.28.0.0/14 unless set.

    CI gives the lanes that share this host's network namespace (Docker's and
    Podman's) disjoint pools, so they run at the same time without one lane
    taking a subnet the other's engine already uses."""
    whole = ipaddress.ip_network("172.28.0.0/14")
    text = os.environ.get("DOCKEROO_TEST_SUBNETS", "").strip()
    pool = [ipaddress.ip_network(t.strip()) for t in text.split(",") if t.strip()] or [whole]
    for net in pool:
        if not net.subnet_of(whole) or net.prefixlen > 24:
            raise pytest.UsageError("DOCKEROO_TEST_SUBNETS: %s is not a /24 or larger inside %s"
                                    % (net, whole))
    return pool


def free_subnet(avoid=()):
    """A random /24 of the subnet pool (see subnet_pool) no existing network overlaps."""
    used = used_subnets() + list(avoid)
    candidates = [net for pool in subnet_pool() for net in pool.subnets(new_prefix=24)]
    for _ in range(200):
        net = random.choice(candidates)
        if not any(net.overlaps(u) for u in used if u.version == 4):
            return net
    pytest.fail("no free /24 in %s" % ", ".join(map(str, subnet_pool())))


def subnet_taken(text):
    """Whether an engine's error says a subnet is already in use: Docker says
    'Pool overlaps with other one on this address space', Podman 'subnet ... is
    already used on the host or by another config'."""
    text = text.lower()
    return "overlap" in text or "already used" in text


def inspect(kind, name):
    """Inspect JSON of one object, or None."""
    proc = subprocess.run(["docker", kind, "inspect", name], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def objects_with_prefix(prefix):
    found = []
    listings = {
        "container": ["ps", "-a", "--format", "{{.Names}}"],
        "volume": ["volume", "ls", "--format", "{{.Name}}"],
        "network": ["network", "ls", "--format", "{{.Name}}"],
        "image": ["image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
    }
    for kind, args in listings.items():
        for line in docker(*args).splitlines():
            name, _, image_id = line.partition(" ")
            base = name.rsplit("/", 1)[-1]
            if name.startswith(prefix) or base.startswith(prefix):
                # an image known only by digest (tag <none>) is removed by its id
                found.append((kind, image_id if name.endswith(":<none>") and image_id else name))
    return found


def remove_with_prefix(prefix):
    objs = objects_with_prefix(prefix)
    for kind in ("container", "network", "volume", "image"):
        names = [n for k, n in objs if k == kind]
        if not names:
            continue
        if kind == "container":
            docker("rm", "-f", "-v", *names, check=False)
        elif kind == "image":
            docker("image", "rm", "-f", *names, check=False)
        else:
            docker(kind, "rm", *names, check=False)


# -- the engine the tests talk to: Docker, or Podman's Docker-compatible API ------------
_ENGINE_KIND = []


def engine_kind():
    """``docker`` or ``podman`` (dockeroo's own answer to one ``docker version``)."""
    if not _ENGINE_KIND:
        from dockeroo.engine.capabilities import Capabilities
        proc = subprocess.run(["docker", "version", "--format", "{{json .}}"],
                              capture_output=True, text=True)
        try:
            answer = json.loads(proc.stdout)
        except ValueError:
            answer = {}
        _ENGINE_KIND.append(Capabilities.from_version(answer).kind)
    return _ENGINE_KIND[0]


def pytest_configure(config):
    # a shell without job control starts background commands with SIGINT
    # ignored, and an ignored signal stays ignored in every child: the tests
    # of Ctrl-C (and the buildouts they start) need the default disposition
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line(
        "markers", "podman_limit(feature, why): the test needs what Podman 4.3 cannot do "
        "(FEATURE: a key of dockeroo.engine.capabilities.PODMAN_LIMITS, or WHY); skipped on Podman")
    config.addinivalue_line("markers", "slow: exhaustive runs (fault sweeps), only with -m slow")


def pytest_collection_modifyitems(config, items):
    """Skip the ``slow`` tests unless a mark expression is given (``-m slow``), and
    the tests marked ``podman_limit`` when the engine is Podman, saying why."""
    if not config.getoption("markexpr", ""):
        slow = pytest.mark.skip(reason="slow: run with -m slow")
        for item in items:
            if "slow" in item.keywords:
                item.add_marker(slow)
    marked = [(item, item.get_closest_marker("podman_limit")) for item in items]
    marked = [(item, mark) for item, mark in marked if mark is not None]
    if not marked or engine_kind() != "podman":
        return
    from dockeroo.engine.capabilities import PODMAN_LIMITS
    for item, mark in marked:
        feature = mark.args[0]
        why = mark.args[1] if len(mark.args) > 1 else PODMAN_LIMITS[feature]
        item.add_marker(pytest.mark.skip(reason="Podman 4.3 limit (%s): %s" % (feature, why)))


def skip_on_podman(feature, why=None):
    """Inside a test: skip it on Podman, whose FEATURE limit it needs (as the marker)."""
    if engine_kind() == "podman":
        from dockeroo.engine.capabilities import PODMAN_LIMITS
        pytest.skip("Podman 4.3 limit (%s): %s" % (feature, why or PODMAN_LIMITS[feature]))


@pytest.fixture(scope="session")
def engine():
    """The Docker engine must answer (``.ci/run`` starts it)."""
    proc = subprocess.run(["docker", "info", "--format", "{{json .ServerVersion}}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("no Docker engine answers: start dockerd (see .ci/run): " + proc.stderr)
    return json.loads(proc.stdout)


@pytest.fixture
def prefix(engine):
    """A unique name prefix for the objects of one test; cleaned afterwards."""
    value = "dkt%s" % uuid.uuid4().hex[:8]
    yield value
    remove_with_prefix(value)


# -- base image: busybox-static rootfs ---------------------------------------------
BUSYBOX = "/bin/busybox"


def _busybox_rootfs_tar(path):
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        def add_dir(name, mode=0o755):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name, data, mode=0o644):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, __import__("io").BytesIO(data))

        for d in ("bin", "sbin", "etc", "root", "home", "usr", "usr/bin", "usr/sbin", "var", "dev",
                  "proc", "sys", "run"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        info = tar.gettarinfo(BUSYBOX, "bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        with open(BUSYBOX, "rb") as handle:
            tar.addfile(info, handle)
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo("bin/" + applet)
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                               b"daemon:x:1:1:daemon:/:/bin/false\n"
                               b"app:x:1000:1000:app:/home/app:/bin/sh\n"
                               b"nobody:x:65534:65534:nobody:/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\ndaemon:x:1:\napp:x:1000:\nnogroup:x:65534:\n")
        add_dir("home/app")


@pytest.fixture(scope="session")
def base_image(engine, tmp_path_factory):
    """A busybox image imported from Debian's busybox-static; removed at the end."""
    if not os.path.exists(BUSYBOX):
        pytest.fail("busybox-static is needed (apt-get install busybox-static)")
    with open(BUSYBOX, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:12]
    ref = "dockeroo-test/busybox:%s" % digest
    if inspect("image", ref) is None:
        path = str(tmp_path_factory.mktemp("rootfs") / "rootfs.tar")
        _busybox_rootfs_tar(path)
        docker("import", "--change", "CMD [\"/bin/sh\"]", path, ref)
    return ref


# -- a registry with htpasswd on 127.0.0.1 --------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the manifests a push writes: Docker's (v2 schema 2), Podman's (OCI)
MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json, "
             "application/vnd.oci.image.manifest.v1+json")


@dataclass
class Registry:
    host: str
    username: str
    password: str
    directory: str

    def catalog(self):
        return self.api("/v2/_catalog")["repositories"]

    def tags(self, repo):
        return self.api("/v2/%s/tags/list" % repo).get("tags") or []

    def manifest(self, repo, tag):
        return self.api("/v2/%s/manifests/%s" % (repo, tag), accept=MANIFESTS)

    def login(self, config_dir):
        """``docker login`` to this registry with DOCKER_CONFIG=CONFIG_DIR; returns that env."""
        env = dict(os.environ, DOCKER_CONFIG=str(config_dir))
        docker("login", "--username", self.username, "--password-stdin", self.host,
               input=self.password + "\n", env=env)
        return env

    def push(self, local, repo_tag):
        """Push local image LOCAL as HOST/REPO_TAG; the tag added for it is removed again.

        Logs in with a throw-away DOCKER_CONFIG; returns the remote reference.
        """
        remote = "%s/%s" % (self.host, repo_tag)
        with tempfile.TemporaryDirectory() as config_dir:
            env = self.login(config_dir)
            docker("tag", local, remote)
            try:
                docker("push", remote, env=env)
            finally:
                docker("image", "rm", remote)
        return remote

    def retag(self, repo, tag, new_tag):
        """Point REPO:NEW_TAG at the manifest of REPO:TAG (registry API, no docker)."""
        import urllib.request
        req = self._request("/v2/%s/manifests/%s" % (repo, tag))
        req.add_header("Accept", MANIFESTS)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body, media = resp.read(), resp.headers["Content-Type"]
        req = self._request("/v2/%s/manifests/%s" % (repo, new_tag), method="PUT", data=body)
        req.add_header("Content-Type", media)
        urllib.request.urlopen(req, timeout=10).close()

    def manifest_digest(self, repo, tag):
        """The manifest digest of REPO:TAG (what ``docker pull REPO@DIGEST`` takes)."""
        import urllib.request
        req = self._request("/v2/%s/manifests/%s" % (repo, tag), method="HEAD")
        req.add_header("Accept", MANIFESTS)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers["Docker-Content-Digest"]

    def _request(self, path, **kwargs):
        import base64
        import urllib.request
        req = urllib.request.Request("http://%s%s" % (self.host, path), **kwargs)
        token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        return req

    def api(self, path, accept=None):
        import base64
        import urllib.request
        req = urllib.request.Request("http://%s%s" % (self.host, path))
        token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """Debian's docker-registry with htpasswd auth on 127.0.0.1."""
    exe = shutil.which("docker-registry")
    if not exe or not shutil.which("htpasswd"):
        pytest.fail("docker-registry and apache2-utils are needed (see .ci/run)")
    directory = str(tmp_path_factory.mktemp("registry"))
    username, password = "dockeroo", "s3cret-%s" % uuid.uuid4().hex[:10]
    htpasswd = subprocess.run(["htpasswd", "-Bbn", username, password], capture_output=True,
                              text=True, check=True).stdout
    with open(os.path.join(directory, "htpasswd"), "w") as handle:
        handle.write(htpasswd)
    port = free_port()
    config = os.path.join(directory, "config.yml")
    with open(config, "w") as handle:
        handle.write(textwrap.dedent("""\
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: %(dir)s/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:%(port)d
            auth:
              htpasswd:
                realm: dockeroo-test
                path: %(dir)s/htpasswd
            """ % {"dir": directory, "port": port}))
    log = open(os.path.join(directory, "registry.log"), "w")
    proc = subprocess.Popen([exe, "serve", config], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("docker-registry did not start")
    # Podman's API logs in over plain HTTP only to localhost:PORT (.ci/podman lists
    # localhost and 127.0.0.1 as insecure registries for its pushes and pulls)
    host = "localhost" if engine_kind() == "podman" else "127.0.0.1"
    yield Registry("%s:%d" % (host, port), username, password, directory)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


# -- running buildout ---------------------------------------------------------------
@dataclass
class BuildoutRun:
    returncode: int
    output: str

    @property
    def ok(self):
        return self.returncode == 0

    def error_line(self):
        lines = [l for l in self.output.splitlines() if l.startswith("Error:")]
        return lines[-1] if lines else ""


class Buildout:
    """A buildout directory for one test."""

    def __init__(self, directory, prefix):
        self.directory = directory
        self.prefix = prefix
        os.makedirs(directory, exist_ok=True)

    def path(self, *names):
        return os.path.join(self.directory, *names)

    def write(self, name, text):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(text))
        return path

    def configure(self, parts_text, parts=None):
        """Write buildout.cfg from part sections; ``parts`` defaults to all sections."""
        text = textwrap.dedent(parts_text)
        if parts is None:
            parts = [line.strip()[1:-1] for line in text.splitlines()
                     if line.strip().startswith("[") and line.strip().endswith("]")
                     and not line.startswith(" ")]
        header = "[buildout]\nparts = %s\n" % " ".join(parts)
        with open(self.path("buildout.cfg"), "w") as handle:
            handle.write(header + "\n" + text)

    def run(self, *args, env=None, timeout=1200):
        environ = dict(os.environ)
        environ.update(env or {})
        proc = subprocess.run([BUILDOUT, "-N", *args] if "-n" not in args else [BUILDOUT, *args],
                              cwd=self.directory, capture_output=True, text=True, env=environ,
                              timeout=timeout)
        return BuildoutRun(proc.returncode, proc.stdout + proc.stderr)

    def ok(self, *args, **kwargs):
        result = self.run(*args, **kwargs)
        assert result.ok, result.output
        assert "Traceback" not in result.output, result.output
        return result

    def fails(self, *args, **kwargs):
        result = self.run(*args, **kwargs)
        assert not result.ok, result.output
        assert "Traceback" not in result.output, result.output
        return result

    def installed(self):
        path = self.path(".installed.cfg")
        return open(path).read() if os.path.exists(path) else ""

    def uninstall_all(self):
        with open(self.path("buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        return self.run()


@pytest.fixture
def buildout(prefix, tmp_path):
    """A fresh buildout directory; uninstalls all its parts afterwards."""
    bo = Buildout(str(tmp_path / "buildout"), prefix)
    yield bo
    if os.path.exists(bo.path(".installed.cfg")):
        bo.uninstall_all()


# -- recording the docker processes a buildout starts ---------------------------------
@dataclass
class DockerRecorder:
    """A ``docker`` wrapper first on PATH that records every call, then runs the real one.

    Each record: ``argv`` (without the program), ``docker_config`` (the
    DOCKER_CONFIG it saw) and, for login/pull/push, ``context`` (what
    ``docker context show`` answers in that environment).
    """

    directory: str
    real: str

    @property
    def log(self):
        return os.path.join(self.directory, "calls.jsonl")

    @property
    def env(self):
        """Environment for ``buildout.run(env=...)``."""
        return {"PATH": self.directory + os.pathsep + os.environ.get("PATH", "")}

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def commands(self, command=None):
        """Recorded argv lists, optionally only those of COMMAND (e.g. "push")."""
        return [c["argv"] for c in self.calls() if command is None or c["argv"][:1] == [command]]

    def clear(self):
        if os.path.exists(self.log):
            os.remove(self.log)


@pytest.fixture
def docker_recorder(tmp_path):
    real = None
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "docker")
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            real = candidate
            break
    assert real, "no docker client on PATH"
    return make_docker_recorder(str(tmp_path / "docker-recorder"), real)


def make_docker_recorder(directory, real):
    """A DockerRecorder whose ``docker`` in DIRECTORY records, then runs REAL."""
    os.makedirs(directory)
    recorder = DockerRecorder(directory, real)
    wrapper = os.path.join(directory, "docker")
    with open(wrapper, "w") as handle:
        handle.write(textwrap.dedent("""\
            #!%(python)s -SE
            import json, os, subprocess, sys
            REAL = %(real)r
            args = sys.argv[1:]
            record = {"argv": args, "docker_config": os.environ.get("DOCKER_CONFIG")}
            if args[:1] in (["login"], ["pull"], ["push"]):
                record["context"] = subprocess.run([REAL, "context", "show"], capture_output=True,
                                                   text=True).stdout.strip()
            fd = os.open(%(log)r, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, (json.dumps(record) + "\\n").encode())
            os.close(fd)
            os.execv(REAL, [REAL] + args)
            """) % {"python": sys.executable, "real": real, "log": recorder.log})
    os.chmod(wrapper, 0o755)
    return recorder


# -- the real Portage builder of the Gentoo tests (tests/gentoo/) ------------------
from gentoo.fixtures import portage_builder  # noqa: E402,F401
