"""First apply and teardown of the 20-part buildout vs the raw docker CLI, as parallel as it goes.

The workload is the no-op benchmark's (``bench_noop``): 5 networks, 5
volumes and 10 containers, each on one network with one volume.  The
reference is a shell script that makes the same objects with the docker
CLI alone, as parallel as Docker allows: every network and volume at once
(``&``, ``wait``), then every container at once (``docker run --detach``).
Its teardown stops the containers in one ``docker stop --time 1`` (the
parts' ``stop-timeout``), removes them in one ``docker rm --volumes``, then
every volume and network at once.  Each round times, one after the other:

- ours: ``bin/buildout -N`` creating everything from nothing (first apply);
- raw: the script's apply;
- ours teardown: ``bin/buildout -N`` with ``parts =`` (everything removed);
- raw teardown: the script's teardown.

Ratios are medians of round-by-round ratios.  Targets (issue 18): first
apply <= 1.05x the script, teardown <= 1.02x.  The module's ``run`` returns
the first-apply row and adds the teardown row to ``EXTRA_ROWS``.
"""

import os
import shlex
import shutil

import bench_noop
import harness

EXTRA_ROWS = []

#: wait for every background job; fail if one failed
WAIT_ALL = 'status=0; for pid in $pids; do wait "$pid" || status=1; done; pids=; ' \
           '[ "$status" = 0 ] || exit 1'


def scripts(prefix, image):
    """(apply, teardown) shell scripts for the raw side's objects (names PREFIX-r...)."""
    n, v, c = bench_noop.NETWORKS, bench_noop.VOLUMES, bench_noop.RUN_PARTS
    nets = ["%s-rnet%d" % (prefix, i) for i in range(n)]
    vols = ["%s-rvol%d" % (prefix, i) for i in range(v)]
    apps = ["%s-rapp%d" % (prefix, i) for i in range(c)]
    subnets = bench_noop.SUBNETS[n:]

    def background(argvs):
        return "\n".join("%s & pids=\"$pids $!\"" % " ".join(shlex.quote(a) for a in argv)
                         for argv in argvs) + "\n" + WAIT_ALL

    up = ["set -e", "pids=", background(
        [["docker", "network", "create", "--subnet", subnets[i], nets[i]] for i in range(n)]
        + [["docker", "volume", "create", name] for name in vols]),
        background([["docker", "run", "--detach", "--name", apps[i], "--network", nets[i % n],
                     "--volume", "%s:/data" % vols[i % v], "--stop-timeout", "1", image,
                     "sleep", "3600"] for i in range(c)])]
    down = ["set -e", "pids=",
            " ".join(["docker", "stop", "--time", "1"] + apps) + " >/dev/null",
            " ".join(["docker", "rm", "--volumes"] + apps) + " >/dev/null",
            background([["docker", "volume", "rm", name] for name in vols]
                       + [["docker", "network", "rm", name] for name in nets])]
    return "\n".join(up) + "\n", "\n".join(down) + "\n"


def run(runs=5, warmup=1):
    image = harness.base_image()
    buildout = harness.buildout_executable()
    prefix = harness.unique("dkbraw")
    base = os.path.join(harness.workdir(), prefix)
    ours_dir = os.path.join(base, "ours")
    os.makedirs(ours_dir)
    cfg = os.path.join(ours_dir, "buildout.cfg")
    up_script, down_script = scripts(prefix, image)

    def configure(text):
        with open(cfg, "w") as handle:
            handle.write(text)

    def up_ours():
        configure(bench_noop.buildout_cfg(prefix, image))
        harness.run_buildout(buildout, ours_dir)

    def down_ours():
        configure("[buildout]\nparts =\n")
        harness.run_buildout(buildout, ours_dir)

    def script(text):
        def run_script():
            harness.sh("sh", "-c", text)
        return run_script

    times = {"ours": [], "raw": [], "ours-down": [], "raw-down": []}
    try:
        for index in range(warmup + runs):
            for name, fn in (("ours", up_ours), ("raw", script(up_script)),
                             ("ours-down", down_ours), ("raw-down", script(down_script))):
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
        shutil.rmtree(base, ignore_errors=True)
    up = harness.paired_ratio(times["ours"], times["raw"])
    down = harness.paired_ratio(times["ours-down"], times["raw-down"])
    EXTRA_ROWS[:] = [harness.Row(
        name="teardown (10 containers, 5 volumes, 5 networks) vs raw CLI",
        ours=harness.median(times["ours-down"]), reference=harness.median(times["raw-down"]),
        reference_name="parallel docker CLI script", target="<= 1.02",
        met=down <= 1.02 and not left, paired=down, detail="containers left: %d" % len(left),
        samples={"ours": times["ours-down"], "reference": times["raw-down"]})]
    return harness.Row(
        name="first apply (10 containers, 5 volumes, 5 networks) vs raw CLI",
        ours=harness.median(times["ours"]), reference=harness.median(times["raw"]),
        reference_name="parallel docker CLI script", target="<= 1.05", met=up <= 1.05,
        paired=up, detail="teardown ratio %.2f" % down,
        samples={"ours": times["ours"], "reference": times["raw"]})
