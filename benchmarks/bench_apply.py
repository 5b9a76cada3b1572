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
    buildout = harness.buildout_executable()
    prefix = harness.unique("dkbapply")
    base = os.path.join(harness.workdir(), prefix)
    ours_dir, compose_dir = os.path.join(base, "ours"), os.path.join(base, "compose")
    os.makedirs(ours_dir)
    os.makedirs(compose_dir)
    cfg = os.path.join(ours_dir, "buildout.cfg")
    with open(os.path.join(compose_dir, "docker-compose.yml"), "w") as handle:
        handle.write(bench_noop.compose_yml(prefix, image))

    def configure(text):
        with open(cfg, "w") as handle:
            handle.write(text)

    def up_ours():
        configure(bench_noop.buildout_cfg(prefix, image))
        harness.run_buildout(buildout, ours_dir)

    def down_ours():
        configure("[buildout]\nparts =\n")
        harness.run_buildout(buildout, ours_dir)

    def up_compose():
        harness.sh(compose, "-p", prefix, "up", "-d", cwd=compose_dir)

    def down_compose():
        harness.sh(compose, "-p", prefix, "down", "-v", "-t", "1", cwd=compose_dir)

    times = {"ours": [], "compose": [], "ours-down": [], "compose-down": []}
    try:
        for index in range(warmup + runs):
            for name, fn in (("ours", up_ours), ("compose", up_compose),
                             ("ours-down", down_ours), ("compose-down", down_compose)):
                harness.settle()
                seconds = harness.timed(fn)
                if index >= warmup:
                    times[name].append(seconds)
        left = [n for n in harness.docker("ps", "-a", "--format", "{{.Names}}").split()
                if n.startswith(prefix)]
    finally:
        configure("[buildout]\nparts =\n")
        harness.sh(buildout, "-N", cwd=ours_dir, check=False)
        harness.sh(compose, "-p", prefix, "down", "-v", "-t", "1", cwd=compose_dir, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    up = harness.paired_ratio(times["ours"], times["compose"])
    down = harness.paired_ratio(times["ours-down"], times["compose-down"])
    EXTRA_ROWS[:] = [harness.Row(
        name="teardown (10 containers, 5 volumes, 5 networks)",
        ours=harness.median(times["ours-down"]), reference=harness.median(times["compose-down"]),
        reference_name="docker-compose down -v", target="<= 1.0", met=down <= 1.0 and not left,
        paired=down, detail="containers left: %d" % len(left),
        samples={"ours": times["ours-down"], "reference": times["compose-down"]})]
    return harness.Row(
        name="first apply (10 containers, 5 volumes, 5 networks)",
        ours=harness.median(times["ours"]), reference=harness.median(times["compose"]),
        reference_name="docker-compose up -d", target="<= 1.0 (moonshot 0.8)", met=up <= 1.0,
        paired=up, detail="teardown ratio %.2f" % down,
        samples={"ours": times["ours"], "reference": times["compose"]})
