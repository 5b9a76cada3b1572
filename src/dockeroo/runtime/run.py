"""The lifecycle of one buildout run, decided here for every recipe.

Buildout may be killed at any instant, and it keeps nothing about a part
but the options of the parts it finished.  Whatever dockeroo must know on
the next run is therefore written under ``parts/.dockeroo/`` *before* the
step it describes:

``lock``
    the run lock.  The first dockeroo entry point of a buildout process (a
    part's ``__init__`` or an uninstall) takes it with ``flock``; the
    operating system releases it when the process ends, however it ends.
    A second run of the same buildout waits for it (``DOCKEROO_LOCK_TIMEOUT``
    seconds, 600 by default), then fails with an error naming the holder.
``pending/<part>.json``
    configurations whose objects may exist in Docker while buildout has no
    record of them (the old configuration of a changed part, written when
    its removal is deferred; the configuration being installed, written
    before the install starts), and images to remove once nothing uses them
    (an image replaced by a rebuild while a container still runs from it).
    Retried at the end of every run, on the engine the recorded options
    select, until they succeed; a removal that fails is a warning, never a
    failed install.
``temporaries.json``
    the runs that made temporary objects and the engines they made them on,
    and the containers set aside while their replacement is made.  A run
    that ended without removing them (SIGKILL, a reboot) leaves its entry;
    the next run removes its temporaries (found by their labels) and puts
    set-aside containers back or removes them, before any part runs.

Temporary containers carry ``io.dockeroo.run`` (the run's id) and
``io.dockeroo.temporary`` (the name under which they are temporary); a
container renamed to its final name at completion carries neither: its
temporary name ends with ``-dockeroo-new-`` and the run's id instead.

Completion: an object gets its final name (containers) or tag (images)
only when everything its part describes has happened, so an object under
its final name is complete; anything else is a temporary.

Process state: everything a buildout process remembers between one
dockeroo entry point and the next lives on its :class:`Run` (or on objects
the Run owns); the only other module-level mutable state is the engine's
caches (``tests/unit/test_state.py`` enforces it).  The Run registers one
exit hook, :meth:`Run.finish`, whose steps run in a fixed order (see there).
"""

import atexit
import fcntl
import importlib
import logging
import os
import signal
import sys
import threading
import time
import urllib.parse
import uuid

from zc.buildout import UserError

from dockeroo.base import mode, scratch
from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.errors import InUse
from dockeroo.model.options import Options, removal_settings
from dockeroo.base.state import read_json, write_json
from dockeroo.model.engines import engine_from_options
from dockeroo.model.ownership import (LABEL_BUILDOUT, LABEL_PART, LABEL_RUN, LABEL_TEMPORARY,
    OWNER_OPTION, containers_named_in, is_owned, labels_of, remove_container, remove_containers,
    remove_image, renamed_temporary)


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


LOCK_TIMEOUT_ENV = "DOCKEROO_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 600
STATE_DIR = ".dockeroo"

log = logging.getLogger("dockeroo")

#: parts directory -> Run, for this process (the one process-wide registry of runs)
_runs = {}


class Interrupted(SystemExit):
    """SIGINT or SIGTERM arrived: exit (128 + signal) after rolling back."""

    def __init__(self, signum):
        super().__init__(128 + signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def current(parts_directory, directory=None):
    """This process's :class:`Run` for the buildout whose parts are in
    PARTS_DIRECTORY (started, and locked, on first use)."""
    key = os.path.abspath(parts_directory)
    run = _runs.get(key)
    if run is None:
        run = _runs[key] = Run(key, directory or os.path.dirname(key))
    return run


def active():
    """The Run this process started first (the one the parts constructed in
    this process use), or None."""
    return next(iter(_runs.values()), None)


def for_uninstall():
    """The run of an uninstall entry point: the one the parts constructed in
    this process started, else (no dockeroo part left in the buildout) the
    one of the buildout directory buildout runs in."""
    run = active()
    if run is None:
        here = os.getcwd()
        run = current(os.path.join(here, "parts"), here)
    return run


def configured_parts(owner):
    """The parts constructed in this process for the buildout OWNER, as
    (owner, part) pairs (the runs' registries of configured parts)."""
    return {(owner, part) for run in _runs.values()
            for part, recipe in run.configured.items() if recipe.owner == owner}


def configured_recipe(owner, part):
    """The recipe (``docker.run``, ...) of PART of the buildout OWNER if it
    was constructed in this process, else None."""
    return next((run.configured[part].recipe for run in _runs.values()
                 if part in run.configured and run.configured[part].owner == owner), None)


def lock_timeout():
    value = os.environ.get(LOCK_TIMEOUT_ENV, "")
    try:
        return max(0.0, float(value)) if value.strip() else DEFAULT_LOCK_TIMEOUT
    except ValueError:
        raise UserError("%s=%r: must be a number of seconds" % (LOCK_TIMEOUT_ENV, value))


class Run:
    """One buildout process: lock, run id, pending removals, temporaries,
    and the registries the parts of the run share.

    Exit: the Run registers exactly one ``atexit`` hook, :meth:`finish`,
    which runs these steps in this order (each one never raises):

    1. undo what was made ahead (:mod:`dockeroo.runtime.ahead`) for the
       parts that did not succeed in this run, and drop their records;
    2. drop the pending removals (:meth:`drop_pending`; skipped after an
       interrupt: the next run does it);
    3. forget this run's temporaries if they are all gone;
    4. end the ssh connections of remote engines (:mod:`dockeroo.engine.ssh`);
    5. report an interrupt no part reported.
    """

    def __init__(self, parts_directory, directory):
        self.parts_directory = parts_directory
        self.directory = directory
        self.state = os.path.join(parts_directory, STATE_DIR)
        self.id = uuid.uuid4().hex[:16]
        #: part -> recipe instance constructed in this run (its construction
        #: registers it: the one registry of configured parts)
        self.configured = {}
        #: parts whose install or update succeeded in this run
        self.succeeded = set()
        #: part -> old options, for the parts whose uninstall was deferred
        self.deferred = {}
        #: engines (option dicts) this run made temporaries on
        self.engines = []
        #: names of this run's temporaries not removed yet
        self.live = set()
        self.interrupted = None
        #: parts updated (not installed) in this run
        self.updating = set()
        #: part -> the plan Context of its install or update in this run
        self.contexts = {}
        #: (owner, part) of the parts whose object an earlier uninstall of this
        #: run removed together with its own (their uninstall has nothing to do)
        self.removed_together = set()
        #: the state of the creation ahead (:mod:`dockeroo.runtime.ahead`), once started
        self.ahead = None
        #: the run's executor (:mod:`dockeroo.runtime.executor`), once started
        self.executor = None
        #: (part, kind, name) of the end-of-run removals logged so far
        self.announced = set()
        #: removed parts whose uninstall is done in this run (not deferred)
        self.uninstalled = set()
        #: parts whose deferred removals were tried before the end of the run
        #: (:meth:`drop_due`), and those of them done
        self.tried_early, self.dropped_early = set(), set()
        #: container name -> why the executor removed it (released for the
        #: recreation of a network or volume it used; its part makes it again)
        self.let_go = {}
        #: the last scan of the configuration's references (``referenced_outputs``)
        self.references = {}
        if mode.PLANNING:  # dockeroo plan: no lock, no signal handler, nothing swept
            return
        self._signals()
        self._lock()
        atexit.register(self.finish)
        self.sweep()
        scratch.sweep("login")  # credentials a killed run's docker login left

    # -- the run lock -------------------------------------------------------------
    def _lock(self):
        os.makedirs(self.state, exist_ok=True)
        path = os.path.join(self.state, "lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        deadline = time.monotonic() + lock_timeout()
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise UserError(
                        "another buildout run (pid %s) is working in %s: waited %ss for it "
                        "to finish (set %s to wait longer)"
                        % (holder, self.directory, int(lock_timeout()), LOCK_TIMEOUT_ENV))
                if not waiting:
                    log.info("Waiting for the other buildout run (pid %s) in %s to finish",
                             holder, self.directory)
                    waiting = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"%d\n" % os.getpid(), 0)
        self._lock_fd = fd  # held until the process ends

    # -- signals ------------------------------------------------------------------
    def _signals(self):
        """SIGINT and SIGTERM raise :class:`Interrupted` (main thread only), so
        that a part being installed rolls back and says so in one line."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                if signal.getsignal(signum) in (signal.default_int_handler, signal.SIG_DFL):
                    signal.signal(signum, self._on_signal)
            except (ValueError, OSError):
                pass

    def _on_signal(self, signum, frame):
        signal.signal(signum, signal.SIG_DFL)  # a second one ends at once
        self.interrupted = Interrupted(signum)
        raise self.interrupted

    # -- pending removals -----------------------------------------------------------
    def _pending_path(self, part):
        return os.path.join(self.state, "pending", urllib.parse.quote(part, safe="") + ".json")

    def pending(self, part):
        return [e for e in read_json(self._pending_path(part), []) if isinstance(e, dict)]

    def _save_pending(self, part, entries):
        write_json(self._pending_path(part), entries)

    def add_pending(self, part, entry):
        """Record ENTRY for PART unless it is there already."""
        entries = self.pending(part)
        if entry not in entries:
            entries.append(entry)
            self._save_pending(part, entries)

    def configuration(self, part, options):
        """Record that the configuration OPTIONS of PART may own objects in
        Docker (buildout may lose it: a deferred uninstall, an install that
        is cut short)."""
        self.add_pending(part, {"options": dict(options)})

    def configurations(self, items):
        """:meth:`configuration` of several (part, options) pairs, written
        first and then made durable together (one journal commit, not one
        per part)."""
        written = []
        for part, options in items:
            entries, entry = self.pending(part), {"options": dict(options)}
            if entry not in entries:
                write_json(self._pending_path(part), entries + [entry], sync=False)
                written.append(self._pending_path(part))
        for path in written:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())

    def keep_recorded(self, buildout, part=None, options=None):
        """Keep in buildout's record (``.installed.cfg``) the parts whose
        objects may exist although buildout would forget them if this run
        ended now: PART, about to be installed with OPTIONS (buildout records
        it only once its install returns), and the parts whose uninstall was
        deferred and that are not installed again yet.  A later run then
        calls their uninstall, or installs them again.  Buildout rewrites
        the record with what it knows as soon as the install succeeds."""
        mode.check_writable("record parts in .installed.cfg")
        extra = {p: o for p, o in self.deferred.items() if p not in self.succeeded}
        if part is not None:
            extra[part] = options
        path = buildout["buildout"].get("installed")
        if not extra or not path:
            return
        from dockeroo.model.buildout import read_record, write_record_section
        parts = []
        if os.path.exists(path):
            try:
                recorded = read_record(path)
            except Exception as exc:  # not ours to repair: buildout reports it
                log.debug("cannot read %s: %s", path, exc)
                return
            parts = (recorded.get("buildout") or {}).get("parts", "").split()
        with open(path, "a") as handle:
            for name, values in extra.items():
                values = {k: v for k, v in values.items() if not k.startswith("__buildout")}
                values["__buildout_installed__"] = ""
                handle.write("\n")
                write_record_section(handle, name, values)
            handle.write("\n")
            names = parts + [p for p in extra if p not in parts]
            write_record_section(handle, "buildout", {"parts": " ".join(names)})
            handle.flush()
            os.fsync(handle.fileno())

    def retire_image(self, part, image_id, engine_options, owner):
        """Remove image IMAGE_ID at the end of the run, or of a later one,
        once it is untagged and no container uses it."""
        self.add_pending(part, {"image": image_id, "engine": dict(engine_options),
                                "owner": owner})

    def retire(self, part, recipe, name, engine_options):
        """Record (durably, before the removal is tried) that PART's RECIPE
        (``docker.secret``, ...) removes its object NAME once unused: the end
        of this run, or of a later one, removes it (the recipe's
        ``drop_retired``) and drops the record."""
        self.add_pending(part, {"retired": name, "recipe": "dockeroo:" + recipe,
                                "engine": dict(engine_options)})

    def retired(self, part, name):
        """The object NAME that PART retired is gone: forget its record."""
        entries = self.pending(part)
        kept = [e for e in entries if e.get("retired") != name]
        if kept != entries:
            self._save_pending(part, kept)

    def finish(self):
        """The one exit hook: its steps, in the order the class docstring
        gives.  Never raises."""
        for step in (self._undo_ahead, self._drop_pending_at_exit, self._forget_temporaries,
                     DockerEngine.disconnect_all):
            try:
                step()
            except BaseException as exc:  # pragma: no cover - last resort
                log.warning("dockeroo: cleanup at exit did not complete: %s", exc)
        if self.interrupted is not None and not getattr(self.interrupted, "reported", False):
            log.error("Interrupted (%s)", self.interrupted.name)

    def _undo_ahead(self):
        if self.ahead is not None:
            self.ahead.undo()

    def _drop_pending_at_exit(self):
        if self.interrupted is None:
            self.drop_pending()

    def drop_pending(self):
        folder = os.path.join(self.state, "pending")
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
        except OSError:
            return
        from dockeroo.model.buildout import plain_install
        # a part missing from the configuration was removed from the buildout,
        # unless this run installs some parts only (buildout install PART...)
        plain = plain_install(sys.argv)
        kept, todo = {}, []
        for name in names:
            part = urllib.parse.unquote(name[:-5])
            kept[part] = []
            for entry in self.pending(part):
                recipe = self.configured.get(part)
                if "options" in entry and ((recipe is not None and part not in self.succeeded)
                                           or (recipe is None and not plain)):
                    kept[part].append(entry)  # its part may still need it
                else:
                    todo.append((part, entry))
        if self.executor is not None:  # in the order the run's plan gave
            todo.sort(key=lambda item: self.executor.rank(item[0]))
        # one removal may wait for another (an image for the container using
        # it): try again while that helps
        errors = {}
        while todo:
            failed = []
            for part, entry in todo:
                try:
                    if drop_pending_entry(self.configured.get(part), part, entry,
                                          self.announce, self.handed_over(part)):
                        errors.pop(id(entry), None)
                        continue
                except Exception as exc:
                    errors[id(entry)] = exc
                failed.append((part, entry))
            if len(failed) == len(todo) or self.interrupted is not None:
                break
            todo = failed
        else:
            failed = []
        for part, entry in failed:
            kept[part].append(entry)
            if id(entry) in errors:
                logging.getLogger(part).warning(
                    "Could not remove what a previous configuration owned (tried again on "
                    "the next run): %s", errors[id(entry)])
        for part, entries in kept.items():
            self._save_pending(part, entries)

    def drop_due(self):
        """Do the deferred removals that are due: those whose part's turn the
        run's plan placed after turns that have all passed now
        (:func:`dockeroo.runtime.runplan.soonest`: their users are gone),
        rather than at the end of the run.  Called after each dockeroo entry
        point that succeeds.  A removal that fails or must wait stays
        recorded, and the end of the run tries it again.  Never raises."""
        plan = self.executor.plan if self.executor is not None else None
        if plan is None or not plan.due or self.interrupted is not None:
            return
        progress = True
        while progress:
            progress = False
            done = self.succeeded | self.uninstalled | self.dropped_early
            for part, before in plan.due.items():
                if part in self.tried_early or not before <= done:
                    continue
                self.tried_early.add(part)
                try:
                    dropped = self._drop_early(part)
                except Exception as exc:  # noqa: BLE001 - the end of the run tries again
                    log.debug("removal of part %s's old objects left to the end of the run: %s",
                              part, exc)
                    continue
                if dropped:
                    self.dropped_early.add(part)
                    progress = True

    def _drop_early(self, part):
        """Drop the records of PART's old configurations (what the end of the
        run would do for them); True when none is left."""
        entries = self.pending(part)
        recipe = self.configured.get(part)
        left = list(entries)
        for entry in entries:
            if "options" not in entry or (recipe is not None and part not in self.succeeded):
                continue
            if drop_pending_entry(recipe, part, entry, self.announce, self.handed_over(part)):
                left = [e for e in left if e is not entry]
                self._save_pending(part, left)  # at once: a kill now must not redo it
        return not any("options" in e for e in left)

    def handed_over(self, part):
        """(kind, name) of the objects of the removed PART that the run's plan
        hands over to another part (:meth:`Executor.hands_over`)."""
        return self.executor.hands_over(part) if self.executor is not None else []

    def announce(self, part, kind, name):
        """Log, once, the run plan's removal of NAME (KIND) of PART, done now
        at the end of the run (:meth:`Executor.announce`)."""
        if self.executor is None or (part, kind, name) in self.announced:
            return
        self.announced.add((part, kind, name))
        self.executor.announce(part, kind, name)

    # -- temporaries -------------------------------------------------------------------
    @property
    def _temporaries_path(self):
        return os.path.join(self.state, "temporaries.json")

    def _journal(self):
        data = read_json(self._temporaries_path, {})
        data.setdefault("runs", {})
        data.setdefault("asides", [])
        return data

    def temporary_labels(self, name, engine_options, renamed=False):
        """Labels for temporary NAME of this run; journals the engine first.
        A temporary RENAMED to its final name when complete gets none (see
        :func:`renamed_temporary`)."""
        labels = self.image_labels(engine_options)
        self.live.add(name)
        labels[LABEL_TEMPORARY] = name
        return {} if renamed else labels

    def image_labels(self, engine_options):
        """Labels for an object of this run that the next run removes if it is
        still temporary (untagged images); journals the engine first."""
        engine_options = dict(engine_options)
        if engine_options not in self.engines:
            self.engines.append(engine_options)
            data = self._journal()
            data["runs"][self.id] = self.engines
            write_json(self._temporaries_path, data)
        return {LABEL_RUN: self.id}

    def released(self, name):
        """Temporary NAME is gone (removed, or renamed to its final name)."""
        self.live.discard(name)

    def aside(self, part, owner, engine_options, name, aside, running):
        """Journal that container NAME was renamed ASIDE (before the rename)."""
        data = self._journal()
        data["asides"].append({"part": part, "owner": owner, "engine": dict(engine_options),
                               "name": name, "aside": aside, "running": bool(running)})
        write_json(self._temporaries_path, data)

    def aside_done(self, aside):
        data = self._journal()
        data["asides"] = [a for a in data["asides"] if a.get("aside") != aside]
        self._write_journal(data)

    def _write_journal(self, data):
        if not data["runs"] and not data["asides"]:
            data = {}
        write_json(self._temporaries_path, data)

    def _forget_temporaries(self):
        if self.live or not self.engines:
            return
        data = self._journal()
        data["runs"].pop(self.id, None)
        self._write_journal(data)

    def sweep(self):
        """Remove the temporaries of runs that did not end cleanly, put back
        (or remove) the containers they had set aside."""
        data = read_json(self._temporaries_path, {})
        if not data:
            return
        runs = {}
        for run_id, engines in (data.get("runs") or {}).items():
            left = [e for e in engines if not _quietly(sweep_run, run_id, e)]
            if left:
                runs[run_id] = left
        asides = [a for a in data.get("asides") or [] if not _quietly(sweep_aside, a)]
        self._write_journal({"runs": runs, "asides": asides})


# -- what the records describe, removed -------------------------------------------
def drop_pending_entry(recipe, part, entry, announce=None, handed=()):
    """Remove what a pending record ENTRY of PART describes (see
    :mod:`dockeroo.runtime.run`); RECIPE is the part's recipe when it is
    configured (and was installed) in this run.  Returns False to keep the
    entry for a later run; raises when a removal failed.  ANNOUNCE(part,
    kind, name) logs a removal the run's plan predicted, before it is done.
    HANDED: (kind, name) of the objects of the removed PART that the run's
    plan hands over to another part: not removed; the entry is kept while
    one of them still carries PART's labels (the other part did not take
    it over: a later run does)."""
    log = logging.getLogger(part)
    announce = announce or (lambda *_args: None)

    def announce_present(engine, objects):
        for kind, name in objects:
            engine.forget(kind, name)
            if engine.inspect(kind, name) is not None:  # the plan decided whether it is ours
                announce(part, kind, name)
    if "retired" in entry:
        # the part is gone (its uninstall removed its objects, or kept them),
        # or now on another engine: its own plan no longer sees the object
        if recipe is None or dict(entry.get("engine") or {}) != dict(recipe.engine_options):
            return True
        engine = engine_from_options(Options(part, dict(entry.get("engine") or {})))
        return recipe.drop_retired(engine, entry["retired"])
    if "image" in entry:
        engine = engine_from_options(Options(part, dict(entry.get("engine") or {})))
        return drop_image(engine, part, entry["image"], entry.get("owner"), log, announce)
    old = dict(entry["options"])
    opts = Options(part, old)
    engine = engine_from_options(opts)
    keep, _timeout = removal_settings(part, old)
    if recipe is not None:
        if not keep:
            handed = set(handed)
            if handed and still_ours(engine, part, old, handed):
                return False  # the part that takes it over did not: a later run hands it over
            # taken over already (by this run's plan, or by a run a kill interrupted)
            handed |= others_now(engine, part, old)
            recipe.drop_replaced(old, engine, keep=handed, announce=announce)
        return True
    cls = recipe_class(old.get("recipe"))
    if cls is None:
        return True
    done = None if keep else taken_over(engine, cls, part, old, handed)
    if done is not None:
        if done:
            cls.uninstalled(part, old, log)
        return done
    if keep:
        log.info("keep = true: leaving %s", ", ".join("%s %s" % o for o in cls.owned(old)))
    else:
        # looked up afresh: its users changed meanwhile
        owned = cls.owned(old)
        announce_present(engine, owned)
        if not owned:  # swarm objects (not in the inspect cache): as the plan says
            announce(part, None, None)
        cls.remove(engine, part, old, log)
    cls.uninstalled(part, old, log)
    return True


def others_now(engine, part, old):
    """(kind, name) of the networks and volumes the old configuration OLD of
    PART owned that another part of the same buildout has made its own
    since (handed over): left to that part, without a word."""
    out = set()
    try:
        owned = [o for o in recipe_class(old.get("recipe")).owned(old)
                 if o[0] in ("network", "volume")]
    except (AttributeError, KeyError, ValueError):
        return out
    for kind, name in owned:
        engine.forget(kind, name)
        labels = labels_of(engine.inspect(kind, name))
        if labels.get(LABEL_BUILDOUT) == old.get(OWNER_OPTION) and \
                labels.get(LABEL_PART) not in (None, part):
            out.add((kind, name))
    return out


def still_ours(engine, part, old, objects):
    """Whether one of OBJECTS ((kind, name), handed over to another part by
    the run's plan) still carries the labels of PART (options OLD)."""
    for kind, name in objects:
        engine.forget(kind, name)
        if is_owned(engine.inspect(kind, name), part, old.get(OWNER_OPTION)):
            return True
    return False


def taken_over(engine, cls, part, old, handed):
    """Whether the pending record of the removed PART (options OLD, recipe
    class CLS) is done because its network or volume is another part's of
    the same buildout now (handed over, or made again by that part after an
    interrupted hand-over): True (nothing is removed), False while an
    object HANDED over (see :func:`drop_pending_entry`) still carries
    PART's labels (the record stays for a later run), None otherwise (the
    record's objects are removed as usual)."""
    owned = [o for o in cls.owned(old) if o[0] in ("network", "volume")]
    owner = old.get(OWNER_OPTION)
    found = []
    for kind, name in owned:
        engine.forget(kind, name)
        found.append(engine.inspect(kind, name))
    if handed and owned and set(owned) <= set(handed) and any(
            is_owned(obj, part, owner) for obj in found):
        return False
    present = [labels_of(obj) for obj in found if obj is not None]
    if not present or len(owned) != len(cls.owned(old)) or not all(
            labels.get(LABEL_BUILDOUT) == owner and labels.get(LABEL_PART) != part
            for labels in present):
        return None
    logging.getLogger(part).debug("%s: another part's now, left to it", ", ".join(
        "%s %s" % o for o in owned))
    return True


def drop_image(engine, part, image_id, owner, log, announce=None):
    """Remove the replaced image IMAGE_ID if it is still untagged and ours;
    False while a container uses it."""
    obj = engine.inspect("image", image_id)
    if obj is None or obj.get("RepoTags") or not is_owned(obj, part, owner):
        return True  # gone, tagged again (a rebuild from cache) or not ours
    try:
        remove_image(engine, image_id)
    except InUse as exc:
        users = containers_named_in(engine, exc.container_ids(image_id))
        log.info("Keeping the previous image %s: used by container(s) %s (removed by a "
                 "later run once unused)", image_id[7:19], ", ".join(users) or "(unknown)")
        return False
    if announce is not None:
        announce(part, "image", image_id)
    log.info("Removed the previous image %s", image_id[7:19])
    return True


def sweep_run(run_id, engine_opts):
    """Remove the temporaries (containers still under their temporary name,
    import helpers, untagged images) that the interrupted run RUN_ID made on
    an engine."""
    engine = engine_from_options(Options("dockeroo", dict(engine_opts)))
    label = "label=%s=%s" % (LABEL_RUN, run_id)
    listed = engine.run(["ps", "--all", "--filter", label, "--format",
                         '{{.Names}}\t{{.Label "%s"}}\t{{.Label "%s"}}'
                         % (LABEL_TEMPORARY, LABEL_PART)]).stdout
    strays = [line.split("\t") for line in listed.splitlines() if line.count("\t") == 2]
    # renamed away from its temporary name: complete (import helpers have none)
    strays = [(name, part) for name, temporary, part in strays if name == temporary
              or not temporary]
    listed = engine.run(["ps", "--all", "--filter", "label=" + LABEL_PART, "--filter",
                         "name=%s$" % renamed_temporary("", run_id), "--format",
                         '{{.Names}}\t{{.Label "%s"}}' % LABEL_PART]).stdout
    strays += [line.split("\t") for line in listed.splitlines() if line.count("\t") == 1]
    if strays:
        remove_containers(engine, [name for name, _ in strays])
        for name, part in strays:
            logging.getLogger(part or "dockeroo").info(
                "Removed container %s left by an interrupted run", name)
    images = engine.run(["image", "ls", "--quiet", "--no-trunc", "--filter", "dangling=true",
                         "--filter", label]).stdout.split()
    for image in images:
        if remove_image(engine, image, check=False).returncode == 0:
            log.info("Removed image %s left by an interrupted run", image[7:19])
    return True


def sweep_aside(entry):
    """A container an interrupted run had set aside: removed when its
    replacement is complete (under the part's name), else put back."""
    engine = engine_from_options(Options(entry["part"], dict(entry.get("engine") or {})))
    log = logging.getLogger(entry["part"])
    obj = engine.inspect("container", entry["aside"])
    if obj is None or not is_owned(obj, entry["part"], entry.get("owner")):
        return True
    if engine.inspect("container", entry["name"]) is not None:
        remove_container(engine, entry["aside"])
        log.info("Removed the previous container %s, set aside by an interrupted run",
                 entry["aside"])
    else:
        engine.run(["rename", entry["aside"], entry["name"]])
        if entry.get("running"):
            engine.run(["start", entry["name"]])
        log.info("Put back the previous container %s, set aside by an interrupted run",
                 entry["name"])
    engine.forget("container", entry["aside"])
    engine.forget("container", entry["name"])
    return True


def _quietly(function, *args):
    try:
        return function(*args)
    except Exception as exc:
        log.warning("Could not remove what an interrupted run left (tried again next "
                    "run): %s", exc)
        return False
