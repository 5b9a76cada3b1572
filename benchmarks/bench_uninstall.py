"""Uninstall of 10 running docker.run containers vs ``docker rm -f`` of the same.

The containers run a command that exits on SIGTERM (as freeze does), so a
graceful stop is immediate.  ours: ``bin/buildout -N`` with ``parts =``
(uninstalls the 10 parts).  Reference: ``docker rm -f`` of 10 containers
started with ``docker run -d`` from the same image and command.  Setup
(untimed) installs the parts / starts the containers again.  Target <= 1.2.
"""

import os

import harness

COMMAND = "sh -c 'trap \"exit 0\" TERM; while :; do sleep 1 & wait; done'"


def run(runs=5, warmup=1):
    image = harness.base_image()
    prefix = harness.unique("dkbrm")
    directory = os.path.join(harness.workdir(), prefix)
    os.makedirs(directory)
    parts = ["c%d" % i for i in range(10)]
    full = "[buildout]\nparts = %s\n\n" % " ".join(parts) + "\n".join(
        "[%s]\nrecipe = dockeroo:docker.run\nname = %s-%s\nimage = %s\ncommand = %s\n"
        % (p, prefix, p, image, COMMAND) for p in parts)
    cfg = os.path.join(directory, "buildout.cfg")
    raw_names = ["%s-raw%d" % (prefix, i) for i in range(10)]
    state = {}

    def setup():
        with open(cfg, "w") as handle:
            handle.write(full)
        result = harness.sh(harness.BUILDOUT, "-N", cwd=directory, check=False)
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)
        with open(cfg, "w") as handle:
            handle.write("[buildout]\nparts =\n")
        for name in raw_names:
            harness.docker("run", "-d", "--name", name, image, "sh", "-c",
                           "trap \"exit 0\" TERM; while :; do sleep 1 & wait; done")

    def ours():
        result = harness.sh(harness.BUILDOUT, "-N", cwd=directory, check=False)
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)

    def reference():
        harness.docker("rm", "-f", *raw_names)

    try:
        a, b = harness.compare(ours, reference, runs, warmup, setup=setup)
        left = [n for n in harness.docker("ps", "-a", "--format", "{{.Names}}").split()
                if n.startswith(prefix + "-c")]
    finally:
        with open(cfg, "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(harness.BUILDOUT, "-N", cwd=directory, check=False)
        harness.remove_prefix(prefix)
    ratio = harness.median(a) / harness.median(b)
    return harness.Row(name="uninstall 10 running containers", ours=harness.median(a),
                       reference=harness.median(b), reference_name="docker rm -f (10 names)",
                       target="<= 1.2", met=ratio <= 1.2 and not left,
                       detail="containers left after uninstall: %d" % len(left))
