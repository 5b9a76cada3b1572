"""``dockeroo plan`` without an engine: arguments, output, removal plans
(on inspect JSON recorded from the real engine)."""

import json
import os

import pytest
from zc.buildout import UserError

from dockeroo import cli
from dockeroo.model.plan import Observed, action
from dockeroo.recipes.volume import Recipe as Volume

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "inspect")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


OWNER = "091dde7522969de5"  # the buildout the fixture was captured in
OLD = {"recipe": "dockeroo:docker.volume", "name": "dkplancli-demo-data", "dockeroo-owner": OWNER}


def test_arguments_as_buildout_parses_them():
    args = cli.parse_plan_args(["-No", "-c", "other.cfg", "vol:name=x", "parts=a b", "--json",
                                "-v"])
    assert args.config == "other.cfg" and args.json
    assert args.options == [("buildout", "newest", "false"), ("buildout", "offline", "true"),
                            ("vol", "name", "x"), ("buildout", "parts", "a b"),
                            ("buildout", "verbosity", "10")]
    assert cli.parse_plan_args(["-cx.cfg"]).config == "x.cfg"
    with pytest.raises(UserError):
        cli.parse_plan_args(["-c"])
    with pytest.raises(UserError):
        cli.parse_plan_args(["install"])


def test_removal_of_an_owned_volume():
    observed = Observed.recorded({("volume", "dkplancli-demo-data"): fixture("volume-owned.json")})
    assert Volume.plan_removal(observed, "demo-volume", OLD, "part removed") == [
        action("demo-volume", "volume", "dkplancli-demo-data", "remove", "part removed")]


def test_removal_honours_keep_ownership_and_absence():
    observed = Observed.recorded({("volume", "dkplancli-demo-data"): fixture("volume-owned.json")})
    kept = Volume.plan_removal(observed, "demo-volume", dict(OLD, keep="true"), "part removed")
    assert [(a.verb, a.reasons) for a in kept] == [("unchanged", ("keep = true: left in place",))]
    other = Volume.plan_removal(observed, "other-part", OLD, "part removed")
    assert [(a.verb, a.reasons) for a in other] == [("unchanged", ("not created by this part",))]
    gone = Volume.plan_removal(Observed.recorded({}), "demo-volume", OLD, "part removed")
    assert [(a.verb, a.reasons) for a in gone] == [("unchanged", ("already gone",))]


def test_text_output_and_summary():
    entries = [("dockeroo:docker.volume", action("v", "volume", "data", "create", "new part")),
               ("dockeroo:docker.volume", action("v", "volume", "old", "remove",
                                                 "replaced by volume data")),
               ("dockeroo:docker.network", cli.PartEntry("n", "dockeroo:docker.network", "maybe",
                                                         "cannot plan this recipe yet")),
               ("zc.recipe.egg", cli.PartEntry("eggs", "zc.recipe.egg", "update"))]
    assert cli.render(entries).splitlines() == [
        "[v] (dockeroo:docker.volume)",
        "  + create volume data: new part",
        "  - remove volume old: replaced by volume data",
        "[n] (dockeroo:docker.network)",
        "  ? maybe dockeroo:docker.network part n: cannot plan this recipe yet",
        "[eggs] (zc.recipe.egg)",
        "  update part eggs",
        "Plan: 1 to create, 1 to remove, 1 unknown (? maybe); parts of other recipes: 1 to update.",
    ]
    quiet = [("r", action("v", "volume", "data", "unchanged")),
             ("zc.recipe.egg", cli.PartEntry("eggs", "zc.recipe.egg", "update"))]
    assert cli.render(quiet).splitlines()[-1] == (
        "No changes: Docker holds what the configuration describes. "
        "(1 unchanged, parts of other recipes: 1 to update)")
    assert not any(cli.entry_changes(e) for _, e in quiet)
    assert cli.entry_json(entries[3][1]) == {"part": "eggs", "kind": "part", "name": "eggs",
                                             "action": "update", "reasons": [],
                                             "recipe": "zc.recipe.egg"}


def test_real_run_log_line():
    assert action("v", "volume", "data", "create", "new part").doing() == \
        "creating volume data because the part is new"
    assert action("a", "container", "app", "recreate", "option 'command' changed").doing() == \
        "recreating container app because option 'command' changed"


def test_volume_with_user_labels_in_the_io_dockeroo_namespace_is_unchanged():
    """The demo's ``labels = io.dockeroo.demo=true``: only dockeroo's own
    labels are left out of the comparison (the plan said "its labels differ")."""
    from dockeroo.model.options import Options
    from dockeroo.model.plan import Context
    from dockeroo.recipes import volume
    observed = Observed.recorded({("volume", "dockeroo-demo-data"):
                                  fixture("volume-user-labels.json")})
    opts = Options("demo-volume", {"labels": "io.dockeroo.demo=true"})
    spec = volume.read(opts, "dockeroo-demo-data", "name")
    context = Context(old={"name": "dockeroo-demo-data", "labels": "io.dockeroo.demo=true"})
    assert volume.plan("demo-volume", spec, observed, context) == [
        action("demo-volume", "volume", "dockeroo-demo-data", "unchanged")]
    other = volume.read(Options("demo-volume", {"labels": "io.dockeroo.demo=false"}),
                        "dockeroo-demo-data", "name")
    [act] = volume.plan("demo-volume", other, observed, context)
    assert act.verb == "unchanged" and "labels differ" in act.reasons[0]


def test_command_line_errors(capsys):
    assert cli.main(["plan", "-x"]) == 1
    assert capsys.readouterr().err.startswith("Error: Invalid option '-x'")
    assert cli.main(["frobnicate"]) == 1
    assert "unknown command" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("dockeroo plan")


def test_missing_configuration_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("dockeroo.base.mode.PLANNING", False)
    assert cli.main(["plan", "-c", str(tmp_path / "nothere.cfg")]) == 1
    assert capsys.readouterr().err.startswith("Error: Couldn't open")
    assert os.listdir(tmp_path) == []
