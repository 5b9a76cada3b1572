"""dockeroo:docker.gentoo-diskimage: a disk image file made from a Docker image.

In a temporary build container (``build-image``): ``prepare-script``, the
filesystem of ``base-image`` streamed into ``build-root``, ``build-script``;
then ``image-file`` streams out into ``parts/<part>/`` (zero blocks as
holes).  Steps and outputs: docs/recipes/docker.gentoo-diskimage.rst.
read -> plan -> apply (see :mod:`dockeroo.model.plan`).
"""

import dataclasses
import json
import os
import uuid
from typing import Dict, Optional, Tuple

from zc.buildout import UserError

from dockeroo.runtime import container as ctr
from dockeroo.base import tarstream
from dockeroo.engine.errors import DockerError
from dockeroo.base.fingerprint import hash_values
from dockeroo.model.plan import action, fingerprint as spec_fingerprint, not_fingerprinted
from dockeroo.runtime.recipe import Recipe as Base
from dockeroo.model.options import os_errors
from dockeroo.recipes.common import gentoo as _gentoo
from dockeroo.recipes.common.gentoo import DEFAULT_COMMAND, container_name, name_from

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


@dataclasses.dataclass(frozen=True)
class Spec:
    base_image: str
    build_image: str
    build_command: Tuple[str, ...]
    build_root: str
    #: the image file's path in the build container
    source: str
    prepare_script: Optional[str]
    build_script: Optional[str]
    script_shell: Tuple[str, ...]
    script_user: Optional[str]
    build_volumes_from: Tuple[str, ...]
    tty: bool
    privileges: Dict[str, object]
    # where the file lands (from the part and SOURCE), the temporary container
    location: str = not_fingerprinted()
    path: str = not_fingerprinted()
    build_container: str = not_fingerprinted()

    @property
    def fingerprint(self):
        """What the options make (without the images' ids)."""
        return spec_fingerprint(self, "gentoo-diskimage/2")


def read(opts, part, parts_directory):
    """The part's options -> Spec (every mistake a UserError)."""
    base_image = opts.image_ref("base-image")
    build_image = opts.image_ref("build-image")
    build_command = tuple(opts.argv("build-command", DEFAULT_COMMAND))
    build_root = opts.text("build-root", required=True)
    if not build_root.startswith("/"):
        raise opts.error("build-root", "must be an absolute path in the build container",
                         build_root)
    source = opts.text("build-image-file") or opts.text("image-file", required=True)
    if not source.startswith("/") or source.endswith("/"):
        raise opts.error("image-file", "must be the absolute path of a file in the build "
                         "container", source)
    values = dict(prepare_script=opts.script("prepare-script"),
                  build_script=opts.script("build-script"),
                  script_shell=tuple(opts.argv("build-script-shell", ["/bin/sh"])),
                  script_user=opts.word("build-script-user"),
                  build_volumes_from=tuple(ctr.read_volumes_from(opts, "build-volumes-from")),
                  tty=opts.bool("tty", False), privileges=ctr.read_privileges(opts, True))
    default = name_from(part, "disk")
    location = os.path.join(parts_directory, part)
    return Spec(base_image=base_image, build_image=build_image, build_command=build_command,
                build_root=build_root, source=source, location=location,
                path=os.path.join(location, os.path.basename(source)),
                build_container=container_name(opts, "build-container", default + "_diskimage"),
                **values)


def inputs(part, spec, observed, where):
    """The base and build image ids (UserError for a missing image)."""
    return {option: _gentoo.image_id(part, observed, option, ref, where)
            for option, ref in (("base-image", spec.base_image), ("build-image", spec.build_image))}


def file_fingerprint(spec, found):
    return hash_values(spec.fingerprint, [found["base-image"], found["build-image"]])


def read_stamp(path):
    """(fingerprint, inputs) recorded next to the disk image file PATH, or (None, {})."""
    try:
        with open(path + FINGERPRINT_SUFFIX) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None, {}
    try:
        found = json.loads(lines[1]) if len(lines) > 1 else {}
    except ValueError:
        found = {}
    return (lines[0].strip() if lines else None), found


def uses(spec):
    """The disk image's base image and its builder."""
    return [("image", spec.base_image, "base image"), ("image", spec.build_image, "builder")]


def plan(part, spec, observed, context, options, on_disk, where):
    """[Action] for the disk image file of SPEC.  ON_DISK: (whether the file
    exists, what :func:`read_stamp` found); WHERE: the engine's description."""
    present, (stamp, was) = on_disk
    refs = [("base-image", spec.base_image), ("build-image", spec.build_image)]
    verb, cascade = _gentoo.image_changes(context, refs)
    if verb:
        return [action(part, "file", spec.path, verb if present else "create", *cascade)]
    found = inputs(part, spec, observed, where)
    if not present:
        return [_gentoo.missing(part, "file", spec.path, context, options, "image-file")]
    if stamp == file_fingerprint(spec, found):
        return [action(part, "file", spec.path, "unchanged")]
    return [action(part, "file", spec.path, "recreate", *_gentoo.changed(context, options) or [
        "%s %s changed" % (option, ref) for option, ref in refs
        if was and was.get(option) != found[option]] or [
        "no fingerprint recorded for %s" % spec.path if stamp is None else
        "%s was made from another configuration" % spec.path])]


class Recipe(Base):
    recipe = "docker.gentoo-diskimage"
    has_name = False
    known_options = ("image-file", "build-image-file")

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        self.engine.want("image", self.spec.base_image)
        self.engine.want("image", self.spec.build_image)

    def setup(self):
        spec = self.spec = read(self.opts, self.part, self.parts_directory)
        self.options["build-image-file"] = spec.source
        self.options["image-file"] = spec.path
        self.options["location"] = spec.location
        self.options["build-container"] = spec.build_container
        self.options["fingerprint"] = spec.fingerprint

    @classmethod
    def owned(cls, values):
        return [("container", values["build-container"])]

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        """The base's removals, and the disk image file's (buildout removes
        the part's folder, ``keep`` or not)."""
        acts = _gentoo.without_temporaries(super().plan_removal(observed, part, old_options, why))
        path = old_options.get("image-file")
        if path and os.path.exists(path):
            acts.append(action(part, "file", path, "remove", why))
        return acts

    def uses(self):
        return uses(self.spec)

    def user(self):
        return ("file", self.spec.path)

    def plan(self, context):
        on_disk = os.path.isfile(self.spec.path), read_stamp(self.spec.path)
        return plan(self.part, self.spec, self.observed(), context, self.options, on_disk,
                    self.engine.config.description)

    # -- apply --------------------------------------------------------------------------
    def apply(self, actions):
        spec = self.spec
        if any(a.changes for a in actions):
            found = inputs(self.part, spec, self.observed(), self.engine.config.description)
            self.build()
            with os_errors(self.opts, "image-file", "cannot write", spec.path):
                with open(spec.path + FINGERPRINT_SUFFIX, "w") as handle:
                    handle.write("%s\n%s\n" % (file_fingerprint(spec, found),
                                                 json.dumps(found, sort_keys=True)))
        return [spec.location]

    def build(self):
        spec, engine = self.spec, self.engine
        self.clear_leftover(spec.build_container, "option 'build-container'")
        create = ctr.ContainerSpec(name=spec.build_container, image=spec.build_image,
                                   command=list(spec.build_command), tty=spec.tty,
                                   volumes_from=list(spec.build_volumes_from), **spec.privileges)
        with ctr.temporary_container(self, create) as build:
            if spec.build_command == tuple(DEFAULT_COMMAND):
                build.freeze(DEFAULT_COMMAND[0])
            build.start()
            self._script(build, "prepare-script", spec.prepare_script)
            self._extract_base(build)
            self._script(build, "build-script", spec.build_script)

            partial = "%s.part-%s" % (spec.path, uuid.uuid4().hex[:8])
            self.on_failure(lambda: os.path.exists(partial) and os.unlink(partial))
            self.log.info("Copying %s out of the build container to %s", spec.source, spec.path)
            with os_errors(self.opts, "image-file", "cannot write the disk image", spec.path):
                os.makedirs(spec.location, exist_ok=True)
                try:
                    size = engine.reader(["exec", build.name, "cat", spec.source],
                                         lambda src: write_sparse(src, partial),
                                         timeout=self.cmd_timeout(long=True))
                except DockerError as exc:
                    raise UserError("Part [%s], option 'image-file' = %r: cannot read it from "
                                    "the build container: %s"
                                    % (self.part, spec.source, exc.stderr or exc))
                os.replace(partial, spec.path)
        self.log.info("Made %s (%d MiB)", spec.path, size >> 20)

    def _script(self, build, option, script):
        if script:
            build.exec(script, shell=self.spec.script_shell, user=self.spec.script_user,
                       what=option)

    def _extract_base(self, build):
        """``docker export`` of BASE-IMAGE into BUILD-ROOT, extracted inside the container."""
        spec = self.spec
        probe = ctr.ContainerSpec(name="%s_base_%s" % (spec.build_container, uuid.uuid4().hex[:8]),
                                  image=spec.base_image, command=["/.dockeroo-export"])
        with ctr.temporary_container(self, probe, remove_on_error=True) as box:
            self.log.info("Extracting %s into %s", spec.base_image, spec.build_root)
            self.engine.pipe(["export", box.name],
                             ["exec", "--interactive", build.name, "tar", "-x", "-p",
                              "--numeric-owner", "-f", "-", "-C", spec.build_root],
                             transform=lambda src, out: tarstream.retarget(
                                 src, out, lambda name: None if name == ".dockerenv" else name),
                             timeout=self.cmd_timeout(long=True))


uninstall = Recipe.uninstaller()
