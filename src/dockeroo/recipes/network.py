"""dockeroo:docker.network: a Docker network, with an optional fixed address plan.

read -> plan -> apply (see :mod:`dockeroo.model.plan`).
"""

import dataclasses
import ipaddress
import time
from typing import Dict, Optional, Tuple

from zc.buildout import UserError

from dockeroo.recipes.common import swarm
from dockeroo.engine.capabilities import PODMAN
from dockeroo.model.plan import action, not_fingerprinted
from dockeroo.model.ownership import (LABEL_BUILDOUT, LABEL_FINGERPRINT, LABEL_PART, is_owned,
    label_args, labels_of)
from dockeroo.runtime.recipe import Recipe as Base

OUR_LABELS = (LABEL_PART, LABEL_BUILDOUT, LABEL_FINGERPRINT)
RECIPE = "docker.network"


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    driver: str
    internal: bool
    ipv6: bool
    attachable: bool
    encrypted: bool
    scope: Optional[str]
    pools: Tuple[Dict[str, str], ...]  # [{Subnet, Gateway?, IPRange?}]
    labels: Dict[str, str]
    owner: str = not_fingerprinted()

    @property
    def needs_swarm(self):
        return self.driver == "overlay" or self.scope == "swarm"


def read(opts, name, name_option, owner, hint=""):
    """The part's options -> Spec (every mistake a UserError)."""
    driver = opts.word("driver", default="bridge")
    opts.object_name(name_option, name, strict=False, hint=hint)
    ipv6 = opts.bool("ipv6", False)
    spec = Spec(name=name, driver=driver, internal=opts.bool("internal", False), ipv6=ipv6,
                # overlay (swarm) networks: attachable, scope, encrypted
                attachable=opts.bool("attachable", False), encrypted=opts.bool("encrypted", False),
                scope=opts.choice("scope", ("local", "swarm", "global")),
                pools=tuple(address_plan(opts, ipv6)), labels=opts.key_values("labels"),
                owner=owner)
    for option in ("attachable", "encrypted"):
        if getattr(spec, option) and driver != "overlay":
            raise opts.error(option, "applies to driver = overlay only", opts.text(option))
    return spec


def plan(part, spec, observed, context):
    """[Action] for the network of SPEC, given what the engine holds (OBSERVED)."""
    if spec.needs_swarm:
        swarm.check_manager(observed, part, RECIPE, "an overlay (swarm) network")
    current = observed.get("network", spec.name)
    if current is None:
        return [swarm.absent(part, "network", spec.name, context)]
    # a network another part of this buildout made and hands over in this run
    # (removed, or no longer describing it) is compared as the part's own
    ours = is_owned(current, part, spec.owner) or \
        context.handed_by("network", spec.name, current, spec.owner) is not None
    # labels are compared on our own networks only (another's labels are its business)
    changes = [c for c in differences(spec, current, observed) if ours or c[0] != "labels"]
    if not changes:
        return [action(part, "network", spec.name, "unchanged")]
    reasons = ["%s: has %s, wants %s" % change for change in changes]
    if not ours:
        raise UserError("Part [%s]: network %s already exists but was not created by this part, "
                        "and differs (%s); remove it by hand or choose another name"
                        % (part, spec.name, "; ".join(reasons)))
    # under containers (labels too: Docker cannot change them in place): the
    # containers of this buildout's parts are released and made again with it,
    # the services of its parts (an overlay network) let go of it and take the
    # new one (:mod:`dockeroo.runtime.executor`); any other user refuses the run
    return [action(part, "network", spec.name, "recreate", *reasons)]


def differences(spec, current, observed):
    """(what, has, wants) for every setting the network does not match."""
    changes = []
    for what, has, wants in (("driver", current.get("Driver"), spec.driver),
                             ("internal", bool(current.get("Internal")), spec.internal),
                             ("ipv6", bool(current.get("EnableIPv6")), spec.ipv6),
                             ("attachable", bool(current.get("Attachable")), spec.attachable),
                             ("encrypted", "encrypted" in (current.get("Options") or {}),
                              spec.encrypted),
                             ("scope", current.get("Scope"), spec.scope or current.get("Scope"))):
        if has != wants:
            changes.append((what, has, wants))
    if spec.pools:  # without a subnet any address plan Docker chose is fine
        families = {ipaddress.ip_network(p["Subnet"]).version for p in spec.pools}
        has = [normalized_pool(p) for p in ((current.get("IPAM") or {}).get("Config") or [])]
        if spec.driver == "overlay":  # swarm records the gateway it chose
            given = {p["Subnet"]: p for p in spec.pools}
            has = [{k: v for k, v in p.items() if k != "Gateway" or "Gateway" in
                    given.get(p["Subnet"], p)} for p in has]
        has = sorted((p for p in has if ipaddress.ip_network(p["Subnet"]).version in families),
                     key=sorted_items)
        wants = sorted(spec.pools, key=sorted_items)
        if has != wants and observed.get("engine", "kind") == PODMAN:  # asked only when they differ
            has, wants = podman_view(has, wants)
        if has != wants:
            changes.append(("addresses", describe(has), describe(spec.pools)))
    labels = {k: v for k, v in labels_of(current).items() if k not in OUR_LABELS}
    if labels != spec.labels:
        changes.append(("labels", labels, spec.labels))
    return changes


class Recipe(Base):
    recipe = RECIPE

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.spec = read(self.opts, self.name, self.name_option, self.owner, hint)
        self.options["network"] = self.name

    @classmethod
    def owned(cls, values):
        return [("network", values["name"])]

    def observed(self):
        return swarm.Observed(self.engine, owner=self.owner)

    def differences(self, obj):
        """How the existing network OBJ differs from what the part describes."""
        return differences(self.spec, obj, self.observed())

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context)

    def take_over(self, kind, name, previous, stays=False):
        return (self.taken_over(previous, stays),), None

    def apply(self, actions):
        for act in actions:  # its users are released and made again by the executor
            if act.verb == "recreate":
                self.run(["network", "rm", self.spec.name])
                self.engine.forget("network", self.spec.name)
                if self.spec.needs_swarm:
                    self.gone_here()
            if act.verb in ("create", "repair", "recreate"):
                self.create()
            elif act.reasons:  # unchanged, but not as the part describes it
                self.log.warning("Network %s: %s", self.spec.name, "; ".join(act.reasons))
        return []

    def gone_here(self):
        """Wait until the overlay network just removed is gone from this node
        too: the manager forgets it at once, the node once its last
        endpoint (a stopping task) has left, and a network of the same name
        cannot be made before."""
        deadline = time.monotonic() + self.cmd_timeout(long=True)
        while self.engine.inspect("network", self.spec.name) is not None:
            if time.monotonic() >= deadline:
                raise UserError("Part [%s]: network %s is still there %ss after its removal"
                                % (self.part, self.spec.name, int(self.cmd_timeout(long=True))))
            time.sleep(0.5)
            self.engine.forget("network", self.spec.name)

    def create(self):
        self.run(self.create_args())
        self.engine.forget("network", self.spec.name)

    def create_args(self):
        """The argv that creates the network (also used by :mod:`dockeroo.runtime.ahead`)."""
        spec = self.spec
        args = ["network", "create", "--driver", spec.driver]
        pairs = (("Subnet", "--subnet"), ("Gateway", "--gateway"), ("IPRange", "--ip-range"))
        args += [word for pool in spec.pools  # the CLI pairs gateways and ranges with their subnet
                 for key, option in pairs if key in pool for word in (option, pool[key])]
        args += [flag for flag, wanted in (("--internal", spec.internal), ("--ipv6", spec.ipv6),
                                           ("--attachable", spec.attachable)) if wanted]
        args += ["--opt", "encrypted"] * spec.encrypted + (["--scope", spec.scope] if spec.scope else [])
        return args + label_args(self.labels(extra=spec.labels)) + [spec.name]


def address_plan(opts, ipv6):
    """The IPAM pools the options describe: [{Subnet, Gateway?, IPRange?}], validated."""
    subnets = [parse(opts, "subnet", line, ipaddress.ip_network, "a CIDR subnet such as 172.28.5.0/24")
               for line in opts.lines("subnet")]
    gateways = [parse(opts, "gateway", line, ipaddress.ip_address, "an IP address")
                for line in opts.lines("gateway")]
    ranges = [parse(opts, "ip-range", line, ipaddress.ip_network, "a CIDR range such as 172.28.5.128/25")
              for line in opts.lines("ip-range")]
    for option, values in (("gateway", gateways), ("ip-range", ranges)):
        if values and not subnets:
            raise opts.error(option, "needs 'subnet' (the subnet it belongs to)", str(values[0]))
    for i, net in enumerate(subnets):
        for other in subnets[:i]:
            if net.version == other.version and net.overlaps(other):
                raise opts.error("subnet", "%s overlaps %s" % (net, other), opts.text("subnet"))
        if net.version == 6 and not ipv6:
            raise opts.error("subnet", "%s is an IPv6 subnet: set ipv6 = true" % net, opts.text("subnet"))
    if ipv6 and subnets and all(net.version == 4 for net in subnets):
        raise opts.error("ipv6", "the subnets given are all IPv4: add an IPv6 subnet (such as "
                         "fd00:1:2::/64) to 'subnet', one per line", opts.text("ipv6"))
    pools = {net: {"Subnet": str(net)} for net in subnets}
    for option, key, values in (("gateway", "Gateway", gateways), ("ip-range", "IPRange", ranges)):
        for value in values:
            home = [net for net in subnets if contains(net, value)]
            if not home:
                raise opts.error(option, "%s is not inside the subnet (%s)"
                                 % (value, ", ".join(map(str, subnets))), str(value))
            pool = pools[home[0]]
            if key in pool:
                raise opts.error(option, "subnet %s has more than one %s" % (home[0], option), str(value))
            if key == "Gateway" and value.version == 4 and home[0].prefixlen < 31 and \
                    value in (home[0].network_address, home[0].broadcast_address):
                raise opts.error(option, "%s is the network or broadcast address of %s"
                                 % (value, home[0]), str(value))
            pool[key] = str(value)
    return [pools[net] for net in subnets]


def parse(opts, option, line, kind, what):
    try:
        return kind(line) if kind is ipaddress.ip_address else kind(line, strict=True)
    except ValueError as exc:
        raise opts.error(option, "must be %s (%s)" % (what, exc), line)


def contains(net, value):
    if value.version != net.version:
        return False
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value.subnet_of(net)
    return value in net


def normalized_pool(pool):
    out = {}
    for key in ("Subnet", "Gateway", "IPRange"):
        if pool.get(key):
            out[key] = str(ipaddress.ip_address(pool[key].split("/")[0]) if key == "Gateway"
                           else ipaddress.ip_network(pool[key], strict=False))
    return out


def podman_view(has, wants):
    """HAS and WANTS as Podman can show them: its ``network inspect`` drops the
    ip-range (it is applied: addresses are leased from it) and always shows a
    gateway (the subnet's first address unless one was given)."""
    def shown(pool, given):
        out = {k: v for k, v in pool.items() if k != "IPRange"}
        if "Gateway" in out and "Gateway" not in given:
            default = next(ipaddress.ip_network(out["Subnet"]).hosts())
            if out["Gateway"] == str(default):
                del out["Gateway"]
        return out
    wants_by_subnet = {p["Subnet"]: p for p in wants}
    return ([shown(p, wants_by_subnet.get(p["Subnet"], {})) for p in has],
            [shown(p, p) for p in wants])


def sorted_items(pool):
    return sorted(pool.items())


def describe(pools):
    return ", ".join(" ".join("%s=%s" % (k.lower(), v) for k, v in p.items()) for p in pools) or "none"


uninstall = Recipe.uninstaller()
