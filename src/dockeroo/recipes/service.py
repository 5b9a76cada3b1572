"""dockeroo:docker.service: a swarm service kept in the state the part describes.

Desired state, as docker.run: the service carries the label
``io.dockeroo.fingerprint``, a hash of every option, of the image id (a
rebuilt image under the same tag is a change) and of the secret and config
versions it references; its tasks carry a second fingerprint (the options
that define a task, not ``replicas`` or service labels) as a container
label.  ``ensure()``:

* no service: ``service create``, then wait until it has converged;
* same fingerprint and nothing changed by hand: nothing is done (no
  ``service update``, no new task);
* another fingerprint, or drift (scaled, updated or partly removed by hand):
  one ``service update`` in place with the flags that make the service match
  (``--env-rm``/``--env-add``, ...), then wait until all tasks run the new
  spec, or the update was rolled back (the part fails with the tasks'
  errors).  ``mode`` (replicated or global) cannot change in place: the
  service is removed and created again.

Uninstall removes the service and waits until its tasks are gone.
"""

import re
import time

from zc.buildout import UserError

from .. import swarm
from ..fingerprint import hash_values
from ..options import Options
from ..recipe import (LABEL_FINGERPRINT, OWNER_OPTION, Recipe as Base, label_args,
                      quote_command)
from .run import referenced_outputs

NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
HOST_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
GO_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+$|^0$")
#: task-template fingerprint, a container label of every task
LABEL_TASK = "io.dockeroo.task-fingerprint"
LABEL_IMAGE = "io.dockeroo.image"
DEFAULT_WAIT = 300.0

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


class Recipe(Base):
    recipe = "docker.service"
    long_timeout = 600

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        self.engine.want("image", self.image)
        if referenced_outputs(buildout, name, ("service-id",)):
            obj = None
            try:
                obj = swarm.inspect(self.engine, "service", self.name)
            except Exception:  # not a manager: ensure() says so
                pass
            options["service-id"] = obj["ID"] if obj and swarm.is_ours(obj, name, self.owner) else ""

    # -- options ------------------------------------------------------------------------
    def setup(self):
        opts = self.opts
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        if not NAME_RE.match(self.name):
            raise opts.error(self.name_option, "a service name has up to 63 letters, digits "
                             "and '-', and starts and ends with a letter or digit" + hint,
                             self.name)
        self.options["service"] = self.name
        self.image = opts.image_ref("image")
        self.resolve = opts.choice("resolve-image", ("auto", "always", "never"), "auto")
        self.mode = opts.choice("mode", ("replicated", "global"), "replicated")
        self.replicas = opts.int("replicas", None, minimum=0)
        if self.mode == "global" and self.replicas is not None:
            raise opts.error("replicas", "mode = global runs one task per node: no replicas",
                             str(self.replicas))
        if self.replicas is None and self.mode == "replicated":
            self.replicas = 1
        self.command = opts.argv("command")
        self.entrypoint = opts.argv("entrypoint")
        self.env = opts.key_values("env")
        self.user_labels = self.checked_labels("labels")
        self.container_labels = self.checked_labels("container-labels")
        self.networks = self.read_networks()
        self.mounts = self.read_mounts()
        self.secrets = [self.read_reference("secret", line) for line in opts.lines("secrets")]
        self.configs = [self.read_reference("config", line) for line in opts.lines("configs")]
        for what, refs in (("secrets", self.secrets), ("configs", self.configs)):
            targets = [r[1] for r in refs]
            dup = sorted({t for t in targets if targets.count(t) > 1})
            if dup:
                raise opts.error(what, "target %s is given twice" % dup[0], opts.text(what))
        self.constraints = opts.lines("constraints")
        self.preferences = []
        for line in opts.lines("placement-preferences"):
            if not re.match(r"^spread=\S+$", line):
                raise opts.error("placement-preferences", "each line must be spread=DESCRIPTOR "
                                 "(such as spread=node.labels.zone)", line)
            self.preferences.append(line)
        self.ports = [self.read_port(line) for line in opts.lines("ports")]
        self.scalars = {}
        for option, (flag, kind, _reset) in SCALARS.items():
            value = self.read_scalar(option, kind)
            if value is None:
                value = DEFAULTS.get(option)
            if value is not None:
                self.scalars[option] = value
        if opts.bool("no-healthcheck", False):
            if any(o.startswith("health-") for o in self.scalars):
                raise opts.error("no-healthcheck", "cannot be combined with health-* options")
            self.scalars["no-healthcheck"] = True
        wait = opts.text("wait")
        if wait is not None and wait.lower() in ("false", "no", "off", "0"):
            self.wait = None
        else:
            self.wait = opts.duration("wait", DEFAULT_WAIT)

    def checked_labels(self, option):
        labels = self.opts.key_values(option)
        for key in labels:
            if key.startswith("io.dockeroo."):
                raise self.opts.error(option, "io.dockeroo.* labels are set by dockeroo itself", key)
        return labels

    def read_scalar(self, option, kind):
        opts = self.opts
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

    def read_networks(self):
        networks = []
        for line in self.opts.lines("networks"):
            name, *aliases = line.split()
            self.opts.object_name("networks", name, strict=False)
            for alias in aliases:
                if not HOST_RE.match(alias):
                    raise self.opts.error("networks", "each line is NETWORK [ALIAS ...]; an alias "
                                          "is a host name", line)
            if name in [n for n, _ in networks]:
                raise self.opts.error("networks", "network %s is given twice" % name, line)
            networks.append((name, tuple(sorted(aliases))))
        return networks

    def read_mounts(self):
        """``mounts`` (Docker's --mount syntax) and ``volumes`` (SOURCE:TARGET[:ro])."""
        mounts = []
        for line in self.opts.lines("mounts"):
            fields = dict(f.partition("=")[::2] for f in line.split(","))
            target = fields.get("target") or fields.get("dst") or fields.get("destination")
            source = fields.get("source") or fields.get("src") or ""
            kind = fields.get("type", "volume")
            if not target or not target.startswith("/") or kind not in ("volume", "bind", "tmpfs"):
                raise self.opts.error("mounts", "each line is Docker's --mount syntax: "
                                      "type=volume|bind|tmpfs,source=...,target=/ABSOLUTE[,readonly]", line)
            ro = any(f in ("readonly", "ro", "readonly=true", "ro=true", "readonly=1") for f in line.split(","))
            mounts.append(((kind, source, target, ro), line))
        for line in self.opts.lines("volumes"):
            parts = line.split(":")
            if len(parts) not in (2, 3) or not parts[1].startswith("/") or not parts[0] or (
                    len(parts) == 3 and parts[2] not in ("ro", "rw")):
                raise self.opts.error("volumes", "each line must be SOURCE:/TARGET[:ro] (a volume "
                                      "name or an absolute host path)", line)
            kind = "bind" if parts[0].startswith("/") else "volume"
            ro = len(parts) == 3 and parts[2] == "ro"
            spec = "type=%s,source=%s,target=%s%s" % (kind, parts[0], parts[1], ",readonly" if ro else "")
            mounts.append(((kind, parts[0], parts[1], ro), spec))
        targets = [m[0][2] for m in mounts]
        dup = sorted({t for t in targets if targets.count(t) > 1})
        if dup:
            raise self.opts.error("mounts", "target %s is mounted twice" % dup[0])
        return mounts

    def read_reference(self, kind, line):
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
                raise self.opts.error(option, "each line is SOURCE[,target=T][,uid=U][,gid=G]"
                                      "[,mode=0440] (SOURCE: a docker.%s part or a %s name)"
                                      % (kind, kind), line)
            fields[key] = value
        if source.startswith("source="):
            source = source[7:]
        name, base = self.resolve_part(kind, source)
        if not name or re.search(r"[\s,=]", name):
            raise self.opts.error(option, "SOURCE is missing or not a name", line)
        target = fields.get("target") or base or name
        if kind == "config" and not target.startswith("/"):
            target = "/" + target
        for key in ("uid", "gid"):
            if not fields.get(key, "0").isdigit():
                raise self.opts.error(option, "%s must be a number" % key, line)
        try:
            mode = int(fields.get("mode", "0444"), 8)
        except ValueError:
            raise self.opts.error(option, "mode must be octal, such as 0400", line)
        return (name, target, fields.get("uid", "0"), fields.get("gid", "0"), mode)

    def resolve_part(self, kind, source):
        """(object name, default target) for SOURCE: a part name or an object name."""
        raw = getattr(self.buildout, "_raw", None) or {}
        recipe = "dockeroo:docker." + kind
        for section, values in raw.items():
            if (values.get("recipe") or "").strip() != recipe:
                continue
            base = (values.get("name") or section).strip()
            if section == source or ("${" not in base and source.startswith(base + "-")):
                part = self.buildout[section]  # buildout installs it before this part
                if section == source or part.get(kind) == source:
                    return part[kind], part["name"]
        return source, None

    def read_port(self, line):
        match = re.match(r"^(?:(\d+):)?(\d+)(?:/(tcp|udp|sctp))?(?::(ingress|host))?$", line)
        if match:
            published, target, proto, mode = match.groups()
        else:
            fields = dict(f.partition("=")[::2] for f in line.split(","))
            published, target = fields.get("published"), fields.get("target")
            proto, mode = fields.get("protocol"), fields.get("mode")
            if not (target or "").isdigit() or (published and not published.isdigit()) or \
                    set(fields) - {"published", "target", "protocol", "mode"}:
                raise self.opts.error("ports", "each line is PUBLISHED:TARGET[/PROTOCOL][:host] or "
                                      "published=P,target=T[,protocol=tcp][,mode=host]", line)
        return (int(published) if published else 0, int(target), proto or "tcp", mode or "ingress")

    @classmethod
    def owned(cls, values):
        return []  # services are not in the engine's inspect cache: see ensure/remove

    # -- desired state ------------------------------------------------------------------
    def fingerprints(self, image_id):
        values = {o: v for o, v in sorted(self.options.items())
                  if o not in ("service-id", OWNER_OPTION, "wait", "timeout", "keep")}
        values.update(secret_versions=self.secrets, config_versions=self.configs, image_id=image_id)
        task = {o: v for o, v in values.items() if o not in SERVICE_LEVEL}
        return hash_values(values), hash_values(task)

    def desired(self):
        image = self.engine.inspect("image", self.image)
        image_id = image["Id"] if image else None
        service_fp, task_fp = self.fingerprints(image_id)
        container_labels = dict(self.container_labels)
        container_labels[LABEL_TASK] = task_fp
        container_labels[LABEL_IMAGE] = self.image
        resolve = self.resolve
        if resolve == "auto":  # a local image no registry knows
            resolve = "never" if image and not image.get("RepoDigests") else "always"
        # a local image is deployed by its id: the tag may point at a newer build
        # by the time a task starts or an update rolls back
        deploy = image_id if resolve == "never" and image_id else self.image
        return {"labels": self.labels(service_fp, self.user_labels),
                "container_labels": container_labels, "task_fp": task_fp,
                "resolve": resolve, "fingerprint": service_fp, "image": deploy}

    def ensure(self):
        swarm.require_manager(self.engine, self.part, self.recipe)
        for name, _aliases in self.networks:
            if self.engine.inspect("network", name) is None:
                raise UserError("Part [%s]: network %s (option networks) does not exist"
                                % (self.part, name))
        want = self.desired()
        current = swarm.inspect(self.engine, "service", self.name)
        if current is not None and not swarm.is_ours(current, self.part, self.owner):
            raise UserError("Part [%s]: service %s exists and was not made by this part; remove "
                            "it or choose another name" % (self.part, self.name))
        if current is not None and self.current_mode(current) != self.mode:
            self.log.info("Service %s changes mode (%s -> %s): removing it to create it again",
                          self.name, self.current_mode(current), self.mode)
            self.remove_service(self.engine, current, self.log, self.wait or DEFAULT_WAIT)
            current = None
        if current is None:
            self.run(["service", "create", "--detach", "--name", self.name]
                     + self.create_args(want) + [want["image"]] + (self.command or []), long=True)
            self.log.info("Created service %s", self.name)
            # a new service that does not converge is not left behind half-made
            self.on_failure(lambda: self.remove_service(
                self.engine, swarm.inspect(self.engine, "service", self.name), self.log,
                self.wait or DEFAULT_WAIT))
        else:
            changes = self.update_args(current, want)
            if not changes:
                return []
            changed = {re.sub(r"-(add|rm)$", "", c.split("=", 1)[0].lstrip("-"))
                       for c in changes if c.startswith("--")}  # flag names only, no values
            self.log.info("Updating service %s (%s)", self.name, ", ".join(sorted(changed)))
            self.run(["service", "update", "--detach"] + changes
                     + self.scalar_args() + self.resolve_args(want) + [self.name],
                     long=True)
        if self.wait:
            self.converge(want)
        return []

    @staticmethod
    def resolve_args(want):
        return ["--no-resolve-image"] if want["resolve"] == "never" else []

    def current_mode(self, current):
        return "global" if "Global" in (current.get("Spec", {}).get("Mode") or {}) else "replicated"

    def scalar_args(self):
        """Every scalar option as a flag, the ones not given at their reset value."""
        args = []
        for option, (flag, _kind, reset) in SCALARS.items():
            value = self.scalars.get(option, reset)
            if value is not None:
                args += [flag, value]
        if self.scalars.get("no-healthcheck"):
            args.append("--no-healthcheck")
        return args

    def create_args(self, want):
        # every scalar explicit (resets too): an update passing them changes nothing
        args = self.resolve_args(want) + self.scalar_args()
        args += ["--mode", self.mode]
        if self.mode == "replicated":
            args += ["--replicas", str(self.replicas)]
        if self.entrypoint:
            args += ["--entrypoint", quote_command(self.entrypoint)]
        for key, value in self.env.items():
            args += ["--env", "%s=%s" % (key, value)]
        args += label_args(want["labels"])
        for key, value in want["container_labels"].items():
            args += ["--container-label", "%s=%s" % (key, value)]
        for name, aliases in self.networks:
            args += ["--network", network_spec(name, aliases)]
        for _key, spec in self.mounts:
            args += ["--mount", spec]
        for ref in self.secrets:
            args += ["--secret", reference_spec(ref)]
        for ref in self.configs:
            args += ["--config", reference_spec(ref)]
        for line in self.constraints:
            args += ["--constraint", line]
        for line in self.preferences:
            args += ["--placement-pref", line]
        for port in self.ports:
            args += ["--publish", port_spec(port)]
        return args

    def update_args(self, current, want):
        """The ``service update`` flags that make CURRENT match; [] when it does."""
        spec = current.get("Spec") or {}
        task = spec.get("TaskTemplate") or {}
        cs = task.get("ContainerSpec") or {}
        args = []
        image = want["image"]
        has_image = cs.get("Image") or ""
        if (has_image if image.startswith("sha256:") or "@" in image
                else has_image.split("@")[0]) != image:
            args += ["--image", image]
        if (cs.get("Args") or []) != (self.command or []):
            args += ["--args", quote_command(self.command or [])]
        if (cs.get("Command") or []) != (self.entrypoint or []):
            args += ["--entrypoint", quote_command(self.entrypoint or [])]
        if self.mode == "replicated" and (spec.get("Mode", {}).get("Replicated") or {}).get(
                "Replicas") != self.replicas:
            args += ["--replicas", str(self.replicas)]
        has_env = dict(e.partition("=")[::2] for e in cs.get("Env") or [])
        args += mapping_args("env", has_env, self.env)
        args += mapping_args("label", spec.get("Labels") or {}, want["labels"])
        args += mapping_args("container-label", cs.get("Labels") or {}, want["container_labels"])
        has_nets = {}
        for net in task.get("Networks") or []:
            has_nets[net.get("Target")] = tuple(sorted(net.get("Aliases") or []))
        wanted_nets = {self.engine.inspect("network", n)["Id"]: (n, a) for n, a in self.networks}
        for target, aliases in has_nets.items():
            if target not in wanted_nets or wanted_nets[target][1] != aliases:
                args += ["--network-rm", target]
        for target, (name, aliases) in wanted_nets.items():
            if has_nets.get(target) != aliases:
                args += ["--network-add", network_spec(name, aliases)]
        has_mounts = {(m.get("Type"), m.get("Source") or "", m.get("Target"), bool(m.get("ReadOnly")))
                      for m in cs.get("Mounts") or []}
        wanted = {key for key, _ in self.mounts}
        # the CLI adds before it removes: a changed mount is replaced by its add
        args += ["--mount-rm=" + t for t in sorted({m[2] for m in has_mounts} - {m[2] for m in wanted})]
        args += ["--mount-add=" + spec for key, spec in self.mounts if key not in has_mounts]
        for kind, refs in (("secret", self.secrets), ("config", self.configs)):
            has = {reference_key(kind, r) for r in cs.get(kind.capitalize() + "s") or []}
            wanted = set(refs)
            args += ["--%s-rm=%s" % (kind, r[0]) for r in sorted(has - wanted)]
            args += ["--%s-add=%s" % (kind, reference_spec(r)) for r in refs if r not in has]
        placement = task.get("Placement") or {}
        args += list_args("constraint", placement.get("Constraints") or [], self.constraints)
        prefs = ["spread=" + (p.get("Spread") or {}).get("SpreadDescriptor", "")
                 for p in placement.get("Preferences") or []]
        args += list_args("placement-pref", prefs, self.preferences)
        has_ports = {(p.get("PublishedPort", 0), p.get("TargetPort"), p.get("Protocol", "tcp"),
                      p.get("PublishMode", "ingress"))
                     for p in (spec.get("EndpointSpec") or {}).get("Ports") or []}
        if has_ports != set(self.ports):
            args += ["--publish-rm=target=%d,protocol=%s,mode=%s" % p[1:]
                     for p in sorted(has_ports - set(self.ports))]
            args += ["--publish-add=" + port_spec(p) for p in self.ports if p not in has_ports]
        mode = (spec.get("EndpointSpec") or {}).get("Mode") or "vip"
        if mode != self.scalars.get("endpoint-mode", "vip"):
            args += ["--endpoint-mode", self.scalars.get("endpoint-mode", "vip")]
        return args

    # -- convergence --------------------------------------------------------------------
    def converge(self, want):
        """Wait until every task runs the new spec; UserError when the update
        rolled back, paused, or did not converge within ``wait``."""
        deadline = time.monotonic() + self.wait
        while True:
            current = swarm.inspect(self.engine, "service", self.name) or {}
            status = current.get("UpdateStatus") or {}
            state = status.get("State")
            if state in ("rollback_completed", "rollback_paused", "paused"):
                raise UserError("Part [%s]: the update of service %s failed and was %s: %s%s"
                                % (self.part, self.name,
                                   "rolled back" if state.startswith("rollback") else "paused",
                                   status.get("Message") or state, self.task_errors()))
            if state not in ("updating", "rollback_started") and self.converged(want):
                self.log.info("Service %s has converged", self.name)
                return
            if time.monotonic() >= deadline:
                raise UserError("Part [%s]: service %s did not converge within %ss (wait)%s"
                                % (self.part, self.name, int(self.wait), self.task_errors()))
            time.sleep(1)

    def tasks(self, desired_running=True):
        args = ["service", "ps", "--quiet", "--no-trunc", self.name]
        if desired_running:
            args[3:3] = ["--filter", "desired-state=running"]
        ids = self.run(args).stdout.split()
        if not ids:
            return []
        return self.run(["inspect", "--type", "task"] + ids).json() or []

    def converged(self, want):
        tasks = self.tasks()
        ready = [t for t in tasks if (t.get("Status") or {}).get("State") == "running"
                 and ((t.get("Spec") or {}).get("ContainerSpec") or {}).get(
                     "Labels", {}).get(LABEL_TASK) == want["task_fp"]]
        if self.mode == "global":
            return bool(tasks) and len(ready) == len(tasks)
        return len(ready) == len(tasks) == self.replicas

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
    def remove(cls, engine, part, options, log):
        opts = Options(part, dict(options))
        name = options.get("name") or part
        if not swarm.is_manager(engine):
            log.debug("%s is not a swarm manager: no service %s there",
                      engine.config.description, name)
            return
        current = swarm.inspect(engine, "service", name)
        if current is None:
            return
        if not swarm.is_ours(current, part, options.get(OWNER_OPTION)):
            log.warning("Service %s was not created by this part; leaving it", name)
            return
        wait = opts.text("wait")
        wait = DEFAULT_WAIT if wait is None or not re.match(r"^\d", wait) else opts.duration("wait")
        cls.remove_service(engine, current, log, wait)

    @staticmethod
    def remove_service(engine, current, log, wait):
        """Remove a service; wait (up to WAIT s) until its containers are gone here."""
        name, sid = current["Spec"]["Name"], current["ID"]
        engine.run(["service", "rm", sid])
        deadline = time.monotonic() + wait
        while engine.run(["ps", "--all", "--quiet", "--filter",
                          "label=com.docker.swarm.service.id=" + sid]).stdout.split():
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
