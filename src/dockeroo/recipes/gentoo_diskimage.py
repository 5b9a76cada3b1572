"""dockeroo:docker.gentoo-diskimage: a disk image file made from a Docker image.

Steps (a temporary build container from ``build-image``, removed on
success and on failure):

1. ``prepare-script`` runs in the build container (make the image file,
   partition it, make and mount file systems under ``build-root``);
2. the filesystem of ``base-image`` streams into ``build-root``
   (``docker export`` piped into ``tar`` inside the build container, so it
   lands in whatever the script mounted there; nothing touches the disk
   outside the container);
3. ``build-script`` runs (install a boot loader, unmount, detach...);
4. ``image-file`` streams out of the build container into the part's
   folder: ``parts/<part>/<basename>`` (zero blocks are written as holes).

``${part:image-file}`` is the path of the file on the buildout's host
afterwards (``${part:build-image-file}`` the path inside the builder);
uninstall removes it.  The file is made again when an option changes or
when the base or build image changes (their ids are fingerprinted).
"""

import os
import re
import uuid

from zc.buildout import UserError

from .. import container as ctr
from .. import tarstream
from ..engine import DockerError
from ..fingerprint import hash_values
from ..recipe import Recipe as Base, label_args, os_errors
from .gentoo_build import DEFAULT_COMMAND, container_name, volumes_from

BLOCK = 1 << 20
FINGERPRINT_SUFFIX = ".dockeroo-fingerprint"


def write_sparse(src, path):
    """Copy the binary stream SRC to PATH; all-zero blocks become holes."""
    size = 0
    with open(path, "wb") as out:
        for block in iter(lambda: src.read(BLOCK), b""):
            if block.count(0) == len(block):
                out.seek(len(block), os.SEEK_CUR)
            else:
                out.write(block)
            size += len(block)
        out.truncate(size)
    return size


class Recipe(Base):
    recipe = "docker.gentoo-diskimage"
    has_name = False

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        self.engine.want("image", self.base_image)
        self.engine.want("image", self.build_image)

    def setup(self):
        opts = self.opts
        self.base_image = opts.image_ref("base-image")
        self.build_image = opts.image_ref("build-image")
        self.build_command = opts.argv("build-command", DEFAULT_COMMAND)
        self.build_root = opts.text("build-root", required=True)
        if not self.build_root.startswith("/"):
            raise opts.error("build-root", "must be an absolute path in the build container",
                             self.build_root)
        source = opts.text("build-image-file") or opts.text("image-file", required=True)
        if not source.startswith("/") or source.endswith("/"):
            raise opts.error("image-file", "must be the absolute path of a file in the build "
                             "container", source)
        self.source = source
        self.prepare_script = opts.script("prepare-script")
        self.build_script = opts.script("build-script")
        self.script_shell = opts.argv("build-script-shell", ["/bin/sh"])
        self.script_user = opts.word("build-script-user")
        self.build_volumes_from = volumes_from(opts, "build-volumes-from")
        self.tty = opts.bool("tty", False)
        self.privileges = ctr.read_privileges(opts, True)
        default = re.sub(r"[^a-zA-Z0-9_.-]", "_", self.part).lstrip("_.-") or "disk"
        self.build_container = container_name(opts, "build-container", default + "_diskimage")

        self.location = os.path.join(self.parts_directory, self.part)
        self.path = os.path.join(self.location, os.path.basename(source))
        self.fingerprint = hash_values(
            "gentoo-diskimage/1", self.base_image, self.build_image, self.build_command,
            self.build_root, source, self.prepare_script, self.build_script, self.script_shell,
            self.script_user, self.build_volumes_from, self.tty, self.privileges)
        self.options["build-image-file"] = source
        self.options["image-file"] = self.path
        self.options["location"] = self.location
        self.options["build-container"] = self.build_container
        self.options["fingerprint"] = self.fingerprint

    @classmethod
    def owned(cls, values):
        return [("container", values["build-container"])]

    # -- install / update --------------------------------------------------------------
    def ensure(self):
        ids = [self._image_id("base-image", self.base_image),
               self._image_id("build-image", self.build_image)]
        fingerprint = hash_values(self.fingerprint, ids)
        stamp = self.path + FINGERPRINT_SUFFIX
        try:
            with open(stamp) as handle:
                current = handle.read().strip()
        except OSError:
            current = None
        if current == fingerprint and os.path.isfile(self.path):
            return [self.location]
        self.build()
        with os_errors(self.opts, "image-file", "cannot write", self.path):
            with open(stamp, "w") as handle:
                handle.write(fingerprint + "\n")
        return [self.location]

    def _image_id(self, option, ref):
        data = self.engine.inspect("image", ref)
        if data is None:
            raise UserError("Part [%s], option %r = %r: no such image on %s"
                            % (self.part, option, ref, self.engine.config.description))
        return data["Id"]

    def build(self):
        engine = self.engine
        timeout = self.cmd_timeout(long=True)
        self.clear_leftover(self.build_container, "option 'build-container'")
        spec = ctr.ContainerSpec(name=self.build_container, image=self.build_image,
                                 command=self.build_command, tty=self.tty,
                                 labels=self.temporary(self.build_container),
                                 volumes_from=self.build_volumes_from, **self.privileges)
        self.run(spec.create_args())
        if self.build_command == DEFAULT_COMMAND:
            self.install_freeze(self.build_container, DEFAULT_COMMAND[0])
        self.run(["start", self.build_container])

        self._script("prepare-script", self.prepare_script)
        self._extract_base(timeout)
        self._script("build-script", self.build_script)

        partial = "%s.part-%s" % (self.path, uuid.uuid4().hex[:8])
        self.on_failure(lambda: os.path.exists(partial) and os.unlink(partial))
        self.log.info("Copying %s out of the build container to %s", self.source, self.path)
        with os_errors(self.opts, "image-file", "cannot write the disk image", self.path):
            os.makedirs(self.location, exist_ok=True)
            try:
                size = engine.reader(["exec", self.build_container, "cat", self.source],
                                     lambda src: write_sparse(src, partial), timeout=timeout)
            except DockerError as exc:
                raise UserError("Part [%s], option 'image-file' = %r: cannot read it from the "
                                "build container: %s" % (self.part, self.source,
                                                          exc.stderr or exc))
            os.replace(partial, self.path)
        self.remove_container(self.build_container)
        self.log.info("Made %s (%d MiB)", self.path, size >> 20)

    def _script(self, option, script):
        if not script:
            return
        self.log.info("Running %s in %s", option, self.build_container)
        ctr.exec_script(self.engine, self.build_container, script, shell=self.script_shell,
                        user=self.script_user, log=self.log, timeout=self.cmd_timeout(long=True))

    def _extract_base(self, timeout):
        """``docker export`` of BASE-IMAGE into BUILD-ROOT, extracted inside the container."""
        engine = self.engine
        probe = "%s_base_%s" % (self.build_container, uuid.uuid4().hex[:8])
        self.run(["create", "--name", probe] + label_args(self.temporary(probe))
                 + [self.base_image, "/.dockeroo-export"])
        try:
            self.log.info("Extracting %s into %s", self.base_image, self.build_root)
            engine.pipe(["export", probe],
                        ["exec", "--interactive", self.build_container, "tar", "-x", "-p",
                         "--numeric-owner", "-f", "-", "-C", self.build_root],
                        transform=lambda src, out: tarstream.retarget(
                            src, out, lambda name: None if name == ".dockerenv" else name),
                        timeout=timeout)
        finally:
            self.remove_container(probe)


uninstall = Recipe.uninstaller()
