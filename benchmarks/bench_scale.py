"""No-op re-run cost as a buildout grows: 10, 50 and 100 parts.

Parts are mixed like a real project: half docker.run (each container on one
network with one volume), a quarter docker.volume, a quarter docker.network.
For each size, alternated in the same run:

- ours: ``bin/buildout -N`` re-run with nothing changed;
- null: the same parts with ``recipe = zc.buildout:debug`` (parts that do
  nothing: buildout's own cost for that many parts).

For each size, dockeroo's cost is the median of the differences between a
run and the do-nothing run right after it; those are fitted with least
squares as ``fixed + per_part * parts`` (the medians of both sides are
fitted too, for the record).  Targets at 100 parts:
per part <= 2 ms above do-nothing parts, fixed cost <= 60 ms above them.
"""

import os
import shutil

import harness

SIZES = (10, 50, 100)


def counts(parts):
    networks = volumes = parts // 4
    return networks, volumes, parts - networks - volumes


def buildout_cfg(prefix, image, parts, subnets, recipe=None):
    networks, volumes, runs = counts(parts)
    names, sections = [], []
    for i in range(networks):
        names.append("net%d" % i)
        sections.append("[net%d]\nrecipe = %s\nname = %s-net%d\nsubnet = %s\n"
                        % (i, recipe or "dockeroo:docker.network", prefix, i, subnets[i]))
    for i in range(volumes):
        names.append("vol%d" % i)
        sections.append("[vol%d]\nrecipe = %s\nname = %s-vol%d\n"
                        % (i, recipe or "dockeroo:docker.volume", prefix, i))
    for i in range(runs):
        names.append("app%d" % i)
        sections.append("[app%d]\nrecipe = %s\nname = %s-app%d\nimage = %s\n"
                        "command = sleep 3600\nnetworks = ${net%d:name}\n"
                        "volumes = ${vol%d:name}:/data\nstop-timeout = 1\n"
                        % (i, recipe or "dockeroo:docker.run", prefix, i, image,
                           i % networks, i % volumes))
    return "[buildout]\nparts = %s\n\n%s" % (" ".join(names), "\n".join(sections))


def least_squares(xs, ys):
    """(intercept, slope) of the line through the points (xs, ys)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = (sum((x - mx) * (y - my) for x, y in zip(xs, ys))
             / sum((x - mx) ** 2 for x in xs))
    return my - slope * mx, slope


def run(runs=5, warmup=1):
    image = harness.base_image()
    buildout = harness.buildout_executable()
    prefix = harness.unique("dkbscale")
    base = os.path.join(harness.workdir(), prefix)
    subnets = harness.subnets(max(SIZES) // 4, "172.29.0.0/16")
    medians = {"ours": [], "null": []}
    samples = {}
    dirs = []
    try:
        for size in SIZES:
            ours_dir = os.path.join(base, "ours%d" % size)
            null_dir = os.path.join(base, "null%d" % size)
            for d, recipe in ((ours_dir, None), (null_dir, "zc.buildout:debug")):
                os.makedirs(d)
                with open(os.path.join(d, "buildout.cfg"), "w") as handle:
                    handle.write(buildout_cfg(prefix, image, size, subnets, recipe))
                harness.run_buildout(buildout, d)  # the first apply, untimed
            dirs.append(ours_dir)
            times = harness.compare_many([
                ("ours", harness.buildout_in(buildout, ours_dir), None),
                ("null", harness.buildout_in(buildout, null_dir), None),
            ], runs * 3, warmup)
            for side in ("ours", "null"):
                medians[side].append(harness.median(times[side]))
                samples["%s-%d" % (side, size)] = times[side]
            # tear this size down before the next one (keeps the engine small)
            with open(os.path.join(ours_dir, "buildout.cfg"), "w") as handle:
                handle.write("[buildout]\nparts =\n")
            harness.run_buildout(buildout, ours_dir)
    finally:
        for d in dirs:
            with open(os.path.join(d, "buildout.cfg"), "w") as handle:
                handle.write("[buildout]\nparts =\n")
            harness.sh(buildout, "-N", cwd=d, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    fixed, per_part = least_squares(SIZES, medians["ours"])
    null_fixed, null_per_part = least_squares(SIZES, medians["null"])
    # dockeroo's cost: the median, per size, of each run minus the do-nothing
    # run right after it (load from other processes cancels out, as in every
    # paired ratio), fitted as fixed + per part
    extra = [harness.median(o - n for o, n in zip(samples["ours-%d" % size],
                                                  samples["null-%d" % size]))
             for size in SIZES]
    extra_fixed, extra_per_part = least_squares(SIZES, extra)
    extra_fixed_ms, extra_per_part_ms = extra_fixed * 1000, extra_per_part * 1000
    at_100 = extra[-1] / SIZES[-1] * 1000
    detail = ("medians ours %s s, do-nothing %s s; fit ours %.0f ms + %.2f ms/part, "
              "do-nothing %.0f ms + %.2f ms/part; paired differences %s ms; dockeroo above "
              "do-nothing (fit of the paired differences): fixed %.0f ms, %.2f ms/part "
              "(at 100 parts: %.2f ms/part)"
              % ("/".join("%.3f" % m for m in medians["ours"]),
                 "/".join("%.3f" % m for m in medians["null"]),
                 fixed * 1000, per_part * 1000, null_fixed * 1000, null_per_part * 1000,
                 "/".join("%.0f" % (e * 1000) for e in extra),
                 extra_fixed_ms, extra_per_part_ms, at_100))
    samples["ours"] = samples["ours-100"]
    samples["reference"] = samples["null-100"]
    return harness.Row(
        name="no-op re-run, 10/50/100 parts", ours=medians["ours"][-1],
        reference=medians["null"][-1], reference_name="do-nothing parts (100)",
        target="<= 2 ms/part, fixed <= 60 ms", met=extra_per_part_ms <= 2 and extra_fixed_ms <= 60,
        paired=harness.paired_ratio(samples["ours-100"], samples["null-100"]), detail=detail,
        samples=samples)
