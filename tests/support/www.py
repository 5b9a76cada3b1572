"""Archives served over HTTP from 127.0.0.1 (the ``www`` fixture)."""

import hashlib
import io
import os
import tarfile

def tar_bytes(files):
    """An uncompressed tar of {name: bytes} (directories for the parents)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = set()
        for name, data in files.items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Served:
    def __init__(self, root, port):
        self.root = root
        self.port = port
        self.requests = []

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def path(self, name):
        return os.path.join(self.root, name)

    def sha256(self, name):
        return hashlib.sha256(open(self.path(name), "rb").read()).hexdigest()

    def md5(self, name):
        return hashlib.md5(open(self.path(name), "rb").read()).hexdigest()
