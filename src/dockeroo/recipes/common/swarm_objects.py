"""docker.secret and docker.config: swarm objects versioned by a keyed content hash."""

import dataclasses
import json
import os
import re
from typing import Dict
from zc.buildout import UserError
from dockeroo.base import mode
from dockeroo.recipes.common import swarm
from dockeroo.engine.errors import InUse, NotFound
from dockeroo.model.plan import action, not_fingerprinted
from dockeroo.model.ownership import label_args
from dockeroo.runtime.recipe import Recipe as Base


#: Docker's rule for secret and config names (64 characters at most)
NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]*[a-zA-Z0-9])?$")
HASH_LENGTH = 12
MAX_NAME = 64 - HASH_LENGTH - 1
#: the version of a secret planned before the buildout's hash key exists
UNKNOWN = "?" * HASH_LENGTH


@dataclasses.dataclass(frozen=True)
class Spec:
    kind: str          # secret or config
    name: str          # the part's name for it
    object_name: str   # NAME-<keyed hash of the content and labels>: the version
    labels: Dict[str, str]
    owner: str = not_fingerprinted()
    #: the part's options (which name the content's source, never the content)
    given: Dict[str, str] = not_fingerprinted(dataclasses.field(default_factory=dict))


def read(opts, kind, sources, name, name_option, key, content_of, owner, hint=""):
    """The options -> (Spec, content).  KEY is the buildout's hash key (None
    when it is not made yet: while planning); CONTENT_OF reads the content
    from the one source option given.  The content stays out of the Spec."""
    if not NAME_RE.match(name) or len(name) > MAX_NAME:
        raise opts.error(name_option, "a %s name has at most %d letters, digits and "
                         "_ . - and starts and ends with a letter or digit%s"
                         % (kind, MAX_NAME, hint), name)
    labels = opts.user_labels("labels")
    given = [o for o in ("file", "content", "env") if (opts.options.get(o) or "").strip()]
    refused = [o for o in given if o not in sources]
    if refused:
        raise opts.error(refused[0], "a %s takes its content from %s, not %s"
                         % (kind, " or ".join(repr(s) for s in sources), repr(refused[0])) + (
                             " (an inline secret would sit in the buildout configuration)"
                             if kind == "secret" else ""))
    if len(given) != 1:
        raise opts.error(given[1] if given else sources[0], "give exactly one of %s" % ", ".join(sources))
    content = content_of(given[0])
    if key is None:  # planning a first run: the key (so the version) is made by the real run
        version = UNKNOWN
    else:
        version = swarm.content_hash(key, content, json.dumps(sorted(labels.items())).encode())
    spec = Spec(kind=kind, name=name, object_name="%s-%s" % (name, version[:HASH_LENGTH]),
                labels=labels, owner=owner,
                given={k: v for k, v in opts.options.items() if k != kind})
    return spec, content


def plan(part, spec, observed, context, recipe):
    """[Action]: the version of SPEC (created unless it exists), and the
    removal of the part's other versions (done once no service uses them)."""
    swarm.check_manager(observed, part, recipe)
    kind, name = spec.kind, spec.object_name
    if name.endswith(UNKNOWN):  # planning, before the first real run made the key
        return [action(part, "part", part, "maybe", "the %s's version (%s-<hash>) is named with "
                       "this buildout's hash key, which the first real run makes" % (kind, spec.name))]
    current = observed.get(kind, name)
    old = context.old
    if current is not None:
        if not swarm.is_ours(current, part, spec.owner):
            raise UserError("Part [%s]: %s %s exists and was not made by this part; remove it "
                            "or choose another name" % (part, kind, name))
        actions = [action(part, kind, name, "unchanged")]
    elif old is None:
        actions = [action(part, kind, name, "create", "new part")]
    elif old.get(kind) == name:
        actions = [action(part, kind, name, "repair", "%s %s is missing (removed by hand?)"
                          % (kind, name))]
    else:
        reasons = context.changed_options(spec.given, ignore=(kind,)) or ["content changed"]
        actions = [action(part, kind, name, "create", "a new version (%s)" % "; ".join(reasons))]
    for other in observed.get(kind + "-versions", part) or ():
        if other != name:
            actions.append(action(part, kind, other, "remove", "replaced by %s (removed once no "
                                  "service uses it)" % name))
    return actions


class SwarmObject(Base):
    """A versioned swarm secret or config; subclasses set ``kind``."""

    kind = "secret"
    #: the option names the content may come from
    sources = ("file", "env")
    known_options = ("file", "content", "env")

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        key = swarm.buildout_key(self.parts_directory, create=not mode.PLANNING)
        self.spec, self.content = read(self.opts, self.kind, self.sources, self.name,
                                       self.name_option, key, self.read_content, self.owner, hint)
        self.options[self.kind] = self.spec.object_name

    def read_content(self, option):
        """The content as bytes, from OPTION (one of the ``sources``)."""
        opts = self.opts
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
        return []  # swarm objects are not in the engine's inspect cache: see plan/remove

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        return swarm.removal(observed, part, old_options, cls.kind, None, why)

    def observed(self):
        return swarm.Observed(self.engine, owner=self.owner)

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context, self.recipe)

    def apply(self, actions):
        for act in actions:
            if act.verb in ("create", "repair"):
                args = [self.kind, "create"] + label_args(self.labels(extra=self.spec.labels))
                self.run(args + [act.name, "-"], input=self.content)
            elif act.verb == "remove":
                self.sweep(act.name)
        return []

    def sweep(self, name):
        """Remove the part's older version NAME if no service uses it; if one
        does, the end of the run tries again (the services that reference
        the part switch to the new version in this run), then every later
        run: the run's pending records hold it, written before the first
        try (a killed run's successor removes it)."""
        self.lifecycle.retire(self.part, self.recipe, name, self.engine_options)
        if remove_version(self.engine, self.kind, name, self.log, quiet=True):
            self.lifecycle.retired(self.part, name)

    def drop_retired(self, engine, name):
        """At the end of the run: remove the older version NAME if no
        service uses it any more."""
        if remove_version(engine, self.kind, name, self.log, quiet=True):
            return True
        self.log.info("%s %s is still in use: the next run of buildout removes it once "
                      "no service uses it", self.kind.capitalize(), name)
        return False

    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """A version of the part's secret or config (refused while a service uses it)."""
        remove_version(engine, act.kind, act.name, log, part=part)


def remove_version(engine, kind, name, log, quiet=False, part=None):
    """Remove secret/config NAME; False when a service still uses it (QUIET),
    a UserError naming the services otherwise."""
    try:
        engine.run([kind, "rm", name])
    except NotFound:
        return True
    except InUse as exc:
        if quiet:
            log.info("%s %s is still used by a service: removed later", kind.capitalize(), name)
            return False
        raise UserError("Part [%s]: %s %s is still in use (%s); remove or update the "
                        "service(s) first" % (part, kind, name, exc.detail))
    log.info("Removed %s %s", kind, name)
    return True
