"""Engine selection against a real TLS endpoint of the local engine.

The running dockerd is not reconfigured: a fixture makes a CA, a server
certificate for 127.0.0.1 and a client certificate with ``openssl`` and
starts ``tests/support/tls_proxy.py``, which requires client certificates
and forwards to /var/run/docker.sock.  ``tests/support/docker-machine``
stands in for docker-machine and points at that endpoint.
"""

import json
import os
import shutil

import pytest

from support.engine import inspect
from support.tls_engine import MACHINE

from dockeroo.engine import machine
from dockeroo.engine.errors import DockerError


@pytest.fixture
def calls(tmp_path):
    """Path of the stand-in's call log, and a reader for it."""
    path = tmp_path / "docker-machine.calls"

    class Calls:
        log = path

        @staticmethod
        def read():
            if not path.exists():
                return []
            return [json.loads(line) for line in path.read_text().splitlines()]
    return Calls


@pytest.fixture(autouse=True)
def no_machine_in_environment(monkeypatch):
    for var in ("DOCKER_MACHINE_NAME", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                "DOCKER_CONTEXT", "DOCKER_TLS"):
        monkeypatch.delenv(var, raising=False)


VOLUME = """
    [v]
    recipe = dockeroo:docker.volume
    name = %(name)s
    labels = via=tls
    %(extra)s
    """


def configure(buildout, name, *extra):
    buildout.configure(VOLUME % {"name": name, "extra": "\n    ".join(extra)})


def assert_volume_through_tls(buildout, tls, env, name):
    before = tls.accepted()
    buildout.ok(env=env)
    vol = inspect("volume", name)  # the ordinary docker CLI on the unix socket sees it
    assert vol is not None and vol["Labels"]["via"] == "tls"
    assert vol["Labels"]["io.dockeroo.part"] == "v"
    assert tls.accepted() > before, "no connection went through the TLS endpoint"

    before = tls.accepted()
    result = buildout.ok(env=env)
    assert "Updating v" in result.output
    assert tls.accepted() > before

    before = tls.accepted()
    result = buildout.uninstall_all() if env is None else _uninstall(buildout, env)
    assert result.ok, result.output
    assert inspect("volume", name) is None
    assert tls.accepted() > before, "uninstall did not use the part's engine"


def _uninstall(buildout, env):
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write("[buildout]\nparts =\n")
    return buildout.run(env=env)


def test_machine_name_option(buildout, prefix, tls, calls):
    name = prefix + "-m"
    configure(buildout, name, "machine-name = " + MACHINE)
    assert_volume_through_tls(buildout, tls, tls.env(calls.log), name)
    asked = calls.read()
    assert ["url", MACHINE] in asked and ["inspect", MACHINE] in asked
    assert all(call[0] in ("url", "inspect") for call in asked), asked


def test_docker_machine_name_environment(buildout, prefix, tls, calls):
    name = prefix + "-e"
    configure(buildout, name)
    env = tls.env(calls.log, DOCKER_MACHINE_NAME=MACHINE)
    assert_volume_through_tls(buildout, tls, env, name)
    assert ["url", MACHINE] in calls.read()


def test_engine_url_with_tls_options(buildout, prefix, tls, calls):
    name = prefix + "-u"
    configure(buildout, name, "engine-url = " + tls.url,
              "engine-tls-cert-path = " + tls.client, "engine-tls-verify = true")
    assert_volume_through_tls(buildout, tls, tls.env(calls.log, forbid=True), name)
    assert calls.read() == [], "docker-machine must not be asked when engine-url is given"


def test_engine_url_cert_path_implies_verify(buildout, prefix, tls, calls):
    name = prefix + "-c"
    configure(buildout, name, "engine-url = " + tls.url, "engine-tls-cert-path = " + tls.client)
    assert_volume_through_tls(buildout, tls, tls.env(calls.log, forbid=True), name)
    assert calls.read() == []


def test_users_docker_host_environment(buildout, prefix, tls, calls):
    name = prefix + "-h"
    configure(buildout, name)
    env = tls.env(calls.log, forbid=True, DOCKER_HOST=tls.url, DOCKER_TLS_VERIFY="1",
                  DOCKER_CERT_PATH=tls.client)
    assert_volume_through_tls(buildout, tls, env, name)
    assert calls.read() == []


def test_wrong_ca_is_an_error(buildout, prefix, tls, calls):
    name = prefix + "-w"
    configure(buildout, name, "engine-url = " + tls.url, "engine-tls-cert-path = " + tls.wrong)
    refused = tls.refused()
    result = buildout.fails(env=tls.env(calls.log, forbid=True))
    line = result.error_line()
    assert line.startswith("Error: Part [v]"), result.output
    assert "certificate" in line, line
    assert tls.refused() > refused
    assert inspect("volume", name) is None


def test_no_machine_named_never_calls_docker_machine(buildout, prefix, tls, calls):
    name = prefix + "-n"
    configure(buildout, name)
    before = tls.accepted()
    buildout.ok(env=tls.env(calls.log, forbid=True))
    assert inspect("volume", name) is not None
    assert tls.accepted() == before, "the default engine is the user's, not the TLS endpoint"
    _uninstall(buildout, tls.env(calls.log, forbid=True))
    assert inspect("volume", name) is None
    assert calls.read() == [], "docker-machine was called although no machine is named"


def test_no_machine_named_without_docker_machine_installed(buildout, prefix, engine):
    assert shutil.which("docker-machine") is None or "support" in shutil.which("docker-machine")
    name = prefix + "-x"
    configure(buildout, name)
    buildout.ok()
    assert inspect("volume", name) is not None


def test_unknown_machine_is_an_error(buildout, prefix, tls, calls):
    name = prefix + "-q"
    configure(buildout, name, "machine-name = nosuch")
    result = buildout.fails(env=tls.env(calls.log))
    line = result.error_line()
    assert "Part [v]" in line and "'machine-name'" in line and "nosuch" in line, result.output
    assert "Host does not exist" in line
    assert inspect("volume", name) is None


def test_unknown_machine_from_environment_is_an_error(buildout, prefix, tls, calls):
    name = prefix + "-r"
    configure(buildout, name)
    result = buildout.fails(env=tls.env(calls.log, DOCKER_MACHINE_NAME="nosuch"))
    line = result.error_line()
    assert "Part [v]" in line and "machine-name" in line and "DOCKER_MACHINE_NAME" in line, line
    assert inspect("volume", name) is None


def test_machine_name_without_docker_machine_installed(buildout, prefix, tmp_path):
    name = prefix + "-i"
    configure(buildout, name, "machine-name = " + MACHINE)
    # a PATH with docker but no docker-machine
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("docker"), bin_dir / "docker")
    result = buildout.fails(env={"PATH": str(bin_dir)})
    line = result.error_line()
    assert "Part [v]" in line and "'machine-name'" in line and "not found" in line, result.output
    assert inspect("volume", name) is None


def test_engine_url_and_machine_name_conflict(buildout, prefix, tls, calls):
    name = prefix + "-b"
    configure(buildout, name, "engine-url = " + tls.url, "machine-name = " + MACHINE)
    result = buildout.fails(env=tls.env(calls.log, forbid=True))
    line = result.error_line()
    assert "Part [v]" in line and "engine-url" in line and "machine-name" in line, line
    assert calls.read() == []
    assert inspect("volume", name) is None


@pytest.mark.parametrize("extra, option", [
    (("engine-url = 127.0.0.1:2376",), "'engine-url'"),
    (("engine-url = tcp://127.0.0.1:1", "engine-tls-verify = maybe"), "'engine-tls-verify'"),
    (("engine-url = tcp://127.0.0.1:1", "engine-tls-cert-path = /nonexistent/certs"),
     "'engine-tls-cert-path'"),
    (("engine-tls-verify = true",), "'engine-tls-verify'"),
    (("machine-name = " + MACHINE, "engine-tls-cert-path = /tmp"), "'engine-tls-cert-path'"),
])
def test_bad_engine_options(buildout, prefix, tls, calls, extra, option):
    name = prefix + "-o"
    configure(buildout, name, *extra)
    result = buildout.fails(env=tls.env(calls.log, forbid=True))
    line = result.error_line()
    assert "Part [v]" in line and option in line, result.output
    assert calls.read() == []
    assert inspect("volume", name) is None


# -- dockeroo.engine.machine.ssh ------------------------------------------------------------
@pytest.fixture
def machine_env(tls, calls, monkeypatch):
    for key, value in tls.env(calls.log).items():
        monkeypatch.setenv(key, value)
    return calls


def test_machine_ssh_keeps_arguments(machine_env, tmp_path):
    target = tmp_path / "out file"
    result = machine.ssh(MACHINE, ["sh", "-c", 'printf "%s|" "$@" > "$0"', str(target),
                                   "a b", "it's", "$HOME", "*"], timeout=30)
    assert result.returncode == 0
    assert target.read_text() == "a b|it's|$HOME|*|"
    call = machine_env.read()[-1]
    assert call[:3] == ["ssh", MACHINE, "--"]


def test_machine_ssh_output_and_errors(machine_env):
    assert machine.ssh(MACHINE, ["echo", "hello world"], timeout=30).stdout == "hello world\n"
    with pytest.raises(DockerError) as info:
        machine.ssh(MACHINE, ["sh", "-c", "echo boom >&2; exit 3"], timeout=30)
    assert info.value.returncode == 3 and "boom" in info.value.stderr
    result = machine.ssh(MACHINE, ["false"], timeout=30, check=False)
    assert result.returncode == 1
    with pytest.raises(DockerError) as info:
        machine.ssh("nosuch", ["true"], timeout=30)
    assert "Host does not exist" in info.value.stderr


def test_machine_ssh_timeout(machine_env):
    with pytest.raises(DockerError) as info:
        machine.ssh(MACHINE, ["sleep", "20"], timeout=1)
    assert info.value.timed_out == 1
    assert "timed out" in str(info.value)


def test_machine_ssh_streamed_output_and_timeout(machine_env, caplog):
    import logging
    import time
    logger = logging.getLogger("ssh-test")
    with caplog.at_level(logging.INFO, logger="ssh-test"):
        machine.ssh(MACHINE, ["sh", "-c", "echo one; echo two >&2"], timeout=30, stream=logger)
    assert "one" in caplog.messages and "two" in caplog.messages
    start = time.monotonic()
    with pytest.raises(DockerError) as info:
        machine.ssh(MACHINE, ["sleep", "20"], timeout=1, stream=logger)
    assert info.value.timed_out == 1
    assert time.monotonic() - start < 10, "a grandchild holding the pipes must not block the timeout"


def test_engine_url_unix_socket(buildout, prefix, tls, calls):
    name = prefix + "-s"
    configure(buildout, name, "engine-url = unix:///var/run/docker.sock")
    env = tls.env(calls.log, forbid=True, DOCKER_HOST=tls.url)  # the option wins over the env
    buildout.ok(env=env)
    assert inspect("volume", name) is not None
    assert _uninstall(buildout, env).ok
    assert inspect("volume", name) is None
    assert calls.read() == []
