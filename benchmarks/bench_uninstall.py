"""Uninstall of 10 running docker.run containers vs ``docker rm -f`` of the same.

The containers run a command that exits on SIGTERM (as freeze does), so a
graceful stop is immediate.  Three sides, alternated, each after its own
untimed setup:

- ours: ``bin/buildout -N`` with ``parts =`` uninstalls 10 installed
  docker.run parts (graceful ``docker stop``, then ``docker rm``);
- do-nothing: the same for 10 installed ``zc.buildout:debug`` parts (what
  buildout itself costs to uninstall 10 parts);
- reference: ``docker rm -f`` of 10 containers started with ``docker run
  -d`` from the same image and command.

Target: ratio <= 1.2, where dockeroo's time is the buildout run minus the
do-nothing buildout (buildout's own start-up, about 0.4 s, is no cost of
dockeroo's); the gross ratio is reported too.  The runs are short: twice
the asked number of timed runs are made.
"""

import os
import shutil

import harness

COMMAND = "sh -c 'trap \"exit 0\" TERM; while :; do sleep 1 & wait; done'"
COUNT = 10


def run(runs=5, warmup=1):
    image = harness.base_image()
    buildout = harness.buildout_executable()
    prefix = harness.unique("dkbrm")
    base = os.path.join(harness.workdir(), prefix)
    ours_dir, null_dir = os.path.join(base, "ours"), os.path.join(base, "null")
    os.makedirs(ours_dir)
    os.makedirs(null_dir)
    parts = ["c%d" % i for i in range(COUNT)]

    def config(recipe):
        return "[buildout]\nparts = %s\n\n" % " ".join(parts) + "\n".join(
            "[%s]\nrecipe = %s\nname = %s-%s\nimage = %s\ncommand = %s\n"
            % (p, recipe, prefix, p, image, COMMAND) for p in parts)

    raw_names = ["%s-raw%d" % (prefix, i) for i in range(COUNT)]

    def installer(directory, recipe):
        cfg = os.path.join(directory, "buildout.cfg")

        def setup():
            with open(cfg, "w") as handle:
                handle.write(config(recipe))
            harness.run_buildout(buildout, directory)
            with open(cfg, "w") as handle:
                handle.write("[buildout]\nparts =\n")
            harness.settle()
        return setup

    def start_raw():
        for name in raw_names:
            harness.docker("run", "-d", "--name", name, image, "sh", "-c",
                           "trap \"exit 0\" TERM; while :; do sleep 1 & wait; done")
        harness.settle()

    try:
        times = harness.compare_many([
            ("ours", harness.buildout_in(buildout, ours_dir), installer(ours_dir, "dockeroo:docker.run")),
            ("null", harness.buildout_in(buildout, null_dir), installer(null_dir, "zc.buildout:debug")),
            ("reference", lambda: harness.docker("rm", "-f", *raw_names), start_raw),
        ], runs * 2, warmup)
        left = [n for n in harness.docker("ps", "-a", "--format", "{{.Names}}").split()
                if n.startswith(prefix + "-c")]
    finally:
        with open(os.path.join(ours_dir, "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(buildout, "-N", cwd=ours_dir, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    ours, null, ref = (harness.median(times[k]) for k in ("ours", "null", "reference"))
    net = ours - null
    ratio = harness.paired_ratio(times["ours"], times["reference"], times["null"])
    return harness.Row(name="uninstall 10 running containers (net of buildout)", ours=net,
                       reference=ref, reference_name="docker rm -f (10 names)",
                       target="<= 1.2", met=ratio <= 1.2 and not left, paired=ratio, net=True,
                       detail="buildout run %.3f s, do-nothing buildout uninstalling 10 parts "
                              "%.3f s, gross ratio %.2f; containers left after uninstall: %d"
                              % (ours, null, ours / ref, len(left)),
                       samples=times)
