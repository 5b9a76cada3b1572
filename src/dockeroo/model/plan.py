"""Plans: what a part's apply step will change in Docker, and why.

Every recipe is three steps (see docs/plan.rst):

``read``
    the options, validated, into a frozen :mod:`dataclasses` Spec (pure;
    every mistake is a ``UserError`` here, before anything is created);
``plan``
    ``plan(spec, observed, context) -> [Action]``: pure; it compares the
    Spec with what the engine holds (``observed``: the engine's read-only
    answers, or inspect JSON recorded from the real engine in unit tests)
    and with the part's previous configuration (``context``), and gives
    one :class:`Action` per object, each with its reasons;
``apply``
    the engine calls that carry out the actions (the only step that
    changes Docker), with the undo stack.

``dockeroo plan`` (:mod:`dockeroo.cli`) runs read and plan for every part
and prints the actions; a real run logs each action that changes
something with the same reasons, then applies it.
"""

import dataclasses
import difflib
import json
import logging
from typing import Any, Optional, Tuple

from dockeroo.base.fingerprint import hash_values

#: the verbs of an action, with the sign ``dockeroo plan`` prints before them
SIGNS = {
    "create": "+",
    "recreate": "~",
    "update": "~",
    "remove": "-",
    "unchanged": "=",
    "repair": "!",   # drift: removed, stopped or changed by hand
    "maybe": "?",    # cannot be known before acting (a pull in newest mode, ...)
}
#: verbs that change nothing
QUIET = ("unchanged",)
#: what a real run logs for each verb (``app: recreating container app because ...``)
DOING = {"create": "creating", "recreate": "recreating", "update": "updating",
         "remove": "removing", "repair": "repairing", "maybe": "checking",
         "unchanged": "keeping"}

#: reasons said otherwise after "because" in a real run's log
SPOKEN = {"new part": "the part is new", "part removed": "the part was removed",
          "part configuration changed": "the part's configuration changed"}

log = logging.getLogger("dockeroo")


@dataclasses.dataclass(frozen=True)
class Action:
    """One object a part will create, change, remove or leave alone."""

    part: str
    kind: str     # container, image, network, volume, tag, service, secret, config, ...
    name: str
    verb: str     # a key of SIGNS
    reasons: Tuple[str, ...] = ()
    #: private to the recipe: what its apply step needs (not shown, not compared)
    data: Any = dataclasses.field(default=None, compare=False, repr=False)
    #: what a real run logs instead of the verb's DOING word (``pushing``)
    says: Optional[str] = dataclasses.field(default=None, compare=False, repr=False)
    #: done at the end of the run (what a changed part's old configuration
    #: owned: Run.drop_pending), so the plan lists it last
    at_end: bool = dataclasses.field(default=False, compare=False, repr=False)

    def __post_init__(self):
        if self.verb not in SIGNS:
            raise ValueError("unknown verb %r" % self.verb)
        object.__setattr__(self, "reasons", tuple(r for r in self.reasons if r))

    @property
    def changes(self):
        return self.verb not in QUIET

    def line(self):
        """``~ recreate container app: option 'command' changed; ...``"""
        text = "%s %s %s %s" % (SIGNS[self.verb], self.verb, self.kind, self.name)
        return text + (": " + "; ".join(self.reasons) if self.reasons else "")

    def doing(self):
        """What a real run logs: ``recreating container app because ...``"""
        text = "%s %s %s" % (self.says or DOING[self.verb], self.kind, self.name)
        reasons = [SPOKEN.get(r, r) for r in self.reasons]
        return text + (" because " + "; ".join(reasons) if reasons else "")

    def json(self):
        return {"part": self.part, "kind": self.kind, "name": self.name,
                "action": self.verb, "reasons": list(self.reasons)}


def action(part, kind, name, verb, *reasons, data=None, says=None):
    return Action(part, kind, name, verb, tuple(reasons), data, says)


def report(logger, actions):
    """Log the actions that change something, with their reasons (a real run)."""
    for act in actions:
        if act.changes:
            logger.info("%s", act.doing())


# -- what the engine holds ----------------------------------------------------------
class Observed:
    """The engine's answers a plan reads: ``get(kind, name)`` is the inspect
    JSON of an object, or None when there is none.

    Backed by the engine (its batched, cached inspects) in a real run and
    in ``dockeroo plan``, or by recorded JSON in unit tests
    (``Observed.recorded({("container", "app"): {...}})``).
    """

    def __init__(self, engine=None, recorded=None):
        self.engine = engine
        self._recorded = dict(recorded or {})

    @classmethod
    def recorded(cls, objects):
        return cls(None, objects)

    def get(self, kind, name):
        if self.engine is None:
            return self._recorded.get((kind, name))
        return self.engine.inspect(kind, name)


# -- the context of a part's plan ----------------------------------------------------------
class Context:
    """What a part's plan knows besides its Spec and the engine:

    - ``old``: the part's previous options (from ``.installed.cfg``), or None
      for a part installed for the first time;
    - ``images``: image references that earlier parts of the same run will
      change (ref -> Action), so that a container whose image is rebuilt is
      planned as recreated (``dockeroo plan`` only: in a real run the
      earlier parts have already acted when a part plans);
    - ``planning``: True in ``dockeroo plan``;
    - ``released``: the containers this run removed so far because a network
      or volume they use was recreated (a real run: name -> reason);
    - ``handing``: the networks and volumes that another part made and this
      run would remove (a removed part, or a part that no longer describes
      it): (kind, name) -> that part.  A part that describes one of them
      compares it as its own (:meth:`handed_by`): the run hands it over
      (:func:`dockeroo.runtime.runplan.hand_over`).
    """

    def __init__(self, old=None, images=None, planning=False, released=None, handing=None):
        self.old = dict(old) if old is not None else None
        self.images = images if images is not None else {}
        self.planning = planning
        #: container name -> why this run removed it (a network or volume it
        #: used was recreated; the executor's release): made again by its part
        self.released = released if released is not None else {}
        self.handing = dict(handing or {})

    def handed_by(self, kind, name, obj, owner):
        """The part that made OBJ (object NAME of KIND, of the buildout OWNER)
        and hands it over in this run (see ``handing``), or None."""
        from dockeroo.model.ownership import is_owned
        previous = self.handing.get((kind, name))
        if previous is not None and obj is not None and is_owned(obj, previous, owner):
            return previous
        return None

    def image_change(self, ref):
        """The Action of an earlier part that changes image REF, or None."""
        return self.images.get(normal_ref(ref))

    def will_change_image(self, ref, act):
        """Record that ACT (of an earlier part) changes image REF."""
        self.images[normal_ref(ref)] = act

    def container_change(self, name):
        """The Action of an earlier part that (re)creates container NAME, or None."""
        return self.images.get(("container", name))

    def will_change_container(self, name, act):
        """Record that ACT (of an earlier part) (re)creates container NAME: a
        copy into it runs again."""
        self.images[("container", name)] = act

    def changed_options(self, new, ignore=(), describe=None):
        """Reasons naming the options that differ from the previous configuration."""
        if self.old is None:
            return []
        return option_changes(self.old, new, ignore, describe)


def normal_ref(ref):
    """REF fully qualified (``x`` -> ``docker.io/library/x:latest``), or as given."""
    from dockeroo.base import references
    try:
        parsed = references.parse(ref).normalized()
    except Exception:
        return ref
    return parsed.qualified()


#: options buildout or dockeroo itself puts in a part's options
INTERNAL_OPTIONS = ("recipe", "dockeroo-owner", "__buildout_signature__", "__buildout_installed__")


def option_changes(old, new, ignore=(), describe=None):
    """``option 'X' changed`` (added, removed) for every option that differs.

    DESCRIBE maps an option the recipe records itself (a fingerprint) to the
    reason shown when it changes (``layout-fingerprint`` -> ``layout content changed``).
    """
    describe = describe or {}
    reasons = []
    for key in sorted(set(old) | set(new)):
        if key in INTERNAL_OPTIONS or key in ignore or key.startswith("__"):
            continue
        was, now = old.get(key), new.get(key)
        if (was or "") == (now or ""):
            continue
        if key in describe:
            reasons.append(describe[key])
        elif not (was or "").strip():
            reasons.append("option %r added" % key)
        elif not (now or "").strip():
            reasons.append("option %r removed" % key)
        else:
            reasons.append("option %r changed" % key)
    # one reason per description
    return list(dict.fromkeys(reasons))


# -- fingerprints of specs ------------------------------------------------------------------
def fingerprint(spec, *extra):
    """The fingerprint of a whole Spec (every field but those declared with
    ``metadata={"fingerprint": False}``), and of EXTRA values."""
    return hash_values(spec_values(spec), *extra)


def spec_values(spec):
    out = {}
    for field in dataclasses.fields(spec):
        if field.metadata.get("fingerprint", True):
            value = getattr(spec, field.name)
            out[field.name] = spec_values(value) if dataclasses.is_dataclass(value) else value
    return out


def not_fingerprinted(default=None, **kwargs):
    """A Spec field that does not define the object (timeouts, keep, ...)."""
    return dataclasses.field(default=default, metadata={"fingerprint": False}, **kwargs)


# -- unknown options ---------------------------------------------------------------------------
def unknown_options(given, known):
    """(option, closest known option or None) for the options of GIVEN not in KNOWN."""
    out = []
    for key in sorted(given):
        if key in known or key in INTERNAL_OPTIONS or key.startswith("_"):
            continue
        close = difflib.get_close_matches(key.replace("_", "-"), sorted(known), n=1, cutoff=0.6)
        out.append((key, close[0] if close else None))
    return out


def dumps(actions, other=()):
    """``--json``: one object per action."""
    return json.dumps([a.json() for a in actions] + list(other), indent=1)
