"""Run dockeroo's benchmarks and print a table of ratios against the raw docker CLI.

Usage (after the README's setup)::

    .venv/bin/python benchmarks/run.py            # all benchmarks
    .venv/bin/python benchmarks/run.py fingerprint layout   # some of them
    .venv/bin/python benchmarks/run.py --runs 7 --json results.json

Ratios are medians of run-by-run ratios: each run of dockeroo is paired
with the reference run made right after it, so that load from other
processes on a shared machine cancels out.

Each benchmark is a module ``benchmarks/bench_<name>.py`` with a function
``run(runs, warmup) -> harness.Row``.  Data sets are made once under
``$DOCKEROO_BENCH_DIR`` (default ``/tmp/dockeroo-bench``) and reused.
"""

import argparse
import importlib
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

ORDER = ["noop", "scale", "apply", "raw", "rename", "copy", "layout", "import", "uninstall",
         "fingerprint"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all): %s" % ", ".join(ORDER))
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per side (default 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows (with every sample) as JSON")
    args = parser.parse_args(argv)
    names = args.names or [n for n in ORDER
                           if os.path.exists(os.path.join(harness.HERE, "bench_%s.py" % n))]
    rows, failed = [], []
    print("Machine:", harness.machine_description(), flush=True)
    for name in names:
        print("running %s ..." % name, flush=True)
        try:
            module = importlib.import_module("bench_%s" % name)
            row = module.run(runs=args.runs, warmup=args.warmup)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        for row in [row] + list(getattr(module, "EXTRA_ROWS", [])):
            rows.append(row)
            print("  %s: %.3f s vs %s %.3f s (ratio %.2f) %s" % (
                row.name, row.ours, row.reference_name, row.reference, row.ratio, row.detail),
                flush=True)
    print()
    print(harness.rst_table(rows))
    if args.json:
        import dataclasses
        import json
        with open(args.json, "w") as handle:
            json.dump({"machine": harness.machine_description(),
                       "runs": args.runs, "warmup": args.warmup,
                       "rows": [dict(dataclasses.asdict(r), ratio=r.ratio, best=r.best)
                                for r in rows]},
                      handle, indent=1)
    for row in rows:
        if row.detail:
            print("- %s: %s" % (row.name, row.detail))
    if failed:
        print("FAILED:", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
