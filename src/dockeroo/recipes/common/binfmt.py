"""QEMU binfmt handlers: running foreign-architecture programs in containers.

Used by the Gentoo recipes when ``crossdev-platform`` / ``platform`` differs
from the engine's architecture.  With a docker-machine named, the handler
is registered on the machine's host through ``docker-machine ssh``;
otherwise a local engine whose host already has the handler enabled is
accepted, and anything else is an error saying what is needed.
"""

import os

from dockeroo.engine import machine
from dockeroo.engine.errors import DockerError

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


def read_platform(opts, option):
    """OPTION's platform (``aarch64``, ``linux/arm64``, ...) as Docker names it, or None."""
    value = opts.text(option)
    if not value:
        return None
    key = value.lower()
    if key.startswith("linux/"):
        key = key.split("/", 2)[1]
    if key not in PLATFORMS:
        raise opts.error(option, "unknown platform; use one of %s"
                         % ", ".join(sorted(set(PLATFORMS))), value)
    return PLATFORMS[key]


def ensure_handler(recipe, option, platform, machine_name):
    """Make sure RECIPE's engine host runs PLATFORM programs; errors name OPTION."""
    if not platform:
        return
    native = recipe.engine.architecture()
    if platform == native:
        return
    what = "%s %s differs from the engine's architecture %s" % (option, platform, native)
    if platform not in BINFMT:
        raise recipe.opts.error(option, "%s and dockeroo cannot register a QEMU handler for it "
                                "(known: %s)" % (what, ", ".join(sorted(BINFMT))), platform)
    qemu, magic, mask = BINFMT[platform]
    handler = "qemu-" + qemu
    if machine_name:
        recipe.log.info("%s: registering the QEMU binfmt handler %s on machine %s",
                        what, handler, machine_name)
        try:
            result = machine.ssh(machine_name,
                                 ["sh", "-c", AS_ROOT, "binfmt", REGISTER_SCRIPT, "binfmt",
                                  handler, "qemu-%s-static" % qemu, magic, mask],
                                 timeout=recipe.cmd_timeout())
        except DockerError as exc:
            raise recipe.opts.error(
                option, "%s; registering the QEMU binfmt handler through 'docker-machine ssh %s' "
                "failed: %s" % (what, machine_name, exc.stderr or exc), platform)
        for line in result.stdout.splitlines():
            if line.strip():
                recipe.log.info("%s", line.strip())
        return
    if local_engine(recipe.engine) and handler_enabled(handler):
        recipe.log.info("%s: using the registered binfmt handler %s", what, handler)
        return
    raise recipe.opts.error(
        option,
        "%s, and running %s programs needs a QEMU binfmt handler (%s) on the engine's host. "
        "Set machine-name (or DOCKER_MACHINE_NAME) so that dockeroo registers it through "
        "'docker-machine ssh', or register it on the host (e.g. install qemu-user-static "
        "with binfmt-support) and run again" % (what, platform, handler), platform)


def local_engine(engine):
    """Whether ENGINE runs on this host (a unix socket), where /proc/sys/fs/binfmt_misc is its."""
    host = dict(engine.config.env).get("DOCKER_HOST")
    if host is None and "DOCKER_HOST" not in engine.config.unset:
        host = os.environ.get("DOCKER_HOST")
    return not host or host.startswith("unix://")


def handler_enabled(handler):
    try:
        with open(os.path.join(BINFMT_DIR, handler)) as handle:
            return handle.readline().strip() == "enabled"
    except OSError:
        return False
