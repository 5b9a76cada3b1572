"""Benchmark harness: every figure is a ratio against a raw reference run in the same process.

Each benchmark times dockeroo doing some work and a reference (the raw
``docker`` CLI, ``sha256sum``, docker-compose, ...) doing the same work,
alternating the two, ``runs`` times after ``warmup`` runs, and reports the
medians and their ratio.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILDOUT = os.path.join(os.path.dirname(sys.executable), "buildout")


@dataclass
class Row:
    name: str
    ours: float  # median seconds
    reference: float  # median seconds
    reference_name: str
    target: str
    met: bool
    detail: str = ""
    samples: dict = field(default_factory=dict)

    @property
    def ratio(self):
        return self.ours / self.reference if self.reference else float("inf")


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(ours, reference, runs=5, warmup=1, setup=None):
    """Alternate OURS and REFERENCE; return (ours_times, reference_times)."""
    for _ in range(warmup):
        if setup:
            setup()
        ours()
        if setup:
            setup()
        reference()
    a, b = [], []
    for _ in range(runs):
        if setup:
            setup()
        a.append(timed(ours))
        if setup:
            setup()
        b.append(timed(reference))
    return a, b


def median(values):
    return statistics.median(values)


def sh(*args, check=True, **kwargs):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kwargs)


def docker(*args, check=True):
    return sh("docker", *args, check=check).stdout


def unique(prefix="dkb"):
    return "%s%s" % (prefix, uuid.uuid4().hex[:6])


def workdir():
    base = os.environ.get("DOCKEROO_BENCH_DIR") or os.path.join(tempfile.gettempdir(), "dockeroo-bench")
    os.makedirs(base, exist_ok=True)
    return base


def remove_prefix(prefix):
    names = docker("ps", "-a", "--format", "{{.Names}}").split()
    mine = [n for n in names if n.startswith(prefix)]
    if mine:
        docker("rm", "-f", "-v", *mine, check=False)
    for kind in ("network", "volume"):
        fmt = "{{.Name}}"
        mine = [n for n in docker(kind, "ls", "--format", fmt).split() if n.startswith(prefix)]
        if mine:
            docker(kind, "rm", *mine, check=False)
    imgs = [n for n in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").split()
            if n.startswith(prefix)]
    if imgs:
        docker("image", "rm", "-f", *imgs, check=False)


def base_image():
    """The busybox-static image the tests use (built here if missing)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import conftest  # noqa: E402
    import hashlib
    with open(conftest.BUSYBOX, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:12]
    ref = "dockeroo-test/busybox:%s" % digest
    if sh("docker", "image", "inspect", ref, check=False).returncode != 0:
        path = os.path.join(workdir(), "rootfs.tar")
        conftest._busybox_rootfs_tar(path)
        docker("import", "--change", 'CMD ["/bin/sh"]', path, ref)
    return ref


def machine_description():
    info = json.loads(docker("info", "--format", "{{json .}}"))
    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s CPUs (%s), %.0f GiB RAM, Docker Engine %s (%s, %s), Python %s" % (
        info.get("NCPU"), cpu or "unknown CPU", info.get("MemTotal", 0) / 2 ** 30,
        info.get("ServerVersion"), info.get("Driver"), info.get("OperatingSystem"),
        sys.version.split()[0])


def make_tree(root, small_files, small_size, large_files=0, large_size=0, links=False):
    """A tree of SMALL_FILES random small files (+ large ones, symlinks, hard links)."""
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    per_dir = 500
    for i in range(small_files):
        d = os.path.join(root, "d%03d" % (i // per_dir))
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as handle:
            handle.write(os.urandom(small_size + (i % 7) * 97))
    for i in range(large_files):
        with open(os.path.join(root, "large%d.bin" % i), "wb") as handle:
            for _ in range(large_size >> 20):
                handle.write(os.urandom(1 << 20))
    if links:
        os.makedirs(os.path.join(root, "links"), exist_ok=True)
        for i in range(100):
            os.symlink("../d000/f%05d" % i, os.path.join(root, "links", "sym%d" % i))
            os.link(os.path.join(root, "d000", "f%05d" % i), os.path.join(root, "links", "hard%d" % i))
    open(os.path.join(root, ".complete"), "w").close()
    return root


def rst_table(rows):
    header = ("Benchmark", "dockeroo (median s)", "reference", "reference (median s)",
              "ratio", "target", "met")
    body = [(r.name, "%.3f" % r.ours, r.reference_name, "%.3f" % r.reference,
             "%.2f" % r.ratio, r.target, "yes" if r.met else "NO") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    sep = " ".join("=" * w for w in widths)
    lines = [sep, " ".join(h.ljust(w) for h, w in zip(header, widths)), sep]
    for row in body:
        lines.append(" ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    lines.append(sep)
    return "\n".join(lines)
