"""Fingerprint of a 1 GB / 50,000-file build context, cold and warm, against sha256sum.

Cold: no digest cache (every byte hashed); reference: ``find -print0 |
xargs -0 sha256sum`` over the same files, page cache warm for both.
Warm: the digest cache is valid (nothing changed); target <= 0.5 s.
"""

import os
import shutil

import harness
from dockeroo.base.fingerprint import folder_fingerprint


def tree():
    # 49,990 small files (~4 KB) + 10 large ones (80 MiB): 50,000 files, ~1 GB
    return harness.make_tree(os.path.join(harness.workdir(), "fp-context"),
                             small_files=49990, small_size=4000, large_files=10,
                             large_size=80 << 20)


def run(runs=5, warmup=1):
    root = tree()
    cache = os.path.join(harness.workdir(), "fp-cache")

    def cold():
        shutil.rmtree(cache, ignore_errors=True)
        folder_fingerprint(root, cache_dir=cache)

    def reference():
        harness.sh("sh", "-c", 'find "$0" -type f -print0 | xargs -0 sha256sum > /dev/null', root)

    ours, ref = harness.compare(cold, reference, runs, warmup)
    folder_fingerprint(root, cache_dir=cache)
    warm = [harness.timed(lambda: folder_fingerprint(root, cache_dir=cache)) for _ in range(runs)]
    ratio = harness.paired_ratio(ours, ref)
    warm_median = harness.median(warm)
    return harness.Row(
        name="fingerprint 1 GB / 50k files (cold)", ours=harness.median(ours),
        reference=harness.median(ref), reference_name="sha256sum",
        target="cold <= 1.2x, warm <= 0.5 s",
        met=ratio <= 1.2 and warm_median <= 0.5, paired=ratio,
        detail="warm re-run (nothing changed): median %.3f s" % warm_median,
        samples={"ours": ours, "reference": ref, "warm": warm})
