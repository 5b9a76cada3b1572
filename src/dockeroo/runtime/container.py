"""Container operations shared by docker.run, docker.copy and the Gentoo recipes.

Options in (a :class:`ContainerSpec`), engine calls out: ``docker create``
arguments, layouts streamed in, scripts run with ``docker exec``, paths
streamed between containers, commits.  Tar data goes through
:mod:`dockeroo.base.tarstream`; processes through :class:`~dockeroo.engine.docker.DockerEngine`.
"""

import json
import posixpath
import re
import select
import shlex
import shutil
import subprocess
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from dockeroo.base import tarstream
from dockeroo.engine.commands import repeated
from dockeroo.engine.process import DEFAULT_LONG_TIMEOUT, DEFAULT_TIMEOUT, Supervisor, printed_id
from dockeroo.engine.errors import CopySourceError, DockerError
from dockeroo.model.options import CONTAINER_NAME, os_errors, parse_mapping
from dockeroo.model.ownership import remove_container, remove_image


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

    def uses(self):
        """(kind, name, relation) of the objects the container uses: its
        image, named volumes, ``volumes-from`` and ``links`` containers (its
        networks: see the recipe's Spec)."""
        out = [("image", self.image, "image")]
        out += [("volume", v.split(":", 1)[0], "volume") for v in self.volumes
                if not v.startswith("/")]
        out += [("container", v.split(":", 1)[0], "volumes-from") for v in self.volumes_from]
        out += [("container", v.split(":", 1)[0], "link") for v in self.links]
        return out

    def create_args(self):
        """``docker create`` argv (without the leading ``docker``)."""
        args = ["create", "--name", self.name] + ["--tty"] * self.tty + ["--interactive"] * self.interactive

        def add(*pairs):  # (flag, [values]): the flag once per value
            args.extend(word for flag, values in pairs for word in repeated(flag, values))
        add(("--user", [self.user] if self.user else []),
            ("--workdir", [self.workdir] if self.workdir else []),
            ("--hostname", [self.hostname] if self.hostname else []))
        if self.entrypoint is not None:
            args += ["--entrypoint", self.entrypoint[0] if self.entrypoint else ""]
        add(("--env", ["%s=%s" % item for item in self.env.items()]), ("--env-file", self.env_files),
            ("--label", ["%s=%s" % item for item in self.labels.items()]),
            ("--volume", self.volumes), ("--volumes-from", self.volumes_from), ("--link", self.links),
            ("--network", [self.network] if self.network else []),
            ("--network-alias", self.network_aliases if self.network else []),
            ("--publish", self.ports), ("--restart", [self.restart] if self.restart else []))
        args += ["--privileged"] * self.privileged
        add(("--cap-add", self.cap_add), ("--cap-drop", self.cap_drop),
            ("--security-opt", self.security_opt), ("--device", self.devices),
            ("--device-cgroup-rule", self.device_cgroup_rules),
            ("--stop-timeout", [] if self.stop_timeout is None else [str(self.stop_timeout)]),
            ("--platform", [self.platform] if self.platform else []))
        return args + [self.image] + (self.entrypoint or [])[1:] + (self.command or [])


def read_privileges(opts, default_privileged=False):
    """The privilege options shared by run and the Gentoo recipes."""
    return dict(privileged=opts.bool("privileged", default_privileged),
                **{name.replace("-", "_"): opts.lines(name) for name in (
                    "cap-add", "cap-drop", "security-opt", "devices", "device-cgroup-rules")})


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


def read_volumes_from(opts, option="volumes-from"):
    """``CONTAINER``, ``CONTAINER:ro`` or ``CONTAINER:rw`` lines (the
    containers whose volumes are mounted), as given."""
    lines = opts.lines(option)
    for line in lines:
        name, colon, mode = line.partition(":")
        if not CONTAINER_NAME.match(name) or (colon and mode not in ("ro", "rw")):
            raise opts.error(option, "each line must be CONTAINER or CONTAINER:ro or "
                             "CONTAINER:rw", line)
    return lines


# -- the temporary container of an apply step ---------------------------------------------
class Temporary:
    """A container a recipe's apply step works in (see :func:`temporary_container`)."""

    def __init__(self, recipe, name):
        self.recipe = recipe
        self.name = name
        self.gone = False

    def freeze(self, path="/bin/freeze"):
        """Put the freeze binary for the engine's architecture at PATH."""
        self.recipe.install_freeze(self.name, path)

    def start(self):
        self.recipe.run(["start", self.name])

    def layout(self, root, uid=0, gid=0, option="layout"):
        """Stream the local folder ROOT onto the container's ``/`` (errors name OPTION)."""
        recipe = self.recipe
        with os_errors(recipe.opts, option, "cannot read the layout", root):
            load_layout(recipe.engine, self.name, root, uid=uid, gid=gid,
                        timeout=recipe.cmd_timeout(long=True))
        recipe.log.info("Copied %s %s", option, root)

    def exec(self, script, shell=("/bin/sh",), user=None, env=None, what="script"):
        """Run SCRIPT (on stdin, see :func:`exec_script`) in the started container."""
        recipe = self.recipe
        recipe.log.info("Running %s in %s", what, self.name)
        return exec_script(recipe.engine, self.name, script, shell=shell, user=user,
                           log=recipe.log, timeout=recipe.cmd_timeout(long=True), env=env)

    def commit(self, ref, changes=()):
        """Commit the container as REF; returns the new image id."""
        recipe = self.recipe
        return commit(recipe.engine, self.name, ref, changes=changes,
                      timeout=recipe.cmd_timeout(long=True))

    def remove(self, check=True):
        """Remove the container now (once); a failure raises unless not CHECK
        (the undo action registered at its creation removes it then)."""
        if not self.gone:
            recipe = self.recipe
            remove_container(recipe.engine, self.name, timeout=recipe.cmd_timeout(), check=check)
            self.gone = True
            recipe.lifecycle.released(self.name)

    def kept(self):
        """The container is not removed on exit (it was renamed to its final name)."""
        self.gone = True


@contextmanager
def temporary_container(recipe, spec, fingerprint=None, remove_on_error=False, renamed=False):
    """Create the container SPEC (``docker create``) as a temporary of RECIPE's
    run and yield a :class:`Temporary`; it is removed when the block ends
    (``Temporary.remove()`` removes it earlier, and fails if it cannot).

    Its labels mark it as this run's temporary (a killed run's successor
    removes it) and its removal is registered as an undo action of RECIPE
    (``Recipe.temporary``): when the block fails, the recipe's rollback
    removes it, in its turn with the other undo actions; with
    REMOVE_ON_ERROR it is removed at once (a helper container).  A container
    RENAMED to its final name when complete (named by
    :func:`~dockeroo.model.ownership.renamed_temporary`) carries no such labels.
    """
    spec.labels = dict(spec.labels)
    spec.labels.update(recipe.temporary(spec.name, fingerprint, renamed=renamed))
    recipe.run(spec.create_args())
    temp = Temporary(recipe, spec.name)
    try:
        yield temp
    except BaseException:
        if remove_on_error:
            temp.remove(check=False)
        raise
    temp.remove(check=False)  # a leftover is removed by the next run (its labels)


# -- operations ---------------------------------------------------------------------
def load_layout(engine, container, root, uid=None, gid=None, timeout=DEFAULT_LONG_TIMEOUT):
    """Stream the local folder ROOT onto CONTAINER's ``/`` (modes, links kept)."""
    engine.feed(["cp", "-", container + ":/"],
                lambda out: tarstream.pack_folder(root, out, uid=uid, gid=gid), timeout=timeout)


#: what ``SHELL -c`` runs: the script itself comes on stdin, never on a command line
SCRIPT_LOADER = ". /dev/stdin"
_SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def script_input(script, env=None):
    """What :func:`exec_script` writes to the shell's stdin: SCRIPT after a
    preamble, on its first line (line numbers stay), that gives the
    script's commands an empty stdin and exports ENV."""
    preamble = ["exec </dev/null;"]
    for key, value in (env or {}).items():
        if not _SHELL_NAME.match(key):
            raise ValueError("%r is not a shell variable name" % key)
        preamble.append("export %s=%s;" % (key, shlex.quote(value)))
    return " ".join(preamble) + " " + script + "\n"


def exec_script(engine, container, script, shell=("/bin/sh",), user=None, log=None,
                timeout=DEFAULT_LONG_TIMEOUT, env=None):
    """Run SCRIPT in CONTAINER with SHELL, as ``SHELL -c SCRIPT`` would, but
    with the script (and ENV) on ``docker exec --interactive``'s stdin, on no
    command line (see :func:`script_input`).  The output streams to LOG; a
    non-zero exit raises DockerError with the output's tail."""
    args = ["exec", "--interactive"]
    if user:
        args += ["--user", user]
    args += [container] + list(shell) + ["-c", SCRIPT_LOADER]
    return engine.run(args, input=script_input(script, env), stream=log, timeout=timeout)


class NotReady(Exception):
    """A container did not become healthy (or running) in time, or exited."""


def wait_ready(engine, container, timeout, interval=0.25):
    """Wait until CONTAINER is healthy (running, without a healthcheck);
    returns its ``State``.  :class:`NotReady` when it exits (with its last
    log lines) or after TIMEOUT s (with the last healthcheck output)."""
    deadline = time.monotonic() + timeout
    while True:
        state = engine.run(["container", "inspect", "--format", "{{json .State}}", container],
                           timeout=DEFAULT_TIMEOUT).json() or {}
        health = state.get("Health")
        if health is not None and not health.get("Status"):
            health = None  # Podman: {"Status": ""} for a container without healthcheck
        if state.get("Running") and not state.get("Restarting"):
            if not health or health.get("Status") == "healthy":
                return state
        elif state.get("Status") in ("exited", "dead") or (
                not state.get("Running") and not state.get("Restarting")):
            logs = engine.run(["logs", "--tail", "20", container], check=False,
                              timeout=DEFAULT_TIMEOUT)
            tail = "\n".join(l for l in logs.output.splitlines() if l.strip())
            raise NotReady("it exited with code %s%s" % (
                state.get("ExitCode"), (":\n" + tail[-2000:]) if tail else ""))
        if time.monotonic() >= deadline:
            if health and not health.get("Log") and engine.capabilities.is_podman:
                raise NotReady("its healthcheck never ran in %ss: %s" % (
                    timeout, engine.capabilities.limit("healthcheck")))
            if health:
                last = (health.get("Log") or [{}])[-1]
                raise NotReady("its healthcheck still says %s after %ss; last check (exit %s): %s"
                               % (health.get("Status"), timeout, last.get("ExitCode"),
                                  (last.get("Output") or "").strip()[-2000:] or "no output"))
            raise NotReady("it is still not running after %ss (status %s)"
                           % (timeout, state.get("Status")))
        time.sleep(interval)


class _CopyJob:
    def __init__(self, src, dst):
        self.arg = src  # as given to ``docker cp`` (a trailing / asks for a folder)
        self.src = posixpath.normpath(src)
        self.dst = posixpath.normpath(dst)
        if self.src == "/":
            raise ValueError("cannot copy / itself: name the paths below it")
        self.direct = posixpath.basename(self.src) == posixpath.basename(self.dst)
        self.proc = None

    def renamer(self):
        rename = tarstream.prefix_renamer(posixpath.basename(self.src), self.dst.lstrip("/"))
        if self.dst != "/":
            return rename

        def onto_root(name):  # the folder's content lands on /; / itself is left alone
            new = rename(name)
            return None if new in (None, ".") else new
        return onto_root


class _Copier:
    """The processes of one :func:`copy_paths` call, under one deadline
    (killed together, see :class:`~dockeroo.engine.process.Supervisor`)."""

    def __init__(self, engine, source, target, timeout, source_engine=None):
        self.engine, self.source, self.target = engine, source, target
        #: the engine of the source container (another one: a copy between hosts)
        self.source_engine = source_engine or engine
        self.group = Supervisor(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.group.close(failed=exc[0] is not None)
        if self.group.timed_out and exc[0] is not None and not isinstance(exc[1], KeyboardInterrupt):
            raise self.group.timeout(["cp", "%s:..." % self.source, "-"]) from None

    def popen(self, args, **kwargs):
        return self.engine.popen(args, self.group, **kwargs)

    def producer(self, job):
        if job.proc is None:
            job.proc = self.source_engine.popen(
                ["cp", "%s:%s" % (self.source, job.arg), "-"], self.group,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return job.proc

    def source_error(self, job):
        proc = job.proc
        return self.group.error(proc, self.group.answer(proc), CopySourceError,
                                container=self.source, path=job.arg)

    def finish_producer(self, job):
        proc = job.proc
        proc.stdout.close()
        proc.wait()
        if proc.returncode != 0:
            raise self.source_error(job)

    def close_producer(self, job):
        """Kill and reap JOB's producer (its stream was only a check)."""
        proc, job.proc = job.proc, None
        self.group.end(proc)

    def check(self, job):
        """Start JOB's producer and wait until its stdout is readable (not
        read: the bytes stay for the consumer): ``docker cp`` prints nothing
        until it has found its path."""
        fd = self.producer(job).stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            if self.group.expired():
                raise self.group.timeout(job.proc)
            events = poller.poll(min(self.group.left(), 1.0) * 1000)
            if events:
                if not events[0][1] & select.POLLIN:
                    raise self.source_error(job)
                return

    def preflight(self, jobs, folders=False):
        """Fail before anything is written if a source path is missing.
        Docker holds the source container's lock while one of its archive
        streams is open, so one stream at a time: each path is checked and
        its stream closed, but the first one's, checked last and kept.  With
        FOLDERS (Podman) a path ending in ``/`` is also checked to be a folder."""
        for job in jobs[1:] + jobs[:1]:
            self.check(job)
            if folders and job.arg.endswith("/"):
                self.check_folder(job)
            elif job is not jobs[0]:
                self.close_producer(job)

    def check_folder(self, job):
        """Podman copies a file asked for as ``PATH/``: read the first header
        of its stream, fail unless it is a folder, and close the stream (it
        is opened again for the copy)."""
        header = job.proc.stdout.read(tarstream.BLOCK)
        self.close_producer(job)
        if tarstream.names_a_file(header):
            raise CopySourceError.not_a_folder(self.source, job.arg)

    def direct(self, job):
        """``docker cp SRC - | docker cp - TARGET:PARENT``, no Python in the data
        path.  A missing PARENT is created and the copy tried again (nothing
        was read yet); False when that failed too (the caller re-targets)."""
        producer = self.producer(job)
        parent = posixpath.dirname(job.dst)
        for attempt in (1, 2):
            consumer = self.popen(["cp", "-", "%s:%s" % (self.target, parent)],
                                  stdin=producer.stdout, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
            _out, err = self.group.communicate(consumer)
            if consumer.returncode == 0:
                self.finish_producer(job)
                return True
            error = self.group.error(consumer, err)
            if not error.missing_folder or self.group.timed_out:
                self.group.kill(producer)
                raise error
            if attempt == 1 and not self.parent_made(parent):
                break
        return False

    def parent_made(self, parent):
        """Create the folder PARENT (and its parents) that ``docker cp -`` did not find."""
        if parent == "/":
            return False
        try:
            self.engine.feed(["cp", "-", "%s:/" % self.target],
                             lambda out: tarstream.folder_entry(out, parent.lstrip("/")),
                             timeout=max(1.0, self.group.left()))
        except DockerError:
            return False  # e.g. a file is in the way: the re-targeted copy reports it
        return True

    def merged(self, jobs, owners=None):
        """Several (renamed) paths through one ``docker cp - TARGET:/`` (see
        :func:`owner_ids` for OWNERS)."""
        consumer = self.popen(["cp", "-", "%s:/" % self.target], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        output = self.group.collect(consumer)
        started = []

        def sources():
            # one source stream open at a time (see preflight): a job's
            # producer is reaped before the next one is started
            for job in jobs:
                if started:
                    self.finish_producer(started[-1])
                started.append(job)
                yield self.producer(job).stdout, job.renamer()

        failure = None
        try:
            tarstream.retarget_many(sources(), consumer.stdin, owners=owners)
        except BrokenPipeError:
            pass  # the consumer stopped: its error is reported below
        except tarstream.UnsafeArchive:
            self.group.kill(consumer)
            raise
        except Exception as exc:  # an unreadable stream: a producer failed
            failure = exc
            self.group.kill(consumer)
        finally:
            with suppress(BrokenPipeError):
                consumer.stdin.close()
        for job in started:
            if job.proc is None or job.proc.stdout.closed:
                continue  # finished before the next one started
            if failure is not None:
                self.group.kill(job.proc)
            self.finish_producer(job)
        consumer.wait()
        _out, err = output()
        if failure is not None:
            raise failure
        if consumer.returncode != 0:
            raise self.group.error(consumer, err)


def copy_paths(engine, source, target, pairs, timeout=DEFAULT_LONG_TIMEOUT, source_engine=None):
    """Stream paths from container SOURCE to container TARGET (which needs no
    shell or tar), PAIRS of absolute (source path, target path), in order.

    Every source path is checked first (:class:`CopySourceError`).  A path
    keeping its name goes straight from one ``docker cp`` to the other;
    renamed ones are re-targeted by :mod:`dockeroo.base.tarstream`,
    consecutive ones through one consumer.  Modes, owners and links are kept.
    With SOURCE_ENGINE, SOURCE is a container of that engine (another host):
    each stream goes from one engine's ``docker cp`` to the other's through a
    pipe of this machine, never held whole in memory.
    """
    jobs = [_CopyJob(src, dst) for src, dst in pairs]
    if not jobs:
        return
    source_engine = source_engine or engine
    owners = owner_ids(source_engine, source, timeout) \
        if source_engine.capabilities.is_podman else None
    with _Copier(engine, source, target, timeout, source_engine) as copier:
        copier.preflight(jobs, folders=owners is not None)
        index = 0
        while index < len(jobs):
            job = jobs[index]
            index += 1
            if job.direct and owners is None and copier.direct(job):
                continue
            group = [job]
            while index < len(jobs) and (owners is not None or not jobs[index].direct):
                group.append(jobs[index])
                index += 1
            copier.merged(group, owners)


def owner_ids(engine, container, timeout=DEFAULT_TIMEOUT):
    """(user name -> uid, group name -> gid) from CONTAINER's /etc/passwd and
    /etc/group: Podman's archives of a container name each member's owners
    but give 0 as every id, so paths copied from it get their ids back
    from these (an id without a name in the source is lost: it becomes 0)."""
    maps = []
    for path in ("/etc/passwd", "/etc/group"):
        try:
            data = engine.reader(["cp", "%s:%s" % (container, path), "-"],
                                 tarstream.first_file, timeout=timeout)
        except DockerError:
            data = None
        found = {}
        for line in (data or b"").decode("utf-8", "replace").splitlines():
            fields = line.split(":")
            if len(fields) > 2 and fields[2].isdigit():
                found.setdefault(fields[0], int(fields[2]))
        maps.append(found)
    return tuple(maps)


def commit(engine, container, ref, changes=(), message=None, timeout=DEFAULT_LONG_TIMEOUT):
    """``docker commit`` with ``--change`` lines (as REF, or untagged when REF
    is None); returns the new image id.  Podman 4.3 refuses the docker CLI's
    commits: there the container is exported and imported with its own
    configuration and CHANGES (asked only after a failure)."""
    args = ["commit"] + repeated("--change", changes) + (["--message", message] if message else [])
    target = [ref] if ref else []
    try:
        return printed_id(engine.run(args + [container] + target, timeout=timeout).stdout)
    except DockerError:
        if not engine.capabilities.is_podman:
            raise
    config = ((engine.inspect("container", container) or {}).get("Config")) or {}
    args = ["import"] + repeated("--change", config_changes(config) + [
        c for line in changes for c in split_change(line)]) + (["--message", message] if message else [])
    # through Python, so that an export that fails midway is not imported as a whole
    result = engine.pipe(["export", container], args + ["-"] + target,
                         transform=lambda src, out: shutil.copyfileobj(src, out, 1 << 20),
                         timeout=timeout)
    return printed_id(result.stdout)


def drop_committed_base(engine, base, timeout=DEFAULT_TIMEOUT):
    """Remove BASE, an untagged image this run made (an import) and then
    committed a container of, once that container is gone.  Docker's commit
    is a child of BASE, which goes with it: nothing to do.  Podman's is an
    import of its own (see :func:`commit`), which leaves BASE behind."""
    if engine.capabilities.is_podman:
        remove_image(engine, base, timeout=timeout, check=False)


def config_changes(config):
    """``--change`` lines that give an imported image CONFIG (a container's
    ``Config``): what ``docker commit`` keeps."""
    quote = json.dumps
    out = ["ENV %s=%s" % (k, _quote(v)) for k, _, v in
           (e.partition("=") for e in config.get("Env") or [])]
    for key, word in (("Entrypoint", "ENTRYPOINT"), ("Cmd", "CMD")):
        if config.get(key):
            out.append("%s %s" % (word, quote(config[key])))
    if config.get("WorkingDir"):
        out.append("WORKDIR " + config["WorkingDir"])
    if config.get("User"):
        out.append("USER " + config["User"])
    out += ["EXPOSE " + port for port in sorted(config.get("ExposedPorts") or {})]
    if config.get("Volumes"):
        out.append("VOLUME " + quote(sorted(config["Volumes"])))
    out += [label_change({k: v}) for k, v in sorted((config.get("Labels") or {}).items())]
    return out


_LABEL_PAIR = re.compile(r'"(?:[^"\\]|\\.)*"="(?:[^"\\]|\\.)*"')


def split_change(line):
    """A ``LABEL`` line of several labels as one line per label (Podman's
    ``import --change`` takes only one); other lines as they are."""
    if not line.startswith("LABEL "):
        return [line]
    pairs = _LABEL_PAIR.findall(line)
    if " ".join(pairs) != line[len("LABEL "):].strip():
        return [line]
    return ["LABEL " + pair for pair in pairs]


def label_change(labels):
    """One ``LABEL "k"="v" ...`` line for ``docker commit/import --change``
    (double-quoted: spaces, ``=`` and quotes survive Docker's parser)."""
    return "LABEL " + " ".join("%s=%s" % (_quote(k), _quote(v)) for k, v in labels.items())


def _quote(text):
    """TEXT double-quoted for a Dockerfile instruction."""
    return '"%s"' % str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
