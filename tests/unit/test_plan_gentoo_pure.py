"""The pure read and plan steps of the Gentoo recipes, on inspect JSON recorded
from the real engine (tests/unit/fixtures/inspect/gentoo-*.json: a
gentoo-bootstrap part with commit, one without, and a gentoo-build part on
the first's image)."""

import copy
import dataclasses
import json
import os
import re

import pytest
from zc.buildout import UserError

from dockeroo.model import plan as plan_mod
from dockeroo.model.options import Options
from dockeroo.model.plan import Context, Observed, action
from dockeroo.model.engines import ENGINE_OPTIONS
from dockeroo.model.ownership import LABEL_FINGERPRINT, OWNER_OPTION
from dockeroo.recipes import gentoo_bootstrap as boot
from dockeroo.recipes import gentoo_build as build
from dockeroo.recipes import gentoo_diskimage as disk

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "inspect")
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "recipes")
OWNER = "4c4a63f193a91bc6"  # the buildout the fixtures were recorded in
WHERE = "the local engine"


def fixture(name, **labels):
    with open(os.path.join(FIXTURES, "gentoo-%s.json" % name)) as handle:
        data = json.load(handle)
    data = copy.deepcopy(data)
    data["Config"]["Labels"].update(labels)
    return data


def opts(part, **values):
    return Options(part, {k.replace("_", "-"): v for k, v in values.items()})


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "layout" / "etc").mkdir(parents=True)
    (tmp_path / "layout" / "etc" / "motd").write_text("hi\n")
    (tmp_path / "rootfs.tar").write_bytes(b"\0" * 1024)
    return tmp_path


def boot_spec(tree, **values):
    values.setdefault("archives", str(tree / "rootfs.tar"))
    o = opts("boot", **values)
    return boot.read(o, "boot", o.text("image"), "image", str(tree)), o


def boot_options(spec, **extra):
    out = {"image": spec.image, "container": spec.container, "fingerprint": spec.fingerprint,
           "archives-fingerprint": spec.archives_fp, OWNER_OPTION: OWNER}
    if spec.layout_fp:
        out["layout-fingerprint"] = spec.layout_fp
    out.update(extra)
    return out


# -- fingerprints cover the whole Spec ---------------------------------------------------
def other(value):
    """A value of the same kind as VALUE that differs from it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return value + ("x",)
    if isinstance(value, dict):
        return dict(value, x="y")
    if value is None:
        return "x"
    raise AssertionError("no other value for %r" % (value,))


def every_field_counts(spec):
    """Each fingerprinted field of SPEC changes its fingerprint; the others do not."""
    checked = []
    for field in dataclasses.fields(spec):
        changed = dataclasses.replace(spec, **{field.name: other(getattr(spec, field.name))})
        differs = plan_mod.fingerprint(changed) != plan_mod.fingerprint(spec)
        assert differs == field.metadata.get("fingerprint", True), field.name
        assert (changed.fingerprint != spec.fingerprint) == differs, field.name
        checked.append(field.name)
    return checked


def test_every_field_of_each_spec_is_fingerprinted(tree):
    spec, _ = boot_spec(tree, image="b:1", layout="layout", script="true")
    assert len(every_field_counts(spec)) == len(dataclasses.fields(boot.Spec))
    bspec = build.read(opts("build", name="x:1", layout="layout", build_image="builder:1",
                            packages="app-toy/hello", build_env="TOKEN=s3cret-gentoo-pure-0"),
                       "x:1", str(tree))
    every_field_counts(bspec)
    dspec = disk.read(opts("disk", base_image="x:1", build_image="builder:1", build_root="/mnt",
                           image_file="/disk.img"), "disk", str(tree / "parts"))
    every_field_counts(dspec)


def test_a_new_field_changes_the_fingerprint(tree):
    """A field added to a Spec is fingerprinted without anyone listing it."""
    spec, _ = boot_spec(tree, image="b:1")
    extended = dataclasses.make_dataclass(
        "Extended", [("new_option", str, dataclasses.field(default="a"))],
        bases=(boot.Spec,), frozen=True)
    one = extended(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)})
    assert plan_mod.fingerprint(one) != plan_mod.fingerprint(spec)
    assert plan_mod.fingerprint(dataclasses.replace(one, new_option="b")) != \
        plan_mod.fingerprint(one)


def test_secrets_are_hashed_in_the_spec(tree):
    bspec = build.read(opts("build", name="x:1", build_image="builder:1",
                            build_env="TOKEN=s3cret-gentoo-pure-1"), "x:1", str(tree))
    assert "s3cret-gentoo-pure-1" not in json.dumps(plan_mod.spec_values(bspec), default=str)
    changed = build.read(opts("build", name="x:1", build_image="builder:1",
                              build_env="TOKEN=s3cret-gentoo-pure-2"), "x:1", str(tree))
    assert changed.fingerprint != bspec.fingerprint


# -- docker.gentoo-bootstrap --------------------------------------------------------------
def commit_image(spec):
    return fixture("bootstrap-commit-image", **{LABEL_FINGERPRINT: spec.fingerprint})


def test_bootstrap_new_part_creates_and_registers_the_image(tree):
    spec, _ = boot_spec(tree, image="pgfix-boot:1", commit="true")
    context = Context()
    acts = boot.plan("boot", spec, Observed.recorded({}), context, boot_options(spec), OWNER)
    assert acts == [action("boot", "image", "pgfix-boot:1", "create", "new part")]
    assert context.image_change("pgfix-boot:1") == acts[0]


def test_bootstrap_nothing_changed(tree):
    spec, _ = boot_spec(tree, image="pgfix-boot:1", commit="true", layout="layout")
    observed = Observed.recorded({("image", spec.image): commit_image(spec)})
    options = boot_options(spec)
    context = Context(old=options)
    assert [a.verb for a in boot.plan("boot", spec, observed, context, options, OWNER)] == \
        ["unchanged"]
    assert context.image_change(spec.image) is None


def test_bootstrap_option_and_layout_changes_are_named(tree):
    spec, _ = boot_spec(tree, image="pgfix-boot:1", commit="true", layout="layout",
                        script="echo two")
    image = fixture("bootstrap-commit-image")  # made from another configuration
    observed = Observed.recorded({("image", spec.image): image})
    old = boot_options(spec, script="echo one", **{"layout-fingerprint": "0" * 32})
    acts = boot.plan("boot", spec, observed, Context(old=old, planning=True),
                     boot_options(spec, script="echo two"), OWNER)
    assert acts == [action("boot", "image", spec.image, "recreate", "layout content changed",
                           "option 'script' changed"),
                    action("boot", "image", image["Id"], "maybe",
                           "replaced by the new pgfix-boot:1, removed at the end of the run "
                           "unless a container or an image still uses it")]


def test_bootstrap_image_removed_by_hand_is_repaired(tree):
    spec, _ = boot_spec(tree, image="pgfix-boot:1", commit="true")
    options = boot_options(spec)
    acts = boot.plan("boot", spec, Observed.recorded({}), Context(old=options), options, OWNER)
    assert acts[0].verb == "repair" and "missing (removed by hand?)" in acts[0].reasons[0]


def test_bootstrap_image_of_another_part_is_an_error(tree):
    spec, _ = boot_spec(tree, image="pgfix-boot:1", commit="true")
    image = fixture("bootstrap-commit-image", **{"io.dockeroo.part": "other"})
    with pytest.raises(UserError, match="image pgfix-boot:1 exists and was not made by this "
                                        "part; remove it or choose another image name"):
        boot.plan("boot", spec, Observed.recorded({("image", spec.image): image}), Context(),
                  boot_options(spec), OWNER)


def live_objects(spec, container="live-container"):
    image = fixture("bootstrap-live-image", **{LABEL_FINGERPRINT: spec.archives_fp})
    running = fixture("bootstrap-" + container, **{LABEL_FINGERPRINT: spec.fingerprint})
    return image, running


def test_bootstrap_live_container(tree):
    spec, _ = boot_spec(tree, image="pgfix-live:1", container="pgfix-live")
    image, running = live_objects(spec)
    options = boot_options(spec)
    observed = Observed.recorded({("image", spec.image): image,
                                  ("container", spec.container): running})
    assert [(a.kind, a.verb) for a in boot.plan("live", spec, observed, Context(old=options),
                                                 options, OWNER)] == [
        ("image", "unchanged"), ("container", "unchanged")]
    # stopped by hand: started again
    _, stopped = live_objects(spec, "stopped-container")
    observed = Observed.recorded({("image", spec.image): image,
                                  ("container", spec.container): stopped})
    acts = boot.plan("live", spec, observed, Context(old=options), options, OWNER)
    assert acts[1] == action("live", "container", "pgfix-live", "repair",
                             "container pgfix-live is stopped")
    # removed by hand
    observed = Observed.recorded({("image", spec.image): image})
    acts = boot.plan("live", spec, observed, Context(old=options), options, OWNER)
    assert [a.verb for a in acts] == ["unchanged", "repair"]
    # a container input changed: the image stays, the container is made again
    spec2, _ = boot_spec(tree, image="pgfix-live:1", container="pgfix-live", script="true")
    observed = Observed.recorded({("image", spec.image): image,
                                  ("container", spec.container): running})
    acts = boot.plan("live", spec2, observed, Context(old=options),
                     boot_options(spec2, script="true"), OWNER)
    assert acts == [action("live", "image", spec.image, "unchanged"),
                    action("live", "container", "pgfix-live", "recreate",
                           "option 'script' added")]


def test_bootstrap_live_archive_change_reimports(tree):
    spec, _ = boot_spec(tree, image="pgfix-live:1", container="pgfix-live")
    image, running = live_objects(spec)
    old = boot_options(spec)
    os.utime(str(tree / "rootfs.tar"), ns=(1, 1))  # a local archive without checksum changed
    spec2, _ = boot_spec(tree, image="pgfix-live:1", container="pgfix-live")
    observed = Observed.recorded({("image", spec.image): image,
                                  ("container", spec.container): running})
    context = Context(old=old, planning=True)
    acts = boot.plan("live", spec2, observed, context, boot_options(spec2), OWNER)
    assert acts[2].name == image["Id"] and acts[2].verb == "maybe"  # the replaced image
    assert acts[:2] == [action("live", "image", spec.image, "recreate", "archive content changed"),
                    action("live", "container", "pgfix-live", "recreate",
                           "its image pgfix-live:1 is imported again")]
    assert context.image_change("pgfix-live:1") == acts[0]


# -- docker.gentoo-build ------------------------------------------------------------------
BASE = "pgfix-boot:1"
BASE_ID = "sha256:3e11ae2a1ea31b22b7c5ca77407338c07cf6abe2611bb86803d73072492eae1a"


def build_case(tree, **values):
    values.setdefault("name", "pgfix-build:1")
    values.setdefault("base_image", BASE)
    values.setdefault("layout", "layout")
    spec = build.read(opts("build", **values), values["name"], str(tree))
    options = {"image": spec.image, "fingerprint": spec.fingerprint, "name": values["name"],
               "layout-fingerprint": spec.layout_fp, "base-image": values["base_image"]}
    base = fixture("bootstrap-commit-image")
    base["Id"] = BASE_ID
    found = {"base-image": BASE_ID, "target": ["amd64", "x86_64", "x86_64"]}
    image = fixture("build-image", **{LABEL_FINGERPRINT: build.image_fingerprint(spec, found)})
    return spec, options, {("image", BASE): base, ("image", spec.image): image}


def build_plan(spec, objects, context, options):
    return build.plan("build", spec, Observed.recorded(objects), context, options, OWNER,
                      "amd64", WHERE)


def test_build_nothing_changed_and_removed_by_hand(tree):
    spec, options, objects = build_case(tree)
    context = Context(old=options)
    assert build_plan(spec, objects, context, options) == [
        action("build", "image", spec.image, "unchanged")]
    assert context.image_change(spec.image) is None
    del objects[("image", spec.image)]
    acts = build_plan(spec, objects, Context(old=options), options)
    assert acts[0].verb == "repair"


def test_build_option_change(tree):
    spec, options, objects = build_case(tree)
    new, new_options, _ = build_case(tree, user="nobody")
    context = Context(old=options, planning=True)
    acts = build_plan(new, objects, context, dict(new_options, user="nobody"))
    assert acts[1:] == [action("build", "image", objects[("image", spec.image)]["Id"], "maybe",
                               "replaced by the new pgfix-build:1, removed at the end of the "
                               "run unless a container or an image still uses it")]
    assert acts[:1] == [action("build", "image", spec.image, "recreate", "option 'user' added")]
    assert context.image_change(spec.image) == acts[0]
    # a real run plans no removal of the replaced image (the end of the run logs it)
    assert build_plan(new, objects, Context(old=options), dict(new_options, user="nobody")) \
        == acts[:1]


def test_build_base_image_rebuilt_by_an_earlier_run_step(tree):
    """In a real run the earlier part has already rebuilt the base: its id differs."""
    spec, options, objects = build_case(tree)
    objects[("image", BASE)]["Id"] = "sha256:" + "1" * 64
    acts = build_plan(spec, objects, Context(old=options), options)
    assert acts[:1] == [action("build", "image", spec.image, "recreate",
                               "base-image %s changed" % BASE)]


def test_build_cascade_in_dockeroo_plan(tree):
    """In ``dockeroo plan`` the earlier part's action says it will rebuild the base."""
    spec, options, objects = build_case(tree)
    for earlier, verb in (("recreate", "recreate"), ("maybe", "maybe")):
        context = Context(old=options, planning=True)
        context.will_change_image(BASE, action("boot", "image", BASE, earlier,
                                               "layout content changed"))
        acts = build_plan(spec, objects, context, options)
        assert acts[:1] == [action("build", "image", spec.image, verb,
                               "image %s will be %s (layout content changed)"
                               % (BASE, boot_done(earlier)))]
        assert context.image_change(spec.image) == acts[0]  # and on to its users
    # a base image that does not exist yet, made by an earlier part
    del objects[("image", BASE)]
    context = Context(planning=True)
    context.will_change_image(BASE, action("boot", "image", BASE, "create", "new part"))
    assert build_plan(spec, objects, context, options)[0].verb == "recreate"


def boot_done(verb):
    return {"recreate": "rebuilt", "maybe": "checked"}[verb]


def test_build_missing_base_image_is_an_error(tree):
    spec, options, objects = build_case(tree)
    del objects[("image", BASE)]
    with pytest.raises(UserError, match="option 'base-image' = 'pgfix-boot:1': no such image"):
        build_plan(spec, objects, Context(old=options), options)


def test_build_layout_change(tree):
    spec, options, objects = build_case(tree)
    (tree / "layout" / "etc" / "motd").write_text("changed\n")
    new, new_options, _ = build_case(tree)
    assert new.layout_fp != spec.layout_fp
    acts = build_plan(new, objects, Context(old=options), new_options)
    assert acts[:1] == [action("build", "image", spec.image, "recreate",
                               "layout content changed")]


# -- docker.gentoo-diskimage --------------------------------------------------------------
def disk_case(tree, **values):
    values = dict(dict(base_image="pgfix-build:1", build_image="builder:1", build_root="/mnt",
                       image_file="/disk.img"), **values)
    spec = disk.read(opts("disk", **values), "disk", str(tree / "parts"))
    options = {"image-file": spec.path, "fingerprint": spec.fingerprint}
    objects = {("image", "pgfix-build:1"): fixture("build-image"),
               ("image", "builder:1"): fixture("bootstrap-commit-image")}
    found = disk.inputs("disk", spec, Observed.recorded(objects), WHERE)
    stamp = (disk.file_fingerprint(spec, found), found)
    return spec, options, objects, stamp


def disk_plan(spec, objects, context, options, on_disk):
    return disk.plan("disk", spec, Observed.recorded(objects), context, options, on_disk, WHERE)


def test_diskimage_plans(tree):
    spec, options, objects, stamp = disk_case(tree)
    name = str(tree / "parts" / "disk" / "disk.img")
    assert spec.path == name
    assert disk_plan(spec, objects, Context(), options, (False, (None, {}))) == [
        action("disk", "file", name, "create", "new part")]
    assert disk_plan(spec, objects, Context(old=options), options, (True, stamp)) == [
        action("disk", "file", name, "unchanged")]
    # removed by hand
    assert disk_plan(spec, objects, Context(old=options), options, (False, stamp)) == [
        action("disk", "file", name, "repair", "file %s is missing (removed by hand?)" % name)]
    # the base image was rebuilt (a real run), or will be (dockeroo plan)
    objects[("image", "pgfix-build:1")]["Id"] = "sha256:" + "2" * 64
    assert disk_plan(spec, objects, Context(old=options), options, (True, stamp)) == [
        action("disk", "file", name, "recreate", "base-image pgfix-build:1 changed")]
    context = Context(old=options, planning=True)
    context.will_change_image("pgfix-build:1", action("build", "image", "pgfix-build:1",
                                                      "recreate", "option 'user' added"))
    assert disk_plan(spec, objects, context, options, (True, stamp)) == [
        action("disk", "file", name, "recreate",
               "image pgfix-build:1 will be rebuilt (option 'user' added)")]
    # an option changed
    new, new_options, _, _ = disk_case(tree, build_script="true")
    acts = disk_plan(new, objects, Context(old=options), dict(new_options, **{
        "build-script": "true"}), (True, stamp))
    assert acts == [action("disk", "file", name, "recreate", "option 'build-script' added")]


def test_diskimage_stamp_round_trip(tmp_path):
    path = str(tmp_path / "disk.img")
    assert disk.read_stamp(path) == (None, {})
    with open(path + disk.FINGERPRINT_SUFFIX, "w") as handle:
        handle.write("abc\n")  # the format of earlier versions
    assert disk.read_stamp(path) == ("abc", {})
    with open(path + disk.FINGERPRINT_SUFFIX, "w") as handle:
        handle.write('abc\n{"base-image": "sha256:1"}\n')
    assert disk.read_stamp(path) == ("abc", {"base-image": "sha256:1"})


# -- options: every documented option is known, typos are not ---------------------------------
def documented(recipe):
    with open(os.path.join(DOCS, "docker.%s.rst" % recipe)) as handle:
        text = handle.read()
    section = text.split("\nOptions\n-------\n", 1)[1]
    section = re.split(r"\n[^\n]+\n-{3,}\n", section, 1)[0]
    # the definition list's terms: an option, or several separated by ", "
    terms = re.findall(r"^([a-z][a-z0-9-]*(?:, [a-z][a-z0-9-]*)*)\s*$", section, re.M)
    return {name for term in terms for name in term.split(", ")}


def known_after_read(recipe_cls, values, reader):
    o = Options("part", values)
    reader(o)
    return set(o.seen) | set(recipe_cls.known_options) | set(ENGINE_OPTIONS) | {
        "keep", "timeout", "name"} | set(recipe_cls.name_aliases)


@pytest.mark.parametrize("recipe,cls,values,reader,typo,meant", [
    ("gentoo-bootstrap", boot.Recipe, {"image": "b:1", "archives": "ROOTFS"},
     lambda o, t: boot.read(o, "part", "b:1", "image", t), "scirpt", "script"),
    ("gentoo-build", build.Recipe, {"name": "x:1", "build-image": "builder:1"},
     lambda o, t: build.read(o, "x:1", t), "pakages", "packages"),
    ("gentoo-diskimage", disk.Recipe, {"base-image": "x:1", "build-image": "b:1",
                                       "build-root": "/mnt", "image-file": "/d.img"},
     lambda o, t: disk.read(o, "part", t), "build-scirpt", "build-script"),
])
def test_documented_options_are_known_and_typos_are_not(tree, recipe, cls, values, reader, typo,
                                                        meant):
    values = {k: v.replace("ROOTFS", str(tree / "rootfs.tar")) for k, v in values.items()}
    known = known_after_read(cls, values, lambda o: reader(o, str(tree)))
    docs = documented(recipe)
    assert docs and docs <= known, docs - known
    found = dict(plan_mod.unknown_options({"build_args": "x", typo: "x"}, known))
    assert set(found) == {"build_args", typo}
    assert found[typo] == meant
