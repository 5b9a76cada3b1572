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
import uuid

from zc.buildout import UserError

from .. import archives as archives_mod
from .. import container as ctr
from .. import freeze
from .. import machine
from ..engine import DockerError, normalize_image_ref
from ..fingerprint import folder_fingerprint, hash_values
from ..recipe import LABEL_FINGERPRINT, Recipe as Base

#: how crossdev-platform may be spelled -> Docker's architecture name
PLATFORMS = {
    "amd64": "amd64", "x86_64": "amd64", "x86-64": "amd64",
    "arm64": "arm64", "aarch64": "arm64",
    "arm": "arm", "armv7": "arm", "armv7l": "arm", "armhf": "arm",
    "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

_ELF_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
#: Docker architecture -> (QEMU name, binfmt magic, binfmt mask), as QEMU's
#: scripts/qemu-binfmt-conf.sh and Debian's qemu-user-static register them
BINFMT = {
    "amd64": ("x86_64", r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                        r"\x02\x00\x3e\x00",
              r"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"),
    "arm64": ("aarch64", r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                         r"\x02\x00\xb7\x00", _ELF_MASK),
    "arm": ("arm", r"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                   r"\x02\x00\x28\x00", _ELF_MASK),
    "ppc64le": ("ppc64le", r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                           r"\x02\x00\x15\x00",
                r"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00"),
    "s390x": ("s390x", r"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                       r"\x00\x02\x00\x16",
              r"\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff"),
    "riscv64": ("riscv64", r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                           r"\x02\x00\xf3\x00", _ELF_MASK),
}

BINFMT_DIR = "/proc/sys/fs/binfmt_misc"

#: run as root on the machine's host: mount binfmt_misc, register the
#: handler with the F flag (the interpreter is opened now, so it works in
#: containers) unless one is registered already.  $1 = handler name,
#: $2 = interpreter command, $3 = magic, $4 = mask.
REGISTER_SCRIPT = r"""set -e
dir=/proc/sys/fs/binfmt_misc
if [ ! -e "$dir/register" ]; then mount -t binfmt_misc binfmt_misc "$dir"; fi
if [ -e "$dir/$1" ]; then
    if ! head -n 1 "$dir/$1" | grep -qx enabled; then echo 1 > "$dir/$1"; fi
    echo "binfmt handler $1 is registered"
    exit 0
fi
interpreter=$(command -v "$2" || true)
if [ -z "$interpreter" ]; then
    echo "$2 is not installed on this host: install QEMU's static user emulators (e.g. the qemu-user-static package)" >&2
    exit 3
fi
printf '%s' ":$1:M::$3:$4:$interpreter:F" > "$dir/register"
echo "binfmt handler $1 registered: $interpreter"
"""

#: become root where needed ($1 = the script above, then its arguments)
AS_ROOT = 'if [ "$(id -u)" = 0 ]; then exec sh -c "$@"; else exec sudo -n sh -c "$@"; fi'

_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class Recipe(Base):
    recipe = "docker.gentoo-bootstrap"
    name_aliases = ("image",)

    def setup(self):
        opts = self.opts
        image = opts.image_ref("image", self.name, digest=False,
                               hint=" (image defaults to the part name; set image)")
        self.image = normalize_image_ref(image)
        default_container = re.sub(r"[^a-zA-Z0-9_.-]", "_", self.part).lstrip("_.-") + "_bootstrap"
        self.container = opts.text("container", default=default_container)
        if not _CONTAINER_NAME.match(self.container):
            raise opts.error("container", "a container name may contain letters, digits, "
                             "'_', '.' and '-' and must start with a letter or digit",
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
        self.platform = self._platform(opts.text("crossdev-platform"))
        self.machine_name = opts.text("machine-name") or os.environ.get("DOCKER_MACHINE_NAME")
        self.tty = opts.bool("tty", False)
        self.volumes = ctr.read_volumes(opts, "volumes", base=self.directory)
        self.volumes_from = opts.lines("volumes-from")
        for source in self.volumes_from:
            name, _, mode = source.partition(":")
            if not _CONTAINER_NAME.match(name) or mode not in ("", "ro", "rw"):
                raise opts.error("volumes-from", "each line must be CONTAINER[:ro|:rw]", source)
        self.privileges = ctr.read_privileges(opts, True)

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

    def _platform(self, value):
        if not value:
            return None
        key = value.strip().lower()
        if key.startswith("linux/"):
            key = key.split("/", 2)[1]
        if key not in PLATFORMS:
            raise self.opts.error("crossdev-platform", "unknown platform; use one of %s"
                                  % ", ".join(sorted(set(PLATFORMS))), value)
        return PLATFORMS[key]

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
        short = self.cmd_timeout()

        # 1. archives -> image (reused when only the container's inputs changed)
        if (not self.commit and old_image is not None
                and _fingerprint(old_image) == self.archives_fp):
            base = old_image["Id"]
        else:
            base = archives_mod.import_archives(
                engine, self.archives, self.opts, "archives", self.buildout["buildout"],
                changes=[ctr.label_change(self.labels(self.archives_fp))],
                labels=self.labels(), logger=self.log, timeout=timeout)
            self.on_failure(lambda: self._remove_image(base, warn=False))
            self.log.info("Imported %d archive(s) as image %s", len(self.archives), base[7:19])

        # 2. a container (under a temporary name until it is complete)
        temp = "%s-new-%s" % (self.container, uuid.uuid4().hex[:8])
        spec = ctr.ContainerSpec(
            name=temp, image=base, command=self.command, tty=self.tty,
            labels=self.labels(self.fingerprint), volumes=self.volumes,
            volumes_from=self.volumes_from, **self.privileges)
        self.run(spec.create_args())
        self.on_failure(lambda: self.run(["rm", "--force", "--volumes", temp]))

        # 3. freeze, for the engine's architecture (it runs natively)
        try:
            freeze.install(engine, temp, arch=engine.architecture(), timeout=short)
        except freeze.FreezeUnavailable as exc:
            raise UserError("Part [%s]: %s" % (self.part, exc))

        # 4. layout
        if self.layout:
            ctr.load_layout(engine, temp, self.layout, uid=0, gid=0, timeout=timeout)
            self.log.info("Copied layout %s", self.layout)

        self.prepare_platform()
        self.run(["start", temp])

        # 5. script
        if self.script:
            self.log.info("Running script in %s", temp)
            ctr.exec_script(engine, temp, self.script, shell=self.script_shell,
                            user=self.script_user, log=self.log, timeout=timeout)

        # 6. commit, or keep the container
        if self.commit:
            new_id = ctr.commit(engine, temp, self.image,
                                changes=[ctr.label_change({LABEL_FINGERPRINT: self.fingerprint})],
                                timeout=timeout)
            self.run(["rm", "--force", "--volumes", temp])
            self.log.info("Committed image %s", self.image)
            if old_container is not None:
                self.run(["rm", "--force", "--volumes", self.container])
        else:
            new_id = base
            self.run(["tag", base, self.image])
            if old_container is not None:
                self.run(["rm", "--force", "--volumes", self.container])
            self.run(["rename", temp, self.container])
            self.log.info("Container %s is running from image %s", self.container, self.image)
        engine.forget("container", self.container)
        engine.forget("image", self.image)
        if old_image is not None and old_image["Id"] != new_id:
            self._remove_image(old_image["Id"])

    def _remove_image(self, image_id, warn=True):
        """Remove an image this part made, by id.

        With WARN, an image still in use (e.g. by another part's container)
        is left with a warning; otherwise the error is raised.
        """
        try:
            self.run(["image", "rm", image_id])
        except DockerError as exc:
            if "no such image" in exc.stderr.lower():
                return
            if not warn:
                raise
            self.log.warning("Could not remove the previous image %s: %s", image_id[7:19],
                             exc.stderr)
        self.engine.forget("image", image_id)

    # -- foreign architectures ------------------------------------------------------------
    def prepare_platform(self):
        """Make sure the engine's host can run ``crossdev-platform`` binaries."""
        if not self.platform:
            return
        native = self.engine.architecture()
        if self.platform == native:
            return
        what = "crossdev-platform %s differs from the engine's architecture %s" % (
            self.platform, native)
        if self.platform not in BINFMT:
            raise self.opts.error("crossdev-platform", "%s and dockeroo cannot register a QEMU "
                                  "handler for it (known: %s)" % (what, ", ".join(sorted(BINFMT))),
                                  self.platform)
        qemu, magic, mask = BINFMT[self.platform]
        handler = "qemu-" + qemu
        if self.machine_name:
            self.log.info("%s: registering the QEMU binfmt handler %s on machine %s",
                          what, handler, self.machine_name)
            try:
                result = machine.ssh(self.machine_name,
                                     ["sh", "-c", AS_ROOT, "binfmt", REGISTER_SCRIPT, "binfmt",
                                      handler, "qemu-%s-static" % qemu, magic, mask],
                                     timeout=self.cmd_timeout())
            except DockerError as exc:
                raise self.opts.error(
                    "crossdev-platform", "%s; registering the QEMU binfmt handler through "
                    "'docker-machine ssh %s' failed: %s" % (what, self.machine_name,
                                                            exc.stderr or exc), self.platform)
            for line in result.stdout.splitlines():
                if line.strip():
                    self.log.info("%s", line.strip())
            return
        if _local_engine(self.engine) and _handler_enabled(handler):
            self.log.info("%s: using the registered binfmt handler %s", what, handler)
            return
        raise self.opts.error(
            "crossdev-platform",
            "%s, and running %s programs needs a QEMU binfmt handler (%s) on the engine's host. "
            "Set machine-name (or DOCKER_MACHINE_NAME) so that dockeroo registers it through "
            "'docker-machine ssh', or register it on the host (e.g. install qemu-user-static "
            "with binfmt-support) and run again" % (what, self.platform, handler), self.platform)


def _fingerprint(obj):
    labels = (obj.get("Config") or {}).get("Labels") or {}
    return labels.get(LABEL_FINGERPRINT)


def _local_engine(engine):
    host = dict(engine.config.env).get("DOCKER_HOST")
    if host is None and "DOCKER_HOST" not in engine.config.unset:
        host = os.environ.get("DOCKER_HOST")
    return not host or host.startswith("unix://")


def _handler_enabled(handler):
    try:
        with open(os.path.join(BINFMT_DIR, handler)) as handle:
            return handle.readline().strip() == "enabled"
    except OSError:
        return False


uninstall = Recipe.uninstaller()
