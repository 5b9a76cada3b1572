"""The pure plans of docker.build, docker.pull and docker.push, on inspect
JSON recorded from the real engine (tests/unit/fixtures/inspect/images-*),
and the digest cache's list of changed files the build plan names."""

import copy
import dataclasses
import json
import os

import pytest
from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.base import fingerprint as fp
from dockeroo.model import plan as plan_mod
from dockeroo.model.options import Options
from dockeroo.model.plan import Context, Observed
from dockeroo.recipes import build, pull, push

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "inspect")
IMAGE = "dkt00000000-demo:latest"
REGISTRY_REF = "127.0.0.1:5000/dkt00000000-app:1"


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


@pytest.fixture
def options():
    """The options .installed.cfg recorded for the part that built images-built.json."""
    return fixture("images-built.options.json")


def make_spec(tmp_path, options, **changes):
    """read() of OPTIONS (with a real context in TMP_PATH), resolved as the recipe does."""
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    values = {k: v for k, v in options.items() if k in ("build-args", "name", "source")}
    spec = build.read(Options("img", values), values["name"], str(tmp_path))
    return dataclasses.replace(spec, **dict({"builder": "legacy", "content": ("local", "c0")},
                                            **changes))


def built(spec=None):
    """The recorded built image; with SPEC, labelled as if built from it."""
    image = fixture("images-built.json")
    if spec is not None:
        image["Config"]["Labels"]["io.dockeroo.fingerprint"] = spec.fingerprint()
    return image


def recorded(obj, ref=IMAGE):
    return Observed.recorded({("image", ref): obj} if obj else {})


def build_plan(spec, observed, old, options):
    context = Context(old=old)
    acts = build.plan("img", spec, observed, context, options)
    return acts, context


def options_of(spec, options, **extra):
    """The options the recipe records for SPEC."""
    out = dict(options, fingerprint=spec.fingerprint(), **extra)
    out["context-fingerprint"] = fp.hash_values(spec.content)
    return out


# -- docker.build ----------------------------------------------------------------------------
def test_build_read_spec_fingerprint_ignores_how_it_is_built(tmp_path, options):
    spec = make_spec(tmp_path, options)
    assert spec.image == IMAGE and spec.build_args == {"A": "1"} and not spec.remote
    same = dataclasses.replace(spec, progress="quiet", cache_from=("x",), context="/elsewhere",
                               secrets_rebuild=True, changes=(("a", "added"),))
    assert same.fingerprint() == spec.fingerprint()
    for field, value in (("build_args", {"A": "2"}), ("builder", "buildkit"),
                         ("content", ("local", "c1")), ("secret_hmac", "h"), ("target", "t"),
                         ("secret_ids", ("token",)), ("add_hosts", ("h:1.2.3.4",))):
        assert dataclasses.replace(spec, **{field: value}).fingerprint() != spec.fingerprint(), field


def test_build_new_part_creates_and_announces_the_image(tmp_path, options):
    spec = make_spec(tmp_path, options)
    acts, context = build_plan(spec, recorded(None), None, options_of(spec, options))
    assert [a.line() for a in acts] == ["+ create image %s: new part" % IMAGE]
    assert context.image_change(IMAGE) is acts[0]


def test_build_unchanged_when_the_label_matches(tmp_path, options):
    spec = make_spec(tmp_path, options)
    mine = options_of(spec, options)
    acts, context = build_plan(spec, recorded(built(spec)), mine, mine)
    assert [(a.verb, a.reasons) for a in acts] == [("unchanged", ())]
    assert acts[0].data["Id"] == built()["Id"]  # apply logs its id without asking again
    assert context.image_change(IMAGE) is None


def test_build_removed_by_hand_is_repaired(tmp_path, options):
    spec = make_spec(tmp_path, options)
    mine = options_of(spec, options)
    acts, context = build_plan(spec, recorded(None), mine, mine)
    assert [a.line() for a in acts] == [
        "! repair image %s: image %s is missing (removed by hand?)" % (IMAGE, IMAGE)]
    assert context.image_change(IMAGE) is acts[0]


def test_build_option_change_recreates(tmp_path, options):
    old = options_of(make_spec(tmp_path, options), options)
    spec = make_spec(tmp_path, dict(options, **{"build-args": "A=2"}))
    acts, context = build_plan(spec, recorded(built()), old,
                               options_of(spec, options, **{"build-args": "A=2"}))
    assert [a.line() for a in acts][:1] == [
        "~ recreate image %s: option 'build-args' changed" % IMAGE]
    assert context.image_change("docker.io/library/" + IMAGE) is acts[0]


def test_build_context_change_names_the_files(tmp_path, options):
    old = options_of(make_spec(tmp_path, options), options)
    spec = make_spec(tmp_path, options, content=("local", "c2"), changes=(
        ("app.py", "changed"), ("b.txt", "added"), ("c.txt", "removed"), ("d", "added")))
    acts, _ = build_plan(spec, recorded(built()), old, options_of(spec, options))
    assert acts[0].verb == "recreate"
    assert acts[0].reasons == ("context file app.py changed", "context file b.txt added",
                               "context file c.txt removed", "1 more context files changed")
    # no record of the previous content: the context as a whole
    spec = dataclasses.replace(spec, changes=None)
    acts, _ = build_plan(spec, recorded(built()), old, options_of(spec, options))
    assert acts[0].reasons == ("build context changed",)


def test_build_renamed_tag_creates_the_new_one(tmp_path, options):
    old = options_of(make_spec(tmp_path, options), options)
    values = dict(options, name="dkt00000000-other:1")
    spec = make_spec(tmp_path, values)
    acts, _ = build_plan(spec, recorded(None, "dkt00000000-other:1"), old,
                         options_of(spec, values, image=spec.image))
    assert [a.line() for a in acts] == [
        "+ create image dkt00000000-other:1: option 'name' changed (was %s)" % IMAGE]


def test_build_over_a_foreign_image(tmp_path, options):
    spec = make_spec(tmp_path, options)
    acts, _ = build_plan(spec, recorded(fixture("images-foreign.json")), None,
                         options_of(spec, options))
    assert acts[0].verb == "recreate"
    assert acts[0].reasons == ("image %s was not built by this part: the tag moves to the new "
                               "build" % IMAGE,)


def test_build_remote_context_is_not_fetched_to_plan(tmp_path, options):
    spec = make_spec(tmp_path, options, remote=True, content=("remote", "https://x/y.git", None))
    mine = options_of(spec, options)
    acts, _ = build_plan(spec, recorded(built(spec)), mine, mine)
    assert [a.line() for a in acts] == [
        "= unchanged image %s: remote context: fetched again only when an option changes" % IMAGE]


def test_build_secret_from_a_command_is_maybe_while_planning(tmp_path, options):
    spec = make_spec(tmp_path, options)
    mine = options_of(spec, options)
    image = built(spec)
    unknown = dataclasses.replace(spec, secret_hmac="?", secrets_unknown="secrets-rebuild: "
                                  "secret tok comes from a command, run only when building")
    acts, context = build_plan(unknown, recorded(image), mine, mine)
    assert [a.line() for a in acts] == ["? maybe image %s: secrets-rebuild: secret tok comes "
                                        "from a command, run only when building" % IMAGE]
    assert context.image_change(IMAGE) is acts[0]
    # a known digest that differs from the image's label
    known = dataclasses.replace(spec, secret_hmac="new")
    image["Config"]["Labels"]["io.dockeroo.secrets-hmac"] = "old"
    acts, _ = build_plan(known, recorded(image), mine, mine)
    assert (acts[0].verb, acts[0].reasons) == ("recreate", ("secret values changed",))


def test_build_secret_key_is_not_made_while_planning(tmp_path, monkeypatch):
    monkeypatch.setattr(mode, "PLANNING", True)
    path = tmp_path / "cache" / "secrets.key"
    assert build.secret_key(str(path)) is None and not path.parent.exists()
    monkeypatch.setattr(mode, "PLANNING", False)
    key = build.secret_key(str(path))
    assert len(key) >= 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setattr(mode, "PLANNING", True)
    assert build.secret_key(str(path)) == key


# -- the files that changed since the previous run ------------------------------------------------
def test_digest_cache_lists_changed_added_removed_files(tmp_path):
    tree, cache = tmp_path / "ctx", str(tmp_path / "cache")
    tree.mkdir()
    (tree / "app.py").write_text("v1")
    (tree / "gone.txt").write_text("x")
    (tree / "same.txt").write_text("s")
    first, changes = fp.folder_fingerprint(str(tree), cache_dir=cache, changes=True)
    assert changes is None  # no previous run
    # files written just now are not trusted, but their digests are remembered
    (tree / "app.py").write_text("v2")
    (tree / "gone.txt").unlink()
    (tree / "new.txt").write_text("n")
    os.utime(str(tree / "same.txt"), (1e9, 1e9))  # new mtime, same content: no change
    second, changes = fp.folder_fingerprint(str(tree), cache_dir=cache, changes=True)
    assert second != first
    assert changes == [("app.py", "changed"), ("gone.txt", "removed"), ("new.txt", "added")]
    # nothing changed since
    assert fp.folder_fingerprint(str(tree), cache_dir=cache, changes=True) == (second, [])


def test_digest_cache_is_not_saved_while_planning(tmp_path, monkeypatch):
    tree, cache = tmp_path / "ctx", str(tmp_path / "cache")
    tree.mkdir()
    (tree / "app.py").write_text("v1")
    fp.folder_fingerprint(str(tree), cache_dir=cache)
    (tree / "app.py").write_text("v2")
    monkeypatch.setattr(mode, "PLANNING", True)
    saved = open(os.path.join(cache, os.listdir(cache)[0])).read()
    for _ in range(2):  # a plan, then the run, see the same difference
        assert fp.folder_fingerprint(str(tree), cache_dir=cache, changes=True)[1] == [
            ("app.py", "changed")]
    assert open(os.path.join(cache, os.listdir(cache)[0])).read() == saved


# -- docker.pull -----------------------------------------------------------------------------------
def pull_plan(obj, old, newest=False, offline=False, digest=None, ref=REGISTRY_REF):
    context = Context(old=old)
    return pull.plan("app", ref, digest, recorded(obj, ref), context, newest, offline), context


def test_pull_missing_image_is_pulled():
    acts, context = pull_plan(None, None)
    assert [a.line() for a in acts] == ["+ create image %s: new part" % REGISTRY_REF]
    assert context.image_change(REGISTRY_REF) is acts[0]
    acts, _ = pull_plan(None, {"image": REGISTRY_REF})
    assert [a.line() for a in acts] == [
        "! repair image %s: image %s is missing (removed by hand?)" % (REGISTRY_REF, REGISTRY_REF)]
    acts, _ = pull_plan(None, {"image": "127.0.0.1:5000/dkt00000000-app:0"})
    assert acts[0].verb == "create" and "was 127.0.0.1:5000/dkt00000000-app:0" in acts[0].reasons[0]


def test_pull_missing_image_offline_is_the_run_error():
    with pytest.raises(UserError, match=r"Part \[app\].*offline \(-o\)"):
        pull_plan(None, None, offline=True)


def test_pull_present_image():
    pulled = fixture("images-pulled.json")
    acts, context = pull_plan(pulled, {"image": REGISTRY_REF})
    assert [(a.verb, a.reasons) for a in acts] == [("unchanged", ())]
    assert context.image_change(REGISTRY_REF) is None
    acts, context = pull_plan(pulled, {"image": REGISTRY_REF}, newest=True)
    assert [a.line() for a in acts] == [
        "? maybe image %s: newest mode: the registry may have a newer image" % REGISTRY_REF]
    assert context.image_change(REGISTRY_REF) is acts[0]
    # a digest reference never changes
    by_digest = pulled["RepoDigests"][0]
    acts, _ = pull_plan(pulled, {"image": by_digest}, newest=True, digest="sha256:27",
                        ref=by_digest)
    assert acts[0].verb == "unchanged"


# -- docker.push -----------------------------------------------------------------------------------
LOCAL = "docker.io/library/dkt00000000-demo:latest"


def push_plan(local, state, images=None, offline=False, tags=None):
    objects = {("image", LOCAL): local} if local else {}
    objects.update({("image", ref): obj for ref, obj in (tags or {}).items()})
    context = Context(old={}, images=images)
    return push.plan("pub", LOCAL, REGISTRY_REF, Observed.recorded(objects), context, state,
                     offline)


def test_push_decides_from_the_last_pushed_id():
    local = built()
    assert [a.line() for a in push_plan(local, {})] == [
        "+ create image %s: first push of %s" % (REGISTRY_REF, LOCAL)]
    same = {"pushed": {REGISTRY_REF: {"image-id": local["Id"], "digest": "sha256:1"}}}
    assert [(a.verb, a.data) for a in push_plan(local, same)] == [("unchanged", None)]
    other = {"pushed": {REGISTRY_REF: {"image-id": "sha256:" + "a" * 64}}}
    acts = push_plan(local, other)
    assert [a.line() for a in acts] == [
        "~ update image %s: image %s changed since the last push (id aaaaaaaaaaaa -> d0527de55752)"
        % (REGISTRY_REF, LOCAL)]
    assert acts[0].data == ("push", local["Id"])
    acts = push_plan(local, other, offline=True)
    assert [(a.verb, a.reasons) for a in acts] == [
        ("unchanged", ("buildout is offline (-o): not pushed",))]


def test_push_after_a_rebuild_earlier_in_the_plan():
    local = built()
    same = {"pushed": {REGISTRY_REF: {"image-id": local["Id"]}}}
    rebuild = plan_mod.action("img", "image", LOCAL, "recreate", "option 'build-args' changed")
    images = {plan_mod.normal_ref(LOCAL): rebuild}
    assert [a.line() for a in push_plan(local, same, images)] == [
        "~ update image %s: image %s will be rebuilt" % (REGISTRY_REF, LOCAL)]
    # not built yet: known from the plan only
    assert push_plan(None, same, images)[0].verb == "update"
    with pytest.raises(UserError, match="does not exist locally"):
        push_plan(None, same)


def test_push_removes_the_tag_an_interrupted_run_left():
    local = built()
    tagged = copy.deepcopy(local)
    state = {"added-tags": [REGISTRY_REF, "127.0.0.1:5000/gone:1"],
             "pushed": {REGISTRY_REF: {"image-id": local["Id"]}}}
    acts = push_plan(local, state, tags={REGISTRY_REF: tagged})
    assert [a.line() for a in acts] == [
        "- remove image %s: tag added for a push by an interrupted run" % REGISTRY_REF,
        "= unchanged image %s" % REGISTRY_REF]


# -- unknown options -------------------------------------------------------------------------------
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "recipes")


def doc_examples(recipe):
    """The option names of every [section] of RECIPE in its docs page's ini examples."""
    import configparser
    import re
    with open(os.path.join(DOCS, "docker.%s.rst" % recipe)) as handle:
        text = handle.read()
    found = []
    for block in re.findall(r"\.\. code-block:: ini\n\n((?:    .*\n|\n)+)", text):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.read_string("\n".join(line[4:] for line in block.splitlines()
                                     if line.strip() != "..."))
        for section in parser.sections():
            if parser[section].get("recipe") == "dockeroo:docker." + recipe:
                found.append((section, dict(parser[section])))
    assert found, recipe
    return found


def read_options(recipe, tmp_path, values):
    """The options RECIPE's read step asks for, given VALUES."""
    import types
    from dockeroo.model.engines import ENGINE_OPTIONS
    opts = Options("part", dict(values))
    if recipe == "build":
        (tmp_path / "Dockerfile").write_text("FROM scratch\n")
        build.read(opts, "example/app:1", str(tmp_path))
        aliases = build.Recipe.name_aliases
    else:
        fake = types.SimpleNamespace(opts=opts, options=opts.options, name="example/app:1",
                                     directory=str(tmp_path), parts_directory=str(tmp_path),
                                     part="part", allow_digest=recipe == "pull",
                                     image_output="image" if recipe == "pull" else "pushed-image")
        pull.Recipe.read_registry_options(fake)
        aliases = pull.Recipe.name_aliases
    return set(opts.seen) | set(ENGINE_OPTIONS) | {"keep", "timeout", "name"} | set(aliases)


@pytest.mark.parametrize("recipe", ["build", "pull", "push"])
def test_documented_examples_use_known_options_only(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_PASSWORD", "x")
    (tmp_path / "password").write_text("x")
    for section, values in doc_examples(recipe):
        given = {k: v for k, v in values.items() if k != "recipe"}
        # paths and references of the example's buildout: here
        given.update({k: str(tmp_path / "password") for k in given if k == "password-file"})
        given.update({k: str(tmp_path) for k in given if k == "source"})
        given.update({k: "example/app:1" for k, v in given.items()
                      if "${" in v and k in ("name", "image")})
        known = read_options(recipe, tmp_path, given)
        assert plan_mod.unknown_options(given, known) == [], section


def test_a_typo_is_named_with_the_option_meant(tmp_path):
    known = read_options("build", tmp_path, {"source": str(tmp_path), "build_args": "A=1"})
    assert plan_mod.unknown_options({"build_args": "A=1", "source": "."}, known) == [
        ("build_args", "build-args")]


# -- what a run removes --------------------------------------------------------------------------
def test_build_rebuild_removes_the_replaced_image_at_the_end(tmp_path, options):
    old = options_of(make_spec(tmp_path, options), options)
    spec = make_spec(tmp_path, dict(options, **{"build-args": "A=2"}))
    mine = options_of(spec, options, **{"build-args": "A=2"})
    image = built()
    # a real run does not announce it (the end of the run logs what it removes)
    assert len(build.plan("img", spec, recorded(image), Context(old=old), mine)) == 1
    acts = build.plan("img", spec, recorded(image), Context(old=old), mine, users=[])
    assert [a.line() for a in acts][1:] == [
        "- remove image %s: replaced by the new build of %s, removed at the end of the run"
        % (image["Id"], IMAGE)]
    acts = build.plan("img", spec, recorded(image), Context(old=old), mine, users=["app"])
    assert acts[1].verb == "maybe" and acts[1].reasons[0].endswith("(used now by app)")
    # tagged otherwise too: left in place; not ours: left in place
    image["RepoTags"].append("dkt00000000-other:1")
    assert len(build.plan("img", spec, recorded(image), Context(old=old), mine, [])) == 1
    acts = build.plan("img", spec, recorded(fixture("images-foreign.json")), Context(old=old),
                      mine, [])
    assert [a.verb for a in acts] == ["recreate"]


def test_pull_removal_follows_the_state_file(tmp_path):
    state_path = tmp_path / "dockeroo-state.json"
    old = {"image": REGISTRY_REF, "dockeroo-state": str(state_path)}
    pulled = fixture("images-pulled.json")
    observed = recorded(pulled, REGISTRY_REF)
    assert [a.line() for a in pull.Recipe.plan_removal(observed, "app", old, "part removed")] == [
        "= unchanged image %s: no record of what this part pulled: left in place" % REGISTRY_REF]
    state_path.write_text(json.dumps({"refs": {REGISTRY_REF: {"owned": True},
                                               "127.0.0.1:5000/gone:1": {"owned": True}}}))
    assert [a.line() for a in pull.Recipe.plan_removal(observed, "app", old, "part removed")] == [
        "- remove image %s: part removed" % REGISTRY_REF,
        "= unchanged image 127.0.0.1:5000/gone:1: already gone"]
    state_path.write_text(json.dumps({"refs": {REGISTRY_REF: {"owned": False}}}))
    assert [a.verb for a in pull.Recipe.plan_removal(observed, "app", old, "x")] == ["unchanged"]
    state_path.write_text(json.dumps({"refs": {REGISTRY_REF: {"owned": True}}}))
    kept = dict(old, keep="true")
    assert [a.reasons for a in pull.Recipe.plan_removal(observed, "app", kept, "x")] == [
        ("keep = true: left in place",)]


def test_push_removal_leaves_the_registry(tmp_path):
    state_path = tmp_path / "dockeroo-state.json"
    state_path.write_text(json.dumps({"pushed": {REGISTRY_REF: {"image-id": "sha256:1"}},
                                      "added-tags": [REGISTRY_REF]}))
    old = {"image": REGISTRY_REF, "dockeroo-state": str(state_path)}
    acts = push.Recipe.plan_removal(recorded(fixture("images-pulled.json"), REGISTRY_REF), "pub",
                                    old, "gone")
    assert [a.line() for a in acts] == [
        "= unchanged image %s: nothing is removed from the registry" % REGISTRY_REF,
        "- remove image %s: tag added for a push by an interrupted run" % REGISTRY_REF]


def test_harness_push_tag_is_temporary():
    """docker.push's tag for the push, removed right after: the registry image is pushed."""
    from support.plan_exact import classify, compare
    ref = "127.0.0.1:5000/app:1"
    effects = classify([["tag", "app:1", ref], ["push", ref], ["image", "rm", ref]])
    assert effects == {("image", ref): {"push"}}
    for verb in ("create", "update", "maybe"):
        assert compare([{"part": "pub", "kind": "image", "name": ref, "action": verb,
                         "reasons": []}], effects) == [], verb
    assert compare([{"part": "pub", "kind": "image", "name": ref, "action": "unchanged",
                     "reasons": []}], effects)
    # a tag kept (no push): still made
    assert classify([["tag", "app:1", ref]]) == {("image", ref): {"tag"}}
