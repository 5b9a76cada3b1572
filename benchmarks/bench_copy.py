"""docker.copy throughput: a ~1 GiB tree between two containers.

The tree: 10,000 small files, 4 large ones (~230 MiB each), symlinks and
hard links, loaded into container A.  ours: a docker.copy part copying
``/data/`` from A to a fresh container B (``bin/buildout -N``; B is
recreated before every run, untimed, so the part copies again).
Reference: ``docker cp A:/data - | docker cp - B:/``.  Target: ratio <=
1.11 (throughput >= 0.9x).
"""

import os

import harness


def run(runs=5, warmup=1):
    image = harness.base_image()
    tree = harness.make_tree(os.path.join(harness.workdir(), "copy-1g"), small_files=10000,
                             small_size=3000, large_files=4, large_size=230 << 20, links=True)
    prefix = harness.unique("dkbcopy")
    src, dst = prefix + "-a", prefix + "-b"
    directory = os.path.join(harness.workdir(), prefix)
    os.makedirs(directory)
    with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
        handle.write("[buildout]\nparts = copy\n\n[copy]\nrecipe = dockeroo:docker.copy\n"
                     "container-from = %s\ncontainer-to = %s\npaths = /data/\n" % (src, dst))
    harness.docker("create", "--name", src, image, "sleep", "3600")
    harness.sh("sh", "-c", 'tar -C "$0" -c --transform "s,^\\.,data," . | docker cp - "$1":/', tree, src)

    def fresh_target():
        harness.docker("rm", "-f", dst, check=False)
        harness.docker("create", "--name", dst, image, "sleep", "3600")

    def ours():
        result = harness.sh(harness.BUILDOUT, "-N", cwd=directory, check=False)
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)

    def reference():
        harness.sh("sh", "-c", 'docker cp "$0":/data - | docker cp - "$1":/', src, dst)

    try:
        a, b = harness.compare(ours, reference, runs, warmup, setup=fresh_target)
        size = harness.sh("du", "-sb", tree).stdout.split()[0]
    finally:
        with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(harness.BUILDOUT, "-N", cwd=directory, check=False)
        harness.remove_prefix(prefix)
    ratio = harness.median(a) / harness.median(b)
    mib = int(size) / 2 ** 20
    return harness.Row(name="docker.copy ~1 GiB tree", ours=harness.median(a), reference=harness.median(b),
                       reference_name="docker cp - | docker cp -", target="<= 1.11 (>= 0.9x throughput)",
                       met=ratio <= 1.11,
                       detail="%.0f MiB: %.0f MiB/s vs %.0f MiB/s" % (mib, mib / harness.median(a),
                                                                      mib / harness.median(b)))
