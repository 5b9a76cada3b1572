"""Plan the run: what one ``bin/buildout`` run will do to Docker, every
part together, in the order the run follows.  ONE implementation, used by
``dockeroo plan`` (:mod:`dockeroo.cli`, on a Buildout it loads itself) and
by the run's executor (:mod:`dockeroo.runtime.executor`, on the Buildout
that runs, at its first dockeroo entry point).

:func:`plan_run` decides as buildout's ``install`` which parts it would
install, update or uninstall and asks every dockeroo part for its plan;
:func:`graph_of` puts the plan on the run's graph of objects
(:mod:`dockeroo.model.graph`), completes it with what only the graph
knows (the users a recreated network or volume takes along, an old image
whose users are all replaced) and orders it.
"""

import dataclasses
import contextlib
import os
import urllib.parse

from zc.buildout import UserError

from dockeroo.base.state import read_json
from dockeroo.engine.commands import INSPECT_KINDS
from dockeroo.model import graph as graph_mod
from dockeroo.model import plan as plan_mod
from dockeroo.model.buildout import dockeroo_entry, part_recipe, read_record
from dockeroo.model.engines import engine_from_options
from dockeroo.model.options import Options
from dockeroo.model.ownership import is_owned, users as users_of, want_users
from dockeroo.runtime import graph as run_graph
from dockeroo.runtime.run import STATE_DIR, recipe_class


class PartEntry:
    """A part of another recipe (or one dockeroo cannot plan yet): what buildout does with it."""

    def __init__(self, part, recipe, verb, reason=None):
        self.part, self.recipe, self.verb, self.reason = part, recipe, verb, reason

    def line(self):
        if self.verb == "maybe":
            return "? maybe %s part %s: %s" % (self.recipe, self.part, self.reason)
        return "%s part %s" % (self.verb, self.part)


def plan_run(b, installed, install_parts, changed, recipe_of=None):
    """The plan of the run of buildout B: (recipe, Action or PartEntry) pairs,
    in buildout's order (removed parts' removals, then each part's plan,
    then what earlier runs left pending).  INSTALLED, INSTALL_PARTS,
    CHANGED: what buildout's install decided (``select_parts``);
    RECIPE_OF: part -> its constructed recipe (default: B's)."""
    recipe_of = recipe_of or (lambda part: part_recipe(b, part))
    entries, images = [], {}
    want_removed((p, installed[p]) for p in installed["buildout"]["parts"].split()
                 if p not in install_parts)
    # what buildout uninstalls first: the installed parts no longer configured
    for part in reversed(installed["buildout"]["parts"].split()):
        if part not in install_parts:
            entries += removal(part, installed[part].copy(), "part removed")
    configured = configured_recipes(install_parts, recipe_of)
    # what the changed parts no longer own, and what earlier runs left pending: with the
    # removals above, the objects another part may take over (Context.handing)
    gone = {part: replaced_at_end(configured[part], changed[part])
            for part in install_parts if part in configured and part in changed
            and changed[part].get("recipe") == b[part].get("recipe", "")}
    with engine_errors("buildout", "pending removals"):
        found = pending(b["buildout"]["parts-directory"], configured)
    handed = handing([e for _r, e in entries] + [a for acts in gone.values() for a in acts]
                     + found, configured)
    # then the parts it installs or updates, in order
    for part in install_parts:
        recipe = recipe_of(part)
        name = b[part].get("recipe", "")
        old = changed.get(part)
        if not is_recipe(recipe):
            if old is not None:
                entries.append((old.get("recipe", ""),
                                PartEntry(part, old.get("recipe", ""), "uninstall")))
            verb = "update" if part in installed and old is None else "install"
            entries.append((name, PartEntry(part, name, verb)))
            continue
        if old is not None and old.get("recipe") != name:
            # another recipe now: the old configuration is uninstalled for real
            entries += removal(part, old, "part configuration changed")
            old = None
        elif old is None and part in installed:
            old = installed[part].copy()  # an update
        entries += plan_part(recipe, name, old, part in changed, images,
                             {k: p for k, p in handed.items() if p != part}, gone.get(part))
    recipes = {p: o.get("recipe", "") for p, o in installed.items()}
    recipes.update({p: b[p].get("recipe", "") for p in install_parts})
    # a pending removal is listed once, but also when another part describes the object
    # (a removed part's object that a renamed part takes over: hand_over)
    listed = {key for _, e in entries if isinstance(e, plan_mod.Action) for key in (
        (e.part, e.kind, e.name), (None, e.kind, e.name) if e.verb == "remove" else None)}
    for act in found:
        if not {(act.part, act.kind, act.name), (None, act.kind, act.name)} & listed:
            listed.add((act.part, act.kind, act.name))
            entries.append((recipes.get(act.part, "pending removal"), act))
    return entries


def configured_recipes(install_parts, recipe_of):
    """part -> recipe of the dockeroo parts of INSTALL_PARTS."""
    return {p: recipe_of(p) for p in install_parts if is_recipe(recipe_of(p))}


def is_recipe(recipe):
    """Whether RECIPE is a dockeroo recipe (:class:`dockeroo.runtime.recipe.Recipe`;
    told by what it has: that module uses this one)."""
    return callable(getattr(recipe, "plan", None)) and hasattr(recipe, "lifecycle") \
        and callable(getattr(recipe, "plan_removal", None))


def want_removed(parts):
    """Register what the configurations of PARTS ((part, old options) pairs)
    own with their engines' next batched inspect: the removals of many
    parts are planned on one round of inspects, not one inspect each."""
    for part, old in parts:
        cls = recipe_class(old.get("recipe", ""))
        if cls is None:
            continue
        try:
            engine = engine_from_options(Options(part, dict(old)))
            owned = cls.owned(old)
        except (KeyError, ValueError, UserError):
            continue  # the part's own plan reports it
        for kind, name in owned:
            if kind in INSPECT_KINDS:
                engine.want(kind, name)
            if kind in ("network", "volume"):  # the graph asks who uses it
                want_users(engine)


def removal(part, old, why):
    """The plan of uninstalling the configuration OLD of PART for real."""
    recipe = old.get("recipe", "")
    cls = recipe_class(recipe)
    if cls is None:
        return [(recipe, PartEntry(part, recipe, "uninstall"))]
    with engine_errors(part, recipe):
        return tagged(cls.plan_removal(observed_for(part, old), part, old, why), recipe)


def plan_part(recipe, name, old, changed, images, handing=None, gone=None):
    """The plan of the dockeroo part RECIPE (recipe NAME), installed with
    the options OLD before (None: new), CHANGED since.  HANDING: the plan
    context's (objects other parts hand over, ``Context.handing``); GONE:
    :func:`replaced_at_end` of a changed part, when known already."""
    part = recipe.part
    context = plan_mod.Context(old=old, images=images, planning=True, handing=handing)
    with engine_errors(part, name):
        actions = recipe.plan(context)
        if actions is None:
            return [(name, PartEntry(part, name, "maybe", "cannot plan this recipe yet"))]
        if changed and old is not None:
            # the run removes them at its end (Run.drop_pending): listed last
            actions = list(actions) + (gone if gone is not None else
                                       replaced_at_end(recipe, old))
    return tagged(actions, name)


def replaced_at_end(recipe, old):
    """What the old configuration OLD of the changed part RECIPE owned and
    its new one does not: removed at the end of the run (``at_end``)."""
    with engine_errors(recipe.part, old.get("recipe", "")):
        return [dataclasses.replace(a, at_end=True)
                for a in replaced(recipe, old, "part configuration changed")]


@contextlib.contextmanager
def engine_errors(part, recipe):
    """An engine that fails to answer is the ``Error:`` line of the real run."""
    from dockeroo.engine.errors import DockerError
    from dockeroo.model.engines import failure_text
    try:
        yield
    except (DockerError, OSError) as exc:
        raise UserError("Part [%s] (%s): %s" % (part, recipe, failure_text(exc))) from None


def tagged(actions, recipe):
    """(RECIPE, action) for each of ACTIONS."""
    return [(recipe, act) for act in actions]


def observed_for(part, old):
    """What the engine the options OLD select holds (for a removal)."""
    return plan_mod.Observed(engine_from_options(Options(part, dict(old))))


def replaced(recipe, old, why):
    """The removals of what the old configuration OLD of a changed part
    owned and the new one does not (:meth:`~dockeroo.runtime.recipe.Recipe.replaced_removals`,
    which the real run carries out once the part's turn has passed)."""
    return recipe.replaced_removals(observed_for(recipe.part, old), old, why)


def pending_parts(parts_directory):
    """The parts with a pending record (``parts/.dockeroo/pending``, see
    :mod:`dockeroo.runtime.run`): {part: [entries]}, non-empty ones only."""
    folder = os.path.join(parts_directory, STATE_DIR, "pending")
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return {}
    out = {}
    for name in names:
        entries = [e for e in read_json(os.path.join(folder, name), []) if isinstance(e, dict)]
        if entries:
            out[urllib.parse.unquote(name[:-5])] = entries
    return out


def pending(parts_directory, configured):
    """What earlier runs left to remove, removed at the end of the real run:
    replaced images once unused, and the objects of configurations an
    interrupted run left (of a part removed since, or that its current
    configuration no longer owns).  CONFIGURED: part -> dockeroo recipe."""
    out = []
    for part, entries in pending_parts(parts_directory).items():
        for entry in entries:
            if "options" in entry:
                old = dict(entry["options"])
                if part in configured:  # removed at the end of the run (Run.drop_pending)
                    out += [dataclasses.replace(a, at_end=True) for a in replaced(
                        configured[part], old, "left by an interrupted run")]
                    continue
                cls = recipe_class(old.get("recipe"))
                if cls is not None:
                    out += cls.plan_removal(observed_for(part, old), part, old,
                                            "left by an interrupted run of a removed part")
                continue
            if "image" not in entry:
                continue
            engine = engine_from_options(Options(part, dict(entry.get("engine") or {})))
            image = entry["image"]
            obj = engine.inspect("image", image)
            if obj is None or obj.get("RepoTags") or not is_owned(obj, part, entry.get("owner")):
                continue  # gone, tagged again, or not ours: the run only forgets the record
            users = users_of(engine, "image", image)
            short = image.split(":", 1)[-1][:12]
            if users:
                out.append(plan_mod.action(
                    part, "image", image, "maybe", "image %s replaced earlier; removed at the "
                    "end of the run if no container uses it then (used now by %s)"
                    % (short, ", ".join(users))))
            else:
                out.append(plan_mod.action(part, "image", image, "remove",
                                           "image %s replaced earlier, removed once unused" % short))
    return out


# -- the graph of the plan, completed and ordered ---------------------------------------------
class RunPlan:
    """The plan of a run on its graph: ENTRIES (recipe, Action or
    PartEntry) as completed by the graph, in the order the run follows;
    GRAPH, ORDER (:func:`dockeroo.model.graph.order`); DEFERRED: the
    removed parts whose removal waits for users this run replaces or
    removes (done once they are gone: ``due``)."""

    def __init__(self, entries, graph, order, deferred, handovers=None, declined=None,
                 due=None, together=None):
        self.entries, self.graph, self.order, self.deferred = entries, graph, order, deferred
        #: part -> the parts whose turn passes before its deferred removals are
        #: done (:func:`soonest`); the others' are done at the end of the run
        self.due = dict(due or {})
        #: (part, kind, name) of a network or volume recreated under users -> the parts
        #: whose containers are made again together right after it (:func:`remade_together`)
        self.together = dict(together or {})
        #: (removed part, kind, name) -> the Action of the part that takes the object over
        self.handovers = dict(handovers or {})
        #: id of a removal -> why the part that describes the same object does not take it over
        self.declined = dict(declined or {})

    def handed_over(self, part):
        """(kind, name) of the objects of the removed PART that another part takes over."""
        return [(kind, name) for p, kind, name in self.handovers if p == part]

    def taker(self, part, kind, name):
        """The Action by which PART takes over its object NAME (KIND), or None."""
        return next((a for a in self.handovers.values()
                     if (a.part, a.kind, a.name) == (part, kind, name)), None)

    def taking(self, part):
        """(kind, name) -> the part that hands it over, of the objects PART takes over."""
        return {(kind, name): p for (p, kind, name), a in self.handovers.items()
                if a.part == part}

    def part_actions(self, part):
        """The Actions of PART that change something, in the plan's order."""
        return [e for _r, e in self.entries if isinstance(e, plan_mod.Action)
                and e.part == part and e.changes]

    @property
    def blocked(self):
        return self.order.blocked

    def refusal(self):
        """The UserError text of the blocked actions (None: nothing is
        blocked).  A removal an earlier run left pending is not refused: the
        end of the run tries it, and keeps its record while it fails."""
        blocked = [(a, w) for a, w in self.order.blocked if not left_pending(a)]
        if not blocked:
            return None
        reasons = {}
        for act, why in blocked:  # one line per action, every user named
            reasons.setdefault(id(act), (act, []))[1].append(why)
        lines = []
        for act, whys in reasons.values():
            lines.append("Part [%s]: cannot %s %s %s: %s; %s" % (
                act.part, act.verb, act.kind, act.name, "; ".join(whys),
                self.declined.get(id(act)) or advice(act, whys[0])))
        return "\n".join(lines) + "\n(nothing was changed)"


#: the reasons of the removals an earlier run left pending (:func:`pending`)
PENDING_REASONS = ("left by an interrupted run", "replaced earlier")


def left_pending(act):
    """Whether ACT is a removal an earlier run left pending."""
    return any(p in r for r in act.reasons for p in PENDING_REASONS)


def advice(act, why):
    """What to do instead of the blocked ACTION."""
    if "no part of this buildout manages" in why:
        # "used by KIND NAME, which ...": a container, or a swarm service
        user = why.split()[2] if why.startswith("used by ") else "container"
        if act.verb == "remove":
            return ("remove or move that %s first, or set keep = true in [%s] to "
                    "leave the %s in place" % (user, act.part, act.kind))
        return ("remove or move that %s first, or leave the part's options as "
                "they were" % user)
    if "is configured to use it" in why:
        return "change that part to use another %s, or keep [%s] in the buildout" % (
            act.kind, act.part)
    return "change its part along with this one"


def removed_engines(directory, configured, parts_directory=None):
    """part -> engine of the removed dockeroo parts recorded in DIRECTORY's
    ``.installed.cfg`` (as their recorded options select it), and of those
    an interrupted run left a pending configuration of (PARTS_DIRECTORY's
    records, :func:`orphans`)."""
    try:
        installed = read_record(os.path.join(directory, ".installed.cfg"))
    except Exception:  # no record yet (or not one buildout reads): no removed part
        installed = {}
    found = {part: dict(values) for part, values in installed.items()
             if part not in configured and dockeroo_entry(values.get("recipe"))}
    if parts_directory is not None:
        for part, values in orphans(parts_directory, configured).items():
            found.setdefault(part, values)
    return {part: engine_from_options(Options(part, values)) for part, values in found.items()}


def left_over(parts_directory, configured):
    """Whether an interrupted run left the pending configuration of a
    CONFIGURED part (part -> Recipe) that owned a network or volume its
    current configuration does not: another part may take it over (a
    hand-over the interrupted run had planned), which only the run's plan
    knows (:func:`hand_over`)."""
    for part, entries in pending_parts(parts_directory).items():
        recipe = configured.get(part)
        if recipe is None:
            continue
        for entry in entries:
            if not isinstance(entry.get("options"), dict):
                continue
            try:
                now = set(recipe.owned(recipe.options))
                if any(kind in graph_mod.RELEASED and (kind, name) not in now
                       for kind, name in recipe.owned(entry["options"])):
                    return True
            except (KeyError, ValueError):
                continue
    return False


def orphans(parts_directory, configured):
    """part -> the options of a pending configuration (an interrupted run's
    record) of a part that CONFIGURED does not have: a part removed from
    the buildout, whose objects the end of a run removes."""
    out = {}
    for part, entries in pending_parts(parts_directory).items():
        if part in configured:
            continue
        for entry in entries:
            if isinstance(entry.get("options"), dict) and \
                    dockeroo_entry(entry["options"].get("recipe")):
                out.setdefault(part, dict(entry["options"]))
    return out


def graph_of(entries, configured, engines):
    """The RunPlan of plan ENTRIES.  CONFIGURED: part -> Recipe; ENGINES:
    part -> engine of the removed parts."""
    graph, _ = run_graph.of_plan(entries, configured, engines)
    swaps = {}
    handovers, absorbed, declined = hand_over(graph, swaps, configured)
    entries = [(r, e) for r, e in entries if id(e) not in absorbed]
    take_along(graph, swaps)
    plain_removals(graph, swaps)
    at_end = {id(new) for new in swaps.values() if new.verb == "remove"}
    at_end.update(id(e) for _r, e in entries if isinstance(e, plan_mod.Action) and e.at_end)
    entries = [(r, swaps.get(id(e), e)) for r, e in entries]
    entries, together = remade_together(graph, recreated_first(graph, entries), entries,
                                        configured)
    try:
        steps = graph_mod.order(graph)
    except graph_mod.OrderError as exc:
        raise UserError("dockeroo: %s" % exc) from None
    deferred = deferred_parts(graph, configured)
    entries, due = soonest(entries, deferred, at_end, graph)
    # the Action of a part whose container is made again together with a recreation is
    # done at the turn of the recreation's part, not at its own
    done_by = {part: key[0] for key, parts in together.items() for part in parts}
    due = {part: frozenset(done_by.get(p, p) for p in before) for part, before in due.items()}
    return RunPlan(entries, graph, steps, deferred, handovers, declined, due, together)


def _swap(graph, key, old, new, swaps):
    node = graph.nodes[key]
    node.actions = [new if a is old else a for a in node.actions]
    swaps[id(old)] = new


def handing_over(act, configured):
    """Whether the removal ACT hands its object over when a configured part
    describes it: the removal of a removed part (not in CONFIGURED), or
    what a changed part's old configuration owned and its new one does not
    (removed at the end of the run: ``at_end``, or left pending by an
    interrupted run)."""
    return act.verb == "remove" and (act.part not in configured or act.at_end
                                     or left_pending(act))


def handing(actions, configured):
    """(kind, name) -> part of the networks and volumes ACTIONS remove that a
    configured part may take over (:func:`handing_over`): what the plan
    context of the configured parts says (``Context.handing``)."""
    return {(a.kind, a.name): a.part for a in actions if isinstance(a, plan_mod.Action)
            and a.kind in graph_mod.RELEASED and handing_over(a, configured)}


def hand_over(graph, swaps, configured):
    """A network or volume that a removed part made and removes (or a part
    that stays but no longer describes it: what its old configuration owned
    is removed at the end of the run), while another configured part
    describes the same object (the part renamed; the object's name given
    to another part): a hand-over.  Docker cannot change the object's
    labels in place, so the part that takes it over (its recipe's
    ``take_over`` says whether and why) recreates it, under its users like
    any recreation (:func:`take_along`), with its own settings (its plan
    compares the object as its own: ``Context.handing``; a ``recreate``
    adds the settings that change), and the removal of the old part is no
    Action any more (its uninstall, or the end of the run, leaves the
    object to the new part).

    Returns ({(old part, kind, name): the new Action}, {ids of the removals
    absorbed}, {id of a removal: advice} for the parts that decline)."""
    handovers, absorbed, declined = {}, set(), {}
    for key, node in graph.nodes.items():
        if key[1] not in graph_mod.RELEASED:
            continue
        drops = [a for a in node.actions if handing_over(a, configured)]
        takers = [a for a in node.actions if a.verb in ("unchanged", "recreate")
                  and a.part in configured and all(a.part != d.part for d in drops)]
        if not drops or len(takers) != 1:
            continue
        kept, previous = takers[0], drops[0].part
        reasons, why_not = configured[kept.part].take_over(key[1], node.name, previous,
                                                           stays=previous in configured)
        if not reasons:
            declined.update((id(d), why_not) for d in drops if why_not)
            if not any(e.observed for e in graph.users(key)) and all(
                    d.part not in configured and not d.at_end for d in drops):
                # no container uses it: the removed part's uninstall (first in the
                # run) removes it, and the new part makes it again, empty
                _swap(graph, key, kept, plan_mod.action(
                    kept.part, kept.kind, kept.name, "create", "part %s that made it removes "
                    "it first (its data is not kept)" % previous,
                    data=kept.data, says=kept.says), swaps)
            continue
        # why it is taken over first, then the settings that change with it
        changes = kept.reasons if kept.verb == "recreate" else ()
        reasons = list(dict.fromkeys(tuple(reasons[:1]) + tuple(changes) + tuple(reasons[1:])))
        new = plan_mod.action(kept.part, kept.kind, kept.name, "recreate", *reasons,
                              data=kept.data, says=kept.says)
        _swap(graph, key, kept, new, swaps)
        node.actions = [a for a in node.actions if all(a is not d for d in drops)]
        node.part = kept.part
        for drop in drops:
            absorbed.add(id(drop))
            handovers[(drop.part, drop.kind, drop.name)] = new
    return handovers, absorbed, declined


#: what a user of a recreated network or volume becomes: a container is made
#: again, a swarm service updated (it lets go of the network, then takes the new one)
TAKEN_ALONG = {"container": "recreate", "service": "update"}


def take_along(graph, swaps):
    """A network or volume recreated under containers of this buildout's
    parts: each of those containers is recreated with it (its part's
    Action becomes ``recreate``, with the reason); a swarm service using a
    recreated overlay network is updated (``update``: it lets go of the
    network before it is removed and takes the new one after)."""
    for key, node in list(graph.nodes.items()):
        recreate = next((a for a in node.actions if a.verb == "recreate"), None)
        if recreate is None or key[1] not in graph_mod.RELEASED:
            continue
        for edge in graph.users(key):
            user = graph.nodes[edge.user]
            if not edge.observed or user.part is None:
                continue
            for act in list(user.actions):
                if act.part == user.part and act.kind in TAKEN_ALONG and act.verb in (
                        "unchanged", "repair"):
                    new = plan_mod.action(act.part, act.kind, act.name, TAKEN_ALONG[act.kind],
                                          "%s %s is recreated (%s)" % (
                                              key[1], node.name, "; ".join(recreate.reasons)),
                                          data=act.data, says=act.says)
                    _swap(graph, edge.user, act, new, swaps)


def recreated_first(graph, entries):
    """ENTRIES with each network or volume recreated under containers whose
    parts come first in the run moved before their recreations: the run
    recreates it at its own part's turn, then makes them again."""
    entries = list(entries)
    for key, node in graph.nodes.items():
        recreate = next((a for a in node.actions if a.verb == "recreate"), None)
        if recreate is None or key[1] not in graph_mod.RELEASED:
            continue
        users = {id(a) for e in graph.users(key) if e.observed
                 for a in graph.nodes[e.user].actions if a.verb == "recreate"}
        at = next((i for i, (_r, e) in enumerate(entries) if e is recreate), None)
        first = next((i for i, (_r, e) in enumerate(entries) if id(e) in users), None)
        if at is not None and first is not None and first < at:
            entries.insert(first, entries.pop(at))
    return entries


def one_step(recipe):
    """Whether RECIPE's part makes its container with one ``docker run``
    (``docker.run``, no layout, script or wait, at most one network, not
    another container's network): a released container of such a part is
    made again together with others (:func:`remade_together`)."""
    spec = getattr(recipe, "spec", None)
    return getattr(recipe, "recipe", None) == "docker.run" and spec.in_one_step and \
        not (spec.container.network or "").startswith("container:")


def remade_together(graph, entries, turns, configured):
    """ENTRIES (in the run's order) with the containers made again together
    right after each network or volume recreated under them, and
    {(part, kind, name) of that recreation: [their parts, in order]}.

    The run (:func:`dockeroo.runtime.executor.remake`) makes them again at
    once, in parallel, as soon as the new object exists: the released
    containers whose part's turn has passed (TURNS: the entries in
    buildout's order) and those of later parts whose other inputs are
    ready (:func:`ready_at`); all of parts that make their container in
    one step (:func:`one_step`).  The others are made by their own
    part's turn (or one after the other at once when that turn has
    passed), as before."""
    turn = {}
    for i, (_r, e) in enumerate(turns):
        turn.setdefault(getattr(e, "part", None), i)
    entries, together = list(entries), {}
    for key, node in graph.nodes.items():
        recreate = next((a for a in node.actions if a.verb == "recreate"), None)
        if recreate is None or key[1] not in graph_mod.RELEASED or \
                recreate.part not in configured or recreate.part not in turn:
            continue
        users = [(edge.user, act) for edge in graph.users(key) if edge.observed
                 and graph.nodes[edge.user].part is not None
                 for act in graph.nodes[edge.user].actions
                 if act.part == graph.nodes[edge.user].part and act.kind == "container"
                 and act.verb == "recreate"]
        position = {id(e): i for i, (_r, e) in enumerate(entries)}
        at = position.get(id(recreate))
        if at is None:
            continue
        here, group = turn[recreate.part], []
        for user, act in sorted(users, key=lambda u: position.get(id(u[1]), len(entries))):
            recipe = configured.get(act.part)
            if id(act) not in position or act.part not in turn or not one_step(recipe):
                continue
            if turn[act.part] < here or ready_at(graph, user, key, recipe, act, turns,
                                                 (here, turn[act.part]), position, at):
                group.append(act)
        if not group:
            continue
        ids = {id(a) for a in group}
        rest = [(r, e) for r, e in entries if id(e) not in ids]
        at = next(i for i, (_r, e) in enumerate(rest) if e is recreate) + 1
        entries = rest[:at] + [(r, e) for r, e in entries if id(e) in ids] + rest[at:]
        together[(recreate.part, recreate.kind, recreate.name)] = [a.part for a in group]
    return entries, together


def ready_at(graph, user, used, recipe, act, turns, between, position, at):
    """Whether the container USER (its part's RECIPE, its Action ACT), released
    for the recreation of USED (at index AT of the run's order, POSITION:
    id of an entry -> its index), can be made again right after it, ahead
    of its part's turn: everything else it uses exists and is not changed
    from there on (no Action on it after AT), no other part acts on the
    container, and every part whose turn comes between (BETWEEN: the
    indexes in TURNS of the two parts' turns) is a dockeroo part that
    plans (a part of another recipe could prepare or observe what the
    container uses)."""
    if any(a is not act and a.changes for a in graph.nodes[user].actions):
        return False
    first, last = between
    if any(not isinstance(e, plan_mod.Action) for _r, e in turns[first + 1:last]):
        return False
    for kind, name, _relation in recipe.uses():
        if not name:
            continue
        key = graph_mod.node_key(user[0], kind, name)
        if key == used:
            continue
        node = graph.nodes.get(key)
        acts = [a for a in (node.actions if node is not None else ()) if a.changes]
        if any(a.verb == "remove" or position.get(id(a), at + 1) > at for a in acts):
            return False
        if not acts and recipe.engine.inspect(kind, name) is None:
            return False
    return True


def plain_removals(graph, swaps):
    """An old image (``? maybe``: removed if unused at the end of the run)
    whose users are all recreated or removed in this plan: a plain removal."""
    for key, node in graph.nodes.items():
        for act in list(node.actions):
            if act.kind != "image" or act.verb != "maybe" or not act.name.startswith("sha256:"):
                continue
            users = [e.user for e in graph.users(key) if e.observed]
            if not users or not all(_replaced(graph, u) for u in users):
                continue
            names = ", ".join(sorted(graph.nodes[u].name for u in users))
            reason = act.reasons[0].split(" if no container uses it then")[0] \
                if act.reasons else "replaced"
            new = plan_mod.action(act.part, act.kind, act.name, "remove",
                                  "%s (its users %s are recreated first)" % (reason, names))
            _swap(graph, key, act, new, swaps)


def _replaced(graph, key):
    return any(a.verb in ("recreate", "remove") for a in graph.nodes[key].actions)


def deferred_parts(graph, configured):
    """The removed parts (not configured) that remove an object some
    container uses now: their removal waits until the end of the run."""
    out = set()
    for key, node in graph.nodes.items():
        for act in node.actions:
            if act.verb == "remove" and act.part not in configured and any(
                    e.observed for e in graph.users(key)):
                out.add(act.part)
    return out


def run_order(entries, deferred, at_end=(), graph=None):
    """ENTRIES in the order the run follows: the removals of DEFERRED
    parts, and the Actions of ids AT_END (marked ``at_end``, and old images
    whose users are recreated first), move after what they wait for
    (:func:`soonest`, given the GRAPH) or, without it, after the installs
    (the end of the run, with the pending removals)."""
    return soonest(entries, deferred, at_end, graph)[0]


def early(act):
    """Whether the deferred removal ACT is done as soon as what it waits for
    is done: a removal of what a part's configuration owned (the run drops
    the part's record of its options then), not of an image id replaced
    earlier (a record of its own, tried at the end of the run: it may be
    used then by a container of no part)."""
    return act.verb == "remove" and not (act.kind == "image" and act.name.startswith("sha256:"))


def soonest(entries, deferred, at_end=(), graph=None):
    """(ENTRIES in the order the run follows, {part: frozenset of parts}).

    The deferred removals (of the removed parts of DEFERRED, and the
    Actions of ids AT_END) of one part are done together, by dropping the
    part's pending record: as soon as each Action they wait for is done,
    that is right after the last of them in the run's order (the Actions
    on the objects that use what they remove, in GRAPH, and the part's own
    Actions: a changed part removes what it no longer owns once its new
    objects exist).  The map gives, for each such part, the parts whose
    turn must have passed before (:meth:`dockeroo.runtime.run.Run.drop_due`).
    The other deferred Actions (``maybe``, an image id replaced earlier),
    and those of a part whose Actions wait for nothing known, stay at the
    end of the run."""
    later = [(r, e) for r, e in entries if isinstance(e, plan_mod.Action) and (
        e.part in deferred or id(e) in at_end)]
    ids = {id(e) for _, e in later}
    out = [(r, e) for r, e in entries if id(e) not in ids]
    if graph is None:
        return out + later, {}
    blocks = {}
    for item in later:
        blocks.setdefault(item[1].part, []).append(item)
    tail, placed = [], []
    for part, block in blocks.items():
        waits = _waited_for(graph, [e for _r, e in block])
        at = [i for i, (_r, e) in enumerate(out) if isinstance(e, plan_mod.Action) and (
            id(e) in waits or e.part == part)]
        if not all(early(e) for _r, e in block) or not at:
            tail += block
            continue
        where = max(at) + 1
        while where < len(out) and id(out[where][1]) in ids:  # after the blocks placed there
            where += 1
        out[where:where] = block
        placed.append(part)
    out += tail
    due = {}
    for part in placed:
        first = next(i for i, (_r, e) in enumerate(out) if id(e) in ids and e.part == part)
        due[part] = frozenset(e.part for _r, e in out[:first] if isinstance(e, plan_mod.Action))
    return out, due


def _waited_for(graph, actions):
    """Ids of the Actions the removals ACTIONS wait for: those that make or
    remove the objects using what they remove (the users let go of it)."""
    mine = {id(a) for a in actions}
    out = set()
    for key, node in graph.nodes.items():
        if not any(id(a) in mine for a in node.actions):
            continue
        for edge in graph.users(key):
            out.update(id(a) for a in graph.nodes[edge.user].actions
                       if a.verb in graph_mod.MAKING or a.verb == "remove")
    return out


def plan_removals(directory, parts_directory):
    """The plan of a run that configures no dockeroo part (``buildout
    buildout:parts=``, or only parts of other recipes): every installed
    dockeroo part of DIRECTORY's ``.installed.cfg`` is removed, last
    installed first, then what earlier runs left pending."""
    try:
        installed = read_record(os.path.join(directory, ".installed.cfg"))
    except Exception:  # no record: nothing installed
        installed = {}
    entries = []
    parts = (installed.get("buildout") or {}).get("parts", "").split()
    olds = {p: {k: v.replace("$$", "$") for k, v in installed[p].items()}
            for p in parts if dockeroo_entry((installed.get(p) or {}).get("recipe"))}
    want_removed(olds.items())
    for part in reversed(parts):
        if part in olds:
            entries += removal(part, olds[part], "part removed")
    listed = {(e.kind, e.name) for _, e in entries}
    with engine_errors("buildout", "pending removals"):
        for act in pending(parts_directory, {}):
            if (act.kind, act.name) not in listed:
                entries.append(("pending removal", act))
    return entries
