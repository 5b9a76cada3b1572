"""The only user of ``tarfile`` in dockeroo: tar streams for layouts, copies and imports.

Data always flows through pipes; nothing is extracted or copied to disk.
Members that would land outside the target root are refused with
:class:`UnsafeArchive`.
"""

import io
import os
import posixpath
import stat
import tarfile
import time

from dockeroo.base.fingerprint import walk

COPY_BUFSIZE = 1 << 20


class UnsafeArchive(ValueError):
    """A tar member would land outside the target root."""


def safe_name(name, what="member"):
    """Normalize a member name; refuse absolute names and ``..`` escapes."""
    if name.startswith("/"):
        raise UnsafeArchive("%s %r has an absolute path" % (what, name))
    norm = posixpath.normpath(name) if name not in ("", ".", "./") else "."
    if norm == ".." or norm.startswith("../"):
        raise UnsafeArchive("%s %r points outside the target root" % (what, name))
    return norm


def check_member(member):
    """Refuse members and links that escape the root; returns the member."""
    member.name = safe_name(member.name)
    if member.islnk():
        member.linkname = safe_name(member.linkname, "hard link target of %r" % member.name)
    elif member.issym() and not member.linkname.startswith("/"):
        # a relative symlink must resolve inside the root; absolute ones are
        # resolved by the container inside its own root
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
        if target == ".." or target.startswith("../"):
            raise UnsafeArchive("symlink %r -> %r points outside the target root"
                                % (member.name, member.linkname))
    return member


# -- local folder -> tar ---------------------------------------------------------
def _tarinfo(rel, full, st, uid, gid):
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid = st.st_uid if uid is None else uid
    info.gid = st.st_gid if gid is None else gid
    info.uname = info.gname = ""
    if stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets and device files are not copied from layouts
    return info


def pack_folder(root, out, uid=None, gid=None, prefix="", ignore=None):
    """Write ROOT's content as a tar stream to the binary file OUT.

    Modes, symlinks and hard links are kept; ``uid``/``gid`` override the
    owners when given; ``prefix`` is prepended to every name.  The folder
    itself is not a member (a layout copied onto ``/`` keeps its mode).
    The stream is ``tarfile``'s PAX format, but plain headers are made here
    (:func:`ustar_header`) and small files written with them in one write:
    ``tarfile``'s headers cost most of the time for trees of small files.
    """
    # a prefix is a path inside the target root: "/srv/app" and "srv/app" alike
    prefix = safe_name(prefix.lstrip("/"), "prefix") + "/" if prefix and prefix.strip("/") else ""
    links = {}
    writer = _TarWriter(out)
    for rel, full, st in walk(root, ignore):
        info = _tarinfo(prefix + rel, full, st, uid, gid)
        if info is None:
            continue
        if info.type == tarfile.REGTYPE and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in links:
                info.type = tarfile.LNKTYPE
                info.linkname = links[key]
                info.size = 0
                writer.add(info)
                continue
            links[key] = info.name
        if info.type == tarfile.REGTYPE:
            with open(full, "rb") as handle:
                writer.add(info, handle)
        else:
            writer.add(info)
    writer.close()


_NUL_BLOCK = bytes(tarfile.BLOCKSIZE)
_OCTAL_LIMITS = (("uid", 8), ("gid", 8), ("size", 12), ("mtime", 12))


def ustar_header(info):
    """The 512-byte header ``tarfile`` writes for INFO in PAX format when no
    extended record is needed, or None when one is (long or non-ASCII
    names, large numbers): then use ``info.tobuf(tarfile.PAX_FORMAT)``."""
    name, linkname = info.name, info.linkname
    if info.type == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    if (len(name) > 100 or len(linkname) > 100 or len(info.uname) > 32 or len(info.gname) > 32
            or not (name.isascii() and linkname.isascii() and info.uname.isascii()
                    and info.gname.isascii())):
        return None
    for field, digits in _OCTAL_LIMITS:
        value = getattr(info, field)
        if not isinstance(value, int) or not 0 <= value < 8 ** (digits - 1):
            return None
    if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        return None
    buf = bytearray(b"".join((
        name.encode("ascii").ljust(100, b"\0"),
        b"%07o\0" % (info.mode & 0o7777),
        b"%07o\0" % info.uid,
        b"%07o\0" % info.gid,
        b"%011o\0" % info.size,
        b"%011o\0" % info.mtime,
        b"        ",
        info.type,
        linkname.encode("ascii").ljust(100, b"\0"),
        tarfile.POSIX_MAGIC,
        info.uname.encode("ascii").ljust(32, b"\0"),
        info.gname.encode("ascii").ljust(32, b"\0"),
    ))).ljust(tarfile.BLOCKSIZE, b"\0")
    buf[148:155] = b"%06o\0" % sum(buf)
    return bytes(buf)


class _TarWriter:
    """A write-only tar stream: what ``tarfile.open(mode="w|", format=PAX_FORMAT)``
    writes, with fast headers (:func:`ustar_header`) and batched writes."""

    def __init__(self, out, flush_at=COPY_BUFSIZE):
        self.out = out
        self.offset = 0
        self.pending = []
        self.pending_size = 0
        self.flush_at = flush_at

    def _put(self, data):
        self.pending.append(data)
        self.pending_size += len(data)
        self.offset += len(data)
        if self.pending_size >= self.flush_at:
            self.flush()

    def flush(self):
        if self.pending:
            self.out.write(b"".join(self.pending))
            self.pending = []
            self.pending_size = 0

    def add(self, info, handle=None):
        header = ustar_header(info)
        if header is None:
            header = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        self._put(header)
        if handle is None or not info.size:
            return
        left = info.size
        while left:
            data = handle.read(min(left, COPY_BUFSIZE))
            if not data:
                raise OSError("unexpected end of data: %s changed while it was read"
                              % info.name)
            left -= len(data)
            self._put(data)
        remainder = info.size % tarfile.BLOCKSIZE
        if remainder:
            self._put(_NUL_BLOCK[remainder:])

    def close(self):
        self._put(_NUL_BLOCK * 2)
        remainder = self.offset % tarfile.RECORDSIZE
        if remainder:
            self._put(bytes(tarfile.RECORDSIZE - remainder))
        self.flush()


# -- tar -> tar with new names ---------------------------------------------------
def retarget(src, out, rename, uid=None, gid=None):
    """Copy the tar stream SRC to OUT, renaming members.

    ``rename(name)`` returns the new name, or None to drop the member.
    Hard link targets are renamed alike.  Every member is checked with
    :func:`check_member` after renaming.
    """
    retarget_many([(src, rename)], out, uid=uid, gid=gid)


def prefix_renamer(old, new):
    """Rename the top-level path OLD (and everything below) to NEW."""
    old = safe_name(old)
    new = safe_name(new)

    def rename(name):
        if name == old:
            return new
        if name.startswith(old + "/"):
            return new + name[len(old):]
        return None
    return rename


def merge(sources, out, check=True, before_end=None):
    """Concatenate several tar streams into one (for ``docker import``).

    SOURCES is a list of (binary file, prefix) pairs, each maybe gzip, bzip2
    or xz; later members win where names repeat.  ``before_end()`` is called
    before the end-of-archive blocks: when it raises, OUT never sees the end
    of the archive (``docker import`` cannot complete it).
    """
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      copybufsize=COPY_BUFSIZE) as tout:
        for src, prefix in sources:
            pre = (safe_name(prefix.lstrip("/"), "prefix") if prefix and prefix.strip("/")
                   else "")
            with tarfile.open(fileobj=src, mode="r|*", copybufsize=COPY_BUFSIZE) as tin:
                for member in tin:
                    name = safe_name(member.name)
                    if pre:
                        member.name = pre if name == "." else pre + "/" + name
                        if member.islnk():
                            member.linkname = pre + "/" + safe_name(member.linkname)
                    else:
                        member.name = name
                    if check:
                        check_member(member)
                    if member.isreg():
                        tout.addfile(member, tin.extractfile(member))
                    else:
                        tout.addfile(member)
        if before_end is not None:
            before_end()


def single_file(out, name, data, mode=0o644, uid=0, gid=0, mtime=None):
    """Write a tar stream holding one regular file NAME with content DATA (bytes).

    No directory members are written: ``docker cp - c:/`` creates missing
    parents and leaves existing ones (their modes, owners, symlinks) alone.
    """
    _one_member(out, name, tarfile.REGTYPE, mode, uid, gid, mtime, data)


def _one_member(out, name, kind, mode, uid, gid, mtime, data=None):
    """Write a tar stream holding the one member NAME of type KIND (DATA: a file's content)."""
    info = tarfile.TarInfo(safe_name(name))
    info.type, info.mode, info.uid, info.gid = kind, mode, uid, gid
    info.uname = info.gname = ""
    info.mtime = int(time.time() if mtime is None else mtime)
    if data is not None:
        info.size = len(data)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, None if data is None else io.BytesIO(data))


def retarget_many(sources, out, uid=None, gid=None, owners=None):
    """Like :func:`retarget` for several tar streams written as ONE archive.

    SOURCES is an iterable of (binary file, rename) pairs, read one after
    the other (produced lazily, e.g. by a process started in its turn).
    OWNERS, (user name -> uid, group name -> gid), gives members their ids
    back from their owner names (Podman's archives give 0 as every id).
    """
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT,
                      copybufsize=COPY_BUFSIZE) as tout:
        for src, rename in sources:
            with tarfile.open(fileobj=src, mode="r|*", copybufsize=COPY_BUFSIZE) as tin:
                for member in tin:
                    name = rename(safe_name(member.name))
                    if name is None:
                        continue
                    member.name = name
                    if member.islnk():
                        target = rename(safe_name(member.linkname))
                        if target is None:
                            raise UnsafeArchive("hard link %r points to %r, which is not copied"
                                                % (name, member.linkname))
                        member.linkname = target
                    check_member(member)
                    if owners:
                        member.uid = owners[0].get(member.uname, member.uid)
                        member.gid = owners[1].get(member.gname, member.gid)
                    if uid is not None:
                        member.uid, member.uname = uid, ""
                    if gid is not None:
                        member.gid, member.gname = gid, ""
                    if member.isreg():
                        tout.addfile(member, tin.extractfile(member))
                    else:
                        tout.addfile(member)
            # the padding after the end-of-archive marker: let the producer finish
            for _ in iter(lambda: src.read(COPY_BUFSIZE), b""):
                pass


BLOCK = tarfile.BLOCKSIZE


def names_a_file(header):
    """Is the first header block of a tar stream a member that is no folder?
    (False when unsure: an extended header comes first.)"""
    return len(header) == BLOCK and header[156:157] not in (tarfile.DIRTYPE, tarfile.XHDTYPE,
                                                               tarfile.XGLTYPE)


def first_file(src, limit=1 << 20):
    """The content of the first regular file of the tar stream SRC (at most
    LIMIT bytes), or None; the rest of the stream is read and dropped."""
    data = None
    try:
        with tarfile.open(fileobj=src, mode="r|*", copybufsize=COPY_BUFSIZE) as tin:
            for member in tin:
                if data is None and member.isreg() and member.size <= limit:
                    data = tin.extractfile(member).read()
    except tarfile.TarError:  # no stream (the path is missing): the caller sees the exit code
        pass
    for _ in iter(lambda: src.read(COPY_BUFSIZE), b""):
        pass
    return data


def folder_entry(out, name, mode=0o755, uid=0, gid=0, mtime=None):
    """Write a tar stream holding one folder NAME (no content).

    Extracted with ``docker cp - c:/`` it creates NAME and its missing
    parents.  Never send it for a folder that may exist: Docker would
    replace an existing symlink by the folder and reset its mode.
    """
    _one_member(out, name, tarfile.DIRTYPE, mode, uid, gid, mtime)
