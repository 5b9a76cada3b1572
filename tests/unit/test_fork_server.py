"""The tests' buildout fork server (support/buildout_server.py) stands for a
new ``bin/buildout`` process: same output, return code, environment, working
directory, signals and timeout as ``subprocess.run`` of the console script."""

import os
import signal
import subprocess
import textwrap

import pytest

from support.buildout import BUILDOUT, DOCKEROO, run_process

RECIPE = textwrap.dedent("""\
    import os, signal, sys, tempfile
    class Recipe:
        def __init__(self, buildout, name, options):
            self.options = options
        def install(self):
            print("argv", sys.argv[1:])
            print("env", os.environ.get("DKT_X"), "cwd", os.getcwd())
            print("tmp", tempfile.gettempdir())
            sys.stderr.write("to stderr\\n")
            if self.options.get("kill"):
                os.kill(os.getpid(), signal.SIGKILL)
            if self.options.get("sleep"):
                import time; time.sleep(60)
            return ()
        update = install
    """)


@pytest.fixture
def directory(tmp_path):
    (tmp_path / "recipe.py").write_text(RECIPE)
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='dkt-recipe', py_modules=['recipe'], "
        "entry_points={'zc.buildout': ['default = recipe:Recipe']})\n")
    return tmp_path


def configure(directory, **options):
    extra = "".join("%s = %s\n" % item for item in options.items())
    (directory / "buildout.cfg").write_text(
        "[buildout]\ndevelop = .\nparts = p\n\n[p]\nrecipe = dkt-recipe\n" + extra)


def both(directory, argv, **env):
    environ = dict(os.environ, **env)
    forked = run_process(argv, str(directory), environ, 120)
    real = subprocess.run(argv, cwd=str(directory), env=environ, capture_output=True,
                          text=True, timeout=120)
    return forked, real


def test_a_forked_buildout_is_like_its_own_process(directory, tmp_path_factory):
    configure(directory)
    tmp = str(tmp_path_factory.mktemp("tmpdir"))
    forked, real = both(directory, [BUILDOUT, "-N", "p:x=1"], DKT_X="seen", TMPDIR=tmp)
    assert forked.returncode == real.returncode == 0, (forked, real)
    for result in (forked, real):
        assert "argv ['-N', 'p:x=1']" in result.stdout
        assert "env seen cwd %s" % directory in result.stdout
        assert "tmp %s" % tmp in result.stdout
        assert "to stderr" in result.stderr


def test_an_error_and_its_status(directory):
    (directory / "buildout.cfg").write_text("[buildout]\nparts = p\n\n[p]\nx = ${nope:x}\n")
    forked, real = both(directory, [BUILDOUT, "-N"])
    assert forked.returncode == real.returncode != 0
    def error(result):  # (the first run made the directories and said so)
        return [line for line in (result.stdout + result.stderr).splitlines()
                if not line.startswith("Creating directory")]
    assert error(forked) == error(real) and any("nope" in line for line in error(real))


def test_killed_is_a_negative_return_code(directory):
    configure(directory, kill="1")
    forked = run_process([BUILDOUT, "-N"], str(directory), dict(os.environ), 120)
    assert forked.returncode == -signal.SIGKILL  # (as subprocess.run says)


def test_a_timeout_kills_it(directory):
    configure(directory, sleep="1")
    with pytest.raises(subprocess.TimeoutExpired):
        run_process([BUILDOUT, "-N"], str(directory), dict(os.environ), 5)


def test_dockeroo_plan_is_forked_too(directory):
    (directory / "buildout.cfg").write_text("[buildout]\nparts =\n")
    forked, real = both(directory, [DOCKEROO, "plan", "-N"])
    assert (forked.returncode, forked.stdout) == (real.returncode, real.stdout)
