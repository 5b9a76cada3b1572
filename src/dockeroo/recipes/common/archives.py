"""Root filesystem archives: the ``archives`` option and ``docker import``.

One archive per line, ``SOURCE [PREFIX] [ALGORITHM:HEX]`` (the option is
described in docs/recipes/docker.gentoo-bootstrap.rst).  URLs are fetched
with zc.buildout's download utility (``download-cache``, ``offline``).
Archives are read as streams (tar, gzip, bzip2, xz; zstd through the
``zstd`` command when Python cannot read it), merged and piped into
``docker import``: nothing is extracted to disk.  Checksums are verified on
the bytes as they stream; after a mismatch ``docker import`` gets an input
that ends inside a tar block, which it refuses (nothing is imported).

Fast path: a single archive without a prefix, in a format ``docker import``
reads itself, is passed to it byte for byte (:func:`passthrough`), hashed
by a second thread, its last block held back until the digest is known;
Docker's extraction then checks the members instead of
:func:`dockeroo.base.tarstream.check_member`.  When Docker refuses the
stream it is streamed again the slow way, so errors read as they always did.
"""

import hashlib
import logging
import os
import queue
import re
import shlex
import shutil
import subprocess
import urllib.parse
import threading
from dataclasses import dataclass
from typing import Optional
from contextlib import suppress

from zc.buildout import UserError

from dockeroo.base import tarstream
from dockeroo.runtime.container import commit, drop_committed_base, label_change, split_change
from dockeroo.engine.commands import repeated
from dockeroo.engine.process import DEFAULT_LONG_TIMEOUT, printed_id
from dockeroo.engine.errors import DockerError
from dockeroo.base.redaction import add_secret, redact
from dockeroo.model.ownership import label_args, remove_container, remove_image

ALGORITHMS = {"sha256": 64, "sha512": 128, "sha1": 40, "md5": 32}
SCHEMES = ("http", "https", "ftp", "file")
_CHECKSUM = re.compile(r"^([a-z0-9]+):([0-9a-fA-F]+)$")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 1 << 20
#: leading bytes of the compressed formats ``docker import`` reads itself
DOCKER_READS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@dataclass(frozen=True)
class Archive:
    """One line of an ``archives`` option."""

    source: str  # a URL, or an absolute local path
    is_url: bool
    prefix: str  # "" (the root) or a normalized relative folder
    algorithm: Optional[str]
    digest: Optional[str]
    line: str

    @property
    def shown(self):
        """The source as it may be logged: a URL's user and password are hidden."""
        if not self.is_url:
            return self.source
        parts = urllib.parse.urlsplit(self.source)
        if parts.username is None and parts.password is None:
            return self.source
        host = parts.hostname or ""
        if parts.port:
            host += ":%d" % parts.port
        return urllib.parse.urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query,
                                        parts.fragment))

    def identity(self):
        """What defines this archive's content, for fingerprints.

        A checksum defines it; otherwise the URL, or for a local file its
        path, size and modification time.
        """
        ident = [self.source, self.prefix, self.algorithm, self.digest]
        if not self.is_url and not self.digest:
            st = os.stat(self.source)
            ident += [st.st_size, st.st_mtime_ns, st.st_ino]
        return ident


def parse_archives(opts, option, base):
    """Read OPTION's lines into :class:`Archive` objects (UserError on mistakes)."""
    archives = []
    for line in opts.lines(option):
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise opts.error(option, "cannot parse the line (%s)" % exc, line)
        if not 1 <= len(words) <= 3:
            raise opts.error(option, "each line must be SOURCE [PREFIX] [ALGORITHM:HEX]", line)
        source, prefix, algorithm, digest = words[0], None, None, None
        for word in words[1:]:
            match = _CHECKSUM.match(word)
            if match:
                if algorithm:
                    raise opts.error(option, "more than one checksum", line)
                algorithm, digest = match.group(1), match.group(2).lower()
                if algorithm not in ALGORITHMS:
                    raise opts.error(option, "unknown checksum algorithm %r (use %s)"
                                     % (algorithm, ", ".join(sorted(ALGORITHMS))), line)
                if len(digest) != ALGORITHMS[algorithm]:
                    raise opts.error(option, "a %s checksum has %d hex digits, not %d"
                                     % (algorithm, ALGORITHMS[algorithm], len(digest)), line)
            elif prefix is None and not algorithm:
                prefix = word
            else:
                raise opts.error(option, "each line must be SOURCE [PREFIX] [ALGORITHM:HEX]", line)
        archives.append(Archive(*_source(opts, option, line, source, base),
                                prefix=_prefix(opts, option, line, prefix),
                                algorithm=algorithm, digest=digest, line=line))
    # URL credentials never reach .installed.cfg or buildout's -vv configuration dump
    raw = opts.options.get(option)
    if raw and redact(raw) != raw:
        opts.options[option] = redact(raw)
    return archives


def _source(opts, option, line, source, base):
    match = _URL.match(source)
    if match:
        parts = urllib.parse.urlsplit(source)
        if parts.password:  # hidden in every message and log line from now on
            add_secret(parts.password)
            add_secret(urllib.parse.unquote(parts.password))
        scheme = match.group(1).lower()
        if scheme not in SCHEMES:
            raise opts.error(option, "unsupported URL scheme %r (use %s or a local path)"
                             % (scheme, ", ".join(SCHEMES)), line)
        if scheme != "file":
            return source, True
        source = source[len("file://"):]
    path = os.path.normpath(os.path.join(base, os.path.expanduser(source)))
    if not os.path.isfile(path):
        raise opts.error(option, "%s is not a file" % path, line)
    return path, False


def _prefix(opts, option, line, prefix):
    if not prefix or prefix.strip("/") == "":
        return ""
    try:
        return tarstream.safe_name(prefix.strip("/"), "prefix")
    except tarstream.UnsafeArchive as exc:
        raise opts.error(option, str(exc), line)


# -- reading -----------------------------------------------------------------------
class _HashingFile:
    def __init__(self, handle, algorithm):
        self.handle = handle
        self.hash = hashlib.new(algorithm) if algorithm else None

    def read(self, size=-1):
        data = self.handle.read(size)
        if self.hash is not None and data:
            self.hash.update(data)
        return data

    def drain(self):
        while self.read(BLOCK):
            pass


class _Source:
    """An open archive: a readable tar (maybe compressed) stream plus its checksum."""

    def __init__(self, path, archive):
        self.archive = archive
        self.handle = open(path, "rb")
        self.raw = _HashingFile(self.handle, archive.algorithm)
        self.proc = self.feeder = None
        self.feed_error = None
        magic = self.handle.peek(4)[:4] if hasattr(self.handle, "peek") else b""
        self.reader = self.raw
        if magic == ZSTD_MAGIC:
            try:
                self.reader = self._zstd()
            except BaseException:
                self.handle.close()
                raise

    def _zstd(self):
        try:
            from compression import zstd  # Python >= 3.14
            return zstd.ZstdFile(self.raw, "rb")
        except ImportError:
            pass
        self.proc = zstd_process(["-d"], subprocess.PIPE, UserError(
            "%s is zstd-compressed: install the zstd command (e.g. apt-get install zstd) "
            "to read it" % self.archive.shown))

        def feed():
            try:
                for block in iter(lambda: self.raw.read(BLOCK), b""):
                    self.proc.stdin.write(block)
            except (BrokenPipeError, OSError, ValueError) as exc:
                self.feed_error = exc
            finally:
                with suppress(OSError):
                    self.proc.stdin.close()

        self.feeder = threading.Thread(target=feed, daemon=True)
        self.feeder.start()
        return self.proc.stdout

    def finish(self):
        """Read to the end (tar readers stop at the end marker); check the stream."""
        while self.reader.read(BLOCK):
            pass
        if self.proc is not None:
            self.feeder.join()
            zstd_wait(self.proc, ValueError)
        self.raw.drain()

    def rest_digest(self):
        """Stop decompressing, hash the rest of the file; the digest of all its bytes."""
        self._stop()
        try:
            self.raw.drain()
        except (OSError, ValueError):
            return None
        return self.actual_digest()

    def actual_digest(self):
        return self.raw.hash.hexdigest() if self.raw.hash is not None else None

    def verify(self):
        """Raise ValueError when the bytes read do not match the checksum."""
        actual = self.actual_digest()
        if actual is not None and actual != self.archive.digest:
            raise ChecksumMismatch(self.archive, actual)

    def _stop(self, wait=None):
        """Kill the zstd process if it still runs; wait (up to WAIT s) for its feeder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.feeder is not None:
            self.feeder.join(wait)

    def close(self):
        self._stop(5)
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            stream.close()
        self.handle.close()


def zstd_process(args, stdout, missing):
    """The local ``zstd -q -c ARGS`` process (the one place one is started: no
    docker process) reading its stdin, writing STDOUT; raises MISSING when
    the command is not installed."""
    exe = shutil.which("zstd")
    if not exe:
        raise missing
    return subprocess.Popen([exe, "-q", "-c"] + args, stdin=subprocess.PIPE, stdout=stdout,
                            stderr=subprocess.PIPE)


def zstd_wait(proc, error):
    """Wait for a :func:`zstd_process`; ERROR (a class) with its message if it failed."""
    err = proc.stderr.read().decode("utf-8", "replace").strip()
    if proc.wait() != 0:
        raise error("zstd failed (exit %s): %s" % (proc.returncode, err))


class ChecksumMismatch(ValueError):
    def __init__(self, archive, actual):
        self.archive = archive
        self.actual = actual
        super().__init__("%s checksum mismatch: expected %s, got %s"
                         % (archive.algorithm, archive.digest, actual))


# -- fetching and importing ------------------------------------------------------------
class Fetcher:
    """Local paths for archives; URLs through zc.buildout's download utility.

    Use as a context manager: temporary downloads (no download cache) are
    removed on exit.
    """

    def __init__(self, buildout_options, logger=None):
        from zc.buildout.download import Download
        # zc.buildout logs the URLs it fetches: without their credentials
        self.download = Download(buildout_options, hash_name=True,
                                 logger=_Redacting(logger or logging.getLogger("zc.buildout"), {}))
        self.temporary = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for path in self.temporary:
            with suppress(OSError):
                os.unlink(path)
        self.temporary = []

    def path(self, archive):
        if not archive.is_url:
            return archive.source
        path, is_temp = self.download(archive.source)
        if is_temp:
            self.temporary.append(path)
        return path

    def cached(self, path):
        """Whether PATH is a file in the download cache (so a bad copy can be dropped)."""
        cache = self.download.download_cache
        return bool(cache) and os.path.abspath(path).startswith(os.path.abspath(cache) + os.sep)


class _Redacting(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return redact(str(msg)), kwargs


def write_archive(path, archive, out):
    """Write the archive at PATH (checked, decompressed, PREFIX applied) as a tar to OUT.

    Raises :class:`ChecksumMismatch` when the file's bytes do not match the
    archive's checksum (also when a corrupt file fails to decompress first).
    The checksum is compared before the end-of-archive blocks are written:
    after a mismatch, OUT has not seen the end of the archive.
    """
    source = _Source(path, archive)

    def check():  # before the end-of-archive blocks go out
        source.finish()
        source.verify()
    try:
        try:
            tarstream.merge([(source.reader, archive.prefix)], out, before_end=check)
        except Exception as exc:
            # a corrupt download usually fails to decompress before its
            # checksum can be compared: report the mismatch instead
            if archive.digest:
                actual = source.rest_digest()
                if actual is not None and actual != archive.digest:
                    raise ChecksumMismatch(archive, actual) from exc
            raise
    finally:
        source.close()


def passthrough_format(path):
    """Whether ``docker import`` reads the file at PATH as it is (tar, gzip,
    bzip2 or xz, recognized by their leading bytes; zstd is not: older
    engines do not read it)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return False
    if head.startswith(DOCKER_READS):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def passthrough(path, archive, out):
    """Write the file at PATH to OUT unchanged, verifying its checksum.

    A second thread hashes the blocks while they are written (hashlib and
    pipe writes both release the GIL); the last block is written only
    after the digest matched, so a mismatch raises :class:`ChecksumMismatch`
    before the reader has seen the end of the stream.  When the reader
    stops early (``BrokenPipeError``), the rest of the file is hashed so
    that a corrupt download is reported as the mismatch it is.
    """
    if not archive.algorithm:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(BLOCK), b""):
                out.write(block)
        return
    digest = hashlib.new(archive.algorithm)
    blocks = queue.Queue(maxsize=16)

    def hasher():
        for block in iter(blocks.get, None):
            digest.update(block)

    thread = threading.Thread(target=hasher, daemon=True)
    thread.start()
    state = {"open": True}

    def verify():
        state["open"] = False
        blocks.put(None)
        thread.join()
        actual = digest.hexdigest()
        if actual != archive.digest:
            raise ChecksumMismatch(archive, actual)

    try:
        with open(path, "rb") as handle:
            block = handle.read(BLOCK)
            while True:
                following = handle.read(BLOCK)
                if not following:
                    break
                blocks.put(block)
                try:
                    out.write(block)
                except BrokenPipeError:
                    blocks.put(following)
                    for rest in iter(lambda: handle.read(BLOCK), b""):
                        blocks.put(rest)
                    verify()
                    raise
                block = following
            blocks.put(block)
            verify()
            out.write(block)
    finally:
        if state["open"]:
            state["open"] = False
            blocks.put(None)
            thread.join()


def import_archives(engine, archives, opts, option, buildout_options, changes=(), labels=None,
                    logger=None, timeout=DEFAULT_LONG_TIMEOUT):
    """Download ARCHIVES and stream them into one new image; returns its id.

    The first archive goes into ``docker import``; Docker refuses a stream
    that names a path twice, so each further archive is streamed with
    ``docker cp`` into a container (never started, labelled with LABELS)
    created from it, which extracts over what is there (a later archive
    wins, as when unpacking them one after the other), and that container
    is committed.  CHANGES are ``--change`` lines (LABEL, CMD, ...) for the
    final image.

    Any problem with an archive raises a UserError naming the part, OPTION
    and the archive's line; a cached download whose checksum does not match
    is removed from the download cache.  On any failure the images and the
    container made so far are removed (the input of a ``docker import`` that
    fails is spoiled before its end, so the import refuses it and creates
    nothing: see :class:`dockeroo.engine.process.Feed`).
    """
    with Fetcher(buildout_options, logger) as fetcher:
        paths = []
        for archive in archives:
            try:
                paths.append((fetcher.path(archive), archive))
            except UserError as exc:
                raise opts.error(option, str(exc).strip(), archive.line)
            except OSError as exc:  # e.g. a full disk under the download cache
                raise opts.error(option, "cannot download %s: %s"
                                 % (archive.shown, exc.strerror or exc), archive.line)
        made_images, made_container = [], []
        try:
            image = None
            for index, (path, archive) in enumerate(paths):
                if logger:
                    logger.info("Importing %s%s", archive.shown,
                                " into /" + archive.prefix if archive.prefix else "")
                writer = lambda out, p=path, a=archive: write_archive(p, a, out)
                if index == 0:
                    # the final image's CHANGES, or (for the container the next
                    # archives go into) LABELS: an interrupted run's is swept
                    first = changes if len(paths) == 1 else [label_change(labels)] if labels else []
                    args = ["import"] + repeated("--change", [  # Podman: one label a line
                        line for change in first for line in split_change(change)])
                    if len(paths) == 1 and not archive.prefix and passthrough_format(path):
                        image = _import_as_is(engine, args + ["-"], path, archive, opts,
                                              option, fetcher, timeout, logger)
                    if image is None:
                        image = printed_id(_feed(engine, args + ["-"], writer, opts, option,
                                                 archive, fetcher, path, timeout).stdout)
                    made_images.append(image)
                    continue
                if not made_container:
                    name = "dockeroo-import-%s" % os.urandom(6).hex()
                    engine.run(["create", "--name", name] + label_args(labels or {})
                               + [image, "/bin/true"], timeout=timeout)
                    made_container.append(name)
                _feed(engine, ["cp", "-", made_container[0] + ":/"], writer, opts, option,
                      archive, fetcher, path, timeout)
            if made_container:
                image = commit(engine, made_container[0], None, changes, timeout=timeout)
                made_images.append(image)
                remove_container(engine, made_container[0], timeout=timeout)
                made_container.clear()
                drop_committed_base(engine, made_images[0], timeout=timeout)
            return image
        except BaseException:
            for name in made_container:
                remove_container(engine, name, timeout=timeout, check=False)
            for image_id in reversed(made_images):
                remove_image(engine, image_id, timeout=timeout, check=False)
            made_container = []
            raise
        finally:
            for name in made_container:
                remove_container(engine, name, timeout=timeout, check=False)


def _import_as_is(engine, args, path, archive, opts, option, fetcher, timeout, logger):
    """The fast path: the file's bytes straight into ``docker import -``.

    Returns the image id, or None when Docker refused the stream (the
    caller then streams it the slow way, which explains what is wrong).
    """
    try:
        result = _feed(engine, args, lambda out: passthrough(path, archive, out), opts,
                       option, archive, fetcher, path, timeout)
    except DockerError as exc:
        if exc.timed_out:
            raise
        if logger:
            logger.debug("docker import refused %s as it is (%s); streaming it through "
                         "dockeroo", archive.shown, exc)
        return None
    return printed_id(result.stdout)


def _feed(engine, args, writer, opts, option, archive, fetcher, path, timeout):
    try:
        return engine.feed(args, writer, timeout=timeout)
    except ChecksumMismatch as exc:
        if archive.is_url and fetcher.cached(path):
            with suppress(OSError):
                os.unlink(path)
        raise opts.error(option, str(exc), archive.line)
    except (UserError, DockerError):
        raise
    except Exception as exc:  # tar, decompression, unsafe members
        raise opts.error(option, "cannot read the archive: %s" % (exc or type(exc).__name__),
                         archive.line)
