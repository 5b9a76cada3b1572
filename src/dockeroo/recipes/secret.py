"""dockeroo:docker.secret: a swarm secret, versioned by a keyed hash of its content.

Swarm cannot change a secret (or a config) in place, so the object is named
``NAME-<hash>``: the hash is an HMAC-SHA256 of the content (and labels)
under a random key kept in ``parts/.dockeroo-swarm-key``, so the name
reveals nothing of the content.  A changed content makes a new object; the
services referencing ``${part:secret}`` switch to it in the same run, and
the versions the part made before are removed as soon as no service uses
them (at the end of the buildout run, and on every later run).

The content travels to Docker on stdin only: never on a command line, in
the options buildout records, or in the log.  :class:`SwarmObject` is
shared with ``docker.config`` (:mod:`dockeroo.recipes.config`).
"""

import atexit
import json
import logging
import os
import re

from zc.buildout import UserError

from .. import swarm
from ..engine import DockerError
from ..options import Options
from ..recipe import OWNER_OPTION, Recipe as Base, label_args

#: Docker's rule for secret and config names (64 characters at most)
NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]*[a-zA-Z0-9])?$")
HASH_LENGTH = 12
MAX_NAME = 64 - HASH_LENGTH - 1

#: (engine, kind, name, part, logger) of old versions still in use: retried at exit
_sweep_later = []


class SwarmObject(Base):
    """A versioned swarm secret or config; subclasses set ``kind``."""

    kind = "secret"
    #: the option names the content may come from
    sources = ("file", "env")

    def setup(self):
        opts = self.opts
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        if not NAME_RE.match(self.name) or len(self.name) > MAX_NAME:
            raise opts.error(self.name_option, "a %s name has at most %d letters, digits and "
                             "_ . - and starts and ends with a letter or digit%s"
                             % (self.kind, MAX_NAME, hint), self.name)
        self.user_labels = opts.key_values("labels")
        for key in self.user_labels:
            if key.startswith("io.dockeroo."):
                raise opts.error("labels", "io.dockeroo.* labels are set by dockeroo itself", key)
        content = self.read_content()
        key = swarm.buildout_key(self.parts_directory)
        digest = swarm.content_hash(key, content, json.dumps(sorted(self.user_labels.items())).encode())
        self.content = content
        self.object_name = "%s-%s" % (self.name, digest[:HASH_LENGTH])
        self.options[self.kind] = self.object_name

    def read_content(self):
        """The content as bytes, from exactly one of the ``sources`` options."""
        opts = self.opts
        given = [o for o in ("file", "content", "env") if (self.options.get(o) or "").strip()]
        refused = [o for o in given if o not in self.sources]
        if refused:
            raise opts.error(refused[0], "a %s takes its content from %s, not %s"
                             % (self.kind, " or ".join(repr(s) for s in self.sources),
                                repr(refused[0])) + (
                                 " (an inline secret would sit in the buildout configuration)"
                                 if self.kind == "secret" else ""))
        if len(given) != 1:
            raise opts.error(given[1] if given else self.sources[0],
                             "give exactly one of %s" % ", ".join(self.sources))
        option = given[0]
        if option == "file":
            path = self.path_option("file")
            try:
                with open(path, "rb") as handle:
                    return handle.read()
            except OSError as exc:
                raise opts.error("file", "cannot read %s: %s" % (path, exc.strerror),
                                 opts.text("file"))
        if option == "env":
            variable = opts.word("env")
            if variable not in os.environ:
                raise opts.error("env", "environment variable %s is not set" % variable, variable)
            return os.environ[variable].encode()
        return opts.script("content").encode()

    @classmethod
    def owned(cls, values):
        return []  # swarm objects are not in the engine's inspect cache: see ensure/remove

    def ensure(self):
        swarm.require_manager(self.engine, self.part, self.recipe)
        current = swarm.inspect(self.engine, self.kind, self.object_name)
        if current is None:
            args = [self.kind, "create"] + label_args(self.labels(extra=self.user_labels))
            self.run(args + [self.object_name, "-"], input=self.content)
            self.log.info("Created %s %s", self.kind, self.object_name)
        elif not swarm.is_ours(current, self.part, self.owner):
            raise UserError("Part [%s]: %s %s exists and was not made by this part; remove it "
                            "or choose another name" % (self.part, self.kind, self.object_name))
        self.sweep()
        return []

    def sweep(self):
        """Remove the part's other versions that no service uses any more; the
        ones still in use are tried again when buildout exits (the services
        that reference the part switch to the new version in this run)."""
        for name in swarm.labelled(self.engine, self.kind, self.part, self.owner):
            if name != self.object_name and not remove_version(
                    self.engine, self.kind, name, self.log, quiet=True):
                if not _sweep_later:
                    atexit.register(_sweep_at_exit)
                _sweep_later.append((self.engine, self.kind, name, self.log))

    def drop_replaced(self, old):
        """Old versions are removed by :meth:`sweep` once no service uses them."""

    @classmethod
    def remove(cls, engine, part, options, log):
        timeout = Options(part, dict(options)).duration("timeout", 60)
        owner = options.get(OWNER_OPTION)
        if not swarm.is_manager(engine):
            log.debug("%s is not a swarm manager: no %s of this part there",
                      engine.config.description, cls.kind)
            return
        for name in swarm.labelled(engine, cls.kind, part, owner, timeout=timeout):
            remove_version(engine, cls.kind, name, log, part=part)


def remove_version(engine, kind, name, log, quiet=False, part=None):
    """Remove secret/config NAME; False when a service still uses it (QUIET),
    a UserError naming the services otherwise."""
    try:
        engine.run([kind, "rm", name])
    except DockerError as exc:
        err = exc.stderr.lower()
        if "no such" in err or "not found" in err:
            return True
        if "in use" not in err:
            raise
        if quiet:
            log.info("%s %s is still used by a service: removed later", kind.capitalize(), name)
            return False
        raise UserError("Part [%s]: %s %s is still in use (%s); remove or update the "
                        "service(s) first" % (part, kind, name, exc.stderr.split("desc = ")[-1]))
    log.info("Removed %s %s", kind, name)
    return True


def _sweep_at_exit():
    while _sweep_later:
        engine, kind, name, log = _sweep_later.pop(0)
        try:
            if not remove_version(engine, kind, name, log, quiet=True):
                log.info("%s %s is still in use: the next run of buildout removes it once "
                         "no service uses it", kind.capitalize(), name)
        except Exception as exc:  # exiting anyway: report, do not mask the exit status
            logging.getLogger("dockeroo").warning("Could not remove %s %s: %s", kind, name, exc)


class Recipe(SwarmObject):
    recipe = "docker.secret"
    kind = "secret"
    sources = ("file", "env")


uninstall = Recipe.uninstaller()
