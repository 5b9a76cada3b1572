"""dockeroo:docker.gentoo-build: an image assembled from Gentoo binary packages.

Flow (one temporary build container from ``build-image``, one temporary
assemble container, both removed on success and on failure):

1. the assemble base: ``base-image``, else the ``archives`` imported, else
   an empty image;
2. in the build container (when ``build-image`` is set): ``build-layout``;
   ``use``/``mask``/``unmask``/``accept-keywords`` written as ``package.*``
   entries of the target root's ``etc/portage``; ``pre-build-script``;
   ``build-dependencies`` emerged into the target root only;
   ``build-script``; ``packages`` emerged as binary packages (``--buildpkg
   --binpkg-respect-use=y``) and installed from them, with their runtime
   dependencies, into the empty root ``/dockeroo-root`` of the target
   root; ``post-build-script``;
3. that root streams into the assemble container (``docker cp`` to
   ``docker cp``, no temporary files), then the ``copy`` paths;
4. ``layout`` (owners ``layout-uid``/``layout-gid``), ``script``;
5. commit as ``name`` with CMD, USER, LABEL, EXPOSE, VOLUME; the installed
   package versions go into the label ``io.dockeroo.packages`` and the file
   ``/usr/share/dockeroo/packages``.

The image carries a fingerprint of everything that defines it (options,
layout contents, the build and base image ids): ``update`` rebuilds only
when it differs.
"""

import json
import os
import re

from zc.buildout import UserError

from .. import archives as archives_mod
from .. import container as ctr
from .. import binfmt
from .. import tarstream
from ..engine import add_secret
from ..fingerprint import folder_fingerprint, hash_values
from ..portage import PACKAGE_FILES, Builder, read_atoms, read_entries
from ..recipe import LABEL_FINGERPRINT, Recipe as Base, os_errors
from .copy import parse_path_line

LABEL_PACKAGES = "io.dockeroo.packages"
MANIFEST = "usr/share/dockeroo/packages"
#: the empty root (inside the target root) the packages are installed into
CLEAN_ROOT = "/dockeroo-root"
DEFAULT_COMMAND = ["/bin/freeze"]
#: where freeze runs from while a script runs in the assemble container
RUN_FREEZE = "/.dockeroo-freeze"

_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_WORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PORT = re.compile(r"^\d{1,5}(?:-\d{1,5})?(?:/(?:tcp|udp|sctp))?$")
#: Docker architecture -> the name ``uname -m`` (and Gentoo's CHOST) uses
UNAME = {"amd64": "x86_64", "arm64": "aarch64", "arm": "armv7a", "ppc64le": "powerpc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def container_name(opts, option, default):
    value = opts.text(option, default=default)
    if not _CONTAINER_NAME.match(value):
        raise opts.error(option, "a container name may contain letters, digits, '_', '.' and "
                         "'-' and must start with a letter or digit", value)
    return value


def volumes_from(opts, option):
    values = opts.lines(option)
    for source in values:
        name, _, mode = source.partition(":")
        if not _CONTAINER_NAME.match(name) or mode not in ("", "ro", "rw"):
            raise opts.error(option, "each line must be CONTAINER[:ro|:rw]", source)
    return values


class Recipe(Base):
    recipe = "docker.gentoo-build"

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        # batched look-ups: the first ensure() of any part fetches them all
        for ref in (self.image, self.build_image, self.base_image):
            if ref:
                self.engine.want("image", ref)

    def setup(self):
        opts = self.opts
        self.image = str(opts.reference("name", self.name, digest=False,
                                        hint=" (name defaults to the part name)").normalized())
        self.options["image"] = self.image
        base = re.sub(r"[^a-zA-Z0-9_.-]", "_", self.image).lstrip("_.-") or "gentoo"
        self.build_container = container_name(opts, "build-container", base + "_build")
        self.assemble_container = container_name(opts, "assemble-container", base + "_assemble")
        self.options["build-container"] = self.build_container
        self.options["assemble-container"] = self.assemble_container

        # the target (defaults follow the engine: resolved in ensure())
        self.platform = binfmt.read_platform(opts, "platform")
        self.arch = self._word("arch")
        self.processor = self._word("processor")
        self.variant = self._word("variant") or "dockeroo"
        self.abi = self._word("abi") or "gnu"

        # the builder
        self.build_image = opts.image_ref("build-image") if opts.text("build-image") else None
        self.build_command = opts.argv("build-command", DEFAULT_COMMAND)
        self.build_layout = self.path_option("build-layout", must_exist=True, kind="dir")
        self.build_env = opts.key_values("build-env")
        for key, value in self.build_env.items():
            if not _ENV_NAME.match(key):
                raise opts.error("build-env", "%r is not a variable name (letters, digits "
                                 "and _, not starting with a digit)" % key, key)
            add_secret(value)  # never shown in messages or logs
        if self.build_env:  # nor in .installed.cfg (the fingerprint covers the values)
            self.options["build-env"] = "\n".join("%s=***" % key for key in self.build_env)
        self.build_volumes_from = volumes_from(opts, "build-volumes-from")
        self.scripts = {}
        for step in ("pre-build", "build", "post-build"):
            script = opts.script(step + "-script")
            if script is not None:
                self.scripts[step] = (script, opts.argv(step + "-script-shell", ["/bin/sh"]),
                                      opts.word(step + "-script-user"))
        self.package_entries = {option: read_entries(opts, option) for option in PACKAGE_FILES}
        self.build_dependencies = read_atoms(opts, "build-dependencies")
        self.packages = read_atoms(opts, "packages")
        self.copy = self._copy_lines()
        if not self.build_image:
            needs = [o for o in ["build-layout", "build-env", "build-volumes-from",
                                 "build-dependencies", "packages", "copy",
                                 "pre-build-script", "build-script", "post-build-script"]
                     + list(PACKAGE_FILES) if opts.text(o)]
            if needs:
                raise opts.error(needs[0], "needs build-image (the Gentoo builder to run in)")

        # the assemble container and the image
        self.base_image = opts.image_ref("base-image") if opts.text("base-image") else None
        self.archives = archives_mod.parse_archives(opts, "archives", self.directory)
        if self.base_image and self.archives:
            raise opts.error("archives", "give either base-image or archives, not both")
        self.volumes_from = volumes_from(opts, "volumes-from")
        self.layout = self.path_option("layout", must_exist=True, kind="dir")
        self.layout_uid = opts.int("layout-uid", 0, minimum=0)
        self.layout_gid = opts.int("layout-gid", self.layout_uid, minimum=0)
        self.script = opts.script("script")
        self.script_shell = opts.argv("script-shell", ["/bin/sh"])
        self.script_user = opts.word("script-user")
        self.command = opts.argv("command")
        self.user = opts.word("user")
        self.user_labels = opts.key_values("labels")
        for key in self.user_labels:
            if key.startswith("io.dockeroo."):
                raise opts.error("labels", "io.dockeroo.* labels are set by dockeroo itself", key)
        self.expose = []
        for line in opts.lines("expose"):
            for port in line.split():
                if not _PORT.match(port):
                    raise opts.error("expose", "ports are NUMBER[/tcp|/udp|/sctp] "
                                     "(or a range such as 8000-8010)", line)
                self.expose.append(port)
        self.volumes = []
        for line in opts.lines("volumes"):
            if not line.startswith("/"):
                raise opts.error("volumes", "each line must be an absolute path in the image", line)
            self.volumes.append(line)
        self.tty = opts.bool("tty", False)
        self.privileges = ctr.read_privileges(opts, True)
        self.machine_name = opts.text("machine-name") or os.environ.get("DOCKER_MACHINE_NAME")

        with os_errors(opts, "layout", "cannot read the layout", self.layout):
            layout_fp = (folder_fingerprint(self.layout, cache_dir=self.cache_directory)
                         if self.layout else None)
        with os_errors(opts, "build-layout", "cannot read the layout", self.build_layout):
            build_layout_fp = (folder_fingerprint(self.build_layout,
                                                  cache_dir=self.cache_directory)
                               if self.build_layout else None)
        self.fingerprint = hash_values(
            "gentoo-build/1", self.image, self.platform, self.arch, self.processor, self.variant,
            self.abi, self.build_image, self.build_command, build_layout_fp, self.build_env,
            self.build_volumes_from, self.scripts, self.package_entries,
            self.build_dependencies, self.packages, self.copy, self.base_image,
            [a.identity() for a in self.archives], self.volumes_from, layout_fp,
            self.layout_uid, self.layout_gid, self.script, self.script_shell, self.script_user,
            self.command, self.user, self.user_labels, self.expose, self.volumes, self.tty,
            self.privileges)
        self.options["fingerprint"] = self.fingerprint

    def _word(self, option):
        value = self.opts.text(option)
        if value is not None and not _WORD.match(value):
            raise self.opts.error(option, "must be a single name (letters, digits, _ . + -)",
                                  value)
        return value

    def _copy_lines(self):
        """``copy`` lines, as docker.copy's ``paths`` (shell quoting, renames)."""
        return [parse_path_line(self.opts, line, "copy") for line in self.opts.lines("copy")]

    @classmethod
    def owned(cls, values):
        # the temporary containers first (left behind only if buildout was killed)
        return [("container", values["build-container"]),
                ("container", values["assemble-container"]), ("image", values["image"])]

    # -- install / update --------------------------------------------------------------
    def ensure(self):
        image = self.engine.inspect("image", self.image)
        if image is not None and not self.is_ours(image):
            raise UserError("Part [%s]: image %s exists and was not made by this part; remove "
                            "it or choose another name (option 'name')" % (self.part, self.image))
        fingerprint = self.full_fingerprint()
        labels = (image or {}).get("Config", {}).get("Labels") or {}
        if image is not None and labels.get(LABEL_FINGERPRINT) == fingerprint:
            return []
        self.build(image, fingerprint)
        return []

    def _image(self, option, ref):
        data = self.engine.inspect("image", ref)
        if data is None:
            raise UserError("Part [%s], option %r = %r: no such image on %s"
                            % (self.part, option, ref, self.engine.config.description))
        return data

    def target(self):
        """(platform, arch, processor) with the engine's defaults applied."""
        platform = self.platform or self.engine.architecture()
        uname = UNAME.get(platform, platform)
        return platform, self.arch or uname, self.processor or uname

    def full_fingerprint(self):
        build_id = self._image("build-image", self.build_image)["Id"] if self.build_image else None
        base_id = self._image("base-image", self.base_image)["Id"] if self.base_image else None
        return hash_values(self.fingerprint, build_id, base_id, self.target())

    def build(self, old_image, fingerprint):
        engine = self.engine
        self.prepare_platform()
        for name in (self.build_container, self.assemble_container):
            self.clear_leftover(name, "options 'build-container' and 'assemble-container'")
        platform, arch, processor = self.target()
        target_root = "/usr/%s-%s-linux-%s" % (processor, self.variant, self.abi)

        base_id, base_config = self._assemble_base()
        entrypoint = base_config.get("Entrypoint") or None
        command = self.command or base_config.get("Cmd") or None
        keep_freeze = not command and not entrypoint
        if keep_freeze:
            command = DEFAULT_COMMAND

        packages = []
        if self.build_image:
            packages = self._build(arch, target_root)

        # the assemble container: created from the base, started only for a script
        spec = ctr.ContainerSpec(name=self.assemble_container, image=base_id, tty=self.tty,
                                 labels=self.temporary(self.assemble_container),
                                 volumes_from=self.volumes_from, **self.privileges)
        run_freeze = DEFAULT_COMMAND[0] if keep_freeze else RUN_FREEZE
        if self.script and entrypoint:
            spec.entrypoint = [run_freeze]
        elif self.script:
            spec.command = [run_freeze]
        else:
            spec.command = command
        self.run(spec.create_args())

        if self.build_image:
            if self.packages:
                self.log.info("Copying the installed packages into %s", self.assemble_container)
                engine.pipe(["cp", "%s:%s%s/." % (self.build_container, target_root, CLEAN_ROOT),
                             "-"], ["cp", "-", self.assemble_container + ":/"],
                            timeout=self.cmd_timeout(long=True))
            if self.copy:
                self.log.info("Copying %s", ", ".join(s for s, _ in self.copy))
                ctr.copy_paths(engine, self.build_container, self.assemble_container, self.copy,
                               timeout=self.cmd_timeout(long=True))
            self.remove_container(self.build_container)
        if packages:
            data = "".join(p + "\n" for p in packages).encode()
            engine.feed(["cp", "-", self.assemble_container + ":/"],
                        lambda out: tarstream.single_file(out, MANIFEST, data),
                        timeout=self.cmd_timeout())
        if self.layout:
            with os_errors(self.opts, "layout", "cannot read the layout", self.layout):
                ctr.load_layout(engine, self.assemble_container, self.layout,
                                uid=self.layout_uid, gid=self.layout_gid,
                                timeout=self.cmd_timeout(long=True))
            self.log.info("Copied layout %s", self.layout)
        if keep_freeze or self.script:
            self.install_freeze(self.assemble_container, run_freeze)
        if self.script:
            self.run(["start", self.assemble_container])
            self.log.info("Running script in %s", self.assemble_container)
            ctr.exec_script(engine, self.assemble_container, self.script,
                            shell=self.script_shell, user=self.script_user, log=self.log,
                            timeout=self.cmd_timeout(long=True))
            if run_freeze == RUN_FREEZE:
                removed = self.run(["exec", "--user", "0", self.assemble_container,
                                    "rm", "-f", RUN_FREEZE], check=False)
                if removed.returncode != 0:
                    self.log.warning("Could not remove %s from the image (no rm?): %s",
                                     RUN_FREEZE, removed.stderr.strip())
            self.run(["stop", "--time", "10", self.assemble_container])

        changes = []
        if command:
            changes.append("CMD " + json.dumps(command))
        if entrypoint:
            changes.append("ENTRYPOINT " + json.dumps(entrypoint))
        if self.user:
            changes.append("USER " + self.user)
        if self.expose:
            changes.append("EXPOSE " + " ".join(self.expose))
        if self.volumes:
            changes.append("VOLUME " + json.dumps(self.volumes))
        labels = dict(self.user_labels)
        labels.update(self.labels(fingerprint))
        if packages:
            labels[LABEL_PACKAGES] = " ".join(packages)
        changes.append(ctr.label_change(labels))
        new_id = ctr.commit(engine, self.assemble_container, self.image, changes=changes,
                            timeout=self.cmd_timeout(long=True))
        self.remove_container(self.assemble_container)
        engine.forget("image", self.image)
        self.log.info("Committed image %s%s", self.image,
                      " with %s" % ", ".join(packages) if packages else "")
        if old_image is not None and old_image["Id"] != new_id:
            self.retire_image(old_image["Id"])

    # -- steps ------------------------------------------------------------------------------
    def _assemble_base(self):
        """(image id, its Config) of the assemble container's image."""
        if self.base_image:
            data = self._image("base-image", self.base_image)
            return data["Id"], data.get("Config") or {}
        label = ctr.label_change(self.image_labels())
        if self.archives:
            image = archives_mod.import_archives(
                self.engine, self.archives, self.opts, "archives", self.buildout["buildout"],
                changes=[label], labels=self.image_labels(), logger=self.log,
                timeout=self.cmd_timeout(long=True))
        else:
            image = self.engine.feed(["import", "--change", label, "-"],
                                     lambda out: tarstream.merge([], out),
                                     timeout=self.cmd_timeout()).stdout.strip()
        self.on_failure(lambda: self.remove_image_id(image))
        return image, {}

    def _build(self, arch, target_root):
        """Everything in the build container; returns the installed packages."""
        engine = self.engine
        timeout = self.cmd_timeout(long=True)
        spec = ctr.ContainerSpec(name=self.build_container, image=self.build_image,
                                 command=self.build_command, tty=self.tty,
                                 labels=self.temporary(self.build_container),
                                 volumes_from=self.build_volumes_from, **self.privileges)
        self.run(spec.create_args())
        if self.build_command == DEFAULT_COMMAND:
            self.install_freeze(self.build_container, DEFAULT_COMMAND[0])
        self.run(["start", self.build_container])
        if self.build_layout:
            with os_errors(self.opts, "build-layout", "cannot read the layout",
                           self.build_layout):
                ctr.load_layout(engine, self.build_container, self.build_layout, uid=0, gid=0,
                                timeout=timeout)
            self.log.info("Copied build-layout %s", self.build_layout)

        builder = Builder(engine, self.build_container, arch, target_root, log=self.log,
                          env=self.build_env, timeout=timeout)
        needs_portage = (self.packages or self.build_dependencies
                         or any(self.package_entries.values()))
        if needs_portage:
            missing = builder.check()
            if missing:
                raise UserError(
                    "Part [%s]: build-image %s is not a Gentoo builder for this target: %s "
                    "(a builder has the target root %s with its own etc/portage and the "
                    "chroot-%s-docker script; see the arch, processor, variant and abi options)"
                    % (self.part, self.build_image, missing, target_root, arch))
        builder.write_package_files(self.package_entries, "zz-dockeroo-" + self.part)
        if self.packages or self.build_dependencies:
            # the binary package index may list packages gone from a shared PKGDIR
            builder.run(["emaint", "binhost", "--fix"])
        self._script("pre-build")
        if self.build_dependencies:
            self.log.info("Emerging build dependencies %s", " ".join(self.build_dependencies))
            builder.emerge(self.build_dependencies, usepkg=True, buildpkg=True)
        self._script("build")
        packages = []
        if self.packages:
            self.log.info("Emerging %s", " ".join(self.packages))
            builder.emerge(self.packages, usepkg=True, buildpkg=True)
            atoms = [a for a in self.packages if not a.startswith("@")]
            best = builder.best_versions(atoms)
            missing = [a for a in atoms if not best.get(a)]
            if missing:
                raise UserError("Part [%s]: %s not installed in the builder after emerge"
                                % (self.part, ", ".join(missing)))
            pinned = (["=" + best[a] for a in atoms]
                      + [a for a in self.packages if a.startswith("@")])
            builder.empty(target_root + CLEAN_ROOT)
            self.log.info("Installing %s and their runtime dependencies from binary packages",
                          " ".join(pinned))
            builder.emerge(pinned, usepkg=True, buildpkg=True, root=CLEAN_ROOT,
                           rdeps_only=True)
            packages = builder.installed(CLEAN_ROOT)
        self._script("post-build")
        return packages

    def _script(self, step):
        if step not in self.scripts:
            return
        script, shell, user = self.scripts[step]
        self.log.info("Running %s-script in %s", step, self.build_container)
        ctr.exec_script(self.engine, self.build_container, script, shell=shell, user=user,
                        log=self.log, timeout=self.cmd_timeout(long=True), env=self.build_env)

    def prepare_platform(self):
        """Make sure the engine's host runs ``platform`` binaries (QEMU binfmt)."""
        binfmt.ensure_handler(self, "platform", self.platform, self.machine_name)


uninstall = Recipe.uninstaller()
