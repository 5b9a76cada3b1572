"""The run's executor: one per buildout run (``Run.executor``), started at
the run's first dockeroo entry point (the first uninstall, install or
update of a dockeroo part; buildout has constructed every configured part
by then, so ``Run.configured`` is complete).

It plans the whole run with the code ``dockeroo plan`` uses
(:mod:`dockeroo.runtime.runplan`: every part's Actions on the run's graph
of objects, ordered by :func:`dockeroo.model.graph.order`) and then:

- **refuses before anything changes** when the order blocks an Action (an
  object to remove or recreate that a container of no part uses, or a
  part configured to keep using something removed): a ``UserError``
  naming the part, the object, the user and what to do instead, raised
  by that first entry point;
- **defers the removal of a removed part** whose objects containers use
  now (containers this run replaces or removes): its uninstall records
  its options durably (a pending record, :meth:`Run.configuration`,
  written before buildout forgets the part) and the run removes them as
  soon as the users are gone: right after the turn of the last part the
  plan placed before that removal (:meth:`Run.drop_due`, from the plan's
  ``due``), else at the end of the run (:meth:`Run.drop_pending`, which
  retries while that helps); the removal itself is the recipe's own
  (``remove``, as its ``plan_removal`` describes it).  What a changed
  part no longer owns goes the same way, right after its turn;
- **hands an object over** from a removed part (or a changed part that
  no longer describes it) to the configured part that describes the same
  network or volume (a part renamed, its settings changed or not; a part
  that now names another object while another part takes its old one:
  :func:`dockeroo.runtime.runplan.hand_over`): the old part's uninstall
  records its options (a pending record, before buildout forgets the
  part; a changed part's is deferred anyway) and leaves the object; the
  new part's turn recreates it under its own labels and settings
  (:meth:`Executor.decided`, its plan told what it takes over:
  :meth:`Executor.taking`), its users released and made again; the end of
  the run drops the record once the object is the new part's.  An interrupted run's record of a removed part is planned the
  same way by the next run, from its first entry point (an install or
  update then);
- **releases the users of a network or volume that is recreated**
  (:func:`release`): their containers are removed (through
  :mod:`dockeroo.model.ownership`) before the object is removed, and made
  again after the new one exists (:func:`remake`): together, in parallel,
  right after it, those whose part's turn has passed and those of later
  parts whose other inputs are ready (the run's plan decides which and
  lists them there: :func:`dockeroo.runtime.runplan.remade_together`);
  the others by their own part's turn when it comes later in the run, or
  at once, one after the other, when it has passed.

Cheap when nothing spans parts: a run whose first dockeroo entry point is
an install or update has no removed or changed dockeroo part, and builds
no graph (the no-op run) unless an interrupted run left the pending record
of a removed part.  A plan that
cannot be made at that point (a part whose plan fails) leaves each part
to fail in its own turn, as without the executor.
"""

import dataclasses
import logging
import sys

from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.model import plan as plan_mod
from dockeroo.model.graph import RELEASED
from dockeroo.model.buildout import decided, plain_install
from dockeroo.model.ownership import LABEL_BUILDOUT, LABEL_PART, labels_of, network_users
from dockeroo.model.ownership import SERVICE_LABEL, ended_task, is_owned, remove_containers
from dockeroo.model.ownership import network_services, swarm_inspect, users as users_of
from dockeroo.runtime import runplan

log = logging.getLogger("dockeroo")


class Executor:
    """What the run's plan decided: PLAN (a RunPlan, or None when no graph
    was needed or it could not be made) and the removed parts whose
    removal is DEFERRED until their users are gone."""

    def __init__(self, run):
        self.run = run
        self.plan = None
        self.deferred = set()

    def predicted(self, act):
        """ACT with the reasons of the run's plan when that plan has the same
        Action (part, verb, kind, name): the executor decided it for those
        reasons.  An Action the plan did not predict keeps its own."""
        if self.plan is None:
            return act
        for planned in self.plan.part_actions(act.part):
            if (planned.verb, planned.kind, planned.name) == (act.verb, act.kind, act.name):
                return dataclasses.replace(act, reasons=planned.reasons)
        return act

    def remade_with(self, recipe):
        """The parts whose containers the run's plan makes again together right
        after RECIPE's part recreated its network or volume (in the plan's
        order; :func:`dockeroo.runtime.runplan.remade_together`)."""
        if self.plan is None:
            return []
        kind = {"docker.network": "network", "docker.volume": "volume"}.get(recipe.recipe)
        return list(self.plan.together.get((recipe.part, kind, recipe.name), ()))

    def hands_over(self, part):
        """(kind, name) of the objects of the removed PART that the run's plan
        hands over to another part (:func:`dockeroo.runtime.runplan.hand_over`)."""
        return self.plan.handed_over(part) if self.plan is not None else []

    def taking(self, part):
        """(kind, name) -> the part that hands it over, of the objects the run's
        plan has PART take over (its plan context's ``handing``)."""
        return self.plan.taking(part) if self.plan is not None else {}

    def decided(self, part, actions):
        """PART's own ACTIONS, but for an object the run's plan has PART take
        over: its plan sees it as its own (unchanged, or recreated for the
        settings that change with the hand-over), the run recreates it under
        PART's labels, for the plan's reasons."""
        if self.plan is None:
            return actions
        out = []
        for act in actions:
            taken = self.plan.taker(part, act.kind, act.name)
            out.append(taken if taken is not None and act.verb in ("unchanged", "recreate")
                       else act)
        return out

    def report(self, logger, actions):
        """Log one line per Action of ACTIONS that changes something, in the
        plan's format (:meth:`dockeroo.model.plan.Action.doing`), with the
        run plan's reasons (:meth:`predicted`)."""
        for act in actions:
            if act.changes:
                logger.info("%s", self.predicted(act).doing())

    def rank(self, part):
        """Where the first Action of PART comes in the run plan's order (the
        end-of-run removals follow it)."""
        if self.plan is None:
            return 0
        for i, (_r, e) in enumerate(self.plan.entries):
            if getattr(e, "part", None) == part:
                return i
        return len(self.plan.entries)

    def announce(self, part, kind, name, logger=None):
        """Log the run plan's removal of object NAME (KIND) of PART, done now
        (a deferred removal, or what a changed part replaced, once their
        users are gone); nothing when the plan did not predict it.  KIND None:
        every removal the plan predicted for PART."""
        if self.plan is None:
            return
        for planned in self.plan.part_actions(part):
            if planned.verb == "remove" and (kind is None or (planned.kind, planned.name) == (
                    kind, name)):
                (logger or logging.getLogger(part)).info("%s", planned.doing())
                if kind is not None:
                    return

    def defers(self, part):
        """Whether the removal of the removed PART may wait until its users are gone."""
        return part in self.deferred

    def still_used(self, cls, engine, options):
        """Whether a container uses one of the objects the options OPTIONS of
        a part of recipe class CLS own, now (asked afresh: the users the
        plan saw may be gone already); the removal is then deferred.  A
        part whose objects the engine's inspect cache does not hold (swarm
        secrets and configs) is taken at the plan's word."""
        owned = cls.owned(options)
        if not owned:
            return True
        for kind, name in owned:
            if kind not in ("network", "volume", "image"):
                continue
            engine.forget(kind, name)
            if engine.inspect(kind, name) is None:
                continue
            found = network_users(engine, name) if kind == "network" else users_of(
                engine, kind, name)
            if found:
                return True
        return False


def start(run, uninstalling=False):
    """The run's Executor, started (planned) at the first entry point
    (UNINSTALLING: an uninstall).  Raises UserError when the plan is
    refused (blocked).

    Buildout uninstalls every removed and changed part before it installs
    or updates any: when the run's first dockeroo entry point is an
    install or update, no dockeroo part is removed or changed in this run,
    nothing spans parts, and no graph is built (the no-op run costs what
    it did), unless an interrupted run left the pending record of a part
    removed from the buildout (:func:`dockeroo.runtime.runplan.orphans`:
    its removal, or its object's hand-over, is planned then, with no part
    changed), or of a configured part's old configuration that owned a
    network or volume the part no longer describes
    (:func:`dockeroo.runtime.runplan.left_over`: another part may take it
    over).  Buildout has also taken the part's signature out of its
    options by then, so its options could not be compared anyway."""
    if run.executor is not None:
        return run.executor
    executor = run.executor = Executor(run)
    if mode.PLANNING or not plain_install(sys.argv):
        return executor
    if not uninstalling and not runplan.orphans(run.parts_directory, run.configured) and \
            not runplan.left_over(run.parts_directory, run.configured):
        return executor
    try:
        result = _plan(run, uninstalling)
    except UserError as exc:  # the part's own turn reports it
        log.debug("no plan of the run: %s", exc)
        return executor
    except Exception as exc:  # noqa: BLE001 - idem
        log.debug("no plan of the run: %r", exc)
        return executor
    if result is None:
        return executor
    executor.plan = result
    refusal = result.refusal()
    if refusal:
        raise UserError(refusal)
    executor.deferred = set(result.deferred)
    return executor


def _plan(run, uninstalling=True):
    """The RunPlan of RUN, or None when nothing spans parts.  Not
    UNINSTALLING (the first entry point is an install or update, planned
    for what an interrupted run left): no dockeroo part is changed."""
    configured = dict(run.configured)
    pending = runplan.pending_parts(run.parts_directory)
    if not configured:
        entries = _planning(runplan.plan_removals, run.directory, run.parts_directory)
        if not entries:
            return None
        return _planning(runplan.graph_of, entries, {}, runplan.removed_engines(
            run.directory, {}, run.parts_directory))
    b = next(iter(configured.values())).buildout
    installed, install_parts, changed = decided(b)
    if not uninstalling:  # buildout uninstalls every changed part first: none is
        changed = {}
    removed = [p for p in (installed["buildout"]["parts"] or "").split()
               if p not in install_parts]
    if not removed and not changed and not pending:
        return None  # the no-op run: nothing spans parts

    def recipe_of(part):
        return configured.get(part)
    entries = _planning(runplan.plan_run, b, installed, install_parts, changed, recipe_of)
    engines = runplan.removed_engines(run.directory, configured, run.parts_directory)
    return _planning(runplan.graph_of, entries, {p: r for p, r in configured.items()
                                                 if p in install_parts}, engines)


def _planning(function, *args):
    """FUNCTION(*ARGS) with the engine read-only, as ``dockeroo plan`` runs."""
    was = mode.PLANNING
    mode.PLANNING = True
    try:
        return function(*args)
    finally:
        mode.PLANNING = was


# -- recreation under users -----------------------------------------------------------------
def apply(recipe, actions):
    """Carry out ACTIONS, RECIPE's part's decided Actions, through the
    recipe's :meth:`~dockeroo.runtime.recipe.Recipe.apply` (the steps of its
    own kinds).  The lifecycle around them is the executor's: a network or
    volume recreated under containers or services of the buildout has them
    released first (:func:`release`, for the reasons the run plan gives
    them: what differs), and once a network or volume is made
    (created, repaired or recreated) what was released for it, or for an
    earlier recreation, is made again (:func:`remake`).  Returns the paths
    the part owns."""
    if not any(act.kind in RELEASED and act.verb in ("create", "repair", "recreate")
               for act in actions):
        return recipe.apply(actions)
    paths = []
    for act in actions:
        released = []
        if act.kind in RELEASED and act.verb == "recreate":
            released = release(recipe, act.kind, act.name, "; ".join(act.reasons))
        paths += recipe.apply([act]) or []
        if act.kind in RELEASED and act.verb in ("create", "repair", "recreate"):
            remake(recipe, released)
    return paths


def release(recipe, kind, name, why):
    """Before RECIPE recreates its network or volume NAME (KIND) for WHY:
    remove the containers that use it, and have the swarm services whose
    tasks use it (an overlay network) let go of it, which must all be
    containers or services of this buildout's configured parts (else a
    UserError, nothing changed).  Returns [(part recipe, container or
    service name)] to make again (:func:`remake`)."""
    engine = recipe.engine
    names = network_users(engine, name) if kind == "network" else users_of(
        engine, kind, name, check=True)
    run = recipe.lifecycle
    found, foreign, services = [], [], {}

    def service_uses(service):
        if service in services or "service " + service in foreign:
            return
        other = next((r for r in run.configured.values()
                      if r.user() == ("service", service)), None)
        current = swarm_inspect(engine, "service", service) if other is not None else None
        if current is None or not is_owned(current, other.part, recipe.owner):
            foreign.append("service " + service)
        else:
            services[service] = other
    if kind == "network":  # an overlay network: the services that name it, wherever they run
        for service in network_services(engine, engine.inspect("network", name)):
            service_uses(service)
    for user in names:
        obj = engine.inspect("container", user)
        if obj is None:
            continue
        labels = labels_of(obj)
        service = labels.get(SERVICE_LABEL)
        if service:  # a swarm task's container: its service uses the object
            if not ended_task(engine, user):
                service_uses(service)
            continue
        part = labels.get(LABEL_PART)
        other = run.configured.get(part)
        if labels.get(LABEL_BUILDOUT) != recipe.owner or other is None or \
                other.user() != ("container", user):
            foreign.append(user)
        else:
            found.append((other, user))
    if foreign:
        foreign = [u if u.startswith("service ") else "container " + u for u in foreign]
        raise UserError("Part [%s]: %s %s must be recreated (%s) but %s, which no "
                        "part of this buildout manages, use it; remove or move them first, or "
                        "leave the part's options as they were (nothing was changed)"
                        % (recipe.part, kind, name, why, ", ".join(foreign)))
    if not found and not services:
        return []
    reason = "%s %s is recreated (%s)" % (kind, name, why)
    for other, user in found:
        other.log.info("releasing container %s because %s", user, reason)
        run.let_go[user] = reason
    for service, other in services.items():
        other.log.info("releasing service %s because %s", service, reason)
        run.let_go[("service", service)] = reason
    if found:
        remove_containers(engine, [user for _other, user in found],
                          timeout=recipe.cmd_timeout())
    for service, other in services.items():  # a rolling update each: the service stays up
        other.let_go_of(kind, name)
    return found + [(other, service) for service, other in services.items()]


def remake(recipe, released):
    """After RECIPE recreated its object: make again at once the released
    containers whose part's turn has passed in this run, and those the
    run's plan makes again with it (:func:`dockeroo.runtime.runplan.remade_together`:
    of later parts whose other inputs are ready), the latter together
    (:func:`together`); the others are made by their own part's turn.
    A failure is raised, naming its part, once the others are made."""
    run = recipe.lifecycle
    execution = run.executor
    planned = execution.remade_with(recipe) if execution is not None else []
    todo = {other.part: other for other, _user in released
            if other.part in run.succeeded or other.part in planned}
    for part in planned:  # let go of for an earlier recreation (a network, then a volume)
        other = run.configured.get(part)
        if other is not None and part not in todo and other.name in run.let_go:
            other.engine.forget("container", other.name)
            if other.engine.inspect("container", other.name) is None:
                todo[part] = other
    ranked = sorted(todo.values(), key=lambda other: execution.rank(other.part)
                    if execution is not None else 0)
    parallel = [other for other in ranked if other.part in planned and ready(other)]
    errors = together(recipe, parallel)
    for other in ranked:  # the others whose turn has passed, one after the other
        if other in parallel or other.part not in run.succeeded:
            continue
        try:
            with other.failures():
                other.ensure()
        except UserError as exc:
            errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else UserError("\n".join(map(str, errors)))


def ready(recipe):
    """Whether everything the container of RECIPE's part uses exists now
    (its image, network, named volumes, ``volumes-from`` and ``links``
    containers), so that its ``docker run`` can be started."""
    engine = recipe.engine
    uses = [(kind, name) for kind, name, _relation in recipe.uses() if name]
    for kind, name in uses:
        engine.want(kind, name)
    for kind, name in uses:
        if engine.inspect(kind, name) is None:
            engine.forget(kind, name)  # made by an earlier part?
            if engine.inspect(kind, name) is None:
                return False
    return True


def together(recipe, others):
    """Make the containers of the parts OTHERS (released for RECIPE's
    recreation) again in parallel, each with the ``docker run`` its own
    install would run (:func:`dockeroo.runtime.ahead._parallel`: bounded);
    each made one is logged under its part with the run plan's reasons, in
    the plan's order.  A failed one is removed (nothing half-made stays:
    its part, or the next run, makes it) and its error returned, naming
    its part, once the others ended: [UserError]."""
    from dockeroo.runtime import ahead
    run, jobs, errors = recipe.lifecycle, [], {}
    for other in others:
        try:
            other.check_engine()  # options this engine cannot honour: its error, as in its turn
            jobs.append((other, "container", other.one_step_args(other.fingerprint()), set()))
        except UserError as exc:
            errors[other.part] = exc
    made = set()
    try:
        for other, _kind, error in ahead._parallel(jobs):
            if error is None:
                made.add(other.part)
            else:
                errors[other.part] = UserError("Part [%s] (%s): could not make container %s "
                                               "again: %s" % (other.part, other.recipe,
                                                              other.name, "; ".join(
                                                                  line.strip() for line in
                                                                  error.splitlines()
                                                                  if line.strip())))
    finally:
        for other, _kind, _args, _needs in jobs:  # failed, or cut short by an interrupt
            if other.part not in made:
                ahead._remove(other, "container")
    for other in others:
        if other.part in made:
            act = plan_mod.action(other.part, "container", other.name, "recreate",
                                  run.let_go.get(other.name, "its network or volume is "
                                                 "recreated"))
            other.log.info("%s", run.executor.predicted(act).doing() if run.executor is not None
                           else act.doing())
            other.log.debug("Creating container %s from %s", other.name, other.spec.image)
            if other.part in run.succeeded:
                other.publish()
    return [errors[other.part] for other in others if other.part in errors]


# -- removals batched ---------------------------------------------------------------------
def remove(cls, engine, part, options, log):
    """The uninstall of PART (recipe class CLS, its old OPTIONS): its
    objects go with those of the parts buildout uninstalls right after it
    (:func:`dockeroo.model.buildout.uninstalled_together`), whose own
    uninstalls then have nothing left to do:

    - a volume or network part: its object and those of the volume and
      network parts after it, by parallel ``rm`` processes;
    - a recipe with a step that removes many of its objects at once (its
      ``remove_together``: ``docker.run``'s one ``docker stop`` and one
      ``docker rm``): those of the parts of its recipe after it, then the
      volumes and networks of the parts after those, in parallel.

    Anything not removed that way (not the part's, in use, a failed call)
    goes through the part's removal plan (:meth:`Recipe.apply_removal`),
    which says why."""
    from dockeroo.model.buildout import dockeroo_entry
    from dockeroo.model.ownership import OWNER_OPTION
    from dockeroo.runtime import ahead, run as run_mod
    owner = options.get(OWNER_OPTION)
    if ahead.removed_earlier(owner, part):
        return  # an earlier uninstall of this run removed it with its own
    run = run_mod.active()

    def announce(items, kind=None):
        """The run plan's lines of the removals of ITEMS, done now (their
        own uninstalls, later, then say nothing: Run.announce logs once)."""
        for name, values in items if run is not None else ():
            run.announce(name, kind or ahead.TOGETHER[dockeroo_entry(values["recipe"])],
                         values["name"])
    batch = getattr(cls, "remove_together", None)
    if cls.recipe in ahead.TOGETHER:
        after = ahead.together(part, options)
        if after:
            announce(after)
            if part in ahead.remove_together(engine, owner, part, [(part, options)] + after):
                return
    elif batch is not None:
        others = ahead.uninstalled_together(part, options)
        after = ahead.together(part, options)  # their volumes and networks, removed next
        for _name, values in after:  # looked up with the containers: one round of inspects
            engine.want(ahead.TOGETHER[dockeroo_entry(values["recipe"])], values["name"])
        announce(others, "container")
        done = batch(engine, [(part, options)] + others) if others else set()
        ahead.mark_removed(owner, [other for other in done if other != part])
        if part not in done:
            cls.apply_removal(engine, part, options, log)
        if after:
            announce(after)
            ahead.remove_together(engine, owner, part, after)
        return
    cls.apply_removal(engine, part, options, log)
