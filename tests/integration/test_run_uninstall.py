"""docker.run uninstall of several parts in one buildout run: one batch of docker calls."""

import os
import subprocess

from support.engine import docker, inspect

TRAP = "/bin/sh -c 'trap \"echo term > /logs/$$HOSTNAME; exit 0\" TERM; while :; do sleep 0.2; done'"


def test_uninstall_of_several_parts_is_one_stop_and_one_rm(buildout, prefix, base_image, tmp_path):
    sections = []
    for i in range(4):
        sections.append("""
            [app%d]
            recipe = dockeroo:docker.run
            name = %s-app%d
            hostname = app%d
            image = %s
            volumes = %s-logs:/logs
            command = %s
            stop-timeout = 5
            %s
            """ % (i, prefix, i, i, base_image, prefix, TRAP, "keep = true" if i == 3 else ""))
    buildout.configure("\n".join(sections))
    buildout.ok()
    # app2's container is replaced by one the part did not make: left alone
    docker("kill", prefix + "-app2")  # SIGKILL: no TERM (Podman's rm -f would send one)
    docker("rm", prefix + "-app2")
    docker("run", "-d", "--name", prefix + "-app2", base_image, "sleep", "3600")

    wrapper_dir = tmp_path / "wrap"
    wrapper_dir.mkdir()
    log = tmp_path / "calls.log"
    real = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True,
                          text=True).stdout.strip()
    (wrapper_dir / "docker").write_text('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (log, real))
    os.chmod(wrapper_dir / "docker", 0o755)
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write("[buildout]\nparts =\n")
    result = buildout.ok(env={"PATH": "%s:%s" % (wrapper_dir, os.environ["PATH"])})

    assert inspect("container", prefix + "-app0") is None
    assert inspect("container", prefix + "-app1") is None
    assert inspect("container", prefix + "-app2") is not None  # not ours
    assert "was not created by this part" in result.output
    assert inspect("container", prefix + "-app3")["State"]["Running"]  # keep = true
    assert "Removed container %s-app0" % prefix in result.output
    assert "Removed container %s-app1" % prefix in result.output
    assert buildout.installed().count("[app") == 0
    # stopped gracefully (TERM), in one docker stop and one docker rm
    out = docker("run", "--rm", "-v", prefix + "-logs:/logs", base_image, "ls", "/logs")
    assert sorted(out.split()) == ["app0", "app1"]
    calls = [c.split() for c in log.read_text().splitlines()]
    stops = [c for c in calls if c[0] == "stop"]
    removals = [c for c in calls if c[0] == "rm"]
    assert len(stops) == 1 and sorted(stops[0][3:]) == [prefix + "-app0", prefix + "-app1"], calls
    assert len(removals) == 1, calls
    docker("rm", "-f", "-v", prefix + "-app2", prefix + "-app3")
