"""Work of several parts overlapped: creation ahead of a part's turn, removal together.

Creation ahead (docs/recipes/docker.run.rst, "Creation ahead"): when a
dockeroo part installs, the *window* is the run of consecutive parts from
it whose install is certain and independent of anything a script could
observe (``docker.network`` not swarm, ``docker.volume``, ``docker.run``
made in one step, on one engine, in a plain ``buildout`` run; see
:func:`_window`).  Its missing objects are made in parallel with the argv
each part's own install would run, after each part is recorded in the
run's pending configurations (a kill leaves records the next run honours).
A failed creation is undone and left to the part's install; what was made
for parts that did not succeed is removed at exit (:func:`_undo`).

Removal together (uninstall): the containers of the ``docker.run`` parts a
plain run uninstalls one after the other are stopped and removed together
(``docker.run``'s ``remove_together``), then the volumes and networks of
the ``docker.volume`` and ``docker.network`` parts uninstalled after them,
by parallel processes (:func:`dockeroo.model.buildout.uninstalled_together`).
:func:`dockeroo.runtime.executor.remove` decides it; this module holds the
parallel steps.
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
        #: {part: recipe} of the containers stopped ahead of their recreation
        self.stopped = {}

    def undo(self):
        """The first step of the run's exit (:meth:`Run.finish`)."""
        _undo(self)
        _restart(self)


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
        if not window:
            _stop_ahead(recipe, state)
    except Exception as exc:  # noqa: BLE001 - each part's install reports its own errors
        log.debug("no creation ahead: %s", exc)


def stopped_ahead(recipe):
    """Whether RECIPE's container was stopped ahead of its recreation (it
    counts as running: put back, it is started again)."""
    state = recipe.lifecycle.ahead
    return state is not None and recipe.part in state.stopped


def _stop_ahead(first, state):
    """Stop together the running containers that this run recreates, from
    FIRST's part on: the consecutive ``docker.run`` parts made in one step
    (no script, layout or wait that could observe the others) on FIRST's
    engine whose container is ours and has another fingerprint.  One
    ``docker stop`` per stop timeout instead of one wait per part.  Killed
    meanwhile, the next run recreates them, or starts them again if the
    configuration went back (a stopped container is repaired)."""
    order = _install_order(first)
    if order is None or first.recipe != "docker.run":
        return
    from dockeroo.model.ownership import (DOCKER_STOP_TIMEOUT, LABEL_FINGERPRINT, labels_of,
                                          stop_containers)
    run, found = state.run, []
    for part in order[order.index(first.part):]:
        recipe = run.configured.get(part)
        if recipe is None or recipe.recipe != "docker.run" or not recipe.spec.in_one_step \
                or part in state.stopped or part in run.succeeded \
                or recipe.engine.config != first.engine.config \
                or recipe.engine.docker != first.engine.docker:
            break
        obj = recipe.engine.inspect("container", recipe.name)
        if obj is None or labels_of(obj).get(LABEL_FINGERPRINT) == recipe.fingerprint():
            continue  # made or left alone in its turn
        if not recipe.is_ours(obj):
            break
        if (obj.get("State") or {}).get("Running"):
            stop = (obj.get("Config") or {}).get("StopTimeout")
            found.append((recipe, DOCKER_STOP_TIMEOUT if stop is None else stop))
    if len(found) < 2:
        return
    for seconds in sorted({stop for _recipe, stop in found}):
        group = [recipe for recipe, stop in found if stop == seconds]
        state.stopped.update((recipe.part, recipe) for recipe in group)
        stop_containers(first.engine, [r.name for r in group], seconds,
                        logging.getLogger(first.part), timeout=first.cmd_timeout())
        for recipe in group:
            recipe.engine.forget("container", recipe.name)


def _restart(state):
    """At exit: start again the containers stopped ahead whose part did not
    succeed (never reached, or put back by its own rollback)."""
    left = [r for part, r in state.stopped.items() if part not in state.run.succeeded]
    for recipe in left:
        try:
            if recipe.engine.inspect("container", recipe.name) is not None:
                recipe.engine.run(["start", recipe.name], timeout=recipe.cmd_timeout())
        except BaseException as exc:  # an exit hook: never raises
            log.warning("dockeroo: could not start %s again: %s", recipe.name, exc)


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
    window = []
    # the networks and volumes the window makes, wherever in it: a container of a part
    # listed first waits for them (its job runs once they exist, see _make)
    later = _made_later(first, state, order, raw)
    made = {kind: set(names) for kind, names in later.items()}
    for recipe, kind in _candidates(first, state, order, raw):
        name = recipe.name
        obj = recipe.engine.inspect(kind, name)
        if obj is not None:
            if not _complete(recipe, kind, obj):
                break
        elif kind == "container" and not _ready(recipe, made):
            break
        if obj is None and kind != "container":
            made[kind].add(name)
        window.append((recipe, kind, obj is not None))
    # the window ended before a network or volume an earlier container counted on
    inside = {(kind, recipe.name) for recipe, kind, exists in window if not exists}
    missing = {(k, n) for k, names in later.items() for n in names} - inside
    for i, (recipe, kind, exists) in enumerate(window):
        if kind == "container" and not exists and _needs(recipe) & missing:
            return window[:i]
    return window


def _needs(recipe):
    """(kind, name) of the network and named volumes container RECIPE needs."""
    return {("network", recipe.spec.container.network)} | {
        ("volume", v.split(":", 1)[0]) for v in recipe.spec.container.volumes}


def _candidates(first, state, order, raw):
    """(recipe, kind) of the parts from FIRST's on that may be in a window,
    up to the first that cannot (another recipe or engine, a part done
    already, an object of an earlier part's name)."""
    run, names = state.run, set()
    for part in order[order.index(first.part):]:
        recipe = run.configured.get(part)
        if recipe is None or part in state.covered or part in run.succeeded or (
                recipe.engine.config, recipe.engine.docker) != (first.engine.config,
                                                               first.engine.docker):
            return
        kind = _kind(recipe, raw.get(part) or {})
        if kind is None or (kind, recipe.name) in names:
            return
        names.add((kind, recipe.name))
        yield recipe, kind


def _made_later(first, state, order, raw):
    """{"network": names, "volume": names} of the missing networks and volumes
    that the window's candidate parts (:func:`_candidates`) make: a
    container of an earlier part of the window may use them."""
    out = {"network": set(), "volume": set()}
    found = [(kind, recipe.name) for recipe, kind in _candidates(first, state, order, raw)
             if kind in out]
    for kind, name in found:
        first.engine.want(kind, name)
    for kind, name in found:
        if first.engine.inspect(kind, name) is None:
            out[kind].add(name)
    return out


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
            needs = _needs(recipe)
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


def removed_earlier(owner, part, forget=True):
    """Whether an earlier uninstall of this run removed PART's object with
    its own (then, with FORGET, forgotten: PART's uninstall has nothing
    left to do)."""
    found = (owner, part) in _removed()
    if forget:
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


def together(part, options):
    """The (part, options) of the volume and network parts this run
    uninstalls right after PART (but those whose object another part takes
    over: their uninstall leaves it)."""
    run = lifecycle.active()
    return [(name, values) for name, values in uninstalled_together(
        part, options, entries=TOGETHER) if run is None or not run.handed_over(name)]


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
