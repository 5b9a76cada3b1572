"""Small JSON state files, written atomically (temporary file, fsync, rename)."""

import json
import os
import tempfile


from dockeroo.base import mode


def store_json(path, key, value):
    """Set KEY in the JSON object file PATH (atomically; errors ignored: it is a cache)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = value
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".clients-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


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
        for name in (path, path + ".tmp"):
            if os.path.exists(name):
                os.remove(name)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    os.replace(path + ".tmp", path)
