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
apply <= 1.05x the script, teardown <= 1.02x.  Each round also times the
apply and teardown of the same 20 parts with buildout's do-nothing recipe
(``zc.buildout:debug``): buildout's own work (its start, reading and
recording the parts), which no recipe can save; the rows' details give
the ratios net of it as well.  The module's ``run`` returns
the first-apply row and adds the teardown row to ``EXTRA_ROWS``.
"""

import shlex

import bench_apply
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
    prefix = harness.unique("dkbraw")
    up_script, down_script = scripts(prefix, image)
    times, left = bench_apply.rounds(prefix, image, lambda: harness.sh("sh", "-c", up_script),
                                     lambda: harness.sh("sh", "-c", down_script), runs, warmup,
                                     null=True)
    up, EXTRA_ROWS[:] = bench_apply.ratio_rows(
        times, left, " vs raw CLI", "parallel docker CLI script", "parallel docker CLI script",
        ("<= 1.05", 1.05), ("<= 1.02", 1.02))
    return up
