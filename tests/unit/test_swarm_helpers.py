"""Pure helpers of the swarm recipes (no engine needed)."""

import os
import stat

from dockeroo.recipes.common import swarm
from dockeroo.recipes import service


def test_buildout_key_is_created_once_private_and_reused(tmp_path):
    parts = str(tmp_path / "parts")
    key = swarm.buildout_key(parts)
    assert len(key) == 64
    path = os.path.join(parts, swarm.KEY_FILE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert swarm.buildout_key(parts) == key
    assert [n for n in os.listdir(parts)] == [swarm.KEY_FILE]  # no temp file left


def test_content_hash_is_keyed_and_unambiguous():
    a = swarm.content_hash(b"k" * 32, b"secret")
    assert a == swarm.content_hash(b"k" * 32, b"secret")
    assert a != swarm.content_hash(b"j" * 32, b"secret")
    # chunk boundaries count: ("ab", "c") is not ("a", "bc")
    assert swarm.content_hash(b"k", b"ab", b"c") != swarm.content_hash(b"k", b"a", b"bc")
    import hashlib
    assert hashlib.sha256(b"secret").hexdigest()[:12] not in a


def test_update_flags_never_remove_what_they_add():
    # the docker CLI adds before it removes (constraints, labels): a kept value
    # must not appear in a --*-rm flag
    assert service.list_args("constraint", ["a", "b"], ["b", "c"]) == [
        "--constraint-rm=a", "--constraint-add=c"]
    assert service.list_args("constraint", ["a"], ["a"]) == []
    assert service.mapping_args("env", {"A": "1", "B": "2"}, {"A": "9", "C": "3"}) == [
        "--env-rm=B", "--env-add=A=9", "--env-add=C=3"]
    assert service.mapping_args("env", {"A": "1"}, {"A": "1"}) == []


def test_reference_spec_and_key_match():
    ref = ("db-0123", "db", "0", "0", 0o400)
    assert service.reference_spec(ref) == "source=db-0123,target=db,uid=0,gid=0,mode=0400"
    inspected = {"SecretName": "db-0123", "File": {"Name": "db", "UID": "0", "GID": "0",
                                                   "Mode": 256}}
    assert service.reference_key("secret", inspected) == ref


def test_the_services_of_an_overlay_network_are_read_from_their_specs():
    """model.ownership.network_services: the services whose spec names the
    network (by id: tasks anywhere, or none at all); nothing for a local
    network or an engine that is no manager."""
    from types import SimpleNamespace
    from dockeroo.engine.errors import DockerError
    from dockeroo.model.ownership import network_services

    def spec(name, *targets, old=()):
        return {"Spec": {"Name": name, "TaskTemplate": {"Networks": [
            {"Target": t} for t in targets]}, "Networks": [{"Target": t} for t in old]}}

    class Engine:
        def __init__(self, services, fails=False):
            self.services, self.fails, self.asked = services, fails, []

        def run(self, args, **_kwargs):
            self.asked.append(args)
            if self.fails:
                raise DockerError(args, 1, "This node is not a swarm manager.")
            return SimpleNamespace(stdout="\n".join("id%d" % i for i in range(len(self.services))))

        def inspect_existing(self, kind, names):
            self.asked.append([kind, "inspect", "--"] + names)
            return self.services
    net = {"Name": "net", "Id": "n1", "Scope": "swarm"}
    engine = Engine([spec("b", "n1"), spec("a", "other", "n1"), spec("c", "other"),
                     spec("d", old=("n1",))])
    assert network_services(engine, net) == ["a", "b", "d"]
    assert engine.asked == [["service", "ls", "--quiet"],
                            ["service", "inspect", "--", "id0", "id1", "id2", "id3"]]
    local = Engine([spec("b", "n1")])
    assert network_services(local, dict(net, Scope="local")) == [] and local.asked == []
    assert network_services(Engine([]), net) == []
    assert network_services(Engine([spec("b", "n1")], fails=True), net) == []
    assert network_services(engine, None) == []


def test_inspect_existing_leaves_out_what_was_removed_since_it_was_listed():
    """engine.DockerEngine.inspect_existing (network_services reads the specs of
    all services with it): one inspect; an object missing from its answer is
    left out, any other failure raises typed."""
    import json
    import pytest
    from dockeroo.engine.docker import DockerEngine
    from dockeroo.engine.errors import DockerError, NotFound
    from dockeroo.engine.process import Result

    def engine(code, found, err=""):
        e = DockerEngine()
        e.asked = []

        def run(args, **kwargs):
            e.asked.append((args, kwargs.get("check", True)))
            return Result(args, code, json.dumps(found, indent=4) + "\n", err)
        e.run = run
        return e
    a, b = {"ID": "a", "Spec": {"Name": "a"}}, {"ID": "b", "Spec": {"Name": "b"}}
    e = engine(0, [a, b])
    assert e.inspect_existing("service", ["a", "b"]) == [a, b]
    assert e.asked == [(["service", "inspect", "--", "a", "b"], False)]
    # "c" removed after the listing: the docker CLI prints the others, exit 1
    e = engine(1, [a, b], "Error: no such service: c\n")
    assert e.inspect_existing("service", ["a", "c", "b"]) == [a, b]
    assert engine(1, [], "Error: no such service: c\n").inspect_existing("service", ["c"]) == []
    assert engine(0, []).inspect_existing("service", []) == []
    with pytest.raises(DockerError) as failed:
        engine(1, [], "Error response from daemon: This node is not a swarm manager.\n"
               ).inspect_existing("service", ["a"])
    assert not isinstance(failed.value, NotFound)
