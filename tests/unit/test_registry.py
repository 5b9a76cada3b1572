"""Registry references and credentials (no engine)."""

import pytest
from zc.buildout import UserError

from dockeroo.model.options import Options
from dockeroo.recipes.common.registry import image_reference, read_credentials, read_registry


def reference(name, registry=None):
    values = {"name": name}
    if registry:
        values["registry"] = registry
    opts = Options("p", values)
    return str(image_reference(opts, name, "name", read_registry(opts)))


@pytest.mark.parametrize("name, registry, expected", [
    ("busybox", None, "busybox:latest"),
    ("app:1", "127.0.0.1:5000", "127.0.0.1:5000/app:1"),
    ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "127.0.0.1:5000/app:1"),
    ("app", "registry.example.com/team", "registry.example.com/team/app:latest"),
    ("team/app", "registry.example.com/team", "registry.example.com/team/app:latest"),
    ("app", "docker.io", "app:latest"),
    ("app", "docker.io/account", "account/app:latest"),
    ("localhost:5000/app", None, "localhost:5000/app:latest"),
    ("app@sha256:" + "b" * 64, "localhost:5000", "localhost:5000/app@sha256:" + "b" * 64),
    # spellings of Docker Hub names: normalised to what RepoTags show
    ("docker.io/library/app", None, "app:latest"),
    ("library/app:2", None, "app:2"),
    ("index.docker.io/team/app", None, "team/app:latest"),
    ("app:1@sha256:" + "c" * 64, None, "app@sha256:" + "c" * 64),
    ("docker.io/library/app", "docker.io", "app:latest"),
])
def test_reference(name, registry, expected):
    assert reference(name, registry) == expected


@pytest.mark.parametrize("name, registry, needle", [
    ("app", "https://registry.example.com", "without a scheme"),
    ("app", "account", "not a registry host"),
    ("app", "registry.example.com/Team", "namespace"),
    ("other.example.com/app", "registry.example.com", "names registry other.example.com"),
    ("App", None, "not a valid image reference"),
    ("App", None, "must be lowercase"),
    ("app@sha256:abc", None, "digest 'sha256:abc' must be ALGORITHM:HEX"),
    ("app", "bad host", "registry host 'bad host'"),
])
def test_reference_errors(name, registry, needle):
    with pytest.raises(UserError) as info:
        reference(name, registry)
    assert "Part [p]" in str(info.value) and needle in str(info.value)


def test_credentials_remove_the_password(tmp_path, monkeypatch):
    values = {"username": "u", "password": "pw"}
    assert read_credentials(Options("p", values), str(tmp_path)) == ("u", "pw")
    assert "password" not in values

    (tmp_path / "pw.txt").write_text("from-file\n")
    values = {"username": "u", "password-file": "pw.txt"}
    assert read_credentials(Options("p", values), str(tmp_path)) == ("u", "from-file")

    monkeypatch.setenv("DKT_PW", "from-env")
    values = {"username": "u", "password-env": "DKT_PW"}
    assert read_credentials(Options("p", values), str(tmp_path)) == ("u", "from-env")

    assert read_credentials(Options("p", {}), str(tmp_path)) == (None, None)


@pytest.mark.parametrize("values, option", [
    ({"password": "pw"}, "'username'"),
    ({"username": "u"}, "'password'"),
    ({"username": "u", "password": "pw", "password-file": "f"}, "'password'"),
    ({"username": "u", "password-env": "DKT_SURELY_UNSET"}, "'password-env'"),
    ({"username": "u", "password-file": "empty.txt"}, "'password-file'"),
])
def test_credential_errors(values, option, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError) as info:
        read_credentials(Options("p", dict(values)), str(tmp_path))
    assert "Part [p], option %s" % option in str(info.value)
    assert "pw" not in str(info.value).replace("password", "")
