"""dockeroo:docker.run: a container kept in the state the part describes.

Desired state, not replay: the container carries the label
``io.dockeroo.fingerprint``, a hash of everything that defines it (the
image id looked up when the part is installed or updated, every option,
the layout's content, the script).  ``ensure()`` compares that label with
the part:

* same fingerprint: nothing is done (a container stopped by hand is
  started again when ``start`` is true);
* no container: it is created (layout, start, wait, script);
* another fingerprint (a changed option, layout content or script, a
  rebuilt or re-pulled image): the container is recreated and the script
  runs again.  The old container is stopped and renamed aside first; it is
  removed once the new one is up, or renamed back and restarted when
  anything fails.
"""

import dataclasses
import ipaddress
import logging
import os
import re

from zc.buildout import UserError

from .. import container as ct
from .. import references
from ..engine import DEFAULT_TIMEOUT, DockerError
from ..fingerprint import file_fingerprint, folder_fingerprint, hash_values
from ..options import CONTAINER_NAME, Options
from ..recipe import (LABEL_FINGERPRINT, OWNER_OPTION, Recipe as Base, is_owned, os_errors,
                      remove_object,
                      uninstalled_together)

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9]+(?:\.[0-9]+){3}):)?"
    r"(?:(?P<host>\d+(?:-\d+)?)?:)?"
    r"(?P<container>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")
RESTART_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
SPECIAL_NETWORKS = ("host", "none")
#: outputs other parts may reference as ${part:...}
RUNTIME_OUTPUTS = ("container-id", "ip-address")
#: recipes that make images, and the options naming the image
IMAGE_MAKERS = {
    "dockeroo:docker.build": "builds",
    "dockeroo:docker.pull": "pulls",
    "dockeroo:docker.gentoo-build": "builds",
    "dockeroo:docker.gentoo-bootstrap": "builds",
}
#: Docker's own default for ``docker stop``
DOCKER_STOP_TIMEOUT = 10
#: (owner, part) of the parts whose container an earlier uninstall of this
#: buildout run removed together with its own
_removed_together = set()


#: (raw configuration, {section: {option referenced as ${section:option}}}) of the last scan
_references = (None, {})
REFERENCE_RE = re.compile(r"\$\{([^:}]*):([^}]*)\}")


def referenced_outputs(buildout, part, names):
    """Which of NAMES other sections reference as ``${part:name}``.

    Read from the raw configuration (nothing gets initialized), scanned
    once per configuration, not once per part.
    """
    global _references
    raw = getattr(buildout, "_raw", None) or {}
    if _references[0] is not raw:
        found = {}
        for values in raw.values():
            for value in values.values():
                if isinstance(value, str) and "${" in value:
                    for match in REFERENCE_RE.finditer(value):
                        found.setdefault(match.group(1), set()).add(match.group(2))
        _references = (raw, found)
    return _references[1].get(part, set()) & set(names)


def image_makers(buildout, ref):
    """(section, recipe, in_parts) of the sections whose recipe makes image REF."""
    raw = getattr(buildout, "_raw", None) or {}
    initialized = getattr(buildout, "_data", None) or {}
    try:
        parts = set(buildout["buildout"].get("parts", "").split())
    except Exception:  # pragma: no cover - a buildout always has its section
        parts = set()
    wanted = same_image(ref)
    found = []
    if wanted is None:
        return found
    for section, values in raw.items():
        recipe = (values.get("recipe") or "").strip()
        if recipe not in IMAGE_MAKERS:
            continue
        if section in initialized:  # substituted values
            values = initialized[section]
        names = [values.get("name"), values.get("image"), section]
        for name in names:
            if name and "${" not in name and same_image(name.strip()) == wanted:
                found.append((section, recipe, section in parts or section in initialized))
                break
    return found


def same_image(text):
    """TEXT as a normalised reference (to compare spellings), or None if it is none."""
    try:
        return references.parse(text).normalized()
    except references.ReferenceError:
        return None


def container_ip(obj, network=None):
    """The IPv4 address of a container (inspect JSON) on NETWORK (default: its first)."""
    settings = (obj or {}).get("NetworkSettings") or {}
    networks = settings.get("Networks") or {}
    if network and network in networks:
        return networks[network].get("IPAddress") or ""
    if settings.get("IPAddress"):
        return settings["IPAddress"]
    for value in networks.values():
        if value.get("IPAddress"):
            return value["IPAddress"]
    return ""


class Recipe(Base):
    recipe = "docker.run"
    name_aliases = ("container",)

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        # batched look-ups: the first ensure() of any part fetches them all
        self.engine.want("container", self.name)
        self.engine.want("image", self.image)
        self.early = {}
        if self.referenced:
            self.publish_early()

    # -- options ------------------------------------------------------------------
    def setup(self):
        opts = self.opts
        opts.object_name(self.name_option, self.name,
                         hint=" (name defaults to the part name)" if self.name == self.part else "")
        self.options["container"] = self.name
        self.image = opts.image_ref("image")
        self.start = opts.bool("start", True)
        self.wait = opts.duration("wait", None)
        self.stop_timeout = opts.int("stop-timeout", None, minimum=0)

        command = opts.argv("command")
        entrypoint = opts.argv("entrypoint")
        user = opts.word("user")
        workdir = opts.text("workdir")
        if workdir and not workdir.startswith("/"):
            raise opts.error("workdir", "must be an absolute path", workdir)
        hostname = opts.word("hostname")

        env = opts.key_values("env")
        env_files = []
        for line in opts.lines("env-file"):
            path = os.path.normpath(os.path.join(self.directory, os.path.expanduser(line)))
            if not os.path.isfile(path):
                raise opts.error("env-file", "%s is not a file" % path, line)
            env_files.append(path)
        if env_files:
            self.options["env-file-fingerprint"] = hash_values(
                [file_fingerprint(p) for p in env_files])

        user_labels = opts.key_values("labels")
        for key in user_labels:
            if key.startswith("io.dockeroo."):
                raise opts.error("labels", "io.dockeroo.* labels are set by dockeroo itself", key)
        self.user_labels = user_labels

        self.networks = []
        for line in opts.lines("networks"):
            if re.search(r"\s", line):
                raise opts.error("networks", "one network name per line", line)
            self.networks.append(opts.object_name("networks", line, strict=False))
        special = [n for n in self.networks if n in SPECIAL_NETWORKS or n.startswith("container:")]
        if special and len(self.networks) > 1:
            raise opts.error("networks", "%s cannot be combined with other networks" % special[0],
                             opts.text("networks"))
        self.aliases = []
        for line in opts.lines("network-aliases"):
            if not NAME_RE.match(line):
                raise opts.error("network-aliases", "an alias is a host name (letters, digits "
                                 "and _ . -), one per line", line)
            self.aliases.append(line)
        if self.aliases and (not self.networks or special or self.networks[0] == "bridge"):
            raise opts.error("network-aliases", "aliases need a user-defined network in "
                             "'networks' (Docker's default bridge has no aliases)",
                             opts.text("network-aliases"))

        links = []
        for line in opts.lines("links"):
            parts = line.split(":")
            if len(parts) > 2 or not CONTAINER_NAME.match(parts[0]) or not all(
                    NAME_RE.match(p) for p in parts):
                raise opts.error("links", "each line must be CONTAINER:ALIAS (or CONTAINER)", line)
            links.append(line)

        volumes = ct.read_volumes(opts, "volumes", base=self.directory)
        volumes_from = []
        for line in opts.lines("volumes-from"):
            parts = line.split(":")
            if len(parts) > 2 or not CONTAINER_NAME.match(parts[0]) or (
                    len(parts) == 2 and parts[1] not in ("ro", "rw")):
                raise opts.error("volumes-from", "each line must be CONTAINER or "
                                 "CONTAINER:ro or CONTAINER:rw", line)
            volumes_from.append(line)

        ports = []
        for line in opts.lines("ports"):
            ports.append(_check_port(opts, line))
        restart = opts.text("restart")
        if restart and not RESTART_RE.match(restart):
            raise opts.error("restart", "must be no, always, unless-stopped or "
                             "on-failure[:MAX-RETRIES]", restart)

        self.layout = self.path_option("layout", must_exist=True, kind="dir")
        self.layout_uid = opts.int("layout-uid", 0, minimum=0)
        self.layout_gid = opts.int("layout-gid", self.layout_uid, minimum=0)
        layout_fp = None
        if self.layout:
            with os_errors(opts, "layout", "cannot read the layout", self.layout):
                layout_fp = folder_fingerprint(self.layout, cache_dir=self.cache_directory)
            self.options["layout-fingerprint"] = layout_fp

        self.script = opts.script("script")
        self.script_shell = opts.argv("script-shell", ["/bin/sh"])
        self.script_user = opts.word("script-user")
        if self.script and not self.start:
            raise opts.error("script", "runs in the started container: it needs start = true")

        self.spec = ct.ContainerSpec(
            name=self.name, image=self.image, command=command, entrypoint=entrypoint,
            user=user, tty=opts.bool("tty", False), env=env, env_files=env_files,
            labels=dict(user_labels), volumes=volumes, volumes_from=volumes_from, links=links,
            network=self.networks[0] if self.networks else None,
            network_aliases=list(self.aliases), ports=ports, restart=restart, workdir=workdir,
            hostname=hostname, stop_timeout=self.stop_timeout, **ct.read_privileges(opts))
        self.definition = dict(
            spec=dataclasses.asdict(self.spec),
            networks=self.networks,
            layout=[layout_fp, self.layout_uid, self.layout_gid] if layout_fp else None,
            env_files=self.options.get("env-file-fingerprint"),
            script=[self.script, self.script_shell, self.script_user] if self.script else None,
        )
        self.referenced = referenced_outputs(self.buildout, self.part, RUNTIME_OUTPUTS)

    @classmethod
    def owned(cls, values):
        return [("container", values["name"])]

    # -- outputs ------------------------------------------------------------------
    def publish_early(self):
        """``${part:container-id}``/``${part:ip-address}`` for other parts' options.

        Only done when another section references them (the look-up costs a
        docker call): the values of the container as buildout starts, empty
        when it does not exist yet.
        """
        try:
            obj = self.engine.inspect("container", self.name)
        except DockerError as exc:
            raise UserError("Part [%s] (%s): cannot look up container %s for "
                            "${%s:%s}: %s" % (self.part, self.recipe, self.name, self.part,
                                              sorted(self.referenced)[0], exc))
        if obj is not None and not self.is_ours(obj):
            obj = None
        self.early = {"container-id": obj["Id"] if obj else "",
                      "ip-address": container_ip(obj, self.first_network) if obj else ""}
        for key in RUNTIME_OUTPUTS:
            self.options[key] = self.early[key]

    @property
    def first_network(self):
        return self.networks[0] if self.networks else None

    def publish(self, obj=None):
        if obj is None and not self.referenced:
            # nobody reads the new values in this run (buildout substituted
            # references before installing): no look-up; the next run's
            # batched inspect publishes them
            return
        if obj is None:
            self.engine.forget("container", self.name)
            obj = self.engine.inspect("container", self.name) or {}
        values = {"container-id": obj.get("Id", ""),
                  "ip-address": container_ip(obj, self.first_network)}
        for key, value in values.items():
            self.options[key] = value
            if key in self.referenced and self.early.get(key) != value:
                self.log.warning("${%s:%s} is now %r (it was %r when buildout started): "
                                 "run buildout again so that the parts using it see the new value",
                                 self.part, key, value, self.early.get(key))

    # -- desired state --------------------------------------------------------------
    def ensure(self):
        current = self.engine.inspect("container", self.name)
        if current is not None and not self.is_ours(current):
            raise UserError(
                "Part [%s]: container %s already exists and was not created by this part; "
                "remove it or choose another name (option '%s')"
                % (self.part, self.name, self.name_option))
        fingerprint = self.fingerprint()
        labels = ((current or {}).get("Config") or {}).get("Labels") or {}
        if current is not None and labels.get(LABEL_FINGERPRINT) == fingerprint:
            state = current.get("State") or {}
            if self.start and not state.get("Running"):
                self.log.info("Starting container %s (it was %s)", self.name,
                              state.get("Status", "stopped"))
                self.start_container(self.name)
                self.engine.forget("container", self.name)
                if self.wait:
                    self.wait_ready(self.name)
                current = None
            self.publish(current)
            return []
        self.create(fingerprint, current)
        return []

    def image_id(self):
        data = self.engine.inspect("image", self.image)
        if data is None:  # made by an earlier part of this run?
            self.engine.forget("image", self.image)
            data = self.engine.inspect("image", self.image)
        if data is None:
            raise self.opts.error("image", "image %s does not exist on %s; %s" % (
                self.image, self.engine.config.description, self.image_hint()), self.image)
        return data["Id"]

    def image_hint(self):
        makers = image_makers(self.buildout, self.image)
        if not makers:
            return ("no part of this buildout builds or pulls it: add a dockeroo:docker.build "
                    "or dockeroo:docker.pull part (referenced as image = ${that-part:name}) "
                    "or make the image by hand")
        hints = []
        for section, recipe, in_parts in makers:
            verb = IMAGE_MAKERS[recipe]
            if in_parts:
                hints.append("part [%s] (%s) %s it but has not made it yet: write "
                             "image = ${%s:name} so that it is installed before this part"
                             % (section, recipe, verb, section))
            else:
                hints.append("part [%s] (%s) %s it but is not in the buildout's parts: add it"
                             % (section, recipe, verb))
        return "; ".join(hints)

    def create(self, fingerprint, old):
        """Make the container under a temporary name; it gets the part's name
        only once layout, start, wait and script are done, so a container
        under that name is always complete (a killed run leaves a temporary
        the next run removes)."""
        name = self.name
        self.check_engine()
        self.check_networks()
        if old is not None:
            self.set_aside(old)
        if self.in_one_step:
            self.create_in_one_step(fingerprint, old)
        else:
            self.create_in_steps(fingerprint, old)
        self._undo = []
        if old is not None:
            self.drop_aside(self.aside_name(old))
        self.publish()

    @property
    def in_one_step(self):
        """Whether the container is complete as soon as ``docker run -d`` (or
        ``docker create`` with ``start = false``) returns: no layout, script
        or wait, at most one network.  Such a container is made under its
        own name in one docker process; a run killed meanwhile leaves either
        nothing or the complete container (started by the next run if the
        kill came before it started)."""
        return not (self.layout or self.script or self.wait or len(self.networks) > 1)

    def fingerprint(self):
        """The fingerprint label of the container the part describes now."""
        return hash_values(self.definition, self.image_id())

    def one_step_args(self, fingerprint):
        """The argv of :meth:`create_in_one_step` (``run --detach`` or ``create``)."""
        spec = dataclasses.replace(self.spec, labels=self.labels(fingerprint, self.user_labels))
        args = spec.create_args()
        return ["run", "--detach"] + args[1:] if self.start else args

    def create_in_one_step(self, fingerprint, old):
        name = self.name
        args = self.one_step_args(fingerprint)
        self.log.info("%s container %s from %s", "Recreating" if old else "Creating", name,
                      self.image)
        self.on_failure(lambda: self.remove_container(name), "removed the new container %s" % name)
        try:
            self.run(args)
        except DockerError as exc:
            self.engine.forget("container", name)
            if self.start and self.engine.inspect("container", name) is not None:
                raise self.not_started(exc)  # created, then refused to start
            raise
        self.engine.forget("container", name)

    def create_in_steps(self, fingerprint, old):
        name = self.name
        temp = "%s-dockeroo-new-%s" % (name, self.lifecycle.id[:12])
        labels = self.temporary(temp, fingerprint, self.user_labels,
                                done="removed the new container %s" % name)
        spec = dataclasses.replace(self.spec, name=temp, labels=labels)
        self.log.info("%s container %s from %s", "Recreating" if old else "Creating", name,
                      self.image)
        cid = self.run(spec.create_args()).stdout.strip().splitlines()[-1]
        for network in self.networks[1:]:
            args = ["network", "connect"]
            for alias in self.aliases:
                args += ["--alias", alias]
            self.run(args + [network, cid])
        if self.layout:
            self.log.info("Loading layout %s", self.layout)
            with os_errors(self.opts, "layout", "cannot read the layout", self.layout):
                ct.load_layout(self.engine, cid, self.layout, uid=self.layout_uid,
                               gid=self.layout_gid, timeout=self.cmd_timeout(long=True))
        if self.start:
            self.start_container(cid)
            if self.wait:
                self.wait_ready(cid)
            if self.script:
                self.run_script(cid)
        # complete: from here on it is the part's container
        self.run(["rename", cid, name])
        self.lifecycle.released(temp)
        self.engine.forget("container", name)

    def aside_name(self, old):
        return "%s-dockeroo-old-%s" % (self.name, old["Id"][:12])

    def start_container(self, cid):
        try:
            self.run(["start", cid])
        except DockerError as exc:
            raise self.not_started(exc)

    def not_started(self, exc):
        lines = [l.strip() for l in exc.stderr.splitlines()
                 if l.strip() and not l.startswith("Error: failed to start")]
        return UserError("Part [%s]: container %s did not start: %s"
                         % (self.part, self.name, "; ".join(lines) or exc))

    def check_engine(self):
        """Options this engine cannot honour: an Error before anything is made (the
        engine is asked what it is only when such an option is used)."""
        for option, used in (("links", self.spec.links), ("devices", self.spec.devices)):
            why = self.engine.capabilities.limit(option) if used else None
            if why:
                raise self.opts.error(option, why + " (nothing was created)",
                                      self.opts.text(option))

    def check_networks(self):
        for network in self.networks:
            if network not in SPECIAL_NETWORKS + ("bridge",) and not network.startswith("container:"):
                self.engine.want("network", network)
        for network in self.networks:
            if network in SPECIAL_NETWORKS + ("bridge",) or network.startswith("container:"):
                continue
            if self.engine.inspect("network", network) is None:
                self.engine.forget("network", network)  # made by an earlier part?
                if self.engine.inspect("network", network) is None:
                    raise self.opts.error("networks", "network %s does not exist" % network,
                                          network)

    def set_aside(self, old):
        """Stop the old container and rename it; undone if anything fails."""
        was_running = (old.get("State") or {}).get("Running")
        aside = self.aside_name(old)
        if was_running:
            self.log.info("Stopping the previous container %s", self.name)
            stop = old.get("Config", {}).get("StopTimeout")
            # --time always: without it Podman kills at once (Docker waits StopTimeout)
            self.engine.run(["stop", "--time", str(DOCKER_STOP_TIMEOUT if stop is None else stop),
                             self.name],
                            timeout=self.cmd_timeout() + (stop or DOCKER_STOP_TIMEOUT))
        super().set_aside(self.name, aside, was_running)

        def restore():
            self.engine.run(["rename", aside, self.name], timeout=self.cmd_timeout())
            if was_running:
                self.engine.run(["start", self.name], timeout=self.cmd_timeout())
            self.engine.forget("container", self.name)
            self.lifecycle.aside_done(aside)
            if self.lifecycle.interrupted is None:
                self.log.warning("The previous container %s was put back", self.name)
        self.on_failure(restore, "put back the previous container %s" % self.name)

    def run_script(self, cid):
        self.log.info("Running script in %s", self.name)
        try:
            ct.exec_script(self.engine, cid, self.script, shell=self.script_shell,
                           user=self.script_user, log=self.log,
                           timeout=self.cmd_timeout(long=True))
        except DockerError as exc:
            text = exc.stderr
            # Podman answers an unknown exec user with a bare "received 500"
            if self.script_user and ("unable to find user" in text.lower()
                                     or "unable to upgrade to tcp, received 500" in text):
                raise self.opts.error("script-user", "no such user in container %s (%s)"
                                      % (self.name, text.strip()), self.script_user)
            if exc.timed_out:
                raise self.opts.error("script", "did not finish within %ss (option 'timeout')"
                                      % exc.timed_out)
            raise self.opts.error("script", "failed in container %s (exit %s): %s"
                                  % (self.name, exc.returncode, text[-2000:]))

    def wait_ready(self, cid):
        try:
            ct.wait_ready(self.engine, cid, self.wait)
        except ct.NotReady as exc:
            raise self.opts.error("wait", "container %s is not ready: %s" % (self.name, exc),
                                  self.opts.text("wait"))

    # -- removal ------------------------------------------------------------------------
    def drop_replaced(self, old, engine):
        if old.get("name") and old.get("name") != self.name:
            self.remove(engine, self.part, old, self.log)

    @classmethod
    def remove(cls, engine, part, options, log):
        """Stop (honouring ``stop-timeout``) and remove with its anonymous volumes.

        The containers of the other docker.run parts this buildout run
        uninstalls too are stopped and removed in the same ``docker stop``
        and ``docker rm`` calls (Docker handles the names in parallel);
        their own uninstalls then have nothing left to do.
        """
        key = (options.get(OWNER_OPTION), part)
        if key in _removed_together:
            _removed_together.discard(key)
            return
        others = uninstalled_together(part, options)
        if others and part in cls.remove_together(engine, [(part, options)] + others):
            return
        timeout, stop = _removal_times(part, options)
        remove_object(engine, "container", options["name"], part, options.get(OWNER_OPTION), log,
                      timeout=timeout, stop_timeout=stop or None)

    @classmethod
    def remove_together(cls, engine, items):
        """Stop and remove the containers of ITEMS, (part, options) pairs, in
        one ``docker stop`` per stop timeout and one ``docker rm``.

        Returns the parts whose container is gone.  Containers not made by
        their part, and any a docker call could not remove, are left to
        the part's own uninstall (which says why).
        """
        entries = []
        for part, values in items:
            engine.want("container", values["name"])
            entries.append((part, values) + _removal_times(part, values))
        done, targets, stops = set(), [], {}
        try:
            for part, values, timeout, stop in entries:
                obj = engine.inspect("container", values["name"])
                if obj is None:
                    done.add(part)
                elif is_owned(obj, part, values.get(OWNER_OPTION)):
                    targets.append((part, values["name"], timeout))
                    if stop and (obj.get("State") or {}).get("Running"):
                        stops.setdefault(stop, []).append(values["name"])
            if not targets:
                return done
            longest = max(timeout for _part, _name, timeout in targets)
            for stop, names in sorted(stops.items()):
                engine.run(["stop", "--time", str(stop)] + names, timeout=longest + stop,
                           check=False)
            result = engine.run(["rm", "--force", "--volumes"] + [n for _p, n, _t in targets],
                                timeout=longest, check=False)
        except DockerError:
            return done
        removed = set(result.stdout.split())
        for part, name, _timeout in targets:
            engine.forget("container", name)
            if name in removed:
                logging.getLogger(part).info("Removed container %s", name)
                done.add(part)
        owner = items[0][1].get(OWNER_OPTION)
        _removed_together.update((owner, part) for part in done if part != items[0][0])
        return done


def _removal_times(part, options):
    """(command timeout, stop timeout) for removing a part's container."""
    opts = Options(part, dict(options))
    timeout = opts.duration("timeout", DEFAULT_TIMEOUT)
    stop = opts.int("stop-timeout", None)
    if stop is None:
        stop = DOCKER_STOP_TIMEOUT
    return timeout, stop


def _check_port(opts, line):
    match = PORT_RE.match(line)
    if not match:
        raise opts.error("ports", "each line must be [IP:][HOST-PORT:]CONTAINER-PORT[/tcp|udp|sctp]",
                         line)
    for key in ("host", "container"):
        value = match.group(key)
        if value and not all(1 <= int(p) <= 65535 for p in value.split("-")):
            raise opts.error("ports", "port numbers are 1 to 65535", line)
    ip = match.group("ip")
    if ip:
        try:
            ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            raise opts.error("ports", "%s is not an IP address" % ip, line)
    return line


uninstall = Recipe.uninstaller()
