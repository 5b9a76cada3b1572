"""freeze: the tiny no-op init dockeroo runs in containers while recipes work.

``freeze-<arch>`` (built from ``freeze.c`` by ``build.sh`` next to this file
and shipped as package data) waits until SIGTERM, SIGINT, SIGQUIT or SIGHUP
and then exits 0 at once; it reaps children meanwhile.

:func:`binary_path` picks the binary for an architecture (as Docker or
``uname -m`` names it); :func:`install` streams it into a container.
"""

import os
import posixpath

from dockeroo.base import tarstream
from dockeroo.engine.process import DEFAULT_TIMEOUT

HERE = os.path.dirname(os.path.abspath(__file__))

#: Docker / uname / Go names -> the name the binary is built for
ARCH_ALIASES = {
    "x86_64": "x86_64", "amd64": "x86_64", "x86-64": "x86_64",
    "aarch64": "aarch64", "arm64": "aarch64", "arm64v8": "aarch64",
}

DEFAULT_PATH = "/bin/freeze"


class FreezeUnavailable(ValueError):
    """No freeze binary fits the requested architecture."""


def available():
    """The architectures a binary is shipped for (sorted)."""
    try:
        names = os.listdir(HERE)
    except OSError:
        return []
    return sorted(n[len("freeze-"):] for n in names
                  if n.startswith("freeze-") and not n.endswith((".c", ".tmp"))
                  and os.path.isfile(os.path.join(HERE, n)))


def canonical_arch(arch):
    """``amd64``/``x86_64`` -> ``x86_64``; ``arm64``/``aarch64`` -> ``aarch64``."""
    key = (arch or "").strip().lower()
    if key.startswith("linux/"):  # a platform such as linux/arm64
        key = key.split("/")[1]
    return ARCH_ALIASES.get(key, key)


def binary_path(arch):
    """Path of the freeze binary for ARCH; :class:`FreezeUnavailable` if none."""
    name = canonical_arch(arch)
    path = os.path.join(HERE, "freeze-" + name) if name else ""
    if not name or "/" in name or not os.path.isfile(path):
        have = available()
        raise FreezeUnavailable(
            "no freeze binary for architecture %r; shipped: %s (build one with "
            "src/dockeroo/runtime/freeze/build.sh after adding its system calls to freeze.c)"
            % (arch, ", ".join(have) or "none"))
    return path


def install(engine, container, arch=None, path=DEFAULT_PATH, timeout=DEFAULT_TIMEOUT):
    """Stream the freeze binary into CONTAINER (created, maybe not running) at PATH.

    Mode 0755, owner 0:0; missing parent directories are created by
    ``docker cp``.  ARCH defaults to the engine's architecture.  Returns PATH.
    """
    if not path.startswith("/") or path.endswith("/"):
        raise ValueError("freeze path must be an absolute file path, not %r" % path)
    source = binary_path(arch or engine.architecture())
    with open(source, "rb") as handle:
        data = handle.read()
    member = posixpath.normpath(path).lstrip("/")
    engine.feed(["cp", "-", container + ":/"],
                lambda out: tarstream.single_file(out, member, data, mode=0o755, uid=0, gid=0),
                timeout=timeout)
    return path
