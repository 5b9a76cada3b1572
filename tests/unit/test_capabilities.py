"""What the engine is: learned from one ``docker version`` answer, once."""

import json
import stat

import pytest

from dockeroo.engine.capabilities import DOCKER, PODMAN, Capabilities
from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.errors import DockerError

# `docker version --format '{{json .}}'` of Docker Engine 20.10 on the test machine
DOCKER_20_10 = {
    "Client": {"Version": "28.2.2", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"},
    "Server": {
        "Platform": {"Name": ""},
        "Components": [
            {"Name": "Engine", "Version": "20.10.24+dfsg1",
             "Details": {"ApiVersion": "1.41", "Arch": "amd64", "Os": "linux"}},
            {"Name": "containerd", "Version": "1.6.20~ds1", "Details": {}},
            {"Name": "runc", "Version": "1.1.5+ds1", "Details": {}},
            {"Name": "docker-init", "Version": "0.19.0", "Details": {}},
        ],
        "Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12",
        "Os": "linux", "Arch": "amd64",
    },
}

# the same through Podman's Docker-compatible API (its compat version handler)
PODMAN_4_3 = {
    "Client": {"Version": "28.2.2", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"},
    "Server": {
        "Platform": {"Name": "linux/arm64/debian-12"},
        "Components": [
            {"Name": "Podman Engine", "Version": "4.3.1",
             "Details": {"APIVersion": "4.3.1", "Arch": "arm64", "Os": "linux"}},
            {"Name": "Conmon", "Version": "conmon version 2.1.6", "Details": {}},
            {"Name": "OCI Runtime (crun)", "Version": "crun version 1.8.1", "Details": {}},
        ],
        "Version": "4.3.1", "ApiVersion": "1.41", "MinAPIVersion": "1.24",
        "Os": "linux", "Arch": "arm64",
    },
}


def test_docker():
    caps = Capabilities.from_version(DOCKER_20_10)
    assert caps == Capabilities(DOCKER, "20.10.24+dfsg1", "1.41", "linux", "amd64")
    assert not caps.is_podman


def test_podman():
    caps = Capabilities.from_version(PODMAN_4_3)
    assert caps == Capabilities(PODMAN, "4.3.1", "1.41", "linux", "arm64")
    assert caps.is_podman


@pytest.mark.parametrize("server, kind, arch", [
    ({"Platform": {"Name": "Docker Desktop 4.30.0 (149282)"},
      "Components": [{"Name": "Engine", "Version": "26.1.1"}], "Arch": "arm64"}, DOCKER, "arm64"),
    ({"Platform": {"Name": "Docker Engine - Community"}, "Arch": "x86_64"}, DOCKER, "amd64"),
    ({"Platform": {"Name": "Podman Engine"}, "Arch": "aarch64"}, PODMAN, "arm64"),
    ({}, DOCKER, ""),
])
def test_other_answers(server, kind, arch):
    caps = Capabilities.from_version({"Server": server})
    assert (caps.kind, caps.arch) == (kind, arch)


def fake_docker(tmp_path, answer, code=0):
    """A docker program that logs its arguments and answers `version`."""
    log = tmp_path / "calls"
    out = tmp_path / "answer.json"
    out.write_text(answer if isinstance(answer, str) else json.dumps(answer))
    program = tmp_path / "docker"
    program.write_text('#!/bin/sh\necho "$@" >> %s\nif [ "$1" = version ]; then cat %s; fi\n'
                       % (log, out)
                       + ('echo "Cannot connect to the Docker daemon" >&2\n' if code else "")
                       + "exit %d\n" % code)
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return str(program), log


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_the_engine_asks_once_and_only_when_needed(tmp_path):
    program, log = fake_docker(tmp_path, PODMAN_4_3)
    engine = DockerEngine(docker=program)
    assert calls(log) == [], "knowing nothing costs nothing"
    assert engine.kind == PODMAN
    assert engine.architecture() == "arm64"
    assert engine.capabilities.version == "4.3.1"
    assert engine.kind == PODMAN
    assert calls(log) == ["version --format {{json .}}"]


def test_an_engine_that_does_not_answer(tmp_path):
    program, log = fake_docker(tmp_path, "", code=1)
    engine = DockerEngine(docker=program)
    with pytest.raises(DockerError) as info:
        engine.kind
    assert "Cannot connect" in str(info.value)
