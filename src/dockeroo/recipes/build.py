"""dockeroo:docker.build: an image built with ``docker build``, rebuilt only when its inputs change.

read -> plan -> apply (see :mod:`dockeroo.model.plan` and
docs/recipes/docker.build.rst).  The fingerprint of the whole Spec (with the
content of a local context) is the ``fingerprint`` option and a label of
the image: buildout reinstalls, and the plan builds, only when it changes.
"""

import dataclasses
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import shlex
import time
from typing import Dict, Optional, Tuple

from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.base.state import key_file
from dockeroo.model import ownership, plan as plan_mod
from dockeroo.engine.commands import repeated
from dockeroo.engine.process import ANSI_ESCAPE
from dockeroo.engine.errors import DockerError, InUse, build_could_not_resolve
from dockeroo.engine.errors import LegacyBuildSteps, build_needs_buildx
from dockeroo.base.fingerprint import (IgnoreRules, file_fingerprint, folder_fingerprint,
    hash_values)
from dockeroo.model.plan import action, not_fingerprinted
from dockeroo.model.ownership import (LABEL_BUILDOUT, LABEL_FINGERPRINT, LABEL_PART, OWNER_OPTION, is_owned,
    label_args, labels_of)
from dockeroo.runtime.recipe import Recipe as Base
from dockeroo.model.options import quote_command

#: contexts ``docker build`` fetches itself (git repositories, URLs): passed through
REMOTE_PREFIXES = ("http://", "https://", "git://", "git@", "github.com/")
#: how long the images of a cancelled build (timeout) may stay in use by the step
#: container the engine is removing (one still in use then is retired: removed
#: by the end of the run, or of a later one, once unused)
STEP_GONE_WITHIN = 10
#: the client's notice about the legacy builder (DOCKER_BUILDKIT=0): not worth logging
LEGACY_NOTICE = ("The legacy builder is deprecated", "BuildKit is currently disabled",
                 "environment-variable.")
BUILDERS = ("auto", "buildkit", "legacy")
#: image label: the HMAC of the secrets' values (secrets-rebuild = true; reveals nothing)
LABEL_SECRETS = "io.dockeroo.secrets-hmac"
#: what to install when the docker client has no BuildKit
INSTALL_BUILDX = ("install the buildx plugin (Debian and Ubuntu: package docker-buildx-plugin from "
                  "Docker's repository or docker-buildx; see https://docs.docker.com/go/buildx/), "
                  "or name a docker client that has BuildKit in docker-command")
SECRET_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
SHM_SIZE = re.compile(r"^\d+[bkmgBKMG]?$")
#: instruction flags the legacy builder knows; any other flag needs BuildKit
LEGACY_FLAGS = {"COPY": {"--chown", "--from"}, "ADD": {"--chown"}, "FROM": {"--platform"},
                "HEALTHCHECK": {"--interval", "--timeout", "--start-period", "--retries"}}
HEREDOC = re.compile(r"<<-?\s*[\"']?[A-Za-z_][A-Za-z0-9_]*[\"']?")


#: the option recording the content of a local context (its changes are explained by file)
CONTEXT_OPTION = "context-fingerprint"
#: at most this many changed files are named in a plan's reasons
NAMED_FILES = 3


@dataclasses.dataclass(frozen=True)
class Spec:
    """What defines the image (fingerprinted), then how it is built (not)."""

    image: str
    remote: bool
    build_args: Dict[str, str]
    labels: Dict[str, str]
    target: Optional[str]
    platform: Optional[str]
    no_cache: bool
    pull: bool
    secret_ids: Tuple[str, ...]  # the values only as secret_hmac, with secrets-rebuild
    ssh_ids: Tuple[str, ...]
    network: Optional[str]
    add_hosts: Tuple[str, ...]
    shm_size: Optional[str]
    #: "buildkit" or "legacy" (the choice until the client is asked: see resolve)
    builder: str = None
    #: what the builder reads: a local context's content (see resolve; its place
    #: does not count), or a remote context's URL and Dockerfile
    content: Tuple = None
    #: the HMAC of the secrets' values (secrets-rebuild = true), never the values
    secret_hmac: Optional[str] = None
    context: str = not_fingerprinted()     # a directory, or a URL docker build fetches itself
    dockerfile: Optional[str] = not_fingerprinted()
    builder_choice: str = not_fingerprinted("auto")
    progress: str = not_fingerprinted("plain")
    secrets: Dict[str, tuple] = not_fingerprinted()  # {id: (kind, source)}
    secrets_rebuild: bool = not_fingerprinted(False)
    ssh: Dict[str, Tuple[str, ...]] = not_fingerprinted()
    cache_from: Tuple[str, ...] = not_fingerprinted(())
    features: Tuple[str, ...] = not_fingerprinted(())
    #: [(file, "changed" | "added" | "removed")] since the previous run, None: not known
    changes: Optional[Tuple] = not_fingerprinted()
    #: why the secrets' HMAC cannot be known while planning (a secret from a command)
    secrets_unknown: Optional[str] = not_fingerprinted()

    def fingerprint(self):
        return plan_mod.fingerprint(self)

    def needs(self):
        """What makes this build need BuildKit (empty: the legacy builder can do it)."""
        # the legacy builder reads a syntax line as a comment: that alone needs no BuildKit
        return (["the ssh option"] * bool(self.ssh) + ["the secrets option"] * bool(self.secrets)
                + [f for f in self.features if not f.startswith("a syntax")])


def read(opts, name, directory, hint=""):
    """The part's options -> Spec (every mistake a UserError); the builder,
    content and secret digest are filled in by the recipe (see ``resolve``)."""
    image = str(opts.reference("name", name, digest=False, hint=hint).normalized())
    cache_from = tuple(opts.lines("cache-from"))
    for line in cache_from:
        if re.search(r"\s", line):
            raise opts.error("cache-from", "one image (or cache source) per line", line)
    shm_size = opts.word("shm-size")
    if shm_size and not SHM_SIZE.match(shm_size):
        raise opts.error("shm-size", "must be a size such as 64m, 1g or 67108864", shm_size)
    secrets, ssh = secret_sources(opts, directory), ssh_sources(opts, directory)
    source = opts.text("source", required=True)
    remote = source.startswith(REMOTE_PREFIXES)
    if remote:
        context, dockerfile, features = source, opts.text("dockerfile"), ()
    else:
        context, dockerfile = local_context(opts, directory)
        features = tuple(buildkit_features(dockerfile))
    builder_choice = opts.choice("builder", BUILDERS, "auto")
    return Spec(
        image=image, context=context, dockerfile=dockerfile, remote=remote,
        build_args=opts.key_values("build-args"), labels=opts.key_values("labels"),
        target=opts.word("target"), platform=opts.word("platform"),
        no_cache=opts.bool("no-cache", False), pull=opts.bool("pull", False),
        secret_ids=tuple(sorted(secrets)), ssh_ids=tuple(sorted(ssh)),
        network=opts.word("network"), add_hosts=tuple(host_lines(opts)), shm_size=shm_size,
        builder=builder_choice, builder_choice=builder_choice,
        content=("remote", source, dockerfile) if remote else None,
        progress=opts.choice("progress", ("plain", "quiet"), "plain"), secrets=secrets,
        secrets_rebuild=opts.bool("secrets-rebuild", False), ssh=ssh, cache_from=cache_from,
        features=features)


def secret_sources(opts, directory):
    """``ID src=FILE`` / ``ID env=VARIABLE`` / ``ID command=COMMAND`` lines: {id: (kind, value)}."""
    found = {}
    for line in opts.lines("secrets"):
        sid, _, spec = line.partition(" ")
        kind, sep, value = spec.strip().partition("=")
        kind, value = kind.strip(), value.strip()
        if not SECRET_ID.match(sid) or not sep or kind not in ("src", "env", "command") or not value:
            raise opts.error("secrets", "each line must be ID src=FILE, ID env=VARIABLE or "
                             "ID command=COMMAND (ID: letters, digits, _ . -)", line)
        if sid in found:
            raise opts.error("secrets", "secret %s is given twice" % sid, line)
        if kind == "src":
            value = os.path.normpath(os.path.join(directory, os.path.expanduser(value)))
        elif kind == "command":
            try:
                value = tuple(shlex.split(value.replace("$$", "$")))
            except ValueError as exc:
                raise opts.error("secrets", "the command cannot be parsed (%s)" % exc, line)
            if not value:
                raise opts.error("secrets", "the command is empty", line)
        elif not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise opts.error("secrets", "%r is not an environment variable name" % value, line)
        found[sid] = (kind, value)
    return found


def ssh_sources(opts, directory):
    """``default``, ``default=SOCKET`` or ``ID=KEY_OR_SOCKET[,...]`` lines: {id: (paths)}."""
    found = {}
    for line in opts.lines("ssh"):
        sid, sep, paths = line.partition("=")
        sid = sid.strip()
        paths = [p.strip() for p in paths.split(",") if p.strip()]
        if not SECRET_ID.match(sid) or (sep and not paths) or (sid != "default" and not paths):
            raise opts.error("ssh", "each line must be default, default=SOCKET or "
                             "ID=KEY[,KEY...] (key files or agent sockets)", line)
        if sid in found:
            raise opts.error("ssh", "%s is given twice" % sid, line)
        found[sid] = tuple(os.path.normpath(os.path.join(directory, os.path.expanduser(p)))
                           for p in paths)
    return found


def host_lines(opts):
    hosts = []
    for line in opts.lines("add-hosts"):
        host, sep, address = line.partition(":")
        host, address = host.strip(), address.strip()
        try:
            if address != "host-gateway":
                ipaddress.ip_address(address)
        except ValueError:
            sep = ""
        if not sep or not host or re.search(r"\s", host):
            raise opts.error("add-hosts", "each line must be HOST:IP (or HOST:host-gateway)", line)
        hosts.append("%s:%s" % (host, address))
    return hosts


def local_context(opts, directory):
    """(context dir, Dockerfile path) of a local source."""
    context = opts.path("source", directory, must_exist=True, kind="dir")
    option = "dockerfile" if opts.text("dockerfile") else "source"
    dockerfile = opts.path("dockerfile", context, default=os.path.join(context, "Dockerfile"))
    if not os.path.isfile(dockerfile):
        raise opts.error(option, "there is no Dockerfile at %s" % dockerfile, opts.text(option))
    return context, dockerfile


def local_content(opts, spec, cache_dir, specific_ignore):
    """(fingerprint of what the builder reads from a local context, the files
    changed since the previous run or None).  SPECIFIC_IGNORE: whether the
    builder reads an ignore file named after the Dockerfile."""
    context, dockerfile = spec.context, spec.dockerfile
    relative = os.path.relpath(dockerfile, context)
    inside = not (relative == os.pardir or relative.startswith(os.pardir + os.sep))
    # the CLI always sends the Dockerfile and .dockerignore, even when ignored
    always = (".dockerignore", relative) if inside else (".dockerignore",)
    # BuildKit prefers an ignore file named after the Dockerfile (app.Dockerfile.dockerignore),
    # and so does Podman's builder
    specific = dockerfile + ".dockerignore"
    specific = specific if specific_ignore and os.path.isfile(specific) else None
    try:
        rules = IgnoreRules.from_file(specific or os.path.join(context, ".dockerignore"))
        folder, changes = folder_fingerprint(context, rules, cache_dir=cache_dir, always=always,
                                             changes=True)
        outside = None if inside else file_fingerprint(dockerfile)
        content = ("local", folder, relative if inside else None, outside)
        return (content + (file_fingerprint(specific),) if specific else content), changes
    except OSError as exc:
        raise opts.error("source", "cannot read the build context: %s" % exc, opts.text("source"))


# -- plan ------------------------------------------------------------------------------
def plan(part, spec, observed, context, options, users=None):
    """[Action] for the image of SPEC, given what the engine holds (OBSERVED),
    the previous configuration (CONTEXT) and the part's recorded OPTIONS;
    USERS: the containers using the current image (see ``retired``)."""
    fingerprint = spec.fingerprint()
    current = observed.get("image", spec.image)
    labels = labels_of(current)
    why = change_reasons(spec, context, options, labels if current else None)
    old = context.old
    if current is None:
        if old is None:
            verb, why = "create", ["new part"]
        elif old.get("image") != spec.image:
            verb, why = "create", ["option 'name' changed (was %s)" % old.get("image")]
        elif old.get("fingerprint") == fingerprint:
            verb, why = "repair", ["image %s is missing (removed by hand?)" % spec.image]
        else:
            verb = "create"
    elif labels.get(LABEL_FINGERPRINT) == fingerprint:
        verb, why = "unchanged", ["remote context: fetched again only when an option changes"
                                  if spec.remote else ""]
    elif spec.secrets_unknown and not why:
        verb, why = "maybe", [spec.secrets_unknown]
    else:
        verb = "recreate"
        if labels.get(LABEL_PART) != part:
            why = why or ["image %s was not built by this part: the tag moves to the new "
                          "build" % spec.image]
        why = why or ["image %s was built from other inputs (its fingerprint label differs)"
                      % spec.image]
    act = action(part, "image", spec.image, verb, *why, data=current)
    if act.changes:
        context.will_change_image(spec.image, act)
    return [act] + retired(part, spec, current, options, verb, users)


def retired(part, spec, current, options, verb, users):
    """The removal, at the end of the run, of the image a rebuild replaces
    (ours, and left untagged once the tag moves); USERS: the containers
    using it now (None in a real run: the end of the run logs what it removes)."""
    if users is None or verb != "recreate" or current is None or not is_owned(
            current, part, options.get(OWNER_OPTION)):
        return []
    mine = plan_mod.normal_ref(spec.image)
    if any(plan_mod.normal_ref(tag) != mine for tag in current.get("RepoTags") or []):
        return []  # still tagged otherwise: left in place
    old = current["Id"]
    why = "replaced by the new build of %s, removed at the end of the run" % spec.image
    if users:
        return [action(part, "image", old, "maybe", why + " if no container uses it then "
                       "(used now by %s)" % ", ".join(users))]
    return [action(part, "image", old, "remove", why)]


def change_reasons(spec, context, options, labels):
    """Why the image differs from the previous configuration's: the options
    that changed, the context files by name, the secrets' values."""
    why = context.changed_options(options, ignore=("fingerprint", "image"),
                                  describe={CONTEXT_OPTION: "build context changed"})
    if "build context changed" in why and spec.changes:
        files = ["context file %s %s" % change for change in spec.changes[:NAMED_FILES]]
        if len(spec.changes) > NAMED_FILES:
            files.append("%d more context files changed" % (len(spec.changes) - NAMED_FILES))
        at = why.index("build context changed")
        why[at:at + 1] = files
    if labels is not None and spec.secret_hmac and labels.get(LABEL_SECRETS) != spec.secret_hmac \
            and not spec.secrets_unknown:
        why.append("secret values changed")
    return why


class Recipe(Base):
    recipe = "docker.build"

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.spec = read(self.opts, self.name, self.directory, hint)
        self.image = self.spec.image
        self.options["image"] = self.image

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        # the builder (and so the fingerprint) may depend on the engine's client
        self.client = None
        self.spec = self.resolve(self.spec)
        options["builder"] = self.spec.builder
        if not self.spec.remote:
            options[CONTEXT_OPTION] = hash_values(self.spec.content)
        self.fingerprint = self.spec.fingerprint()
        options["fingerprint"] = self.fingerprint

    def resolve(self, spec):
        """SPEC with its builder, the content of a local context and the secrets' HMAC."""
        spec = dataclasses.replace(spec, builder=self.choose_builder(spec))
        if not spec.remote:
            specific = spec.builder == "buildkit" or (
                os.path.isfile(spec.dockerfile + ".dockerignore")
                and self.engine.capabilities.is_podman)  # the engine is asked only then
            content, changes = local_content(self.opts, spec, self.cache_directory, specific)
            spec = dataclasses.replace(spec, content=content,
                                       changes=tuple(changes) if changes is not None else None)
        if spec.secrets_rebuild and spec.secrets:
            unknown = [sid for sid, (kind, _) in sorted(spec.secrets.items())
                       if kind == "command"] if mode.PLANNING else []
            if unknown:  # plan runs no command: their values are read by the real run
                spec = dataclasses.replace(spec, secret_hmac="?", secrets_unknown=(
                    "secrets-rebuild: secret %s comes from a command, run only when building"
                    % unknown[0]))
            else:
                spec = dataclasses.replace(spec, secret_hmac=self.secret_digest(spec))
        return spec

    def choose_builder(self, spec):
        """``buildkit`` or ``legacy``; for ``auto``, asks the client once (see docs)."""
        needs = spec.needs()
        if spec.builder_choice == "legacy":
            if needs:
                raise self.opts.error("builder", "%s need(s) BuildKit" % ", ".join(needs), "legacy")
            return "legacy"
        if spec.builder_choice == "buildkit":
            return "buildkit"
        self.client = self.engine.client_builder(self.cache_directory)
        if self.client.buildkit:
            return "buildkit"
        if needs:
            raise UserError("Part [%s] (%s): %s need(s) BuildKit, but %s: %s"
                            % (self.part, self.recipe, ", ".join(needs), self.client.why,
                               INSTALL_BUILDX))
        return "legacy"

    def secret_digest(self, spec):
        """An HMAC of the secrets' values, keyed by a random key kept in this buildout
        (while planning, a key not made yet gives a digest no image has)."""
        key = secret_key(os.path.join(self.cache_directory, "secrets.key"))
        if key is None:
            return "new key"
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for sid, value in sorted(self.secret_values(spec).items()):
            mac.update(b"%d:%s\0" % (len(sid), sid.encode()))
            mac.update(hashlib.sha256(value).digest())
        return mac.hexdigest()

    def secret_values(self, spec=None):
        """{id: bytes} of every secret, read once (UserError when one cannot be read)."""
        if getattr(self, "_secret_values", None) is None:
            self._secret_values = self._read_secrets((spec or self.spec).secrets)
        return self._secret_values

    def _read_secrets(self, secrets):
        values = {}
        for sid, (kind, value) in secrets.items():
            line = "%s %s=%s" % (sid, kind, value if kind != "command" else quote_command(value))
            if kind == "src":
                try:
                    with open(value, "rb") as handle:
                        values[sid] = handle.read()
                except OSError as exc:
                    raise self.opts.error("secrets", "cannot read %s: %s" % (value, exc.strerror), line)
            elif kind == "env":
                if value not in os.environ:
                    raise self.opts.error("secrets", "environment variable %s is not set" % value, line)
                values[sid] = os.environ[value].encode()
            else:
                try:
                    result = self.engine.run(list(value[1:]), program=value[0], check=False,
                                             timeout=self.cmd_timeout())
                except DockerError as exc:
                    raise self.opts.error("secrets", "the command did not run: %s"
                                          % (exc.stderr or "timed out"), line)
                if result.returncode != 0:
                    raise self.opts.error("secrets", "the command failed (exit %s): %s"
                                          % (result.returncode, result.stderr.strip()[-300:]), line)
                values[sid] = result.stdout.rstrip("\r\n").encode()
        return values

    @classmethod
    def owned(cls, values):
        return [("image", values["image"])]

    def plan(self, context):
        users = None
        if context.planning:  # a real run does not need to know
            current = self.engine.inspect("image", self.image)
            stale = current and labels_of(current).get(LABEL_FINGERPRINT) != self.fingerprint
            if stale:
                users = ownership.users(self.engine, "image", current["Id"])
        return plan(self.part, self.spec, self.observed(), context, self.options, users)

    def apply(self, actions):
        for act in actions:
            current = act.data
            if act.name != self.image:
                continue  # the replaced image: removed at the end of the run
            if not act.changes:
                self.log.info("Image %s is up to date (%s): nothing to build", self.image,
                              short(current["Id"]))
                continue
            if current and self.is_ours(current):
                # recorded before the build: once the tag moves to the new image,
                # the old one is removed when unused, even if this run is killed
                # right after the build (it is left alone while still tagged)
                self.retire_image(current["Id"])
            # BuildKit's layer cache ignores secret values: a changed secret builds afresh
            labels = labels_of(current)
            self.build(fresh=bool(self.spec.secret_hmac)
                       and labels.get(LABEL_SECRETS) != self.spec.secret_hmac)
            self.engine.forget("image", self.image)
            self.log.info("Built image %s (%s)", self.image, short(self.engine.image_id(self.image)))
        return []

    # -- building ------------------------------------------------------------------
    def check_client(self):
        """Before a BuildKit build: the client can do it, and its frontend the Dockerfile."""
        spec = self.spec
        if self.client is None:
            self.client = self.engine.client_builder(self.cache_directory)
        client = self.client
        if not client.buildkit:
            raise self.opts.error("builder", "BuildKit is asked for, but %s: %s"
                                  % (client.why, INSTALL_BUILDX), spec.builder_choice)
        why = self.engine.capabilities.limit("buildkit")
        if why:
            raise self.opts.error("builder", "BuildKit is asked for (%s), but %s" % (
                ", ".join(spec.needs()) or ("builder = buildkit" if spec.builder_choice ==
                                            "buildkit" else "the docker client has it"),
                why), spec.builder_choice)
        heredocs = [f for f in spec.features if f.startswith("a heredoc")]
        if heredocs and not client.heredocs and not any(f.startswith("a syntax") for f in spec.features):
            raise UserError("Part [%s] (%s): the Dockerfile uses %s, which the Dockerfile frontend "
                            "built into the docker client %s (%s) does not understand: use a docker "
                            "client with the buildx plugin, or start the Dockerfile with a "
                            "'# syntax=docker/dockerfile:1' line (BuildKit then fetches that frontend "
                            "from its registry)" % (self.part, self.recipe, heredocs[0], client.client,
                                                    client.version))

    def check_build(self):
        """What the build needs and only the real run checks: the builder, hosts, ssh."""
        spec = self.spec
        if spec.builder == "buildkit":
            self.check_client()
        why = self.engine.capabilities.limit("build-hosts") if spec.add_hosts else None
        if why:
            raise self.opts.error("add-hosts", why + " (nothing was built)",
                                  self.opts.text("add-hosts"))
        if "default" in spec.ssh and not spec.ssh["default"] and not os.environ.get("SSH_AUTH_SOCK"):
            raise self.opts.error("ssh", "default needs an ssh-agent, but SSH_AUTH_SOCK is not set",
                                  "default")
        for sid, paths in spec.ssh.items():
            for path in paths:
                if not os.path.exists(path):
                    raise self.opts.error("ssh", "%s does not exist" % path, sid)

    def build_command(self, secret_values, fresh=False):
        """(argv, extra environment) of the build; secret values only in the environment."""
        spec = self.spec
        buildkit = spec.builder == "buildkit"
        args = ["build", "--force-rm", "--tag", spec.image]
        env = {"DOCKER_BUILDKIT": "1" if buildkit else "0"}
        if spec.progress == "quiet":
            args.append("--quiet")
        elif buildkit:
            args.append("--progress=plain")
        for flag, value in (("--file", spec.dockerfile), ("--target", spec.target),
                            ("--platform", spec.platform)):
            args += [flag, value] if value else []
        args += ["--no-cache"] * (spec.no_cache or fresh) + ["--pull"] * spec.pull
        for flag, value in (("--network", spec.network), ("--shm-size", spec.shm_size)):
            args += [flag, value] if value else []
        args += repeated("--add-host", spec.add_hosts) + repeated("--cache-from", spec.cache_from)
        for n, (sid, (kind, value)) in enumerate(sorted(spec.secrets.items())):
            if kind == "command":  # the command's output travels in the build's environment only
                value = "DOCKEROO_SECRET_%d" % n
                env[value] = secret_values[sid].decode("utf-8", "surrogateescape")
            fields = ["id=" + sid, ("src=" if kind == "src" else "env=") + value]
            args += ["--secret", ",".join(csv_field(f) for f in fields)]
        for sid, paths in sorted(spec.ssh.items()):
            args += ["--ssh", sid + ("=" + ",".join(paths) if paths else "")]
        args += repeated("--build-arg", ["%s=%s" % item for item in spec.build_args.items()])
        labels = self.labels(self.fingerprint, spec.labels)
        if spec.secret_hmac:
            labels[LABEL_SECRETS] = spec.secret_hmac
        args += label_args(labels)
        return args + [spec.context], env

    def build(self, fresh=False):
        spec = self.spec
        self.check_build()
        secret_values = self.secret_values() if spec.secrets else {}
        args, env = self.build_command(secret_values, fresh)
        if fresh and not spec.no_cache:
            self.log.info("secrets-rebuild = true and the image was not built with these secret "
                          "values: building without the layer cache")
        if self.client is not None:  # which builder and why, before the build's lines
            self.log.info("Builder %s (builder = %s): %s", spec.builder, spec.builder_choice,
                          self.client.why)
        self.log.info("Building image %s from %s with %s", spec.image, spec.context,
                      "BuildKit" if spec.builder == "buildkit" else "the legacy builder")
        if spec.builder == "legacy" and any(f.startswith("a syntax") for f in spec.features):
            self.log.warning("The legacy builder ignores the Dockerfile's syntax line")
        # the tag is applied only when the whole build succeeded: a failure tags nothing
        hide = [v.decode("utf-8", "replace") for v in secret_values.values() if len(v) >= 4]
        steps = LegacyBuildSteps()  # the images this build's steps made

        def see(record):
            keep = tidy_record(record, hide)
            steps.feed(record.msg)
            return keep
        quiet = logging.Filter()
        quiet.filter = see
        self.log.addFilter(quiet)
        try:
            try:
                result = self.run(args, long=True, stream=True, check=False, env=env)
            except DockerError as exc:
                if not exc.timed_out:
                    raise
                # the build was cancelled with its client: nothing is tagged
                raise self.opts.error("timeout", "building image %s did not finish within "
                                      "%ss; nothing was tagged" % (spec.image, exc.timed_out),
                                      self.opts.text("timeout"))
            finally:
                self.log.removeFilter(quiet)
            if result.returncode != 0:
                self.failed(result, hide)
        except BaseException:
            self.drop_steps(steps.images)
            raise
        self.drop_unlinked_steps(steps.images)

    def drop_unlinked_steps(self, steps):
        """Podman: the steps of a build that make no layer before the first
        one that does (``ARG`` and ``LABEL`` after ``FROM scratch``) leave
        images that are no parent of the result, so removing the result
        would leave them.  Those of STEPS that are untagged and childless
        (dangling) are removed now.  Never raises: the build worked."""
        if not steps or not self.engine.capabilities.is_podman:
            return
        try:
            listed = self.run(["image", "ls", "--quiet", "--no-trunc", "--filter", "dangling=true",
                               "--filter", "label=%s=%s" % (LABEL_PART, self.part),
                               "--filter", "label=%s=%s" % (LABEL_BUILDOUT, self.owner)],
                              check=False).stdout.split()
            for image in listed:
                if any(image.split(":", 1)[-1].startswith(step) for step in steps):
                    ownership.remove_image(self.engine, image, timeout=self.cmd_timeout(),
                                           check=False)
        except Exception as exc:  # noqa: BLE001
            self.log.debug("left the unlinked images of the build: %s", exc)

    def drop_steps(self, steps):
        """After a failed legacy build: remove the images its steps made (not
        a base image, not one taken from the cache), last first: the
        builder keeps them as cache, and a failure must leave no half-made
        image.  One that is tagged or that another image builds on stays.
        Never raises: the build's own error is the one to see."""
        deadline = time.monotonic() + STEP_GONE_WITHIN
        for image in reversed(self.full_ids(steps)):
            while True:
                try:
                    self.engine.forget("image", image)
                    obj = self.engine.inspect("image", image)
                    if obj is not None and not obj.get("RepoTags") and \
                            not obj.get("RepoDigests"):
                        ownership.remove_image(self.engine, image, timeout=self.cmd_timeout())
                except InUse as exc:
                    # a cancelled build's step container, which the engine removes shortly
                    # (Podman's runs the step to its end first)
                    if exc.container_ids(image) and time.monotonic() < deadline:
                        time.sleep(0.5)
                        continue
                    self.log.debug("image %s of the failed build is still in use (%s): removed "
                                   "by the end of this run or a later one", image, exc)
                    try:
                        self.retire_image(image)
                    except Exception as error:  # noqa: BLE001
                        self.log.debug("left image %s of the failed build: %s", image, error)
                except Exception as exc:  # noqa: BLE001 - the build's error is the one to see
                    self.log.debug("left image %s of the failed build: %s", image, exc)
                break

    def full_ids(self, ids):
        """IDS with Podman's 11-digit ids (which it does not take back as ids)
        made whole from the engine's list of images; never raises."""
        if all(len(i) >= 12 for i in ids):
            return ids
        try:
            listed = self.run(["image", "ls", "--all", "--no-trunc", "--quiet"],
                              check=False).stdout.split()
        except Exception as exc:  # noqa: BLE001 - the build's error is the one to see
            self.log.debug("cannot list the images of the failed build: %s", exc)
            return [i for i in ids if len(i) >= 12]
        whole = [i.split(":", 1)[-1] for i in listed]
        found = []
        for image in ids:
            matches = [w for w in whole if w.startswith(image)] if len(image) < 12 else [image]
            found += matches[:1] if len(matches) == 1 else []
        return found

    def failed(self, result, hide):
        tail = "\n".join(mask(line, hide) for line in result.tail(25).splitlines()
                         if not is_notice(line))
        hint = ""
        if build_needs_buildx(tail):
            hint = "\n(%s)" % INSTALL_BUILDX
        elif any(f.startswith("a syntax") for f in self.spec.features) and build_could_not_resolve(tail):
            hint = ("\n(the Dockerfile's syntax line names a frontend image that BuildKit "
                    "fetches from its registry)")
        raise UserError("Part [%s] (%s): building image %s failed (exit %s); the end of its "
                        "output:\n%s%s" % (self.part, self.recipe, self.image,
                                            result.returncode, tail, hint))


def tidy_record(record, hide=()):
    """Log filter for build output: no legacy-builder notice, no colour codes, no secret."""
    record.msg = mask(ANSI_ESCAPE.sub("", record.getMessage()), hide)
    record.args = ()
    return not is_notice(record.msg)


def mask(line, hide):
    for value in hide:
        line = line.replace(value, "***")
    return line


def csv_field(text):
    """One field of the CSV the docker client parses --secret values with."""
    return '"%s"' % text.replace('"', '""') if any(c in text for c in ',"') else text


def secret_key(path):
    """The random key of this buildout's secret HMACs (made on first use, mode 0600;
    None while planning when there is none yet: plan writes no file)."""
    return key_file(path, create=not mode.PLANNING)


def buildkit_features(dockerfile):
    """What in DOCKERFILE only BuildKit understands, as phrases naming the line."""
    try:
        with open(dockerfile, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().lstrip("\ufeff").splitlines()
    except OSError:
        return []
    found = []
    escape = "\\"
    directives = True
    logical, start = "", None
    for number, raw in enumerate(lines, 1):
        stripped = raw.strip()
        if directives:
            match = re.match(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$", stripped)
            if match and match.group(1).lower() == "syntax":
                found.append("a syntax line (line %d)" % number)
                continue
            if match and match.group(1).lower() == "escape":
                escape = match.group(2)[:1] or escape
                continue
            directives = False
        if stripped.startswith("#") or not (logical or stripped):
            continue  # comments (also inside a continued instruction), blank lines outside one
        start = start or number
        if stripped.endswith(escape):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        found.extend(_instruction_features(logical, start))
        logical, start = "", None
    if logical:
        found.extend(_instruction_features(logical, start))
    return found


def _instruction_features(text, number):
    words = text.split()
    instruction = words[0].upper() if words else ""
    flags = []
    for word in words[1:]:
        if not word.startswith("--"):
            break
        flags.append(word.split("=", 1)[0])
    allowed = LEGACY_FLAGS.get(instruction, set())
    found = ["%s %s (line %d)" % (instruction, flag, number) for flag in flags if flag not in allowed][:1]
    if instruction in ("RUN", "COPY", "ADD") and HEREDOC.search(text):
        found.append("a heredoc (line %d)" % number)
    return found


def is_notice(line):
    return any(part in line for part in LEGACY_NOTICE) and len(line) < 120


def short(image_id):
    return (image_id or "").split(":", 1)[-1][:12]


uninstall = Recipe.uninstaller()
