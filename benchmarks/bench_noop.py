"""No-op re-run of a 20-part buildout (10 docker.run, 5 docker.volume, 5 docker.network).

ours: ``bin/buildout -N`` with nothing changed.  References in the same run,
all alternated:

- the same 20 parts with ``recipe = zc.buildout:debug`` (parts that do
  nothing): the difference divided by 20 is dockeroo's cost per part
  (target <= 10 ms);
- ``docker-compose up -d`` re-run of the same workload (target: total wall
  time below Compose's).

buildout runs from a minimal venv (see ``harness.buildout_executable``);
the do-nothing buildout of the development venv is timed too, to show what
zc.buildout's hashing of a large site-packages costs every buildout run.
The number of docker processes of one no-op run is counted with a
``docker`` wrapper on PATH.  The runs are cheap: three times the asked
number of timed runs are made.
"""

import os
import shutil
import stat
import sys
import textwrap

import harness

RUN_PARTS, VOLUMES, NETWORKS = 10, 5, 5
#: dockeroo's networks, then Compose's: random /24s of 172.30.0.0/16 (see harness.subnets)
SUBNETS = harness.subnets(2 * NETWORKS, "172.30.0.0/16")


def buildout_cfg(prefix, image, recipe_override=None):
    parts, sections = [], []
    for i in range(NETWORKS):
        parts.append("net%d" % i)
        sections.append(textwrap.dedent("""\
            [net%d]
            recipe = %s
            name = %s-net%d
            subnet = %s
            """ % (i, recipe_override or "dockeroo:docker.network", prefix, i, SUBNETS[i])))
    for i in range(VOLUMES):
        parts.append("vol%d" % i)
        sections.append(textwrap.dedent("""\
            [vol%d]
            recipe = %s
            name = %s-vol%d
            """ % (i, recipe_override or "dockeroo:docker.volume", prefix, i)))
    for i in range(RUN_PARTS):
        parts.append("app%d" % i)
        sections.append(textwrap.dedent("""\
            [app%d]
            recipe = %s
            name = %s-app%d
            image = %s
            command = sleep 3600
            networks = ${net%d:name}
            volumes = ${vol%d:name}:/data
            stop-timeout = 1
            """ % (i, recipe_override or "dockeroo:docker.run", prefix, i, image,
                   i % NETWORKS, i % VOLUMES)))
    return "[buildout]\nparts = %s\n\n%s" % (" ".join(parts), "\n".join(sections))


def compose_yml(prefix, image):
    lines = ["version: '2.4'", "services:"]
    for i in range(RUN_PARTS):
        lines += ["  app%d:" % i, "    image: %s" % image, "    command: sleep 3600",
                  "    container_name: %s-capp%d" % (prefix, i),
                  "    stop_grace_period: 1s",
                  "    networks: [net%d]" % (i % NETWORKS),
                  "    volumes: ['vol%d:/data']" % (i % VOLUMES)]
    lines.append("volumes:")
    for i in range(VOLUMES):
        lines += ["  vol%d:" % i, "    name: %s-cvol%d" % (prefix, i)]
    lines.append("networks:")
    for i in range(NETWORKS):
        lines += ["  net%d:" % i, "    name: %s-cnet%d" % (prefix, i),
                  "    ipam:", "      config:", "        - subnet: %s" % SUBNETS[NETWORKS + i]]
    return "\n".join(lines) + "\n"


def docker_counter(directory):
    real = shutil.which("docker")
    log = os.path.join(directory, "docker-calls.log")
    path = os.path.join(directory, "docker")
    with open(path, "w") as handle:
        handle.write('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (log, real))
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return log


def run(runs=5, warmup=1):
    image = harness.base_image()
    buildout = harness.buildout_executable()
    prefix = harness.unique("dkbnoop")
    base = os.path.join(harness.workdir(), prefix)
    ours_dir, null_dir, compose_dir, bin_dir = (os.path.join(base, d) for d in ("ours", "null", "compose", "bin"))
    for d in (ours_dir, null_dir, compose_dir, bin_dir):
        os.makedirs(d)
    with open(os.path.join(ours_dir, "buildout.cfg"), "w") as handle:
        handle.write(buildout_cfg(prefix, image))
    with open(os.path.join(null_dir, "buildout.cfg"), "w") as handle:
        handle.write(buildout_cfg(prefix, image, recipe_override="zc.buildout:debug"))
    with open(os.path.join(compose_dir, "docker-compose.yml"), "w") as handle:
        handle.write(compose_yml(prefix, image))
    compose = shutil.which("docker-compose")
    parts = RUN_PARTS + VOLUMES + NETWORKS
    try:
        first = harness.sh(buildout, "-N", cwd=ours_dir, check=False)
        if first.returncode != 0:
            raise RuntimeError("buildout install failed:\n" + first.stdout + first.stderr)
        harness.sh(buildout, "-N", cwd=null_dir)
        sides = [("ours", lambda: harness.sh(buildout, "-N", cwd=ours_dir), None),
                 ("null", lambda: harness.sh(buildout, "-N", cwd=null_dir), None)]
        if buildout != harness.BUILDOUT:
            sides.append(("null-dev", lambda: harness.sh(harness.BUILDOUT, "-N", cwd=null_dir), None))
        if compose:
            harness.sh(compose, "-p", prefix, "up", "-d", cwd=compose_dir)
            sides.append(("compose", lambda: harness.sh(compose, "-p", prefix, "up", "-d",
                                                        cwd=compose_dir), None))
        times = harness.compare_many(sides, runs * 3, warmup)
        ours, nulls = harness.median(times["ours"]), harness.median(times["null"])
        compose_median = harness.median(times["compose"]) if compose else float("nan")
        ratio = (harness.paired_ratio(times["ours"], times["compose"]) if compose
                 else float("nan"))

        log = docker_counter(bin_dir)
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
        harness.sh(buildout, "-N", cwd=ours_dir, env=env)
        with open(log) as handle:
            calls = [line.strip() for line in handle if line.strip()]
        per_part_ms = harness.median(a - n for a, n in zip(times["ours"], times["null"])) / parts * 1000
        detail = ["per part above do-nothing parts: %.1f ms; do-nothing buildout %.3f s"
                  % (per_part_ms, nulls)]
        if "null-dev" in times:
            detail.append("do-nothing buildout from the development venv (%.0f MB site-packages): %.3f s"
                          % (harness.site_packages_size(sys.executable) / 1e6,
                             harness.median(times["null-dev"])))
        if not compose:
            detail.append("docker-compose not installed")
        detail.append("docker processes in one no-op run: %d (%s)"
                      % (len(calls), "; ".join(" ".join(c.split()[:2]) + " (%d names)"
                                               % len([w for w in c.split()[2:] if not w.startswith("-")])
                                               for c in calls)))
        return harness.Row(
            name="no-op re-run, 20 parts", ours=ours, reference=compose_median,
            reference_name="docker-compose up -d", target="<= 10 ms/part, total < Compose",
            met=per_part_ms <= 10 and ratio < 1, paired=ratio,
            detail="; ".join(detail), samples=times)
    finally:
        if compose:
            harness.sh(compose, "-p", prefix, "down", "-v", "-t", "1", cwd=compose_dir, check=False)
        with open(os.path.join(ours_dir, "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(buildout, "-N", cwd=ours_dir, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
