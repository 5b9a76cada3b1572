"""The engine a part's options select (``engine-url``, ``machine-name``, ``docker-command``)."""

import dataclasses
import os
import shutil
from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.errors import DockerError
from dockeroo.engine.selection import EngineConfig, default_ssh_url, url_config
from dockeroo.engine.machine import known_config


ENGINE_OPTIONS = ("machine-name", "engine-url", "engine-tls-verify", "engine-tls-cert-path",
                  "docker-command")
#: the environment variable naming the docker client when ``docker-command`` is not given
DOCKER_COMMAND_ENV = "DOCKEROO_DOCKER_COMMAND"


def engine_options(values):
    """The options of VALUES that select the engine (recorded with pending removals)."""
    return {key: values[key] for key in ENGINE_OPTIONS if (values.get(key) or "").strip()}


#: docker.copy's source engine: the engine options with this prefix (``from-engine-url``...)
SOURCE_PREFIX = "from-"


def engine_from_options(opts, prefix=""):
    """The engine a part's options select (see docs/engine.rst); with PREFIX,
    the one the options PREFIX + each engine option select."""
    config = _engine_config(opts, prefix)
    client = docker_command(opts, prefix)
    return DockerEngine.shared(dataclasses.replace(config, docker=client) if client else config)


def source_engine_from_options(opts):
    """docker.copy's source engine when a ``from-`` engine option is given, else None
    (the source container is on the part's engine)."""
    if not any(opts.text(SOURCE_PREFIX + key) for key in ENGINE_OPTIONS):
        return None
    return engine_from_options(opts, SOURCE_PREFIX)


def docker_command(opts, prefix=""):
    """The docker client named by ``docker-command`` or $DOCKEROO_DOCKER_COMMAND, or None."""
    value, option = opts.text(prefix + "docker-command"), prefix + "docker-command"
    if value is None:
        value, option = os.environ.get(DOCKER_COMMAND_ENV, "").strip() or None, \
            "docker-command (from %s)" % DOCKER_COMMAND_ENV
    if value is None:
        return None
    if os.sep in value:
        path = os.path.abspath(os.path.expanduser(value))
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise opts.error(option, "%s is not an executable file" % path, value)
        return path
    path = shutil.which(value)
    if path is None:
        raise opts.error(option, "there is no program %r on PATH" % value, value)
    return value


def _engine_config(opts, prefix=""):
    machine_opt = opts.text(prefix + "machine-name")
    url = opts.text(prefix + "engine-url")
    verify = opts.bool(prefix + "engine-tls-verify", None) \
        if opts.text(prefix + "engine-tls-verify") else None
    cert_path = opts.text(prefix + "engine-tls-cert-path")
    if url and machine_opt:
        raise opts.error(prefix + "engine-url", "give either %sengine-url or %smachine-name, "
                         "not both" % (prefix, prefix), url)
    for option in (prefix + "engine-tls-verify", prefix + "engine-tls-cert-path"):
        if not url and opts.text(option):
            raise opts.error(option, "applies to engine-url only (docker-machine and the "
                             "DOCKER_* environment bring their own TLS settings)", opts.text(option))
    if cert_path:
        cert_path = os.path.abspath(os.path.expanduser(cert_path))
        if not os.path.isdir(cert_path):
            raise opts.error(prefix + "engine-tls-cert-path", "%s is not a directory" % cert_path,
                             opts.text(prefix + "engine-tls-cert-path"))
    if url:
        if "://" not in url:
            raise opts.error(prefix + "engine-url", "must be a URL such as tcp://host:2376, "
                             "ssh://user@host or unix:///var/run/docker.sock", url)
        if url.startswith("ssh://") and (verify is not None or cert_path):
            raise opts.error(prefix + ("engine-tls-verify" if verify is not None
                                       else "engine-tls-cert-path"),
                             "does not apply to ssh:// (ssh encrypts and authenticates)", url)
        try:
            return url_config(url, verify, cert_path)
        except ValueError as exc:
            raise opts.error(prefix + "engine-url", str(exc), url)
    machine = machine_opt or os.environ.get("DOCKER_MACHINE_NAME")
    if machine:
        try:
            return known_config(machine)
        except DockerError as exc:
            option = prefix + "machine-name" if machine_opt else \
                "machine-name (from DOCKER_MACHINE_NAME)"
            raise opts.error(option, "docker-machine cannot tell where this machine is: %s"
                             % (exc.stderr or exc), machine)
    default = default_ssh_url()
    if default:  # a Docker context or DOCKER_HOST with an ssh:// endpoint: one connection too
        try:
            return url_config(default)
        except ValueError as exc:
            raise opts.error("engine-url (from the Docker context or DOCKER_HOST)", str(exc),
                             default)
    return EngineConfig()


def failure_text(exc):
    """What a failure says; a docker command stopped by the time limit names
    the option that sets it."""
    text = str(exc)
    if isinstance(exc, DockerError) and exc.timed_out:
        text += " (option 'timeout')"
    return text
