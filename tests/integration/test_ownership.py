"""model.ownership against the real engine: the one container and image
removal, the one "who uses it" query, labels_of on real inspect JSON."""

import pytest

from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.errors import DockerError, InUse
from dockeroo.model.ownership import (labels_of, remove_container, remove_containers,
                                      remove_image, users)

from support.engine import docker, engine_kind, free_subnet, inspect


@pytest.fixture
def objects(prefix, base_image):
    """A volume, a network, a tagged image and two containers (one running)
    using them, all labelled; named with PREFIX."""
    names = {k: "%s-%s" % (prefix, k) for k in ("vol", "net", "a", "b")}
    names["image"] = "%s-img:1" % prefix
    docker("volume", "create", "--label", "t=vol", names["vol"])
    docker("network", "create", "--subnet", str(free_subnet()), "--label", "t=net", names["net"])
    docker("tag", base_image, names["image"])
    docker("create", "--name", names["a"], "--label", "t=a", "-v", names["vol"] + ":/data",
           "--network", names["net"], names["image"], "sleep", "60")
    docker("run", "-d", "--name", names["b"], "-v", names["vol"] + ":/data",
           names["image"], "sleep", "60")
    return names


def test_users_names_running_and_stopped_containers(objects):
    engine = DockerEngine()
    assert sorted(users(engine, "volume", objects["vol"])) == sorted([objects["a"], objects["b"]])
    assert users(engine, "network", objects["net"]) == [objects["a"]]
    assert users(engine, "label", "t=a") == [objects["a"]]
    assert users(engine, "volume", objects["vol"] + "-none") == []


@pytest.mark.podman_limit("image users", "ps --filter ancestor= finds no container")
def test_users_of_an_image(objects):
    engine = DockerEngine()
    image_id = inspect("image", objects["image"])["Id"]
    using = users(engine, "image", image_id)  # the shared test image: others' too
    assert {objects["a"], objects["b"]} <= set(using)
    assert not [n for n in using if n.startswith(objects["vol"][:-4]) and n not in
                (objects["a"], objects["b"])]


def test_labels_of_real_objects(objects):
    engine = DockerEngine()
    assert labels_of(engine.inspect("container", objects["a"]))["t"] == "a"
    assert labels_of(engine.inspect("volume", objects["vol"]))["t"] == "vol"
    assert labels_of(engine.inspect("network", objects["net"]))["t"] == "net"
    assert labels_of(engine.inspect("container", objects["b"])) == {}


def test_remove_containers_and_images_update_the_engine_and_its_cache(objects):
    engine = DockerEngine()
    assert engine.inspect("container", objects["b"]) is not None  # cached now
    # used by a and b (Podman refuses an id of several tags before it looks at the containers)
    with pytest.raises(InUse if engine_kind() == "docker" else DockerError):
        remove_image(engine, inspect("image", objects["image"])["Id"])
    assert inspect("image", objects["image"]) is not None
    result = remove_containers(engine, [objects["a"], objects["b"]])
    assert sorted(result.stdout.split()) == sorted([objects["a"], objects["b"]])
    assert inspect("container", objects["a"]) is None and inspect("container", objects["b"]) is None
    assert engine.inspect("container", objects["b"]) is None  # the cache forgot it
    assert users(engine, "volume", objects["vol"]) == []
    # --force: a container already gone is no error, and nothing is named
    assert remove_container(engine, objects["a"]).stdout.split() == []
    assert engine.inspect("image", objects["image"]) is not None  # cached
    assert remove_image(engine, objects["image"]).returncode == 0  # untags
    assert inspect("image", objects["image"]) is None
    assert engine.inspect("image", objects["image"]) is None
    assert remove_image(engine, objects["image"], check=False).returncode != 0
