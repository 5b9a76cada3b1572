"""dockeroo:docker.volume: a named Docker volume.

read -> plan -> apply (see :mod:`dockeroo.model.plan`).
"""

import dataclasses
from typing import Dict

from zc.buildout import UserError

from dockeroo.engine.commands import repeated
from dockeroo.model.plan import action
from dockeroo.model.ownership import (LABEL_BUILDOUT, LABEL_FINGERPRINT, LABEL_PART, is_owned,
                                      label_args, labels_of)
from dockeroo.runtime.recipe import Recipe as Base

#: the labels dockeroo itself puts on the volume (the user's may be io.dockeroo.* too)
OWN_LABELS = (LABEL_PART, LABEL_BUILDOUT, LABEL_FINGERPRINT)


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    driver: str
    driver_opts: Dict[str, str]
    labels: Dict[str, str]
    #: ``recreate = true``: drop the volume (its data) when its driver or options change
    recreate: bool = False


def read(opts, name, name_option, hint=""):
    """The part's options -> Spec (every mistake a UserError)."""
    driver = opts.word("driver", default="local")
    opts.object_name(name_option, name, strict=driver == "local", hint=hint)
    return Spec(name=name, driver=driver, driver_opts=opts.key_values("driver-opts"),
                labels=opts.key_values("labels"), recreate=opts.bool("recreate", False))


def plan(part, spec, observed, context, owner=None):
    """[Action] for the volume of SPEC, given what the engine holds (OBSERVED)."""
    current = observed.get("volume", spec.name)
    if current is None:
        old = context.old
        if old is None:
            return [action(part, "volume", spec.name, "create", "new part")]
        if old.get("name") != spec.name:
            return [action(part, "volume", spec.name, "create",
                           "option 'name' changed (was %s)" % old.get("name"))]
        return [action(part, "volume", spec.name, "repair", "volume %s is missing (removed by "
                       "hand?)" % spec.name)]
    have_opts = current.get("Options") or {}
    # a volume another part of this buildout made and hands over in this run
    # (removed, or no longer describing it): compared as the part's own
    previous = context.handed_by("volume", spec.name, current, owner) \
        if owner is not None else None
    if current.get("Driver") != spec.driver or have_opts != spec.driver_opts:
        differs = "volume %s already exists with driver %s and options %s, but the part " \
            "asks for driver %s and options %s" % (
                spec.name, current.get("Driver"), have_opts or "{}", spec.driver,
                spec.driver_opts or "{}")
        if previous is not None and not spec.recreate:
            # the hand-over is declined (Recipe.take_over): the run is refused with its advice
            return [action(part, "volume", spec.name, "unchanged", differs)]
        if not spec.recreate:
            raise UserError(
                "Part [%s]: %s; its data is not dropped: set recreate = true in [%s] to drop "
                "it and recreate the volume (its containers are made again with it), remove "
                "the volume by hand, or choose another name" % (part, differs, part))
        if owner is not None and previous is None and not is_owned(current, part, owner):
            raise UserError("Part [%s]: %s, and it was not created by this part: remove it by "
                            "hand or choose another name" % (part, differs))
        return [action(part, "volume", spec.name, "recreate", differs,
                       "recreate = true: its data is dropped")]
    labels = {k: v for k, v in labels_of(current).items() if k not in OWN_LABELS}
    return [action(part, "volume", spec.name, "unchanged",
                   "its labels differ, and a volume's labels cannot change (remove it by hand "
                   "to apply them)" if labels != spec.labels else "")]


class Recipe(Base):
    recipe = "docker.volume"

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.spec = read(self.opts, self.name, self.name_option, hint)
        self.options["volume"] = self.name

    @classmethod
    def owned(cls, values):
        return [("volume", values["name"])]

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context, self.owner)

    def take_over(self, kind, name, previous, stays=False):
        if not self.spec.recreate:
            advice = ("[%s] describes the same volume, but making it again as that part's "
                      "drops its data: set recreate = true in [%s] to drop it" % (
                          self.part, self.part))
            if stays:  # a changed part's old configuration is removed as it was recorded
                return None, advice + ", or give [%s] its old name back" % previous
            current = self.observed().get("volume", name) or {}
            if (current.get("Driver"), current.get("Options") or {}) != (
                    self.spec.driver, self.spec.driver_opts):
                return None, advice + " (its driver options change too)"
            return None, advice + (", or keep = true in [%s] to leave the volume in place "
                                   "(then [%s] uses it as it is)" % (previous, self.part))
        return (self.taken_over(previous, stays), "recreate = true: its data is dropped"), None

    def apply(self, actions):
        for act in actions:  # its users are released and made again by the executor
            if act.verb == "recreate":
                self.run(["volume", "rm", self.spec.name])
                self.engine.forget("volume", self.spec.name)
            if act.verb in ("create", "repair", "recreate"):
                self.run(self.create_args())
                self.engine.forget("volume", self.spec.name)
        return []

    def create_args(self):
        args = ["volume", "create", "--driver", self.spec.driver]
        args += repeated("--opt", ["%s=%s" % item for item in self.spec.driver_opts.items()])
        return args + label_args(self.labels(extra=self.spec.labels)) + [self.spec.name]


uninstall = Recipe.uninstaller()
