"""Ownership: the labels every object a part creates carries, and removal by owner.

An object is a part's when its ``io.dockeroo.part`` and
``io.dockeroo.buildout`` labels name that part and buildout; nothing else is
ever removed.
"""

import hashlib
import os
import time

from zc.buildout import UserError

from dockeroo.engine.commands import repeated
from dockeroo.engine.process import DEFAULT_TIMEOUT
from dockeroo.engine.errors import DockerError, InUse


LABEL_PART = "io.dockeroo.part"
LABEL_BUILDOUT = "io.dockeroo.buildout"
LABEL_FINGERPRINT = "io.dockeroo.fingerprint"
OWNER_OPTION = "dockeroo-owner"


def owner_id(directory):
    return hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]


def label_args(labels):
    return repeated("--label", ["%s=%s" % item for item in labels.items()])


def labels_of(obj):
    """The labels of an inspected object (``{}`` when it has none): a
    container's or image's ``Config.Labels``, a swarm object's
    ``Spec.Labels``, a volume's or network's ``Labels``."""
    obj = obj or {}
    if "Config" in obj:
        labels = (obj.get("Config") or {}).get("Labels")
    elif "Spec" in obj:
        labels = (obj.get("Spec") or {}).get("Labels")
    else:
        labels = obj.get("Labels")
    return labels or {}


def is_owned(obj, part, owner):
    labels = labels_of(obj)
    return labels.get(LABEL_PART) == part and labels.get(LABEL_BUILDOUT) == owner


#: how long an image may stay "in use" by containers that no longer exist
#: (seen once on Podman, right after the part's last user was removed)
USER_GONE_WITHIN = 5


def remove_object(engine, kind, name, part, owner, log, timeout=DEFAULT_TIMEOUT,
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
            stop_containers(engine, [name], int(stop_timeout), log, timeout=timeout)
        remove_container(engine, name, timeout=timeout)
    elif kind == "image":
        deadline = time.monotonic() + USER_GONE_WITHIN
        while True:
            try:
                remove_image(engine, name, timeout=timeout)
                break
            except InUse as exc:
                users = containers_named_in(engine, exc.container_ids(obj.get("Id", "")))
                if not users and time.monotonic() < deadline:
                    time.sleep(0.5)  # a container just removed: Podman may still hold the image
                    continue
                raise UserError("Part [%s]: image %s is still used by container(s) %s; remove "
                                "or recreate them from another image first (nothing was "
                                "removed)" % (part, name, ", ".join(users) or "(unknown)"))
    elif kind == "volume":
        try:
            engine.run(["volume", "rm", name], timeout=timeout)
        except InUse:
            raise UserError("Part [%s]: volume %s is still used by container(s) %s; "
                            "remove them first (nothing was removed)"
                            % (part, name, ", ".join(users(engine, "volume", name))
                               or "(unknown)"))
    elif kind == "network":
        # the stopped container of a swarm task that has ended holds nothing
        using = [u for u in network_users(engine, name, obj) if not ended_task(engine, u)]
        if using:  # Docker would remove it under stopped containers and break them
            raise UserError("Part [%s]: network %s is still used by container(s) %s; "
                            "remove them first (nothing was removed)"
                            % (part, name, ", ".join(using)))
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
    attached = {c.get("Name") for c in ((obj or {}).get("Containers") or {}).values()}
    listed = users(engine, "network", name, check=True)
    return sorted(u for u in attached | set(listed) if u)


#: the label Docker gives the container of a swarm service's task
SERVICE_LABEL = "com.docker.swarm.service.name"


def swarm_inspect(engine, kind, name, timeout=60):
    """``docker KIND inspect NAME`` of an object of the swarm's store
    (service, secret, config, node), or None when there is none such (an
    engine that is no swarm manager raises DockerError)."""
    from dockeroo.engine.errors import NotFound
    try:
        found = engine.json([kind, "inspect", "--", name], timeout=timeout) or []
    except NotFound:
        return None
    return found[0] if found else None


def network_services(engine, network):
    """Names of the swarm services whose spec attaches their tasks to the
    network of inspect JSON NETWORK (a swarm-scoped network, named by its
    id), wherever their tasks run: a manager knows them all.  [] for a
    network of no swarm, or an engine that is no manager.  A service removed
    (by anyone) between the listing and the inspect is only missing: the
    others are still read."""
    from dockeroo.engine.errors import DockerError
    if not network or network.get("Scope") != "swarm":
        return []
    try:
        ids = engine.run(["service", "ls", "--quiet"]).stdout.split()
        found = engine.inspect_existing("service", ids)
    except DockerError:
        return []
    out = set()
    for service in found or []:
        spec = service.get("Spec") or {}
        attached = ((spec.get("TaskTemplate") or {}).get("Networks") or []) + (
            spec.get("Networks") or [])  # the old place, still read by the engine
        if any(n.get("Target") in (network.get("Id"), network.get("Name")) for n in attached):
            out.add(spec.get("Name"))
    return sorted(n for n in out if n)


def ended_task(engine, name):
    """Whether container NAME is the stopped container of a swarm task (the
    swarm keeps it for the task's history; it is not a user any more)."""
    obj = engine.inspect("container", name) or {}
    return "com.docker.swarm.task.id" in labels_of(obj) and not (
        obj.get("State") or {}).get("Running")


_USER_FILTERS = {"image": "ancestor",
                 "label": "label"}


def users(engine, kind, name, check=False):
    """Names of the containers, running or stopped, that use the volume,
    network or image (KIND) NAME, or (KIND ``label``) carry the label NAME
    (``KEY=VALUE``).  Without CHECK, a failed query finds none."""
    if kind in _LISTED:
        try:
            listed = engine.listing(_LISTING)
        except DockerError:
            if check:
                raise
            return []
        column = _LISTED[kind]
        # each container's own list decides (a filter on a network also
        # matches the other networks whose name starts with NAME)
        return [fields[0] for fields in (line.split("\t") for line in listed.splitlines())
                if len(fields) == 3 and name in fields[column].split(",")]
    if kind == "image":
        # by the image's id: Podman's ancestor filter compares a name only
        # with the name the container was created with, spelled the same
        found = engine.inspect("image", name)
        if found is None:
            return []
        name = found["Id"].split(":", 1)[-1]
    return engine.run(["ps", "--all", "--filter", "%s=%s" % (_USER_FILTERS[kind], name),
                       "--format", "{{.Names}}"], check=check).stdout.split()


def want_users(engine):
    """Have the next batch of inspects also list who uses each network and
    volume (the one ``ps`` :func:`users` reads), beside them, not after."""
    engine.want_listing(_LISTING)


#: every container with its networks and mounts (volume names, bind sources): one
#: ``ps`` answers who uses each network and volume until something changes
#: (:meth:`DockerEngine.listing`)
_LISTING = ("ps", "--all", "--no-trunc", "--format", "{{.Names}}\t{{.Networks}}\t{{.Mounts}}")
_LISTED = {"network": 1, "volume": 2}


#: how long ``docker stop`` waits when a container has no stop timeout of its own
DOCKER_STOP_TIMEOUT = 10


def stop_containers(engine, names, seconds, log, timeout=DEFAULT_TIMEOUT, check=True):
    """``docker stop --time SECONDS NAMES`` (``--time`` always: without it Podman
    kills at once), in one command; says how long it may wait."""
    log.info("Waiting up to %s s for %s to stop (stop-timeout)", seconds, ", ".join(names))
    return engine.run(["stop", "--time", str(seconds)] + list(names), timeout=timeout + seconds,
                      check=check)


def remove_containers(engine, names, timeout=DEFAULT_TIMEOUT, check=True):
    """``docker rm --force --volumes NAMES``: the containers NAMES (running
    or not) with their anonymous volumes, in one command; the engine forgets
    them.  Returns the command's Result (its stdout names those removed)."""
    names = list(names)
    try:
        return engine.run(["rm", "--force", "--volumes"] + names, timeout=timeout, check=check)
    finally:
        for name in names:
            engine.forget("container", name)


def remove_container(engine, name, timeout=DEFAULT_TIMEOUT, check=True):
    """Remove the container NAME (see :func:`remove_containers`)."""
    return remove_containers(engine, [name], timeout=timeout, check=check)


def remove_image(engine, ref, timeout=DEFAULT_TIMEOUT, check=True):
    """``docker image rm REF`` (a tag is untagged; an id or the last tag
    removes the image); the engine forgets it once removed.  Returns the
    command's Result."""
    result = engine.run(["image", "rm", ref], timeout=timeout, check=check)
    if result.returncode == 0:
        engine.forget("image", ref)
    return result


LABEL_RUN = "io.dockeroo.run"
LABEL_TEMPORARY = "io.dockeroo.temporary"
#: the end of the name of a container made under a temporary name and renamed to
#: its final name when complete, before the run's id (labels cannot be taken off a
#: container, so it carries no temporary label: the next run finds it by its name)
RENAMED_TEMPORARY = "-dockeroo-new-"


def renamed_temporary(name, run_id):
    """The temporary name of container NAME made by run RUN_ID."""
    return "%s%s%s" % (name, RENAMED_TEMPORARY, run_id[:12])


def containers_named_in(engine, ids):
    """Names of the containers with these IDS (or id prefixes), e.g. those an
    "image is in use" answer names (:meth:`InUse.container_ids`; Podman's
    ``ps --filter ancestor=`` finds nothing)."""
    if not ids:
        return []
    listed = engine.run(["ps", "--all", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
                        check=False).stdout.splitlines()
    return [line.split(" ", 1)[1] for line in listed
            if " " in line and any(line.startswith(i) for i in ids)]
