"""Work of several parts overlapped: creation ahead of a part's turn, removal together.

Buildout installs parts one after the other, but it constructs every part
before it installs any.  When a dockeroo part installs (or updates), the
*window* is the run of consecutive parts from it on whose install is
certain and independent of everything a user's script could observe:

* ``docker.network`` (not swarm), ``docker.volume``, and ``docker.run``
  containers made in one step (``in_one_step``: no layout, script or wait,
  at most one network);
* on the same engine, in a plain ``buildout`` run (the install order is
  the order buildout constructed the parts in);
* a container needs its image to exist, and its network and named
  volumes to exist or to be made by an earlier part of the window; it
  uses no links, ``volumes-from`` or ``container:`` network, its outputs
  are not referenced and its options reference no part's container id or
  address.

The window stops at the first part that is not such a part (any other
recipe, a part that is not dockeroo's, a script, a layout, a wait), and at
a part whose object exists but is not complete and matching (its own
install changes it, in order).  So nothing a script or another recipe
sees comes up earlier than without the window.

The objects of the window that do not exist yet are made in parallel:
networks and volumes first, then the containers, with the very argv the
part's own install would run.  Each part is recorded first in the run's
pending configurations (:meth:`dockeroo.runtime.run.Run.configuration`,
written before anything is made): a run killed meanwhile leaves records
that the next run honours (a part still configured keeps or completes its
object, a part removed from the buildout has it removed).  A creation that
fails is undone at once and left to the part's own install, which then
fails in its turn with its own error.  When each part's turn comes, its
install finds its object complete and matching (one batched inspect).

If the run ends before a part of the window succeeded (an earlier part
failed, Ctrl-C), what was made ahead for it is removed at exit: the
objects under its names that carry its ownership labels (they did not
exist when the window was made, and the run lock keeps other runs out).

Removal together (uninstall): the containers of the ``docker.run`` parts a
plain run uninstalls one after the other are stopped and removed together
(``docker.run``'s ``remove_together``); then, at once, the volumes and the
networks of the ``docker.volume`` and ``docker.network`` parts it
uninstalls after them, by parallel docker processes (at the first of
those uninstalls when no container part comes first).  Only parts up to
the first part of another recipe than dockeroo's are included
(:func:`dockeroo.model.buildout.uninstalled_together`).
"""

import logging
import re
import subprocess
import sys
import time

from dockeroo.base import mode
from dockeroo.engine.process import Supervisor
from dockeroo.runtime import run as lifecycle

log = logging.getLogger("dockeroo")

#: docker processes in flight at once
PARALLEL = 10
#: an option value naming another part's runtime output
OUTPUT_REF = re.compile(r"\$\{[^:}]*:(container-id|ip-address)\}")
SPECIAL_NETWORKS = ("host", "none", "bridge", "default")

class _State:
    """The creation ahead of one run (its ``Run.ahead``)."""

    def __init__(self, run):
        self.run = run
        #: parts covered by a window (their hook does nothing)
        self.covered = set()
        #: (recipe, kind, name) of every object this run tried to make ahead
        self.made = []
        #: parts recorded in the pending configurations before their objects were made
        self.recorded = set()

    def undo(self):
        """The first step of the run's exit (:meth:`Run.finish`)."""
        _undo(self)


def recorded(recipe):
    """Whether RECIPE's part is recorded already (in the run's pending
    configurations, before its object was made ahead): its install need
    not record it in ``.installed.cfg`` again."""
    state = recipe.lifecycle.ahead
    return state is not None and recipe.part in state.recorded


def start(recipe):
    """Hook of a part's install and update: make the window starting at
    RECIPE's part, unless an earlier window covers it.  Never raises
    (except for an interrupt): whatever goes wrong is left to the parts'
    own installs."""
    run = recipe.lifecycle
    state = run.ahead
    if state is None:
        state = run.ahead = _State(run)
    if recipe.part in state.covered or mode.PLANNING:
        return
    try:
        window = _window(recipe, state)
        todo = [(r, kind) for r, kind, exists in window if not exists]
        state.covered.update(r.part for r, _kind, _exists in window)
        if any(r is not recipe for r, _kind in todo):  # alone, it makes its own in turn
            _make(state, todo)
    except Exception as exc:  # noqa: BLE001 - each part's install reports its own errors
        log.debug("no creation ahead: %s", exc)


def _install_order(recipe):
    from dockeroo.model.buildout import constructed_parts, plain_install
    if not plain_install(sys.argv):
        return None
    parts = constructed_parts(recipe.buildout)
    return parts if parts and recipe.part in parts else None


def _window(first, state):
    """[(recipe, kind, exists)] of the window starting at FIRST's part."""
    order = _install_order(first)
    if order is None:
        return []
    from dockeroo.model.buildout import raw_sections
    raw = raw_sections(first.buildout)
    run = state.run
    window, names, made = [], set(), {"network": set(), "volume": set()}
    for part in order[order.index(first.part):]:
        recipe = run.configured.get(part)
        if recipe is None or part in state.covered or part in run.succeeded:
            break
        if (recipe.engine.config, recipe.engine.docker) != (first.engine.config,
                                                             first.engine.docker):
            break
        kind = _kind(recipe, raw.get(part) or {})
        if kind is None:
            break
        name = recipe.name
        if (kind, name) in names:
            break
        obj = recipe.engine.inspect(kind, name)
        if obj is not None:
            if not _complete(recipe, kind, obj):
                break
        elif kind == "container" and not _ready(recipe, made):
            break
        names.add((kind, name))
        if obj is None and kind != "container":
            made[kind].add(name)
        window.append((recipe, kind, obj is not None))
    return window


def _kind(recipe, raw):
    """The kind of object a window part makes, or None if it cannot be in one."""
    if any(isinstance(v, str) and OUTPUT_REF.search(v) for v in raw.values()):
        return None
    if recipe.recipe == "docker.network":
        return None if recipe.spec.needs_swarm else "network"
    if recipe.recipe == "docker.volume":
        return "volume"
    if recipe.recipe == "docker.run":
        spec = recipe.spec.container
        if not recipe.spec.in_one_step or recipe.referenced or spec.links or spec.volumes_from \
                or spec.devices or (spec.network or "").startswith("container:"):
            return None
        return "container"
    return None


def _complete(recipe, kind, obj):
    """Whether the existing object OBJ is what the part describes (its own
    install does nothing)."""
    if not recipe.is_ours(obj):
        return False
    if kind == "container":
        from dockeroo.model.ownership import LABEL_FINGERPRINT, labels_of
        labels = labels_of(obj)
        running = (obj.get("State") or {}).get("Running")
        return labels.get(LABEL_FINGERPRINT) == recipe.fingerprint() and (
            running or not recipe.spec.start)
    if kind == "network":
        return not recipe.differences(obj)
    return obj.get("Driver") == recipe.spec.driver and \
        (obj.get("Options") or {}) == recipe.spec.driver_opts


def _ready(recipe, made):
    """Whether the container's image exists, and its network and named volumes
    exist or are made earlier in the window."""
    engine = recipe.engine
    if engine.inspect("image", recipe.spec.image) is None:
        return False
    network = recipe.spec.container.network
    if network and network not in SPECIAL_NETWORKS and network not in made["network"]:
        engine.want("network", network)
        if engine.inspect("network", network) is None:
            return False
    for volume in recipe.spec.container.volumes:
        source = volume.split(":", 1)[0]
        if source.startswith("/") or source in made["volume"]:
            continue
        if engine.inspect("volume", source) is None:
            return False
    return True


def _make(state, todo):
    """Make the objects of TODO, (recipe, kind) pairs, in parallel; a
    container starts as soon as the network and volumes it needs that are
    made here exist."""
    run = state.run
    # before anything is made: a kill leaves records
    run.configurations([(recipe.part, recipe.options) for recipe, _kind in todo])
    state.recorded.update(recipe.part for recipe, _kind in todo)
    making = {(kind, recipe.name) for recipe, kind in todo}
    jobs = []
    for recipe, kind in todo:
        if kind == "container":
            needs = {("network", recipe.spec.container.network)} | {
                ("volume", v.split(":", 1)[0]) for v in recipe.spec.container.volumes}
            args = recipe.one_step_args(recipe.fingerprint())
        else:
            needs, args = set(), recipe.create_args()
        state.made.append((recipe, kind, recipe.name))
        jobs.append((recipe, kind, args, needs & making))
    said = {id(recipe): _doing(recipe, kind) for recipe, kind in todo}
    made = set()
    for recipe, kind, error in _parallel(jobs):
        if error is None:
            made.add(id(recipe))
        else:
            recipe.log.debug("creation ahead failed (left to the part's install): %s", error)
            _remove(recipe, kind)
    # the lines the parts' own installs would log, with the run plan's reasons, in the
    # plan's order (that of TODO), not in the order the parallel jobs ended
    for recipe, _kind in todo:
        if id(recipe) in made:
            recipe.log.info("%s", said[id(recipe)])
    if made:
        log.info("made ahead of their parts: %s", ", ".join(
            recipe.part for recipe, _kind in todo if id(recipe) in made))


def _doing(recipe, kind):
    """What the part's plan says it does to its object (``creating volume x
    because the part is new``), asked before anything is made."""
    try:
        for act in recipe.plan(recipe.context()) or ():
            if act.kind == kind and act.name == recipe.name and act.changes:
                executor = recipe.lifecycle.executor
                return (executor.predicted(act) if executor is not None else act).doing()
    except Exception:  # its own install plans again and reports any problem
        pass
    return "creating %s %s" % (kind, recipe.name)


def _parallel(jobs):
    """Run JOBS, (recipe, kind, argv, needs) with NEEDS the (kind, name) of
    jobs that must succeed first, at most PARALLEL at a time; yields
    (recipe, kind, None or the error text) as they end (a job whose needs
    failed is not run).  An interrupt kills what runs and propagates."""
    waiting, running, results = list(jobs), [], {}
    try:
        while waiting or running:
            for job in list(waiting):
                recipe, kind, args, needs = job
                if len(running) >= PARALLEL or not needs <= set(results):
                    continue
                waiting.remove(job)
                if any(results[need] is not None for need in needs):
                    results[(kind, recipe.name)] = "not made: it needs %s" % ", ".join(
                        "%s %s" % need for need in sorted(needs))
                    continue
                group = Supervisor(recipe.cmd_timeout())
                proc = recipe.engine.popen(args, group, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                running.append((recipe, kind, proc, group))
            if waiting and not running and not any(  # needs outside JOBS: never met
                    job[3] <= set(results) for job in waiting):
                for recipe, kind, _args, _needs in waiting:
                    results[(kind, recipe.name)] = "not made"
                waiting = []
            ended = [item for item in running if item[2].poll() is not None]
            if not ended:
                time.sleep(0.005)
                continue
            for item in ended:
                running.remove(item)
                recipe, kind, proc, group = item
                _out, err = group.communicate(proc)
                group.close()
                if group.timed_out:  # killed by its deadline
                    error = "timed out"
                else:
                    error = None if proc.returncode == 0 else (err.strip() or "failed")
                recipe.engine.forget(kind, recipe.name)
                recipe.engine.want(kind, recipe.name)
                results[(kind, recipe.name)] = error
                yield recipe, kind, error
    finally:
        for recipe, kind, _proc, group in running:
            group.close(failed=True)
            recipe.engine.forget(kind, recipe.name)


def _remove(recipe, kind):
    """Remove the object of RECIPE's part made ahead (if it is there and
    ours); False if that failed."""
    from dockeroo.model.ownership import remove_object
    recipe.engine.forget(kind, recipe.name)
    try:
        remove_object(recipe.engine, kind, recipe.name, recipe.part, recipe.owner,
                      recipe.log, timeout=recipe.cmd_timeout(), stop_timeout=0)
    except Exception as exc:  # noqa: BLE001 - the part's own install reports it
        recipe.log.warning("Could not remove %s %s made ahead: %s", kind, recipe.name, exc)
        return False
    return True


def _undo(state):
    """At exit (the first step of :meth:`Run.finish`): remove what was made
    ahead for the parts that did not succeed in this run (containers
    first), and their records."""
    run = state.run
    left = [(r, k) for r, k, _name in state.made if r.part not in run.succeeded]
    if not left:
        return
    try:
        for phase in ([x for x in left if x[1] == "container"],
                      [x for x in left if x[1] != "container"]):
            for recipe, kind in phase:
                recipe.engine.forget(kind, recipe.name)
                recipe.engine.want(kind, recipe.name)
            for recipe, kind in phase:
                gone = _remove(recipe, kind)
                entry = {"options": dict(recipe.options)}
                if gone and entry in run.pending(recipe.part):
                    run._save_pending(recipe.part, [e for e in run.pending(recipe.part)
                                                    if e != entry])
    except BaseException as exc:  # an exit hook: never raises
        log.warning("dockeroo: removing what was made ahead did not complete: %s", exc)


# -- removal together ----------------------------------------------------------------
def _removed():
    """(owner, part) of the parts whose object an earlier uninstall of this
    run removed (the run's ``removed_together``)."""
    run = lifecycle.active()
    return run.removed_together if run is not None else set()


def removed_earlier(owner, part):
    """Whether an earlier uninstall of this run removed PART's object with
    its own (then forgotten: PART's uninstall has nothing left to do)."""
    found = (owner, part) in _removed()
    _removed().discard((owner, part))
    return found


def mark_removed(owner, parts):
    """The objects of PARTS were removed together by an earlier uninstall."""
    _removed().update((owner, part) for part in parts)


def uninstalled_together(part, options, entries=None):
    """:func:`dockeroo.model.buildout.uninstalled_together`, leaving out the
    parts constructed in this process."""
    from dockeroo.model.buildout import uninstalled_together as together_
    from dockeroo.model.ownership import OWNER_OPTION
    owner = options.get(OWNER_OPTION)
    return together_(part, options, entries, configured=lifecycle.configured_parts(owner))


#: the recipes whose objects are removed together, and the kind of each one's object
TOGETHER = {"docker.volume": "volume", "docker.network": "network"}


def removed_together(cls, engine, part, options, log):
    """Uninstall of a ``docker.volume`` or ``docker.network`` part: remove its
    object and those of the other volume and network parts that this run
    uninstalls right after it (:func:`dockeroo.model.buildout.uninstalled_together`),
    in parallel.  True when PART's object is gone; objects that are not
    their part's, in use, or that a docker call could not remove are left
    to the part's own uninstall (which says why)."""
    from dockeroo.model.ownership import OWNER_OPTION
    owner = options.get(OWNER_OPTION)
    if removed_earlier(owner, part):
        return True
    if cls.recipe not in TOGETHER:
        return False
    items = together(part, options)
    if not items:
        return False
    return part in remove_together(engine, owner, part, [(part, options)] + items)


def together(part, options):
    """The (part, options) of the volume and network parts this run
    uninstalls right after PART."""
    return uninstalled_together(part, options, entries=TOGETHER)


def remove_together(engine, owner, leader, items):
    """Remove the volumes and networks of ITEMS, (part, options) pairs of
    volume and network parts uninstalled together with LEADER's part, by
    parallel ``rm`` processes.  Their objects are inspected with those
    already wanted (a ``docker.run`` uninstall wants them before it stops
    its containers: one round of inspects); the ownership labels decide.
    A volume or network still in use is refused by Docker and left, like
    any other failure, to its part's own uninstall, which says why.
    Returns the parts whose object is gone (marked in the run's
    ``removed_together`` but for LEADER)."""
    from dockeroo.model.options import removal_settings
    from dockeroo.model.buildout import dockeroo_entry
    from dockeroo.model.ownership import is_owned
    items = [(name, values, TOGETHER[dockeroo_entry(values["recipe"])])
             for name, values in items]
    for _part, values, kind in items:
        engine.want(kind, values["name"])
    done, jobs = set(), []
    try:
        for name, values, kind in items:
            obj = engine.inspect(kind, values["name"])
            if obj is None:
                done.add(name)
            elif is_owned(obj, name, owner):
                _keep, timeout = removal_settings(name, values)
                jobs.append((_Removal(engine, name, values["name"], timeout), kind,
                             [kind, "rm", values["name"]], set()))
    except Exception:  # noqa: BLE001 - each part's own uninstall reports it
        return set()
    try:
        for removal, kind, error in _parallel(jobs):
            if error is None:
                logging.getLogger(removal.part).info("Removed %s %s", kind, removal.name)
                done.add(removal.part)
    except Exception:  # noqa: BLE001
        pass
    mark_removed(owner, [name for name in done if name != leader])
    return done


class _Removal:
    """What :func:`_parallel` needs of a job: engine, name, timeout."""

    def __init__(self, engine, part, name, timeout):
        self.engine, self.part, self.name, self.timeout = engine, part, name, timeout

    def cmd_timeout(self):
        return self.timeout
