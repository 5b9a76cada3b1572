"""pack_folder's own header writer gives the stream tarfile writes (PAX format)."""

import io
import os
import tarfile

from dockeroo.base import tarstream
from support.tars import list_names


def tarfile_pack(root, out, uid=None, gid=None):
    """pack_folder as it was written with tarfile.addfile for every member."""
    links = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, full, st in tarstream.walk(root):
            info = tarstream._tarinfo(rel, full, st, uid, gid)
            if info is None:
                continue
            if info.type == tarfile.REGTYPE and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in links:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, links[key], 0
                    tar.addfile(info)
                    continue
                links[key] = info.name
            if info.type == tarfile.REGTYPE:
                with open(full, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)


def test_same_bytes_as_tarfile(tmp_path):
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f").write_bytes(b"x" * 1000)
    os.link(root / "a" / "f", root / "a" / "hard")
    os.symlink("../f", root / "a" / "b" / "sym")
    os.mkfifo(root / "fifo")
    (root / ("L" * 120)).write_text("a long name: PAX record")
    (root / "ünïcode").write_text("PAX record")
    (root / "d").mkdir()
    (root / "d" / ("x" * 99)).write_text("a 101-character name")
    (root / "empty").write_bytes(b"")
    (root / "big").write_bytes(os.urandom(3 * tarstream.COPY_BUFSIZE + 7))
    os.chmod(root / "empty", 0o4755)
    for uid, gid in ((None, None), (0, 0), (1000, 2000), (2 ** 22, 5)):
        ours, theirs = io.BytesIO(), io.BytesIO()
        tarstream.pack_folder(str(root), ours, uid=uid, gid=gid)
        tarfile_pack(str(root), theirs, uid=uid, gid=gid)
        assert ours.getvalue() == theirs.getvalue()
    ours = io.BytesIO()
    tarstream.pack_folder(str(root), ours, prefix="/srv/app")
    names = list_names(io.BytesIO(ours.getvalue()))
    assert "srv/app/a/hard" in names and "srv/app/" + "L" * 120 in names


def test_file_that_shrinks_while_read(tmp_path, monkeypatch):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "f").write_bytes(b"1234")
    real = tarstream._tarinfo

    def bigger(*args):
        info = real(*args)
        info.size = 10
        return info
    monkeypatch.setattr(tarstream, "_tarinfo", bigger)
    try:
        tarstream.pack_folder(str(root), io.BytesIO())
    except OSError as exc:
        assert "unexpected end of data" in str(exc)
    else:
        raise AssertionError("no error")
