"""The pure plans of docker.run and docker.copy, on inspect JSON recorded
from the real engine (fixtures/inspect/run-app.json, made by
fixtures/inspect/capture_run.py: a container installed by a real buildout,
running and stopped, its image, another image, a container of nobody)."""

import glob
import json
import logging
import os
import re

import pytest
from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.runtime import container as ct
from dockeroo.runtime import run as lifecycle
from dockeroo.model import plan as plan_mod
from dockeroo.model.options import Options
from dockeroo.model.plan import Context, Observed, action
from dockeroo.recipes import copy as copy_mod
from dockeroo.recipes import run as run_mod

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
with open(os.path.join(HERE, "fixtures", "inspect", "run-app.json")) as _handle:
    REC = json.load(_handle)
OPTIONS = REC["options"]
NAME, IMAGE, OWNER = OPTIONS["name"], OPTIONS["image"], REC["owner"]


def spec_of(options, directory="/nowhere"):
    return run_mod.read(Options("app", dict(options)), options["name"], "name", directory)


def observed(container="running", image="image"):
    objects = {}
    if container:
        objects[("container", NAME)] = REC[container]
    if image:
        objects[("image", IMAGE)] = REC[image]
    return Observed.recorded(objects)


def run_plan(options=OPTIONS, old=OPTIONS, container="running", image="image", context=None,
             directory="/nowhere"):
    context = context or Context(old=old)
    return run_mod.plan("app", spec_of(options, directory), observed(container, image), context,
                        OWNER, dict(options))


def only(actions):
    assert len(actions) == 1, actions
    act = actions[0]
    assert (act.part, act.kind, act.name) == ("app", "container", NAME)
    return act.verb, act.reasons


# -- docker.run ---------------------------------------------------------------------------
def test_recorded_fingerprint_is_the_whole_spec_and_image_id():
    label = REC["running"]["Config"]["Labels"]["io.dockeroo.fingerprint"]
    assert plan_mod.fingerprint(spec_of(OPTIONS), REC["image"]["Id"]) == label


def test_nothing_changed():
    assert only(run_plan()) == ("unchanged", ())


def test_options_that_do_not_define_the_container_change_nothing():
    options = dict(OPTIONS, timeout="30s", keep="true", wait="5")
    assert only(run_plan(options)) == ("unchanged", ())


def test_option_change_recreates_with_the_option_named():
    options = dict(OPTIONS, command="sleep 7200")
    assert only(run_plan(options)) == ("recreate", ("option 'command' changed",))
    added = dict(OPTIONS, user="nobody")
    assert only(run_plan(added)) == ("recreate", ("option 'user' added",))


def test_layout_content_change_is_described(tmp_path):
    layout = tmp_path / "layout"
    (layout / "etc").mkdir(parents=True)
    (layout / "etc" / "motd").write_text("hello\n")
    options = dict(OPTIONS, layout=str(layout), **{"layout-fingerprint": "after"})
    old = dict(options, **{"layout-fingerprint": "before"})
    assert only(run_plan(options, old, directory=str(tmp_path))) == (
        "recreate", ("layout content changed",))


def test_image_rebuilt_earlier_in_the_run():
    """A real run: the build part already made a new image under the reference."""
    verb, reasons = only(run_plan(image="rebuilt-image"))
    assert verb == "recreate"
    assert reasons == ("image %s changed (id %s -> %s)" % (
        IMAGE, REC["image"]["Id"][7:19], REC["rebuilt-image"]["Id"][7:19]),)


def test_image_to_be_rebuilt_by_an_earlier_part_while_planning():
    context = Context(old=OPTIONS, planning=True)
    context.will_change_image(IMAGE, action("img", "image", IMAGE, "recreate",
                                            "context file app.py changed"))
    assert only(run_plan(context=context)) == (
        "recreate", ("image %s will be rebuilt (context file app.py changed)" % IMAGE,))
    # the image does not exist yet either
    assert only(run_plan(context=context, image=None))[0] == "recreate"


def test_image_made_by_an_earlier_part_while_planning():
    """The image is gone (removed by hand): its build part makes it again."""
    context = Context(old=OPTIONS, planning=True)
    context.will_change_image(IMAGE, action("img", "image", IMAGE, "create", "new part"))
    options = dict(OPTIONS, command="sleep 1")
    assert only(run_plan(options, image=None, context=context)) == (
        "recreate", ("option 'command' changed", "image %s will be made (new part)" % IMAGE))
    assert only(run_plan(image=None, context=context, container=None)) == (
        "repair", ("container %s is missing (removed by hand?)" % NAME,))


def test_image_maybe_changed_by_an_earlier_pull():
    context = Context(old=OPTIONS, planning=True)
    context.will_change_image(IMAGE, action("img", "image", IMAGE, "maybe",
                                            "newest mode: the tag may have moved"))
    assert only(run_plan(context=context)) == (
        "maybe", ("image %s may change (newest mode: the tag may have moved)" % IMAGE,))
    # an own change is certain whatever the pull does
    options = dict(OPTIONS, command="sleep 1")
    assert only(run_plan(options, context=context)) == (
        "recreate", ("option 'command' changed",))


def test_missing_image_and_nobody_makes_it():
    spec = spec_of(OPTIONS)
    with pytest.raises(UserError) as info:
        run_mod.plan("app", spec, observed(image=None), Context(old=OPTIONS), OWNER, OPTIONS,
                     image_error=lambda: UserError("the hint"))
    assert str(info.value) == "the hint"


def test_new_part():
    assert only(run_plan(old=None, container=None)) == ("create", ("new part",))


def test_renamed_container():
    old = dict(OPTIONS, name="previous")
    assert only(run_plan(old=old, container=None)) == (
        "create", ("option 'name' changed (was previous)",))


def test_removed_by_hand():
    assert only(run_plan(container=None)) == (
        "repair", ("container %s is missing (removed by hand?)" % NAME,))
    # ... and the options changed too: made anew
    verb, reasons = only(run_plan(dict(OPTIONS, command="true"), container=None))
    assert verb == "create" and "option 'command' changed" in reasons


def test_stopped_by_hand():
    assert only(run_plan(container="stopped")) == ("repair", ("container %s is stopped" % NAME,))
    stays = dict(OPTIONS, start="false")
    assert only(run_plan(stays, container="stopped")) == ("unchanged", ())


def test_no_reason_known():
    """Installed before this configuration was recorded (no .installed.cfg)."""
    options = dict(OPTIONS, command="sleep 1")
    assert only(run_plan(options, old=None)) == ("recreate", ("its definition changed",))


def test_container_of_someone_else():
    with pytest.raises(UserError) as info:
        run_mod.plan("app", spec_of(OPTIONS), Observed.recorded({
            ("container", NAME): REC["not-ours"], ("image", IMAGE): REC["image"]}),
            Context(old=None), OWNER, OPTIONS)
    assert str(info.value) == (
        "Part [app]: container %s already exists and was not created by this part; remove it "
        "or choose another name (option 'name')" % NAME)


def test_volumes_from_parser():
    opts = Options("p", {"volumes-from": "data\nlogs:ro\ncache:rw"})
    assert ct.read_volumes_from(opts) == ["data", "logs:ro", "cache:rw"]
    for bad in ("data:rx", "data:ro:x", "-data", "data:"):
        with pytest.raises(UserError) as info:
            ct.read_volumes_from(Options("p", {"build-volumes-from": bad}), "build-volumes-from")
        assert str(info.value) == ("Part [p], option 'build-volumes-from' = %r: each line must be "
                                   "CONTAINER or CONTAINER:ro or CONTAINER:rw" % bad)


# -- docker.copy ---------------------------------------------------------------------------
SRC, DST = NAME, REC["not-ours"]["Name"].lstrip("/")
COPY = {"recipe": "dockeroo:docker.copy", "container-from": SRC, "container-to": DST,
        "paths": "/etc/\n/bin/sh /bin/bash"}


def copy_spec(options=COPY):
    return copy_mod.read(Options("copy", dict(options)), "/nowhere/state.json")


def copy_observed():
    return Observed.recorded({("container", SRC): REC["running"],
                              ("container", DST): REC["not-ours"]})


def copied(options=COPY):
    """The state a copy of OPTIONS between the recorded containers leaves."""
    return {"from": REC["running"]["Id"], "to": REC["not-ours"]["Id"],
            "paths": plan_mod.fingerprint(copy_spec(options))}


def copy_plan(recorded, options=COPY, old=COPY, context=None):
    acts = copy_mod.plan("copy", copy_spec(options), copy_observed(),
                         context or Context(old=old), recorded, dict(options))
    assert len(acts) == 1 and (acts[0].kind, acts[0].name) == ("container", DST)
    return acts[0].verb, acts[0].reasons


def test_copy_unchanged_when_recorded_state_matches():
    assert copy_plan(copied()) == ("unchanged", ())


def test_copy_new_part():
    assert copy_plan(None, old=None) == ("update", ("new part",))


def test_copy_after_a_container_was_recreated():
    recorded = dict(copied(), to="0" * 64)
    assert copy_plan(recorded) == ("update", ("container %s was recreated" % DST,))


def test_copy_paths_changed():
    options = dict(COPY, paths="/etc/")
    assert copy_plan(copied(), options) == ("update", ("option 'paths' changed",))


def test_copy_into_a_container_an_earlier_part_recreates_while_planning():
    context = Context(old=COPY, planning=True)
    context.will_change_container(DST, action("runtime", "container", DST, "recreate",
                                              "option 'command' changed"))
    assert copy_plan(copied(), context=context) == (
        "update", ("container %s will be recreated (option 'command' changed)" % DST,))


def test_copy_of_a_new_part_while_planning():
    """The containers are new too: the reason is the part's, as in the real run."""
    context = Context(old=None, planning=True)
    context.will_change_container(DST, action("runtime", "container", DST, "create", "new part"))
    assert copy_plan(None, context=context) == ("update", ("new part",))
    context = Context(old=COPY, planning=True)
    context.will_change_container(DST, action("runtime", "container", DST, "repair",
                                              "container %s is missing" % DST))
    assert copy_plan(copied(), context=context) == (
        "update", ("container %s will be created (container %s is missing)" % (DST, DST),))


def test_copy_from_a_missing_container():
    with pytest.raises(UserError) as info:
        copy_mod.plan("copy", copy_spec(), Observed.recorded({}), Context(old=None), None, COPY)
    assert str(info.value) == ("Part [copy], option 'container-from' = %r: container %s does "
                               "not exist" % (SRC, SRC))


# -- unknown options ------------------------------------------------------------------------
@pytest.fixture
def planning(monkeypatch, tmp_path):
    """Recipes constructed as ``dockeroo plan`` does: no lock, no docker process."""
    monkeypatch.setattr(mode, "PLANNING", True)
    monkeypatch.setattr(lifecycle, "_runs", {})
    return {"buildout": {"directory": str(tmp_path), "parts-directory": str(tmp_path / "parts"),
                         "parts": ""}}


def construct(buildout, cls, part, options, caplog):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cls(buildout, part, dict(options))
    return [r.getMessage() for r in caplog.records if "is not an option" in r.getMessage()]


def test_a_typo_warns(planning, caplog):
    warned = construct(planning, run_mod.Recipe, "app", dict(OPTIONS, comand="true"), caplog)
    assert warned == ["option 'comand' is not an option of dockeroo:docker.run "
                      "(did you mean 'command'?); it is ignored"]
    warned = construct(planning, copy_mod.Recipe, "copy", dict(COPY, path="/x"), caplog)
    assert warned == ["option 'path' is not an option of dockeroo:docker.copy "
                      "(did you mean 'paths'?); it is ignored"]
    # the correct spelling does not warn
    assert construct(planning, run_mod.Recipe, "app", OPTIONS, caplog) == []


def known_options(buildout, cls, part, options, caplog):
    """The options the recipe asks for (constructed once with OPTIONS)."""
    recipe = None

    class Probe(cls):
        def warn_unknown(self, given):
            nonlocal recipe
            recipe = self
            super().warn_unknown(given)
    construct(buildout, Probe, part, options, caplog)
    return set(recipe.opts.seen) | set(recipe.known_options)


@pytest.mark.parametrize("recipe,cls,part,options", [
    ("dockeroo:docker.run", run_mod.Recipe, "app", OPTIONS),
    ("dockeroo:docker.copy", copy_mod.Recipe, "copy", COPY)])
def test_no_documented_example_warns(planning, caplog, recipe, cls, part, options):
    from dockeroo.model.engines import ENGINE_OPTIONS
    known = known_options(planning, cls, part, options, caplog) | set(ENGINE_OPTIONS) | {
        "keep", "timeout", "name", "recipe"} | set(cls.name_aliases)
    examples = 0
    for path in [os.path.join(ROOT, "README.rst")] + sorted(
            glob.glob(os.path.join(ROOT, "docs", "**", "*.rst"), recursive=True)):
        for section, values in ini_sections(path):
            if values.get("recipe") != recipe:
                continue
            examples += 1
            unknown = plan_mod.unknown_options(values, known)
            assert not unknown, (path, section, unknown)
    assert examples >= 1


def ini_sections(path):
    """(section, {option: first line of its value}) of the ini code blocks of PATH."""
    with open(path) as handle:
        text = handle.read()
    out = []
    for block in re.findall(r"\.\. code-block:: ini\n\n((?:[ \t]+.*\n|\n)+)", text):
        values = None
        for line in block.splitlines():
            head = re.match(r"^    \[([^\]]+)\]\s*$", line)
            pair = re.match(r"^    ([A-Za-z][\w.-]*)\s*[+-]?=\s*(.*)$", line)
            if head:
                values = {}
                out.append((head.group(1), values))
            elif pair and values is not None:
                values[pair.group(1)] = pair.group(2).strip()
    return out
