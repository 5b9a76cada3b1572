"""dockeroo:docker.pull: an image pulled from a registry.

read -> plan -> apply (see :mod:`dockeroo.model.plan` and
docs/recipes/docker.pull.rst).  Pulled when missing, or again in newest mode
(not a digest); uninstall removes only a reference the part brought.
"""

from zc.buildout import UserError

from dockeroo.base import references
from dockeroo.model.options import removal_settings
from dockeroo.model.ownership import remove_image
from dockeroo.model.plan import action
from dockeroo.recipes.common.registry import (PartState, RegistryRecipe, plan_reference_removals,
                                              remove_reference)


def plan(part, image, digest, observed, context, newest, offline):
    """[Action] for the reference IMAGE (a DIGEST reference never changes):
    pulled when missing, pulled again in NEWEST mode (the tag may move)."""
    current = observed.get("image", image)
    if current is None:
        if offline:
            raise UserError("Part [%s] (docker.pull): image %s is not in the engine and buildout "
                            "is offline (-o): run without -o to pull it" % (part, image))
        old = context.old
        if old is None:
            act = action(part, "image", image, "create", "new part")
        elif old.get("image") != image:
            act = action(part, "image", image, "create",
                         "the reference changed (was %s)" % old.get("image"))
        else:
            act = action(part, "image", image, "repair",
                         "image %s is missing (removed by hand?)" % image)
    elif newest and not digest:
        act = action(part, "image", image, "maybe",
                     "newest mode: the registry may have a newer image", data=current)
    else:
        act = action(part, "image", image, "unchanged", data=current)
    if act.changes:
        context.will_change_image(image, act)
    return [act]


class Recipe(RegistryRecipe):
    recipe = "docker.pull"

    def setup(self):
        self.read_registry_options()
        self.options["repository"] = self.ref.familiar_name

    @classmethod
    def owned(cls, values):
        return [("image", values["image"])] if values.get("image") else []

    def plan(self, context):
        return plan(self.part, self.image, self.ref.digest, self.observed(), context,
                    newest=self.newest and not self.offline, offline=self.offline)

    def apply(self, actions):
        state = self.state.load()
        before = repr(state)
        refs = state.setdefault("refs", {})
        for act in actions:
            owned = bool((refs.get(self.image) or {}).get("owned"))
            if act.verb in ("create", "repair"):
                # recorded before pulling: a run killed during or right after the
                # pull still knows that the part brought this reference
                refs[self.image] = {"owned": True}
                self.state.save(state)
                self.pull()
                self.on_failure(lambda: self.untag(self.image))
                owned = True
            elif act.verb == "maybe":
                self.refresh(act.data, owned)
            else:
                self.log.debug("%s is present (id %s)", self.image, act.data["Id"][7:19])
            refs[self.image] = {"owned": owned}
        if repr(state) != before or not self.state.exists():
            self.state.save(state)
        return []

    def pull(self):
        with self.registry_env() as env:
            self.log.info("Pulling %s", self.image)
            self.run(["pull", self.image], long=True, stream=True, env=env)
        self.engine.forget("image", self.image)
        if self.engine.inspect("image", self.image) is None:
            raise UserError("Part [%s] (%s): docker pull %s succeeded but the engine has no "
                            "such image" % (self.part, self.recipe, self.image))

    def refresh(self, current, owned):
        """Newest mode: pull again; drop the replaced image when it is ours and untagged."""
        old_id = current["Id"]
        self.pull()
        new_id = self.engine.image_id(self.image)
        if new_id == old_id:
            self.log.info("%s is up to date", self.image)
            return
        self.log.info("%s updated: %s -> %s", self.image, old_id[7:19], new_id[7:19])
        if not owned:
            return
        old = self.engine.inspect("image", old_id)
        if (old is not None and not old.get("RepoTags")
                and all(self.in_repository(d) for d in old.get("RepoDigests") or [])):
            result = remove_image(self.engine, old_id, timeout=self.cmd_timeout(), check=False)
            if result.returncode == 0:
                self.log.info("Removed the replaced image %s", old_id[7:19])
            else:
                self.log.info("The replaced image %s is still in use: left in place (%s)",
                              old_id[7:19], result.stderr.strip())

    def in_repository(self, text):
        """Does TEXT (a RepoDigests entry) name this part's repository?"""
        try:
            return references.parse(text).same_repository(self.ref)
        except references.ReferenceError:
            return False

    def untag(self, ref):
        remove_image(self.engine, ref, timeout=self.cmd_timeout())

    # -- changed configuration ---------------------------------------------------------
    def forget_replaced(self, old):
        """The old reference, removed if this part pulled it
        (:meth:`replaced_removals`, from the state file), is forgotten."""
        old_ref = old.get("image")
        if not old_ref or old_ref == self.image:
            return
        state = self.state.load()
        if state.get("refs", {}).pop(old_ref, None) is not None:
            self.state.save(state)

    # -- uninstall --------------------------------------------------------------------
    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        """The references the state file says this part brought are removed,
        the others left (carried out by ``apply_removal``)."""
        keep, _timeout = removal_settings(part, old_options)
        state = PartState.for_options(old_options)
        if state is None or not state.exists():
            image = old_options.get("image")
            return [action(part, "image", image, "unchanged", "no record of what this part "
                           "pulled: left in place")] if image else []
        return plan_reference_removals(part, observed, [
            (ref, entry.get("owned"), None)
            for ref, entry in sorted(state.load().get("refs", {}).items())], keep, why)

    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """A reference this part pulled (``docker image rm REF``: other tags stay)."""
        remove_reference(engine, part, act.name, log, removal_settings(part, options)[1])


uninstall = Recipe.uninstaller()
