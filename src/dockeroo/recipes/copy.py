"""dockeroo:docker.copy: paths streamed from one container to another.

Data goes ``docker cp SRC:path -`` → ``docker cp - DST:dir`` with no
temporary files (see :func:`dockeroo.runtime.container.copy_paths`), so the
destination needs no shell or tar (``FROM scratch`` works).

read -> plan -> apply (see :mod:`dockeroo.model.plan`).  A state file under
``parts/<part>/`` remembers the ids of both containers and the
fingerprint of the Spec: the plan copies again (``update`` of the target's
paths) only when one of the containers was recreated (new id) or the
paths changed.
"""

import dataclasses
import json
import os
from typing import Tuple
from contextlib import suppress

from dockeroo.base.state import atomic_json
from dockeroo.runtime import container as ct
from dockeroo.engine.errors import DockerError
from dockeroo.model.options import option_error, parse_path_line
from dockeroo.model.engines import source_engine_from_options
from dockeroo.model.plan import Observed, action, fingerprint, not_fingerprinted
from dockeroo.runtime.recipe import Recipe as Base

STATE_FILE = "copy-state.json"
#: the part option holding the state file's path (read by the uninstall)
STATE_OPTION = "dockeroo-state"


@dataclasses.dataclass(frozen=True)
class Spec:
    source: str
    target: str
    pairs: Tuple[Tuple[str, str], ...]  # (source path, destination path)
    state_path: str = not_fingerprinted()


def read(opts, state_path):
    """The part's options -> Spec (every mistake a UserError)."""
    source = opts.object_name("container-from")
    target = opts.object_name("container-to")
    if source == target:
        raise opts.error("container-to", "is the same container as container-from", target)
    pairs = tuple(parse_path_line(opts, line) for line in opts.lines("paths"))
    if not pairs:
        raise opts.error("paths", "is required: one path per line (/file, /folder/, or "
                         "SOURCE DESTINATION)")
    return Spec(source, target, pairs, state_path)


def uses(spec):
    """The containers the copy reads from and writes into."""
    return [("container", spec.source, "source"), ("container", spec.target, "target")]


def plan(part, spec, observed, context, recorded, options=None, source_observed=None):
    """[Action] for the copy into the target container (``update``: its paths
    are copied again; ``unchanged``).

    RECORDED: the state file's content (None without one).  The action's
    data is the state to record once the copy is done (None while planning
    a copy into a container an earlier part will make).  SOURCE_OBSERVED:
    the source engine's answers, when the source container is on another
    engine (``from-engine-url``...).
    """
    ids, pending = {}, []
    for key, option, name in _objects(spec):
        obj = (source_observed or observed if key == "from" else observed).get("container", name)
        maker = context.container_change(name)  # dockeroo plan: an earlier part (re)makes it
        if maker is not None:
            pending.append(maker)
        elif obj is None:
            raise option_error(part, option, name, "container %s does not exist" % name)
        else:
            ids[key] = obj["Id"]
    state = dict(ids, paths=fingerprint(spec)) if not pending else None

    def act(verb, *reasons):
        return [action(part, "container", spec.target, verb, *reasons, data=state)]

    if recorded is None:
        return act("update", "new part" if context.old is None else
                   "no earlier copy is recorded")
    if pending:
        why = ["container %s will be %s (%s)" % (m.name, "created" if m.verb in (
            "create", "repair") else "recreated", "; ".join(m.reasons)) for m in pending]
        return act("maybe" if all(m.verb == "maybe" for m in pending) else "update", *why)
    if recorded == state:
        return act("unchanged")
    changed = context.changed_options(options or {}, ignore=("timeout", "keep", STATE_OPTION))
    reasons = changed + ["container %s was recreated" % name
                         for key, option, name in _objects(spec)
                         if recorded.get(key) != state[key]
                         and "option %r changed" % option not in changed]
    return act("update", *(reasons or ["its definition changed"]))


def _objects(spec):
    return (("from", "container-from", spec.source), ("to", "container-to", spec.target))


class Recipe(Base):
    recipe = "docker.copy"
    has_name = False

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        #: the engine of container-from: the from- engine options, else the part's
        source = source_engine_from_options(self.opts)
        self.source_engine = source.with_timeout(self.timeout) if source else self.engine
        self.source_engine.want("container", self.spec.source)
        self.engine.want("container", self.spec.target)

    def setup(self):
        source_engine_from_options(self.opts)  # its options checked before anything runs
        self.state_dir = os.path.join(self.parts_directory, self.part)
        self.spec = read(self.opts, os.path.join(self.state_dir, STATE_FILE))
        self.options[STATE_OPTION] = self.spec.state_path

    actions_on_user = True

    def uses(self):
        return uses(self.spec)

    def user(self):
        return ("copy", self.part)

    def plan(self, context):
        try:
            with open(self.spec.state_path) as handle:
                recorded = json.load(handle)
        except (OSError, ValueError):
            recorded = None
        source = None if self.source_engine is self.engine else Observed(self.source_engine)
        return plan(self.part, self.spec, self.observed(), context, recorded, self.options, source)

    def apply(self, actions):
        spec = self.spec
        for act in actions:
            if act.verb != "update":
                self.log.debug("nothing to copy: containers and paths unchanged")
                continue
            self.log.info("Copying %d path(s) from %s to %s", len(spec.pairs), spec.source,
                          spec.target)
            try:
                ct.copy_paths(self.engine, spec.source, spec.target, spec.pairs,
                              timeout=self.cmd_timeout(long=True),
                              source_engine=None if self.source_engine is self.engine
                              else self.source_engine)
            except ct.CopySourceError as exc:
                raise self.opts.error("paths", exc.reason, exc.path)
            except DockerError as exc:
                if not exc.timed_out:
                    raise
                raise self.opts.error("timeout", "the copy did not finish within %gs and was "
                                      "stopped (nothing is left running)" % exc.timed_out)
            atomic_json(spec.state_path, act.data)
        # not returned as an installed path: buildout would delete it when any
        # option changes (timeout...) and the paths would be copied again
        return []

    @classmethod
    def uninstalled(cls, part, options, log):
        """The part is gone: forget what it copied (a new part copies again)."""
        path = options.get(STATE_OPTION)
        if not path:
            return
        for name in (path, path + ".tmp"):
            if os.path.exists(name):
                os.remove(name)
        with suppress(OSError):
            os.rmdir(os.path.dirname(path))


uninstall = Recipe.uninstaller()
