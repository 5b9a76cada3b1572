"""No-op re-run of a 20-part buildout (10 docker.run, 5 docker.volume, 5 docker.network).

ours: ``bin/buildout -N`` with nothing changed.  References in the same run:
- the same 20 parts with ``recipe = zc.buildout:debug`` (parts that do
  nothing): the difference divided by 20 is dockeroo's cost per part
  (target <= 10 ms);
- ``docker-compose up -d`` re-run of the same workload (target: total wall
  time below Compose's).
The number of docker processes of one no-op run is counted with a
``docker`` wrapper on PATH.
"""

import os
import shutil
import stat
import textwrap

import harness

RUN_PARTS, VOLUMES, NETWORKS = 10, 5, 5


def buildout_cfg(prefix, image, recipe_override=None):
    parts, sections = [], []
    for i in range(NETWORKS):
        parts.append("net%d" % i)
        sections.append(textwrap.dedent("""\
            [net%d]
            recipe = %s
            name = %s-net%d
            subnet = 172.31.%d.0/24
            """ % (i, recipe_override or "dockeroo:docker.network", prefix, i, 240 + i)))
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
                  "    ipam:", "      config:", "        - subnet: 172.31.%d.0/24" % (245 + i)]
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
    try:
        first = harness.sh(harness.BUILDOUT, "-N", cwd=ours_dir, check=False)
        if first.returncode != 0:
            raise RuntimeError("buildout install failed:\n" + first.stdout + first.stderr)
        harness.sh(harness.BUILDOUT, "-N", cwd=null_dir)
        noop = lambda: harness.sh(harness.BUILDOUT, "-N", cwd=ours_dir)
        null = lambda: harness.sh(harness.BUILDOUT, "-N", cwd=null_dir)
        ours, nulls = harness.compare(noop, null, runs, warmup)
        detail = []
        if compose:
            up = lambda: harness.sh(compose, "-p", prefix, "up", "-d", cwd=compose_dir)
            up()
            ours2, comp = harness.compare(noop, up, runs, warmup)
            ours = ours + ours2
            compose_median = harness.median(comp)
        else:
            compose_median = float("nan")
            detail.append("docker-compose not installed")
        log = docker_counter(bin_dir)
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ["PATH"])
        harness.sh(harness.BUILDOUT, "-N", cwd=ours_dir, env=env)
        with open(log) as handle:
            calls = [line.strip() for line in handle if line.strip()]
        per_part_ms = (harness.median(ours) - harness.median(nulls)) / (RUN_PARTS + VOLUMES + NETWORKS) * 1000
        detail.insert(0, "per part above do-nothing parts: %.1f ms; do-nothing buildout %.3f s; "
                         "docker processes in one no-op run: %d (%s)"
                      % (per_part_ms, harness.median(nulls), len(calls), "; ".join(calls)))
        return harness.Row(
            name="no-op re-run, 20 parts", ours=harness.median(ours), reference=compose_median,
            reference_name="docker-compose up -d", target="<= 10 ms/part, total < Compose",
            met=per_part_ms <= 10 and harness.median(ours) < compose_median,
            detail="; ".join(detail))
    finally:
        if compose:
            harness.sh(compose, "-p", prefix, "down", "-v", "-t", "1", cwd=compose_dir, check=False)
        with open(os.path.join(ours_dir, "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(harness.BUILDOUT, "-N", cwd=ours_dir, check=False)
        harness.remove_prefix(prefix)
