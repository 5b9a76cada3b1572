"""Where a no-op re-run's time goes: buildout's phases, dockeroo against do-nothing parts.

Usage (after the README's setup)::

    .venv/bin/python benchmarks/profile_noop.py [--parts 10] [--runs 10]

Makes the ``bench_scale`` workload of PARTS parts (half ``docker.run``, a
quarter each ``docker.volume`` and ``docker.network``) and the same parts
with ``recipe = zc.buildout:debug``, applies it once, then re-runs both
alternately, RUNS times each, from the benchmarks' minimal virtualenv.
Each re-run is ``buildout -N`` in a Python process that puts wall-clock
timers around buildout's phases (and, for dockeroo, the recipes'
``__init__`` and ``update`` and the engine's batched ``inspect``); the
table gives the medians and their difference.  This is a profile, not a
benchmark: the timers cost a little, and only the differences are meant
to be read.
"""

import argparse
import ast
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_scale  # noqa: E402
import harness  # noqa: E402

#: run by the minimal virtualenv's python in the buildout directory
TIMED = r'''
import atexit, os, sys, time
T0 = time.perf_counter()
marks = {}

def wrap(owner, attr, name):
    fn = getattr(owner, attr)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            marks[name] = marks.get(name, 0.0) + time.perf_counter() - start
    setattr(owner, attr, timed)

start = time.perf_counter()
import zc.buildout.buildout as bb
marks["import zc.buildout"] = time.perf_counter() - start
wrap(bb.Buildout, "__init__", "read the configuration")
wrap(bb, "_install_and_load", "load recipe entry points (imports)")
wrap(bb.Options, "_initialize", "construct the parts")
wrap(bb.Buildout, "_compute_part_signatures", "recipe signatures")
wrap(bb.Buildout, "install", "Buildout.install (all of the above but imports)")
if os.environ.get("PROFILE_DOCKEROO"):
    start = time.perf_counter()
    import dockeroo.engine.docker, dockeroo.runtime.recipe
    marks["import dockeroo core"] = time.perf_counter() - start
    wrap(dockeroo.runtime.recipe.Recipe, "__init__", "dockeroo: recipe __init__")
    wrap(dockeroo.runtime.recipe.Recipe, "update", "dockeroo: update (incl. inspect)")
    wrap(dockeroo.engine.docker.DockerEngine, "inspect", "dockeroo: engine.inspect (batched)")

def report():
    marks["whole run"] = time.perf_counter() - T0
    with open(os.environ["PROFILE_OUT"], "a") as handle:
        handle.write(repr(marks) + "\n")
atexit.register(report)  # first registered: runs after dockeroo's own exit handlers
sys.argv = ["buildout", "-N"]
try:
    bb.main()
except SystemExit:
    pass
'''


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    image = harness.base_image()
    buildout = harness.buildout_executable()
    python = os.path.join(os.path.dirname(buildout), "python")
    prefix = harness.unique("dkbprof")
    base = tempfile.mkdtemp(prefix=prefix, dir=harness.workdir())
    script = os.path.join(base, "timed.py")
    with open(script, "w") as handle:
        handle.write(TIMED)
    sides = {"dockeroo": os.path.join(base, "ours"), "do-nothing": os.path.join(base, "null")}
    samples = {name: [] for name in sides}
    try:
        subnets = harness.subnets(args.parts // 4, "172.29.0.0/16")
        for name, directory in sides.items():
            os.makedirs(directory)
            recipe = None if name == "dockeroo" else "zc.buildout:debug"
            with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
                handle.write(bench_scale.buildout_cfg(prefix, image, args.parts, subnets, recipe))
            harness.run_buildout(buildout, directory)  # the first apply
        for _ in range(args.runs + 1):  # the first round warms up
            for name, directory in sides.items():
                out = os.path.join(base, name + ".txt")
                env = dict(os.environ, PROFILE_OUT=out)
                if name == "dockeroo":
                    env["PROFILE_DOCKEROO"] = "1"
                subprocess.run([python, script], cwd=directory, env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in sides:
            with open(os.path.join(base, name + ".txt")) as handle:
                samples[name] = [ast.literal_eval(line) for line in handle][1:]
    finally:
        with open(os.path.join(sides["dockeroo"], "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(buildout, "-N", cwd=sides["dockeroo"], check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    keys = list(dict.fromkeys(list(samples["dockeroo"][0]) + list(samples["do-nothing"][0])))
    print("Machine:", harness.machine_description())
    print("%d parts, medians of %d runs (ms)" % (args.parts, args.runs))
    print("%-50s %9s %11s %7s" % ("phase", "dockeroo", "do-nothing", "diff"))
    for key in keys:
        ours = statistics.median(s.get(key, 0.0) for s in samples["dockeroo"]) * 1000
        null = statistics.median(s.get(key, 0.0) for s in samples["do-nothing"]) * 1000
        print("%-50s %9.1f %11.1f %7.1f" % (key, ours, null, ours - null))
    return 0


if __name__ == "__main__":
    sys.exit(main())
