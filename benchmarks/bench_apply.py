"""First apply and teardown of a Compose-sized project vs ``docker-compose``.

The workload is the no-op benchmark's (``bench_noop``): 5 networks, 5
volumes and 10 containers, each on one network with one volume.  Each round
times, one after the other on the same machine:

- ours: ``bin/buildout -N`` creating everything from nothing (first apply);
- compose: ``docker-compose up -d`` of the same project from nothing;
- ours teardown: ``bin/buildout -N`` with ``parts =`` (everything removed);
- compose teardown: ``docker-compose down -v``.

Ratios are medians of round-by-round ratios.  Targets: first apply <= 1.0x
Compose (moonshot 0.8x), teardown <= 1.0x.  Two rows are returned; the
module's ``run`` returns the first-apply row and adds the teardown row to
``EXTRA_ROWS`` for ``run.py``.
"""

import os
import shutil

import bench_noop
import harness

EXTRA_ROWS = []


def run(runs=5, warmup=1):
    compose = shutil.which("docker-compose")
    if not compose:
        raise RuntimeError("docker-compose is not installed (apt-get install docker-compose)")
    image = harness.base_image()
    prefix = harness.unique("dkbapply")
    compose_dir = os.path.join(harness.workdir(), prefix + "-compose")
    os.makedirs(compose_dir)
    with open(os.path.join(compose_dir, "docker-compose.yml"), "w") as handle:
        handle.write(bench_noop.compose_yml(prefix, image))

    def up_compose():
        harness.sh(compose, "-p", prefix, "up", "-d", cwd=compose_dir)

    def down_compose(check=True):
        harness.sh(compose, "-p", prefix, "down", "-v", "-t", "1", cwd=compose_dir, check=check)

    try:
        times, left = rounds(prefix, image, up_compose, down_compose, runs, warmup)
    finally:
        down_compose(check=False)
        shutil.rmtree(compose_dir, ignore_errors=True)
    up, EXTRA_ROWS[:] = ratio_rows(times, left, "", "docker-compose up -d",
                                   "docker-compose down -v", ("<= 1.0 (moonshot 0.8)", 1.0),
                                   ("<= 1.0", 1.0))
    return up


def ratio_rows(times, left, suffix, up_name, down_name, up_target, down_target):
    """(first-apply row, [teardown row]) of :func:`rounds`' TIMES; SUFFIX ends
    the names, targets are (text, highest ratio)."""
    up = harness.paired_ratio(times["ours"], times["reference"])
    down = harness.paired_ratio(times["ours-down"], times["reference-down"])
    up_net = down_net = ""
    if times.get("null"):  # buildout's own work: the same 20 parts, a do-nothing recipe
        up_net = "; net of buildout's own %.3f s: ratio %.2f" % (
            harness.median(times["null"]),
            harness.paired_ratio(times["ours"], times["reference"], times["null"]))
        down_net = "; net of buildout's own %.3f s: ratio %.2f" % (
            harness.median(times["null-down"]),
            harness.paired_ratio(times["ours-down"], times["reference-down"], times["null-down"]))
    down_row = harness.Row(
        name="teardown (10 containers, 5 volumes, 5 networks)" + suffix,
        ours=harness.median(times["ours-down"]), reference=harness.median(times["reference-down"]),
        reference_name=down_name, target=down_target[0],
        met=down <= down_target[1] and not left, paired=down,
        detail="containers left: %d%s" % (len(left), down_net),
        samples={"ours": times["ours-down"], "reference": times["reference-down"]})
    return harness.Row(
        name="first apply (10 containers, 5 volumes, 5 networks)" + suffix,
        ours=harness.median(times["ours"]), reference=harness.median(times["reference"]),
        reference_name=up_name, target=up_target[0], met=up <= up_target[1],
        paired=up, detail="teardown ratio %.2f%s" % (down, up_net),
        samples={"ours": times["ours"], "reference": times["reference"]}), [down_row]

def rounds(prefix, image, up_reference, down_reference, runs, warmup, null=False):
    """Time, in each round, the 20-part first apply of bench_noop's workload
    (objects named PREFIX-...), UP_REFERENCE, the buildout's teardown and
    DOWN_REFERENCE; with NULL also the apply and teardown of the same 20
    parts with buildout's do-nothing recipe (``zc.buildout:debug``): what
    buildout itself costs, sides "null" and "null-down".
    Returns ({side: [seconds]}, the names of the PREFIX containers left at
    the end); whatever the buildout made is removed."""
    buildout = harness.buildout_executable()
    ours_dir = os.path.join(harness.workdir(), prefix)
    os.makedirs(ours_dir)
    cfg = os.path.join(ours_dir, "buildout.cfg")

    def configure(text):
        with open(cfg, "w") as handle:
            handle.write(text)

    def up_ours():
        configure(bench_noop.buildout_cfg(prefix, image))
        harness.run_buildout(buildout, ours_dir)

    def down_ours():
        configure("[buildout]\nparts =\n")
        harness.run_buildout(buildout, ours_dir)

    null_dir = os.path.join(ours_dir, "null")
    os.makedirs(null_dir)

    def null_side(text):
        def side():
            with open(os.path.join(null_dir, "buildout.cfg"), "w") as handle:
                handle.write(text)
            harness.run_buildout(buildout, null_dir)
        return side

    sides = (("ours", up_ours), ("reference", up_reference),
             ("ours-down", down_ours), ("reference-down", down_reference)) + ((
        ("null", null_side(bench_noop.buildout_cfg(prefix, image, "zc.buildout:debug"))),
        ("null-down", null_side("[buildout]\nparts =\n"))) if null else ())
    times = {name: [] for name, _fn in sides}
    try:
        for index in range(warmup + runs):
            for name, fn in sides:
                harness.settle()
                seconds = harness.timed(fn)
                if index >= warmup:
                    times[name].append(seconds)
        left = [n for n in harness.docker("ps", "-a", "--format", "{{.Names}}").split()
                if n.startswith(prefix)]
    finally:
        configure("[buildout]\nparts =\n")
        harness.sh(buildout, "-N", cwd=ours_dir, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(ours_dir, ignore_errors=True)
    return times, left
