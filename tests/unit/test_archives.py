"""dockeroo.recipes.common.archives: the archives option and streaming with checksums (no engine)."""

import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile

import pytest
from zc.buildout import UserError

from dockeroo.recipes.common import archives
from dockeroo.engine.errors import DockerError
from dockeroo.model.options import Options


def parse(tmp_path, text):
    return archives.parse_archives(Options("boot", {"archives": text}), "archives", str(tmp_path))


def make_tar(path, files, compress=""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    if compress == "gz":
        data = gzip.compress(data)
    with open(path, "wb") as handle:
        handle.write(data)
    if compress == "zst":
        subprocess.run(["zstd", "-q", "-f", "--rm", path, "-o", path + ".zst"], check=True)
        return path + ".zst"
    return path


def test_parse_lines(tmp_path):
    local = tmp_path / "stage3 local.tar"
    local.write_bytes(b"x")
    other = tmp_path / "other.tar"
    other.write_bytes(b"x")
    sha = "a" * 64
    items = parse(tmp_path, """
        http://h/a.tar.xz
        https://h/b.tar.gz /usr/portage sha256:%s
        'stage3 local.tar' md5:%s
        file://%s opt/x
        # a comment
        """ % (sha, "B" * 32, other))
    assert [(a.is_url, a.prefix, a.algorithm, a.digest) for a in items] == [
        (True, "", None, None),
        (True, "usr/portage", "sha256", sha),
        (False, "", "md5", "b" * 32),
        (False, "opt/x", None, None)]
    assert items[2].source == str(local)
    # a local file without checksum is identified by its stat data
    assert items[3].source == str(other)
    ident = items[3].identity()
    other.write_bytes(b"xy")
    assert items[3].identity() != ident


@pytest.mark.parametrize("line, why", [
    ("http://h/a.tar sha256:abc", "a sha256 checksum has 64 hex digits, not 3"),
    ("http://h/a.tar crc32:%s" % ("0" * 8), "unknown checksum algorithm 'crc32'"),
    ("http://h/a.tar /p /q", "each line must be SOURCE [PREFIX] [ALGORITHM:HEX]"),
    ("http://h/a.tar md5:%s /p" % ("0" * 32), "each line must be SOURCE [PREFIX] [ALGORITHM:HEX]"),
    ("http://h/a.tar ../etc", "points outside the target root"),
    ("gopher://h/a.tar", "unsupported URL scheme 'gopher'"),
    ("missing.tar", "is not a file"),
    ("'unterminated", "cannot parse the line"),
])
def test_parse_errors_name_part_option_and_line(tmp_path, line, why):
    with pytest.raises(UserError) as info:
        parse(tmp_path, line)
    assert str(info.value).startswith("Part [boot], option 'archives' = %r: " % line)
    assert why in str(info.value)


class FakeEngine:
    """Collects what would be fed to ``docker import``; refuses what Docker
    could not read (``docker import`` reads tar, gzip, bzip2 and xz)."""

    def __init__(self):
        self.data = None
        self.args = None
        self.fed = []

    def feed(self, args, writer, timeout=None):
        out = io.BytesIO()
        writer(out)
        self.args, self.data = args, out.getvalue()
        self.fed.append(self.data)
        try:
            with tarfile.open(fileobj=io.BytesIO(self.data), mode="r:*") as tar:
                for member in tar:
                    if member.isfile():
                        tar.extractfile(member).read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DockerError(["docker"] + list(args), 1, "cannot read the stream: %s" % exc)

        class Result:
            stdout = "sha256:feed\n"
        return Result()


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def written(path, archive):
    out = io.BytesIO()
    archives.write_archive(path, archive, out)
    return members(out.getvalue())


@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd is not installed")
def test_write_with_prefix_and_checksum(tmp_path):
    a = make_tar(str(tmp_path / "a.tar"), {"etc/a": b"A"}, "gz")
    b = make_tar(str(tmp_path / "b.tar"), {"etc/shared": b"from b", "x": b"X"}, "zst")
    digest = hashlib.sha256(open(b, "rb").read()).hexdigest()
    items = parse(tmp_path, "a.tar\n%s /opt/b sha256:%s" % (b, digest))
    assert written(a, items[0]) == {"etc/a": b"A"}
    assert written(b, items[1]) == {"opt/b/etc/shared": b"from b", "opt/b/x": b"X"}


def test_import_one_archive(tmp_path):
    make_tar(str(tmp_path / "a.tar"), {"etc/a": b"A"})
    engine = FakeEngine()
    image = archives.import_archives(engine, parse(tmp_path, "a.tar"), Options("boot", {}),
                                     "archives", {}, changes=["LABEL a=b"])
    assert image == "sha256:feed"
    assert engine.args == ["import", "--change", "LABEL a=b", "-"]
    assert members(engine.data) == {"etc/a": b"A"}


def test_checksum_mismatch_and_corrupt_archive(tmp_path):
    a = make_tar(str(tmp_path / "a.tar.gz"), {"f": b"1" * 100000}, "gz")
    line = "%s md5:%s" % (a, "0" * 32)
    with pytest.raises(UserError) as info:
        archives.import_archives(FakeEngine(), parse(tmp_path, line), Options("boot", {}),
                                 "archives", {})
    md5 = hashlib.md5(open(a, "rb").read()).hexdigest()
    assert str(info.value) == ("Part [boot], option 'archives' = %r: md5 checksum mismatch: "
                               "expected %s, got %s" % (line, "0" * 32, md5))
    # a truncated download fails to decompress: reported as the checksum mismatch
    data = open(a, "rb").read()
    with open(a, "wb") as handle:
        handle.write(data[:len(data) // 2])
    line = "%s md5:%s" % (a, md5)
    with pytest.raises(UserError) as info:
        archives.import_archives(FakeEngine(), parse(tmp_path, line), Options("boot", {}),
                                 "archives", {})
    assert "md5 checksum mismatch: expected %s" % md5 in str(info.value)
    # without a checksum: the read error, naming the line
    with pytest.raises(UserError) as info:
        archives.import_archives(FakeEngine(), parse(tmp_path, a), Options("boot", {}),
                                 "archives", {})
    assert str(info.value).startswith("Part [boot], option 'archives' = %r: cannot read the archive" % a)


def test_fast_path_passes_the_file_as_it_is(tmp_path):
    """One archive, no prefix, a format docker import reads: the file's own
    bytes go to ``docker import -``, its checksum verified on the way."""
    a = make_tar(str(tmp_path / "a.tar.gz"), {"etc/a": b"A" * 5000000}, "gz")
    data = open(a, "rb").read()
    digest = hashlib.sha256(data).hexdigest()
    engine = FakeEngine()
    image = archives.import_archives(engine, parse(tmp_path, "a.tar.gz sha256:%s" % digest),
                                     Options("boot", {}), "archives", {})
    assert image == "sha256:feed"
    assert engine.fed == [data]
    # with a prefix: re-streamed (a plain tar with the prefix applied)
    engine = FakeEngine()
    archives.import_archives(engine, parse(tmp_path, "a.tar.gz /opt"), Options("boot", {}),
                             "archives", {})
    assert members(engine.data) == {"opt/etc/a": b"A" * 5000000}


def test_fast_path_holds_back_the_end_until_the_checksum_matched(tmp_path):
    data = os.urandom(3 * archives.BLOCK + 100)
    path = str(tmp_path / "blob")
    with open(path, "wb") as handle:
        handle.write(data)
    good = hashlib.sha256(data).hexdigest()
    out = io.BytesIO()
    archives.passthrough(path, parse(tmp_path, "blob sha256:%s" % good)[0], out)
    assert out.getvalue() == data
    out = io.BytesIO()
    with pytest.raises(archives.ChecksumMismatch):
        archives.passthrough(path, parse(tmp_path, "blob sha256:%s" % ("0" * 64))[0], out)
    # everything but the last block was written: the reader never saw the end
    assert out.getvalue() == data[:3 * archives.BLOCK]

    class Closed(io.BytesIO):
        def write(self, block):
            raise BrokenPipeError()
    # the reader stopped early: the rest is still hashed, a mismatch reported as such
    with pytest.raises(archives.ChecksumMismatch):
        archives.passthrough(path, parse(tmp_path, "blob sha256:%s" % ("0" * 64))[0], Closed())
    with pytest.raises(BrokenPipeError):
        archives.passthrough(path, parse(tmp_path, "blob sha256:%s" % good)[0], Closed())


def test_logged_source_hides_url_credentials():
    def one(line):
        return archives.Archive(source=line, is_url=line.startswith("http"), prefix="",
                                algorithm=None, digest=None, line=line)
    secret = one("https://user:hunter2@example.org:8443/stage3.tar.xz?x=1")
    assert "hunter2" not in secret.shown and "user" not in secret.shown
    assert secret.shown == "https://***@example.org:8443/stage3.tar.xz?x=1"
    assert one("https://example.org/a.tar").shown == "https://example.org/a.tar"
    assert one("/srv/a.tar").shown == "/srv/a.tar"


def ends_archive(data):
    """Whether DATA is a whole tar stream: its members, then the end-of-archive blocks."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            pass
        end = tar.offset
    return data[end:end + 1024] == bytes(1024) and len(data) >= end + 1024


@pytest.mark.parametrize("compress", ["", "gz", "zst"])
def test_streamed_archive_never_ends_before_its_checksum_matched(tmp_path, compress):
    """With a prefix (or several archives) the archive is re-streamed: a wrong
    checksum must stop the stream before the end-of-archive blocks, or
    ``docker import`` / ``docker cp`` would complete the tampered archive."""
    if compress == "zst" and not shutil.which("zstd"):
        pytest.skip("zstd is not installed")
    path = make_tar(str(tmp_path / "a.tar"), {"etc/a": b"A" * 300000, "etc/b": b"B"}, compress)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    out = io.BytesIO()
    archives.write_archive(path, parse(tmp_path, "%s /opt sha256:%s" % (path, digest))[0], out)
    assert ends_archive(out.getvalue())
    out = io.BytesIO()
    with pytest.raises(archives.ChecksumMismatch):
        archives.write_archive(path, parse(tmp_path, "%s /opt sha256:%s" % (path, "0" * 64))[0],
                               out)
    assert out.getvalue(), "the members were streamed"
    assert not ends_archive(out.getvalue())


def test_several_archives_stop_before_the_end_of_a_tampered_one(tmp_path):
    a = make_tar(str(tmp_path / "a.tar"), {"etc/a": b"A" * 1000})
    b = make_tar(str(tmp_path / "b.tar.gz"), {"etc/b": b"B" * 1000}, "gz")
    sums = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (a, b)]
    for bad in (0, 1):
        lines = ["%s sha256:%s" % (a, "0" * 64 if bad == 0 else sums[0]),
                 "%s /opt sha256:%s" % (b, "0" * 64 if bad == 1 else sums[1])]
        engine = CopyEngine()
        with pytest.raises(UserError) as info:
            archives.import_archives(engine, parse(tmp_path, "\n".join(lines)),
                                     Options("boot", {}), "archives", {})
        assert "sha256 checksum mismatch" in str(info.value)
        # the good archive's stream was complete, the tampered one's was not
        assert [ends_archive(data) for data in engine.fed] == [True] * bad + [False]
        # what was made is removed again
        assert sorted(engine.removed) == sorted(engine.made)


class CopyEngine(FakeEngine):
    """FakeEngine that also answers create/commit/rm for several archives."""

    def __init__(self):
        super().__init__()
        self.made, self.removed = [], []

    def feed(self, args, writer, timeout=None):
        out = io.BytesIO()
        try:
            writer(out)
        finally:
            self.fed.append(out.getvalue())
        if args[0] == "import":
            self.made.append("sha256:feed")

        class Result:
            stdout = "sha256:feed\n"
        return Result()

    def run(self, args, check=True, timeout=None):
        if args[0] == "create":
            self.made.append(args[args.index("--name") + 1])
        elif args[0] in ("rm", "image"):
            self.removed.append(args[-1])

        class Result:
            stdout = "sha256:commit\n"
            returncode = 0
        return Result()

    def forget(self, kind, name=None):
        pass
