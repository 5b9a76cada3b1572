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

Two more rows (``EXTRA_ROWS``) time the release path: the network keeps its
name but its subnet changes each round, so it is recreated under its 5
containers (released, then made again: docs/cross-part.rst), against the
same change under one container; once with the containers' parts after
the network's in ``parts``, once before it (their turn has passed when the
network is recreated; they name the network literally).
"""

import os
import shutil
import textwrap

import harness

COUNT = 5
STOP = 10
EXTRA_ROWS = []


def run(runs=5, warmup=1):
    image, buildout = harness.base_image(), harness.buildout_executable()
    prefix = harness.unique("dkbren")
    base, (ours_dir, ref_dir, many_dir, one_dir, first_dir) = harness.folders(
        prefix, "ours", "ref", "many", "one", "first")
    # the new network is made before the old goes; then two each for the subnet changes
    subnets = harness.subnets(8, "172.30.0.0/16")

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

    def subnet_cfg(key, count, first, users_first=False):
        def config(round_):
            net = textwrap.dedent("""\
                [net]
                recipe = dockeroo:docker.network
                name = %s-%s
                subnet = %s
                """ % (prefix, key, subnets[first + round_ % 2]))
            uses = "%s-%s" % (prefix, key) if users_first else "${net:name}"
            apps = [app("%s%d" % (key, i), "%s-%s%d" % (prefix, key, i),
                        "networks = %s\n" % uses) for i in range(count)]
            names = ["%s%d" % (key, i) for i in range(count)]
            # the first install makes the network first
            order = names + ["net"] if users_first and round_ else ["net"] + names
            return "[buildout]\nparts = %s\n\n%s" % (" ".join(order), "\n".join([net] + apps))
        return config
    many_cfg, one_cfg = subnet_cfg("many", COUNT, 2), subnet_cfg("one", 1, 4)
    first_cfg = subnet_cfg("first", COUNT, 6, users_first=True)

    def changer(directory, config):
        state = {"round": 0}

        def change():
            state["round"] += 1
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write(config(state["round"]))
            harness.run_buildout(buildout, directory)
        return change

    try:
        for directory, config in ((ours_dir, ours_cfg), (ref_dir, ref_cfg),
                                  (many_dir, many_cfg), (one_dir, one_cfg),
                                  (first_dir, first_cfg)):
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write(config(0))
            harness.run_buildout(buildout, directory)
        times = harness.compare_many([
            ("ours", changer(ours_dir, ours_cfg), harness.settle),
            ("reference", changer(ref_dir, ref_cfg), harness.settle),
            ("many", changer(many_dir, many_cfg), harness.settle),
            ("one", changer(one_dir, one_cfg), harness.settle),
            ("first", changer(first_dir, first_cfg), harness.settle),
        ], runs, warmup)
        names = harness.docker("ps", "--format", "{{.Names}}").split()
        running = len([n for n in names if n.startswith(prefix + "-app")])
        remade = len([n for n in names if n.startswith(prefix + "-many")])
        remade_first = len([n for n in names if n.startswith(prefix + "-first")])
    finally:
        for directory in (ours_dir, ref_dir, many_dir, one_dir, first_dir):
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write("[buildout]\nparts =\n")
            harness.sh(buildout, "-N", cwd=directory, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    ratio = harness.paired_ratio(times["ours"], times["reference"])
    many = harness.paired_ratio(times["many"], times["one"])
    EXTRA_ROWS[:] = [harness.Row(
        name="subnet changed under %d containers vs under one (network and users recreated)"
             % COUNT,
        ours=harness.median(times["many"]), reference=harness.median(times["one"]),
        reference_name="subnet under 1 container", target="-", met=remade == COUNT,
        paired=many, detail="containers running after the last change: %d of %d"
        % (remade, COUNT), samples={"ours": times["many"], "reference": times["one"]}),
        harness.Row(
        name="subnet changed under %d containers of parts before it vs under one" % COUNT,
        ours=harness.median(times["first"]), reference=harness.median(times["one"]),
        reference_name="subnet under 1 container", target="-", met=remade_first == COUNT,
        paired=harness.paired_ratio(times["first"], times["one"]),
        detail="containers running after the last change: %d of %d" % (remade_first, COUNT),
        samples={"ours": times["first"], "reference": times["one"]})]
    return harness.Row(
        name="rename a network used by %d containers vs recreate one (stop-timeout %d s)"
             % (COUNT, STOP),
        ours=harness.median(times["ours"]), reference=harness.median(times["reference"]),
        reference_name="recreate 1 container", target="<= 1.3",
        met=ratio <= 1.3 and running == COUNT, paired=ratio,
        detail="containers running after the last rename: %d of %d" % (running, COUNT),
        samples=times)
