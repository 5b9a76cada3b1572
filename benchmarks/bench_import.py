"""Archive import: a ~500 MB gzip'd root filesystem archive into an image.

The archive (made once, reused): 20,000 small text files and 40 large
ones (hex text: compresses to about half) plus 20 incompressible files of
10 MiB, about 800 MB unpacked, ~500 MB as ``.tar.gz``.

ours: :func:`dockeroo.recipes.common.archives.import_archives`, the step
``docker.gentoo-bootstrap`` runs, with a sha256 checksum on the line and
the recipe's ``--change LABEL``.  A single archive without a prefix takes
the fast path (the file's bytes go to ``docker import -`` as they are,
hashed by a second thread on the way).  Reference: ``docker import FILE``.
Images are removed between runs (untimed).  Target: ratio <= 1.11
(throughput >= 0.9x).

With ``DOCKEROO_BENCH_SLOW=1`` the slow path (re-streamed through
``tarfile``, as for several archives or a prefix) is timed once too.
"""

import hashlib
import os
import shutil
import subprocess

import harness
from dockeroo.recipes.common import archives
from dockeroo.runtime.container import label_change
from dockeroo.engine.docker import DockerEngine
from dockeroo.model.options import Options


def make_archive():
    path = os.path.join(harness.workdir(), "rootfs-500m.tar.gz")
    if os.path.exists(path):
        return path
    tree = os.path.join(harness.workdir(), "rootfs-500m")
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    for i in range(20000):
        d = os.path.join(tree, "usr", "share", "d%03d" % (i // 500))
        if i % 500 == 0:
            os.makedirs(d)
        with open(os.path.join(d, "f%05d.txt" % i), "w") as handle:
            handle.write(os.urandom(2500 + (i % 11) * 300).hex())
    os.makedirs(os.path.join(tree, "usr", "lib"))
    for i in range(40):
        with open(os.path.join(tree, "usr", "lib", "text%02d.dat" % i), "w") as handle:
            for _ in range(5):
                handle.write(os.urandom(1 << 20).hex())
    os.makedirs(os.path.join(tree, "opt"))
    for i in range(20):
        with open(os.path.join(tree, "opt", "blob%02d.bin" % i), "wb") as handle:
            for _ in range(10):
                handle.write(os.urandom(1 << 20))
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        tar = subprocess.Popen(["tar", "-C", tree, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["gzip", "-6"], stdin=tar.stdout, stdout=out, check=True)
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar failed")
    os.replace(tmp, path)
    shutil.rmtree(tree)
    return path


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(runs=5, warmup=1):
    path = make_archive()
    prefix = harness.unique("dkbimport")
    engine = DockerEngine()
    line = "%s sha256:%s" % (path, sha256(path))
    opts = Options("bootstrap", {"archives": line})
    items = archives.parse_archives(opts, "archives", harness.workdir())
    change = label_change({"io.dockeroo.part": prefix})
    made = []

    def ours():
        made.append(archives.import_archives(engine, items, opts, "archives",
                                             {"directory": harness.workdir()},
                                             changes=[change]))

    def reference():
        made.append(harness.docker("import", "--change", change, path, prefix + ":ref").strip())

    def clean():
        if made:
            harness.docker("image", "rm", "-f", *made, check=False)
            del made[:]
        harness.settle()

    detail = []
    try:
        a, b = harness.compare(ours, reference, runs, warmup, setup=clean)
        if os.environ.get("DOCKEROO_BENCH_SLOW"):
            original = archives.passthrough_format
            archives.passthrough_format = lambda p: False
            try:
                clean()
                seconds = harness.timed(lambda: made.append(archives.import_archives(
                    engine, items, opts, "archives", {}, changes=[change])))
            finally:
                archives.passthrough_format = original
            detail.append("slow path (re-streamed through tarfile): %.1f s" % seconds)
        clean()
    finally:
        clean()
        harness.remove_prefix(prefix)
    size = os.path.getsize(path) / 2 ** 20
    ratio = harness.paired_ratio(a, b)
    detail.insert(0, "%.0f MiB .tar.gz: %.0f MiB/s vs %.0f MiB/s"
                  % (size, size / harness.median(a), size / harness.median(b)))
    return harness.Row(name="archive import ~500 MB .tar.gz", ours=harness.median(a),
                       reference=harness.median(b), reference_name="docker import FILE",
                       target="<= 1.11 (>= 0.9x throughput)", met=ratio <= 1.11, paired=ratio,
                       detail="; ".join(detail), samples={"ours": a, "reference": b})
