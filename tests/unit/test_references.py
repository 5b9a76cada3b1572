"""Image references, checked against how Docker's reference parser behaves.

The expectations are facts about Docker (its distribution/reference
library and Docker Engine 20.10 on this machine), written down as a table
here: each input with its familiar form (what RepoTags show), its fully
qualified form, or the error Docker gives.
"""

import pytest

from dockeroo.base.references import (Reference, ReferenceError, find_image, in_registry,
    is_image_id, parse, parse_registry)

D64 = "sha256:" + "f" * 64
D_OTHER = "sha256:" + "1234567890" * 6 + "abcd"
D512 = "sha512:" + "f" * 128

# input -> (domain, path, tag, digest, familiar form, fully qualified form)
VALID = [
    # Docker Hub: domain, library/ namespace
    ("busybox", "docker.io", "library/busybox", None, None,
     "busybox", "docker.io/library/busybox"),
    ("busybox:latest", "docker.io", "library/busybox", "latest", None,
     "busybox:latest", "docker.io/library/busybox:latest"),
    ("library/busybox", "docker.io", "library/busybox", None, None,
     "busybox", "docker.io/library/busybox"),
    ("docker.io/busybox", "docker.io", "library/busybox", None, None,
     "busybox", "docker.io/library/busybox"),
    ("docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36", None,
     "busybox:1.36", "docker.io/library/busybox:1.36"),
    ("index.docker.io/library/debian", "docker.io", "library/debian", None, None,
     "debian", "docker.io/library/debian"),
    ("index.docker.io/debian", "docker.io", "library/debian", None, None,
     "debian", "docker.io/library/debian"),
    ("index.docker.io/fooo/bar", "docker.io", "fooo/bar", None, None,
     "fooo/bar", "docker.io/fooo/bar"),
    # registry-1.docker.io: Docker keeps it as its own name; dockeroo reads it as Hub
    ("registry-1.docker.io/library/redis:7", "docker.io", "library/redis", "7", None,
     "redis:7", "docker.io/library/redis:7"),
    ("docker/docker", "docker.io", "docker/docker", None, None,
     "docker/docker", "docker.io/docker/docker"),
    ("dmcgowan/myapp:latest", "docker.io", "dmcgowan/myapp", "latest", None,
     "dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest"),
    ("other/library", "docker.io", "other/library", None, None,
     "other/library", "docker.io/other/library"),
    # library/ is dropped from the familiar name only for a single component
    ("library/foo/bar", "docker.io", "library/foo/bar", None, None,
     "library/foo/bar", "docker.io/library/foo/bar"),
    ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", None, None,
     "library/foo/bar", "docker.io/library/foo/bar"),
    ("store/foo/bar", "docker.io", "store/foo/bar", None, None,
     "store/foo/bar", "docker.io/store/foo/bar"),
    ("ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base", None, None,
     "ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base"),
    # a first component without '.', ':' or upper case is a Hub account, not a domain
    ("test_com/foo", "docker.io", "test_com/foo", None, None,
     "test_com/foo", "docker.io/test_com/foo"),
    ("foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com", "8080", None,
     "foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080"),
    # a single component is never a domain: what follows ':' is a tag
    ("test.com:5000", "docker.io", "library/test.com", "5000", None,
     "test.com:5000", "docker.io/library/test.com:5000"),
    ("foo_bar.com:8080", "docker.io", "library/foo_bar.com", "8080", None,
     "foo_bar.com:8080", "docker.io/library/foo_bar.com:8080"),
    ("localhost", "docker.io", "library/localhost", None, None,
     "localhost", "docker.io/library/localhost"),
    # registries: '.', ':' or localhost in the first of several components
    ("localhost/app", "localhost", "app", None, None, "localhost/app", "localhost/app"),
    ("localhost:5000/ns/app:2", "localhost:5000", "ns/app", "2", None,
     "localhost:5000/ns/app:2", "localhost:5000/ns/app:2"),
    ("127.0.0.1:5000/ns/x", "127.0.0.1:5000", "ns/x", None, None,
     "127.0.0.1:5000/ns/x", "127.0.0.1:5000/ns/x"),
    ("127.0.0.1:8000/privatebase", "127.0.0.1:8000", "privatebase", None, None,
     "127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase"),
    ("test:5000/repo:tag", "test:5000", "repo", "tag", None,
     "test:5000/repo:tag", "test:5000/repo:tag"),
    ("test-com:8080/foo", "test-com:8080", "foo", None, None,
     "test-com:8080/foo", "test-com:8080/foo"),
    ("example.com/privatebase", "example.com", "privatebase", None, None,
     "example.com/privatebase", "example.com/privatebase"),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com", "bar/baz/quux",
     "some-long-tag", None, "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
     "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
    ("b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io",
     "test.example.com/my-app", "test.example.com", None,
     "b.gcr.io/test.example.com/my-app:test.example.com",
     "b.gcr.io/test.example.com/my-app:test.example.com"),
    ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", None, None,
     "xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo"),
    ("[fc00::1]:5000/repo:tag", "[fc00::1]:5000", "repo", "tag", None,
     "[fc00::1]:5000/repo:tag", "[fc00::1]:5000/repo:tag"),
    ("[::1]:5000/repo", "[::1]:5000", "repo", None, None, "[::1]:5000/repo", "[::1]:5000/repo"),
    ("[2001:db8:85a3::8a2e:370:7334]/repo", "[2001:db8:85a3::8a2e:370:7334]", "repo", None,
     None, "[2001:db8:85a3::8a2e:370:7334]/repo", "[2001:db8:85a3::8a2e:370:7334]/repo"),
    # an upper-case first component is a domain (upper case is never a Hub account)
    ("Foo/bar", "Foo", "bar", None, None, "Foo/bar", "Foo/bar"),
    ("DOCKER/docker", "DOCKER", "docker", None, None, "DOCKER/docker", "DOCKER/docker"),
    # domains compare as written: Docker.io is not Docker Hub
    ("Docker.io/library/x", "Docker.io", "library/x", None, None,
     "Docker.io/library/x", "Docker.io/library/x"),
    # separators: one '.', one or two '_', any number of '-'
    ("docker---rules/docker", "docker.io", "docker---rules/docker", None, None,
     "docker---rules/docker", "docker.io/docker---rules/docker"),
    ("dock__er/docker", "docker.io", "dock__er/docker", None, None,
     "dock__er/docker", "docker.io/dock__er/docker"),
    ("d/docker", "docker.io", "d/docker", None, None, "d/docker", "docker.io/d/docker"),
    # tags may hold upper case, digits, '.', '_', '-'
    ("lowercase:Uppercase", "docker.io", "library/lowercase", "Uppercase", None,
     "lowercase:Uppercase", "docker.io/library/lowercase:Uppercase"),
    ("app:_private", "docker.io", "library/app", "_private", None,
     "app:_private", "docker.io/library/app:_private"),
    ("app:" + "t" * 128, "docker.io", "library/app", "t" * 128, None,
     "app:" + "t" * 128, "docker.io/library/app:" + "t" * 128),
    # digests
    ("redis@" + D_OTHER, "docker.io", "library/redis", None, D_OTHER,
     "redis@" + D_OTHER, "docker.io/library/redis@" + D_OTHER),
    ("test:5000/repo@" + D64, "test:5000", "repo", None, D64,
     "test:5000/repo@" + D64, "test:5000/repo@" + D64),
    ("test:5000/repo:tag@" + D64, "test:5000", "repo", "tag", D64,
     "test:5000/repo:tag@" + D64, "test:5000/repo:tag@" + D64),
    ("busybox:latest@" + D64, "docker.io", "library/busybox", "latest", D64,
     "busybox:latest@" + D64, "docker.io/library/busybox:latest@" + D64),
    ("xn--7o8h.com/myimage:xn--7o8h.com@" + D512, "xn--7o8h.com", "myimage", "xn--7o8h.com",
     D512, "xn--7o8h.com/myimage:xn--7o8h.com@" + D512,
     "xn--7o8h.com/myimage:xn--7o8h.com@" + D512),
    # 64 hex digits are an id alone, a name with a domain
    ("docker.io/" + "1a3f5e7d9c" * 6 + "1b3a", "docker.io", "library/" + "1a3f5e7d9c" * 6 + "1b3a",
     None, None, "1a3f5e7d9c" * 6 + "1b3a", "docker.io/library/" + "1a3f5e7d9c" * 6 + "1b3a"),
    # 63 hex digits are a name
    ("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", "docker.io",
     "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9", None, None,
     "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
     "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9"),
    # the fully qualified name may be 255 characters long (the tag does not count)
    ("a/" * 122 + "a:tag-puts-this-over-max", "docker.io", "a/" * 122 + "a",
     "tag-puts-this-over-max", None, "a/" * 122 + "a:tag-puts-this-over-max",
     "docker.io/" + "a/" * 122 + "a:tag-puts-this-over-max"),
    ("localhost/" + "a/" * 122 + "a", "localhost", "a/" * 122 + "a", None, None,
     "localhost/" + "a/" * 122 + "a", "localhost/" + "a/" * 122 + "a"),
]


@pytest.mark.parametrize("text, domain, path, tag, digest, familiar, qualified", VALID,
                         ids=[v[0][:60] for v in VALID])
def test_valid(text, domain, path, tag, digest, familiar, qualified):
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.familiar() == str(ref) == familiar
    assert ref.qualified() == qualified
    # both forms read back as the same reference (64 hex digits alone are an id)
    assert parse(qualified) == ref
    if len(familiar) != 64:
        assert parse(familiar) == ref


# input -> a piece of the reason
INVALID = [
    ("", "empty"),
    ("Uppercase:tag", "must be lowercase"),
    ("UPPER", "must be lowercase"),
    ("docker/Docker", "must be lowercase"),
    ("docker.io/docker/Docker", "must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("Upper/Case", "must be lowercase"),
    ("https://github.com/docker/docker", "without a scheme"),
    ("-docker", "name component '-docker'"),
    ("-docker/docker", "name component"),
    ("docker-/docker", "name component 'docker-'"),
    ("-docker.io/docker/docker", "registry host '-docker.io'"),
    ("docker///docker", "empty name component"),
    ("docker.io/docker///docker", "empty name component"),
    ("docker/", "empty name component"),
    ("____/____", "name component"),
    ("_docker/_docker", "name component"),
    # with a '.' the first component is a domain, and not a valid one
    ("dock..er/docker", "registry host 'dock..er'"),
    ("dock_.er/docker", "registry host 'dock_.er'"),
    ("dock-.er/docker", "registry host 'dock-.er'"),
    ("dock..er", "name component 'dock..er'"),
    ("aa/asdf$$^/aa", "name component"),
    ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "image id"),
    (":justtag", "repository name is missing"),
    ("@" + D64, "repository name is missing"),
    ("repo@sha256:" + "f" * 34, "64 lower-case hexadecimal digits"),
    ("repo@sha256:" + "F" * 64, "64 lower-case hexadecimal digits"),
    ("validname@invaliddigest:" + "f" * 64, "not supported"),
    ("repo@sha256", "ALGORITHM:HEX"),
    ("repo:", "tag ''"),
    ("repo:-tag", "tag '-tag'"),
    ("repo:.tag", "tag '.tag'"),
    ("repo:" + "t" * 129, "1 to 128"),
    ("repo:t@g", "ALGORITHM:HEX"),
    ("[fc00::1]:tag", "name component '[fc00::1]'"),
    ("[fc00::1]:5000", "name component"),
    ("[fc00::1::1]/repo", "registry host '[fc00::1::1]'"),
    ("[fc00::00001]/repo", "registry"),
    ("[someinvalidstring]/repo", "name component '[someinvalidstring]'"),
    ("[fc00::300.168.134.145]/repo", "registry"),
    ("a/" * 128 + "a:tag", "longer than 255"),
    # Docker 20.10 counts the fully qualified name: docker.io/ makes 256
    ("a/" * 122 + "aa", "longer than 255"),
    ("localhost/" + "a/" * 122 + "aa", "longer than 255"),
    ("app name", "spaces"),
    ("ex_ample.com:5000/app", "registry host 'ex_ample.com:5000'"),
]


@pytest.mark.parametrize("text, reason", INVALID, ids=[v[0][:60] for v in INVALID])
def test_invalid(text, reason):
    with pytest.raises(ReferenceError) as info:
        parse(text)
    assert isinstance(info.value, ValueError)
    assert reason in info.value.reason, info.value.reason
    assert "is not a valid image reference" in str(info.value)


def test_the_table_is_large_enough():
    assert len(VALID) + len(INVALID) >= 40


@pytest.mark.parametrize("text, normalized", [
    ("busybox", "busybox:latest"),
    ("docker.io/library/busybox", "busybox:latest"),
    ("busybox:1", "busybox:1"),
    ("busybox@" + D64, "busybox@" + D64),
    # tag and digest: the digest decides, the tag is dropped (as docker pull does)
    ("busybox:1@" + D64, "busybox@" + D64),
    ("127.0.0.1:5000/ns/x", "127.0.0.1:5000/ns/x:latest"),
])
def test_normalized(text, normalized):
    assert str(parse(text).normalized()) == normalized


def test_login_server():
    assert parse("busybox").login_server is None
    assert parse("index.docker.io/team/app").login_server is None
    assert parse("127.0.0.1:5000/app").login_server == "127.0.0.1:5000"
    assert parse("localhost/app").login_server == "localhost"


def image(tags=(), digests=(), image_id="sha256:" + "ab" * 32):
    return {"Id": image_id, "RepoTags": list(tags), "RepoDigests": list(digests)}


DOCKER_STYLE = image(["probe:latest", "127.0.0.1:5000/ns/x:2"],
                     ["127.0.0.1:5000/ns/x@" + D64])
PODMAN_STYLE = image(["docker.io/library/probe:latest", "127.0.0.1:5000/ns/x:2"],
                     ["127.0.0.1:5000/ns/x@" + D64])


@pytest.mark.parametrize("shown", [DOCKER_STYLE, PODMAN_STYLE], ids=["docker", "podman"])
@pytest.mark.parametrize("text, found", [
    ("probe", True),
    ("probe:latest", True),
    ("library/probe", True),
    ("docker.io/library/probe:latest", True),
    ("index.docker.io/library/probe", True),
    ("registry-1.docker.io/library/probe", True),
    ("docker.io/probe", True),
    ("probe:other", False),
    ("other/probe", False),
    ("localhost/probe", False),
    ("Docker.io/library/probe", False),
    ("127.0.0.1:5000/ns/x:2", True),
    ("127.0.0.1:5000/ns/x", False),  # tag latest
    ("127.0.0.1:5000/ns/x@" + D64, True),
    ("127.0.0.1:5000/ns/x:9@" + D64, True),  # the digest decides
    ("127.0.0.1:5000/ns/x@" + D_OTHER, False),
    ("127.0.0.1:5001/ns/x:2", False),
])
def test_matches(shown, text, found):
    assert parse(text).matches(shown) is found


def test_matches_skips_untagged_entries():
    assert not parse("none").matches(image(["<none>:<none>"], ["<none>@<none>"]))


def test_find_image_by_reference_then_id():
    a = image(["probe:latest"], image_id="sha256:" + "a" * 64)
    b = image([], image_id="sha256:" + "b" * 64)
    assert find_image("docker.io/library/probe", [b, a]) is a
    assert find_image("sha256:" + "b" * 64, [a, b]) is b
    assert find_image("b" * 64, [a, b]) is b
    assert find_image("b" * 12, [a, b]) is b
    assert find_image("b" * 11, [a, b]) is None  # too short for an id, no such tag
    assert find_image("nothere", [a, b]) is None
    assert find_image("Not A Reference", [a, b]) is None


def test_is_image_id():
    assert is_image_id("sha256:" + "0" * 64) and is_image_id("0" * 12)
    assert not is_image_id("0" * 11) and not is_image_id("busybox")


@pytest.mark.parametrize("text, domain, namespace", [
    ("127.0.0.1:5000", "127.0.0.1:5000", ""),
    ("registry.example.com/team/sub", "registry.example.com", "team/sub"),
    ("localhost", "localhost", ""),
    ("docker.io/account", "docker.io", "account"),
    ("index.docker.io", "docker.io", ""),
    ("localhost:5000/", "localhost:5000", ""),
])
def test_parse_registry(text, domain, namespace):
    assert parse_registry(text) == (domain, namespace)


@pytest.mark.parametrize("text, reason", [
    ("https://registry.example.com", "without a scheme"),
    ("account", "not a registry host"),
    ("bad host", "registry host 'bad host'"),
    ("registry.example.com/Team", "must be lowercase"),
    ("ex_ample.com", "registry host 'ex_ample.com'"),
])
def test_parse_registry_errors(text, reason):
    with pytest.raises(ReferenceError) as info:
        parse_registry(text)
    assert reason in info.value.reason


@pytest.mark.parametrize("text, registry, expected", [
    ("app", ("127.0.0.1:5000", ""), "127.0.0.1:5000/app"),
    ("app:1", ("127.0.0.1:5000", "ns"), "127.0.0.1:5000/ns/app:1"),
    ("ns/app", ("127.0.0.1:5000", "ns"), "127.0.0.1:5000/ns/app"),
    ("ns", ("127.0.0.1:5000", "ns"), "127.0.0.1:5000/ns/ns"),
    ("library/app", ("127.0.0.1:5000", ""), "127.0.0.1:5000/library/app"),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000", "ns"), "127.0.0.1:5000/app"),
    ("app", ("docker.io", ""), "app"),
    ("app", ("docker.io", "account"), "account/app"),
    ("index.docker.io/app", ("docker.io", ""), "app"),
    ("app@" + D64, ("localhost:5000", ""), "localhost:5000/app@" + D64),
])
def test_in_registry(text, registry, expected):
    assert str(in_registry(text, *registry)) == expected


def test_in_registry_refuses_another_registry():
    with pytest.raises(ReferenceError) as info:
        in_registry("other.example.com/x", "registry.example.com")
    assert "names registry other.example.com" in info.value.reason


def test_reference_is_frozen_and_hashable():
    ref = parse("busybox")
    with pytest.raises(Exception):
        ref.tag = "x"
    assert {ref, parse("docker.io/library/busybox")} == {ref}
    assert isinstance(ref, Reference)
