"""dockeroo:docker.network: a Docker network, with an optional fixed address plan."""

import ipaddress

from zc.buildout import UserError

from ..capabilities import PODMAN
from ..swarm import require_manager
from ..recipe import LABEL_BUILDOUT, LABEL_FINGERPRINT, LABEL_PART, Recipe as Base, label_args, network_users

OUR_LABELS = (LABEL_PART, LABEL_BUILDOUT, LABEL_FINGERPRINT)


class Recipe(Base):
    recipe = "docker.network"

    def setup(self):
        self.driver = self.opts.word("driver", default="bridge")
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.opts.object_name(self.name_option, self.name, strict=False, hint=hint)
        self.internal = self.opts.bool("internal", False)
        self.ipv6 = self.opts.bool("ipv6", False)
        self.user_labels = self.opts.key_values("labels")
        self.pools = address_plan(self.opts, self.ipv6)
        # overlay (swarm) networks: attachable, scope, encrypted
        self.attachable = self.opts.bool("attachable", False)
        self.encrypted = self.opts.bool("encrypted", False)
        self.scope = self.opts.choice("scope", ("local", "swarm", "global"))
        for option in ("attachable", "encrypted"):
            if getattr(self, option) and self.driver != "overlay":
                raise self.opts.error(option, "applies to driver = overlay only", self.opts.text(option))
        self.needs_swarm = self.driver == "overlay" or self.scope == "swarm"
        self.options["network"] = self.name

    @classmethod
    def owned(cls, values):
        return [("network", values["name"])]

    def ensure(self):
        if self.needs_swarm:
            require_manager(self.engine, self.part, self.recipe, "an overlay (swarm) network")
        current = self.engine.inspect("network", self.name)
        if current is None:
            self.create()
            return []
        ours = self.is_ours(current)
        # labels are compared on our own networks only (another's labels are its business)
        changes = [c for c in self.differences(current) if ours or c[0] != "labels"]
        if not changes:
            return []
        shown = "; ".join("%s: has %s, wants %s" % change for change in changes)
        if not ours:
            raise UserError("Part [%s]: network %s already exists but was not created by this part, "
                            "and differs (%s); remove it by hand or choose another name"
                            % (self.part, self.name, shown))
        users = network_users(self.engine, self.name, current)
        if users and all(what == "labels" for what, _, _ in changes):
            self.log.warning("Network %s keeps its old labels (labels cannot change while "
                             "container(s) %s are attached)", self.name, ", ".join(users))
            return []
        if users:
            raise UserError("Part [%s]: network %s must be recreated (%s) but container(s) %s "
                            "are attached; remove them first (nothing was changed)"
                            % (self.part, self.name, shown, ", ".join(users)))
        self.log.info("Recreating network %s (%s)", self.name, shown)
        self.run(["network", "rm", self.name])
        self.engine.forget("network", self.name)
        self.create()
        return []

    def create(self):
        self.run(self.create_args())
        self.engine.forget("network", self.name)
        self.log.info("Created network %s", self.name)

    def create_args(self):
        args = ["network", "create", "--driver", self.driver]
        for pool in self.pools:  # the CLI pairs gateways and ranges with their subnet
            for key, option in (("Subnet", "--subnet"), ("Gateway", "--gateway"), ("IPRange", "--ip-range")):
                if key in pool:
                    args += [option, pool[key]]
        if self.internal:
            args.append("--internal")
        if self.ipv6:
            args.append("--ipv6")
        if self.attachable:
            args.append("--attachable")
        if self.encrypted:
            args += ["--opt", "encrypted"]
        if self.scope:
            args += ["--scope", self.scope]
        return args + label_args(self.labels(extra=self.user_labels)) + [self.name]

    def differences(self, current):
        """(what, has, wants) for every setting the network does not match."""
        changes = []
        for what, has, wants in (("driver", current.get("Driver"), self.driver),
                                 ("internal", bool(current.get("Internal")), self.internal),
                                 ("ipv6", bool(current.get("EnableIPv6")), self.ipv6),
                                 ("attachable", bool(current.get("Attachable")), self.attachable),
                                 ("encrypted", "encrypted" in (current.get("Options") or {}),
                                  self.encrypted),
                                 ("scope", current.get("Scope"), self.scope or current.get("Scope"))):
            if has != wants:
                changes.append((what, has, wants))
        if self.pools:  # without a subnet any address plan Docker chose is fine
            families = {ipaddress.ip_network(p["Subnet"]).version for p in self.pools}
            has = [normalized_pool(p) for p in ((current.get("IPAM") or {}).get("Config") or [])]
            if self.driver == "overlay":  # swarm records the gateway it chose
                given = {p["Subnet"]: p for p in self.pools}
                has = [{k: v for k, v in p.items() if k != "Gateway" or "Gateway" in
                        given.get(p["Subnet"], p)} for p in has]
            has = sorted((p for p in has if ipaddress.ip_network(p["Subnet"]).version in families),
                         key=sorted_items)
            wants = sorted(self.pools, key=sorted_items)
            if has != wants and self.engine.kind == PODMAN:  # asked only when they differ
                has, wants = podman_view(has, wants)
            if has != wants:
                changes.append(("addresses", describe(has), describe(self.pools)))
        labels = {k: v for k, v in (current.get("Labels") or {}).items() if k not in OUR_LABELS}
        if labels != self.user_labels:
            changes.append(("labels", labels, self.user_labels))
        return changes


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
