"""Ownership: the labels every object a part creates carries, and removal by owner.

An object is a part's when its ``io.dockeroo.part`` and
``io.dockeroo.buildout`` labels name that part and buildout; nothing else is
ever removed.
"""

import hashlib
import os

from zc.buildout import UserError

from dockeroo.engine.process import DEFAULT_TIMEOUT
from dockeroo.engine.errors import InUse


LABEL_PART = "io.dockeroo.part"
LABEL_BUILDOUT = "io.dockeroo.buildout"
LABEL_FINGERPRINT = "io.dockeroo.fingerprint"
OWNER_OPTION = "dockeroo-owner"


def owner_id(directory):
    return hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]


def label_args(labels):
    args = []
    for key, value in labels.items():
        args += ["--label", "%s=%s" % (key, value)]
    return args


def is_owned(obj, part, owner):
    labels = (obj.get("Config") or {}).get("Labels") if "Config" in obj else obj.get("Labels")
    labels = labels or {}
    return labels.get(LABEL_PART) == part and labels.get(LABEL_BUILDOUT) == owner


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


LABEL_RUN = "io.dockeroo.run"
LABEL_TEMPORARY = "io.dockeroo.temporary"


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
