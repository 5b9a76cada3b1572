"""The real Portage builder the Gentoo tests run against.

Gentoo mirrors are out of reach here, but Portage is not: the builder is a
Debian minbase rootfs (``debootstrap``) with Portage installed from its PyPI
sdist, a toy ebuild repository with a hand-made profile (``image/repo``), and
the contract ``docker.gentoo-build`` relies on: a target root
``/usr/<processor>-dockeroo-linux-gnu/`` with its own ``etc/portage`` and a
``chroot-<arch>-docker`` script (``image/install.sh`` makes all of it).

Both images are cached by a content hash of their inputs:

* ``dockeroo-test/debian-rootfs:<hash>``: the debootstrap rootfs (~45 s);
* ``dockeroo-test/portage-builder:<hash>``: the builder (~15 s more).

A warm run finds both and builds nothing.  Run this file to make (or find)
the builder by hand: ``python tests/gentoo/builder.py``.
"""

import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE_DIR = os.path.join(HERE, "image")

PORTAGE_VERSION = "3.0.81.3"  # the last release before 3.0.82 changed portage.dep.Atom
PORTAGE_SDIST_SHA256 = "781eb2caee4c29b1d858c195a8b44efd3c47ba5912a43ac9103cc3b19bf418eb"

ROOTFS = {
    "suite": "bookworm",
    "variant": "minbase",
    # python3 for Portage, bzip2/zstd for binary packages, the rest for disk images
    "include": ["python3", "bzip2", "zstd", "fdisk", "e2fsprogs", "mount"],
    "mirror": "http://deb.debian.org/debian",
    # dropped from the rootfs before it is imported
    "trim": ["var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "usr/share/doc/*",
             "usr/share/man/*", "usr/share/locale/*", "usr/share/info/*"],
}

ROOTFS_REPO = "dockeroo-test/debian-rootfs"
BUILDER_REPO = "dockeroo-test/portage-builder"
LOCK = os.path.join(tempfile.gettempdir(), "dockeroo-test-portage-builder.lock")


def _digest(*values):
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def rootfs_tag():
    return "%s:%s" % (ROOTFS_REPO, _digest(ROOTFS))


def _image_files():
    for root, dirs, files in os.walk(IMAGE_DIR):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            yield os.path.relpath(full, IMAGE_DIR), full


def builder_tag():
    h = hashlib.sha256()
    h.update(json.dumps([rootfs_tag(), PORTAGE_VERSION, PORTAGE_SDIST_SHA256]).encode())
    for rel, full in _image_files():
        with open(full, "rb") as handle:
            data = handle.read()
        h.update(("%s %o %d\n" % (rel, os.stat(full).st_mode & 0o111, len(data))).encode())
        h.update(data)
    return "%s:%s" % (BUILDER_REPO, h.hexdigest()[:16])


def _image_exists(tag):
    return subprocess.run(["docker", "image", "inspect", tag], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _check(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (exit %s):\n%s%s" % (
            " ".join(cmd[:4]), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc.stdout


def make_rootfs(log=print):
    """The debootstrap rootfs image (made once, then found by its tag)."""
    tag = rootfs_tag()
    if _image_exists(tag):
        return tag
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is needed to make the test builder "
                           "(apt-get install debootstrap)")
    work = tempfile.mkdtemp(prefix="dockeroo-rootfs-", dir="/var/tmp")
    try:
        root = os.path.join(work, "rootfs")
        started = time.monotonic()
        _check(["debootstrap", "--variant=" + ROOTFS["variant"],
                "--include=" + ",".join(ROOTFS["include"]), ROOTFS["suite"], root,
                ROOTFS["mirror"]])
        for pattern in ROOTFS["trim"]:
            for path in glob.glob(os.path.join(root, pattern)):
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        tar = subprocess.Popen(["tar", "-C", root, "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        imported = subprocess.run(["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", tag],
                                  stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise RuntimeError("importing the rootfs failed: " + imported.stderr)
        log("made %s in %.0f s" % (tag, time.monotonic() - started))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def download_portage(directory):
    """The Portage sdist from PyPI (pip, checked against its pinned sha256)."""
    _check([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", "portage", "portage==" + PORTAGE_VERSION, "-d", directory])
    path = os.path.join(directory, "portage-%s.tar.gz" % PORTAGE_VERSION)
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != PORTAGE_SDIST_SHA256:
        raise RuntimeError("portage sdist sha256 %s, expected %s" % (digest, PORTAGE_SDIST_SHA256))
    return path


def make_builder(log=print):
    """The tag of the test builder image; made only when missing."""
    tag = builder_tag()
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one maker at a time across processes
        if _image_exists(tag):
            return tag
        started = time.monotonic()
        rootfs = make_rootfs(log)
        context = tempfile.mkdtemp(prefix="dockeroo-builder-")
        try:
            shutil.copytree(IMAGE_DIR, context, dirs_exist_ok=True)
            download_portage(context)
            env = dict(os.environ, DOCKER_BUILDKIT="0")
            _check(["docker", "build", "--rm", "--force-rm", "--tag", tag,
                    "--build-arg", "ROOTFS=" + rootfs,
                    "--build-arg", "PORTAGE_VERSION=" + PORTAGE_VERSION,
                    "--build-arg", "BUILDER_HASH=" + tag.rsplit(":", 1)[1],
                    context], env=env)
        finally:
            shutil.rmtree(context, ignore_errors=True)
        log("made %s in %.0f s" % (tag, time.monotonic() - started))
        _drop_older_builders(tag, log)
    return tag


def _drop_older_builders(tag, log):
    """Remove builder images made from older inputs (best effort: in use -> kept)."""
    listing = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
         "--filter", "label=io.dockeroo.test.builder", BUILDER_REPO],
        capture_output=True, text=True).stdout.split()
    for old in listing:
        if old != tag and old.startswith(BUILDER_REPO + ":"):
            if subprocess.run(["docker", "image", "rm", old], capture_output=True).returncode == 0:
                log("removed the outdated %s" % old)


if __name__ == "__main__":
    print(make_builder())
