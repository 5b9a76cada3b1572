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
before any uninstall runs): if it is, the old configuration is written to
the run's pending records (:mod:`dockeroo.lifecycle`) and what only it
owned is removed at the end of the run, after the new objects exist, on
the engine the old options select.  A part removed from the buildout is
removed for real, honouring ``keep``.
"""

import dataclasses
import hashlib
import importlib
import logging
import os
import re
import shlex
import shutil
import sys
from contextlib import contextmanager

from zc.buildout import UserError

from . import ahead
from . import engine as engine_mod
from . import lifecycle
from . import plan as plan_mod
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
#: docker-machine answers, per machine name
_machines = {}


def owner_id(directory):
    return hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]


def label_args(labels):
    args = []
    for key, value in labels.items():
        args += ["--label", "%s=%s" % (key, value)]
    return args


def engine_options(values):
    """The options of VALUES that select the engine (recorded with pending removals)."""
    return {key: values[key] for key in ENGINE_OPTIONS if (values.get(key) or "").strip()}


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


def failure_text(exc):
    """What a failure says; a docker command stopped by the time limit names
    the option that sets it."""
    text = str(exc)
    if isinstance(exc, DockerError) and exc.timed_out:
        text += " (option 'timeout')"
    return text


@contextmanager
def os_errors(opts, option, what, value=None):
    """An OSError in the block (an unreadable layout file, a full disk) becomes
    the UserError ``Part [P], option 'OPTION' = VALUE: WHAT: FILE: REASON``."""
    try:
        yield
    except OSError as exc:
        if exc.filename and exc.strerror:
            reason = "%s: %s" % (exc.filename, exc.strerror)
        else:
            reason = str(exc) or type(exc).__name__
        raise opts.error(option, "%s: %s" % (what, reason), value) from None


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
        # the run lock is taken by the first part constructed
        self.lifecycle = lifecycle.current(self.parts_directory, self.directory)
        self.lifecycle.configured[name] = self
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
        given = [key for key in options.keys()]
        self.setup()
        self.engine = engine_from_options(self.opts).with_timeout(self.timeout)
        self.engine_options = engine_options(options)
        self.warn_unknown(given)
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
    #: options of the recipe that it does not read in every configuration
    #: (never reported as unknown)
    known_options = ()

    def setup(self):
        """Read and validate options (raise UserError); record fingerprints."""

    def plan(self, context):
        """The actions (:class:`dockeroo.plan.Action`) that make Docker hold
        what the part describes, each with its reasons.  Read-only: it asks
        the engine (inspect, ls, version) and changes nothing.  None for a
        recipe that cannot plan."""
        return None

    def apply(self, actions):
        """Carry out ACTIONS (from :meth:`plan`); return owned paths."""
        raise NotImplementedError

    def ensure(self):
        """Make Docker hold what the part describes; return owned paths.

        Recipes that plan do it in two steps: plan (logged with its
        reasons) then apply."""
        actions = self.plan(self.context())
        plan_mod.report(self.log, actions)
        return self.apply(actions)

    def observed(self):
        """What the engine holds, for :meth:`plan` (read-only, batched inspects)."""
        return plan_mod.Observed(self.engine)

    def context(self):
        """The plan context of this part's install or update in this run:
        its previous options (those of the configuration a changed part
        replaces, or the same ones for an update), or None for a first
        install."""
        run = self.lifecycle
        ctx = run.contexts.get(self.part)
        if ctx is None:
            old = run.deferred.get(self.part)
            if old is None and self.part in run.updating:
                old = self.options.copy()
            ctx = run.contexts[self.part] = plan_mod.Context(old=old)
        return ctx

    def warn_unknown(self, given):
        """Warn about each option of GIVEN (the part's options as written)
        that the recipe does not know, naming the closest known one."""
        known = set(self.opts.seen) | set(self.known_options) | set(ENGINE_OPTIONS) | {
            "keep", "timeout", "name", OWNER_OPTION} | set(self.name_aliases)
        # options the configuration itself uses (``${:arch}``, ``${part:arch}``)
        known |= referenced_options(self.buildout, self.part)
        for option, close in plan_mod.unknown_options(given, known):
            self.log.warning("Part [%s]: option %r is not an option of dockeroo:%s%s; it is ignored",
                             self.part, option, self.recipe,
                             " (did you mean %r?)" % close if close else "")

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

    def labels(self, fingerprint=None, extra=None, temporary=None):
        """Ownership labels; with TEMPORARY (the object's name while it is
        temporary), also this run's id, so that the next run removes it if
        this one is killed before it does."""
        labels = dict(extra or {})
        labels[LABEL_PART] = self.part
        labels[LABEL_BUILDOUT] = self.owner
        if fingerprint:
            labels[LABEL_FINGERPRINT] = fingerprint
        if temporary:
            labels.update(self.lifecycle.temporary_labels(temporary, self.engine_options))
        return labels

    def image_labels(self, fingerprint=None):
        """Labels for an image made by this run (an import): untagged, it is
        removed by the next run if this one is killed before it is tagged."""
        return self.labels(fingerprint, self.lifecycle.image_labels(self.engine_options))

    def temporary(self, name, fingerprint=None, extra=None, done=None):
        """Labels for the temporary container NAME, which is removed if the
        install fails (and by the next run if this one is killed)."""
        labels = self.labels(fingerprint, extra, temporary=name)
        self.on_failure(lambda: self.remove_container(name),
                        done or "removed the temporary container %s" % name)
        return labels

    def is_ours(self, obj):
        return is_owned(obj, self.part, self.owner)

    def remove_container(self, name):
        """Remove a (temporary) container this run made, with its anonymous volumes."""
        self.run(["rm", "--force", "--volumes", name], check=False)
        self.engine.forget("container", name)
        self.lifecycle.released(name)

    def set_aside(self, name, aside, running):
        """Rename container NAME to ASIDE while its replacement is made
        (journaled first: a killed run's successor puts it back or removes it)."""
        self.lifecycle.aside(self.part, self.owner, self.engine_options, name, aside, running)
        self.run(["rename", name, aside])
        self.engine.forget("container", name)

    def drop_aside(self, aside):
        """Remove the set-aside container ASIDE: its replacement is complete."""
        self.engine.run(["rm", "--force", "--volumes", aside], timeout=self.cmd_timeout())
        self.engine.forget("container", aside)
        self.lifecycle.aside_done(aside)

    def retire_image(self, image_id):
        """The image IMAGE_ID was replaced: remove it at the end of the run,
        or of a later one, once it is untagged and no container uses it."""
        self.lifecycle.retire_image(self.part, image_id, self.engine_options, self.owner)

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

    def remove_image_id(self, image_id):
        """Remove an image this run made, by id (undoing a failed install)."""
        try:
            self.run(["image", "rm", image_id])
        except NotFound:
            return
        self.engine.forget("image", image_id)

    def install_freeze(self, container, path):
        """Put the freeze binary for the engine's architecture at PATH in CONTAINER."""
        from . import freeze
        try:
            freeze.install(self.engine, container, arch=self.engine.architecture(), path=path,
                           timeout=self.cmd_timeout())
        except freeze.FreezeUnavailable as exc:
            raise UserError("Part [%s]: %s" % (self.part, exc))

    def on_failure(self, action, done=None):
        """Register an undo action run (last first) if install fails; DONE
        says what it did (for the one line an interrupt prints)."""
        self._undo.append((action, done))

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

        SIGINT and SIGTERM (Ctrl-C, a CI job or service manager stopping
        buildout) raise :class:`lifecycle.Interrupted` meanwhile: the undo
        actions run as for any failure, one line says what they undid, and
        buildout exits with 128 + the signal number, without a traceback.
        """
        self._undo = []
        try:
            yield
        except (DockerError, UnsafeArchive, UserError, OSError) as exc:
            self._rollback()
            if isinstance(exc, UserError) and str(exc).startswith("Part ["):
                raise
            raise UserError("Part [%s] (%s): %s" % (self.part, self.recipe, failure_text(exc)))
        except lifecycle.Interrupted as exc:
            done = self._rollback()
            self.log.error("interrupted (%s)%s", exc.name,
                           ": " + ", ".join(done) if done else "; nothing to roll back")
            exc.reported = True
            raise
        except BaseException:
            self._rollback()
            raise
        self._undo = []

    def _rollback(self):
        """Run the undo actions; returns what the ones that worked did."""
        done = []
        while self._undo:
            action, what = self._undo.pop()
            try:
                action()
            except Exception as exc:  # keep the original error visible
                self.log.warning("Cleanup after failure did not complete: %s", exc)
            else:
                if what:
                    done.append(what)
        return done

    # -- buildout entry points ------------------------------------------------------
    def install(self):
        # buildout records the part only once install returns, and may be
        # killed before: record it now, so that a later run uninstalls it
        if not ahead.recorded(self):
            self.lifecycle.keep_recorded(self.buildout, self.part, self.options.copy())
        with self.failures():
            ahead.start(self)
            paths = self.ensure() or []
        self.lifecycle.succeeded.add(self.part)
        return list(paths)

    def update(self):
        self.lifecycle.updating.add(self.part)
        self.lifecycle.keep_recorded(self.buildout)
        try:
            with self.failures():
                ahead.start(self)
                paths = self.ensure()
        except BaseException:
            # buildout forgets a part whose update fails
            self.lifecycle.configuration(self.part, self.options)
            raise
        self.lifecycle.succeeded.add(self.part)
        return list(paths) if paths else None

    def drop_replaced(self, old, engine):
        """Remove (on ENGINE, the one the old options select) the objects the
        old configuration OLD owned and the current one does not."""
        keep = set(self.owned(self.options))
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
            run = lifecycle_for_uninstall()
            if _configured.get((owner, name)) == cls.recipe:
                run.configuration(name, options)
                run.deferred[name] = options.copy()
                log.debug("configuration changed: old objects are removed after the new ones exist")
                return
            opts = Options(name, dict(options))
            if opts.bool("keep", False):
                log.info("keep = true: leaving %s", ", ".join("%s %s" % o for o in cls.owned(options)) or "everything")
                cls.uninstalled(name, options, log)
                return
            try:
                engine = engine_from_options(opts).with_timeout(opts.duration("timeout", None))
                cls.remove(engine, name, options, log)
            except (DockerError, UnsafeArchive) as exc:
                raise UserError("Part [%s] (%s): uninstall failed: %s" % (name, cls.recipe, exc))
            cls.uninstalled(name, options, log)
        return uninstall

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        """The actions of removing what the (old) options OLD_OPTIONS own
        (a removed part, or what a changed part no longer describes), WHY
        being the reason of each removal: what :meth:`remove` (uninstall)
        and :meth:`drop_replaced` do.  Override it with :meth:`remove`."""
        keep = Options(part, dict(old_options)).bool("keep", False)
        try:
            owned = cls.owned(old_options)
        except (KeyError, ValueError):
            owned = []
        actions = []
        for kind, name in owned:
            obj = observed.get(kind, name)
            if obj is None:
                act = plan_mod.action(part, kind, name, "unchanged", "already gone")
            elif keep:
                act = plan_mod.action(part, kind, name, "unchanged", "keep = true: left in place")
            elif not is_owned(obj, part, old_options.get(OWNER_OPTION)):
                act = plan_mod.action(part, kind, name, "unchanged", "not created by this part")
            else:
                act = plan_mod.action(part, kind, name, "remove", why)
            actions.append(act)
        return actions

    @classmethod
    def uninstalled(cls, part, options, log):
        """Hook run after a part is really uninstalled (removed or kept), not
        when its uninstall is deferred for a changed configuration: drop
        bookkeeping files the recipe manages itself."""

    @classmethod
    def remove(cls, engine, part, options, log):
        """Uninstall: remove what the part's (old) options own."""
        if ahead.removed_together(cls, engine, part, options, log):
            return
        timeout = Options(part, dict(options)).duration("timeout", engine_mod.DEFAULT_TIMEOUT)
        for kind, name in cls.owned(options):
            remove_object(engine, kind, name, part, options.get(OWNER_OPTION), log, timeout=timeout)


def referenced_options(buildout, part):
    """The options of PART that the configuration refers to (``${part:x}``,
    or ``${:x}`` in PART itself), read from the raw configuration."""
    raw = getattr(buildout, "_raw", None) or {}
    pattern = re.compile(r"\$\{([^:}]*):([^}]+)\}")
    found = set()
    for section, values in raw.items():
        for value in values.values():
            if isinstance(value, str) and "${" in value:
                found.update(m.group(2) for m in pattern.finditer(value)
                             if (m.group(1) or section) == part)
    return found


def lifecycle_for_uninstall():
    """The run of an uninstall entry point: the one the parts constructed in
    this process started, else (no dockeroo part left in the buildout) the
    one of the buildout directory buildout runs in."""
    if lifecycle._runs:
        return next(iter(lifecycle._runs.values()))
    here = os.getcwd()
    return lifecycle.current(os.path.join(here, "parts"), here)


def recipe_class(recipe):
    """The Recipe class of a ``dockeroo:docker.NAME`` recipe string, or None."""
    package, _, entry = (recipe or "").partition(":")
    if package != "dockeroo" or not entry.startswith("docker."):
        return None
    try:
        module = importlib.import_module("dockeroo.recipes." + entry[7:].replace("-", "_"))
    except ImportError:
        return None
    return getattr(module, "Recipe", None)


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


def dockeroo_entry(recipe):
    """The entry of a dockeroo recipe string (``docker.run`` of
    ``dockeroo:docker.run``, a version or extras allowed), else None."""
    dist, _, entry = (recipe or "").partition(":")
    dist = re.split(r"[\[<>=!~ ]", dist.strip(), maxsplit=1)[0]
    return entry.strip() or None if dist.lower() == "dockeroo" else None


def uninstalled_together(part, options, entries=None, installed=".installed.cfg"):
    """The other parts of the recipes ENTRIES (``docker.volume``, ...; by
    default PART's own) that this buildout run uninstalls right after PART,
    as (part, options) pairs, so that one uninstall can remove all of their
    objects in one batch (parallel docker calls) instead of one part after
    the other.

    Called from a part's real (not deferred) uninstall.  Buildout has then
    already constructed every configured part, and in a plain ``buildout``
    run it uninstalls every installed part it did not construct, last
    installed first, taking each out of its record as it goes.  The
    installed parts are read from that record (``.installed.cfg`` in the
    buildout directory, the current directory while buildout runs); it
    must hold PART with these options.  Only the parts up to the first part
    of another recipe than dockeroo's are included (that part's uninstall
    sees everything still there that it would without the batch), and not
    parts kept (``keep = true``), parts of other buildouts and parts
    constructed in this run.  An empty list when anything is uncertain:
    each part is then removed by its own uninstall.
    """
    owner = options.get(OWNER_OPTION)
    recipe = options.get("recipe")
    entries = set(entries or [dockeroo_entry(recipe)])
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
    names = (sections.get("buildout") or {}).get("parts", "").split()
    if part not in names:
        return []
    found = []
    for other in reversed(names[:names.index(part)]):  # buildout's uninstall order
        values = sections.get(other)
        if not values or dockeroo_entry(values.get("recipe")) is None:
            break  # another recipe's uninstall comes first
        if (owner, other) in _configured or dockeroo_entry(values.get("recipe")) not in entries:
            continue
        if values.get(OWNER_OPTION) != owner or engine_options(values) != engine_options(options):
            continue  # another buildout's, or another engine's
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
