"""Podman adaptations that need no engine: typed errors, references, network views."""

import pytest

from dockeroo.engine.errors import _only_missing
from dockeroo.engine.capabilities import Capabilities
from dockeroo.runtime.container import config_changes, label_change, split_change
from dockeroo.engine.errors import (Conflict, DockerError, HostChanged, InUse, NotFound, Timeout,
                                    Unreachable)
from dockeroo.recipes.network import podman_view
from dockeroo.base.references import find_image

# the engines' own answers (Docker 20.10.24, Podman 4.3.1 through the docker CLI 28)
ANSWERS = [
    # Docker
    ("Error: No such container: x", NotFound),
    ("Error response from daemon: No such image: x:latest", NotFound),
    ("Error: No such object: x", NotFound),
    ("Error response from daemon: network x not found", NotFound),
    ("Error response from daemon: get x: no such volume", NotFound),
    ("Error response from daemon: remove v: volume is in use - [0123456789ab]", InUse),
    ("Error response from daemon: conflict: unable to delete 0123456789ab (must be forced) - "
     "image is being used by stopped container 456789abcdef", InUse),
    ("Error response from daemon: conflict: unable to remove repository reference \"a\" "
     "(must force) - container 456789abcdef is using its referenced image 0123456789ab", InUse),
    ("Error response from daemon: Conflict. The container name \"/x\" is already in use by "
     "container \"0123\". You have to remove (or rename) that container", Conflict),
    ("Error response from daemon: network with name x already exists", Conflict),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
     "daemon running?", Unreachable),
    # Podman
    ("Error response from daemon: no container with name or ID \"x\" found: no such container",
     NotFound),
    ("Error response from daemon: failed to find image x: docker.io/library/x: image not known",
     NotFound),
    ("Error response from daemon: unable to find network with name or ID x: network not found",
     NotFound),
    ("Error response from daemon: normalizing name \"%s\" for compat API: invalid repository "
     "name (%s), cannot specify 64-byte hexadecimal strings" % ("a" * 64, "a" * 64), NotFound),
    ("Error response from daemon: volume v is being used by the following container(s): "
     "0123: volume is being used", InUse),
    ("Error response from daemon: image x is in use: image used by 0123: image is in use by a "
     "container: consider listing external containers and force-removing image", InUse),
    ("Error response from daemon: container create: creating container storage: the container "
     "name \"x\" is already in use by 0123. You have to remove that container to be able to "
     "reuse that name: that name is already in use", Conflict),
    ("Error response from daemon: network name x already used: network already exists", Conflict),
    # Podman's network create when an interface went while it read the host's addresses
    ("Error response from daemon: route ip+net: no such network interface", HostChanged),
    ("Error response from daemon: some other failure", DockerError),
]


@pytest.mark.parametrize("stderr,kind", ANSWERS)
def test_errors_are_typed_from_both_engines_texts(stderr, kind):
    error = DockerError.from_output(["docker", "x"], 1, stderr)
    assert type(error) is kind
    assert isinstance(error, DockerError)


def test_a_timed_out_command_is_a_timeout():
    error = DockerError.from_output(["docker", "build"], None, "no such thing", timed_out=5)
    assert type(error) is Timeout and "timed out after 5s" in str(error)


def test_inspect_of_missing_objects_is_not_an_error_on_podman():
    assert _only_missing("Error response from daemon: network not found\n"
                                    "exit status 1\n")
    assert not _only_missing("permission denied\n")


PODMAN_VERSION = {"Server": {"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}],
                             "Version": "4.3.1", "ApiVersion": "1.41", "Os": "linux",
                             "Arch": "amd64"}}


def test_podman_limits_name_the_engine():
    podman = Capabilities.from_version(PODMAN_VERSION)
    assert podman.is_podman
    assert "Podman 4.3.1" in podman.limit("links") and "(--link)" in podman.limit("links")
    docker = Capabilities.from_version({"Server": {"Components": [{"Name": "Engine"}]}})
    assert docker.limit("links") is None


def test_a_short_name_matches_podmans_localhost_tag_only_on_podman():
    image = {"Id": "sha256:" + "1" * 64, "RepoTags": ["localhost/app:1"]}
    asked = []

    def podman(answer):
        return lambda: asked.append(1) or answer
    assert find_image("app:1", [image], podman(True)) is image
    assert find_image("app:1", [image], podman(False)) is None
    assert find_image("app:2", [image], podman(True)) is None
    # a name written with Docker Hub's domain is not a short name
    assert find_image("docker.io/library/app:1", [image], podman(True)) is None
    assert find_image("docker.io/library/app:1", [image]) is None
    # Podman's fully qualified tags match without asking
    asked.clear()
    qualified = {"Id": "sha256:" + "2" * 64, "RepoTags": ["docker.io/library/app:1"]}
    assert find_image("app:1", [qualified], podman(True)) is qualified and not asked


def test_podman_network_view_ignores_its_default_gateway_and_the_hidden_range():
    has = [{"Subnet": "172.28.5.0/24", "Gateway": "172.28.5.1"}]
    wants = [{"Subnet": "172.28.5.0/24", "IPRange": "172.28.5.128/25"}]
    assert podman_view(has, wants) == ([{"Subnet": "172.28.5.0/24"}],
                                       [{"Subnet": "172.28.5.0/24"}])
    # a gateway that is not the default, or one asked for, is compared
    has = [{"Subnet": "172.28.5.0/24", "Gateway": "172.28.5.9"}]
    assert podman_view(has, [{"Subnet": "172.28.5.0/24"}])[0] == has
    wants = [{"Subnet": "172.28.5.0/24", "Gateway": "172.28.5.1"}]
    has = [{"Subnet": "172.28.5.0/24", "Gateway": "172.28.5.1"}]
    assert podman_view(has, wants) == (has, wants)


def test_label_lines_are_split_for_podmans_import():
    line = label_change({"a b": 'x"y', "k=2": "v\\w"})
    assert split_change(line) == [label_change({"a b": 'x"y'}), label_change({"k=2": "v\\w"})]
    assert split_change('CMD ["/bin/sh"]') == ['CMD ["/bin/sh"]']


def test_a_containers_config_becomes_import_changes():
    changes = config_changes({"Env": ["A=1 2"], "Cmd": ["/bin/sh", "-c", "x"], "User": "app",
                              "WorkingDir": "/w", "ExposedPorts": {"80/tcp": {}},
                              "Volumes": {"/data": {}}, "Labels": {"k": "v"}})
    assert changes == ['ENV A="1 2"', 'CMD ["/bin/sh", "-c", "x"]', "WORKDIR /w", "USER app",
                       "EXPOSE 80/tcp", 'VOLUME ["/data"]', 'LABEL "k"="v"']


def _tar(members):
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, uname in members:
            info = tarfile.TarInfo(name)
            info.type, info.uname, info.gname = kind, uname, uname
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    buf.seek(0)
    return buf


def test_owner_names_give_podmans_archives_their_ids_back():
    import io
    import tarfile
    from dockeroo.base import tarstream
    src = _tar([("app", tarfile.DIRTYPE, "app"), ("app/f", tarfile.REGTYPE, "nobody"),
                ("app/g", tarfile.REGTYPE, "")])
    out = io.BytesIO()
    tarstream.retarget_many([(src, lambda n: n)], out,
                            owners=({"app": 1000, "nobody": 65534}, {"app": 1000}))
    out.seek(0)
    found = {m.name: (m.uid, m.gid) for m in tarfile.open(fileobj=out)}
    assert found == {"app": (1000, 1000), "app/f": (65534, 0), "app/g": (0, 0)}


def test_the_first_header_tells_a_file_from_a_folder():
    import tarfile
    from dockeroo.base import tarstream
    assert tarstream.names_a_file(_tar([("f", tarfile.REGTYPE, "")]).read(512))
    assert not tarstream.names_a_file(_tar([("d", tarfile.DIRTYPE, "")]).read(512))
    assert not tarstream.names_a_file(b"")
    assert tarstream.first_file(_tar([("d", tarfile.DIRTYPE, ""), ("d/f", tarfile.REGTYPE, "")])) == b""
