"""Registry passwords: never on a docker argv, in buildout's output or in .installed.cfg;
login in a throw-away DOCKER_CONFIG; the user's docker configuration untouched."""

import json
import os

import pytest

from support.engine import docker, inspect


@pytest.fixture
def user_home(tmp_path):
    """A HOME and DOCKER_CONFIG of the user's own, with a config.json to watch."""
    home = tmp_path / "home"
    config_dir = home / ".docker"
    config_dir.mkdir(parents=True)
    content = json.dumps({"auths": {}, "psFormat": "table {{.Names}}", "dkt-marker": "untouched"})
    (config_dir / "config.json").write_text(content)
    return home


def snapshot(directory):
    """Every file under DIRECTORY with its content."""
    found = {}
    for root, dirs, files in os.walk(str(directory)):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, str(directory))] = handle.read()
    return found


def parts(registry, prefix, credentials):
    return """
        [pulled]
        recipe = dockeroo:docker.pull
        image = %(prefix)s-src:1
        registry = %(host)s
        %(credentials)s

        [pushed]
        recipe = dockeroo:docker.push
        image = %(prefix)s-src:1
        registry = %(host)s/copy
        %(credentials)s
        """ % {"prefix": prefix, "host": registry.host,
               "credentials": credentials.replace("\n", "\n        ")}


@pytest.mark.parametrize("how", ["password", "password-file", "password-env"])
def test_password_is_kept_secret(how, buildout, prefix, base_image, registry, docker_recorder,
                                 user_home):
    registry.push(base_image, "%s-src:1" % prefix)
    docker("tag", base_image, prefix + "-src:1")  # what the push part sends
    secret = registry.password
    env = dict(docker_recorder.env, HOME=str(user_home), DOCKER_CONFIG=str(user_home / ".docker"))
    if how == "password":
        credentials = "username = %s\npassword = %s" % (registry.username, secret)
    elif how == "password-file":
        buildout.write("secrets/registry.txt", secret + "\n")
        credentials = "username = %s\npassword-file = secrets/registry.txt" % registry.username
    else:
        env["DKT_REGISTRY_PASSWORD"] = secret
        credentials = "username = %s\npassword-env = DKT_REGISTRY_PASSWORD" % registry.username
    buildout.configure(parts(registry, prefix, credentials))
    before = snapshot(user_home)

    result = buildout.ok("-vv", env=env)  # -vv: buildout prints its configuration data too

    assert inspect("image", "%s/%s-src:1" % (registry.host, prefix)) is not None
    assert registry.tags("copy/%s-src" % prefix) == ["1"]
    calls = docker_recorder.calls()
    logins = [c for c in calls if c["argv"][0] == "login"]
    assert len(logins) == 2
    for call in calls:
        assert not any(secret in arg for arg in call["argv"]), call
    for call in calls:
        if call["argv"][0] in ("login", "pull", "push"):
            # a throw-away configuration, not the user's
            assert call["docker_config"] and call["docker_config"] != env["DOCKER_CONFIG"], call
            assert not os.path.exists(call["docker_config"]), "removed afterwards"
    assert secret not in result.output
    installed = buildout.installed()
    assert secret not in installed
    assert "\npassword =" not in installed
    assert snapshot(user_home) == before, "the user's docker configuration is untouched"


def test_without_credentials_the_users_config_is_used(buildout, prefix, base_image, registry,
                                                      docker_recorder, user_home):
    registry.push(base_image, "%s-src:1" % prefix)
    docker("tag", base_image, prefix + "-src:1")
    config_dir = user_home / ".docker"
    registry.login(config_dir)  # the user logged in with docker login
    before = snapshot(user_home)
    env = dict(docker_recorder.env, HOME=str(user_home), DOCKER_CONFIG=str(config_dir))
    buildout.configure(parts(registry, prefix, ""))
    buildout.ok(env=env)
    assert registry.tags("copy/%s-src" % prefix) == ["1"]
    assert docker_recorder.commands("login") == []
    for call in docker_recorder.calls():
        assert call["docker_config"] == str(config_dir), call
    assert snapshot(user_home) == before


def test_login_keeps_the_users_docker_context(buildout, prefix, base_image, registry,
                                              docker_recorder, user_home):
    """The throw-away DOCKER_CONFIG still selects the user's current docker context."""
    registry.push(base_image, "%s-src:1" % prefix)
    docker("tag", base_image, prefix + "-src:1")
    config_dir = str(user_home / ".docker")
    context = prefix + "-ctx"
    env = dict(os.environ, DOCKER_CONFIG=config_dir)
    host = env.pop("DOCKER_HOST", None) or "unix:///var/run/docker.sock"  # the engine under test
    env.pop("DOCKER_CONTEXT", None)
    docker("context", "create", context, "--docker", "host=" + host, env=env)
    docker("context", "use", context, env=env)
    before = snapshot(user_home)
    # an empty DOCKER_HOST is no DOCKER_HOST: the context decides
    run_env = dict(docker_recorder.env, HOME=str(user_home), DOCKER_CONFIG=config_dir,
                   DOCKER_HOST="")
    buildout.configure(parts(registry, prefix, "username = %s\npassword = %s"
                             % (registry.username, registry.password)))
    buildout.ok(env=run_env)
    seen = [c for c in docker_recorder.calls() if c["argv"][0] in ("login", "pull", "push")]
    assert len(seen) == 4
    for call in seen:
        assert call["context"] == context, call
    assert snapshot(user_home) == before, "the context store is shared, not changed"


def test_wrong_password(buildout, prefix, base_image, registry, docker_recorder):
    registry.push(base_image, "%s-src:1" % prefix)
    wrong = "not-the-" + registry.password
    buildout.configure("""
        [pulled]
        recipe = dockeroo:docker.pull
        image = %s-src:1
        registry = %s
        username = %s
        password = %s
        """ % (prefix, registry.host, registry.username, wrong))
    result = buildout.fails(env=docker_recorder.env)
    line = result.error_line()
    assert "Part [pulled]" in line and "login" in line and registry.host in line, result.output
    assert wrong not in result.output
    assert "Traceback" not in result.output
    assert docker_recorder.commands("pull") == []
    assert inspect("image", "%s/%s-src:1" % (registry.host, prefix)) is None
    assert wrong not in buildout.installed()
    for call in docker_recorder.calls():
        assert not any(wrong in arg for arg in call["argv"])
