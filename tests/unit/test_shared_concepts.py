"""The concepts every recipe shares, each written once: labels of inspect
JSON, the removal settings of old options, the container-name rule, atomic
JSON files and key files (no engine)."""

import json
import os
import stat

import pytest
from zc.buildout import UserError

from dockeroo.base.state import atomic_json, key_file
from dockeroo.engine.process import DEFAULT_TIMEOUT
from dockeroo.model.options import CONTAINER_NAME, Options, removal_settings
from dockeroo.model.ownership import LABEL_BUILDOUT, LABEL_PART, is_owned, labels_of
from dockeroo.recipes.common import gentoo, swarm


OWN = {LABEL_PART: "p", LABEL_BUILDOUT: "o"}


# -- labels_of -----------------------------------------------------------------------
@pytest.mark.parametrize("obj", [
    {"Id": "c", "Config": {"Labels": OWN}},          # container, image
    {"Name": "v", "Labels": OWN},                    # volume, network
    {"ID": "s", "Spec": {"Name": "s", "Labels": OWN}},  # service, secret, config
])
def test_labels_of_every_kind(obj):
    assert labels_of(obj) == OWN
    assert is_owned(obj, "p", "o") and not is_owned(obj, "p", "other")
    assert swarm.is_ours(obj, "p", "o")


@pytest.mark.parametrize("obj", [None, {}, {"Config": None}, {"Config": {"Labels": None}},
                                 {"Labels": None}, {"Spec": None}, {"Spec": {}}])
def test_labels_of_nothing_is_empty(obj):
    assert labels_of(obj) == {}


def test_labels_of_an_image_is_its_config_labels_not_podmans_copy():
    # Podman's image inspect has top-level Labels too: Config wins
    assert labels_of({"Config": {"Labels": {"a": "1"}}, "Labels": {"b": "2"}}) == {"a": "1"}


# -- removal_settings ------------------------------------------------------------------
def test_removal_settings_defaults_are_keep_false_and_180_seconds():
    assert DEFAULT_TIMEOUT == 180
    assert removal_settings("p", {}) == (False, 180)
    assert removal_settings("p", {"recipe": "dockeroo:secret"}) == (False, 180)


def test_removal_settings_reads_keep_and_timeout():
    assert removal_settings("p", {"keep": "yes", "timeout": "2m"}) == (True, 120.0)
    assert removal_settings("p", {"keep": "off", "timeout": "30"}) == (False, 30.0)


@pytest.mark.parametrize("option,value", [("keep", "maybe"), ("timeout", "soon"),
                                          ("timeout", "0")])
def test_removal_settings_bad_values_name_part_and_option(option, value):
    with pytest.raises(UserError) as info:
        removal_settings("mypart", {option: value})
    assert "Part [mypart], option %r" % option in str(info.value)


# -- the container-name rule -------------------------------------------------------------
@pytest.mark.parametrize("name", ["ab", "a1", "0x", "my_app.web-1", "A" * 64])
def test_container_names_docker_accepts(name):
    assert CONTAINER_NAME.match(name)
    assert Options("p", {"name": name}).object_name("name") == name
    assert gentoo.container_name(Options("p", {"c": name}), "c", "default") == name


@pytest.mark.parametrize("name", ["a", "Z", "7", "_ab", "-ab", ".ab", "a b", "a/b", ""])
def test_container_names_docker_rejects(name):
    # measured: Docker 20.10+ answers "Invalid container name (a), only
    # [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" to a 1-character name
    assert not CONTAINER_NAME.match(name)
    with pytest.raises(UserError) as info:
        Options("p", {"name": name}).object_name("name")
    assert "Part [p], option 'name'" in str(info.value)
    with pytest.raises(UserError) as info:
        gentoo.container_name(Options("p", {"build-container": name}), "build-container", "x")
    assert "option 'build-container'" in str(info.value)


# -- atomic JSON files -----------------------------------------------------------------------
def test_atomic_json_writes_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "deep" / "state.json")
    atomic_json(path, {"a": 1}, sync=True, indent=1)
    atomic_json(path, {"b": 2})
    with open(path) as handle:
        assert json.load(handle) == {"b": 2}
    assert os.listdir(os.path.dirname(path)) == ["state.json"]


def test_atomic_json_failure_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "state.json")
    atomic_json(path, {"a": 1})
    with pytest.raises(TypeError):
        atomic_json(path, {"a": object()})
    with open(path) as handle:
        assert json.load(handle) == {"a": 1}
    assert os.listdir(str(tmp_path)) == ["state.json"]


# -- key files -------------------------------------------------------------------------------
def test_key_file_is_made_once_private_and_reused(tmp_path):
    path = str(tmp_path / "keys" / "k.key")
    assert key_file(path, create=False) is None and not os.path.exists(path)
    key = key_file(path)
    assert len(key.strip()) == 64 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key_file(path) == key and key_file(path, create=False) == key
    assert os.listdir(os.path.dirname(path)) == ["k.key"]


def test_key_file_reads_an_older_raw_key_as_it_is(tmp_path):
    path = tmp_path / "secrets.key"
    raw = bytes(range(32))  # the former build key: 32 raw bytes
    path.write_bytes(raw)
    assert key_file(str(path)) == raw


def test_aliases_may_have_one_character_but_linked_containers_not():
    from dockeroo.model.options import ALIAS_NAME
    from dockeroo.recipes import run
    assert ALIAS_NAME.match("a") and not ALIAS_NAME.match("_a")
    assert run.read_links(Options("p", {"links": "db:d"})) == ["db:d"]
    with pytest.raises(UserError) as info:
        run.read_links(Options("p", {"links": "d:db"}))
    assert "option 'links'" in str(info.value)


#: what each concept's one implementation writes, and the module allowed to write it
WRITTEN_ONCE = {
    "container removal argv": (r'"rm",\s*"--force"|"container",\s*"rm"', "model/ownership.py"),
    "image removal argv": (r'"image",\s*"rm"|\["rmi"', "model/ownership.py"),
}


@pytest.mark.parametrize("concept", sorted(WRITTEN_ONCE))
def test_each_concept_is_written_in_one_module(concept):
    """A second copy (a recipe removing an image with its own argv, ...) fails here:
    call the one implementation instead."""
    import re
    from support.package import modules
    pattern, home = WRITTEN_ONCE[concept]
    found = []
    for module, path in modules().items():
        with open(path) as handle:
            text = handle.read()
        if re.search(pattern, text) and not path.endswith(os.path.join(*home.split("/"))):
            found.append(module)
    assert found == [], "%s outside %s" % (concept, home)
