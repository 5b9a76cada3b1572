"""docker.copy throughput: a ~1 GiB tree between two containers.

The tree: 10,000 small files, 4 large ones (~230 MiB each), symlinks and
hard links, loaded into container A.  Three sides, alternated:

- ours: a docker.copy part copying ``/data/`` from A to a fresh container B
  (``bin/buildout -N`` from the minimal venv; B is recreated before every
  run, untimed, so the part copies again);
- do-nothing: the same buildout with the part's recipe ``zc.buildout:debug``
  (buildout's own start-up, no cost of dockeroo's);
- reference: ``docker cp A:/data - | docker cp - B:/`` into a fresh B.

Target: ratio <= 1.11 (throughput >= 0.9x), dockeroo's time being the
buildout run minus the do-nothing run; the gross ratio is reported too.
"""

import os
import shutil

import harness


def run(runs=5, warmup=1):
    image = harness.base_image()
    tree = harness.make_tree(os.path.join(harness.workdir(), "copy-1g"), small_files=10000,
                             small_size=3000, large_files=4, large_size=230 << 20, links=True)
    buildout = harness.buildout_executable()
    prefix = harness.unique("dkbcopy")
    src, dst = prefix + "-a", prefix + "-b"
    base = os.path.join(harness.workdir(), prefix)
    ours_dir, null_dir = os.path.join(base, "ours"), os.path.join(base, "null")
    part = "[copy]\nrecipe = %s\ncontainer-from = %s\ncontainer-to = %s\npaths = /data/\n"
    for directory, recipe in ((ours_dir, "dockeroo:docker.copy"), (null_dir, "zc.buildout:debug")):
        os.makedirs(directory)
        with open(os.path.join(directory, "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts = copy\n\n" + part % (recipe, src, dst))
    harness.docker("create", "--name", src, image, "sleep", "3600")
    harness.sh("sh", "-c", 'tar -C "$0" -c --transform "s,^\\.,data," . | docker cp - "$1":/', tree, src)

    def fresh_target():
        harness.docker("rm", "-f", dst, check=False)
        harness.docker("create", "--name", dst, image, "sleep", "3600")
        harness.settle()

    def reference():
        harness.sh("sh", "-c", 'docker cp "$0":/data - | docker cp - "$1":/', src, dst)

    try:
        times = harness.compare_many([("ours", harness.buildout_in(buildout, ours_dir), fresh_target),
                                      ("null", harness.buildout_in(buildout, null_dir), None),
                                      ("reference", reference, fresh_target)], runs, warmup)
        size = int(harness.sh("du", "-sb", tree).stdout.split()[0])
    finally:
        with open(os.path.join(ours_dir, "buildout.cfg"), "w") as handle:
            handle.write("[buildout]\nparts =\n")
        harness.sh(buildout, "-N", cwd=ours_dir, check=False)
        harness.remove_prefix(prefix)
        shutil.rmtree(base, ignore_errors=True)
    ours, null, ref = (harness.median(times[k]) for k in ("ours", "null", "reference"))
    ratio = harness.paired_ratio(times["ours"], times["reference"], times["null"])
    mib = size / 2 ** 20
    return harness.Row(name="docker.copy ~1 GiB tree (net of buildout)", ours=ours - null,
                       reference=ref, reference_name="docker cp - | docker cp -",
                       target="<= 1.11 (>= 0.9x throughput)", met=ratio <= 1.11, paired=ratio, net=True,
                       detail="%.0f MiB: %.0f MiB/s vs %.0f MiB/s; buildout run %.2f s, "
                              "do-nothing buildout %.2f s, gross ratio %.2f"
                              % (mib, mib / (ours - null), mib / ref, ours, null,
                                 harness.paired_ratio(times["ours"], times["reference"])),
                       samples=times)
