"""The ``docker-machine`` CLI beyond engine selection.

Engine selection (``url`` and ``inspect``) lives in
:func:`dockeroo.engine.machine_config`; this module runs commands on a
machine's host, as the Gentoo recipes need (binfmt set-up for foreign
architectures).  Every call goes through :class:`~dockeroo.engine.DockerEngine`
with ``program='docker-machine'``.
"""

import shlex

from .engine import DEFAULT_TIMEOUT, DockerEngine, EngineConfig

PROGRAM = "docker-machine"


def _runner():
    # docker-machine reads its own store from the user's environment
    return DockerEngine(EngineConfig(), docker=PROGRAM)


def ssh(machine_name, argv, timeout=DEFAULT_TIMEOUT, *, input=None, check=True, stream=None):
    """Run ARGV (a list) on machine MACHINE_NAME's host: ``docker-machine ssh NAME -- ...``.

    ssh hands the remote shell one command line, so each argument is
    shell-quoted: arguments with spaces, quotes or ``$`` arrive intact.
    Returns the :class:`~dockeroo.engine.Result`; a failure or a timeout
    raises :class:`~dockeroo.engine.DockerError`.
    """
    if not machine_name:
        raise ValueError("a machine name is required")
    if isinstance(argv, str) or not argv:
        raise ValueError("argv must be a non-empty list of arguments")
    words = [shlex.quote(str(arg)) for arg in argv]
    return _runner().run(["ssh", machine_name, "--"] + words, input=input, timeout=timeout,
                         check=check, stream=stream, program=PROGRAM)


def ip(machine_name, timeout=DEFAULT_TIMEOUT):
    """The IP address of machine MACHINE_NAME (``docker-machine ip``)."""
    return _runner().run(["ip", machine_name], timeout=timeout, program=PROGRAM).stdout.strip()
