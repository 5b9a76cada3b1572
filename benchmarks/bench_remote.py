"""First apply over ssh (issue 20): dockeroo's one connection per engine and run
vs the same engine on its local socket, and vs plain ``DOCKER_HOST=ssh://``.

Needs root and the test rig (tests/remote/hosts.sh: a dockerd and an sshd in a
network namespace; started here when it does not run, and stopped again).  The
workload is the no-op benchmark's (5 networks, 5 volumes, 10 containers, 20
parts).  Each round times, one after the other, a first apply from nothing on
the rig's host 1 (every side is torn down again, untimed):

- ssh: ``engine-url = ssh://root@HOST``: one ssh connection for the run;
- local: ``engine-url = unix://SOCKET``: the same dockerd through its socket on
  this side (no ssh at all);
- plain: ``engine-url = ssh://root@HOST`` with DOCKEROO_SSH_TUNNEL=0: the docker
  CLI's own ssh support, one ssh session (handshake) per docker command.

Targets: ssh <= 1.2x local, and ssh's overhead (ssh - local) at most a third of
plain's (plain - local).  The row's ratio is ssh / local; the overhead ratio is
in its detail.  Everything is measured in one run of this module.
"""

import os
import subprocess
import sys

import bench_noop
import harness

sys.path.insert(0, os.path.join(harness.ROOT, "tests"))

from support.busybox import busybox_rootfs_tar  # noqa: E402
from support.remote import SshClient, hosts, rig  # noqa: E402

EXTRA_ROWS = []


def run(runs=5, warmup=1):
    if os.geteuid() != 0:
        raise RuntimeError("bench_remote starts a dockerd and an sshd in a namespace: needs root")
    started = not os.path.exists("/run/dockeroo-dkremote1/sshd.pid")  # stopped again at the end
    rig("start", "1")
    host = hosts(1)[0]
    prefix = harness.unique("dkbremote")
    base = os.path.join(harness.workdir(), prefix)
    os.makedirs(base)
    client = SshClient(os.path.join(base, "ssh-client"), [host])
    image = "dockeroo-bench/busybox:remote"
    if host.inspect("image", image) is None:
        tar = os.path.join(base, "rootfs.tar")
        busybox_rootfs_tar(tar)
        host.docker("import", "--change", 'CMD ["/bin/sh"]', tar, image)
    buildout = harness.buildout_executable()
    sides = {"ssh": (host.url, {}), "local": ("unix://" + host.socket, {}),
             "plain": (host.url, {"DOCKEROO_SSH_TUNNEL": "0"})}
    dirs = {}
    for name in sides:
        dirs[name] = os.path.join(base, name)
        os.makedirs(dirs[name])

    def configure(name, text):
        with open(os.path.join(dirs[name], "buildout.cfg"), "w") as handle:
            handle.write(text)

    def buildout_run(name):
        url, extra = sides[name]
        env = dict(os.environ, **client.env, **extra)
        result = subprocess.run([buildout, "-N"], cwd=dirs[name], env=env, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise RuntimeError(result.stdout + result.stderr)

    def up(name):
        url = sides[name][0]
        text = bench_noop.buildout_cfg("%s-%s" % (prefix, name), image)
        configure(name, text.replace("\nrecipe = dockeroo:", "\nengine-url = %s\nrecipe = dockeroo:"
                                     % url))
        buildout_run(name)

    def down(name):
        configure(name, "[buildout]\nparts =\n")
        buildout_run(name)

    times = {name: [] for name in sides}
    connections = []
    try:
        for index in range(warmup + runs):
            for name in sides:
                harness.settle()
                before = host.accepted()
                seconds = harness.timed(lambda: up(name))
                if name == "ssh":
                    connections.append(host.accepted() - before)
                down(name)
                if index >= warmup:
                    times[name].append(seconds)
    finally:
        for name in sides:
            configure(name, "[buildout]\nparts =\n")
            try:
                buildout_run(name)
            except RuntimeError:
                pass
        host.remove_prefixed(prefix)
        if started:
            rig("stop", "1")
    ratio = harness.paired_ratio(times["ssh"], times["local"])
    overhead = harness.median([(s - l) / (p - l) if p > l else float("inf")
                               for s, l, p in zip(times["ssh"], times["local"], times["plain"])])
    EXTRA_ROWS[:] = [harness.Row(
        name="first apply over ssh: overhead vs plain DOCKER_HOST=ssh://",
        ours=harness.median(times["ssh"]) - harness.median(times["local"]),
        reference=harness.median(times["plain"]) - harness.median(times["local"]),
        reference_name="(plain ssh - local)", target="<= 0.33", met=overhead <= 1 / 3,
        paired=overhead, detail="plain ssh / local %.2f"
        % harness.paired_ratio(times["plain"], times["local"]),
        samples={"ours": times["ssh"], "reference": times["local"], "plain": times["plain"]})]
    return harness.Row(
        name="first apply over ssh (10 containers, 5 volumes, 5 networks)",
        ours=harness.median(times["ssh"]), reference=harness.median(times["local"]),
        reference_name="the same engine on its local socket", target="<= 1.2",
        met=ratio <= 1.2 and set(connections) == {1},
        paired=ratio, detail="ssh connections per run: %s; overhead vs plain ssh %.2f"
        % (sorted(set(connections)), overhead),
        samples={"ours": times["ssh"], "reference": times["local"], "plain": times["plain"]})
