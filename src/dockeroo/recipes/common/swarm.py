"""Helpers of the swarm recipes (docker.service, docker.secret, docker.config).

Swarm objects (services, secrets, configs) live in the swarm's store on a
manager: they are looked up here with their own ``inspect`` (not with the
engine's batched container/image/network/volume cache).
"""

import hashlib
import hmac
import os

from zc.buildout import UserError

from dockeroo.base.state import key_file
from dockeroo.model import plan as plan_mod
from dockeroo.engine.errors import DockerError
from dockeroo.model.ownership import (LABEL_BUILDOUT, LABEL_PART, OWNER_OPTION, is_owned,
    network_users, swarm_inspect)

#: the kinds of objects that live in the swarm's store
KINDS = ("service", "secret", "config", "node")

#: the file under the parts directory holding the key of the content hashes
KEY_FILE = ".dockeroo-swarm-key"


#: ``docker KIND inspect NAME`` (service, secret, config, node) or None (one
#: implementation, below the runtime: its graph and executor ask it too)
inspect = swarm_inspect


is_ours = is_owned  # a swarm object's labels are its Spec.Labels (see labels_of)


def labelled(engine, kind, part, owner, timeout=60):
    """Names of the KIND objects (secret, config, service) made by PART of OWNER."""
    result = engine.run([kind, "ls", "--filter", "label=%s=%s" % (LABEL_PART, part),
                         "--filter", "label=%s=%s" % (LABEL_BUILDOUT, owner),
                         "--format", "{{.Name}}"], timeout=timeout)
    return sorted(set(result.stdout.split()))


def is_manager(engine):
    """Whether ENGINE is an active swarm manager (one ``docker info``, cached).

    An engine that is not cannot hold a part's services, secrets or
    configs: their uninstall has nothing to do there (a part whose install
    failed for that reason is still recorded, see :mod:`dockeroo.runtime.run`).
    """
    swarm = engine.info().get("Swarm") or {}
    return swarm.get("LocalNodeState") == "active" and bool(swarm.get("ControlAvailable"))


def check_manager(observed, part, recipe, what="this part"):
    """UserError unless the engine OBSERVED answers for is an active swarm manager."""
    where = observed.get("engine", "description") or "the engine"
    try:
        info = observed.get("info", "") or {}
    except DockerError as exc:
        raise UserError("Part [%s] (%s): cannot ask %s whether it is a swarm manager: %s"
                        % (part, recipe, where, exc))
    swarm = info.get("Swarm") or {}
    state = swarm.get("LocalNodeState") or "inactive"
    if state != "active" or not swarm.get("ControlAvailable"):
        why = ("is not in swarm mode (swarm: %s)" % state if state != "active"
               else "is a swarm worker, not a manager")
        raise UserError("Part [%s] (%s): %s needs a swarm manager, but %s %s; run "
                        "'docker swarm init' there, or point engine-url (or the docker "
                        "context) at a manager of the cluster. Nothing was created."
                        % (part, recipe, what, where, why))


class Observed(plan_mod.Observed):
    """What the engine holds, with the swarm's objects and a few facts:

    - ``("service" | "secret" | "config", NAME)``: the object's inspect JSON, or None;
    - ``("secret-versions" | "config-versions", PART)``: the names of the
      versions the part (of OWNER) made;
    - ``("network-users", NAME)``: the containers attached to network NAME;
    - ``("info", "")``: ``docker info``; ``("engine", "kind")``: docker or
      podman; ``("engine", "description")``: where the engine is.
    """

    def __init__(self, engine=None, recorded=None, owner=None):
        super().__init__(engine, recorded)
        self.owner = owner

    @classmethod
    def of(cls, observed, owner):
        """OBSERVED (a plain :class:`dockeroo.model.plan.Observed`) with the swarm's objects."""
        return cls(observed.engine, observed._recorded, owner)

    def get(self, kind, name):
        if self.engine is None:
            return super().get(kind, name)
        if kind in KINDS:
            return inspect(self.engine, kind, name)
        if kind.endswith("-versions"):
            return labelled(self.engine, kind[:-len("-versions")], name, self.owner)
        if kind == "network-users":
            return network_users(self.engine, name, self.engine.inspect("network", name))
        if kind == "info":
            return self.engine.info()
        if kind == "engine":
            return self.engine.kind if name == "kind" else self.engine.config.description
        return super().get(kind, name)


def removal(observed, part, old, kind, names, why):
    """The actions of uninstalling the KIND objects NAMES (None: the part's
    labelled versions) of the configuration OLD of PART, as ``remove``
    does: nothing on an engine that is not a manager, ``keep`` honoured,
    an object of someone else left."""
    from dockeroo.model.options import removal_settings
    observed = Observed.of(observed, old.get(OWNER_OPTION))
    swarm = (observed.get("info", "") or {}).get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        return []
    keep, _timeout = removal_settings(part, old)
    actions = []
    for name in names if names is not None else observed.get(kind + "-versions", part) or ():
        obj = observed.get(kind, name)
        if obj is None:
            continue
        if keep:
            actions.append(plan_mod.action(part, kind, name, "unchanged", "keep = true: left in place"))
        elif not is_ours(obj, part, old.get(OWNER_OPTION)):
            actions.append(plan_mod.action(part, kind, name, "unchanged", "not created by this part"))
        else:
            actions.append(plan_mod.action(part, kind, name, "remove", why))
    return actions


def absent(part, kind, name, context):
    """The Action for the missing object NAME of a part: create, or repair
    when the part is installed with the same name (removed by hand)."""
    old = context.old
    if old is None:
        return plan_mod.action(part, kind, name, "create", "new part")
    was = old.get(kind) or old.get("name")
    if was != name:
        return plan_mod.action(part, kind, name, "create", "option 'name' changed (was %s)" % was)
    return plan_mod.action(part, kind, name, "repair",
                           "%s %s is missing (removed by hand?)" % (kind, name))


def buildout_key(parts_directory, create=True):
    """The per-buildout key of content hashes (created on first use, mode 0600;
    None when there is none yet and not CREATE)."""
    key = key_file(os.path.join(parts_directory, KEY_FILE), create)
    return key.strip() if key is not None else None


def content_hash(key, *chunks):
    """A keyed hash (HMAC-SHA256) of CHUNKS (bytes): reveals nothing of them."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for chunk in chunks:
        mac.update(len(chunk).to_bytes(8, "big"))
        mac.update(chunk)
    return mac.hexdigest()
