"""The run's graph of objects (:mod:`dockeroo.model.graph`) built from a
plan: each part's Actions, what each configured part uses
(:meth:`dockeroo.runtime.recipe.Recipe.uses`) and what the engines hold
now (the users of the objects the plan changes, read from inspect JSON).

Read-only: it asks the engines (cached inspects, ``docker ps``) and
changes nothing.  ``dockeroo plan --graph`` prints it; the executor of
issue 18 will follow its order.
"""

from dockeroo.base import references
from dockeroo.engine.errors import DockerError
from dockeroo.model import graph as graph_mod
from dockeroo.model.ownership import SERVICE_LABEL, ended_task, labels_of, network_services
from dockeroo.model.ownership import swarm_inspect
from dockeroo.model.ownership import users as users_of
from dockeroo.model.plan import Action

#: kinds whose users the engine is asked for when the plan changes them
WATCHED = ("network", "volume", "image")


def of_plan(entries, configured, engines):
    """The Graph of a plan.

    ENTRIES: (recipe name, Action or other entry) pairs (as ``dockeroo
    plan`` computes them); CONFIGURED: part -> Recipe instance; ENGINES:
    part -> engine of the parts that are not configured (removed parts).
    Returns (graph, {engine description: engine})."""
    graph = graph_mod.Graph()
    by_name = {}

    def engine_of(part):
        recipe = configured.get(part)
        engine = recipe.engine if recipe is not None else engines.get(part)
        if engine is None:
            return None
        by_name.setdefault(engine.config.description, engine)
        return engine.config.description

    users = {}
    for part, recipe in configured.items():
        where, user = engine_of(part), recipe.user()
        if user is None:
            continue
        users[part] = graph.node(where, user[0], user[1], part)
        for used_kind, used_name, relation in recipe.uses():
            if used_name:
                graph.add_use(users[part], used_kind, used_name, relation, configured=True)
    for _recipe, entry in entries:
        if not isinstance(entry, Action):
            continue
        recipe = configured.get(entry.part)
        key = users.get(entry.part) if recipe is not None and recipe.actions_on_user else None
        where = engine_of(entry.part)
        if where is None:
            continue
        graph.add_action(where, entry, key)
    observe(graph, by_name)
    return graph, by_name


def observe(graph, engines):
    """Add what ENGINES hold now: the uses of the containers of GRAPH, and
    the containers that use the networks, volumes and images the plan
    changes (any container, of a part or not)."""
    image_ids = {}
    for key, node in list(graph.nodes.items()):
        engine = engines.get(key[0])
        if engine is not None and node.kind == "image":
            obj = engine.inspect("image", node.name)
            if obj is not None:
                image_ids[(key[0], obj["Id"])] = node.name
    for key, node in list(graph.nodes.items()):
        engine = engines.get(key[0])
        if engine is None:
            continue
        if node.kind in WATCHED and any(a.verb in ("remove", "recreate") or (
                a.verb == "maybe" and a.name.startswith("sha256:")) for a in node.actions):
            if node.kind == "image" and not _last_name(engine, node.name):
                continue  # removing one of its tags only untags it: its users keep it
            for name in users_of(engine, node.kind, node.name):
                user = _user_key(graph, engine, key[0], name)
                if user is not None:
                    graph.add_use(user, node.kind, node.name, node.kind, observed=True)
            if node.kind == "network":  # an overlay network: the services that name it
                for name in network_services(engine, engine.inspect("network", node.name)):
                    graph.add_use(graph.node(key[0], "service", name), "network", node.name,
                                  "network", observed=True)
    for key, node in list(graph.nodes.items()):
        engine = engines.get(key[0])
        if engine is not None and node.kind == "service":
            obj = _service(engine, node.name)
            for kind, name, relation in graph_mod.service_uses(obj or {}):
                graph.add_use(key, kind, name, relation, observed=True)
    for key, node in list(graph.nodes.items()):
        engine = engines.get(key[0])
        if engine is not None and node.kind == "container":
            obj = engine.inspect("container", node.name)
            if obj is not None:
                ids = {i: n for (e, i), n in image_ids.items() if e == key[0]}
                graph.add_observed(key, obj, ids)
    return graph


def _last_name(engine, name):
    """Whether removing image NAME removes the image, not just one of its
    references: NAME is its id, or no other tag or digest stays (Docker
    drops a repository's digests with its last tag there)."""
    obj = engine.inspect("image", name)
    if obj is None:
        return False
    if references.is_image_id(name):
        return True
    try:
        ref = references.parse(name).normalized()
    except references.ReferenceError:
        return True
    # Podman tags what it builds, imports and commits as localhost/NAME
    spellings = (ref, ref.local()) if ref.is_hub else (ref,)
    others = []
    for text in (obj.get("RepoTags") or []) + (obj.get("RepoDigests") or []):
        try:
            found = references.parse(text).normalized()
        except references.ReferenceError:  # "<none>:<none>"
            continue
        if found not in spellings:
            others.append(found)

    def same_repository(other):
        return any(other.same_repository(s) for s in spellings)
    if not ref.digest and not any(not o.digest and same_repository(o) for o in others):
        others = [o for o in others if not same_repository(o)]
    return not others


def _service(engine, name):
    """The ``docker service inspect`` JSON of service NAME, or None (none
    such, or the engine is no swarm manager).  The swarm recipes' own
    inspect (:func:`dockeroo.model.ownership.swarm_inspect`, which
    :mod:`dockeroo.recipes.common.swarm` names ``inspect``) answers None for
    the first only."""
    try:
        return swarm_inspect(engine, "service", name)
    except DockerError:
        return None


def _user_key(graph, engine, where, name):
    """The node of the user of an object: container NAME, or its service when
    it is a swarm task's container (the service, which a part may manage,
    uses the object; its task containers come and go with it).  None for
    the stopped container of an ended task, which the swarm keeps for the
    task's history: it uses nothing any more (its service may be gone, or
    no longer on that network)."""
    service = labels_of(engine.inspect("container", name) or {}).get(SERVICE_LABEL)
    if service and ended_task(engine, name):
        return None
    if service:
        return graph.node(where, "service", service)
    return graph.node(where, "container", name)
