"""Where an engine is: the environment the docker CLI gets (``DOCKER_HOST``, TLS)."""

import hashlib
import json
import os
from dataclasses import dataclass

from dockeroo.engine import ssh


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine is: extra environment for the docker CLI."""

    env: tuple = ()  # sorted (key, value) pairs added to os.environ
    unset: tuple = ()  # variables removed from os.environ
    description: str = "the default docker engine"
    docker: str = "docker"  # the docker client: a command on PATH or an absolute path
    ssh: str = ""  # ssh://...: reached through one ssh connection per run (engine/ssh.py)

    def environ(self, extra=None):
        env = dict(os.environ)
        for key in self.unset:
            env.pop(key, None)
        env.update(dict(self.env))
        if extra:
            env.update(extra)
        return env


# -- engine selection --------------------------------------------------------

def url_config(url, tls_verify=None, cert_path=None):
    """The engine at URL; ``ssh://`` URLs are checked first (ValueError says what is wrong)."""
    if url.startswith("ssh://"):
        ssh.parse(url)
        if ssh.tunnelled():
            return EngineConfig(unset=("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS",
                                       "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"),
                                description="engine %s" % url, ssh=url)
    env = {"DOCKER_HOST": url}
    if cert_path:
        env["DOCKER_CERT_PATH"] = cert_path
    if tls_verify:
        env["DOCKER_TLS_VERIFY"] = "1"
    elif cert_path and tls_verify is None:
        env["DOCKER_TLS_VERIFY"] = "1"
    elif cert_path:
        env["DOCKER_TLS"] = "1"
    return EngineConfig(env=tuple(sorted(env.items())),
                        unset=("DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"),
                        description="engine %s" % url)


def default_ssh_url(environ=None):
    """The ``ssh://`` endpoint the docker CLI would use by default (DOCKER_CONTEXT,
    else DOCKER_HOST, else the current context of DOCKER_CONFIG), or None."""
    environ = os.environ if environ is None else environ
    context = environ.get("DOCKER_CONTEXT", "").strip()
    if not context and environ.get("DOCKER_HOST", "").strip():
        host = environ["DOCKER_HOST"].strip()
        return host if host.startswith("ssh://") else None
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".docker")
    if not context:
        try:
            with open(os.path.join(config_dir, "config.json")) as handle:
                context = json.load(handle).get("currentContext") or ""
        except (OSError, ValueError, AttributeError):
            return None
    if not context or context == "default":
        return None
    meta = os.path.join(config_dir, "contexts", "meta",
                        hashlib.sha256(context.encode()).hexdigest(), "meta.json")
    try:
        with open(meta) as handle:
            host = json.load(handle)["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return host if isinstance(host, str) and host.startswith("ssh://") else None
