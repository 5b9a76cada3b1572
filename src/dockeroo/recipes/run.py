"""dockeroo:docker.run: a container kept in the state the part describes.

read -> plan -> apply (see :mod:`dockeroo.model.plan`).  The container carries
a fingerprint of its whole Spec and image id: the same one is unchanged (a
stopped container is started again), another one recreates it (the old one
set aside until the new one is up; see docs/recipes/docker.run.rst).
"""

import dataclasses
import ipaddress
import logging
import os
import re
from typing import Optional, Tuple

from zc.buildout import UserError

from dockeroo.runtime import ahead, container as ct
from dockeroo.base import references
from dockeroo.engine.errors import DockerError
from dockeroo.base.fingerprint import file_fingerprint, folder_fingerprint, hash_values
from dockeroo.engine.commands import repeated
from dockeroo.model.options import ALIAS_NAME, CONTAINER_NAME, Options, os_errors, removal_settings
from dockeroo.model.plan import action, fingerprint, not_fingerprinted
from dockeroo.model.ownership import (DOCKER_STOP_TIMEOUT, LABEL_FINGERPRINT, OWNER_OPTION,
    is_owned, labels_of, remove_containers, remove_object, renamed_temporary, stop_containers)
from dockeroo.runtime.recipe import Recipe as Base
from dockeroo.model.buildout import (initialized_sections, raw_sections,
                                     referenced_outputs)

PORT_RE = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9]+(?:\.[0-9]+){3}):)?"
    r"(?:(?P<host>\d+(?:-\d+)?)?:)?"
    r"(?P<container>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")
RESTART_RE = re.compile(r"^(no|always|unless-stopped|on-failure(:\d+)?)$")
SPECIAL_NETWORKS = ("host", "none")
#: outputs other parts may reference as ${part:...}
RUNTIME_OUTPUTS = ("container-id", "ip-address")
#: options that do not define the container (never a reason to recreate it)
NOT_DEFINING = RUNTIME_OUTPUTS + ("timeout", "keep", "start", "wait")
#: the options the recipe records itself, and the reason shown when they change
DESCRIBE = {"layout-fingerprint": "layout content changed",
            "env-file-fingerprint": "env-file content changed"}
#: recipes that make images, and the options naming the image
IMAGE_MAKERS = {
    "dockeroo:docker.build": "builds",
    "dockeroo:docker.pull": "pulls",
    "dockeroo:docker.gentoo-build": "builds",
    "dockeroo:docker.gentoo-bootstrap": "builds",
}


# -- read ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Spec:
    """What defines the container (all of it fingerprinted but the last fields)."""

    container: ct.ContainerSpec  # its labels: the user's only
    networks: Tuple[str, ...]
    layout_fingerprint: Optional[str]
    layout_owner: Tuple[int, int]
    env_file_fingerprint: Optional[str]
    script: Optional[str]
    script_shell: Tuple[str, ...]
    script_user: Optional[str]
    layout: Optional[str] = not_fingerprinted()
    start: bool = not_fingerprinted(True)
    wait: Optional[float] = not_fingerprinted()
    name_option: str = not_fingerprinted("name")

    @property
    def name(self):
        return self.container.name

    @property
    def image(self):
        return self.container.image

    @property
    def in_one_step(self):
        """Whether the container is complete as soon as ``docker run -d`` (or
        ``docker create`` with ``start = false``) returns: no layout, script
        or wait, at most one network.  Such a container is made under its
        own name in one docker process; a run killed meanwhile leaves either
        nothing or the complete container (started by the next run if the
        kill came before it started)."""
        return not (self.layout or self.script or self.wait or len(self.networks) > 1)


def read(opts, name, name_option, directory, cache_dir=None, hint=""):
    """The part's options -> Spec (every mistake a UserError)."""
    opts.object_name(name_option, name, hint=hint)
    image = opts.image_ref("image")
    start = opts.bool("start", True)
    wait = opts.duration("wait", None)
    stop_timeout = opts.int("stop-timeout", None, minimum=0)
    command, entrypoint = opts.argv("command"), opts.argv("entrypoint")
    user = opts.word("user")
    workdir = opts.text("workdir")
    if workdir and not workdir.startswith("/"):
        raise opts.error("workdir", "must be an absolute path", workdir)
    hostname = opts.word("hostname")
    env = opts.key_values("env")
    env_files = read_env_files(opts, directory)
    labels = opts.user_labels("labels")
    networks, aliases = read_networks(opts)
    links = read_links(opts)
    volumes = ct.read_volumes(opts, "volumes", base=directory)
    volumes_from = ct.read_volumes_from(opts)
    ports = [_check_port(opts, line) for line in opts.lines("ports")]
    restart = opts.text("restart")
    if restart and not RESTART_RE.match(restart):
        raise opts.error("restart", "must be no, always, unless-stopped or "
                         "on-failure[:MAX-RETRIES]", restart)
    layout, layout_fp, layout_owner = read_layout(opts, directory, cache_dir)
    script = opts.script("script")
    script_shell = opts.argv("script-shell", ["/bin/sh"])
    script_user = opts.word("script-user")
    if script and not start:
        raise opts.error("script", "runs in the started container: it needs start = true")
    container = ct.ContainerSpec(
        name=name, image=image, command=command, entrypoint=entrypoint, user=user,
        tty=opts.bool("tty", False), env=env, env_files=env_files, labels=labels,
        volumes=volumes, volumes_from=volumes_from, links=links,
        network=networks[0] if networks else None, network_aliases=aliases, ports=ports,
        restart=restart, workdir=workdir, hostname=hostname, stop_timeout=stop_timeout,
        **ct.read_privileges(opts))
    return Spec(container=container, networks=tuple(networks), layout_fingerprint=layout_fp,
                layout_owner=layout_owner,
                env_file_fingerprint=hash_values([file_fingerprint(p) for p in env_files])
                if env_files else None,
                script=script, script_shell=tuple(script_shell), script_user=script_user,
                layout=layout, start=start, wait=wait, name_option=name_option)


def read_env_files(opts, directory):
    out = []
    for line in opts.lines("env-file"):
        path = os.path.normpath(os.path.join(directory, os.path.expanduser(line)))
        if not os.path.isfile(path):
            raise opts.error("env-file", "%s is not a file" % path, line)
        out.append(path)
    return out


def read_networks(opts):
    """(networks, aliases): the networks joined (the first at create time) and
    the container's aliases on them."""
    networks = []
    for line in opts.lines("networks"):
        if re.search(r"\s", line):
            raise opts.error("networks", "one network name per line", line)
        networks.append(opts.object_name("networks", line, strict=False))
    special = [n for n in networks if n in SPECIAL_NETWORKS or n.startswith("container:")]
    if special and len(networks) > 1:
        raise opts.error("networks", "%s cannot be combined with other networks" % special[0],
                         opts.text("networks"))
    aliases = []
    for line in opts.lines("network-aliases"):
        if not ALIAS_NAME.match(line):
            raise opts.error("network-aliases", "an alias is a host name (letters, digits "
                             "and _ . -), one per line", line)
        aliases.append(line)
    if aliases and (not networks or special or networks[0] == "bridge"):
        raise opts.error("network-aliases", "aliases need a user-defined network in "
                         "'networks' (Docker's default bridge has no aliases)",
                         opts.text("network-aliases"))
    return networks, aliases


def read_links(opts):
    links = []
    for line in opts.lines("links"):
        parts = line.split(":")
        if len(parts) > 2 or not CONTAINER_NAME.match(parts[0]) or not all(
                ALIAS_NAME.match(p) for p in parts):
            raise opts.error("links", "each line must be CONTAINER:ALIAS (or CONTAINER)", line)
        links.append(line)
    return links


def read_layout(opts, directory, cache_dir):
    """(path, content fingerprint, (uid, gid)) of the layout (None, None, ... without)."""
    layout = opts.path("layout", directory, must_exist=True, kind="dir")
    uid = opts.int("layout-uid", 0, minimum=0)
    gid = opts.int("layout-gid", uid, minimum=0)
    if not layout:
        return None, None, (uid, gid)
    with os_errors(opts, "layout", "cannot read the layout", layout):
        return layout, folder_fingerprint(layout, cache_dir=cache_dir), (uid, gid)


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


def uses(spec):
    """(kind, name, relation) of the objects the container uses (see
    :mod:`dockeroo.model.graph`)."""
    return spec.container.uses() + [("network", n, "network") for n in spec.networks
                                    if n not in SPECIAL_NETWORKS
                                    and not n.startswith("container:")]


# -- plan ---------------------------------------------------------------------------
def plan(part, spec, observed, context, owner, options=None, image_error=None):
    """[Action] for the container of SPEC, given what the engine holds (OBSERVED).

    OWNER: the buildout's owner id (the container's ownership label);
    OPTIONS: the part's options (for the reasons naming changed options);
    IMAGE_ERROR: () -> the UserError raised when the image does not exist.
    The action's data is (the container's inspect JSON or None, the new fingerprint).
    """
    name = spec.name
    current = observed.get("container", name)
    if current is not None and not is_owned(current, part, owner):
        raise UserError(
            "Part [%s]: container %s already exists and was not created by this part; "
            "remove it or choose another name (option '%s')" % (part, name, spec.name_option))
    image = observed.get("image", spec.image)
    maker = context.image_change(spec.image)  # dockeroo plan: an earlier part remakes it
    if image is None and maker is None:
        raise image_error() if image_error else UserError(
            "Part [%s], option 'image' = %r: image %s does not exist" % (part, spec.image,
                                                                         spec.image))
    new = fingerprint(spec, image["Id"]) if image else None

    def act(verb, *reasons):
        return action(part, "container", name, verb, *reasons, data=(current, new))

    changed = context.changed_options(options or {}, ignore=NOT_DEFINING, describe=DESCRIBE)
    if current is None:
        return [act(*missing(spec, context, changed))]
    # certain: the container differs from the Spec with the image as it is now
    certain = new is not None and labels_of(current).get(LABEL_FINGERPRINT) != new
    reasons = list(changed) if certain or new is None else []
    if maker is not None and maker.verb == "maybe":
        if not certain:
            return [act("maybe", "image %s may change (%s)" % (spec.image, _why(maker)))]
    elif maker is not None:
        reasons.append("image %s will be %s (%s)" % (
            spec.image, "made" if maker.verb == "create" else "rebuilt", _why(maker)))
    elif certain and current.get("Image") != image["Id"] and "option 'image' changed" not in reasons:
        reasons.append("image %s changed (id %s -> %s)" % (
            spec.image, _short(current.get("Image")), _short(image["Id"])))
    if certain or reasons:
        return [act("recreate", *(reasons or ["its definition changed"]))]
    if spec.start and not (current.get("State") or {}).get("Running"):
        return [act("repair", "container %s is stopped" % name)]
    return [act("unchanged")]


def missing(spec, context, changed):
    """(verb, reasons...) for a container that does not exist."""
    old = context.old
    if spec.name in context.released:  # this run let go of it to recreate what it uses
        return "recreate", context.released[spec.name]
    if old is None:
        return "create", "new part"
    if old.get("name") != spec.name:
        return "create", "option 'name' changed (was %s)" % old.get("name")
    gone = "container %s is missing (removed by hand?)" % spec.name
    return ("create", gone, *changed) if changed else ("repair", gone)


def _why(act):
    return "; ".join(act.reasons) or "%s %s" % (act.verb, act.name)


def _short(image_id):
    return (image_id or "?").split(":")[-1][:12]


def image_makers(buildout, ref):
    """(section, recipe, in_parts) of the sections whose recipe makes image REF."""
    raw = raw_sections(buildout)
    initialized = initialized_sections(buildout)
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


# -- the recipe -----------------------------------------------------------------------
class Recipe(Base):
    recipe = "docker.run"
    name_aliases = ("container",)

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        # batched look-ups: the first plan of any part fetches them all
        self.engine.want("container", self.name)
        self.engine.want("image", self.spec.image)
        self.early = {}
        if self.referenced:
            self.publish_early()

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.spec = read(self.opts, self.name, self.name_option, self.directory,
                         self.cache_directory, hint)
        self.options["container"] = self.name
        if self.spec.env_file_fingerprint:
            self.options["env-file-fingerprint"] = self.spec.env_file_fingerprint
        if self.spec.layout_fingerprint:
            self.options["layout-fingerprint"] = self.spec.layout_fingerprint
        self.referenced = referenced_outputs(self.buildout, self.part, RUNTIME_OUTPUTS,
                                             self.lifecycle.references)

    def uses(self):
        return uses(self.spec)

    def user(self):
        return ("container", self.spec.name)

    @classmethod
    def owned(cls, values):
        return [("container", values["name"])]

    def plan(self, context):
        if self.engine.inspect("image", self.spec.image) is None:
            self.engine.forget("image", self.spec.image)  # made by an earlier part of this run?
        actions = plan(self.part, self.spec, self.observed(), context, self.owner,
                       self.options, self.image_error)
        for act in actions:
            if act.verb in ("recreate", "maybe") or act.data[0] is None:  # a new container id
                context.will_change_container(self.name, act)
        return actions

    def apply(self, actions):
        for act in actions:
            current, fingerprint = act.data
            if act.verb == "repair" and current is not None:  # stopped
                self.log.info("Starting container %s (it was %s)", self.name,
                              (current.get("State") or {}).get("Status", "stopped"))
                self.start_container(self.name)
                self.engine.forget("container", self.name)
                if self.spec.wait:
                    self.wait_ready(self.name)
                self.publish()
            elif act.verb in ("create", "repair", "recreate"):
                self.create(fingerprint, current)
            else:  # unchanged (maybe only while planning)
                self.publish(current)
        return []

    def image_error(self):
        return self.opts.error("image", "image %s does not exist on %s; %s" % (
            self.spec.image, self.engine.config.description, self.image_hint()), self.spec.image)

    def image_hint(self):
        makers = image_makers(self.buildout, self.spec.image)
        if not makers:
            return ("no part of this buildout builds or pulls it: add a dockeroo:docker.build "
                    "or dockeroo:docker.pull part (referenced as image = ${that-part:image}) "
                    "or make the image by hand")
        hints = []
        for section, recipe, in_parts in makers:
            verb = IMAGE_MAKERS[recipe]
            if in_parts:
                hints.append("part [%s] (%s) %s it but has not made it yet: write "
                             "image = ${%s:image} so that it is installed before this part"
                             % (section, recipe, verb, section))
            else:
                hints.append("part [%s] (%s) %s it but is not in the buildout's parts: add it"
                             % (section, recipe, verb))
        return "; ".join(hints)

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
        self.early = self.outputs(obj)
        for key in RUNTIME_OUTPUTS:
            self.options[key] = self.early[key]

    def outputs(self, obj):
        """The RUNTIME_OUTPUTS of the container OBJ (inspect JSON; empty values without one)."""
        network = self.spec.networks[0] if self.spec.networks else None
        return {"container-id": (obj or {}).get("Id", ""), "ip-address": container_ip(obj, network)}

    def publish(self, obj=None):
        if obj is None and not self.referenced:
            # nobody reads the new values in this run (buildout substituted
            # references before installing): no look-up; the next run's
            # batched inspect publishes them
            return
        if obj is None:
            self.engine.forget("container", self.name)
            obj = self.engine.inspect("container", self.name) or {}
        for key, value in self.outputs(obj).items():
            self.options[key] = value
            if key in self.referenced and self.early.get(key) != value:
                self.log.warning("${%s:%s} is now %r (it was %r when buildout started): "
                                 "run buildout again so that the parts using it see the new value",
                                 self.part, key, value, self.early.get(key))

    # -- apply ------------------------------------------------------------------------
    def create(self, fingerprint, old):
        """Make the container (set the old one aside first, drop it once the new
        one is complete)."""
        self.check_engine()
        self.check_networks()
        if old is not None:
            self.set_aside(old)
        # the Action's line (its reasons) was logged: the image only in the debug log
        self.log.debug("%s container %s from %s", "Recreating" if old else "Creating", self.name,
                       self.spec.image)
        if self.spec.in_one_step:
            self.create_in_one_step(fingerprint)
        else:
            self.create_in_steps(fingerprint)
        self._undo = []
        if old is not None:
            self.drop_aside(self.aside_name(old))
        self.publish()

    def container_spec(self, labels, name=None):
        return dataclasses.replace(self.spec.container, name=name or self.name, labels=labels)

    def fingerprint(self):
        """The fingerprint label of the container the part describes now
        (the image must exist; used by :mod:`dockeroo.runtime.ahead`)."""
        image = self.engine.inspect("image", self.spec.image)
        if image is None:
            raise self.image_error()
        return fingerprint(self.spec, image["Id"])

    def one_step_args(self, fingerprint):
        """The argv of :meth:`create_in_one_step` (``run --detach`` or ``create``)."""
        args = self.container_spec(self.labels(fingerprint, self.spec.container.labels)
                                   ).create_args()
        return ["run", "--detach"] + args[1:] if self.spec.start else args

    def create_in_one_step(self, fingerprint):
        name = self.name
        args = self.one_step_args(fingerprint)
        self.on_failure(lambda: self.remove_container(name), "removed the new container %s" % name)
        try:
            self.run(args)
        except DockerError as exc:
            self.engine.forget("container", name)
            if self.spec.start and self.engine.inspect("container", name) is not None:
                raise self.not_started(exc)  # created, then refused to start
            raise
        self.engine.forget("container", name)

    def create_in_steps(self, fingerprint):
        """Make the container under a temporary name; it gets the part's name
        only once layout, start, wait and script are done, so a container
        under that name is always complete (a killed run leaves a temporary
        the next run removes)."""
        spec, name = self.spec, self.name
        temp = renamed_temporary(name, self.lifecycle.id)
        labels = self.temporary(temp, fingerprint, spec.container.labels,
                                done="removed the new container %s" % name, renamed=True)
        self.run(self.container_spec(labels, temp).create_args())
        for network in spec.networks[1:]:
            self.run(["network", "connect"] + repeated("--alias", spec.container.network_aliases)
                     + [network, temp])
        if spec.layout:
            self.log.info("Loading layout %s", spec.layout)
            with os_errors(self.opts, "layout", "cannot read the layout", spec.layout):
                ct.load_layout(self.engine, temp, spec.layout, uid=spec.layout_owner[0],
                               gid=spec.layout_owner[1], timeout=self.cmd_timeout(long=True))
        if spec.start:
            self.start_container(temp)
            if spec.wait:
                self.wait_ready(temp)
            if spec.script:
                self.run_script(temp)
        # complete: from here on it is the part's container
        self.run(["rename", temp, name])
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
        return UserError("Part [%s]: container %s did not start: %s"
                         % (self.part, self.name, "; ".join(exc.reasons) or exc))

    def check_engine(self):
        """Options this engine cannot honour: an Error before anything is made (the
        engine is asked what it is only when such an option is used)."""
        spec = self.spec.container
        for option, used in (("links", spec.links), ("devices", spec.devices)):
            why = self.engine.capabilities.limit(option) if used else None
            if why:
                raise self.opts.error(option, why + " (nothing was created)",
                                      self.opts.text(option))

    def check_networks(self):
        networks = [n for n in self.spec.networks if n not in SPECIAL_NETWORKS + ("bridge",)
                    and not n.startswith("container:")]
        for network in networks:
            self.engine.want("network", network)
        for network in networks:
            if self.engine.inspect("network", network) is None:
                self.engine.forget("network", network)  # made by an earlier part?
                if self.engine.inspect("network", network) is None:
                    raise self.opts.error("networks", "network %s does not exist" % network,
                                          network)

    def set_aside(self, old):
        """Stop the old container and rename it; undone if anything fails."""
        running = (old.get("State") or {}).get("Running")
        was_running = running or ahead.stopped_ahead(self)
        aside = self.aside_name(old)
        if running:  # stop_containers says how long it may wait
            stop = old.get("Config", {}).get("StopTimeout")
            stop_containers(self.engine, [self.name], DOCKER_STOP_TIMEOUT if stop is None else stop,
                            self.log, timeout=self.cmd_timeout())
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
        spec = self.spec
        self.log.info("Running script in %s", self.name)
        try:
            ct.exec_script(self.engine, cid, spec.script, shell=spec.script_shell,
                           user=spec.script_user, log=self.log,
                           timeout=self.cmd_timeout(long=True))
        except DockerError as exc:
            if spec.script_user and exc.unknown_user:
                raise self.opts.error("script-user", "no such user in container %s (%s)"
                                      % (self.name, exc.stderr.strip()), spec.script_user)
            if exc.timed_out:
                raise self.opts.error("script", "did not finish within %ss (option 'timeout')"
                                      % exc.timed_out)
            raise self.opts.error("script", "failed in container %s (exit %s): %s"
                                  % (self.name, exc.returncode, exc.stderr[-2000:]))

    def wait_ready(self, cid):
        try:
            ct.wait_ready(self.engine, cid, self.spec.wait)
        except ct.NotReady as exc:
            raise self.opts.error("wait", "container %s is not ready: %s" % (self.name, exc),
                                  self.opts.text("wait"))

    # -- removal ------------------------------------------------------------------------
    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """The part's container: stopped (its ``stop-timeout``), then removed."""
        timeout, stop = _removal_times(part, options)
        remove_object(engine, act.kind, act.name, part, options.get(OWNER_OPTION), log,
                      timeout=timeout, stop_timeout=stop or None)

    @classmethod
    def remove_together(cls, engine, items):
        """Stop and remove the containers of ITEMS, (part, options) pairs, in
        one ``docker stop`` per stop timeout and one ``docker rm`` (Docker
        handles the names in parallel): the batch step of
        :func:`dockeroo.runtime.executor.remove`, when buildout uninstalls
        several ``docker.run`` parts one after the other.

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
                stop_containers(engine, names, stop, logging.getLogger(items[0][0]),
                                timeout=longest, check=False)
            result = remove_containers(engine, [n for _p, n, _t in targets],
                                       timeout=longest, check=False)
        except DockerError:
            return done
        removed = set(result.stdout.split())
        for part, name, _timeout in targets:
            if name in removed:
                logging.getLogger(part).info("Removed container %s", name)
                done.add(part)
        return done


def _removal_times(part, options):
    """(command timeout, stop timeout) for removing a part's container."""
    opts = Options(part, dict(options))
    _keep, timeout = removal_settings(part, options)
    return timeout, opts.int("stop-timeout", DOCKER_STOP_TIMEOUT)


uninstall = Recipe.uninstaller()
