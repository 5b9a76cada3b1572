"""ssh:// engines without an engine: URL checks, the ssh command line, the one
error line, Docker contexts with ssh endpoints, the copy's source engine options."""

import hashlib
import json
import os
import shutil
import tempfile

import pytest
from zc.buildout import UserError

from dockeroo.engine import ssh
from dockeroo.engine.errors import SshFailed
from dockeroo.engine.selection import default_ssh_url, url_config
from dockeroo.model.engines import engine_from_options, source_engine_from_options
from dockeroo.model.options import Options


@pytest.mark.parametrize("url, want", [
    ("ssh://host", (None, "host", None, "/var/run/docker.sock")),
    ("ssh://deploy@host:2222", ("deploy", "host", 2222, "/var/run/docker.sock")),
    ("ssh://me@host/run/user/1000/docker.sock", ("me", "host", None, "/run/user/1000/docker.sock")),
])
def test_parse(url, want):
    assert ssh.parse(url) == want


@pytest.mark.parametrize("url, words", [
    ("ssh://u:secret@host", "password"),
    ("ssh://-oProxyCommand=x", "'-'"),
    ("ssh://host:99999", "port"),
    ("ssh://host?x=1", "query"),
    ("ssh://", "ssh://"),
])
def test_parse_refuses(url, words):
    with pytest.raises(ValueError) as info:
        ssh.parse(url)
    assert words in str(info.value)


def test_engine_url_ssh_is_tunnelled(monkeypatch):
    monkeypatch.delenv(ssh.TUNNEL_ENV, raising=False)
    config = url_config("ssh://deploy@host")
    assert config.ssh == "ssh://deploy@host" and "DOCKER_HOST" in config.unset
    assert "DOCKER_HOST" not in dict(config.env)
    monkeypatch.setenv(ssh.TUNNEL_ENV, "0")
    assert dict(url_config("ssh://deploy@host").env)["DOCKER_HOST"] == "ssh://deploy@host"


def test_engine_url_errors_name_the_option():
    with pytest.raises(UserError) as info:
        engine_from_options(Options("p", {"engine-url": "ssh://u:pw@host"}))
    assert "engine-url" in str(info.value) and "password" in str(info.value)
    with pytest.raises(UserError) as info:
        engine_from_options(Options("p", {"engine-url": "ssh://host", "engine-tls-verify": "true"}))
    assert "engine-tls-verify" in str(info.value) and "ssh" in str(info.value)


def test_source_engine_options():
    opts = Options("p", {"from-engine-url": "ssh://a", "engine-url": "ssh://b"})
    assert source_engine_from_options(opts).config.ssh == "ssh://a"
    assert engine_from_options(opts).config.ssh == "ssh://b"
    assert source_engine_from_options(Options("p", {"engine-url": "ssh://b"})) is None
    with pytest.raises(UserError) as info:
        source_engine_from_options(Options("p", {"from-engine-url": "nonsense"}))
    assert "from-engine-url" in str(info.value)


def test_ssh_command_checks_host_keys():
    tunnel = ssh.Tunnel("ssh://deploy@host:2222/run/d.sock")
    tunnel.directory = "/tmp/x"
    argv = tunnel.argv(7)
    assert argv[0] == "ssh" and argv[-2:] == ["--", "host"]
    assert "BatchMode=yes" in argv and "ConnectTimeout=7" in argv
    assert "-L" in argv and argv[argv.index("-L") + 1] == "/tmp/x/docker.sock:/run/d.sock"
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "deploy"
    assert not any("StrictHostKeyChecking" in word for word in argv)


def test_one_error_line_names_known_hosts():
    stderr = ("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
              "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
              "Add correct host key in /home/me/.ssh/known_hosts to get rid of this message.\n"
              "Offending ED25519 key in /home/me/.ssh/known_hosts:3\n"
              "Host key verification failed.\n")
    error = SshFailed(["ps"], 255, stderr, url="ssh://host")
    text = str(error)
    assert "\n" not in text
    assert text == ("option 'engine-url' = ssh://host: cannot connect over ssh: Offending "
                    "ED25519 key in /home/me/.ssh/known_hosts:3; Host key verification failed.")
    lost = SshFailed(["ps"], 255, "Connection to host closed by remote host.\n", url="ssh://host",
                     lost=True)
    assert "lost the ssh connection: Connection to host closed" in str(lost)


def test_default_ssh_url_from_context(tmp_path):
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"far").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": "far", "Endpoints": {"docker": {"Host": "ssh://deploy@far"}}}))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "far"}))
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert default_ssh_url(env) == "ssh://deploy@far"
    assert default_ssh_url(dict(env, DOCKER_HOST="unix:///x.sock")) is None
    assert default_ssh_url(dict(env, DOCKER_HOST="ssh://other")) == "ssh://other"
    assert default_ssh_url(dict(env, DOCKER_HOST="unix:///x", DOCKER_CONTEXT="far")) \
        == "ssh://deploy@far"
    assert default_ssh_url({"DOCKER_CONFIG": str(tmp_path / "none")}) is None


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (a long one makes base_directory
    choose /tmp: test_a_long_tmpdir_keeps_the_socket_path_short)."""
    path = tempfile.mkdtemp(prefix="dkt", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_private_directory_is_checked(short_tmp, monkeypatch):
    monkeypatch.setattr(ssh.tempfile, "gettempdir", lambda: short_tmp)
    path = ssh.base_directory()
    assert oct(os.stat(path).st_mode & 0o777) == "0o700"
    os.chmod(path, 0o755)
    with pytest.raises(SshFailed) as info:
        ssh.base_directory("ssh://deploy@far")
    assert "private" in str(info.value)
    assert "option 'engine-url' = ssh://***@far: cannot connect" in str(info.value)


def test_a_long_tmpdir_keeps_the_socket_path_short(tmp_path, short_tmp, monkeypatch):
    """A unix socket path holds at most 107 bytes: beyond, ssh refuses the
    forwarding ("Bad local forwarding specification")."""
    long = tmp_path / ("x" * 60)
    long.mkdir()
    monkeypatch.setattr(ssh.tempfile, "gettempdir", lambda: str(long))
    path = ssh.base_directory()
    assert path == "/tmp/dockeroo-ssh-%d" % os.getuid()
    assert len(os.path.join(path, "%d-abcdefgh" % 4194304, "docker.sock")) <= 104
    monkeypatch.setattr(ssh.tempfile, "gettempdir", lambda: short_tmp)
    assert ssh.base_directory() == os.path.join(short_tmp, "dockeroo-ssh-%d" % os.getuid())
