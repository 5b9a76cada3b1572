"""docker.build with BuildKit: builder choice, cache/secret/ssh mounts, flags, errors.

The docker client first on PATH here (28.2) has no buildx plugin, so it
builds with the legacy builder only; Debian's ``/usr/bin/docker`` (20.10)
has BuildKit built in.  The tests name that client with ``docker-command``
(engine-facts.md, "BuildKit without buildx").
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from support.buildout import make_docker_recorder
from support.engine import docker, engine_kind, inspect, skip_on_podman

BUILDKIT_CLIENT = "/usr/bin/docker"


@pytest.fixture(scope="module")
def buildkit_client():
    proc = subprocess.run([BUILDKIT_CLIENT, "version", "--format", "{{.Client.Version}}"],
                          capture_output=True, text=True)
    if not proc.stdout.startswith("20.10"):
        pytest.fail("Debian's docker.io client (20.10, BuildKit built in) is needed at %s"
                    % BUILDKIT_CLIENT)
    return BUILDKIT_CLIENT


def installed_option(buildout, part, option):
    section = None
    for line in buildout.installed().splitlines():
        if line.startswith("["):
            section = line.strip()[1:-1]
        elif section == part and line.startswith(option + " ="):
            return line.split("=", 1)[1].strip()
    return None


def history(ref):
    return docker("history", "--no-trunc", "--format", "{{.CreatedBy}} {{.Comment}}", ref)


def layer_bytes(ref):
    """Every file of every layer of REF (and its config), as one bytes blob."""
    out = subprocess.run(["docker", "save", ref], capture_output=True, check=True).stdout
    blobs = []
    with tarfile.open(fileobj=io.BytesIO(out)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            blobs.append(data)
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for inner in layer.getmembers():
                        if inner.isfile():
                            blobs.append(layer.extractfile(inner).read())
    return b"\n".join(blobs)


@pytest.mark.podman_limit("buildkit")
def test_auto_picks_the_builder_of_each_client(buildout, prefix, base_image, buildkit_client):
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo built > /built\n" % base_image)
    buildout.configure("""
        [legacy]
        recipe = dockeroo:docker.build
        name = %(p)s-legacy
        source = ctx

        [bk]
        recipe = dockeroo:docker.build
        name = %(p)s-bk
        source = ctx
        docker-command = %(client)s

        [vol]
        recipe = dockeroo:docker.volume
        name = %(p)s-vol
        labels =
            legacy=${legacy:builder}
            bk=${bk:builder}
        """ % {"p": prefix, "client": buildkit_client})
    recorder = make_docker_recorder(buildout.path("rec"), shutil.which("docker"))
    result = buildout.ok(env=recorder.env)
    probes = [c for c in recorder.commands() if c[:1] in (["--version"], ["buildx"])]
    assert probes == [["--version"], ["buildx", "version"]]
    labels = inspect("volume", prefix + "-vol")["Labels"]
    assert (labels["legacy"], labels["bk"]) == ("legacy", "buildkit")
    assert "legacy: Builder legacy (builder = auto): the docker client" in result.output
    # said before the build starts, as docs/recipes/docker.build.rst shows
    assert result.output.index("legacy: Builder legacy") < result.output.index(
        "legacy: Building image")
    assert "28.2" in result.output and "has no buildx plugin" in result.output
    assert "bk: Builder buildkit (builder = auto): the docker client %s (20.10" \
        % buildkit_client in result.output
    # what really built the images: BuildKit marks its history entries
    assert "buildkit.dockerfile.v0" in history(prefix + "-bk:latest")
    assert "buildkit.dockerfile.v0" not in history(prefix + "-legacy:latest")
    assert "The legacy builder is deprecated" not in result.output

    # the choice is cached: a no-op re-run starts no docker version/buildx probe
    recorder.clear()
    result = buildout.ok(env=recorder.env)
    assert "nothing to build" in result.output
    assert [c for c in recorder.commands() if c[:1] in (["--version"], ["buildx"], ["build"])] == []
    os.remove(buildout.path(".installed.cfg"))  # a forced reinstall probes nothing either
    recorder.clear()
    buildout.ok(env=recorder.env)
    assert [c for c in recorder.commands() if c[:1] in (["--version"], ["buildx"], ["build"])] == []

    # builder = legacy on the BuildKit client: the legacy builder builds
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo again > /built\n" % base_image)
    buildout.configure("""
        [bk]
        recipe = dockeroo:docker.build
        name = %s-bk
        source = ctx
        docker-command = %s
        builder = legacy
        """ % (prefix, buildkit_client))
    buildout.ok()
    assert installed_option(buildout, "bk", "builder") == "legacy"
    assert "buildkit.dockerfile.v0" not in history(prefix + "-bk:latest")
    assert docker("run", "--rm", prefix + "-bk", "cat", "/built") == "again\n"


CACHE_DOCKERFILE = """\
FROM %(base)s
ENV DKT_TEST=%(prefix)s
COPY stamp /stamp
RUN --mount=type=cache,id=%(prefix)s,target=/cache \\
    sh -c 'cat /cache/marker > /seen 2>/dev/null || echo none > /seen; cp /stamp /cache/marker'
"""


@pytest.mark.podman_limit("buildkit")
def test_cache_mount_is_reused_and_needs_buildkit(buildout, prefix, base_image, buildkit_client):
    ref = prefix + "-cache:1"
    buildout.write("ctx/Dockerfile", CACHE_DOCKERFILE % {"base": base_image, "prefix": prefix})
    buildout.write("ctx/stamp", "first\n")
    part = """
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        %s
        """
    # the 28.2 client cannot: an Error naming the client and what to install
    buildout.configure(part % (ref, ""))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [img]" in line and "RUN --mount (line 4) need(s) BuildKit" in line, result.output
    assert "28.2" in line and "no buildx plugin" in line and "install the buildx plugin" in line
    assert "Building image" not in result.output
    buildout.configure(part % (ref, "builder = legacy\n        docker-command = " + buildkit_client))
    line = buildout.fails().error_line()
    assert "option 'builder' = 'legacy'" in line and "RUN --mount (line 4)" in line
    buildout.configure(part % (ref, "builder = buildkit"))
    result = buildout.fails()
    line = result.error_line()
    assert "option 'builder' = 'buildkit'" in line and "BuildKit is asked for" in line, result.output
    assert "28.2" in line and "install the buildx plugin" in line
    assert "Building image" not in result.output and inspect("image", ref) is None

    buildout.configure(part % (ref, "docker-command = " + buildkit_client))
    result = buildout.ok()
    assert "#" in result.output and "DONE" in result.output  # BuildKit's plain progress, streamed
    assert docker("run", "--rm", ref, "cat", "/seen") == "none\n"
    buildout.write("ctx/stamp", "second\n")
    result = buildout.ok()
    assert "Building image" in result.output
    # the second build's RUN saw what the first left in the cache mount
    assert docker("run", "--rm", ref, "cat", "/seen") == "first\n"


@pytest.mark.podman_limit("buildkit")
def test_heredoc_and_syntax_line(buildout, prefix, base_image, buildkit_client):
    ref = prefix + "-hd:1"
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN <<EOF\necho heredoc > /hd\nEOF\n" % base_image)
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        docker-command = %s
        """ % (ref, buildkit_client))
    # 20.10's built-in frontend predates heredocs: said so, before building
    result = buildout.fails()
    line = result.error_line()
    assert "a heredoc (line 2)" in line and "does not understand" in line, result.output
    assert "buildx" in line and "# syntax=docker/dockerfile:1" in line
    assert "Building image" not in result.output
    assert inspect("image", ref) is None

    # a syntax line makes BuildKit fetch the frontend from its registry: that
    # registry's answer is the error, not a traceback
    buildout.write("ctx/Dockerfile", "# syntax=docker/dockerfile:1\n"
                   "FROM %s\nRUN <<EOF\necho heredoc > /hd\nEOF\n" % base_image)
    result = buildout.fails(timeout=600)
    line = result.error_line()
    assert "Part [img]" in line and "building image %s failed" % ref in line, result.output
    assert "docker/dockerfile:1" in result.output and "syntax line" in result.output
    assert inspect("image", ref) is None

    # legacy builder, heredoc: an Error naming the client
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        """ % ref)
    line = buildout.fails().error_line()
    assert "a heredoc (line 3)" in line and "need(s) BuildKit" in line and "28.2" in line
    # a syntax line alone: the legacy builder builds, and the log says it ignored the line
    buildout.write("ctx/Dockerfile", "# syntax=docker/dockerfile:1\nFROM %s\nRUN echo ok > /ok\n"
                   % base_image)
    result = buildout.ok()
    assert "The legacy builder ignores the Dockerfile's syntax line" in result.output
    assert docker("run", "--rm", ref, "cat", "/ok") == "ok\n"


SECRET_DOCKERFILE = """\
FROM %s
ENV DKT_TEST=%s
RUN --mount=type=secret,id=file --mount=type=secret,id=env --mount=type=secret,id=cmd \\
    cat /run/secrets/file /run/secrets/env /run/secrets/cmd | sha256sum > /sums
RUN echo no-secret-here > /other
RUN --mount=type=secret,id=env sh -c 'echo "printed: $(cat /run/secrets/env)"'
"""


@pytest.mark.podman_limit("buildkit")
def test_secrets_are_used_and_kept_out_of_everything(buildout, prefix, base_image,
                                                     buildkit_client, tmp_path):
    ref = prefix + "-sec:1"
    file_secret = "file-secret-%s" % prefix
    env_secret = "env-secret-%s" % prefix
    cmd_secret = "cmd-secret-%s" % prefix
    (tmp_path / "token").write_text(file_secret)
    os.chmod(str(tmp_path / "token"), 0o600)
    (tmp_path / "cmd-source").write_text(cmd_secret + "\n")
    buildout.write("ctx/Dockerfile", SECRET_DOCKERFILE % (base_image, prefix))
    recorder = make_docker_recorder(str(tmp_path / "rec"), buildkit_client)
    config = """
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        docker-command = %s
        secrets =
            file src=%s
            env env=DKT_SECRET
            cmd command=cat %s
        %s
        """
    buildout.configure(config % (ref, recorder.directory + "/docker", tmp_path / "token",
                                 tmp_path / "cmd-source", ""))
    env = {"DKT_SECRET": env_secret}
    result = buildout.ok(env=env)
    expected = hashlib.sha256((file_secret + env_secret + cmd_secret).encode()).hexdigest()
    assert docker("run", "--rm", ref, "cat", "/sums").split()[0] == expected

    values = [file_secret, env_secret, cmd_secret]
    assert "printed: ***" in result.output  # a step that prints a secret: masked in the log
    for value in values:
        assert value not in result.output
        assert value not in buildout.installed()
        assert value not in json.dumps(recorder.calls())  # no docker argv holds it
        assert value not in history(ref)
        assert value.encode() not in layer_bytes(ref)  # layers, config, labels
    fingerprint = installed_option(buildout, "img", "fingerprint")
    assert fingerprint == inspect("image", ref)["Config"]["Labels"]["io.dockeroo.fingerprint"]
    build = [c for c in recorder.commands("build")]
    assert len(build) == 1 and "id=env,env=DKT_SECRET" in build[0]
    assert installed_option(buildout, "img", "builder") == "buildkit"
    first = inspect("image", ref)["Id"]

    # a changed secret: no rebuild unless asked for
    (tmp_path / "token").write_text(file_secret + "-v2")
    result = buildout.ok(env=env)
    assert "nothing to build" in result.output
    assert inspect("image", ref)["Id"] == first
    buildout.configure(config % (ref, recorder.directory + "/docker", tmp_path / "token",
                                 tmp_path / "cmd-source", "secrets-rebuild = true"))
    result = buildout.ok(env=env)
    assert "Building image" in result.output
    changed = hashlib.sha256((file_secret + "-v2" + env_secret + cmd_secret).encode()).hexdigest()
    assert docker("run", "--rm", ref, "cat", "/sums").split()[0] == changed
    result = buildout.ok(env=env)
    assert "nothing to build" in result.output
    env["DKT_SECRET"] = env_secret + "-v2"
    result = buildout.ok(env=env)
    assert "Building image" in result.output
    for value in values + [file_secret + "-v2", env_secret + "-v2"]:
        assert value not in buildout.installed() and value not in result.output
    key = buildout.path("parts", ".dockeroo-cache", "secrets.key")
    assert os.stat(key).st_mode & 0o777 == 0o600

    # a missing variable: an Error naming the option, nothing built
    buildout.write("ctx/Dockerfile", SECRET_DOCKERFILE % (base_image, prefix) + "RUN true\n")
    result = buildout.fails()
    line = result.error_line()
    assert "option 'secrets'" in line and "DKT_SECRET is not set" in line, result.output


def test_secret_options_are_checked(buildout, prefix, base_image):
    buildout.write("ctx/Dockerfile", "FROM %s\n" % base_image)
    cases = [
        ("secrets = tok", "'secrets'"),
        ("secrets = tok from=x", "'secrets'"),
        ("secrets = t/k src=x", "'secrets'"),
        ("secrets =\n    a env=X\n    a env=Y", "given twice"),
        ("secrets = a env=not-a-name", "'secrets'"),
        ("secrets = a command='unbalanced", "'secrets'"),
        ("ssh = mykey", "'ssh'"),
        ("ssh = default=", "'ssh'"),
        ("builder = sometimes", "'builder'"),
        ("progress = tty", "'progress'"),
        ("shm-size = lots", "'shm-size'"),
        ("add-hosts = nohost", "'add-hosts'"),
        ("add-hosts = a:999.1.1.1", "'add-hosts'"),
        ("network = two words", "'network'"),
        ("secrets-rebuild = maybe", "'secrets-rebuild'"),
        ("docker-command = /nonexistent/docker", "'docker-command'"),
        ("docker-command = no-such-docker-client", "'docker-command'"),
        ("builder = legacy\nsecrets = a env=HOME", "'builder'"),
    ]
    for extra, needle in cases:
        buildout.configure("[bad]\nrecipe = dockeroo:docker.build\nname = %s-bad\nsource = ctx\n%s\n"
                           % (prefix, extra))
        result = buildout.fails()
        line = result.error_line()
        assert "Part [bad]" in line and needle in line, (extra, result.output)
        assert "Building image" not in result.output
    # the environment names the client when the option does not
    buildout.configure("[bad]\nrecipe = dockeroo:docker.build\nname = %s-bad\nsource = ctx\n" % prefix)
    line = buildout.fails(env={"DOCKEROO_DOCKER_COMMAND": "/nonexistent/docker"}).error_line()
    assert "docker-command (from DOCKEROO_DOCKER_COMMAND)" in line


def _ssh_add_tree(target):
    """ssh-add and the libraries it loads, laid out for COPY . / into the image."""
    paths = ["/usr/bin/ssh-add"]
    for line in subprocess.run(["ldd", "/usr/bin/ssh-add"], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else words[0]
        if path.startswith("/"):
            paths.append(path)
    for path in paths:
        dest = os.path.join(target, path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(path, dest)


@pytest.fixture
def ssh_agent(tmp_path):
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            subprocess.run(["sleep", "0.1"])
        keys = {}
        for name in ("agent", "file"):
            key = str(tmp_path / ("key-" + name))
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key],
                           check=True)
            keys[name] = (key, subprocess.run(["ssh-keygen", "-l", "-f", key + ".pub"],
                                              capture_output=True, text=True,
                                              check=True).stdout.split()[1])
        subprocess.run(["ssh-add", "-q", keys["agent"][0]], env=dict(os.environ, SSH_AUTH_SOCK=sock),
                       check=True, capture_output=True)
        yield sock, keys
    finally:
        agent.kill()
        agent.wait()


@pytest.mark.podman_limit("buildkit")
def test_ssh_mount_with_agent_and_key_file(buildout, prefix, base_image, buildkit_client,
                                           ssh_agent):
    sock, keys = ssh_agent
    ref = prefix + "-ssh:1"
    _ssh_add_tree(buildout.path("ctx", "tree"))
    buildout.write("ctx/Dockerfile", """\
        FROM %s
        ENV DKT_TEST=%s
        COPY tree/ /
        RUN --mount=type=ssh ssh-add -l > /agent-keys
        RUN --mount=type=ssh,id=deploy ssh-add -l > /file-keys
        """ % (base_image, prefix))
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        docker-command = %s
        ssh =
            default
            deploy=%s
        """ % (ref, buildkit_client, keys["file"][0]))
    buildout.ok(env={"SSH_AUTH_SOCK": sock})
    agent_keys = docker("run", "--rm", ref, "cat", "/agent-keys")
    file_keys = docker("run", "--rm", ref, "cat", "/file-keys")
    assert keys["agent"][1] in agent_keys and keys["file"][1] not in agent_keys
    assert keys["file"][1] in file_keys and keys["agent"][1] not in file_keys
    # the key's private part is in no layer
    with open(keys["file"][0], "rb") as handle:
        private = handle.read().split(b"\n")[1]
    assert private not in layer_bytes(ref)

    # default without an agent: an Error naming the option
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN --mount=type=ssh true\n" % base_image)
    result = buildout.fails(env={"SSH_AUTH_SOCK": ""})
    assert "option 'ssh'" in result.error_line() and "SSH_AUTH_SOCK" in result.error_line()


@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_network_hosts_shm_and_quiet(builder, buildout, prefix, base_image, buildkit_client):
    skip_on_podman("buildkit" if builder == "buildkit" else "build-hosts")
    ref = prefix + "-net:1"
    buildout.write("ctx/Dockerfile", """\
        FROM %s
        ENV DKT_TEST=%s
        RUN cat /etc/hosts > /hosts; cat /proc/net/dev > /netdev; echo step-output
        """ % (base_image, prefix))
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        docker-command = %s
        builder = %s
        network = none
        add-hosts =
            dkt-host:172.28.9.9
        shm-size = 32m
        cache-from = %s
        progress = quiet
        """ % (ref, buildkit_client, builder, base_image))
    result = buildout.ok()
    assert "step-output" not in result.output  # quiet
    assert "172.28.9.9\tdkt-host" in docker("run", "--rm", ref, "cat", "/hosts")
    interfaces = [l.split(":")[0].strip() for l in
                  docker("run", "--rm", ref, "cat", "/netdev").splitlines()[2:]]
    assert interfaces == ["lo"]  # network = none
    assert installed_option(buildout, "img", "builder") == builder


DOCKERIGNORE_FILES = {
    "keep.txt": "k", "a.log": "l", "sub/b.log": "l", "sub/deep/c.log": "l", "sub/deep/keep.log": "k",
    "# hash.txt": "h", "docs/x.md": "m", "docs/y.txt": "t", "build/out/o.bin": "o",
    "build/out/keep.bin": "k", "abc": "1", "axxbc": "2", "dir/x/yb": "3", "bom.txt": "b",
}
DOCKERIGNORE = ("\ufeffbom.txt\n"  # a UTF-8 byte order mark before the first pattern
                "**/*.log\n"
                "!sub/deep/keep.log\n"
                " # hash.txt\n"  # not a comment: a pattern (after trimming)
                "# a real comment\n"
                "docs/**\n"
                "!docs/*.txt\n"
                "build\n"
                "!build/out/keep.bin\n"
                "a**c\n"
                "dir/**b\n")


@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_dockerignore_matches_real_builds(builder, buildout, prefix, base_image, buildkit_client):
    if builder == "buildkit":
        skip_on_podman("buildkit")
    from dockeroo.base.fingerprint import IgnoreRules, walk

    ref = prefix + "-ign:1"
    for rel, text in DOCKERIGNORE_FILES.items():
        buildout.write("ctx/" + rel, text)
    with open(buildout.path("ctx", ".dockerignore"), "w", encoding="utf-8") as handle:
        handle.write(DOCKERIGNORE)
    buildout.write("ctx/Dockerfile", "FROM %s\nCOPY . /ctx/\n" % base_image)
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        docker-command = %s
        builder = %s
        """ % (ref, buildkit_client, builder))
    buildout.ok()
    listing = docker("run", "--rm", ref, "find", "/ctx", "-type", "f").splitlines()
    built = sorted(os.path.relpath(p, "/ctx") for p in listing)
    root = buildout.path("ctx")
    rules = IgnoreRules.from_dir(root)
    predicted = sorted(rel for rel, full, st in walk(root, rules) if os.path.isfile(full)
                       and rel not in (".dockerignore", "Dockerfile"))
    built = [p for p in built if p not in (".dockerignore", "Dockerfile")]
    assert built == predicted, (built, predicted)
    assert "keep.txt" in built and "sub/deep/keep.log" in built and "a.log" not in built


@pytest.mark.podman_limit("buildkit")
def test_heredoc_with_a_buildx_client(buildout, prefix, base_image):
    """Heredocs build on a client with the buildx plugin (none can be installed here)."""
    client = shutil.which("docker")
    if subprocess.run([client, "buildx", "version"], capture_output=True).returncode != 0:
        pytest.skip("no docker client with the buildx plugin on PATH (%s has none)" % client)
    ref = prefix + "-hdx:1"
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN <<EOF\necho heredoc > /hd\nEOF\n" % base_image)
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        """ % ref)
    buildout.ok()
    assert installed_option(buildout, "img", "builder") == "buildkit"
    assert docker("run", "--rm", ref, "cat", "/hd") == "heredoc\n"


@pytest.mark.parametrize("builder", ["legacy", "buildkit"])
def test_dockerfile_specific_ignore_file(builder, buildout, prefix, base_image, buildkit_client):
    if builder == "buildkit":
        skip_on_podman("buildkit")
    """BuildKit reads app.Dockerfile.dockerignore instead of .dockerignore; the legacy builder not."""
    ref = prefix + "-spec:1"
    buildout.write("ctx/app.Dockerfile", "FROM %s\nCOPY . /ctx/\n" % base_image)
    buildout.write("ctx/app.Dockerfile.dockerignore", "a.txt\n")
    buildout.write("ctx/.dockerignore", "b.txt\n")
    buildout.write("ctx/a.txt", "a\n")
    buildout.write("ctx/b.txt", "b\n")
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        dockerfile = app.Dockerfile
        docker-command = %s
        builder = %s
        """ % (ref, buildkit_client, builder))
    buildout.ok()
    listing = docker("run", "--rm", ref, "ls", "/ctx").split()
    if engine_kind() == "podman" and builder == "legacy":
        # the client leaves out what .dockerignore names, Podman's builder what the
        # Dockerfile's own ignore file names: the fingerprint follows the latter
        assert "a.txt" not in listing and "b.txt" not in listing
        buildout.write("ctx/a.txt", "changed\n")
        assert "nothing to build" in buildout.ok().output
        return
    ignored, used = ("a.txt", "b.txt") if builder == "buildkit" else ("b.txt", "a.txt")
    assert used in listing and ignored not in listing
    first = inspect("image", ref)["Id"]
    buildout.write("ctx/" + ignored, "changed\n")
    assert "nothing to build" in buildout.ok().output
    buildout.write("ctx/" + used, "changed\n")
    assert "Building image" in buildout.ok().output
    assert inspect("image", ref)["Id"] != first


def test_docker_command_is_used_by_every_recipe(buildout, prefix, base_image, tmp_path):
    """docker-command (or DOCKEROO_DOCKER_COMMAND) names the client of any part, uninstall too."""
    named = make_docker_recorder(str(tmp_path / "named"), BUILDKIT_CLIENT)
    from_env = make_docker_recorder(str(tmp_path / "env"), BUILDKIT_CLIENT)
    buildout.configure("""
        [vol]
        recipe = dockeroo:docker.volume
        name = %(p)s-vol
        docker-command = %(named)s

        [app]
        recipe = dockeroo:docker.run
        name = %(p)s-app
        image = %(base)s
        command = sleep 3600
        """ % {"p": prefix, "named": named.directory + "/docker", "base": base_image})
    buildout.ok(env={"DOCKEROO_DOCKER_COMMAND": from_env.directory + "/docker"})
    assert inspect("volume", prefix + "-vol") is not None
    assert inspect("container", prefix + "-app")["State"]["Running"]
    assert ["volume", "create"] in [c[:2] for c in named.commands()]
    assert "create" in [c[0] for c in from_env.commands()] or \
        "run" in [c[0] for c in from_env.commands()]
    assert not any(prefix + "-app" in " ".join(c) for c in named.commands())
    named.clear()
    buildout.uninstall_all()
    assert ["volume", "rm"] in [c[:2] for c in named.commands()]
    assert inspect("volume", prefix + "-vol") is None


@pytest.mark.parametrize("option", ["builder = buildkit",
                                    "add-hosts = dkt-host:172.28.9.9\n        builder = legacy"])
def test_podman_build_limits_are_an_error_before_building(buildout, prefix, base_image, option,
                                                          buildkit_client):
    if engine_kind() != "podman":
        pytest.skip("a Podman limit: Docker can do it (tested above)")
    ref = prefix + "-lim:1"
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN true\n" % base_image)
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        docker-command = %s
        %s
        """ % (ref, buildkit_client, option))
    line = buildout.fails().error_line()
    assert "option '%s'" % option.split(" ")[0] in line and "Podman 4.3" in line, line
    assert inspect("image", ref) is None
