"""Layout load: a 10,000-file folder onto a container's root with a uid/gid override.

dockeroo: ``container.load_layout`` (Python tar stream with owners
rewritten, into ``docker cp - c:/``).  Reference: ``tar -C dir -c . |
docker cp - c:/`` (no owner override).  Target: ratio <= 1.11 (throughput
>= 0.9x).
"""

import os

import harness
from dockeroo.runtime import container
from dockeroo.engine.docker import DockerEngine


def run(runs=5, warmup=1):
    root = harness.make_tree(os.path.join(harness.workdir(), "layout-10k"),
                             small_files=10000, small_size=2000)
    image = harness.base_image()
    name = harness.unique("dkblayout")
    engine = DockerEngine()
    harness.docker("create", "--name", name, image, "sleep", "3600")
    try:
        ours, ref = harness.compare(
            lambda: container.load_layout(engine, name, root, uid=0, gid=0),
            lambda: harness.sh("sh", "-c", 'tar -C "$0" -c . | docker cp - "$1":/', root, name),
            runs, warmup, setup=harness.settle)
    finally:
        harness.remove_prefix(name)
    ratio = harness.paired_ratio(ours, ref)
    return harness.Row(name="layout load 10k files (uid/gid override)", ours=harness.median(ours),
                       reference=harness.median(ref), reference_name="tar | docker cp -",
                       target="<= 1.11 (>= 0.9x throughput)", met=ratio <= 1.11, paired=ratio,
                       samples={"ours": ours, "reference": ref})
