"""The base class every dockeroo recipe stands on.

A recipe reads its options in ``__init__`` (through :mod:`dockeroo.model.options`,
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
the run's pending records (:mod:`dockeroo.runtime.run`) and what only it
owned is removed at the end of the run, after the new objects exist, on
the engine the old options select.  A part removed from the buildout is
removed for real, honouring ``keep``.
"""

import logging
import os
from contextlib import contextmanager, suppress

from zc.buildout import UserError

from dockeroo.runtime import ahead, executor
from dockeroo.engine.process import DEFAULT_LONG_TIMEOUT, DEFAULT_TIMEOUT
from dockeroo.runtime import run as lifecycle
from dockeroo.model import plan as plan_mod
from dockeroo.engine.errors import DockerError, NotFound
from dockeroo.model.options import Options, removal_settings
from dockeroo.base.tarstream import UnsafeArchive
from dockeroo.model.buildout import referenced_options
from dockeroo.model.engines import ENGINE_OPTIONS, engine_from_options, engine_options, failure_text
from dockeroo.model.ownership import LABEL_BUILDOUT, LABEL_FINGERPRINT, LABEL_PART, OWNER_OPTION, is_owned, owner_id, remove_object
from dockeroo.model.ownership import remove_container, remove_image



class Recipe:
    """Base class; subclasses set ``recipe`` and implement the hooks."""

    recipe = "docker.base"
    #: other option names accepted for ``name``
    name_aliases = ()
    #: whether ``name`` is used at all
    has_name = True
    #: ``timeout`` default for long operations (build, pull, push, scripts)
    long_timeout = DEFAULT_LONG_TIMEOUT

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
        # registered first: a part whose construction fails is still configured
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
        self._undo = []

    # -- hooks ------------------------------------------------------------------
    #: options of the recipe that it does not read in every configuration
    #: (never reported as unknown)
    known_options = ()

    def setup(self):
        """Read and validate options (raise UserError); record fingerprints."""

    def plan(self, context):
        """The actions (:class:`dockeroo.model.plan.Action`) that make Docker hold
        what the part describes, each with its reasons.  Read-only: it asks
        the engine (inspect, ls, version) and changes nothing.  None for a
        recipe that cannot plan."""
        return None

    def apply(self, actions):
        """Carry out ACTIONS (from :meth:`plan`): the steps of the part's own
        kinds; the executor (:func:`dockeroo.runtime.executor.apply`) decides
        what happens around them.  Return owned paths."""
        raise NotImplementedError

    def ensure(self):
        """Make Docker hold what the part describes; return owned paths.

        Recipes that plan do it in two steps: plan (logged with its
        reasons) then apply."""
        execution = executor.start(self.lifecycle)
        actions = execution.decided(self.part, self.plan(self.context()))
        execution.report(self.log, actions)
        return executor.apply(self, actions)

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
            # what the run's plan has this part take over (started by ensure)
            handing = run.executor.taking(self.part) if run.executor is not None else {}
            ctx = run.contexts[self.part] = plan_mod.Context(old=old, released=run.let_go,
                                                             handing=handing)
        return ctx

    def warn_unknown(self, given):
        """Warn about each option of GIVEN (the part's options as written)
        that the recipe does not know, naming the closest known one."""
        known = set(self.opts.seen) | set(self.known_options) | set(ENGINE_OPTIONS) | {
            "keep", "timeout", "name", OWNER_OPTION} | set(self.name_aliases)
        # options the configuration itself uses (``${:arch}``, ``${part:arch}``)
        known |= referenced_options(self.buildout, self.part)
        for option, close in plan_mod.unknown_options(given, known):
            # the log line starts with the part's name already (its logger's)
            self.log.warning("option %r is not an option of dockeroo:%s%s; it is ignored",
                             option, self.recipe,
                             " (did you mean %r?)" % close if close else "")

    @classmethod
    def owned(cls, values):
        """(kind, name) pairs of the Docker objects a configuration owns."""
        return []

    def uses(self):
        """(kind, name, relation) of the Docker objects this part's
        configuration uses, made by other parts or not: the edges of the
        run's graph (:mod:`dockeroo.model.graph`), from :meth:`user`.
        Read-only."""
        return []

    def take_over(self, kind, name, previous, stays=False):
        """Whether this part takes over its object NAME (KIND), which exists
        and which the part PREVIOUS, removed in this run (or STAYS: still
        configured, but no longer describing it), made and would remove (a
        part renamed, the object kept; or another part now describes the
        object its part no longer names): ``(reasons, None)`` to
        make it again as this part's (Docker cannot change an object's
        labels in place; :func:`dockeroo.runtime.runplan.hand_over`
        recreates it under its users), ``(None, advice)`` when the
        configuration does not allow that (ADVICE says what to do), or
        ``(None, None)`` (the default): no hand-over, the removal of
        PREVIOUS is planned as any other."""
        return None, None

    def taken_over(self, previous, stays=False):
        """The reason of the recreation of an object this part takes over
        from the removed part PREVIOUS (STAYS: a part that no longer
        describes it, :meth:`take_over`)."""
        return ("part %s that made it %s, part %s takes it over: its labels cannot "
                "change in place" % (previous, "no longer describes it" if stays else
                                     "is removed", self.part))

    #: whether the part's Actions belong on its :meth:`user` node (a copy:
    #: its Action names the target container, the copy is an object of its own)
    actions_on_user = False

    def user(self):
        """(kind, name) of the object that uses what :meth:`uses` names
        (None: the part uses nothing)."""
        return None

    # -- helpers for subclasses ----------------------------------------------------
    def cmd_timeout(self, long=False):
        if self.timeout:
            return self.timeout
        return self.long_timeout if long else DEFAULT_TIMEOUT

    def run(self, args, long=False, stream=False, **kwargs):
        """Run a docker command for this part (timeout and log applied)."""
        return self.engine.run(args, timeout=self.cmd_timeout(long),
                               stream=self.log if stream else None, **kwargs)

    def labels(self, fingerprint=None, extra=None, temporary=None, renamed=False):
        """Ownership labels; with TEMPORARY (the object's name while it is
        temporary), also this run's id, so that the next run removes it if
        this one is killed before it does (unless RENAMED to its final name
        when complete: see :func:`~dockeroo.model.ownership.renamed_temporary`)."""
        labels = dict(extra or {})
        labels[LABEL_PART] = self.part
        labels[LABEL_BUILDOUT] = self.owner
        if fingerprint:
            labels[LABEL_FINGERPRINT] = fingerprint
        if temporary:
            labels.update(self.lifecycle.temporary_labels(temporary, self.engine_options,
                                                          renamed))
        return labels

    def image_labels(self, fingerprint=None):
        """Labels for an image made by this run (an import): untagged, it is
        removed by the next run if this one is killed before it is tagged."""
        return self.labels(fingerprint, self.lifecycle.image_labels(self.engine_options))

    def temporary(self, name, fingerprint=None, extra=None, done=None, renamed=False):
        """Labels for the temporary container NAME, which is removed if the
        install fails (and by the next run if this one is killed)."""
        labels = self.labels(fingerprint, extra, temporary=name, renamed=renamed)
        self.on_failure(lambda: self.remove_container(name),
                        done or "removed the temporary container %s" % name)
        return labels

    def is_ours(self, obj):
        return is_owned(obj, self.part, self.owner)

    def remove_container(self, name):
        """Remove a (temporary) container this run made, with its anonymous volumes."""
        remove_container(self.engine, name, timeout=self.cmd_timeout(), check=False)
        self.lifecycle.released(name)

    def set_aside(self, name, aside, running):
        """Rename container NAME to ASIDE while its replacement is made
        (journaled first: a killed run's successor puts it back or removes it)."""
        self.lifecycle.aside(self.part, self.owner, self.engine_options, name, aside, running)
        self.run(["rename", name, aside])
        self.engine.forget("container", name)

    def drop_aside(self, aside):
        """Remove the set-aside container ASIDE: its replacement is complete."""
        remove_container(self.engine, aside, timeout=self.cmd_timeout())
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
            remove_image(self.engine, image_id, timeout=self.cmd_timeout())
        except NotFound:
            return

    def install_freeze(self, container, path):
        """Put the freeze binary for the engine's architecture at PATH in CONTAINER."""
        from dockeroo.runtime import freeze
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
        executor.start(self.lifecycle)  # the first entry point of the run plans it
        # buildout records the part only once install returns, and may be
        # killed before: record it now, so that a later run uninstalls it
        if not ahead.recorded(self):
            self.lifecycle.keep_recorded(self.buildout, self.part, self.options.copy())
        with self.failures():
            ahead.start(self)
            paths = self.ensure() or []
        self.lifecycle.succeeded.add(self.part)
        self.lifecycle.drop_due()
        return list(paths)

    def update(self):
        executor.start(self.lifecycle)
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
        self.lifecycle.drop_due()
        return list(paths) if paths else None

    def drop_retired(self, engine, name):
        """Remove the object NAME this part retired (:meth:`Run.retire`) on
        ENGINE; False to keep its record for a later run."""
        return True

    def drop_replaced(self, old, engine, keep=(), announce=None):
        """Remove (on ENGINE, the one the old options select) what the old
        configuration OLD described and the current one does not, but the
        objects of KEEP (handed over to another part): the Actions of
        :meth:`replaced_removals`, those ``dockeroo plan`` lists for a
        changed part, each ``remove`` announced (ANNOUNCE(part, kind, name):
        the run plan's line) and carried out by :meth:`remove_step`; then
        :meth:`forget_replaced`.  Called once the part's turn has passed
        (:meth:`dockeroo.runtime.run.Run.drop_due`), or by a later run when
        a kill came first: it depends on OLD and the current options only."""
        keep = set(keep)
        try:
            for kind, name in self.owned(old):  # looked up afresh: the run changed them
                engine.forget(kind, name)
        except (KeyError, ValueError):
            pass
        acts = [act for act in self.replaced_removals(plan_mod.Observed(engine), old,
                                                      "part configuration changed")
                if (act.kind, act.name) not in keep]
        for act in acts:
            if act.verb == "remove" and announce is not None:
                announce(self.part, act.kind, act.name)
        self.carry_out(engine, self.part, old, self.log, acts)
        self.forget_replaced(old)

    def replaced_removals(self, observed, old, why):
        """The Actions of removing what the old configuration OLD of this
        changed part owned (:meth:`owned`) and its current one does not, as
        :meth:`plan_removal` plans them (OBSERVED: what the old options'
        engine holds), WHY their reason; a removed object that the new
        configuration replaces with another of its kind says so."""
        try:
            now = self.owned(self.options)
            gone = [o for o in self.owned(old) if o not in now]
        except (KeyError, ValueError):
            return []
        if not gone:
            return []
        new = {}
        for kind, name in now:
            new.setdefault(kind, name)
        out = []
        for act in type(self).plan_removal(observed, self.part, old, why):
            if (act.kind, act.name) not in gone:
                continue
            if act.verb == "remove" and act.kind in new:
                act = plan_mod.action(act.part, act.kind, act.name, "remove",
                                      "replaced by %s %s" % (act.kind, new[act.kind]))
            out.append(act)
        return out

    def forget_replaced(self, old):
        """After :meth:`drop_replaced`: drop what the part's own records
        (its state file) keep of the old configuration OLD.  No Docker call."""

    @classmethod
    def uninstaller(cls):
        """The ``zc.buildout.uninstall`` entry point for this recipe."""

        def uninstall(name, options):
            log = logging.getLogger(name)
            owner = options.get(OWNER_OPTION)
            run = lifecycle_for_uninstall()
            execution = executor.start(run, uninstalling=True)
            if lifecycle.configured_recipe(owner, name) == cls.recipe:
                run.configuration(name, options)
                run.deferred[name] = options.copy()
                log.debug("configuration changed: old objects are removed after the new ones exist")
                return
            opts = Options(name, dict(options))
            keep, timeout = removal_settings(name, options)
            if not keep and handed_over(execution, cls, name, options):
                # another part takes its object over: recorded (before buildout
                # forgets the part), the record dropped once the object is the other's
                run.configuration(name, options)
                log.debug("%s taken over by another part", ", ".join(
                    "%s %s" % o for o in execution.hands_over(name)))
                return
            if not keep and execution.defers(name) and \
                    not ahead.removed_earlier(owner, name, forget=False) and \
                    execution.still_used(cls, engine_from_options(opts), options):
                # containers use its objects now, and this run replaces or removes
                # them: recorded (before buildout forgets the part), removed at the end
                run.configuration(name, options)
                log.debug("removal deferred to the end of the run, once its users are gone")
                return
            if keep:
                log.info("keep = true: leaving %s", ", ".join("%s %s" % o for o in cls.owned(options)) or "everything")
            else:
                try:
                    engine = engine_from_options(opts).with_timeout(timeout)
                    announce_removal(run, cls, name, options)
                    cls.remove(engine, name, options, log)
                except (DockerError, UnsafeArchive) as exc:
                    raise UserError("Part [%s] (%s): uninstall failed: %s"
                                    % (name, cls.recipe, exc))
            cls.uninstalled(name, options, log)
            if name not in run.configured:  # a part configured again: done at its install
                run.uninstalled.add(name)
            run.drop_due()  # what waited for this part's objects to go
        return uninstall

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        """The actions of removing what the (old) options OLD_OPTIONS own
        (a removed part, or what a changed part no longer describes), WHY
        being the reason of each removal: what :meth:`remove` (uninstall)
        and :meth:`drop_replaced` do.  Override it with :meth:`remove`."""
        keep, _timeout = removal_settings(part, old_options)
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
        """Uninstall: remove what the part's (old) options own, batched by the
        executor with the objects of the parts uninstalled right after it
        (:func:`dockeroo.runtime.executor.remove`), else as
        :meth:`apply_removal` does.  A recipe supplies its steps
        (:meth:`remove_step`, and a ``remove_together(engine, items)``
        classmethod when many of its objects go in one call), not this."""
        executor.remove(cls, engine, part, options, log)

    @classmethod
    def apply_removal(cls, engine, part, options, log, why="part removed"):
        """Carry out the removal of what the (old) options OPTIONS own: the
        Actions of :meth:`plan_removal`, the one description of a part's
        removal, which ``dockeroo plan`` shows (:meth:`carry_out`)."""
        cls.carry_out(engine, part, options, log,
                      cls.plan_removal(plan_mod.Observed(engine), part, options, why))

    @classmethod
    def carry_out(cls, engine, part, options, log, actions):
        """Carry out the removal ACTIONS of PART (its old options OPTIONS):
        each ``remove`` by :meth:`remove_step`; an object left in place is
        said (one not made by this part, as a warning)."""
        for act in actions:
            if act.verb == "remove":
                cls.remove_step(engine, part, options, act, log)
            elif act.reasons == ("not created by this part",):
                log.warning("%s %s was not created by this part; leaving it",
                            act.kind.capitalize(), act.name)
            elif act.reasons and act.reasons[0] not in ("already gone",) \
                    and not act.reasons[0].startswith("keep = true"):
                log.info("Leaving %s: %s", act.name, "; ".join(act.reasons))

    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """Remove the object of ACT, a ``remove`` Action of the part's
        removal plan (options OPTIONS): by default a container, image,
        volume or network this part made.  Recipes with objects of other
        kinds (files, registry entries, swarm objects) or another way of
        removing them override it.  A file (kind ``file``) is deleted."""
        if act.kind == "file":
            with suppress(FileNotFoundError):
                os.remove(act.name)
            log.info("Removed %s", act.name)
            return
        _keep, timeout = removal_settings(part, options)
        remove_object(engine, act.kind, act.name, part, options.get(OWNER_OPTION), log,
                      timeout=timeout)


def handed_over(execution, cls, part, options):
    """Whether the run's plan hands every object of the removed PART
    (options OPTIONS, recipe class CLS) over to another part."""
    handed = execution.hands_over(part)
    try:
        return bool(handed) and set(cls.owned(options)) <= set(handed)
    except (KeyError, ValueError):
        return False


def announce_removal(run, cls, part, options):
    """Log the run plan's lines of the removal of PART's objects (options
    OPTIONS of recipe class CLS), done now by its uninstall."""
    try:
        owned = cls.owned(options)
    except (KeyError, ValueError):
        return
    for kind, name in owned:
        run.announce(part, kind, name)


def lifecycle_for_uninstall():
    """The run of an uninstall entry point (:func:`dockeroo.runtime.run.for_uninstall`)."""
    return lifecycle.for_uninstall()
