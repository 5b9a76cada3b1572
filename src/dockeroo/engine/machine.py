"""The ``docker-machine`` CLI beyond engine selection: :func:`machine_config`
(``url`` and ``inspect``) and commands on a machine's host (the Gentoo
recipes' binfmt set-up), through :class:`~dockeroo.engine.docker.DockerEngine`
with ``program='docker-machine'``.
"""

import os
import shlex

from dockeroo.engine.process import DEFAULT_TIMEOUT
from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.selection import EngineConfig

PROGRAM = "docker-machine"


def _runner():
    # docker-machine reads its own store from the user's environment
    return DockerEngine(EngineConfig(), docker=PROGRAM)


def ssh(machine_name, argv, timeout=DEFAULT_TIMEOUT, *, input=None, check=True, stream=None):
    """Run ARGV (a list) on machine MACHINE_NAME's host: ``docker-machine ssh NAME -- ...``.

    ssh hands the remote shell one command line, so each argument is
    shell-quoted: arguments with spaces, quotes or ``$`` arrive intact.
    Returns the :class:`~dockeroo.engine.process.Result`; a failure or a timeout
    raises :class:`~dockeroo.engine.errors.DockerError`.
    """
    if not machine_name:
        raise ValueError("a machine name is required")
    if isinstance(argv, str) or not argv:
        raise ValueError("argv must be a non-empty list of arguments")
    words = [shlex.quote(str(arg)) for arg in argv]
    return _runner().run(["ssh", machine_name, "--"] + words, input=input, timeout=timeout,
                         check=check, stream=stream, program=PROGRAM)


def machine_config(name, timeout=DEFAULT_TIMEOUT):
    """Ask ``docker-machine`` where machine NAME's engine is and how to reach it."""
    runner = _runner()
    url = runner.run(["url", name], timeout=timeout, program=PROGRAM).stdout.strip()
    info = runner.json(["inspect", name], timeout=timeout, program=PROGRAM) or {}
    auth = (info.get("HostOptions") or {}).get("AuthOptions") or {}
    cert_path = auth.get("StorePath") or (
        os.path.dirname(auth["ClientCertPath"]) if auth.get("ClientCertPath") else None)
    env = {"DOCKER_HOST": url, "DOCKER_MACHINE_NAME": name}
    if cert_path:
        env["DOCKER_TLS_VERIFY"] = "1"
        env["DOCKER_CERT_PATH"] = cert_path
    return EngineConfig(env=tuple(sorted(env.items())),
                        unset=("DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"),
                        description="docker-machine %r (%s)" % (name, url))


#: machine name -> its EngineConfig, for this process (an engine cache)
_CONFIGS = {}


def known_config(name):
    """:func:`machine_config` of machine NAME, asked once per process."""
    config = _CONFIGS.get(name)
    if config is None:
        config = _CONFIGS[name] = machine_config(name)
    return config
