"""dockeroo:docker.build: an image built with ``docker build``, rebuilt only when its inputs change.

The inputs (context content honouring ``.dockerignore``, Dockerfile, build
arguments and options) are hashed in ``setup()`` into the ``fingerprint``
option, so buildout reinstalls the part exactly when they change; the image
carries the same fingerprint as a label, so ``ensure()`` does nothing when
the tagged image already matches.
"""

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import shlex
import secrets as random_secrets

from zc.buildout import UserError

from ..engine import ANSI_ESCAPE, DockerError, InUse
from ..fingerprint import IgnoreRules, file_fingerprint, folder_fingerprint, hash_values
from ..recipe import LABEL_FINGERPRINT, Recipe as Base, label_args, quote_command

#: contexts ``docker build`` fetches itself (git repositories, URLs): passed through
REMOTE_PREFIXES = ("http://", "https://", "git://", "git@", "github.com/")
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


class Recipe(Base):
    recipe = "docker.build"

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.image = str(self.opts.reference("name", self.name, digest=False, hint=hint).normalized())
        self.build_args = self.opts.key_values("build-args")
        self.user_labels = self.opts.key_values("labels")
        self.target = self.opts.word("target")
        self.platform = self.opts.word("platform")
        self.no_cache = self.opts.bool("no-cache", False)
        self.pull = self.opts.bool("pull", False)
        self.builder_choice = self.opts.choice("builder", BUILDERS, "auto")
        self.progress = self.opts.choice("progress", ("plain", "quiet"), "plain")
        self.secrets = self.secret_sources()
        self.secrets_rebuild = self.opts.bool("secrets-rebuild", False)
        self.ssh = self.ssh_sources()
        self.cache_from = self.opts.lines("cache-from")
        for line in self.cache_from:
            if re.search(r"\s", line):
                raise self.opts.error("cache-from", "one image (or cache source) per line", line)
        self.network = self.opts.word("network")
        self.add_hosts = self.host_lines()
        self.shm_size = self.opts.word("shm-size")
        if self.shm_size and not SHM_SIZE.match(self.shm_size):
            raise self.opts.error("shm-size", "must be a size such as 64m, 1g or 67108864", self.shm_size)
        source = self.opts.text("source", required=True)
        if source.startswith(REMOTE_PREFIXES):
            self.context, self.dockerfile = source, self.opts.text("dockerfile")
            self.content = ("remote", source, self.dockerfile)
            self.features = []
        else:
            self.context, self.dockerfile = self.local_context()
            self.content = None  # once the builder is known: it chooses the ignore file
            self.features = buildkit_features(self.dockerfile)
        self.options["image"] = self.image

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        # the builder (and so the fingerprint) may depend on the engine's client
        self.client = None
        self.builder = self.choose_builder()
        options["builder"] = self.builder
        if self.content is None:
            self.content = self.local_content()
        self.fingerprint = self.compute_fingerprint()
        options["fingerprint"] = self.fingerprint

    # -- options -------------------------------------------------------------------
    def secret_sources(self):
        """``ID src=FILE`` / ``ID env=VARIABLE`` / ``ID command=COMMAND`` lines: {id: (kind, value)}."""
        found = {}
        for line in self.opts.lines("secrets"):
            sid, _, spec = line.partition(" ")
            kind, sep, value = spec.strip().partition("=")
            kind, value = kind.strip(), value.strip()
            if not SECRET_ID.match(sid) or not sep or kind not in ("src", "env", "command") or not value:
                raise self.opts.error("secrets", "each line must be ID src=FILE, ID env=VARIABLE or "
                                      "ID command=COMMAND (ID: letters, digits, _ . -)", line)
            if sid in found:
                raise self.opts.error("secrets", "secret %s is given twice" % sid, line)
            if kind == "src":
                value = os.path.normpath(os.path.join(self.directory, os.path.expanduser(value)))
            elif kind == "command":
                try:
                    value = shlex.split(value.replace("$$", "$"))
                except ValueError as exc:
                    raise self.opts.error("secrets", "the command cannot be parsed (%s)" % exc, line)
                if not value:
                    raise self.opts.error("secrets", "the command is empty", line)
            elif not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
                raise self.opts.error("secrets", "%r is not an environment variable name" % value, line)
            found[sid] = (kind, value)
        return found

    def ssh_sources(self):
        """``default``, ``default=SOCKET`` or ``ID=KEY_OR_SOCKET[,...]`` lines: {id: [paths]}."""
        found = {}
        for line in self.opts.lines("ssh"):
            sid, sep, paths = line.partition("=")
            sid = sid.strip()
            paths = [p.strip() for p in paths.split(",") if p.strip()]
            if not SECRET_ID.match(sid) or (sep and not paths) or (sid != "default" and not paths):
                raise self.opts.error("ssh", "each line must be default, default=SOCKET or "
                                      "ID=KEY[,KEY...] (key files or agent sockets)", line)
            if sid in found:
                raise self.opts.error("ssh", "%s is given twice" % sid, line)
            found[sid] = [os.path.normpath(os.path.join(self.directory, os.path.expanduser(p)))
                          for p in paths]
        return found

    def host_lines(self):
        hosts = []
        for line in self.opts.lines("add-hosts"):
            host, sep, address = line.partition(":")
            host, address = host.strip(), address.strip()
            try:
                if address != "host-gateway":
                    ipaddress.ip_address(address)
            except ValueError:
                sep = ""
            if not sep or not host or re.search(r"\s", host):
                raise self.opts.error("add-hosts", "each line must be HOST:IP (or HOST:host-gateway)", line)
            hosts.append("%s:%s" % (host, address))
        return hosts

    def choose_builder(self):
        """``buildkit`` or ``legacy``; for ``auto``, asks the client once (see docs)."""
        needs = self.needs()
        if self.builder_choice == "legacy":
            if needs:
                raise self.opts.error("builder", "%s need(s) BuildKit" % ", ".join(needs), "legacy")
            return "legacy"
        if self.builder_choice == "buildkit":
            return "buildkit"
        self.client = self.engine.client_builder(self.cache_directory)
        if self.client.buildkit:
            return "buildkit"
        if needs:
            raise UserError("Part [%s] (%s): %s need(s) BuildKit, but %s: %s"
                            % (self.part, self.recipe, ", ".join(needs), self.client.why,
                               INSTALL_BUILDX))
        return "legacy"

    def needs(self):
        """What makes this build need BuildKit (empty: the legacy builder can do it)."""
        # the legacy builder reads a syntax line as a comment: that alone needs no BuildKit
        needs = [f for f in self.features if not f.startswith("a syntax")]
        if self.secrets:
            needs.insert(0, "the secrets option")
        if self.ssh:
            needs.insert(0, "the ssh option")
        return needs

    def compute_fingerprint(self):
        extra = {}
        if self.builder != "legacy":  # the legacy builder's fingerprints stay as they were
            extra["builder"] = self.builder
        for key, value in (("secrets", sorted(self.secrets)), ("ssh", sorted(self.ssh)),
                           ("network", self.network), ("add-hosts", self.add_hosts),
                           ("shm-size", self.shm_size)):
            if value:
                extra[key] = value
        self.secret_hmac = self.secret_digest() if self.secrets_rebuild and self.secrets else None
        if self.secret_hmac:
            extra["secret-values"] = self.secret_hmac
        values = (self.content, self.build_args, self.user_labels, self.target, self.platform,
                  self.no_cache, self.pull)
        return hash_values(*values, extra) if extra else hash_values(*values)

    def secret_digest(self):
        """An HMAC of the secrets' values, keyed by a random key kept in this buildout."""
        key = secret_key(os.path.join(self.cache_directory, "secrets.key"))
        mac = hmac.new(key, digestmod=hashlib.sha256)
        for sid, value in sorted(self.secret_values().items()):
            mac.update(b"%d:%s\0" % (len(sid), sid.encode()))
            mac.update(hashlib.sha256(value).digest())
        return mac.hexdigest()

    def secret_values(self):
        """{id: bytes} of every secret, read once (UserError when one cannot be read)."""
        if getattr(self, "_secret_values", None) is None:
            self._secret_values = self._read_secrets()
        return self._secret_values

    def _read_secrets(self):
        values = {}
        for sid, (kind, value) in self.secrets.items():
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
                    result = self.engine.run(value[1:], program=value[0], check=False,
                                             timeout=self.cmd_timeout())
                except DockerError as exc:
                    raise self.opts.error("secrets", "the command did not run: %s"
                                          % (exc.stderr or "timed out"), line)
                if result.returncode != 0:
                    raise self.opts.error("secrets", "the command failed (exit %s): %s"
                                          % (result.returncode, result.stderr.strip()[-300:]), line)
                values[sid] = result.stdout.rstrip("\r\n").encode()
        return values

    def local_context(self):
        """(context dir, Dockerfile path) of a local source."""
        context = self.path_option("source", must_exist=True, kind="dir")
        option = "dockerfile" if self.opts.text("dockerfile") else "source"
        dockerfile = self.opts.path("dockerfile", context, default=os.path.join(context, "Dockerfile"))
        if not os.path.isfile(dockerfile):
            raise self.opts.error(option, "there is no Dockerfile at %s" % dockerfile, self.opts.text(option))
        return context, dockerfile

    def local_content(self):
        """The fingerprint of what the builder reads from a local context."""
        context, dockerfile = self.context, self.dockerfile
        relative = os.path.relpath(dockerfile, context)
        inside = not (relative == os.pardir or relative.startswith(os.pardir + os.sep))
        # the CLI always sends the Dockerfile and .dockerignore, even when ignored
        always = (".dockerignore", relative) if inside else (".dockerignore",)
        # BuildKit prefers an ignore file named after the Dockerfile (app.Dockerfile.dockerignore),
        # and so does Podman's builder (the engine is asked only when there is one)
        specific = dockerfile + ".dockerignore"
        specific = specific if os.path.isfile(specific) and (
            self.builder == "buildkit" or self.engine.capabilities.is_podman) else None
        try:
            rules = IgnoreRules.from_file(specific or os.path.join(context, ".dockerignore"))
            folder = folder_fingerprint(context, rules, cache_dir=self.cache_directory, always=always)
            outside = None if inside else file_fingerprint(dockerfile)
            content = ("local", folder, relative if inside else None, outside)
            return content + (file_fingerprint(specific),) if specific else content
        except OSError as exc:
            raise self.opts.error("source", "cannot read the build context: %s" % exc,
                                  self.opts.text("source"))

    @classmethod
    def owned(cls, values):
        return [("image", values["image"])]

    def ensure(self):
        current = self.engine.inspect("image", self.image)
        labels = ((current or {}).get("Config") or {}).get("Labels") or {}
        if current and labels.get(LABEL_FINGERPRINT) == self.fingerprint:
            self.log.info("Image %s is up to date (%s): nothing to build", self.image, short(current["Id"]))
            return []
        if current and self.is_ours(current):
            # recorded before the build: once the tag moves to the new image,
            # the old one is removed when unused, even if this run is killed
            # right after the build (it is left alone while still tagged)
            self.retire_image(current["Id"])
        # BuildKit's layer cache ignores secret values: a changed secret builds afresh
        self.build(fresh=bool(self.secret_hmac) and labels.get(LABEL_SECRETS) != self.secret_hmac)
        self.engine.forget("image", self.image)
        new_id = self.engine.image_id(self.image)
        self.log.info("Built image %s (%s)", self.image, short(new_id))
        return []

    def check_client(self):
        """Before a BuildKit build: the client can do it, and its frontend the Dockerfile."""
        if self.client is None:
            self.client = self.engine.client_builder(self.cache_directory)
        client = self.client
        if not client.buildkit:
            raise self.opts.error("builder", "BuildKit is asked for, but %s: %s"
                                  % (client.why, INSTALL_BUILDX), self.builder_choice)
        why = self.engine.capabilities.limit("buildkit")
        if why:
            raise self.opts.error("builder", "BuildKit is asked for (%s), but %s" % (
                ", ".join(self.needs()) or ("builder = buildkit" if self.builder_choice ==
                                            "buildkit" else "the docker client has it"),
                why), self.builder_choice)
        heredocs = [f for f in self.features if f.startswith("a heredoc")]
        if heredocs and not client.heredocs and not any(f.startswith("a syntax") for f in self.features):
            raise UserError("Part [%s] (%s): the Dockerfile uses %s, which the Dockerfile frontend "
                            "built into the docker client %s (%s) does not understand: use a docker "
                            "client with the buildx plugin, or start the Dockerfile with a "
                            "'# syntax=docker/dockerfile:1' line (BuildKit then fetches that frontend "
                            "from its registry)" % (self.part, self.recipe, heredocs[0], client.client,
                                                    client.version))

    def build_command(self, secret_values, fresh=False):
        """(argv, extra environment) of the build; secret values only in the environment."""
        buildkit = self.builder == "buildkit"
        args = ["build", "--force-rm", "--tag", self.image]
        env = {"DOCKER_BUILDKIT": "1" if buildkit else "0"}
        if self.progress == "quiet":
            args.append("--quiet")
        elif buildkit:
            args.append("--progress=plain")
        if self.dockerfile:
            args += ["--file", self.dockerfile]
        if self.target:
            args += ["--target", self.target]
        if self.platform:
            args += ["--platform", self.platform]
        if self.no_cache or fresh:
            args.append("--no-cache")
        if self.pull:
            args.append("--pull")
        if self.network:
            args += ["--network", self.network]
        if self.shm_size:
            args += ["--shm-size", self.shm_size]
        for host in self.add_hosts:
            args += ["--add-host", host]
        for ref in self.cache_from:
            args += ["--cache-from", ref]
        for n, (sid, (kind, value)) in enumerate(sorted(self.secrets.items())):
            if kind == "src":
                spec = ["id=" + sid, "src=" + value]
            elif kind == "env":
                spec = ["id=" + sid, "env=" + value]
            else:  # the command's output travels in the build's environment only
                variable = "DOCKEROO_SECRET_%d" % n
                env[variable] = secret_values[sid].decode("utf-8", "surrogateescape")
                spec = ["id=" + sid, "env=" + variable]
            args += ["--secret", ",".join(csv_field(f) for f in spec)]
        for sid, paths in sorted(self.ssh.items()):
            args += ["--ssh", sid + ("=" + ",".join(paths) if paths else "")]
        for key, value in self.build_args.items():
            args += ["--build-arg", "%s=%s" % (key, value)]
        labels = self.labels(self.fingerprint, self.user_labels)
        if self.secret_hmac:
            labels[LABEL_SECRETS] = self.secret_hmac
        args += label_args(labels)
        return args + [self.context], env

    def build(self, fresh=False):
        if self.builder == "buildkit":
            self.check_client()
        why = self.engine.capabilities.limit("build-hosts") if self.add_hosts else None
        if why:
            raise self.opts.error("add-hosts", why + " (nothing was built)",
                                  self.opts.text("add-hosts"))
        if "default" in self.ssh and not self.ssh["default"] and not os.environ.get("SSH_AUTH_SOCK"):
            raise self.opts.error("ssh", "default needs an ssh-agent, but SSH_AUTH_SOCK is not set",
                                  "default")
        for sid, paths in self.ssh.items():
            for path in paths:
                if not os.path.exists(path):
                    raise self.opts.error("ssh", "%s does not exist" % path, sid)
        secret_values = self.secret_values() if self.secrets else {}
        args, env = self.build_command(secret_values, fresh)
        if fresh and not self.no_cache:
            self.log.info("secrets-rebuild = true and the image was not built with these secret "
                          "values: building without the layer cache")
        self.log.info("Building image %s from %s with %s", self.image, self.context,
                      "BuildKit" if self.builder == "buildkit" else "the legacy builder")
        if self.client is not None:
            self.log.info("Builder %s (builder = %s): %s", self.builder, self.builder_choice,
                          self.client.why)
        if self.builder == "legacy" and any(f.startswith("a syntax") for f in self.features):
            self.log.warning("The legacy builder ignores the Dockerfile's syntax line")
        # the tag is applied only when the whole build succeeded: a failure tags nothing
        hide = [v.decode("utf-8", "replace") for v in secret_values.values() if len(v) >= 4]
        quiet = logging.Filter()
        quiet.filter = lambda record: tidy_record(record, hide)
        self.log.addFilter(quiet)
        try:
            result = self.run(args, long=True, stream=True, check=False, env=env)
        except DockerError as exc:
            if not exc.timed_out:
                raise
            # the build was cancelled with its client: nothing is tagged
            raise self.opts.error("timeout", "building image %s did not finish within %ss; "
                                  "nothing was tagged" % (self.image, exc.timed_out),
                                  self.opts.text("timeout"))
        finally:
            self.log.removeFilter(quiet)
        if result.returncode != 0:
            tail = "\n".join(mask(line, hide) for line in result.tail(25).splitlines()
                             if not is_notice(line))
            hint = ""
            if "requires BuildKit" in tail or "buildx component is missing" in tail:
                hint = "\n(%s)" % INSTALL_BUILDX
            elif any(f.startswith("a syntax") for f in self.features) and "resolve" in tail:
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
    """The random key of this buildout's secret HMACs (made on first use, mode 0600)."""
    try:
        with open(path, "rb") as handle:
            key = handle.read()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(random_secrets.token_bytes(32))
    try:
        os.link(tmp, path)  # the first writer wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    with open(path, "rb") as handle:
        return handle.read()


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
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if logical and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
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
    found = []
    allowed = LEGACY_FLAGS.get(instruction, set())
    for flag in flags:
        if flag not in allowed:
            found.append("%s %s (line %d)" % (instruction, flag, number))
            break
    if instruction in ("RUN", "COPY", "ADD") and HEREDOC.search(text):
        found.append("a heredoc (line %d)" % number)
    return found


def is_notice(line):
    return any(part in line for part in LEGACY_NOTICE) and len(line) < 120


def short(image_id):
    return (image_id or "").split(":", 1)[-1][:12]


uninstall = Recipe.uninstaller()
