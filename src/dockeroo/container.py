"""Container operations shared by docker.run, docker.copy and the Gentoo recipes.

Options in (a :class:`ContainerSpec`), engine calls out: ``docker create``
arguments, layouts streamed in, scripts run with ``docker exec``, paths
streamed between containers, commits.  Tar data goes through
:mod:`dockeroo.tarstream`; processes through :class:`~dockeroo.engine.DockerEngine`.
"""

import posixpath
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import tarstream
from .engine import DEFAULT_LONG_TIMEOUT
from .options import parse_mapping


@dataclass
class ContainerSpec:
    """What ``docker create`` needs; every field maps to documented options."""

    name: str
    image: str
    command: Optional[List[str]] = None
    entrypoint: Optional[List[str]] = None
    user: Optional[str] = None
    tty: bool = False
    env: Dict[str, str] = field(default_factory=dict)
    env_files: List[str] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)
    volumes: List[str] = field(default_factory=list)  # "src:dst[:mode]"
    volumes_from: List[str] = field(default_factory=list)
    links: List[str] = field(default_factory=list)  # "container:alias"
    network: Optional[str] = None  # the network joined at create time
    network_aliases: List[str] = field(default_factory=list)
    ports: List[str] = field(default_factory=list)
    restart: Optional[str] = None
    workdir: Optional[str] = None
    hostname: Optional[str] = None
    privileged: bool = False
    cap_add: List[str] = field(default_factory=list)
    cap_drop: List[str] = field(default_factory=list)
    security_opt: List[str] = field(default_factory=list)
    devices: List[str] = field(default_factory=list)
    device_cgroup_rules: List[str] = field(default_factory=list)
    stop_timeout: Optional[int] = None
    platform: Optional[str] = None
    interactive: bool = False

    def create_args(self):
        """``docker create`` argv (without the leading ``docker``)."""
        args = ["create", "--name", self.name]
        if self.tty:
            args.append("--tty")
        if self.interactive:
            args.append("--interactive")
        if self.user:
            args += ["--user", self.user]
        if self.workdir:
            args += ["--workdir", self.workdir]
        if self.hostname:
            args += ["--hostname", self.hostname]
        if self.entrypoint is not None:
            args += ["--entrypoint", self.entrypoint[0] if self.entrypoint else ""]
        for key, value in self.env.items():
            args += ["--env", "%s=%s" % (key, value)]
        for path in self.env_files:
            args += ["--env-file", path]
        for key, value in self.labels.items():
            args += ["--label", "%s=%s" % (key, value)]
        for volume in self.volumes:
            args += ["--volume", volume]
        for source in self.volumes_from:
            args += ["--volumes-from", source]
        for link in self.links:
            args += ["--link", link]
        if self.network:
            args += ["--network", self.network]
            for alias in self.network_aliases:
                args += ["--network-alias", alias]
        for port in self.ports:
            args += ["--publish", port]
        if self.restart:
            args += ["--restart", self.restart]
        if self.privileged:
            args.append("--privileged")
        for cap in self.cap_add:
            args += ["--cap-add", cap]
        for cap in self.cap_drop:
            args += ["--cap-drop", cap]
        for opt in self.security_opt:
            args += ["--security-opt", opt]
        for dev in self.devices:
            args += ["--device", dev]
        for rule in self.device_cgroup_rules:
            args += ["--device-cgroup-rule", rule]
        if self.stop_timeout is not None:
            args += ["--stop-timeout", str(self.stop_timeout)]
        if self.platform:
            args += ["--platform", self.platform]
        args.append(self.image)
        if self.entrypoint:
            args += self.entrypoint[1:]
        if self.command:
            args += self.command
        return args


def read_privileges(opts, default_privileged=False):
    """The privilege options shared by run and the Gentoo recipes.

    ``privileged`` plus ``cap-add``, ``cap-drop``, ``security-opt``,
    ``devices`` and ``device-cgroup-rules`` (one per line), for engines
    that refuse ``--privileged``.
    """
    return dict(
        privileged=opts.bool("privileged", default_privileged),
        cap_add=opts.lines("cap-add"),
        cap_drop=opts.lines("cap-drop"),
        security_opt=opts.lines("security-opt"),
        devices=opts.lines("devices"),
        device_cgroup_rules=opts.lines("device-cgroup-rules"),
    )


def read_volumes(opts, option="volumes", base=None):
    """``named-volume:/path`` and ``/host/path:/path`` lines, optional ``:ro``/``:rw``."""
    volumes = []
    for line in opts.lines(option):
        parts = parse_mapping(opts, option, line, 2, 3)
        if not parts[1].startswith("/"):
            raise opts.error(option, "the mount point must be an absolute path", line)
        if len(parts) == 3 and not set(parts[2].split(",")) <= {"ro", "rw", "z", "Z", "nocopy",
                                                                  "shared", "slave", "private",
                                                                  "rshared", "rslave", "rprivate"}:
            raise opts.error(option, "unknown mount mode %r" % parts[2], line)
        if base and parts[0].startswith("."):
            parts[0] = posixpath.normpath(posixpath.join(base, parts[0]))
        volumes.append(":".join(parts))
    return volumes


# -- operations ---------------------------------------------------------------------
def load_layout(engine, container, root, uid=None, gid=None, timeout=DEFAULT_LONG_TIMEOUT):
    """Stream the local folder ROOT onto CONTAINER's ``/`` (modes, links kept)."""
    engine.feed(["cp", "-", container + ":/"],
                lambda out: tarstream.pack_folder(root, out, uid=uid, gid=gid), timeout=timeout)


def exec_script(engine, container, script, shell=("/bin/sh",), user=None, log=None,
                timeout=DEFAULT_LONG_TIMEOUT, env=None, tty=False):
    """Run SCRIPT in CONTAINER as ``SHELL -c SCRIPT`` with ``docker exec``.

    The output streams to LOG; a non-zero exit raises DockerError with the
    output's tail.
    """
    args = ["exec"]
    if user:
        args += ["--user", user]
    if tty:
        args.append("--tty")
    for key, value in (env or {}).items():
        args += ["--env", "%s=%s" % (key, value)]
    args += [container] + list(shell) + ["-c", script]
    return engine.run(args, stream=log, timeout=timeout)


def copy_paths(engine, source, target, pairs, timeout=DEFAULT_LONG_TIMEOUT):
    """Stream paths from container SOURCE to container TARGET.

    PAIRS are (source_path, target_path) absolute paths.  Works when the
    target has no shell or tar (``docker cp`` does the extraction).
    Modes, owners, symlinks and hard links are kept.
    """
    for src, dst in pairs:
        src = posixpath.normpath(src)
        dst = posixpath.normpath(dst)
        top = posixpath.basename(src) or "."
        rename = tarstream.prefix_renamer(top, dst.lstrip("/") or ".")
        engine.pipe(["cp", "%s:%s" % (source, src), "-"], ["cp", "-", target + ":/"],
                    transform=lambda tin, out, r=rename: tarstream.retarget(tin, out, r),
                    timeout=timeout)


def commit(engine, container, ref, changes=(), message=None, timeout=DEFAULT_LONG_TIMEOUT):
    """``docker commit`` with ``--change`` lines; returns the new image id."""
    args = ["commit"]
    for change in changes:
        args += ["--change", change]
    if message:
        args += ["--message", message]
    args += [container, ref]
    return engine.run(args, timeout=timeout).stdout.strip()
