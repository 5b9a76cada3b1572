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
