"""Image archives as ``docker save`` writes them: read, verify, stream, rewrite.

Shared by docker.save, docker.load and docker.manifest.  An image archive
is the tar ``docker save`` writes (``manifest.json`` naming each image's
config, tags and layers; Docker 25 and later: inside an OCI layout), plain,
gzip- or zstd-compressed.  :func:`read_index` reads one to the end with its
checksum and says which images it holds, refusing a truncated, foreign or
tampered file before the engine loads anything; :func:`stream` then writes
it to ``docker load``, its last block held back until the bytes match again.
"""

import gzip
import hashlib
import json
import os
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from typing import Optional, Tuple

from dockeroo.recipes.common.archives import (BLOCK, ZSTD_MAGIC, Archive, ChecksumMismatch,
                                              _Source, passthrough, zstd_process, zstd_wait)

#: compression -> usual file suffix
COMPRESSIONS = {"none": ".tar", "gzip": ".tar.gz", "zstd": ".tar.zst"}
#: members kept in memory while an archive is read (configs, manifest.json)
SMALL = 8 << 20


class BadArchive(ValueError):
    """The file is not a complete image archive."""


def compression_for(path):
    """The compression a file name asks for (``.gz``/``.tgz``: gzip, ``.zst``: zstd)."""
    name = path.lower()
    if name.endswith((".gz", ".tgz")):
        return "gzip"
    if name.endswith((".zst", ".tzst")):
        return "zstd"
    return "none"


def compression_of(path):
    """The compression of the file at PATH, from its leading bytes."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == ZSTD_MAGIC:
        return "zstd"
    return "none"


@dataclass(frozen=True)
class ArchivedImage:
    """One image of an archive."""

    id: str                  # sha256:<hex of the config>
    tags: Tuple[str, ...]    # as manifest.json names them
    layers: Tuple[str, ...]  # RootFS diff ids, as ``docker inspect`` shows them
    os: str
    architecture: str
    variant: Optional[str]


@dataclass(frozen=True)
class Index:
    images: Tuple[ArchivedImage, ...]
    #: ALGORITHM:HEX of the file's bytes
    digest: str


def file_digest(path, algorithm="sha256"):
    """``ALGORITHM:HEX`` of the file at PATH."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return "%s:%s" % (algorithm, digest.hexdigest())


def _archive(path, algorithm, expected):
    return Archive(source=path, is_url=False, prefix="", algorithm=algorithm,
                   digest=expected, line=path)


def read_index(path, algorithm="sha256", expected=None):
    """Read the image archive at PATH to its end: its :class:`Index`.

    EXPECTED (hex) is the checksum the file must have (ALGORITHM);
    :class:`ChecksumMismatch` when it has not, :class:`BadArchive` when the
    file is not a complete image archive.
    """
    source = _Source(path, _archive(path, algorithm, expected))
    small, names = {}, set()
    try:
        try:
            with tarfile.open(fileobj=source.reader, mode="r|*") as tar:
                for member in tar:
                    name = posixpath.normpath(member.name).lstrip("/")
                    names.add(name)
                    if member.isreg() and member.size <= SMALL:
                        small[name] = tar.extractfile(member).read()
            source.finish()
        except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as exc:
            if expected:
                actual = source.rest_digest()
                if actual is not None and actual != expected:
                    raise ChecksumMismatch(source.archive, actual) from exc
            raise BadArchive("not a complete image archive (%s)" % (exc or type(exc).__name__))
        if expected:
            source.verify()
        digest = "%s:%s" % (algorithm, source.actual_digest())
    finally:
        source.close()
    return Index(images=_images(small, names), digest=digest)


def _images(small, names):
    try:
        manifest = json.loads(small["manifest.json"])
    except KeyError:
        raise BadArchive("not an image archive: it has no manifest.json")
    except ValueError as exc:
        raise BadArchive("manifest.json is not JSON (%s)" % exc)
    if not isinstance(manifest, list):
        raise BadArchive("manifest.json is not a list of images")
    images = []
    for entry in manifest:
        try:
            config = small[posixpath.normpath(entry["Config"])]
            layers = [posixpath.normpath(layer) for layer in entry.get("Layers") or []]
            parsed = json.loads(config)
        except (KeyError, TypeError, AttributeError, ValueError):
            raise BadArchive("manifest.json names a config that is not in the archive")
        missing = [layer for layer in layers if layer not in names]
        if missing:
            raise BadArchive("the layer %s is not in the archive" % missing[0])
        images.append(ArchivedImage(
            id="sha256:" + hashlib.sha256(config).hexdigest(),
            tags=tuple(entry.get("RepoTags") or ()),
            layers=tuple((parsed.get("rootfs") or {}).get("diff_ids") or ()),
            os=parsed.get("os") or "", architecture=parsed.get("architecture") or "",
            variant=parsed.get("variant") or None))
    return tuple(images)


def stream(path, digest, out):
    """Write the file at PATH to OUT (``docker load``'s stdin), decompressing
    zstd (which Docker 20.10 does not read); DIGEST (``ALGORITHM:HEX``, from
    :func:`read_index`) is verified before OUT sees the last block."""
    algorithm, _, hexdigest = digest.partition(":")
    archive = _archive(path, algorithm, hexdigest)
    if compression_of(path) != "zstd":
        passthrough(path, archive, out)
        return
    source = _Source(path, archive)
    try:
        block = source.reader.read(BLOCK)
        while True:
            following = source.reader.read(BLOCK)
            if not following:
                break
            out.write(block)
            block = following
        source.finish()
        source.verify()
        out.write(block)
    finally:
        source.close()


# -- writing -----------------------------------------------------------------------
class Compressor:
    """A binary file object compressing into the open file OUT (none, gzip, zstd)."""

    def __init__(self, out, compression):
        self.out, self.proc, self.gzip = out, None, None
        if compression == "gzip":
            # no name and no time in the header: the same images give the same bytes
            self.gzip = gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0)
            self.sink = self.gzip
        elif compression == "zstd":
            self.proc = zstd_process(["-T0"], out, OSError(
                "the zstd command is needed to write zstd (apt-get install zstd)"))
            self.sink = self.proc.stdin
        else:
            self.sink = out

    def write(self, data):
        self.sink.write(data)

    def close(self):
        if self.gzip is not None:
            self.gzip.close()
        if self.proc is not None:
            self.proc.stdin.close()
            zstd_wait(self.proc, OSError)

    def abort(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def copy_into(src, out, compression):
    """Copy the binary stream SRC into the open file OUT, compressed."""
    sink = Compressor(out, compression)
    try:
        for block in iter(lambda: src.read(BLOCK), b""):
            sink.write(block)
    except BaseException:
        sink.abort()
        raise
    sink.close()


def retag_platform(src, out, image_id, tag, platform):
    """Copy the ``docker save`` stream SRC of one image (IMAGE_ID) to OUT
    with its config's os/architecture/variant set to PLATFORM (os, arch,
    variant) and TAG as its only tag: the image of the corrected config.
    Returns the new image id (the layers are the same)."""
    old_name = image_id.split(":", 1)[-1] + ".json"
    new = {}
    with tarfile.open(fileobj=src, mode="r|") as tar, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dest:
        for member in tar:
            name = posixpath.normpath(member.name)
            data = tar.extractfile(member) if member.isreg() else None
            if name == "repositories":
                continue
            if name in (old_name, "blobs/sha256/" + old_name[:-5]):
                config = json.loads(data.read())
                config["os"], config["architecture"] = platform[0], platform[1]
                config.pop("variant", None)
                if platform[2]:
                    config["variant"] = platform[2]
                body = json.dumps(config, separators=(",", ":")).encode()
                new["id"] = hashlib.sha256(body).hexdigest()
                member.name = new["id"] + ".json" if name == old_name else \
                    "blobs/sha256/" + new["id"]
                member.size = len(body)
                dest.addfile(member, _bytes(body))
                continue
            if name == "manifest.json":
                if "id" not in new:
                    raise BadArchive("docker save wrote manifest.json before the config")
                manifest = json.loads(data.read())
                for entry in manifest:
                    entry["Config"] = new["id"] + ".json" if entry["Config"].endswith(
                        ".json") else "blobs/sha256/" + new["id"]
                    entry["RepoTags"] = [tag]
                body = json.dumps(manifest).encode()
                member.size = len(body)
                dest.addfile(member, _bytes(body))
                continue
            dest.addfile(member, data)
    if "id" not in new:
        raise BadArchive("docker save wrote no config for %s" % image_id)
    return "sha256:" + new["id"]


def _bytes(body):
    import io
    return io.BytesIO(body)


def remove_quietly(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
