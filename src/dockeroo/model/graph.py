"""The run's graph of objects: Docker objects, who uses what, and the
Actions of the plan on them (issue 18; see docs/plan.rst, ``--graph``).

Pure: nothing here asks an engine.  A node is a Docker object (its kind,
its name and the engine it lives on); an edge runs from a user to what it
uses:

- a container to its image, named volumes, networks, ``volumes-from`` and
  ``links`` containers;
- a copy part to its source and target containers;
- a service to its image, secrets, configs and networks;
- a gentoo image to its base image and builder.

The uses come from two sources: what each part's configuration says
(``Recipe.uses()``: the new configuration) and what the engine holds now
(:func:`observed_uses` reads a container's inspect JSON).  Each plan
:class:`~dockeroo.model.plan.Action` is attached to its node.

:func:`order` computes the order a careful operator would follow, in
batches of steps that could run in parallel; ``dockeroo plan --graph``
shows it.  The run's executor (:mod:`dockeroo.runtime.executor`) refuses
what it cannot place; buildout's turns give the run its sequence
(:func:`dockeroo.runtime.runplan.soonest`).
"""

import dataclasses
from typing import Tuple

from dockeroo.model.plan import SIGNS, normal_ref

#: networks every engine has: not objects of a part, never nodes
PREDEFINED_NETWORKS = ("bridge", "host", "none", "default")
#: verbs that make or change an object (its "make" step)
MAKING = ("create", "recreate", "update", "repair", "maybe")
#: kinds whose old object must be let go by its users before it is recreated
#: (``docker network rm`` / ``docker volume rm`` refuse while a container uses it)
RELEASED = ("network", "volume")


# -- nodes and edges ---------------------------------------------------------------------
def node_key(engine, kind, name):
    """The identity of an object: (engine, kind, name), an image's reference
    fully qualified (``x`` and ``docker.io/library/x:latest`` are one
    object), a container's name without Docker's leading ``/``."""
    if kind == "image" and not name.startswith("sha256:"):
        name = normal_ref(name)
    elif kind == "container":
        name = name.lstrip("/")
    return (engine, kind, name)


@dataclasses.dataclass
class Node:
    engine: str
    kind: str
    name: str               # as the configuration (or the engine) first named it
    part: str = None        # the part that manages it (None: no part of this buildout)
    actions: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Edge:
    user: tuple             # node keys
    used: tuple
    relations: Tuple[str, ...] = ()   # network, volume, image, volumes-from, link, source, ...
    configured: bool = False          # the (new) configuration of the user says so
    observed: bool = False            # the engine holds it now


class Graph:
    """Objects, their uses, and the Actions of the plan on them."""

    def __init__(self):
        self.nodes = {}     # key -> Node
        self.edges = {}     # (user key, used key) -> Edge

    def node(self, engine, kind, name, part=None):
        """The key of the object (added when new); PART manages it."""
        key = node_key(engine, kind, name)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = Node(engine, kind, key[2] if kind == "container" else name)
        if part and node.part is None:
            node.part = part
        return key

    def add_action(self, engine, act, key=None):
        """Attach the plan Action ACT (of an object on ENGINE) to its node
        (or to the node of key KEY)."""
        key = key or self.node(engine, act.kind, act.name, act.part)
        self.nodes[key].actions.append(act)
        return key

    def add_use(self, user, kind, name, relation, configured=False, observed=False):
        """The object of key USER uses KIND NAME (on its engine)."""
        if kind == "network" and name in PREDEFINED_NETWORKS:
            return None
        used = self.node(user[0], kind, name)
        if used == user:
            return None
        edge = self.edges.get((user, used))
        if edge is None:
            edge = self.edges[(user, used)] = Edge(user, used)
        if relation not in edge.relations:
            edge.relations += (relation,)
        edge.configured |= configured
        edge.observed |= observed
        return edge

    def add_observed(self, user, obj, image_ids=None):
        """The uses the engine holds for the container of key USER, from its
        inspect JSON OBJ (IMAGE_IDS: image id -> reference, to name the
        image by the reference a node has)."""
        for kind, name, relation in observed_uses(obj):
            if kind == "image":
                name = (image_ids or {}).get(name, name)
            self.add_use(user, kind, name, relation, observed=True)

    def users(self, key):
        return [e for (u, k), e in self.edges.items() if k == key]

    def uses(self, key):
        return [e for (u, k), e in self.edges.items() if u == key]

    def parts(self):
        """{part: [node keys]}: the nodes each part manages or acts on (a node
        under the first of them)."""
        out = {}
        for key, node in self.nodes.items():
            for part in ([node.part] if node.part else []) + [a.part for a in node.actions]:
                keys = out.setdefault(part, [])
                if key not in keys:
                    keys.append(key)
        return out


def observed_uses(obj):
    """(kind, name, relation) of what a container uses, from its inspect JSON:
    its image (``Image``: the id), named volumes (``Mounts``), networks
    (``NetworkSettings.Networks``), ``HostConfig.VolumesFrom`` and
    ``HostConfig.Links`` containers.  Docker's predefined networks are left
    out (no part makes them)."""
    out = []
    if obj.get("Image"):
        out.append(("image", obj["Image"], "image"))
    for mount in obj.get("Mounts") or ():
        if mount.get("Type") == "volume" and mount.get("Name"):
            out.append(("volume", mount["Name"], "volume"))
    for name in sorted(((obj.get("NetworkSettings") or {}).get("Networks") or {})):
        if name not in PREDEFINED_NETWORKS:
            out.append(("network", name, "network"))
    host = obj.get("HostConfig") or {}
    for line in host.get("VolumesFrom") or ():
        out.append(("container", line.split(":", 1)[0], "volumes-from"))
    for line in host.get("Links") or ():
        # "/other:/me/alias"
        out.append(("container", line.split(":", 1)[0].lstrip("/"), "link"))
    return out


def service_uses(obj):
    """(kind, name, relation) of the secrets and configs a swarm service
    uses, from its ``docker service inspect`` JSON (its networks are seen
    through its task containers, and for a network the plan removes or
    recreates, through the services whose spec names it:
    :func:`dockeroo.runtime.graph.observe`)."""
    spec = ((obj.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return ([("secret", s["SecretName"], "secret") for s in spec.get("Secrets") or ()
             if s.get("SecretName")]
            + [("config", c["ConfigName"], "config") for c in spec.get("Configs") or ()
               if c.get("ConfigName")])


# -- the order a careful operator follows -------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Step:
    """One thing to do: an Action's ``make`` (create, recreate, update,
    repair, maybe) or ``drop`` (remove) step, or the ``release`` of a
    recreated object's old version by a user that is replaced or removed
    with it (stopped, let go of the object)."""

    phase: str        # make, drop, release
    action: object    # the Action
    node: tuple       # its node key
    of: tuple = None  # release: the key of the object let go of

    def line(self):
        act = self.action
        if self.phase == "release":
            return "release %s %s (let go of %s %s)" % (act.kind, act.name, self.of[1], self.of[2])
        return "%s %s %s %s" % (SIGNS[act.verb], act.verb, act.kind, act.name)

    def sort_key(self):
        return (self.action.part, self.action.kind, self.action.name, self.phase)


@dataclasses.dataclass
class Order:
    """BATCHES: lists of Steps, each batch's steps independent of each other
    (they could run in parallel), every batch after the one before;
    BLOCKED: (Action, reason) pairs the order cannot place: the run must
    refuse them before anything changes."""

    batches: list
    blocked: list

    def batch_of(self, act):
        """The index (from 1) of the batch holding ACT's make or drop step, or None."""
        for index, batch in enumerate(self.batches, 1):
            if any(s.action is act and s.phase != "release" for s in batch):
                return index
        return None


class OrderError(ValueError):
    """The steps depend on each other in a circle."""


def order(graph):
    """The Order of the Actions of GRAPH that change something.

    - a used object is made before its users are made; the Actions on one
      object follow each other in the order of the plan;
    - replace before destroy: a part's drops come after its own makes
      (what a changed part no longer owns goes once its new objects
      exist), but a removal that a creation of the same object waits for
      (another part makes an object of the same name) comes first;
    - an object is dropped only after each user is dropped or replaced
      (recreated); a user that keeps it, or that no part manages, blocks
      the removal;
    - a network or volume recreated under users: each user is released
      first and made again after it; a user that is not replaced with it
      blocks the recreation.
    """
    steps, after, blocked = {}, {}, []    # step id -> Step; step id -> ids it waits for
    makes, drops = {}, {}                 # node key -> step ids
    for key, node in graph.nodes.items():
        previous = None
        for index, act in enumerate(node.actions):
            phase = "make" if act.verb in MAKING else "drop" if act.verb == "remove" else None
            if phase is None:
                continue
            sid = (phase, key, index)
            steps[sid], after[sid] = Step(phase, act, key), set()
            (makes if phase == "make" else drops).setdefault(key, []).append(sid)
            if previous is not None and not (phase == "drop" and previous[0] == "make"):
                after[sid].add(previous)
            previous = sid

    def wait(later, first):
        for step in later:
            after[step].update(s for s in first if s != step)

    early_drops = set()
    for key in graph.nodes:
        if key in makes and key in drops:
            # the same name made again by another part: the old one goes first
            wait(makes[key], drops[key])
            early_drops.update(drops[key])
    for (user, used), edge in graph.edges.items():
        user_node = graph.nodes[user]
        user_makes, user_drops = makes.get(user, []), drops.get(user, [])
        # a swarm service's update replaces its tasks: they let go of what it used
        renewing = ("recreate", "update") if user[1] == "service" else ("recreate",)
        replaced = bool(user_drops) or any(steps[s].action.verb in renewing for s in user_makes)
        wait(user_makes, makes.get(used, []))
        if used in drops and used not in makes:
            act = steps[drops[used][0]].action
            if edge.configured and not user_drops:
                blocked.append((act, "%s %s is configured to use it" % (user[1], user_node.name)))
            elif edge.observed and user_node.part is None:
                blocked.append((act, "used by %s %s, which no part of this buildout manages"
                                % (user[1], user_node.name)))
            elif edge.observed and not replaced:
                blocked.append((act, "used by %s %s, which is neither removed nor replaced"
                                % (user[1], user_node.name)))
            wait(drops[used], user_makes + user_drops)
        recreated = [s for s in makes.get(used, []) if steps[s].action.verb == "recreate"]
        if recreated and used[1] in RELEASED and edge.observed:
            act = steps[recreated[0]].action
            if user_node.part is None:
                blocked.append((act, "used by %s %s, which no part of this buildout manages"
                                % (user[1], user_node.name)))
            elif not replaced:
                blocked.append((act, "used by %s %s, which is not replaced with it"
                                % (user[1], user_node.name)))
            else:
                sid = ("release", user, used)
                steps[sid] = Step("release", steps[(user_makes or user_drops)[0]].action, user, used)
                after[sid] = set()
                wait(recreated, [sid])
                wait(user_makes, [sid])
    # replace before destroy: what a part no longer owns goes once its new objects exist
    for drop in [s for s in steps if s[0] == "drop" and s not in early_drops]:
        part = steps[drop].action.part
        for other in steps:
            if other[0] == "make" and steps[other].action.part == part and \
                    drop not in _ancestors(after, other):
                after[drop].add(other)
    return Order(_levels(steps, after), blocked)


def _ancestors(after, step):
    seen, todo = set(), [step]
    while todo:
        for first in after[todo.pop()]:
            if first not in seen:
                seen.add(first)
                todo.append(first)
    return seen


def _levels(steps, after):
    """The steps in batches: each step one batch after the last it waits for."""
    level, todo = {}, set(steps)
    while todo:
        ready = [s for s in todo if all(f in level for f in after[s])]
        if not ready:
            raise OrderError("these steps wait for each other: %s" % ", ".join(
                sorted(steps[s].line() for s in todo)))
        for s in ready:
            level[s] = 1 + max((level[f] for f in after[s]), default=0)
        todo -= set(ready)
    batches = [[] for _ in range(max(level.values(), default=0))]
    for s, index in level.items():
        batches[index - 1].append(steps[s])
    return [sorted(b, key=Step.sort_key) for b in batches]


# -- Graphviz --------------------------------------------------------------------------
COLORS = {"create": "darkgreen", "recreate": "darkorange", "update": "darkorange",
          "repair": "purple", "remove": "red", "maybe": "blue", "unchanged": "gray40"}


def dot(graph, the_order=None, recipes=None, others=()):
    """GRAPH as Graphviz DOT: one cluster per part (its objects, each Action
    with its verb, reasons and batch), the objects of no part outside,
    an edge from each user to what it uses (dashed: only the engine holds
    it now, the configuration no longer says so; bold: only the
    configuration says so, the engine does not hold it yet).
    RECIPES: part -> recipe name, in the order of the plan; OTHERS: (part, recipe, line) of parts
    that are not dockeroo's."""
    recipes = recipes or {}
    engines = {k[0] for k in graph.nodes}

    def ident(key):
        text = "%s %s" % (key[1], graph.nodes[key].name)
        if len(engines) > 1:
            text += " @ %s" % key[0]
        return quote(text)

    def label(key):
        node = graph.nodes[key]
        lines = ["%s %s" % (node.kind, node.name)]
        for act in node.actions:
            batch = the_order.batch_of(act) if the_order is not None else None
            what = "" if node_key(key[0], act.kind, act.name) == key else \
                " %s %s" % (act.kind, act.name)
            by = "" if act.part == node.part else " [%s]" % act.part
            lines.append("%s %s%s%s%s" % (SIGNS[act.verb], act.verb, what, by,
                                          " (batch %d)" % batch if batch else ""))
            lines += ["  " + r for r in act.reasons]
        if node.part is None and not node.actions:
            lines.append("(no part of this buildout)")
        return "\\l".join(escape(x) for x in lines) + "\\l"

    def attributes(key):
        node = graph.nodes[key]
        verbs = [a.verb for a in node.actions if a.changes] or [a.verb for a in node.actions]
        attrs = ["label=%s" % quote_raw(label(key))]
        if verbs:
            attrs.append('color="%s"' % COLORS[verbs[0]])
            attrs.append('fontcolor="%s"' % COLORS[verbs[0]])
        else:
            attrs.append("style=dashed")
        return "%s [%s];" % (ident(key), ", ".join(attrs))

    out = ["digraph dockeroo {", "  rankdir=LR;", "  compound=true;",
           '  node [shape=box, fontname="monospace", fontsize=10];',
           '  edge [fontname="monospace", fontsize=9];']
    placed = set()
    clusters = graph.parts()
    for part, _recipe, _line in others:
        clusters.setdefault(part, [])
    # the parts in the order of the plan (RECIPES' order), the others after
    rank = {part: index for index, part in enumerate(recipes)}
    clusters = dict(sorted(clusters.items(), key=lambda item: rank.get(item[0], len(rank))))
    for index, (part, keys) in enumerate(clusters.items()):
        head = "[%s]" % part + (" (%s)" % recipes[part] if part in recipes else "")
        out.append("  subgraph cluster_%d {" % index)
        out.append("    label=%s;" % quote(head))
        out.append('    style=rounded; color="gray60";')
        for key in keys:
            if key not in placed:
                placed.add(key)
                out.append("    " + attributes(key))
        for other_part, recipe, line in others:
            if other_part == part:
                out.append("    %s [label=%s, shape=note];" % (quote("part " + part), quote(line)))
        out.append("  }")
    for key in graph.nodes:
        if key not in placed:
            out.append("  " + attributes(key))
    for (user, used), edge in graph.edges.items():
        attrs = ["label=%s" % quote(", ".join(edge.relations))]
        if not edge.configured:
            attrs.append("style=dashed")
        elif not edge.observed:
            attrs.append("style=bold")
        out.append("  %s -> %s [%s];" % (ident(user), ident(used), ", ".join(attrs)))
    if the_order is not None:
        for act, why in the_order.blocked:
            out.append("  // blocked: %s %s %s: %s" % (act.verb, act.kind, act.name, why))
        for index, batch in enumerate(the_order.batches, 1):
            out.append("  // batch %d: %s" % (index, "; ".join(s.line() for s in batch)))
    out.append("}")
    return "\n".join(out) + "\n"


def escape(text):
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def quote(text):
    return '"%s"' % escape(text)


def quote_raw(text):
    """TEXT already escaped (with ``\\l`` line ends)."""
    return '"%s"' % text
