"""Small JSON state files, written atomically (temporary file, fsync, rename),
and the random key files of a buildout."""

import json
import os
import secrets
import tempfile
from contextlib import suppress

from dockeroo.base import mode


def store_json(path, key, value):
    """Set KEY in the JSON object file PATH (atomically; errors ignored: it is a cache)."""
    data = read_json(path, {})
    data[key] = value
    with suppress(OSError):
        atomic_json(path, data)


def atomic_json(path, data, sync=False, **dump):
    """Write DATA as JSON (``json.dump`` keywords DUMP) to PATH atomically:
    into a temporary file of its own in the same directory (concurrent
    writers do not mix), fsync'ed first with SYNC, then renamed over PATH.
    The directory is created; an error leaves PATH as it was and raises."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, **dump)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def key_file(path, create=True):
    """The random key in the file PATH (bytes, as stored), created on first
    use (mode 0600, 32 random bytes as hex); None when there is none yet and
    not CREATE.  Concurrent first uses agree: the first writer wins."""
    try:
        with open(path, "rb") as handle:
            key = handle.read()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    if not create:
        return None
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_hex(32).encode() + b"\n")
    try:
        os.link(tmp, path)  # the first writer wins; later ones read its key
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    with open(path, "rb") as handle:
        return handle.read()


def read_json(path, default):
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return default
    return data if isinstance(data, type(default)) else default


def write_json(path, data, sync=True):
    mode.check_writable("write %s" % path)
    if not data:
        if os.path.exists(path):
            os.remove(path)
        return
    atomic_json(path, data, sync=sync, indent=1, sort_keys=True)
