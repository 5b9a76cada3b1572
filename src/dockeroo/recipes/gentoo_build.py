"""dockeroo:docker.gentoo-build: an image assembled from Gentoo binary packages.

A build container (``build-image``) emerges ``packages`` into an empty root
that streams into an assemble container (``docker cp`` to ``docker cp``),
which is committed as ``name``; both are temporary.  The steps and options
are in docs/recipes/docker.gentoo-build.rst.  read -> plan -> apply: the
image carries the fingerprint of the whole Spec with the build and base
image ids, and ``update`` rebuilds only when it differs.
"""

import contextlib
import dataclasses
import json
import os
import re
from typing import Dict, Optional, Tuple

from zc.buildout import UserError

from dockeroo.recipes.common import archives as archives_mod, binfmt, gentoo as _gentoo
from dockeroo.runtime import container as ctr
from dockeroo.base import tarstream
from dockeroo.base.redaction import add_secret
from dockeroo.base.fingerprint import folder_fingerprint, hash_values
from dockeroo.model.plan import action, fingerprint as spec_fingerprint, not_fingerprinted
from dockeroo.recipes.common.portage import PACKAGE_FILES, Builder, read_atoms, read_entries
from dockeroo.runtime.recipe import Recipe as Base
from dockeroo.model.options import os_errors, parse_path_line
from dockeroo.recipes.common.gentoo import DEFAULT_COMMAND, container_name, name_from

LABEL_PACKAGES = "io.dockeroo.packages"
#: the build and base image ids and the target an image was made from (for plan reasons)
LABEL_INPUTS = "io.dockeroo.inputs"
MANIFEST = "usr/share/dockeroo/packages"
#: the empty root (inside the target root) the packages are installed into
CLEAN_ROOT = "/dockeroo-root"
#: where freeze runs from while a script runs in the assemble container
RUN_FREEZE = "/.dockeroo-freeze"
_WORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PORT = re.compile(r"^\d{1,5}(?:-\d{1,5})?(?:/(?:tcp|udp|sctp))?$")
#: Docker architecture -> the name ``uname -m`` (and Gentoo's CHOST) uses
UNAME = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7a", "ppc64le": "powerpc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


#: options that need ``build-image``
BUILD_OPTIONS = ("build-layout", "build-env", "build-volumes-from", "build-dependencies",
                 "packages", "copy", "pre-build-script", "build-script",
                 "post-build-script") + tuple(PACKAGE_FILES)


@dataclasses.dataclass(frozen=True)
class Spec:
    image: str
    # the target (defaults follow the engine: see target())
    platform: Optional[str]
    arch: Optional[str]
    processor: Optional[str]
    variant: str
    abi: str
    # the builder
    build_image: Optional[str]
    build_command: Tuple[str, ...]
    build_layout_fp: Optional[str]
    build_env_fp: Optional[str]
    build_volumes_from: Tuple[str, ...]
    #: step -> (script, shell, user)
    scripts: Dict[str, tuple]
    package_entries: Dict[str, list]
    build_dependencies: Tuple[str, ...]
    packages: Tuple[str, ...]
    copy: Tuple[Tuple[str, str], ...]
    # the assemble container and the image
    base_image: Optional[str]
    archives_fp: Optional[str]
    volumes_from: Tuple[str, ...]
    layout_fp: Optional[str]
    layout_uid: int
    layout_gid: int
    script: Optional[str]
    script_shell: Tuple[str, ...]
    script_user: Optional[str]
    command: Optional[Tuple[str, ...]]
    user: Optional[str]
    user_labels: Dict[str, str]
    expose: Tuple[str, ...]
    volumes: Tuple[str, ...]
    tty: bool
    privileges: Dict[str, object]
    # the temporary containers' names do not define the image
    build_container: str = not_fingerprinted()
    assemble_container: str = not_fingerprinted()
    # fingerprinted through their *_fp fields (contents, identities, hashed secrets)
    build_layout: Optional[str] = not_fingerprinted()
    build_env: Dict[str, str] = not_fingerprinted(dataclasses.MISSING, default_factory=dict)
    archives: tuple = not_fingerprinted(())
    layout: Optional[str] = not_fingerprinted()
    machine_name: Optional[str] = not_fingerprinted()

    @property
    def fingerprint(self):
        """What the options and layouts make (without the images' ids and the target)."""
        return spec_fingerprint(self, "gentoo-build/2")

    def target(self, engine_arch):
        """(platform, arch, processor) with the engine's defaults applied."""
        platform = self.platform or engine_arch
        uname = UNAME.get(platform, platform)
        return platform, self.arch or uname, self.processor or uname

    def target_root(self, engine_arch):
        _platform, _arch, processor = self.target(engine_arch)
        return "/usr/%s-%s-linux-%s" % (processor, self.variant, self.abi)


def _word(opts, option):
    value = opts.text(option)
    if value is not None and not _WORD.match(value):
        raise opts.error(option, "must be a single name (letters, digits, _ . + -)", value)
    return value


def _layout(opts, option, directory, cache_dir):
    """(path, content fingerprint) of the layout folder OPTION names, or (None, None)."""
    path = opts.path(option, directory, must_exist=True, kind="dir")
    if not path:
        return None, None
    with os_errors(opts, option, "cannot read the layout", path):
        return path, folder_fingerprint(path, cache_dir=cache_dir)


def read(opts, name, directory, cache_dir=None):
    """The part's options -> Spec (every mistake a UserError)."""
    image = str(opts.reference("name", name, digest=False,
                               hint=" (name defaults to the part name)").normalized())
    base = name_from(image, "gentoo")
    values = dict(
        image=image,
        build_container=container_name(opts, "build-container", base + "_build"),
        assemble_container=container_name(opts, "assemble-container", base + "_assemble"),
        platform=binfmt.read_platform(opts, "platform"), arch=_word(opts, "arch"),
        processor=_word(opts, "processor"), variant=_word(opts, "variant") or "dockeroo",
        abi=_word(opts, "abi") or "gnu")
    values.update(_read_build(opts, directory, cache_dir))
    values.update(_read_assemble(opts, directory, cache_dir))
    return Spec(**values)


def _read_build(opts, directory, cache_dir):
    build_image = opts.image_ref("build-image") if opts.text("build-image") else None
    build_command = tuple(opts.argv("build-command", DEFAULT_COMMAND))
    opts.path("build-layout", directory, must_exist=True, kind="dir")  # its mistakes first
    build_env = opts.key_values("build-env")
    for key, value in build_env.items():
        if not _ENV_NAME.match(key):
            raise opts.error("build-env", "%r is not a variable name (letters, digits "
                             "and _, not starting with a digit)" % key, key)
        add_secret(value)  # never shown in messages or logs
    build_volumes_from = tuple(ctr.read_volumes_from(opts, "build-volumes-from"))
    scripts = {}
    for step in ("pre-build", "build", "post-build"):
        script = opts.script(step + "-script")
        if script is not None:
            scripts[step] = (script, tuple(opts.argv(step + "-script-shell", ["/bin/sh"])),
                             opts.word(step + "-script-user"))
    package_entries = {option: read_entries(opts, option) for option in PACKAGE_FILES}
    build_dependencies = tuple(read_atoms(opts, "build-dependencies"))
    packages = tuple(read_atoms(opts, "packages"))
    copy = tuple(tuple(parse_path_line(opts, line, "copy")) for line in opts.lines("copy"))
    if not build_image:
        needs = [o for o in BUILD_OPTIONS if opts.text(o)]
        if needs:
            raise opts.error(needs[0], "needs build-image (the Gentoo builder to run in)")
    build_layout, build_layout_fp = _layout(opts, "build-layout", directory, cache_dir)
    return dict(build_image=build_image, build_command=build_command,
                build_layout=build_layout, build_layout_fp=build_layout_fp,
                build_env=build_env,
                build_env_fp=hash_values("build-env", build_env) if build_env else None,
                build_volumes_from=build_volumes_from, scripts=scripts,
                package_entries=package_entries, build_dependencies=build_dependencies,
                packages=packages, copy=copy)


def _read_assemble(opts, directory, cache_dir):
    base_image = opts.image_ref("base-image") if opts.text("base-image") else None
    archives = tuple(archives_mod.parse_archives(opts, "archives", directory))
    if base_image and archives:
        raise opts.error("archives", "give either base-image or archives, not both")
    volumes_from = tuple(ctr.read_volumes_from(opts, "volumes-from"))
    opts.path("layout", directory, must_exist=True, kind="dir")  # its mistakes first
    layout_uid = opts.int("layout-uid", 0, minimum=0)
    values = dict(
        base_image=base_image, archives=archives, volumes_from=volumes_from,
        layout_uid=layout_uid, layout_gid=opts.int("layout-gid", layout_uid, minimum=0),
        script=opts.script("script"), script_shell=tuple(opts.argv("script-shell", ["/bin/sh"])),
        script_user=opts.word("script-user"), command=opts.argv("command"),
        user=opts.word("user"), user_labels=opts.user_labels("labels"))
    if values["command"] is not None:
        values["command"] = tuple(values["command"])
    expose = []
    for line in opts.lines("expose"):
        for port in line.split():
            if not _PORT.match(port):
                raise opts.error("expose", "ports are NUMBER[/tcp|/udp|/sctp] "
                                 "(or a range such as 8000-8010)", line)
            expose.append(port)
    volumes = []
    for line in opts.lines("volumes"):
        if not line.startswith("/"):
            raise opts.error("volumes", "each line must be an absolute path in the image", line)
        volumes.append(line)
    values.update(
        expose=tuple(expose), volumes=tuple(volumes), tty=opts.bool("tty", False),
        privileges=ctr.read_privileges(opts, True),
        machine_name=opts.text("machine-name") or os.environ.get("DOCKER_MACHINE_NAME"),
        archives_fp=hash_values([a.identity() for a in archives]) if archives else None)
    values["layout"], values["layout_fp"] = _layout(opts, "layout", directory, cache_dir)
    return values


# -- plan ---------------------------------------------------------------------------------
def inputs(spec, observed, engine_arch, part, where):
    """What the image is made from besides the Spec: the build and base image
    ids and the target (UserError for a missing image)."""
    found = {"target": list(spec.target(engine_arch))}
    for option, ref in (("build-image", spec.build_image), ("base-image", spec.base_image)):
        if ref:
            found[option] = _gentoo.image_id(part, observed, option, ref, where)
    return found


def image_fingerprint(spec, found):
    """The fingerprint label of the image SPEC makes from FOUND (see :func:`inputs`)."""
    return hash_values(spec.fingerprint, found.get("build-image"), found.get("base-image"),
                       found["target"])


def uses(spec):
    """The image's base image and its builder (the image the build runs in)."""
    return [(kind, ref, relation) for kind, ref, relation in (
        ("image", spec.base_image, "base image"), ("image", spec.build_image, "builder")) if ref]


def plan(part, spec, observed, context, options, owner, engine_arch, where):
    """[Action] for the image of SPEC: ENGINE_ARCH is the engine's architecture
    (the target's default), WHERE the engine's description (messages)."""
    image = _gentoo.ours(part, observed, owner, "image", spec.image, "name")
    verb, cascade = _gentoo.image_changes(
        context, [("build-image", spec.build_image), ("base-image", spec.base_image)])
    if verb:
        act = action(part, "image", spec.image, "create" if image is None else verb, *cascade)
    else:
        found = inputs(spec, observed, engine_arch, part, where)
        if image is None:
            act = _gentoo.missing(part, "image", spec.image, context, options, "name", DESCRIBE)
        elif _gentoo.label(image) == image_fingerprint(spec, found):
            return [action(part, "image", spec.image, "unchanged")]
        else:
            act = action(part, "image", spec.image, "recreate",
                         *_gentoo.changed(context, options, DESCRIBE)
                         or input_changes(spec, image, found)
                         or ["image %s was made from another configuration" % spec.image])
    context.will_change_image(spec.image, act)
    return [act] + _gentoo.retired(act, image, context)


#: what the recorded fingerprint options stand for, in plan reasons
DESCRIBE = {"layout-fingerprint": "layout content changed",
            "build-layout-fingerprint": "build-layout content changed",
            "archives-fingerprint": "archive content changed"}


def input_changes(spec, image, found):
    """Reasons naming the inputs (FOUND) that differ from those IMAGE was made from."""
    try:
        was = json.loads(_gentoo.label(image, LABEL_INPUTS) or "{}")
    except ValueError:
        return []
    refs = {"build-image": spec.build_image, "base-image": spec.base_image}
    return ["%s %s changed" % (key, refs[key]) if key in refs else "the target changed"
            for key in sorted(found) if was and was.get(key) != found[key]]


class Recipe(Base):
    recipe = "docker.gentoo-build"
    #: read only with their script
    known_options = tuple("%s-script-%s" % (step, what) for step in ("pre-build", "build",
                                                                    "post-build")
                          for what in ("shell", "user"))

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        # batched look-ups: the first plan of any part fetches them all
        for ref in (self.spec.image, self.spec.build_image, self.spec.base_image):
            if ref:
                self.engine.want("image", ref)

    def setup(self):
        spec = self.spec = read(self.opts, self.name, self.directory, self.cache_directory)
        self.options["image"] = spec.image
        self.options["build-container"] = spec.build_container
        self.options["assemble-container"] = spec.assemble_container
        for option, value in (("layout-fingerprint", spec.layout_fp),
                              ("build-layout-fingerprint", spec.build_layout_fp),
                              ("archives-fingerprint", spec.archives_fp)):
            if value:
                self.options[option] = value
        if spec.build_env:  # the values are secrets (the fingerprint covers them, hashed)
            self.options["build-env"] = "\n".join("%s=***" % key for key in spec.build_env)
        self.options["fingerprint"] = spec.fingerprint

    @classmethod
    def owned(cls, values):
        # the temporary containers first (left behind only if buildout was killed)
        return [("container", values["build-container"]),
                ("container", values["assemble-container"]), ("image", values["image"])]

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        return _gentoo.without_temporaries(super().plan_removal(observed, part, old_options, why))

    def uses(self):
        return uses(self.spec)

    def user(self):
        return ("image", self.spec.image)

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context, self.options, self.owner,
                    self.engine_arch(), self.engine.config.description)

    def engine_arch(self):
        return None if self.spec.platform else self.engine.architecture()

    # -- apply ----------------------------------------------------------------------------
    def apply(self, actions):
        if actions[0].changes:  # the image (the others: its predecessor's removal)
            self.build()
        return []

    def build(self):
        spec, engine = self.spec, self.engine
        old_image = engine.inspect("image", spec.image)
        found = inputs(spec, self.observed(), self.engine_arch(), self.part,
                       engine.config.description)
        binfmt.ensure_handler(self, "platform", spec.platform, spec.machine_name)
        for name in (spec.build_container, spec.assemble_container):
            self.clear_leftover(name, "options 'build-container' and 'assemble-container'")
        _platform, arch, _processor = spec.target(self.engine_arch())
        target_root = spec.target_root(self.engine_arch())

        base_id, base_config = self._assemble_base()
        entrypoint = base_config.get("Entrypoint") or None
        command = list(spec.command or ()) or base_config.get("Cmd") or None
        keep_freeze = not command and not entrypoint
        if keep_freeze:
            command = DEFAULT_COMMAND
        run_freeze = DEFAULT_COMMAND[0] if keep_freeze else RUN_FREEZE

        with contextlib.ExitStack() as stack:
            packages, build = [], None
            if spec.build_image:
                build = stack.enter_context(ctr.temporary_container(self, ctr.ContainerSpec(
                    name=spec.build_container, image=spec.build_image,
                    command=list(spec.build_command), tty=spec.tty,
                    volumes_from=list(spec.build_volumes_from), **spec.privileges)))
                packages = self._build(build, arch, target_root)

            # the assemble container: created from the base, started only for a script
            create = ctr.ContainerSpec(name=spec.assemble_container, image=base_id, tty=spec.tty,
                                       volumes_from=list(spec.volumes_from), **spec.privileges)
            if spec.script and entrypoint:
                create.entrypoint = [run_freeze]
            elif spec.script:
                create.command = [run_freeze]
            else:
                create.command = command
            box = stack.enter_context(ctr.temporary_container(self, create))
            if build is not None:
                self._copy_out(build, box, target_root)
            if packages:
                data = "".join(p + "\n" for p in packages).encode()
                engine.feed(["cp", "-", box.name + ":/"],
                            lambda out: tarstream.single_file(out, MANIFEST, data),
                            timeout=self.cmd_timeout())
            if spec.layout:
                box.layout(spec.layout, uid=spec.layout_uid, gid=spec.layout_gid)
            if keep_freeze or spec.script:
                box.freeze(run_freeze)
            if spec.script:
                self._script_in(box, run_freeze)
            changes = self._changes(command, entrypoint, packages, found)
            new_id = box.commit(spec.image, changes)
        if not spec.base_image:  # imported by this run
            ctr.drop_committed_base(engine, base_id, timeout=self.cmd_timeout())
        engine.forget("image", spec.image)
        self.log.info("Committed image %s%s", spec.image,
                      " with %s" % ", ".join(packages) if packages else "")
        if old_image is not None and old_image["Id"] != new_id:
            self.retire_image(old_image["Id"])

    def _copy_out(self, build, box, target_root):
        """The installed packages and the ``copy`` paths from BUILD into BOX; BUILD is removed."""
        spec = self.spec
        if spec.packages:
            self.log.info("Copying the installed packages into %s", box.name)
            self.engine.pipe(["cp", "%s:%s%s/." % (build.name, target_root, CLEAN_ROOT), "-"],
                             ["cp", "-", box.name + ":/"], timeout=self.cmd_timeout(long=True))
        if spec.copy:
            self.log.info("Copying %s", ", ".join(s for s, _ in spec.copy))
            ctr.copy_paths(self.engine, build.name, box.name, list(spec.copy),
                           timeout=self.cmd_timeout(long=True))
        build.remove(check=False)

    def _script_in(self, box, run_freeze):
        spec = self.spec
        box.start()
        box.exec(spec.script, shell=spec.script_shell, user=spec.script_user)
        if run_freeze == RUN_FREEZE:
            removed = self.run(["exec", "--user", "0", box.name, "rm", "-f", RUN_FREEZE],
                               check=False)
            if removed.returncode != 0:
                self.log.warning("Could not remove %s from the image (no rm?): %s",
                                 RUN_FREEZE, removed.stderr.strip())
        self.run(["stop", "--time", "10", box.name])

    def _changes(self, command, entrypoint, packages, found):
        """The ``--change`` lines of the commit."""
        spec = self.spec
        changes = []
        if command:
            changes.append("CMD " + json.dumps(command))
        if entrypoint:
            changes.append("ENTRYPOINT " + json.dumps(entrypoint))
        if spec.user:
            changes.append("USER " + spec.user)
        if spec.expose:
            changes.append("EXPOSE " + " ".join(spec.expose))
        if spec.volumes:
            changes.append("VOLUME " + json.dumps(list(spec.volumes)))
        labels = dict(spec.user_labels)
        labels.update(self.labels(image_fingerprint(spec, found)))
        labels[LABEL_INPUTS] = json.dumps(found, sort_keys=True, separators=(",", ":"))
        if packages:
            labels[LABEL_PACKAGES] = " ".join(packages)
        changes.append(ctr.label_change(labels))
        return changes

    # -- steps ------------------------------------------------------------------------------
    def _assemble_base(self):
        """(image id, its Config) of the assemble container's image."""
        spec = self.spec
        if spec.base_image:
            _gentoo.image_id(self.part, self.observed(), "base-image", spec.base_image,
                             self.engine.config.description)
            data = self.engine.inspect("image", spec.base_image)
            return data["Id"], data.get("Config") or {}
        label = ctr.label_change(self.image_labels())
        if spec.archives:
            image = archives_mod.import_archives(
                self.engine, spec.archives, self.opts, "archives", self.buildout["buildout"],
                changes=[label], labels=self.image_labels(), logger=self.log,
                timeout=self.cmd_timeout(long=True))
        else:
            image = self.engine.feed(["import", "--change", label, "-"],
                                     lambda out: tarstream.merge([], out),
                                     timeout=self.cmd_timeout()).stdout.strip()
        self.on_failure(lambda: self.remove_image_id(image))
        return image, {}

    def _build(self, build, arch, target_root):
        """Everything in the build container BUILD; returns the installed packages."""
        spec = self.spec
        if spec.build_command == tuple(DEFAULT_COMMAND):
            build.freeze(DEFAULT_COMMAND[0])
        build.start()
        if spec.build_layout:
            build.layout(spec.build_layout, uid=0, gid=0, option="build-layout")
        builder = Builder(self.engine, build.name, arch, target_root, log=self.log,
                          env=spec.build_env, timeout=self.cmd_timeout(long=True))
        if spec.packages or spec.build_dependencies or any(spec.package_entries.values()):
            missing = builder.check()
            if missing:
                raise UserError(
                    "Part [%s]: build-image %s is not a Gentoo builder for this target: %s "
                    "(a builder has the target root %s with its own etc/portage and the "
                    "chroot-%s-docker script; see the arch, processor, variant and abi options)"
                    % (self.part, spec.build_image, missing, target_root, arch))
        builder.write_package_files(spec.package_entries, "zz-dockeroo-" + self.part)
        if spec.packages or spec.build_dependencies:
            # the binary package index may list packages gone from a shared PKGDIR
            builder.run(["emaint", "binhost", "--fix"])
        self._script(build, "pre-build")
        if spec.build_dependencies:
            self.log.info("Emerging build dependencies %s", " ".join(spec.build_dependencies))
            builder.emerge(list(spec.build_dependencies), usepkg=True, buildpkg=True)
        self._script(build, "build")
        packages = self._emerge(builder, target_root) if spec.packages else []
        self._script(build, "post-build")
        return packages

    def _emerge(self, builder, target_root):
        """Emerge ``packages`` as binary packages, install them with their
        runtime dependencies into the empty root; returns what it holds."""
        wanted = list(self.spec.packages)
        self.log.info("Emerging %s", " ".join(wanted))
        builder.emerge(wanted, usepkg=True, buildpkg=True)
        atoms = [a for a in wanted if not a.startswith("@")]
        best = builder.best_versions(atoms)
        missing = [a for a in atoms if not best.get(a)]
        if missing:
            raise UserError("Part [%s]: %s not installed in the builder after emerge"
                            % (self.part, ", ".join(missing)))
        pinned = ["=" + best[a] for a in atoms] + [a for a in wanted if a.startswith("@")]
        builder.empty(target_root + CLEAN_ROOT)
        self.log.info("Installing %s and their runtime dependencies from binary packages",
                      " ".join(pinned))
        builder.emerge(pinned, usepkg=True, buildpkg=True, root=CLEAN_ROOT, rdeps_only=True)
        return builder.installed(CLEAN_ROOT)

    def _script(self, build, step):
        if step in self.spec.scripts:
            script, shell, user = self.spec.scripts[step]
            build.exec(script, shell=shell, user=user, env=self.spec.build_env,
                       what=step + "-script")


uninstall = Recipe.uninstaller()
