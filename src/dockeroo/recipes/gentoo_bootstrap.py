"""dockeroo:docker.gentoo-bootstrap: an operating system image from root filesystem archives.

The ``archives`` stream into ``docker import``; a container from that image
gets ``layout`` and runs ``script``, then is committed as ``image`` or kept
running (docs/recipes/docker.gentoo-bootstrap.rst).  read -> plan -> apply:
the image (and container) carry the fingerprint of the whole Spec; a
rebuild happens in a temporary container, the previous ones untouched
until the new ones are complete.
"""

import dataclasses
import os
from typing import Dict, Optional, Tuple

from dockeroo.recipes.common import archives as archives_mod, binfmt, gentoo as _gentoo
from dockeroo.runtime import container as ctr
from dockeroo.base.fingerprint import folder_fingerprint, hash_values
from dockeroo.model.plan import action, fingerprint as spec_fingerprint, not_fingerprinted
from dockeroo.model.ownership import LABEL_FINGERPRINT, remove_container, renamed_temporary
from dockeroo.runtime.recipe import Recipe as Base
from dockeroo.model.options import os_errors

#: what the recorded fingerprint options stand for, in plan reasons
DESCRIBE = {"layout-fingerprint": "layout content changed",
            "archives-fingerprint": "archive content changed"}


@dataclasses.dataclass(frozen=True)
class Spec:
    image: str
    container: str
    #: what the imported image holds (the archives' identities)
    archives_fp: str
    command: Tuple[str, ...]
    commit: bool
    layout_fp: Optional[str]
    script: Optional[str]
    script_shell: Tuple[str, ...]
    script_user: Optional[str]
    platform: Optional[str]
    tty: bool
    volumes: Tuple[str, ...]
    volumes_from: Tuple[str, ...]
    privileges: Dict[str, object]
    archives: tuple = not_fingerprinted(())  # through archives_fp
    layout: Optional[str] = not_fingerprinted()  # through layout_fp (its content)
    machine_name: Optional[str] = not_fingerprinted()

    @property
    def fingerprint(self):
        """What the part's result holds."""
        return spec_fingerprint(self, "gentoo-bootstrap/2")


def read(opts, part, name, name_option, directory, cache_dir=None):
    """The part's options -> Spec (every mistake a UserError)."""
    image = str(opts.reference(name_option, name, digest=False,
                               hint=" (image defaults to the part name; set image)").normalized())
    container = _gentoo.container_name(opts, "container", _gentoo.name_from(part) + "_bootstrap")
    archives = tuple(archives_mod.parse_archives(opts, "archives", directory))
    if not archives:
        raise opts.error("archives", "is required: the root filesystem archives "
                         "(URLs or paths, one per line) to import")
    command = tuple(opts.argv("command", ["/bin/freeze"]))
    commit = opts.bool("commit", False)
    layout = opts.path("layout", directory, must_exist=True, kind="dir")
    values = dict(script=opts.script("script"),
                  script_shell=tuple(opts.argv("script-shell", ["/bin/sh"])),
                  script_user=opts.word("script-user"),
                  platform=binfmt.read_platform(opts, "crossdev-platform"),
                  machine_name=opts.text("machine-name") or os.environ.get("DOCKER_MACHINE_NAME"),
                  tty=opts.bool("tty", False),
                  volumes=tuple(ctr.read_volumes(opts, "volumes", base=directory)),
                  volumes_from=tuple(ctr.read_volumes_from(opts)),
                  privileges=ctr.read_privileges(opts, True))
    with os_errors(opts, "layout", "cannot read the layout", layout):
        layout_fp = folder_fingerprint(layout, cache_dir=cache_dir) if layout else None
    return Spec(image=image, container=container, command=command, commit=commit,
                archives=archives, layout=layout, layout_fp=layout_fp,
                archives_fp=hash_values("gentoo-bootstrap/archives/1",
                                        [a.identity() for a in archives]), **values)


def plan(part, spec, observed, context, options, owner):
    """[Action] for the image (and, without ``commit``, the container) of SPEC.

    OPTIONS are the part's recorded options (compared with ``context.old``
    for the reasons); OWNER the buildout's id (ownership labels)."""
    image = _gentoo.ours(part, observed, owner, "image", spec.image, "image")
    container = _gentoo.ours(part, observed, owner, "container", spec.container, "container")
    reasons = _gentoo.changed(context, options, DESCRIBE)
    if spec.commit:
        if image is None:
            act = _gentoo.missing(part, "image", spec.image, context, options, "image", DESCRIBE)
        elif _gentoo.label(image) != spec.fingerprint:
            act = action(part, "image", spec.image, "recreate",
                         *reasons or ["image %s was made from another configuration" % spec.image])
        elif container is not None:
            act = action(part, "image", spec.image, "recreate",
                         "container %s is left from a configuration without commit" % spec.container)
        else:
            return [action(part, "image", spec.image, "unchanged")]
        context.will_change_image(spec.image, act)
        return [act] + _gentoo.retired(act, image, context)

    # the imported image, and the running container made from it
    if image is None:
        image_act = _gentoo.missing(part, "image", spec.image, context, options, "image",
                                    DESCRIBE)
    elif _gentoo.label(image) != spec.archives_fp:
        image_act = action(part, "image", spec.image, "recreate", *[
            r for r in reasons if r in ("option 'archives' changed", DESCRIBE[
                "archives-fingerprint"], "option 'commit' changed")]
            or ["image %s was imported from other archives" % spec.image])
    else:
        image_act = action(part, "image", spec.image, "unchanged")
    if container is None:
        ctr_act = _gentoo.missing(part, "container", spec.container, context, options,
                                  "container", DESCRIBE)
    elif image_act.changes:
        ctr_act = action(part, "container", spec.container, "recreate",
                         "its image %s is imported again" % spec.image)
    elif _gentoo.label(container) != spec.fingerprint:
        ctr_act = action(part, "container", spec.container, "recreate", *reasons or [
            "container %s was made from another configuration" % spec.container])
    elif container.get("Image") != image["Id"]:
        ctr_act = action(part, "container", spec.container, "recreate",
                         "container %s runs another image than %s" % (spec.container, spec.image))
    elif not (container.get("State") or {}).get("Running"):
        ctr_act = action(part, "container", spec.container, "repair",
                         "container %s is stopped" % spec.container)
    else:
        ctr_act = action(part, "container", spec.container, "unchanged")
    if image_act.changes:
        context.will_change_image(spec.image, image_act)
    return [image_act, ctr_act] + _gentoo.retired(image_act, image, context)


class Recipe(Base):
    recipe = "docker.gentoo-bootstrap"
    name_aliases = ("image",)

    def setup(self):
        spec = self.spec = read(self.opts, self.part, self.name, self.name_option,
                                self.directory, self.cache_directory)
        self.options["image"] = spec.image
        self.options["container"] = spec.container
        self.options["archives-fingerprint"] = spec.archives_fp
        if spec.layout_fp:
            self.options["layout-fingerprint"] = spec.layout_fp
        self.options["fingerprint"] = spec.fingerprint

    @classmethod
    def owned(cls, values):
        # the container first: the image cannot go while a container uses it
        return [("container", values["container"]), ("image", values["image"])]

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context, self.options, self.owner)

    # -- apply --------------------------------------------------------------------------
    def apply(self, actions):
        spec = self.spec
        acts = {a.kind: a for a in actions if a.name in (spec.image, spec.container)}
        if not any(a.changes for a in acts.values()):
            return []
        old_image = self.engine.inspect("image", spec.image)
        old_container = self.engine.inspect("container", spec.container)
        if acts["image"].verb == "unchanged" and acts.get("container") and \
                acts["container"].verb == "repair" and old_container is not None:
            self.run(["start", spec.container])  # it was stopped
            self.engine.forget("container", spec.container)
            self.log.info("Started container %s", spec.container)
            return []
        self.build(old_image, old_container, reuse=acts["image"].verb == "unchanged")
        return []

    def build(self, old_image, old_container, reuse):
        spec, engine = self.spec, self.engine
        # 1. archives -> image (reused when only the container's inputs changed)
        if reuse:
            base = old_image["Id"]
        else:
            base = archives_mod.import_archives(
                engine, spec.archives, self.opts, "archives", self.buildout["buildout"],
                changes=[ctr.label_change(self.image_labels(spec.archives_fp))],
                labels=self.image_labels(), logger=self.log, timeout=self.cmd_timeout(long=True))
            self.on_failure(lambda: self.remove_image_id(base))
            self.log.info("Imported %d archive(s) as image %s", len(spec.archives), base[7:19])

        # 2. a container, under a temporary name until it is complete
        temp = renamed_temporary(spec.container, self.lifecycle.id)
        create = ctr.ContainerSpec(
            name=temp, image=base, command=list(spec.command), tty=spec.tty,
            volumes=list(spec.volumes), volumes_from=list(spec.volumes_from), **spec.privileges)
        with ctr.temporary_container(self, create, spec.fingerprint, renamed=True) as box:
            box.freeze("/bin/freeze")  # for the engine's architecture: it runs natively
            if spec.layout:
                box.layout(spec.layout, uid=0, gid=0)
            binfmt.ensure_handler(self, "crossdev-platform", spec.platform, spec.machine_name)
            box.start()
            if spec.script:
                box.exec(spec.script, shell=spec.script_shell, user=spec.script_user)
            # 3. commit, or keep the container; a failure from here on puts the
            # previous image tag and container back
            if old_image is not None and not reuse:
                self.on_failure(lambda: self.run(["tag", old_image["Id"], spec.image]))
            if spec.commit:
                new_id = box.commit(spec.image, [ctr.label_change(
                    {LABEL_FINGERPRINT: spec.fingerprint})])
                self.on_failure(lambda: self.remove_image_id(new_id))
                box.remove()
                if not reuse:
                    ctr.drop_committed_base(engine, base, timeout=self.cmd_timeout())
                self.log.info("Committed image %s", spec.image)
                if old_container is not None:
                    remove_container(self.engine, spec.container, timeout=self.cmd_timeout())
            else:
                new_id = base
                if not reuse:
                    self.run(["tag", base, spec.image])
                self.swap_container(temp, old_container)
                box.kept()
                self.log.info("Container %s is running from image %s", spec.container, spec.image)
        engine.forget("container", spec.container)
        engine.forget("image", spec.image)
        if old_image is not None and old_image["Id"] != new_id:
            self.retire_image(old_image["Id"])

    def swap_container(self, temp, old_container):
        """Give TEMP the part's container name.  The previous container is
        renamed aside first and removed only once that worked; a failure
        renames both back."""
        name, aside = self.spec.container, None
        if old_container is not None:
            aside = "%s-old-%s" % (name, self.lifecycle.id[:12])
            self.set_aside(name, aside, (old_container.get("State") or {}).get("Running"))

            def restore():
                self.run(["rename", aside, name])
                self.lifecycle.aside_done(aside)
            self.on_failure(restore, "put back the previous container %s" % name)
        self.run(["rename", temp, name])
        self.lifecycle.released(temp)
        self.on_failure(lambda: self.run(["rename", name, temp]))
        if aside is not None:
            self.drop_aside(aside)


uninstall = Recipe.uninstaller()
