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


class Listing(DockerEngine):
    """An engine whose ``run`` answers a ps listing from LINES (counting the calls)."""

    def __init__(self, lines):
        super().__init__()
        self.lines, self.ran = lines, []

    def run(self, args, **kwargs):
        from dockeroo.engine.process import Result
        self.ran.append(list(args))
        return Result(list(args), 0, "\n".join(self.lines) + "\n", "")


def test_users_of_networks_and_volumes_come_from_one_listing_kept_until_a_change():
    from dockeroo.model.ownership import users
    e = Listing(["web\tfront,back\tdata,/srv/www", "db\tback\tdb-data",
                 "tool\tfrontend\tdata2", "idle\t\t"])
    assert users(e, "network", "front") == ["web"]  # not "frontend"'s user
    assert users(e, "network", "back") == ["web", "db"]
    assert users(e, "volume", "data") == ["web"]  # not data2's
    assert users(e, "volume", "/srv") == [] and users(e, "network", "none") == []
    assert len(e.ran) == 1 and e.ran[0][:3] == ["ps", "--all", "--no-trunc"]
    e._changing(["inspect", "web"])  # read-only: kept
    users(e, "volume", "db-data")
    assert len(e.ran) == 1
    e._changing(["network", "disconnect", "back", "db"])  # any change: listed again
    assert users(e, "volume", "db-data") == ["db"] and len(e.ran) == 2
    e.forget("container", "db")
    users(e, "network", "back")
    assert len(e.ran) == 3


class InUseImage(DockerEngine):
    """An engine holding image REF that a container uses: ``image rm`` fails as
    Docker answers it, ``ps`` lists the container by id and name."""

    def __init__(self):
        super().__init__()
        self._cache["image"]["img:1"] = {"Id": "sha256:" + "b" * 64, "RepoTags": ["img:1"],
                                         "Config": {"Labels": {}}}

    def run(self, args, check=True, **kwargs):
        from dockeroo.engine.errors import DockerError
        from dockeroo.engine.process import Result
        if args[:2] == ["image", "rm"]:
            raise DockerError.from_output(args, 1, "Error response from daemon: conflict: "
                                          "unable to remove repository reference \"img:1\" "
                                          "(must force) - container 0123456789ab is using its "
                                          "referenced image bbbbbbbbbbbb")
        return Result(list(args), 0, "%s web\n" % ("0123456789ab" + "c" * 52), "")


def test_an_image_in_use_is_named_by_its_users_not_by_dockers_text():
    import logging
    import pytest
    from zc.buildout import UserError
    from dockeroo.model.ownership import remove_object
    with pytest.raises(UserError) as err:
        remove_object(InUseImage(), "image", "img:1", "img", None, logging.getLogger("t"),
                      check_owner=False)
    assert str(err.value) == ("Part [img]: image img:1 is still used by container(s) web; "
                              "remove or recreate them from another image first (nothing "
                              "was removed)")


def test_a_wanted_listing_runs_beside_the_next_inspects(tmp_path):
    """want_users: the ps listing starts with the batch of inspects (the same
    round), and users() then reads it without a process of its own."""
    from dockeroo.engine.selection import EngineConfig
    from dockeroo.model.ownership import users, want_users
    calls = tmp_path / "calls"
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho \"$*\" >> %s\n"
                    "case \"$1\" in\n"
                    "  ps) printf 'web\\tnet1\\tvol1\\n' ;;\n"
                    "  *) echo '[]'; echo 'Error: No such network: net1' >&2; exit 1 ;;\n"
                    "esac\n" % calls)
    fake.chmod(0o755)
    e = DockerEngine(EngineConfig(docker=str(fake)))
    e.want("network", "net1")
    want_users(e)
    assert e.inspect("network", "net1") is None
    assert sorted(line.split()[0] for line in calls.read_text().splitlines()) == [
        "network", "ps"]
    assert users(e, "network", "net1") == ["web"] and users(e, "volume", "vol1") == ["web"]
    assert len(calls.read_text().splitlines()) == 2  # no ps of its own
