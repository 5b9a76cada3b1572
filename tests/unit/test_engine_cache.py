"""Which cached inspect data a mutating docker command drops (engine._changing)."""

from dockeroo.engine.docker import DockerEngine

IMG = {"Id": "sha256:" + "a" * 64, "RepoTags": ["img:latest"]}
CTR = {"Id": "c" * 64, "Name": "/app"}
NET = {"Id": "d" * 64, "Name": "net"}
VOL = {"Name": "vol"}


def engine():
    e = DockerEngine()
    e._cache["image"].update({"img": IMG, "missing-img": None})
    e._cache["container"].update({"app": CTR, "other": None, "new": None})
    e._cache["network"].update({"net": NET, "net2": None})
    e._cache["volume"].update({"vol": VOL, "vol2": None})
    return e


def cached(e):
    return {k: sorted(v) for k, v in e._cache.items()}


def test_read_only_commands_keep_everything():
    e = engine()
    before = cached(e)
    for args in (["inspect", "app"], ["container", "inspect", "app"], ["ps", "-a"],
                 ["image", "ls"], ["cp", "app:/etc", "-"], ["version"]):
        e._changing(args)
    assert cached(e) == before


def test_create_drops_its_container_and_named_missing_objects_only():
    e = engine()
    e._changing(["create", "--name", "new", "--network", "net", "--volume", "vol2:/data",
                 "--volume", "vol:/x", "img"])
    c = cached(e)
    assert c["container"] == ["app", "other"]  # "new" is fetched again
    assert c["volume"] == ["vol"]  # vol2 may have been created by --volume
    assert c["network"] == ["net", "net2"] and c["image"] == ["img", "missing-img"]


def test_start_by_id_drops_that_container():
    e = engine()
    e._changing(["start", CTR["Id"]])
    assert cached(e)["container"] == ["new", "other"]


def test_network_and_volume_commands():
    e = engine()
    e._changing(["network", "create", "--driver", "bridge", "net2"])
    assert cached(e)["network"] == ["net"]
    e._changing(["network", "connect", "--alias", "a", "net", "app"])
    assert cached(e)["network"] == [] and "app" not in cached(e)["container"]
    e._changing(["volume", "rm", "vol"])
    assert cached(e)["volume"] == ["vol2"]


def test_image_commands_drop_every_image():
    for args in (["build", "-t", "x", "."], ["tag", "a", "b"], ["image", "rm", "x"],
                 ["commit", "app", "x"], ["pull", "x"], ["import", "-", "x"]):
        e = engine()
        e._changing(args)
        assert cached(e)["image"] == [], args
        assert cached(e)["network"] == ["net", "net2"]


def test_unknown_commands_drop_everything():
    e = engine()
    e._changing(["service", "create", "x"])
    assert cached(e) == {"image": [], "container": [], "network": [], "volume": []}
    assert e._pending["container"] == {"app", "other", "new"}
