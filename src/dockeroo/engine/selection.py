"""Where an engine is: the environment the docker CLI gets (``DOCKER_HOST``, TLS)."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine is: extra environment for the docker CLI."""

    env: tuple = ()  # sorted (key, value) pairs added to os.environ
    unset: tuple = ()  # variables removed from os.environ
    description: str = "the default docker engine"
    docker: str = "docker"  # the docker client: a command on PATH or an absolute path

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
