"""dockeroo.runtime.run without an engine: the run lock, buildout's record, the records."""

import os
import subprocess
import sys
import textwrap

import pytest
import zc.buildout.configparser
from zc.buildout import UserError

from dockeroo.runtime import run as lifecycle
from support.runs import bare_run

HOLD = textwrap.dedent("""\
    import sys, time
    from dockeroo.runtime import run as lifecycle
    lifecycle.current(sys.argv[1])
    print("locked", flush=True)
    time.sleep(60)
    """)
TRY = textwrap.dedent("""\
    import sys
    from zc.buildout import UserError
    from dockeroo.runtime import run as lifecycle
    try:
        lifecycle.current(sys.argv[1])
    except UserError as exc:
        print("refused:", exc)
    else:
        print("locked")
    """)


def test_a_second_run_waits_then_fails_naming_the_holder(tmp_path):
    parts = str(tmp_path / "parts")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, parts], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        env = dict(os.environ, DOCKEROO_LOCK_TIMEOUT="0.5")
        out = subprocess.run([sys.executable, "-c", TRY, parts], capture_output=True, text=True,
                             env=env).stdout
        assert out.startswith("refused: another buildout run (pid %d)" % holder.pid), out
        assert str(tmp_path) in out and "DOCKEROO_LOCK_TIMEOUT" in out
    finally:
        holder.kill()
        holder.wait()
    # the operating system released it with the process
    out = subprocess.run([sys.executable, "-c", TRY, parts], capture_output=True, text=True,
                         env=dict(os.environ, DOCKEROO_LOCK_TIMEOUT="0")).stdout
    assert out.strip() == "locked"


def test_lock_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv(lifecycle.LOCK_TIMEOUT_ENV, raising=False)
    assert lifecycle.lock_timeout() == lifecycle.DEFAULT_LOCK_TIMEOUT
    monkeypatch.setenv(lifecycle.LOCK_TIMEOUT_ENV, "2.5")
    assert lifecycle.lock_timeout() == 2.5
    monkeypatch.setenv(lifecycle.LOCK_TIMEOUT_ENV, "soon")
    with pytest.raises(UserError, match="DOCKEROO_LOCK_TIMEOUT"):
        lifecycle.lock_timeout()


def test_parts_buildout_would_forget_stay_in_its_record(tmp_path):
    installed = tmp_path / ".installed.cfg"
    installed.write_text("[buildout]\nparts = a\n\n[a]\nrecipe = x\n__buildout_installed__ = \n")
    run = bare_run(tmp_path)
    run.deferred["old"] = {"recipe": "dockeroo:docker.run", "name": "n-old",
                           "__buildout_installed__": "", "script": "echo $${HOME}\nsecond"}
    run.keep_recorded({"buildout": {"installed": str(installed)}}, "new",
                      {"recipe": "dockeroo:docker.run", "name": "n-new"})
    with open(installed) as handle:
        recorded = zc.buildout.configparser.parse(handle, str(installed))
    assert recorded["buildout"]["parts"].split() == ["a", "old", "new"]
    assert recorded["new"]["name"] == "n-new" and recorded["new"]["__buildout_installed__"] == ""
    assert recorded["old"]["script"] == "echo $${HOME}\nsecond"
    assert recorded["a"]["recipe"] == "x"
    # a deferred part installed again is buildout's to record
    run.succeeded.add("old")
    before = installed.read_text()
    run.keep_recorded({"buildout": {"installed": str(installed)}})
    assert installed.read_text() == before


def test_pending_records_are_kept_once(tmp_path):
    run = bare_run(tmp_path)
    run.configuration("p/1", {"name": "a"})
    run.configuration("p/1", {"name": "a"})
    run.retire_image("p/1", "sha256:1", {}, "owner")
    assert run.pending("p/1") == [{"options": {"name": "a"}},
                                  {"image": "sha256:1", "engine": {}, "owner": "owner"}]
    assert os.listdir(os.path.join(run.state, "pending")) == ["p%2F1.json"]
    run._save_pending("p/1", [])
    assert os.listdir(os.path.join(run.state, "pending")) == []


def test_several_configurations_are_recorded_together(tmp_path):
    run = bare_run(tmp_path)
    run.configuration("a", {"name": "a"})
    run.configurations([("a", {"name": "a"}), ("b", {"name": "b"}), ("c", {"name": "c"})])
    assert run.pending("a") == [{"options": {"name": "a"}}]  # once
    assert run.pending("b") == [{"options": {"name": "b"}}]
    assert sorted(os.listdir(os.path.join(run.state, "pending"))) == ["a.json", "b.json", "c.json"]
