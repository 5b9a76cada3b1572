"""archives.import_archives against the real engine: the single-archive fast path."""

import gzip
import hashlib
import io
import subprocess
import tarfile

import pytest
from zc.buildout import UserError

from support.engine import docker
from dockeroo.recipes.common import archives
from dockeroo.runtime.container import label_change
from dockeroo.engine.docker import DockerEngine
from dockeroo.model.options import Options


def images(label):
    """The images this test imported (other sessions share the engine)."""
    return docker("image", "ls", "-aq", "--filter", "label=test=" + label).split()


def write_targz(path, files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    data = gzip.compress(buf.getvalue())
    with open(path, "wb") as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def do_import(tmp_path, line, label):
    opts = Options("boot", {"archives": line})
    items = archives.parse_archives(opts, "archives", str(tmp_path))
    return archives.import_archives(DockerEngine(), items, opts, "archives", {},
                                    changes=[label_change({"test": label})])


def test_fast_path_imports_verifies_and_falls_back(engine, prefix, tmp_path, base_image):
    payload = {"etc/hello": b"hello\n", "big.bin": bytes(range(256)) * 8192}
    digest = write_targz(str(tmp_path / "root.tar.gz"), payload)
    image = do_import(tmp_path, "root.tar.gz sha256:%s" % digest, prefix)
    try:
        labels = docker("image", "inspect", "--format", "{{json .Config.Labels}}", image)
        assert prefix in labels
        name = prefix + "-c"
        docker("create", "--name", name, image, "/x")
        out = subprocess.run("docker cp %s:/etc/hello - | tar -xO" % name, shell=True,
                             capture_output=True, check=True).stdout
        assert out == b"hello\n"
        docker("rm", name)
    finally:
        docker("image", "rm", "-f", image)

    # a wrong checksum: refused before docker import saw the end; no image
    with pytest.raises(UserError) as info:
        do_import(tmp_path, "root.tar.gz sha256:%s" % ("0" * 64), prefix)
    assert "sha256 checksum mismatch: expected %s, got %s" % ("0" * 64, digest) in str(info.value)
    assert images(prefix) == []

    # a truncated archive without checksum: docker import refuses it, and the
    # slow path says what is wrong, naming the line
    data = open(tmp_path / "root.tar.gz", "rb").read()
    (tmp_path / "cut.tar.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(UserError) as info:
        do_import(tmp_path, "cut.tar.gz", prefix)
    assert str(info.value).startswith(
        "Part [boot], option 'archives' = 'cut.tar.gz': cannot read the archive")
    assert images(prefix) == []
