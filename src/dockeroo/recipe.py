"""The base class every dockeroo recipe stands on.

A recipe reads its options in ``__init__`` (through :mod:`dockeroo.options`,
so every mistake is a ``UserError`` before anything is created), records
the inputs that define what it makes (fingerprints) as options so that
buildout's own change detection sees them, and implements:

``ensure()``
    make Docker hold what the part describes; called by both ``install``
    and ``update``; cheap when Docker already matches.
``owned(values)`` (classmethod)
    the Docker objects a configuration owns, as (kind, name) pairs; used
    to remove them on uninstall and to drop the ones a changed
    configuration no longer describes.

Uninstall and change
--------------------
Buildout uninstalls a changed part (with its old options) *before* it
installs the new configuration.  Removing objects there would destroy an
image before its replacement is built, or drop a volume's data for a
label change.  So the uninstall entry point checks whether the part is
still configured in this buildout run (every part's recipe is constructed
before any uninstall runs): if it is, removal is deferred and the new
``install()`` removes only what the new configuration no longer owns,
after the new objects exist.  When that install fails, buildout has
already forgotten the old configuration: it is kept in
``parts/.dockeroo-replaced/<part>.json`` until an install of the part
succeeds and drops what only the old configuration owned.  A part removed
from the buildout is removed for real, honouring ``keep``.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import threading
import urllib.parse
from contextlib import contextmanager

from zc.buildout import UserError

from . import engine as engine_mod
from .engine import DockerEngine, DockerError, EngineConfig, InUse, NotFound
from .options import Options
from .tarstream import UnsafeArchive

LABEL_PART = "io.dockeroo.part"
LABEL_BUILDOUT = "io.dockeroo.buildout"
LABEL_FINGERPRINT = "io.dockeroo.fingerprint"
OWNER_OPTION = "dockeroo-owner"

ENGINE_OPTIONS = ("machine-name", "engine-url", "engine-tls-verify", "engine-tls-cert-path",
                  "docker-command")
#: the environment variable naming the docker client when ``docker-command`` is not given
DOCKER_COMMAND_ENV = "DOCKEROO_DOCKER_COMMAND"

#: (owner, part) -> recipe name, for every part constructed in this process
_configured = {}
#: (owner, part) -> old options of a part whose uninstall was deferred
_replaced = {}
#: docker-machine answers, per machine name
_machines = {}


def owner_id(directory):
    return hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]


def label_args(labels):
    args = []
    for key, value in labels.items():
        args += ["--label", "%s=%s" % (key, value)]
    return args


def engine_from_options(opts):
    """The engine a part's options select (see docs/engine.rst)."""
    config = _engine_config(opts)
    client = docker_command(opts)
    return DockerEngine.shared(dataclasses.replace(config, docker=client) if client else config)


def docker_command(opts):
    """The docker client named by ``docker-command`` or $DOCKEROO_DOCKER_COMMAND, or None."""
    value, option = opts.text("docker-command"), "docker-command"
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


def _engine_config(opts):
    machine_opt = opts.text("machine-name")
    url = opts.text("engine-url")
    verify = opts.bool("engine-tls-verify", None) if opts.text("engine-tls-verify") else None
    cert_path = opts.text("engine-tls-cert-path")
    if url and machine_opt:
        raise opts.error("engine-url", "give either engine-url or machine-name, not both", url)
    for option in ("engine-tls-verify", "engine-tls-cert-path"):
        if not url and opts.text(option):
            raise opts.error(option, "applies to engine-url only (docker-machine and the "
                             "DOCKER_* environment bring their own TLS settings)", opts.text(option))
    if cert_path:
        cert_path = os.path.abspath(os.path.expanduser(cert_path))
        if not os.path.isdir(cert_path):
            raise opts.error("engine-tls-cert-path", "%s is not a directory" % cert_path,
                             opts.text("engine-tls-cert-path"))
    if url:
        if "://" not in url:
            raise opts.error("engine-url", "must be a URL such as tcp://host:2376 or unix:///var/run/docker.sock", url)
        return engine_mod.url_config(url, verify, cert_path)
    machine = machine_opt or os.environ.get("DOCKER_MACHINE_NAME")
    if machine:
        config = _machines.get(machine)
        if config is None:
            try:
                config = engine_mod.machine_config(machine)
            except DockerError as exc:
                option = "machine-name" if machine_opt else "machine-name (from DOCKER_MACHINE_NAME)"
                raise opts.error(option, "docker-machine cannot tell where this machine is: %s"
                                 % (exc.stderr or exc), machine)
            _machines[machine] = config
        return config
    return EngineConfig()


class Recipe:
    """Base class; subclasses set ``recipe`` and implement the hooks."""

    recipe = "docker.base"
    #: other option names accepted for ``name``
    name_aliases = ()
    #: whether ``name`` is used at all
    has_name = True
    #: ``timeout`` default for long operations (build, pull, push, scripts)
    long_timeout = engine_mod.DEFAULT_LONG_TIMEOUT

    def __init__(self, buildout, name, options):
        self.buildout = buildout
        self.part = name
        self.options = options
        self.opts = Options(name, options)
        self.log = logging.getLogger(name)
        bo = buildout["buildout"]
        self.directory = bo["directory"]
        self.owner = owner_id(self.directory)
        options[OWNER_OPTION] = self.owner
        self.newest = bo.get("newest", "true") == "true"
        self.offline = bo.get("offline", "false") == "true"
        self.keep = self.opts.bool("keep", False)
        self.timeout = self.opts.duration("timeout", None)
        if self.has_name:
            self.name = self.opts.text("name", default=name, aliases=self.name_aliases)
            #: the option the user wrote the name in (for error messages)
            self.name_option = next((o for o in ("name",) + tuple(self.name_aliases)
                                     if (options.get(o) or "").strip()), "name")
            options["name"] = self.name
        self.setup()
        self.engine = engine_from_options(self.opts)
        # buildout constructs every part before it updates any: the objects
        # of all parts are then looked up together (one inspect per kind)
        try:
            owned = self.owned(options)
        except (KeyError, ValueError):
            owned = ()
        for kind, obj in owned:
            self.engine.want(kind, obj)
        _configured[(self.owner, name)] = self.recipe
        self._undo = []

    # -- hooks ------------------------------------------------------------------
    def setup(self):
        """Read and validate options (raise UserError); record fingerprints."""

    def ensure(self):
        """Make Docker hold what the part describes; return owned paths."""
        raise NotImplementedError

    @classmethod
    def owned(cls, values):
        """(kind, name) pairs of the Docker objects a configuration owns."""
        return []

    # -- helpers for subclasses ----------------------------------------------------
    def cmd_timeout(self, long=False):
        if self.timeout:
            return self.timeout
        return self.long_timeout if long else engine_mod.DEFAULT_TIMEOUT

    def run(self, args, long=False, stream=False, **kwargs):
        """Run a docker command for this part (timeout and log applied)."""
        return self.engine.run(args, timeout=self.cmd_timeout(long),
                               stream=self.log if stream else None, **kwargs)

    def labels(self, fingerprint=None, extra=None):
        labels = dict(extra or {})
        labels[LABEL_PART] = self.part
        labels[LABEL_BUILDOUT] = self.owner
        if fingerprint:
            labels[LABEL_FINGERPRINT] = fingerprint
        return labels

    def is_ours(self, obj):
        return is_owned(obj, self.part, self.owner)

    def remove_container(self, name):
        """Remove a (temporary) container this run made, with its anonymous volumes."""
        self.run(["rm", "--force", "--volumes", name], check=False)
        self.engine.forget("container", name)

    def clear_leftover(self, name, options):
        """Remove container NAME left by an interrupted run of this part.

        A container of that name that this part did not make is an error
        naming OPTIONS (the options that choose the name).
        """
        obj = self.engine.inspect("container", name)
        if obj is None:
            return
        if not self.is_ours(obj):
            raise UserError("Part [%s]: container %s exists and was not made by this part; "
                            "remove it or choose another name (%s)" % (self.part, name, options))
        self.log.info("Removing container %s left by an interrupted run", name)
        self.remove_container(name)

    def remove_image_id(self, image_id, warn=True):
        """Remove an image this part made, by id.

        With WARN, an image still in use (e.g. by another part's container)
        is left with a warning; otherwise the error is raised.
        """
        try:
            self.run(["image", "rm", image_id])
        except NotFound:
            return
        except DockerError as exc:
            if not warn:
                raise
            self.log.warning("Could not remove the previous image %s: %s", image_id[7:19],
                             exc.stderr)
        self.engine.forget("image", image_id)

    def install_freeze(self, container, path):
        """Put the freeze binary for the engine's architecture at PATH in CONTAINER."""
        from . import freeze
        try:
            freeze.install(self.engine, container, arch=self.engine.architecture(), path=path,
                           timeout=self.cmd_timeout())
        except freeze.FreezeUnavailable as exc:
            raise UserError("Part [%s]: %s" % (self.part, exc))

    def on_failure(self, action):
        """Register an undo action run (last first) if install fails."""
        self._undo.append(action)

    def path_option(self, option, **kwargs):
        return self.opts.path(option, self.directory, **kwargs)

    @property
    def parts_directory(self):
        return self.buildout["buildout"]["parts-directory"]

    @property
    def cache_directory(self):
        return os.path.join(self.parts_directory, ".dockeroo-cache")

    @contextmanager
    def failures(self):
        """Turn engine errors into UserErrors naming the part; undo on failure.

        SIGTERM (a CI job or service manager stopping buildout) is turned into
        :class:`Terminated` meanwhile, so that the undo actions run as for any
        failure instead of leaving half-made objects that look complete.
        """
        self._undo = []
        previous = _catch_sigterm()
        try:
            yield
        except (DockerError, UnsafeArchive, UserError) as exc:
            self._rollback()
            if isinstance(exc, UserError) and str(exc).startswith("Part ["):
                raise
            raise UserError("Part [%s] (%s): %s" % (self.part, self.recipe, exc))
        except BaseException:
            self._rollback()
            raise
        finally:
            _restore_sigterm(previous)
        self._undo = []

    def _rollback(self):
        while self._undo:
            action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # keep the original error visible
                self.log.warning("Cleanup after failure did not complete: %s", exc)

    # -- buildout entry points ------------------------------------------------------
    def install(self):
        old = _replaced.pop((self.owner, self.part), None)
        # old configurations whose objects a failed install could not drop
        pending = self._load_pending()
        if old is not None:
            pending.append(old)
        try:
            with self.failures():
                paths = self.ensure() or []
                for values in pending:
                    self.drop_replaced(values)
        except BaseException:
            # buildout has forgotten the old configuration by now: remember
            # it, so that the next successful install still removes what
            # only the old configuration owned (a renamed container...)
            self._save_pending(pending)
            raise
        self._save_pending([])
        return list(paths)

    @property
    def _pending_path(self):
        return os.path.join(self.parts_directory, ".dockeroo-replaced",
                            urllib.parse.quote(self.part, safe="") + ".json")

    def _load_pending(self):
        try:
            with open(self._pending_path) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return []
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def _save_pending(self, pending):
        path = self._pending_path
        if not pending:
            if os.path.exists(path):
                os.remove(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as handle:
            json.dump(pending, handle)
        os.replace(path + ".tmp", path)

    def update(self):
        with self.failures():
            paths = self.ensure()
        return list(paths) if paths else None

    def drop_replaced(self, old):
        """Remove objects the old configuration owned and the new one does not."""
        if Options(self.part, old).bool("keep", False):
            return
        keep = set(self.owned(self.options))
        engine = self.engine
        for kind, name in self.owned(old):
            if (kind, name) not in keep:
                remove_object(engine, kind, name, self.part, old.get(OWNER_OPTION), self.log,
                              timeout=self.cmd_timeout())

    @classmethod
    def uninstaller(cls):
        """The ``zc.buildout.uninstall`` entry point for this recipe."""

        def uninstall(name, options):
            log = logging.getLogger(name)
            owner = options.get(OWNER_OPTION)
            if _configured.get((owner, name)) == cls.recipe:
                _replaced[(owner, name)] = dict(options)
                log.debug("configuration changed: old objects are removed after the new ones exist")
                return
            opts = Options(name, dict(options))
            if opts.bool("keep", False):
                log.info("keep = true: leaving %s", ", ".join("%s %s" % o for o in cls.owned(options)) or "everything")
                cls.uninstalled(name, options, log)
                return
            try:
                engine = engine_from_options(opts)
                cls.remove(engine, name, options, log)
            except (DockerError, UnsafeArchive) as exc:
                raise UserError("Part [%s] (%s): uninstall failed: %s" % (name, cls.recipe, exc))
            cls.uninstalled(name, options, log)
        return uninstall

    @classmethod
    def uninstalled(cls, part, options, log):
        """Hook run after a part is really uninstalled (removed or kept), not
        when its uninstall is deferred for a changed configuration: drop
        bookkeeping files the recipe manages itself."""

    @classmethod
    def remove(cls, engine, part, options, log):
        """Uninstall: remove what the part's (old) options own."""
        timeout = Options(part, dict(options)).duration("timeout", engine_mod.DEFAULT_TIMEOUT)
        for kind, name in cls.owned(options):
            remove_object(engine, kind, name, part, options.get(OWNER_OPTION), log, timeout=timeout)


class Terminated(SystemExit):
    """SIGTERM arrived while a part was being installed or updated."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends at once
    raise Terminated(128 + signum)


def _catch_sigterm():
    """Install the SIGTERM handler (main thread only); returns the previous one."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        return None


def _restore_sigterm(previous):
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except (ValueError, OSError):
            pass


def _plain_install(argv):
    """Whether ARGV is ``buildout [options] [assignments] [install]``: a run
    that uninstalls every installed part the configuration no longer has
    (``buildout install PART...`` uninstalls nothing else).  Parsed as
    zc.buildout's ``main()`` does; anything unexpected answers False."""
    if not argv or "buildout" not in os.path.basename(argv[0]):
        return False
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg.startswith("-"):
            op = arg[1:].lstrip("vqhWUoOnNDA")
            if op[:1] == "c":
                if len(op) == 1:
                    if not args:
                        return False
                    args.pop(0)
            elif op[:1] == "t":
                if not args:
                    return False
                args.pop(0)
            elif op:
                return False
        elif "=" in arg:
            continue
        else:
            return arg == "install" and not args
    return True


def uninstalled_together(part, options, installed=".installed.cfg"):
    """The other parts with the same recipe that this buildout run uninstalls
    too, as (part, options) pairs, so that one uninstall can remove all of
    their objects in one batch (parallel docker calls) instead of one part
    after the other.

    Called from a part's real (not deferred) uninstall.  Buildout has then
    already constructed every configured part, and in a plain ``buildout``
    run it uninstalls every installed part it did not construct.  The
    installed parts are read from buildout's own record (``.installed.cfg``
    in the buildout directory, the current directory while buildout runs);
    it must hold PART with these options.  Parts kept (``keep = true``),
    parts of other buildouts and parts constructed in this run are not
    included.  An empty list when anything is uncertain: each part is
    then removed by its own uninstall.
    """
    owner = options.get(OWNER_OPTION)
    recipe = options.get("recipe")
    if not owner or not recipe or not _plain_install(sys.argv):
        return []
    try:
        import zc.buildout.configparser
        with open(installed) as handle:
            sections = zc.buildout.configparser.parse(handle, installed)
    except Exception:  # no record, or not one we can read: no batch
        return []
    mine = sections.get(part) or {}
    if any(mine.get(key) != options.get(key) for key in (OWNER_OPTION, "recipe", "name")):
        return []
    found = []
    for other in (sections.get("buildout") or {}).get("parts", "").split():
        values = sections.get(other)
        if other == part or not values or (owner, other) in _configured:
            continue
        if values.get("recipe") != recipe or values.get(OWNER_OPTION) != owner:
            continue
        values = {k: v.replace("$$", "$") for k, v in values.items()}
        try:
            if Options(other, values).bool("keep", False):
                continue
        except UserError:  # its own uninstall reports it
            continue
        found.append((other, values))
    return found


def is_owned(obj, part, owner):
    labels = (obj.get("Config") or {}).get("Labels") if "Config" in obj else obj.get("Labels")
    labels = labels or {}
    return labels.get(LABEL_PART) == part and labels.get(LABEL_BUILDOUT) == owner


def remove_object(engine, kind, name, part, owner, log, timeout=engine_mod.DEFAULT_TIMEOUT,
                  check_owner=True, stop_timeout=None):
    """Remove one object if this part created it; report it otherwise."""
    obj = engine.inspect(kind, name)
    if obj is None:
        return False
    if check_owner and not is_owned(obj, part, owner):
        log.warning("%s %s was not created by this part; leaving it", kind.capitalize(), name)
        return False
    if kind == "container":
        if stop_timeout is not None and (obj.get("State") or {}).get("Running"):
            engine.run(["stop", "--time", str(int(stop_timeout)), name], timeout=timeout + stop_timeout)
        engine.run(["rm", "--force", "--volumes", name], timeout=timeout)
    elif kind == "image":
        engine.run(["image", "rm", name], timeout=timeout)
    elif kind == "volume":
        try:
            engine.run(["volume", "rm", name], timeout=timeout)
        except InUse:
            users = engine.run(["ps", "--all", "--filter", "volume=" + name,
                                "--format", "{{.Names}}"], check=False).stdout.split()
            raise UserError("Part [%s]: volume %s is still used by container(s) %s; "
                            "remove them first (nothing was removed)"
                            % (part, name, ", ".join(users) or "(unknown)"))
    elif kind == "network":
        users = network_users(engine, name, obj)
        if users:  # Docker would remove it under stopped containers and break them
            raise UserError("Part [%s]: network %s is still used by container(s) %s; "
                            "remove them first (nothing was removed)"
                            % (part, name, ", ".join(users)))
        engine.run(["network", "rm", name], timeout=timeout)
    engine.forget(kind, name)
    log.info("Removed %s %s", kind, name)
    return True


def network_users(engine, name, obj=None):
    """Names of the containers attached to network NAME, running or stopped.

    ``network inspect`` lists running containers only; ``ps --filter network``
    also finds stopped ones (by network name).
    """
    obj = obj if obj is not None else engine.inspect("network", name)
    users = {c.get("Name") for c in ((obj or {}).get("Containers") or {}).values()}
    listed = engine.run(["ps", "--all", "--filter", "network=" + name,
                         "--format", "{{.Names}}"]).stdout.split()
    return sorted(u for u in users | set(listed) if u)


def quote_command(argv):
    """An argv list as one shell-quoted string (for messages and CMD)."""
    return " ".join(shlex.quote(a) for a in argv)
