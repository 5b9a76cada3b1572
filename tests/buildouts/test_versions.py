"""The zc.buildout version matrix: the demo buildout on the zc.buildout this
runs with.

``.ci/buildouts`` (the CI lane ``buildouts``) and ``tox -e bo3`` ... ``bo6``
run this file with a virtual environment per zc.buildout major (the newest
release of 3, 4, 5 and 6, and 2.13 for the refusal): install, a no-op re-run,
``dockeroo plan`` (exit 0, then 2 after a change), the change, and
``buildout:parts=``.  On zc.buildout 2 the run must stop with one ``Error:``
line before anything is created.

The demo's names and subnet are overridden on the command line, as in
tests/integration/test_demo.py, so nothing collides with another run.
"""

import os
import shutil
import subprocess
import sys

import pytest

from support.buildout import HERE
from support.engine import docker, free_subnet, inspect

from dockeroo.model.buildout import SUPPORTED, buildout_major, buildout_version

REPO = os.path.dirname(HERE)
DOCKEROO = os.path.join(os.path.dirname(sys.executable), "dockeroo")
MAJOR = buildout_major()


@pytest.fixture
def demo(buildout, prefix):
    """The buildout directory with the matrix buildout, and its overrides."""
    shutil.copy(os.path.join(REPO, "buildout.cfg"), buildout.path("buildout.cfg"))
    shutil.copy(os.path.join(HERE, "buildouts", "matrix.cfg"), buildout.path("matrix.cfg"))
    shutil.copytree(os.path.join(REPO, "demo"), buildout.path("demo"))
    net = free_subnet()
    overrides = [
        "-c", "matrix.cfg",
        "demo-network:name=%s-net" % prefix,
        "demo-network:subnet=%s" % net,
        "demo-network:gateway=%s" % next(net.hosts()),
        "demo-volume:name=%s-data" % prefix,
        "demo-image:name=%s-demo:latest" % prefix,
        "demo-first:name=%s-first" % prefix,
        "demo-second:name=%s-second" % prefix,
    ]
    return buildout, overrides


def plan(bo, *args):
    proc = subprocess.run([DOCKEROO, "plan", "-N", *args], cwd=bo.directory,
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def copied(container):
    return docker("cp", container + ":/copied/hello.txt", "-")


def owned_objects(prefix):
    """The demo's objects the engine holds (all named after PREFIX)."""
    names = [("container", prefix + "-first"), ("container", prefix + "-second"),
             ("image", prefix + "-demo:latest"), ("network", prefix + "-net"),
             ("volume", prefix + "-data")]
    return [(kind, name) for kind, name in names if inspect(kind, name) is not None]


@pytest.mark.skipif(MAJOR not in SUPPORTED, reason="zc.buildout %s is not supported"
                    % buildout_version())
def test_demo_cycle(demo, prefix):
    bo, overrides = demo
    result = bo.ok(*overrides)
    image = inspect("image", prefix + "-demo:latest")
    assert image["Config"]["Labels"]["io.dockeroo.demo.greeting"] == "Hello from dockeroo"
    assert inspect("network", prefix + "-net")["Labels"]["io.dockeroo.demo"] == "true"
    assert inspect("volume", prefix + "-data") is not None
    first, second = inspect("container", prefix + "-first"), inspect("container",
                                                                      prefix + "-second")
    assert first["Image"] == second["Image"] == image["Id"]
    assert prefix + "-net" in first["NetworkSettings"]["Networks"]
    assert copied(prefix + "-second")  # the copy is there

    again = bo.ok(*overrides)  # a re-run changes nothing
    assert "nothing to build" in again.output, again.output
    assert inspect("container", prefix + "-second")["Id"] == second["Id"]
    assert inspect("image", prefix + "-demo:latest")["Id"] == image["Id"]

    code, output = plan(bo, *overrides)
    assert code == 0, output
    change = overrides + ["demo-image:build-args=GREETING=Changed by the matrix"]
    code, output = plan(bo, *change)
    assert code == 2, output
    assert "image %s-demo:latest" % prefix in output, output

    bo.ok(*change)
    changed = inspect("image", prefix + "-demo:latest")
    assert changed["Config"]["Labels"]["io.dockeroo.demo.greeting"] == "Changed by the matrix"
    second = inspect("container", prefix + "-second")
    assert second["Image"] == changed["Id"]  # the containers follow the image
    assert copied(prefix + "-second")
    code, output = plan(bo, *change)
    assert code == 0, output

    gone = bo.run(*change + ["buildout:parts="])
    assert gone.ok and "Traceback" not in gone.output, gone.output
    assert owned_objects(prefix) == []
    assert result.ok


@pytest.mark.skipif(MAJOR >= SUPPORTED[0], reason="zc.buildout %s is supported"
                    % buildout_version())
def test_older_buildout_is_refused_before_anything_is_created(demo, prefix):
    bo, overrides = demo
    result = bo.run(*overrides)
    assert not result.ok, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert error == ["Error: dockeroo needs zc.buildout 3 or later (tested: 3, 4, 5, 6); "
                     "this buildout runs zc.buildout %s.  Upgrade it (pip install "
                     "'zc.buildout>=3') and run buildout again; nothing was changed."
                     % buildout_version()], result.output
    assert "Traceback" not in result.output and "VersionConflict" not in result.output
    assert owned_objects(prefix) == []
    assert "demo-" not in bo.installed()  # no part recorded: nothing left to uninstall
    code, output = plan(bo, *overrides)
    assert code == 1 and "Error: dockeroo needs zc.buildout 3" in output, output
    assert owned_objects(prefix) == []
