"""Image archives (recipes/common/imagefiles) and the pure plans of docker.save,
docker.load and docker.manifest, on synthetic archives and recorded inspect JSON."""

import gzip
import hashlib
import io
import json
import tarfile

import pytest

from dockeroo.model.plan import Context, Observed
from dockeroo.recipes import load, manifest, save
from dockeroo.recipes.common import imagefiles
from dockeroo.recipes.common.archives import ChecksumMismatch

CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]}}).encode()
CONFIG_ID = hashlib.sha256(CONFIG).hexdigest()


def saved(tags=("app:1",), layer=b"layer-bytes" * 100, config=CONFIG):
    """A tar as ``docker save`` (20.10) writes it."""
    out = io.BytesIO()
    cid = hashlib.sha256(config).hexdigest()
    with tarfile.open(fileobj=out, mode="w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add(cid + ".json", config)
        add("abc/layer.tar", layer)
        add("manifest.json", json.dumps([{"Config": cid + ".json", "RepoTags": list(tags),
                                          "Layers": ["abc/layer.tar"]}]).encode())
        add("repositories", b"{}")
    return out.getvalue()


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_index_of_plain_and_gzip_archives(tmp_path):
    data = saved()
    for name, content in (("a.tar", data), ("a.tar.gz", gzip.compress(data))):
        path = write(tmp_path, name, content)
        index = imagefiles.read_index(path)
        assert index.digest == "sha256:" + hashlib.sha256(content).hexdigest()
        (image,) = index.images
        assert image.id == "sha256:" + CONFIG_ID and image.tags == ("app:1",)
        assert image.layers == ("sha256:" + "1" * 64,) and image.architecture == "amd64"


@pytest.mark.parametrize("content, why", [
    (saved()[:3000], "not a complete image archive"),
    (b"plain text\n" * 200, "not a complete image archive"),
    (gzip.compress(saved())[:200], "not a complete image archive"),
])
def test_bad_archives(tmp_path, content, why):
    with pytest.raises(imagefiles.BadArchive, match=why):
        imagefiles.read_index(write(tmp_path, "bad.tar", content))


def test_an_archive_without_its_layer_or_manifest(tmp_path):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("x")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(imagefiles.BadArchive, match="no manifest.json"):
        imagefiles.read_index(write(tmp_path, "x.tar", out.getvalue()))


def test_checksum_mismatch_and_match(tmp_path):
    data = saved()
    path = write(tmp_path, "a.tar", data)
    with pytest.raises(ChecksumMismatch):
        imagefiles.read_index(path, "sha256", "0" * 64)
    good = hashlib.sha256(data).hexdigest()
    assert imagefiles.read_index(path, "sha256", good).digest == "sha256:" + good


def test_stream_holds_back_the_end_of_a_changed_file(tmp_path):
    data = saved(layer=b"x" * (3 << 20))
    path = write(tmp_path, "a.tar", data)
    sink = io.BytesIO()
    imagefiles.stream(path, "sha256:" + hashlib.sha256(data).hexdigest(), sink)
    assert sink.getvalue() == data
    sink = io.BytesIO()
    with pytest.raises(ChecksumMismatch):
        imagefiles.stream(path, "sha256:" + "0" * 64, sink)
    assert len(sink.getvalue()) < len(data), "the last block is not written"


def test_retag_platform_rewrites_the_config_only(tmp_path):
    src = io.BytesIO(saved())
    out = io.BytesIO()
    new_id = imagefiles.retag_platform(src, out, "sha256:" + CONFIG_ID, "reg/app:1-arm64v8",
                                       ("linux", "arm64", "v8"))
    path = write(tmp_path, "fixed.tar", out.getvalue())
    (image,) = imagefiles.read_index(path).images
    assert image.id == new_id != "sha256:" + CONFIG_ID
    assert (image.os, image.architecture, image.variant) == ("linux", "arm64", "v8")
    assert image.tags == ("reg/app:1-arm64v8",) and image.layers == ("sha256:" + "1" * 64,)


def test_compression_from_names():
    assert imagefiles.compression_for("x.tar.gz") == "gzip"
    assert imagefiles.compression_for("x.tgz") == "gzip"
    assert imagefiles.compression_for("x.tar.zst") == "zstd"
    assert imagefiles.compression_for("x.tar") == "none"


# -- pure plans --------------------------------------------------------------------------
def image(image_id):
    return {"Id": image_id, "RepoTags": []}


def test_save_plan():
    spec = save.Spec(images=("app:1",), path="/x/a.tar", compression="none")
    seen = Observed.recorded({("image", "app:1"): image("sha256:" + "a" * 64)})
    new = save.plan("s", spec, seen, Context(), {}, None)
    assert [(a.verb, a.reasons) for a in new] == [("create", ("new part",))]
    state = {"path": "/x/a.tar", "images": {"app:1": "sha256:" + "a" * 64},
             "compression": "none", "stat": [1, 2, 3]}
    assert save.plan("s", spec, seen, Context(old={}), state, [1, 2, 3])[0].verb == "unchanged"
    assert save.plan("s", spec, seen, Context(old={}), state, None)[0].verb == "repair"
    assert save.plan("s", spec, seen, Context(old={}), state, [1, 2, 4])[0].verb == "repair"
    changed = Observed.recorded({("image", "app:1"): image("sha256:" + "b" * 64)})
    act = save.plan("s", spec, changed, Context(old={}), state, [1, 2, 3])[0]
    assert act.verb == "recreate" and "changed (id aaaaaaaaaaaa -> bbbbbbbbbbbb)" in act.reasons[0]


def test_load_plan_names_each_tag():
    spec = load.Spec(source="/x/a.tar", is_url=False, shown="/x/a.tar", algorithm=None,
                     checksum=None, names=())
    index = imagefiles.Index(images=(imagefiles.ArchivedImage(
        "sha256:" + "a" * 64, ("app:1",), (), "linux", "amd64", None),), digest="sha256:f")
    acts = load.plan("l", spec, Observed.recorded({}), Context(), {}, "sha256:f", index)
    assert [(a.kind, a.name, a.verb) for a in acts] == [("image", "app:1", "create")]
    state = {"identity": "sha256:f", "names": [], "images": {"app:1": "sha256:" + "a" * 64},
             "owned": {"app:1": True}}
    present = Observed.recorded({("image", "app:1"): image("sha256:" + "a" * 64)})
    assert load.plan("l", spec, present, Context(old={}), state, "sha256:f")[0].verb == "unchanged"
    assert load.plan("l", spec, Observed.recorded({}), Context(old={}), state,
                     "sha256:f")[0].verb == "repair"
    # another archive without app:1: it is removed (the part brought it)
    other = imagefiles.Index(images=(imagefiles.ArchivedImage(
        "sha256:" + "b" * 64, ("app:2",), (), "linux", "amd64", None),), digest="sha256:e")
    acts = load.plan("l", spec, present, Context(old={}), state, "sha256:e", other)
    assert sorted((a.name, a.verb) for a in acts) == [("app:1", "remove"), ("app:2", "create")]
    assert load.plan("l", spec, present, Context(old={}), state, "sha256:e", other,
                     keep=True)[0].verb == "create"


def test_manifest_plan():
    members = (manifest.Member("a:1", ("linux", "amd64", None), "r/m:1-amd64"),
               manifest.Member("b:1", ("linux", "arm64", "v8"), "r/m:1-arm64v8"))
    seen = Observed.recorded({("image", "a:1"): image("sha256:" + "a" * 64),
                              ("image", "b:1"): image("sha256:" + "b" * 64)})
    acts = manifest.plan("m", "r/m:1", members, seen, Context(), {}, False)
    assert [(a.kind, a.verb) for a in acts] == [("image", "create"), ("image", "create"),
                                                ("manifest", "create")]
    state = {"members": {"r/m:1-amd64": {"image-id": "sha256:" + "a" * 64,
                                         "platform": "linux/amd64"},
                         "r/m:1-arm64v8": {"image-id": "sha256:" + "b" * 64,
                                           "platform": "linux/arm64/v8"}},
             "list": {"ref": "r/m:1", "members": ["r/m:1-amd64", "r/m:1-arm64v8"],
                      "member-ids": {"r/m:1-amd64": "sha256:" + "a" * 64,
                                     "r/m:1-arm64v8": "sha256:" + "b" * 64}}}
    acts = manifest.plan("m", "r/m:1", members, seen, Context(old={}), state, False)
    assert {a.verb for a in acts} == {"unchanged"}
    # a member pushed by a run killed before the list was pushed
    state["list"]["member-ids"]["r/m:1-amd64"] = "sha256:" + "c" * 64
    acts = manifest.plan("m", "r/m:1", members, seen, Context(old={}), state, False)
    assert acts[-1].verb == "update" and "other member images" in acts[-1].reasons[0]
    assert manifest.member_tag("1.0", ("windows", "amd64", None)) == "1.0-windows-amd64"
