"""dockeroo:docker.gentoo-bootstrap: an operating system image from root filesystem archives.

Steps (as the SPEC lists them): the ``archives`` stream into ``docker
import`` (nothing is extracted to disk); a container is created from that
image running ``command`` (``/bin/freeze`` by default, installed from the
shipped binaries); ``layout`` is copied onto its root; ``script`` runs in
it; with ``commit = true`` the container is committed as ``image`` and
removed, otherwise the running container is the part's result (next to the
imported ``image``), ready for ``docker exec`` and ``volumes-from``.

Everything that defines the result is fingerprinted in ``setup()``; the
image (and container) carry the fingerprint as a label, so a re-run with
nothing changed does nothing and a change rebuilds.  A rebuild happens in
a temporary container: the previous image and container stay untouched
until the new ones are complete.
"""

import os
import re

from zc.buildout import UserError

from .. import archives as archives_mod
from .. import container as ctr
from .. import binfmt
from ..fingerprint import folder_fingerprint, hash_values
from ..options import CONTAINER_NAME
from ..recipe import LABEL_FINGERPRINT, Recipe as Base, os_errors


_CONTAINER_NAME = CONTAINER_NAME  # Docker's rule: 2 or more characters


class Recipe(Base):
    recipe = "docker.gentoo-bootstrap"
    name_aliases = ("image",)

    def setup(self):
        opts = self.opts
        self.image = str(opts.reference(self.name_option, self.name, digest=False,
                                        hint=" (image defaults to the part name; set image)")
                         .normalized())
        default_container = re.sub(r"[^a-zA-Z0-9_.-]", "_", self.part).lstrip("_.-") + "_bootstrap"
        self.container = opts.text("container", default=default_container)
        if not _CONTAINER_NAME.match(self.container):
            raise opts.error("container", "a container name has 2 or more letters, digits, "
                             "'_', '.' and '-' and starts with a letter or digit",
                             self.container)
        self.archives = archives_mod.parse_archives(opts, "archives", self.directory)
        if not self.archives:
            raise opts.error("archives", "is required: the root filesystem archives "
                             "(URLs or paths, one per line) to import")
        self.command = opts.argv("command", ["/bin/freeze"])
        self.commit = opts.bool("commit", False)
        self.layout = self.path_option("layout", must_exist=True, kind="dir")
        self.script = opts.script("script")
        self.script_shell = opts.argv("script-shell", ["/bin/sh"])
        self.script_user = opts.word("script-user")
        self.platform = binfmt.read_platform(opts, "crossdev-platform")
        self.machine_name = opts.text("machine-name") or os.environ.get("DOCKER_MACHINE_NAME")
        self.tty = opts.bool("tty", False)
        self.volumes = ctr.read_volumes(opts, "volumes", base=self.directory)
        self.volumes_from = opts.lines("volumes-from")
        for source in self.volumes_from:
            name, _, mode = source.partition(":")
            if not _CONTAINER_NAME.match(name) or mode not in ("", "ro", "rw"):
                raise opts.error("volumes-from", "each line must be CONTAINER[:ro|:rw]", source)
        self.privileges = ctr.read_privileges(opts, True)

        with os_errors(opts, "layout", "cannot read the layout", self.layout):
            layout_fp = (folder_fingerprint(self.layout, cache_dir=self.cache_directory)
                         if self.layout else None)
        #: what the imported image holds
        self.archives_fp = hash_values("gentoo-bootstrap/archives/1",
                                       [a.identity() for a in self.archives])
        #: what the part's result holds
        self.fingerprint = hash_values(
            "gentoo-bootstrap/1", self.archives_fp, self.image, self.container, self.command,
            self.commit, layout_fp, self.script, self.script_shell, self.script_user,
            self.platform, self.tty, self.volumes, self.volumes_from, self.privileges)
        self.options["image"] = self.image
        self.options["container"] = self.container
        self.options["fingerprint"] = self.fingerprint

    @classmethod
    def owned(cls, values):
        # the container first: the image cannot go while a container uses it
        return [("container", values["container"]), ("image", values["image"])]

    # -- install / update ------------------------------------------------------------
    def ensure(self):
        engine = self.engine
        engine.want("container", self.container)
        image = self._ours_or_none("image", self.image)
        container = self._ours_or_none("container", self.container)
        if self.commit:
            if image is not None and _fingerprint(image) == self.fingerprint and container is None:
                return []
        elif (image is not None and container is not None
              and _fingerprint(image) == self.archives_fp
              and _fingerprint(container) == self.fingerprint
              and container.get("Image") == image["Id"]):
            if not (container.get("State") or {}).get("Running"):
                self.run(["start", self.container])
                engine.forget("container", self.container)
                self.log.info("Started container %s", self.container)
            return []
        self.build(image, container)
        return []

    def _ours_or_none(self, kind, name):
        obj = self.engine.inspect(kind, name)
        if obj is not None and not self.is_ours(obj):
            raise UserError("Part [%s]: %s %s exists and was not made by this part; "
                            "remove it or choose another %s name (option '%s')"
                            % (self.part, kind, name, kind, "image" if kind == "image" else "container"))
        return obj

    def build(self, old_image, old_container):
        engine = self.engine
        timeout = self.cmd_timeout(long=True)

        # 1. archives -> image (reused when only the container's inputs changed)
        if (not self.commit and old_image is not None
                and _fingerprint(old_image) == self.archives_fp):
            base = old_image["Id"]
        else:
            base = archives_mod.import_archives(
                engine, self.archives, self.opts, "archives", self.buildout["buildout"],
                changes=[ctr.label_change(self.image_labels(self.archives_fp))],
                labels=self.image_labels(), logger=self.log, timeout=timeout)
            self.on_failure(lambda: self.remove_image_id(base))
            self.log.info("Imported %d archive(s) as image %s", len(self.archives), base[7:19])

        # 2. a container (under a temporary name until it is complete)
        temp = "%s-new-%s" % (self.container, self.lifecycle.id[:12])
        spec = ctr.ContainerSpec(
            name=temp, image=base, command=self.command, tty=self.tty,
            labels=self.temporary(temp, self.fingerprint), volumes=self.volumes,
            volumes_from=self.volumes_from, **self.privileges)
        self.run(spec.create_args())

        # 3. freeze, for the engine's architecture (it runs natively)
        self.install_freeze(temp, "/bin/freeze")

        # 4. layout
        if self.layout:
            with os_errors(self.opts, "layout", "cannot read the layout", self.layout):
                ctr.load_layout(engine, temp, self.layout, uid=0, gid=0, timeout=timeout)
            self.log.info("Copied layout %s", self.layout)

        self.prepare_platform()
        self.run(["start", temp])

        # 5. script
        if self.script:
            self.log.info("Running script in %s", temp)
            ctr.exec_script(engine, temp, self.script, shell=self.script_shell,
                            user=self.script_user, log=self.log, timeout=timeout)

        # 6. commit, or keep the container; a failure from here on puts the
        # previous image tag and container back
        if old_image is not None:
            self.on_failure(lambda: self.run(["tag", old_image["Id"], self.image]))
        if self.commit:
            new_id = ctr.commit(engine, temp, self.image,
                                changes=[ctr.label_change({LABEL_FINGERPRINT: self.fingerprint})],
                                timeout=timeout)
            self.on_failure(lambda: self.remove_image_id(new_id))
            self.run(["rm", "--force", "--volumes", temp])
            self.lifecycle.released(temp)
            self.log.info("Committed image %s", self.image)
            if old_container is not None:
                self.run(["rm", "--force", "--volumes", self.container])
        else:
            new_id = base
            self.run(["tag", base, self.image])
            self.swap_container(temp, old_container)
            self.log.info("Container %s is running from image %s", self.container, self.image)
        engine.forget("container", self.container)
        engine.forget("image", self.image)
        if old_image is not None and old_image["Id"] != new_id:
            self.retire_image(old_image["Id"])

    def swap_container(self, temp, old_container):
        """Give TEMP the part's container name.  The previous container is
        renamed aside first and removed only once that worked; a failure
        renames both back."""
        aside = None
        if old_container is not None:
            aside = "%s-old-%s" % (self.container, self.lifecycle.id[:12])
            self.set_aside(self.container, aside,
                           (old_container.get("State") or {}).get("Running"))

            def restore():
                self.run(["rename", aside, self.container])
                self.lifecycle.aside_done(aside)
            self.on_failure(restore, "put back the previous container %s" % self.container)
        self.run(["rename", temp, self.container])
        self.lifecycle.released(temp)
        self.on_failure(lambda: self.run(["rename", self.container, temp]))
        if aside is not None:
            self.drop_aside(aside)

    def prepare_platform(self):
        """Make sure the engine's host can run ``crossdev-platform`` binaries."""
        binfmt.ensure_handler(self, "crossdev-platform", self.platform, self.machine_name)


def _fingerprint(obj):
    labels = (obj.get("Config") or {}).get("Labels") or {}
    return labels.get(LABEL_FINGERPRINT)


uninstall = Recipe.uninstaller()
