"""Benchmark harness: every figure is a ratio against a raw reference run in the same process.

Each benchmark times dockeroo doing some work and a reference (the raw
``docker`` CLI, ``sha256sum``, docker-compose, ...) doing the same work,
alternating the two, ``runs`` times after ``warmup`` runs, and reports the
medians and their ratio.
"""

import ipaddress
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field

#: where the benchmarks' networks go (DOCKEROO_BENCH_NET: a network of /24s
#: that nothing else on the machine uses, e.g. while a test lane runs)
BENCH_NET = os.environ.get("DOCKEROO_BENCH_NET", "")


def subnets(count, default):
    """COUNT consecutive /24 networks (as text; smaller ones when the pool has
    fewer than COUNT /24s) at a random place in $DOCKEROO_BENCH_NET, or in
    DEFAULT when it is not set."""
    network, prefix = ipaddress.ip_network(BENCH_NET or default), 24
    while 2 ** (prefix - network.prefixlen) < count:
        prefix += 1
    pool = list(network.subnets(new_prefix=prefix))
    start = random.randrange(0, len(pool) - count + 1)
    return [str(net) for net in pool[start:start + count]]

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
    #: median of the per-run ratios (each run of ours against the reference
    #: run right after it: load changes on a shared machine cancel out)
    paired: float = None
    #: whether ours is measured net of a do-nothing buildout ("null" samples)
    net: bool = False

    @property
    def best(self):
        """The ratio of the fastest runs (load from other processes only ever
        adds time, so the best runs are the least disturbed ones)."""
        ours = self.samples.get("ours")
        ref = self.samples.get("reference") or self.samples.get("compose")
        if not ours or not ref:
            return None
        base = min(self.samples["null"]) if self.net and self.samples.get("null") else 0.0
        return (min(ours) - base) / min(ref)

    @property
    def ratio(self):
        if self.paired is not None:
            return self.paired
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


def compare_many(sides, runs=5, warmup=1):
    """Alternate several SIDES: a list of (name, fn, setup or None).

    Each timed call of ``fn`` is preceded by its own (untimed) ``setup``.
    Returns {name: [seconds, ...]}.
    """
    times = {name: [] for name, _fn, _setup in sides}
    for index in range(warmup + runs):
        for name, fn, setup in sides:
            if setup:
                setup()
            seconds = timed(fn)
            if index >= warmup:
                times[name].append(seconds)
    return times


def settle():
    """Flush dirty pages (untimed, before a timed run): a run must not pay
    for the previous run's writes."""
    os.sync()


def median(values):
    return statistics.median(values)


def paired_ratio(ours, reference, baseline=None):
    """Median of the run-by-run ratios ours[i] / reference[i]; with BASELINE
    (times of a do-nothing run alternated with them), of
    (ours[i] - baseline[i]) / reference[i]."""
    if baseline is None:
        baseline = [0.0] * len(ours)
    return statistics.median((a - n) / b for a, n, b in zip(ours, baseline, reference))


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


def folders(prefix, *names):
    """(base, [folder per NAME]): new folders under the bench directory for PREFIX."""
    base = os.path.join(workdir(), prefix)
    paths = [os.path.join(base, name) for name in names]
    for path in paths:
        os.makedirs(path)
    return base, paths


def run_buildout(buildout, directory):
    """Run BUILDOUT -N in DIRECTORY; a failure raises with its output."""
    result = sh(buildout, "-N", cwd=directory, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stdout + result.stderr)


def buildout_in(buildout, directory):
    """A callable running :func:`run_buildout` (for :func:`compare_many`)."""
    return lambda: run_buildout(buildout, directory)


def buildout_executable():
    """``bin/buildout`` of a minimal virtualenv (zc.buildout and dockeroo only).

    zc.buildout hashes every file of a recipe's "develop" location on each
    run to detect recipe changes, and it treats a virtualenv's
    site-packages as such a location: every buildout run reads all of
    site-packages (the development venv also holds Sphinx, pytest, ...;
    about 0.2 s here).  The benchmarks run buildout the way a user of
    dockeroo does, from a venv with zc.buildout and dockeroo only (made
    once under the bench directory, dockeroo installed in editable mode).
    Falls back to this venv's buildout when it cannot be made.  One per
    checkout (the bench directory is shared: another checkout's venv would
    run that checkout's dockeroo).
    """
    import hashlib
    venv = os.path.join(workdir(), "venv-min-" + hashlib.sha256(ROOT.encode()).hexdigest()[:12])
    exe = os.path.join(venv, "bin", "buildout")
    # byte-compiled as a wheel install is (pip compiles what it installs): with
    # PYTHONDONTWRITEBYTECODE set, an editable checkout would otherwise be
    # compiled from source by every buildout run (about 40 ms here)
    sh(sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "src"), check=False)
    if os.path.exists(exe):
        return exe
    try:
        import importlib.metadata
        version = importlib.metadata.version("zc.buildout")
        shutil.rmtree(venv, ignore_errors=True)
        sh(sys.executable, "-m", "venv", venv)
        sh(os.path.join(venv, "bin", "pip"), "install", "-q", "zc.buildout==" + version, "-e", ROOT)
    except (subprocess.CalledProcessError, OSError, ImportError) as exc:
        print("  (no minimal venv: %s; using %s)" % (getattr(exc, "stderr", exc), BUILDOUT))
        shutil.rmtree(venv, ignore_errors=True)
        return BUILDOUT
    return exe


def site_packages_size(python):
    out = sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    return int(sh("du", "-sb", out).stdout.split()[0])


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
    from support.busybox import BUSYBOX, busybox_rootfs_tar  # noqa: E402
    import hashlib
    with open(BUSYBOX, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:12]
    ref = "dockeroo-test/busybox:%s" % digest
    if sh("docker", "image", "inspect", ref, check=False).returncode != 0:
        path = os.path.join(workdir(), "rootfs.tar")
        busybox_rootfs_tar(path)
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
              "ratio", "best runs", "target", "met")
    body = [(r.name, "%.3f" % r.ours, r.reference_name, "%.3f" % r.reference,
             "%.2f" % r.ratio, "%.2f" % r.best if r.best is not None else "",
             r.target, "yes" if r.met else "NO") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    sep = " ".join("=" * w for w in widths)
    lines = [sep, " ".join(h.ljust(w) for h, w in zip(header, widths)), sep]
    for row in body:
        lines.append(" ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    lines.append(sep)
    return "\n".join(lines)
