"""dockeroo:docker.push: a local image pushed to a registry.

read -> plan -> apply (see :mod:`dockeroo.model.plan` and
docs/recipes/docker.push.rst).  The state file remembers the image id last
pushed to each reference: only a changed id is pushed again.  A tag added
for the push is removed right after it.
"""

from dockeroo.model.ownership import remove_image
from dockeroo.model.plan import action
from dockeroo.recipes.common.registry import PartState, RegistryRecipe, require_local


def plan(part, local_ref, image, observed, context, state, offline):
    """[Action]: push the local image LOCAL_REF as IMAGE when its id is not
    the one last pushed there (STATE: the part's state file).  The registry
    is not asked: the record of the last push decides."""
    acts = [action(part, "image", ref, "remove", "tag added for a push by an interrupted run")
            for ref in state.get("added-tags") or [] if observed.get("image", ref) is not None]
    local, rebuilt = require_local(part, "docker.push", observed, context, local_ref)
    last = (state.get("pushed") or {}).get(image) or {}
    local_id = (local or {}).get("Id")
    if rebuilt is None and last.get("image-id") == local["Id"]:
        return acts + [action(part, "image", image, "unchanged")]
    if offline:
        return acts + [action(part, "image", image, "unchanged",
                              "buildout is offline (-o): not pushed", data=("offline", local_id))]
    if not last.get("image-id"):
        return acts + [action(part, "image", image, "create", "first push of %s" % local_ref,
                              data=("push", local_id), says="pushing")]
    if rebuilt is not None:
        why = "image %s will be rebuilt" % local_ref
    else:
        why = "image %s changed since the last push (id %s -> %s)" % (
            local_ref, last["image-id"][7:19], local["Id"][7:19])
    return acts + [action(part, "image", image, "update", why, data=("push", local_id),
                          says="pushing")]


class Recipe(RegistryRecipe):
    recipe = "docker.push"
    allow_digest = False
    image_output = "pushed-image"

    def setup(self):
        self.read_registry_options()
        self.local = str(self.opts.reference(self.name_option, self.name).normalized())
        self.options["repository"] = self.ref.familiar_name

    def plan(self, context):
        return plan(self.part, self.local, self.image, self.observed(), context,
                    self.state.load(), self.offline)

    def apply(self, actions):
        self.drop_added_tags()
        for act in actions:
            what, image_id = act.data or (None, None)
            if what == "push":
                digest = self.push(image_id)
                state = self.state.load()
                state.setdefault("pushed", {})[self.image] = {"image-id": image_id,
                                                               "digest": digest}
                self.state.save(state)
            elif what == "offline":
                self.log.warning("Buildout is offline (-o): %s (id %s) is not pushed to %s",
                                 self.local, image_id[7:19], self.image)
        return []

    def push(self, image_id):
        return self.push_as(self.local, self.image, image_id)

    # -- changed configuration ---------------------------------------------------------
    def forget_replaced(self, old):
        """Forget the pushes of references the part no longer pushes (nothing
        is removed from the registry)."""
        state = self.state.load()
        pushed = state.get("pushed", {})
        stale = [ref for ref in pushed if ref != self.image]
        if stale:
            for ref in stale:
                del pushed[ref]
            self.state.save(state)


    # -- uninstall --------------------------------------------------------------------
    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        """Nothing is removed from the registry; only the tags a killed run
        added for a push."""
        state = PartState.for_options(old_options)
        data = state.load() if state else {}
        acts = [action(part, "image", ref, "unchanged", "nothing is removed from the registry")
                for ref in sorted(data.get("pushed") or {})]
        return acts + [action(part, "image", ref, "remove", "tag added for a push by an "
                              "interrupted run") for ref in data.get("added-tags") or []
                       if observed.get("image", ref) is not None]

    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """A tag added for a push by an interrupted run (recorded before tagging)."""
        remove_image(engine, act.name, check=False)
        log.info("Removed the tag %s added for a push", act.name)


uninstall = Recipe.uninstaller()
