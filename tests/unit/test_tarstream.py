"""dockeroo.base.tarstream: tar streams for layouts, copies and imports (no engine)."""

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile

import pytest

from dockeroo.base.fingerprint import IgnoreRules
from dockeroo.base.tarstream import (UnsafeArchive, check_member, merge, pack_folder,
    prefix_renamer, retarget, safe_name, single_file)
from support.tars import list_names


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        result = {}
        for m in tar.getmembers():
            content = tar.extractfile(m).read() if m.isreg() else None
            result[m.name] = (m, content)
        return result


def pack(root, **kwargs):
    out = io.BytesIO()
    pack_folder(str(root), out, **kwargs)
    return out.getvalue()


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "layout"
    (root / "etc/app/conf.d").mkdir(parents=True)
    (root / "etc/app/app.conf").write_text("key=value\n")
    (root / "etc/app/conf.d/10-extra.conf").write_text("extra\n")
    (root / "bin").mkdir()
    (root / "bin/tool").write_bytes(b"#!/bin/sh\necho tool\n")
    os.chmod(root / "bin/tool", 0o4755)
    os.chmod(root / "etc/app/conf.d", 0o750)
    os.symlink("tool", root / "bin/tool-link")
    os.symlink("/etc/app/app.conf", root / "bin/abs-link")
    os.link(root / "bin/tool", root / "bin/tool-hard")
    os.chown(root / "etc/app/app.conf", 1234, 5678)
    os.mkfifo(root / "bin/fifo")
    return root


# -- pack_folder -----------------------------------------------------------------
def test_pack_folder_keeps_tree_modes_links_and_owners(layout):
    got = members(pack(layout))
    assert "." not in got and "" not in got  # the folder itself is not a member
    assert set(got) == {"bin", "bin/abs-link", "bin/fifo", "bin/tool", "bin/tool-hard",
                        "bin/tool-link", "etc", "etc/app", "etc/app/app.conf", "etc/app/conf.d",
                        "etc/app/conf.d/10-extra.conf"}
    tool, data = got["bin/tool"]
    assert tool.isreg() and data == b"#!/bin/sh\necho tool\n" and tool.mode == 0o4755
    assert got["etc/app/conf.d"][0].isdir() and got["etc/app/conf.d"][0].mode == 0o750
    assert got["bin/tool-link"][0].issym() and got["bin/tool-link"][0].linkname == "tool"
    assert got["bin/abs-link"][0].linkname == "/etc/app/app.conf"
    hard = got["bin/tool-hard"][0]
    assert hard.islnk() and hard.linkname == "bin/tool"
    assert got["bin/fifo"][0].isfifo()
    conf = got["etc/app/app.conf"][0]
    assert (conf.uid, conf.gid) == (1234, 5678)
    assert got["etc/app/conf.d/10-extra.conf"][1] == b"extra\n"


def test_pack_folder_uid_gid_override_and_prefix(layout):
    got = members(pack(layout, uid=1000, gid=100, prefix="/srv/app/"))
    assert all(name.startswith("srv/app/") for name in got)
    for member, _ in got.values():
        assert (member.uid, member.gid, member.uname, member.gname) == (1000, 100, "", "")
    assert got["srv/app/bin/tool-hard"][0].linkname == "srv/app/bin/tool"
    assert got["srv/app/bin/tool-link"][0].linkname == "tool"


def test_pack_folder_only_uid(layout):
    got = members(pack(layout, uid=0))
    conf = got["etc/app/app.conf"][0]
    assert (conf.uid, conf.gid) == (0, 5678)


def test_pack_folder_skips_sockets_and_honours_ignore(layout):
    import socket
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(layout / "bin/sock"))
    try:
        got = members(pack(layout, ignore=IgnoreRules(["etc/app/conf.d"])))
    finally:
        sock.close()
    assert "bin/sock" not in got
    assert "etc/app/conf.d" not in got and "etc/app/conf.d/10-extra.conf" not in got
    assert "etc/app/app.conf" in got


def test_pack_folder_long_and_unicode_names(tmp_path):
    root = tmp_path / "r"
    deep = root / ("d" * 120) / "sub"
    deep.mkdir(parents=True)
    (deep / "fïlé with spaces.txt").write_text("x")
    got = members(pack(root))
    assert ("d" * 120) + "/sub/fïlé with spaces.txt" in got


def test_pack_folder_refuses_escaping_prefix(layout):
    with pytest.raises(UnsafeArchive):
        pack(layout, prefix="../outside")


# -- hostile archives ------------------------------------------------------------------
def tar_of(*specs, compression=""):
    """Build a tar from (name, type, linkname/content) specs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w" + (":" + compression if compression else ""),
                      format=tarfile.PAX_FORMAT) as tar:
        for name, kind, extra in specs:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = extra if isinstance(extra, bytes) else (extra or "").encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            tar.addfile(info)
    return out.getvalue()


HOSTILE = [
    ("dotdot name", [("../evil", "file", "x")]),
    ("nested dotdot", [("a/b/../../../evil", "file", "x")]),
    ("absolute name", [("/etc/passwd", "file", "x")]),
    ("hard link to absolute", [("ok", "file", "x"), ("h", "hard", "/etc/shadow")]),
    ("hard link escaping", [("ok", "file", "x"), ("h", "hard", "../../etc/shadow")]),
    ("relative symlink escaping", [("a/link", "sym", "../../etc")]),
    ("symlink to parent", [("link", "sym", "..")]),
]


@pytest.mark.parametrize("what, specs", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_merge_refuses_hostile_members(what, specs):
    with pytest.raises(UnsafeArchive):
        merge([(io.BytesIO(tar_of(*specs)), "")], io.BytesIO())


@pytest.mark.parametrize("what, specs", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_retarget_refuses_hostile_members(what, specs):
    with pytest.raises(UnsafeArchive):
        retarget(io.BytesIO(tar_of(*specs)), io.BytesIO(), lambda name: name)


def test_allowed_links():
    data = tar_of(("a/b/file", "file", "x"), ("a/up", "sym", "../a/b/file"),
                  ("a/abs", "sym", "/usr/bin/env"), ("a/hard", "hard", "./a/b/file"),
                  ("a/b/../c", "file", "y"))
    out = io.BytesIO()
    merge([(io.BytesIO(data), "")], out)
    got = members(out.getvalue())
    assert got["a/hard"][0].linkname == "a/b/file"
    assert got["a/abs"][0].linkname == "/usr/bin/env"  # resolved inside the container's root
    assert "a/c" in got


def test_safe_name_and_check_member():
    assert safe_name("./a//b/") == "a/b"
    assert safe_name("") == "." and safe_name("./") == "."
    for bad in ("..", "../x", "/abs", "a/../../x"):
        with pytest.raises(UnsafeArchive):
            safe_name(bad)
    info = tarfile.TarInfo("./x/y")
    info.type, info.linkname = tarfile.SYMTYPE, "../z"
    assert check_member(info).name == "x/y"


def test_merge_with_prefix_cannot_be_escaped():
    with pytest.raises(UnsafeArchive):
        merge([(io.BytesIO(tar_of(("x/../../y", "file", ""))), "opt/pkg")], io.BytesIO())
    with pytest.raises(UnsafeArchive):
        merge([(io.BytesIO(tar_of(("x", "file", ""))), "../opt")], io.BytesIO())


# -- retarget -------------------------------------------------------------------------
def test_retarget_renames_members_and_hard_link_targets():
    data = tar_of(("app", "dir", None), ("app/bin", "dir", None), ("app/bin/run", "file", "run"),
                  ("app/bin/run2", "hard", "app/bin/run"), ("app/lib", "sym", "bin"),
                  ("other/file", "file", "dropped"))
    out = io.BytesIO()
    retarget(io.BytesIO(data), out, prefix_renamer("app", "opt/new"), uid=1000, gid=1000)
    got = members(out.getvalue())
    assert sorted(got) == ["opt/new", "opt/new/bin", "opt/new/bin/run", "opt/new/bin/run2",
                           "opt/new/lib"]
    assert got["opt/new/bin/run"][1] == b"run"
    assert got["opt/new/bin/run2"][0].islnk()
    assert got["opt/new/bin/run2"][0].linkname == "opt/new/bin/run"
    assert got["opt/new/lib"][0].linkname == "bin"
    assert all((m.uid, m.gid) == (1000, 1000) for m, _ in got.values())


def test_retarget_single_file_rename():
    # ``docker cp c:/etc/hosts -`` names the member after the last path component
    data = tar_of(("hosts", "file", "127.0.0.1 localhost\n"))
    out = io.BytesIO()
    retarget(io.BytesIO(data), out, prefix_renamer("hosts", "srv/hosts.copy"))
    got = members(out.getvalue())
    assert list(got) == ["srv/hosts.copy"] and got["srv/hosts.copy"][1].startswith(b"127")


def test_retarget_hard_link_to_dropped_member_is_refused():
    data = tar_of(("keep/a", "hard", "drop/b"))
    data = tar_of(("drop/b", "file", "x"), ("keep/a", "hard", "drop/b"))
    with pytest.raises(UnsafeArchive, match="not copied"):
        retarget(io.BytesIO(data), io.BytesIO(), prefix_renamer("keep", "k"))


def test_retarget_rename_cannot_escape():
    data = tar_of(("a", "file", "x"))
    with pytest.raises(UnsafeArchive):
        retarget(io.BytesIO(data), io.BytesIO(), lambda name: "../" + name)
    with pytest.raises(UnsafeArchive):
        prefix_renamer("a", "../b")


def test_retarget_keeps_modes_and_large_content():
    blob = os.urandom(3 << 20)
    src = io.BytesIO()
    with tarfile.open(fileobj=src, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big")
        info.size, info.mode, info.uid, info.gid = len(blob), 0o600, 7, 8
        tar.addfile(info, io.BytesIO(blob))
    out = io.BytesIO()
    retarget(io.BytesIO(src.getvalue()), out, prefix_renamer("big", "data/big"))
    member, content = members(out.getvalue())["data/big"]
    assert content == blob and member.mode == 0o600 and (member.uid, member.gid) == (7, 8)


# -- merge ------------------------------------------------------------------------------
def test_merge_compressed_archives_with_prefixes():
    plain = tar_of(("./", "dir", None), ("./etc/os-release", "file", "base\n"),
                   ("./etc/motd", "file", "first\n"))
    gz = gzip.compress(tar_of(("bin/tool", "file", "tool"), ("bin/t2", "hard", "bin/tool")))
    bz = bz2.compress(tar_of(("share/doc", "file", "doc")))
    xz = lzma.compress(tar_of(("etc/motd", "file", "second\n"), ("etc/link", "sym", "motd")))
    out = io.BytesIO()
    merge([(io.BytesIO(plain), ""), (io.BytesIO(gz), "usr/local"), (io.BytesIO(bz), "/usr/"),
           (io.BytesIO(xz), None)], out)
    names = list_names(io.BytesIO(out.getvalue()))
    assert names == [".", "etc/os-release", "etc/motd", "usr/local/bin/tool", "usr/local/bin/t2",
                     "usr/share/doc", "etc/motd", "etc/link"]
    got = members(out.getvalue())  # later members win, as when extracting in order
    assert got["etc/motd"][1] == b"second\n"
    assert got["usr/local/bin/t2"][0].linkname == "usr/local/bin/tool"
    assert got["usr/share/doc"][1] == b"doc"
    assert got["etc/link"][0].linkname == "motd"


def test_merge_prefix_of_the_root_member():
    data = tar_of((".", "dir", None), ("x", "file", "1"))
    out = io.BytesIO()
    merge([(io.BytesIO(data), "opt/p")], out)
    assert list_names(io.BytesIO(out.getvalue())) == ["opt/p", "opt/p/x"]


def test_merge_refuses_garbage():
    with pytest.raises(tarfile.TarError):
        merge([(io.BytesIO(b"this is not a tar archive" * 40), "")], io.BytesIO())


# -- single_file -----------------------------------------------------------------------
def test_single_file():
    out = io.BytesIO()
    single_file(out, "/etc/app/secret.conf".lstrip("/"), b"data", mode=0o600, uid=5, gid=6,
                mtime=1000)
    got = members(out.getvalue())
    member, content = got["etc/app/secret.conf"]
    assert list(got) == ["etc/app/secret.conf"]
    assert (member.mode, member.uid, member.gid, member.mtime, content) == (0o600, 5, 6, 1000, b"data")
    with pytest.raises(UnsafeArchive):
        single_file(io.BytesIO(), "../x", b"")


def test_packed_stream_is_streamed_not_seeked(layout):
    """pack_folder writes to pipes: a non-seekable sink works."""
    class Sink(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

        def seekable(self):
            return False

        def tell(self):
            raise OSError("not seekable")

    sink = Sink()
    pack_folder(str(layout), sink)
    assert "bin/tool" in members(bytes(sink.data))
    assert stat.S_IMODE(members(bytes(sink.data))["bin/tool"][0].mode) == 0o4755
