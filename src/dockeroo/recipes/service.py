"""dockeroo:docker.service: a swarm service kept in the state the part describes.

read -> plan -> apply (see :mod:`dockeroo.model.plan`; the verdicts are in
docs/recipes/docker.service.rst).  The service carries a fingerprint of the
whole Spec and the image id; its tasks carry a second one (the Spec without
``replicas``, labels and update settings).  A change is one ``service
update`` with the flags that make it match, then a wait until it has
converged or was rolled back; a ``mode`` change recreates it.
"""

import dataclasses
import re
import time
from typing import Dict, Optional, Tuple

from zc.buildout import UserError

from dockeroo.recipes.common import swarm
from dockeroo.engine.commands import repeated
from dockeroo.model.options import ALIAS_NAME, Options, quote_command
from dockeroo.model.plan import action, fingerprint, not_fingerprinted
from dockeroo.model.ownership import (LABEL_BUILDOUT, LABEL_FINGERPRINT, LABEL_PART,
    SERVICE_LABEL, ended_task, label_args, labels_of, network_users, users)
from dockeroo.runtime.recipe import Recipe as Base
from dockeroo.model.buildout import raw_sections, referenced_outputs

NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$|^0$")
#: task-template fingerprint, a container label of every task
LABEL_TASK = "io.dockeroo.task-fingerprint"
LABEL_IMAGE = "io.dockeroo.image"
DEFAULT_WAIT = 300.0
#: a task counts as converged once it has been running this long (as ``docker
#: service create`` checks), at most half of ``wait``: a task that starts and
#: then fails is not taken for a running one
STABLE = 5.0
RECIPE = "docker.service"

#: scalar options: option -> (flag, kind, value that resets it in an update)
SCALARS = {
    "user": ("--user", "word", ""),
    "workdir": ("--workdir", "text", ""),
    "hostname": ("--hostname", "word", ""),
    "limit-cpu": ("--limit-cpu", "number", "0"),
    "limit-memory": ("--limit-memory", "size", "0"),
    "reserve-cpu": ("--reserve-cpu", "number", "0"),
    "reserve-memory": ("--reserve-memory", "size", "0"),
    "restart-condition": ("--restart-condition", ("none", "on-failure", "any"), "any"),
    "restart-delay": ("--restart-delay", "duration", "5s"),
    "restart-max-attempts": ("--restart-max-attempts", "int", "0"),
    "restart-window": ("--restart-window", "duration", "0s"),
    "health-cmd": ("--health-cmd", "text", None),
    "health-interval": ("--health-interval", "duration", None),
    "health-timeout": ("--health-timeout", "duration", None),
    "health-retries": ("--health-retries", "int", None),
    "health-start-period": ("--health-start-period", "duration", None),
    "stop-grace-period": ("--stop-grace-period", "duration", "10s"),
    "endpoint-mode": ("--endpoint-mode", ("vip", "dnsrr"), "vip"),
}
for _which, _failure in (("update", "rollback"), ("rollback", "pause")):
    SCALARS.update({
        "%s-parallelism" % _which: ("--%s-parallelism" % _which, "int", "1"),
        "%s-delay" % _which: ("--%s-delay" % _which, "duration", "0s"),
        "%s-order" % _which: ("--%s-order" % _which, ("stop-first", "start-first"), "stop-first"),
        "%s-failure-action" % _which: ("--%s-failure-action" % _which,
                                       ("pause", "continue") + (("rollback",) if _which == "update" else ()),
                                       _failure),
        "%s-monitor" % _which: ("--%s-monitor" % _which, "duration", "5s"),
        "%s-max-failure-ratio" % _which: ("--%s-max-failure-ratio" % _which, "number", "0"),
    })
#: defaults dockeroo sets (Docker's own default failure action pauses a failed update)
DEFAULTS = {"update-failure-action": "rollback"}
#: options that do not change what a task is (no new tasks when only they change)
SERVICE_LEVEL = ("replicas", "labels") + tuple(o for o in SCALARS if o.startswith(("update-", "rollback-")))


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    image: str
    resolve: str
    mode: str
    replicas: Optional[int]
    command: Optional[Tuple[str, ...]]
    entrypoint: Optional[Tuple[str, ...]]
    env: Dict[str, str]
    labels: Dict[str, str]
    container_labels: Dict[str, str]
    networks: Tuple[Tuple[str, Tuple[str, ...]], ...]   # (name, aliases)
    mounts: Tuple[Tuple[tuple, str], ...]              # ((type, source, target, ro), --mount spec)
    secrets: Tuple[tuple, ...]   # (version name, target, uid, gid, mode)
    configs: Tuple[tuple, ...]
    constraints: Tuple[str, ...]
    preferences: Tuple[str, ...]
    ports: Tuple[Tuple[int, int, str, str], ...]
    scalars: Dict[str, object]
    wait: Optional[float] = not_fingerprinted()
    owner: str = not_fingerprinted()
    #: the part's options, for the reasons of a plan
    given: Dict[str, str] = not_fingerprinted(dataclasses.field(default_factory=dict))
    #: networks that docker.network parts of this buildout make (planning: not there yet)
    made_here: Tuple[str, ...] = not_fingerprinted(())

    def task(self):
        """The Spec without what does not change a task (its fingerprint is the tasks' label)."""
        return dataclasses.replace(self, replicas=None, labels={}, scalars={
            k: v for k, v in self.scalars.items() if k not in SERVICE_LEVEL})


def read(opts, buildout, name, name_option, owner, hint=""):
    """The part's options -> Spec (every mistake a UserError)."""
    if not NAME_RE.match(name):
        raise opts.error(name_option, "a service name has up to 63 letters, digits "
                         "and '-', and starts and ends with a letter or digit" + hint, name)
    image = opts.image_ref("image")
    resolve = opts.choice("resolve-image", ("auto", "always", "never"), "auto")
    mode = opts.choice("mode", ("replicated", "global"), "replicated")
    replicas = opts.int("replicas", None, minimum=0)
    if mode == "global" and replicas is not None:
        raise opts.error("replicas", "mode = global runs one task per node: no replicas",
                         str(replicas))
    if replicas is None and mode == "replicated":
        replicas = 1
    command, entrypoint = opts.argv("command"), opts.argv("entrypoint")
    env = opts.key_values("env")
    labels, container_labels = opts.user_labels("labels"), opts.user_labels("container-labels")
    networks, mounts = read_networks(opts), read_mounts(opts)
    secrets = [read_reference(opts, buildout, "secret", line) for line in opts.lines("secrets")]
    configs = [read_reference(opts, buildout, "config", line) for line in opts.lines("configs")]
    for what, refs in (("secrets", secrets), ("configs", configs)):
        targets = [r[1] for r in refs]
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise opts.error(what, "target %s is given twice" % dup[0], opts.text(what))
    constraints = opts.lines("constraints")
    preferences = []
    for line in opts.lines("placement-preferences"):
        if not re.match(r"^spread=\S+$", line):
            raise opts.error("placement-preferences", "each line must be spread=DESCRIPTOR "
                             "(such as spread=node.labels.zone)", line)
        preferences.append(line)
    ports = [read_port(opts, line) for line in opts.lines("ports")]
    scalars = {}
    for option, (_flag, kind, _reset) in SCALARS.items():
        value = read_scalar(opts, option, kind)
        if value is None:
            value = DEFAULTS.get(option)
        if value is not None:
            scalars[option] = value
    if opts.bool("no-healthcheck", False):
        if any(o.startswith("health-") for o in scalars):
            raise opts.error("no-healthcheck", "cannot be combined with health-* options")
        scalars["no-healthcheck"] = True
    wait = opts.text("wait")
    if wait is not None and wait.lower() in ("false", "no", "off", "0"):
        wait = None
    else:
        wait = opts.duration("wait", DEFAULT_WAIT)
    return Spec(name=name, image=image, resolve=resolve, mode=mode, replicas=replicas,
                command=tuple(command) if command else None,
                entrypoint=tuple(entrypoint) if entrypoint else None, env=env, labels=labels,
                container_labels=container_labels, networks=tuple(networks),
                mounts=tuple(mounts), secrets=tuple(secrets), configs=tuple(configs),
                constraints=tuple(constraints), preferences=tuple(preferences),
                ports=tuple(ports), scalars=scalars, wait=wait, owner=owner,
                given=dict(opts.options), made_here=networks_made_by(buildout))


def read_scalar(opts, option, kind):
    if isinstance(kind, tuple):
        return opts.choice(option, kind)
    value = opts.text(option)
    if value is None:
        return None
    checks = {"int": (r"^\d+$", "a whole number"),
              "number": (r"^\d+(?:\.\d+)?$", "a number"),
              "size": (r"^\d+(?:\.\d+)?[bkmgBKMG]?$", "a size such as 64M or 1G"),
              "duration": (GO_DURATION.pattern, "a duration such as 10s, 1m30s or 500ms"),
              "word": (r"^\S+$", "a single word")}
    if kind in checks and not re.match(checks[kind][0], value):
        raise opts.error(option, "must be " + checks[kind][1], value)
    return value


def read_networks(opts):
    networks = []
    for line in opts.lines("networks"):
        name, *aliases = line.split()
        opts.object_name("networks", name, strict=False)
        for alias in aliases:
            if not ALIAS_NAME.match(alias):
                raise opts.error("networks", "each line is NETWORK [ALIAS ...]; an alias "
                                 "is a host name", line)
        if name in [n for n, _ in networks]:
            raise opts.error("networks", "network %s is given twice" % name, line)
        networks.append((name, tuple(sorted(aliases))))
    return networks


def read_mounts(opts):
    """``mounts`` (Docker's --mount syntax) and ``volumes`` (SOURCE:TARGET[:ro])."""
    mounts = []
    for line in opts.lines("mounts"):
        fields = dict(f.partition("=")[::2] for f in line.split(","))
        target = fields.get("target") or fields.get("dst") or fields.get("destination")
        source = fields.get("source") or fields.get("src") or ""
        kind = fields.get("type", "volume")
        if not target or not target.startswith("/") or kind not in ("volume", "bind", "tmpfs"):
            raise opts.error("mounts", "each line is Docker's --mount syntax: "
                             "type=volume|bind|tmpfs,source=...,target=/ABSOLUTE[,readonly]", line)
        ro = any(f in ("readonly", "ro", "readonly=true", "ro=true", "readonly=1") for f in line.split(","))
        mounts.append(((kind, source, target, ro), line))
    for line in opts.lines("volumes"):
        parts = line.split(":")
        if len(parts) not in (2, 3) or not parts[1].startswith("/") or not parts[0] or (
                len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise opts.error("volumes", "each line must be SOURCE:/TARGET[:ro] (a volume "
                             "name or an absolute host path)", line)
        kind = "bind" if parts[0].startswith("/") else "volume"
        ro = len(parts) == 3 and parts[2] == "ro"
        spec = "type=%s,source=%s,target=%s%s" % (kind, parts[0], parts[1], ",readonly" if ro else "")
        mounts.append(((kind, parts[0], parts[1], ro), spec))
    targets = [m[0][2] for m in mounts]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise opts.error("mounts", "target %s is mounted twice" % dup[0])
    return mounts


def read_reference(opts, buildout, kind, line):
    """``SOURCE[,target=T][,uid=U][,gid=G][,mode=0440]`` -> (name, target, uid, gid, mode).

    SOURCE is a docker.secret / docker.config part (its current version is
    used and the target defaults to its ``name``) or a swarm object name.
    """
    option = kind + "s"
    source, *rest = [f.strip() for f in line.split(",")]
    fields = {}
    for field in rest:
        key, sep, value = field.partition("=")
        if not sep or key not in ("target", "uid", "gid", "mode") or not value:
            raise opts.error(option, "each line is SOURCE[,target=T][,uid=U][,gid=G]"
                             "[,mode=0440] (SOURCE: a docker.%s part or a %s name)"
                                  % (kind, kind), line)
        fields[key] = value
    if source.startswith("source="):
        source = source[7:]
    name, base = resolve_part(buildout, kind, source)
    if not name or re.search(r"[\s,=]", name):
        raise opts.error(option, "SOURCE is missing or not a name", line)
    target = fields.get("target") or base or name
    if kind == "config" and not target.startswith("/"):
        target = "/" + target
    for key in ("uid", "gid"):
        if not fields.get(key, "0").isdigit():
            raise opts.error(option, "%s must be a number" % key, line)
    try:
        mode = int(fields.get("mode", "0444"), 8)
    except ValueError:
        raise opts.error(option, "mode must be octal, such as 0400", line)
    return (name, target, fields.get("uid", "0"), fields.get("gid", "0"), mode)


def resolve_part(buildout, kind, source):
    """(object name, default target) for SOURCE: a part name or an object name."""
    raw = raw_sections(buildout)
    recipe = "dockeroo:docker." + kind
    for section, values in raw.items():
        if (values.get("recipe") or "").strip() != recipe:
            continue
        base = (values.get("name") or section).strip()
        if section == source or ("${" not in base and source.startswith(base + "-")):
            part = buildout[section]  # buildout installs it before this part
            if section == source or part.get(kind) == source:
                return part[kind], part["name"]
    return source, None


def read_port(opts, line):
    match = re.match(r"^(?:(\d+):)?(\d+)(?:/(tcp|udp|sctp))?(?::(ingress|host))?$", line)
    if match:
        published, target, proto, mode = match.groups()
    else:
        fields = dict(f.partition("=")[::2] for f in line.split(","))
        published, target = fields.get("published"), fields.get("target")
        proto, mode = fields.get("protocol"), fields.get("mode")
        if not (target or "").isdigit() or (published and not published.isdigit()) or \
                set(fields) - {"published", "target", "protocol", "mode"}:
            raise opts.error("ports", "each line is PUBLISHED:TARGET[/PROTOCOL][:host] or "
                        "published=P,target=T[,protocol=tcp][,mode=host]", line)
    return (int(published) if published else 0, int(target), proto or "tcp", mode or "ingress")


def networks_made_by(buildout):
    """The names of the networks of this buildout's docker.network parts (as written)."""
    raw = raw_sections(buildout)
    names = []
    for section, values in raw.items():
        if (values.get("recipe") or "").strip() == "dockeroo:docker.network":
            name = (values.get("name") or section).strip()
            if "${" not in name:
                names.append(name)
    return tuple(names)


def uses(spec):
    """(kind, name, relation) of what the service uses: its image, the
    versions of its secrets and configs, its networks."""
    return ([("image", spec.image, "image")]
            + [("secret", s[0], "secret") for s in spec.secrets]
            + [("config", c[0], "config") for c in spec.configs]
            + [("network", n, "network") for n, _aliases in spec.networks])


# -- plan -------------------------------------------------------------------------------
def plan(part, spec, observed, context):
    """[Action] for the service of SPEC, given what the engine holds (OBSERVED)."""
    swarm.check_manager(observed, part, RECIPE)
    networks = {}
    for name, _aliases in spec.networks:
        networks[name] = observed.get("network", name)
        if networks[name] is None and not (context.planning and name in spec.made_here):
            raise UserError("Part [%s]: network %s (option networks) does not exist"
                            % (part, name))
    return service_plan(part, spec, observed, context, networks)


def renamed(part, spec, observed, old, why):
    """The removal of the service of the old configuration OLD of PART, when
    it had another name (``keep`` honoured, a service of someone else left):
    done once the new one runs, right after the part's turn."""
    was = old.get("name") or part
    if was == spec.name:
        return []
    return [action(part, "service", was, "remove", "replaced by service %s" % spec.name)
            if act.verb == "remove" else act
            for act in swarm.removal(observed, part, old, "service", [was], why)]


def service_plan(part, spec, observed, context, networks):
    """[Action] for the service itself; NETWORKS: the inspect JSON of its networks."""
    image = observed.get("image", spec.image)
    want = desired(part, spec, image)
    current = observed.get("service", spec.name)
    if current is None:
        act = swarm.absent(part, "service", spec.name, context)
        return [dataclasses.replace(act, data={"want": want})]
    if not swarm.is_ours(current, part, spec.owner):
        raise UserError("Part [%s]: service %s exists and was not made by this part; remove "
                        "it or choose another name" % (part, spec.name))
    data = {"want": want, "current": current}
    if current_mode(current) != spec.mode:
        return [action(part, "service", spec.name, "recreate", "option 'mode' changed (%s -> "
                       "%s): a service cannot change its mode in place"
                       % (current_mode(current), spec.mode), data=data)]
    rebuilt = context.image_change(spec.image)
    flags = update_args(spec, current, want, networks)
    if not flags and rebuilt is None:
        return [action(part, "service", spec.name, "unchanged", data=data)]
    data["flags"] = flags
    reasons = context.changed_options(spec.given, ignore=("service", "service-id", "wait",
                                                          "timeout", "keep"))
    if rebuilt is not None:  # planning: the image is made by an earlier part
        return [action(part, "service", spec.name, "maybe" if rebuilt.verb == "maybe" else "update",
                       *reasons, "image %s will be rebuilt (%s)" % (spec.image, "; ".join(
                           rebuilt.reasons) or rebuilt.verb), data=data)]
    fingerprinted = labels_of(current).get(LABEL_FINGERPRINT) != want["fingerprint"]
    changed = changed_flags(flags)
    let_go = context.released.get(("service", spec.name))
    if let_go is not None and not reasons and rebuilt is None:
        # this run had it let go of a network it uses, to recreate that network
        return [action(part, "service", spec.name, "update", let_go, data=data)]
    if "image" in changed and "option 'image' changed" not in reasons:
        reasons.append("image %s changed" % spec.image)
    for kind in ("secret", "config"):
        if kind in changed and "option '%ss' changed" % kind not in reasons:
            reasons.append("%s versions changed (new content)" % kind)
    if fingerprinted and not reasons:
        reasons.append("image %s or its recorded fingerprint changed" % spec.image)
    if not fingerprinted:
        return [action(part, "service", spec.name, "repair", "service %s was changed by hand (%s)"
                       % (spec.name, ", ".join(sorted(changed))), data=data)]
    return [action(part, "service", spec.name, "update", *reasons, data=data)]


def desired(part, spec, image):
    """What the service must carry (labels, the image to deploy, fingerprints)."""
    image_id = image["Id"] if image else None
    service_fp, task_fp = fingerprint(spec, image_id), fingerprint(spec.task(), image_id)
    container_labels = dict(spec.container_labels)
    container_labels[LABEL_TASK] = task_fp
    container_labels[LABEL_IMAGE] = spec.image
    resolve = spec.resolve
    if resolve == "auto":  # a local image no registry knows
        resolve = "never" if image and not image.get("RepoDigests") else "always"
    # a local image is deployed by its id: the tag may point at a newer build
    # by the time a task starts or an update rolls back
    deploy = image_id if resolve == "never" and image_id else spec.image
    labels = dict(spec.labels)
    labels.update({LABEL_PART: part, LABEL_BUILDOUT: spec.owner, LABEL_FINGERPRINT: service_fp})
    return {"labels": labels, "container_labels": container_labels, "task_fp": task_fp,
            "resolve": resolve, "fingerprint": service_fp, "image": deploy}


def changed_flags(flags):
    """The names of the flags of an update (no values): image, replicas, env, ..."""
    return {re.sub(r"-(add|rm)$", "", c.split("=", 1)[0].lstrip("-"))
            for c in flags if c.startswith("--")}


def current_mode(current):
    return "global" if "Global" in (current.get("Spec", {}).get("Mode") or {}) else "replicated"


def resolve_args(want):
    return ["--no-resolve-image"] if want["resolve"] == "never" else []


def scalar_args(spec):
    """Every scalar option as a flag, the ones not given at their reset value."""
    args = []
    for option, (flag, _kind, reset) in SCALARS.items():
        value = spec.scalars.get(option, reset)
        if value is not None:
            args += [flag, value]
    if spec.scalars.get("no-healthcheck"):
        args.append("--no-healthcheck")
    return args


def create_args(spec, want):
    # every scalar explicit (resets too): an update passing them changes nothing
    args = resolve_args(want) + scalar_args(spec)
    args += ["--mode", spec.mode]
    if spec.mode == "replicated":
        args += ["--replicas", str(spec.replicas)]
    if spec.entrypoint:
        args += ["--entrypoint", quote_command(spec.entrypoint)]
    args += repeated("--env", ["%s=%s" % item for item in spec.env.items()]) + label_args(want["labels"])
    for flag, values in (("--container-label", ["%s=%s" % item for item in want["container_labels"].items()]),
                         ("--network", [network_spec(name, aliases) for name, aliases in spec.networks]),
                         ("--mount", [mount for _key, mount in spec.mounts]),
                         ("--secret", [reference_spec(ref) for ref in spec.secrets]),
                         ("--config", [reference_spec(ref) for ref in spec.configs]),
                         ("--constraint", spec.constraints), ("--placement-pref", spec.preferences),
                         ("--publish", [port_spec(port) for port in spec.ports])):
        args += repeated(flag, values)
    return args


def update_args(spec, current, want, networks):
    """The ``service update`` flags that make CURRENT match; [] when it does.
    NETWORKS: the inspect JSON of each network of the Spec (None: not made yet)."""
    svc = current.get("Spec") or {}
    task = svc.get("TaskTemplate") or {}
    cs = task.get("ContainerSpec") or {}
    args = []
    image = want["image"]
    has_image = cs.get("Image") or ""
    if (has_image if image.startswith("sha256:") or "@" in image
            else has_image.split("@")[0]) != image:
        args += ["--image", image]
    if (cs.get("Args") or []) != list(spec.command or []):
        args += ["--args", quote_command(spec.command or [])]
    if (cs.get("Command") or []) != list(spec.entrypoint or []):
        args += ["--entrypoint", quote_command(spec.entrypoint or [])]
    if spec.mode == "replicated" and (svc.get("Mode", {}).get("Replicated") or {}).get(
            "Replicas") != spec.replicas:
        args += ["--replicas", str(spec.replicas)]
    has_env = dict(e.partition("=")[::2] for e in cs.get("Env") or [])
    args += mapping_args("env", has_env, spec.env)
    args += mapping_args("label", svc.get("Labels") or {}, want["labels"])
    args += mapping_args("container-label", cs.get("Labels") or {}, want["container_labels"])
    has_nets = {}
    for net in task.get("Networks") or []:
        has_nets[net.get("Target")] = tuple(sorted(net.get("Aliases") or []))
    wanted_nets = {(networks.get(n) or {}).get("Id", n): (n, a) for n, a in spec.networks}
    for target, aliases in has_nets.items():
        if target not in wanted_nets or wanted_nets[target][1] != aliases:
            args += ["--network-rm", target]
    for target, (name, aliases) in wanted_nets.items():
        if has_nets.get(target) != aliases:
            args += ["--network-add", network_spec(name, aliases)]
    has_mounts = {(m.get("Type"), m.get("Source") or "", m.get("Target"), bool(m.get("ReadOnly")))
                  for m in cs.get("Mounts") or []}
    wanted = {key for key, _ in spec.mounts}
    # the CLI adds before it removes: a changed mount is replaced by its add
    args += ["--mount-rm=" + t for t in sorted({m[2] for m in has_mounts} - {m[2] for m in wanted})]
    args += ["--mount-add=" + mount for key, mount in spec.mounts if key not in has_mounts]
    for kind, refs in (("secret", spec.secrets), ("config", spec.configs)):
        has = {reference_key(kind, r) for r in cs.get(kind.capitalize() + "s") or []}
        wanted = set(refs)
        args += ["--%s-rm=%s" % (kind, r[0]) for r in sorted(has - wanted)]
        args += ["--%s-add=%s" % (kind, reference_spec(r)) for r in refs if r not in has]
    placement = task.get("Placement") or {}
    args += list_args("constraint", placement.get("Constraints") or [], spec.constraints)
    prefs = ["spread=" + (p.get("Spread") or {}).get("SpreadDescriptor", "")
             for p in placement.get("Preferences") or []]
    args += list_args("placement-pref", prefs, spec.preferences)
    has_ports = {(p.get("PublishedPort", 0), p.get("TargetPort"), p.get("Protocol", "tcp"),
                  p.get("PublishMode", "ingress"))
                 for p in (svc.get("EndpointSpec") or {}).get("Ports") or []}
    if has_ports != set(spec.ports):
        args += ["--publish-rm=target=%d,protocol=%s,mode=%s" % p[1:]
                 for p in sorted(has_ports - set(spec.ports))]
        args += ["--publish-add=" + port_spec(p) for p in spec.ports if p not in has_ports]
    mode = (svc.get("EndpointSpec") or {}).get("Mode") or "vip"
    if mode != spec.scalars.get("endpoint-mode", "vip"):
        args += ["--endpoint-mode", spec.scalars.get("endpoint-mode", "vip")]
    return args


# -- apply ------------------------------------------------------------------------------
class Recipe(Base):
    recipe = RECIPE
    long_timeout = 600

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        self.engine.want("image", self.spec.image)
        if referenced_outputs(buildout, name, ("service-id",), self.lifecycle.references):
            obj = None
            try:
                obj = swarm.inspect(self.engine, "service", self.name)
            except Exception:  # not a manager: the plan says so
                pass
            options["service-id"] = obj["ID"] if obj and swarm.is_ours(obj, name, self.owner) else ""

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.spec = read(self.opts, self.buildout, self.name, self.name_option, self.owner, hint)
        self.options["service"] = self.name

    @classmethod
    def owned(cls, values):
        return []  # services are not in the engine's inspect cache: see plan/remove

    def uses(self):
        return uses(self.spec)

    def user(self):
        return ("service", self.spec.name)

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        return swarm.removal(observed, part, old_options, "service",
                             [old_options.get("name") or part], why)

    def observed(self):
        return swarm.Observed(self.engine, owner=self.owner)

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context)

    def apply(self, actions):
        spec = self.spec
        for act in actions:
            if act.verb == "unchanged":
                continue
            want = act.data["want"]
            if act.verb == "recreate":
                self.remove_service(self.engine, act.data["current"], self.log, spec.wait or DEFAULT_WAIT)
            if act.verb in ("create", "recreate") or "current" not in act.data:
                self.run(["service", "create", "--detach", "--name", spec.name]
                         + create_args(spec, want) + [want["image"]] + list(spec.command or []),
                         long=True)
                # a new service that does not converge is not left behind half-made
                self.on_failure(lambda: self.remove_service(
                    self.engine, swarm.inspect(self.engine, "service", spec.name), self.log,
                    spec.wait or DEFAULT_WAIT))
            else:
                self.run(["service", "update", "--detach"] + act.data["flags"]
                         + scalar_args(spec) + resolve_args(want) + [spec.name], long=True)
            if spec.wait:
                self.converge(want)
        return []

    def let_go_of(self, kind, name):
        """Have the service let go of network NAME (KIND), which this run
        recreates (:func:`dockeroo.runtime.executor.release`): a rolling
        update without it (its tasks are replaced as any update replaces
        them; the service keeps running), then wait until no task of it is
        attached to the network here.  Its part's turn (or
        :func:`~dockeroo.runtime.executor.remake`) adds the new network."""
        name_here = self.spec.name
        self.run(["service", "update", "--detach", "--no-resolve-image", "--network-rm", name,
                  name_here], long=True)
        deadline = time.monotonic() + (self.spec.wait or DEFAULT_WAIT)
        while True:
            self.engine.forget("network", name)
            self.engine.forget("container")
            attached = [u for u in network_users(self.engine, name)
                        if labels_of(self.engine.inspect("container", u)).get(
                            SERVICE_LABEL) == name_here
                        and not ended_task(self.engine, u)]
            if not attached:
                return
            if time.monotonic() >= deadline:
                raise UserError("Part [%s]: the tasks of service %s still use %s %s %ss after "
                                "the update that lets go of it: %s" % (
                                    self.part, name_here, kind, name,
                                    int(self.spec.wait or DEFAULT_WAIT), ", ".join(attached)))
            time.sleep(0.5)

    def replaced_removals(self, observed, old, why):
        """The service of the old configuration, when it had another name
        (:func:`renamed`)."""
        return renamed(self.part, self.spec, observed, old, why)

    # -- convergence --------------------------------------------------------------------
    def converge(self, want):
        """Wait until every task runs the new spec, and has for a while; UserError
        when the update rolled back, paused, or did not converge within ``wait``."""
        deadline = time.monotonic() + self.spec.wait
        running_since = {}  # task id -> when this run first saw it running
        while True:
            current = swarm.inspect(self.engine, "service", self.spec.name) or {}
            status = current.get("UpdateStatus") or {}
            state = status.get("State")
            if state in ("rollback_completed", "rollback_paused", "paused"):
                raise UserError("Part [%s]: the update of service %s failed and was %s: %s%s"
                                % (self.part, self.spec.name,
                                   "rolled back" if state.startswith("rollback") else "paused",
                                   status.get("Message") or state, self.task_errors()))
            if state not in ("updating", "rollback_started") and self.converged(want,
                                                                                running_since):
                self.log.info("Service %s has converged", self.spec.name)
                return
            if time.monotonic() >= deadline:
                raise UserError("Part [%s]: service %s did not converge within %ss (wait)%s"
                                % (self.part, self.spec.name, int(self.spec.wait), self.task_errors()))
            time.sleep(1)

    def tasks(self, desired_running=True):
        args = ["service", "ps", "--quiet", "--no-trunc", self.spec.name]
        if desired_running:
            args[3:3] = ["--filter", "desired-state=running"]
        ids = self.run(args).stdout.split()
        if not ids:
            return []
        return self.run(["inspect", "--type", "task"] + ids).json() or []

    def converged(self, want, running_since):
        """Whether every task runs the new spec and has been seen running for
        STABLE seconds (at most half of ``wait``) in RUNNING_SINCE (task id ->
        when first seen running; kept by the caller across polls)."""
        tasks, now = self.tasks(), time.monotonic()
        stable = min(STABLE, self.spec.wait / 2)
        ready = []
        for t in tasks:
            if (t.get("Status") or {}).get("State") == "running" and ((t.get("Spec") or {}).get(
                    "ContainerSpec") or {}).get("Labels", {}).get(LABEL_TASK) == want["task_fp"]:
                if now - running_since.setdefault(t.get("ID"), now) >= stable:
                    ready.append(t)
        if self.spec.mode == "global":
            return bool(tasks) and len(ready) == len(tasks)
        return len(ready) == len(tasks) == self.spec.replicas

    def task_errors(self):
        try:
            tasks = self.tasks(desired_running=False)
        except Exception:  # the error being reported matters more
            return ""
        seen = []
        for t in sorted(tasks, key=lambda t: t.get("UpdatedAt", ""), reverse=True):
            status = t.get("Status") or {}
            err = status.get("Err")
            if err and err not in seen:
                seen.append(err)
        return ("; task errors: " + "; ".join(seen[:5])) if seen else ""

    # -- uninstall ----------------------------------------------------------------------
    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """The service this part made (its tasks' containers waited for)."""
        current = swarm.inspect(engine, "service", act.name)
        if current is None:
            return
        opts = Options(part, dict(options))
        wait = opts.text("wait")
        wait = DEFAULT_WAIT if wait is None or not re.match(r"^\d", wait) else opts.duration("wait")
        cls.remove_service(engine, current, log, wait)

    @staticmethod
    def remove_service(engine, current, log, wait):
        """Remove a service; wait (up to WAIT s) until its containers are gone here."""
        name, sid = current["Spec"]["Name"], current["ID"]
        engine.run(["service", "rm", name])
        deadline = time.monotonic() + wait
        while users(engine, "label", "com.docker.swarm.service.id=" + sid, check=True):
            if time.monotonic() >= deadline:
                log.warning("Tasks of service %s were still stopping after %ss", name, int(wait))
                break
            time.sleep(0.5)
        for kind in ("network", "container"):
            engine.forget(kind)
        log.info("Removed service %s", name)


def mapping_args(flag, has, wants):
    args = ["--%s-rm=%s" % (flag, k) for k in sorted(has) if k not in wants]
    return args + ["--%s-add=%s=%s" % (flag, k, v) for k, v in wants.items() if has.get(k) != v]


def list_args(flag, has, wants):
    # the CLI adds before it removes: never remove what is added
    return (["--%s-rm=%s" % (flag, v) for v in has if v not in wants]
            + ["--%s-add=%s" % (flag, v) for v in wants if v not in has])


def network_spec(name, aliases):
    return ",".join(["name=" + name] + ["alias=" + a for a in aliases])


def reference_spec(ref):
    name, target, uid, gid, mode = ref
    return "source=%s,target=%s,uid=%s,gid=%s,mode=%04o" % (name, target, uid, gid, mode)


def reference_key(kind, ref):
    f = ref.get("File") or {}
    return (ref.get(kind.capitalize() + "Name"), f.get("Name"), f.get("UID", "0"), f.get("GID", "0"),
            f.get("Mode", 0o444))


def port_spec(port):
    published, target, proto, mode = port
    spec = "target=%d,protocol=%s,mode=%s" % (target, proto, mode)
    return ("published=%d," % published + spec) if published else spec


uninstall = Recipe.uninstaller()
