"""Secrets (build-env values, passwords in archive URLs) are in no message and no log line."""

import os
import textwrap

from support.engine import inspect

from dockeroo.base import redaction
from dockeroo.engine.errors import DockerError
from dockeroo.model.options import option_error

PRIVILEGES = """privileged = false
cap-add = ALL
cap-drop = SYS_RESOURCE
security-opt = seccomp=unconfined"""


def test_build_env_values_hidden_at_debug_level(buildout, prefix, base_image, docker_recorder):
    secret = "tok-%s-S3cr3t" % prefix
    buildout.configure(textwrap.dedent("""
        [img]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-img
        build-image = %(base)s
        build-env =
            API_TOKEN = %(secret)s
            OTHER = x
        pre-build-script =
            [ "$${#API_TOKEN}" = %(length)d ] && echo token-arrived
            echo "leaking $$API_TOKEN"
            exit 3
        %(priv)s
        """) % dict(prefix=prefix, base=base_image, secret=secret, length=len(secret),
                 priv=PRIVILEGES))
    result = buildout.fails("-vv", env=docker_recorder.env)
    assert "token-arrived" in result.output  # the value did reach the script
    assert any(argv[:1] == ["exec"] for argv in docker_recorder.commands())
    for argv in docker_recorder.commands():  # on no command line
        assert not any(secret in word for word in argv), argv
    line = result.error_line()
    assert "Part [img]" in line and "exit 3" in line, result.output[-3000:]
    assert secret not in result.output, [l for l in result.output.splitlines() if secret in l]
    assert "leaking ***" in result.output
    assert inspect("image", prefix + "-img") is None
    assert secret not in open(buildout.path(".installed.cfg")).read() \
        if os.path.exists(buildout.path(".installed.cfg")) else True


def test_archive_url_password_hidden_at_debug_level(buildout, prefix):
    secret = "pw-%s-S3cr3t" % prefix
    buildout.configure(textwrap.dedent("""
        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s/boot:1
        archives = http://someone:%s@127.0.0.1:9/stage3.tar.xz
        privileged = false
        """) % (prefix, secret))
    result = buildout.fails("-vv")
    line = result.error_line()
    assert line.startswith("Error: Part [boot], option 'archives' = "), result.output[-3000:]
    assert "127.0.0.1:9/stage3.tar.xz" in line
    assert secret not in result.output, [l for l in result.output.splitlines() if secret in l]
    assert "someone:" not in result.output


def test_redaction_at_the_places_messages_are_formed():
    redaction.add_secret("hunter2-value")
    error = DockerError(["docker", "exec", "--env", "A=hunter2-value", "c"], 1,
                                   "bad hunter2-value at https://u:p@host/x")
    assert "hunter2" not in str(error) and "u:p@" not in str(error)
    assert "https://***@host/x" in str(error)
    error = option_error("p", "archives", "ftp://me:hunter2-value@h/a.tar", "oops hunter2-value")
    assert "hunter2" not in str(error) and "me:" not in str(error)
    redaction.add_secret("abc")  # too short to hide: would blank out unrelated text
    assert redaction.redact("abc") == "abc"
