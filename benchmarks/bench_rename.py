"""Renaming a network used by 5 containers vs recreating one container.

Two buildouts, each installed once (untimed), then changed back and forth:

- ours: a ``docker.network`` part and 5 ``docker.run`` parts on it
  (``networks = ${net:name}``); each round renames the network (two names
  and subnets in turn), so the network and the 5 containers are made again;
- reference: one ``docker.run`` part whose ``env`` changes each round, so
  its container is recreated.

The containers run ``sleep`` as PID 1, which ignores SIGTERM: each stop
waits the whole ``stop-timeout`` (10 s, Docker's default, as in issue 18's
measurement), so recreations made one after the other cost 5 waits, and
parallel ones about one.  Target: ratio <= 1.3.
"""

import os
import shutil
import textwrap

import harness

COUNT = 5
STOP = 10


def run(runs=5, warmup=1):
    image, buildout = harness.base_image(), harness.buildout_executable()
    prefix = harness.unique("dkbren")
    base, (ours_dir, ref_dir) = harness.folders(prefix, "ours", "ref")
    subnets = harness.subnets(2, "172.30.0.0/16")  # the new network is made before the old goes

    def app(part, name, extra):
        return textwrap.dedent("""\
            [%s]
            recipe = dockeroo:docker.run
            name = %s
            image = %s
            command = sleep 3600
            stop-timeout = %d
            """ % (part, name, image, STOP)) + extra

    def ours_cfg(round_):
        net = textwrap.dedent("""\
            [net]
            recipe = dockeroo:docker.network
            name = %s-net%d
            subnet = %s
            """ % (prefix, round_ % 2, subnets[round_ % 2]))
        apps = [app("app%d" % i, "%s-app%d" % (prefix, i), "networks = ${net:name}\n")
                for i in range(COUNT)]
        return "[buildout]\nparts = net %s\n\n%s" % (
            " ".join("app%d" % i for i in range(COUNT)), "\n".join([net] + apps))

    def ref_cfg(round_):
        return "[buildout]\nparts = one\n\n" + app("one", "%s-one" % prefix,
                                                    "env = ROUND=%d\n" % (round_ % 2))

    def changer(directory, config):
        state = {"round": 0}

        def change():
            state["round"] += 1
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write(config(state["round"]))
            harness.run_buildout(buildout, directory)
        return change

    try:
        for directory, config in ((ours_dir, ours_cfg), (ref_dir, ref_cfg)):
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write(config(0))
            harness.run_buildout(buildout, directory)
        times = harness.compare_many([
            ("ours", changer(ours_dir, ours_cfg), harness.settle),
            ("reference", changer(ref_dir, ref_cfg), harness.settle),
        ], runs, warmup)
        names = harness.docker("ps", "--format", "{{.Names}}").split()
        running = len([n for n in names if n.startswith(prefix + "-app")])
    finally:
        for directory in (ours_dir, ref_dir):
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write("[buildout]\nparts =\n")
            harness.sh(buildout, "-N", cwd=directory, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    ratio = harness.paired_ratio(times["ours"], times["reference"])
    return harness.Row(
        name="rename a network used by %d containers vs recreate one (stop-timeout %d s)"
             % (COUNT, STOP),
        ours=harness.median(times["ours"]), reference=harness.median(times["reference"]),
        reference_name="recreate 1 container", target="<= 1.3",
        met=ratio <= 1.3 and running == COUNT, paired=ratio,
        detail="containers running after the last rename: %d of %d" % (running, COUNT),
        samples=times)
