"""dockeroo.model.options: typed option readers (no engine)."""

import ipaddress

import pytest
from zc.buildout import UserError

from dockeroo.model.options import Options, option_error, parse_mapping


def opts(**values):
    return Options("mypart", {k.replace("_", "-"): v for k, v in values.items()})


def error_of(call):
    with pytest.raises(UserError) as info:
        call()
    return str(info.value)


# -- booleans -------------------------------------------------------------------
@pytest.mark.parametrize("value", ["true", "True", "YES", "on", "1", " yes "])
def test_bool_true(value):
    assert opts(keep=value).bool("keep") is True


@pytest.mark.parametrize("value", ["false", "FALSE", "no", "Off", "0"])
def test_bool_false(value):
    assert opts(keep=value).bool("keep", True) is False


def test_bool_default_when_missing_or_empty():
    assert opts().bool("keep") is False
    assert opts().bool("keep", True) is True
    assert opts(keep="").bool("keep", True) is True
    assert opts().bool("keep", None) is None


@pytest.mark.parametrize("value", ["maybe", "2", "y", "tru", "yes please"])
def test_bool_errors_name_part_option_value(value):
    message = error_of(lambda: opts(keep=value).bool("keep"))
    assert message.startswith("Part [mypart], option 'keep' = %r:" % value)
    assert "boolean" in message


# -- text, word, int, choice -----------------------------------------------------------
def test_text_strips_and_defaults():
    assert opts(name="  img  ").text("name") == "img"
    assert opts(name="").text("name", default="d") == "d"
    assert opts().text("name", default="d") == "d"
    assert "'name': is required" in error_of(lambda: opts().text("name", required=True))


def test_aliases():
    assert opts(image="busybox").text("name", aliases=("image",)) == "busybox"
    assert opts(name="a", image="a").text("name", aliases=("image",)) == "a"
    message = error_of(lambda: opts(name="a", image="b").text("name", aliases=("image",)))
    assert "Part [mypart], option 'name'" in message and "'image'" in message


def test_word_refuses_spaces():
    assert opts(driver="local").word("driver") == "local"
    message = error_of(lambda: opts(driver="two words").word("driver"))
    assert message.startswith("Part [mypart], option 'driver' = 'two words':")


def test_int_and_bounds():
    assert opts(n="42").int("n") == 42
    assert opts().int("n", 7) == 7
    assert "whole number" in error_of(lambda: opts(n="4.2").int("n"))
    assert "at least 1" in error_of(lambda: opts(n="0").int("n", minimum=1))
    assert "at most 9" in error_of(lambda: opts(n="10").int("n", maximum=9))


def test_choice():
    assert opts(m="b").choice("m", ("a", "b")) == "b"
    message = error_of(lambda: opts(m="c").choice("m", ("a", "b")))
    assert "option 'm' = 'c'" in message and "a, b" in message


# -- durations ---------------------------------------------------------------------
@pytest.mark.parametrize("value, seconds", [
    ("30", 30.0), ("30s", 30.0), (" 2.5 ", 2.5), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0),
    ("1.5m", 90.0), ("10 s", 10.0),
])
def test_durations(value, seconds):
    assert opts(timeout=value).duration("timeout") == seconds


@pytest.mark.parametrize("value, why", [
    ("soon", "duration"), ("-5", "duration"), ("5d", "duration"), ("0", "greater than zero"),
    ("0ms", "greater than zero"), ("1e3", "duration"),
])
def test_duration_errors(value, why):
    message = error_of(lambda: opts(timeout=value).duration("timeout"))
    assert message.startswith("Part [mypart], option 'timeout' = %r:" % value)
    assert why in message


def test_duration_default():
    assert opts().duration("timeout") is None
    assert opts().duration("timeout", 180) == 180


# -- lines and KEY=VALUE -------------------------------------------------------------
def test_lines_skip_blanks_and_comments():
    value = "\n  first\n\n  # a comment\n second line  \n#another\n"
    assert opts(items=value).lines("items") == ["first", "second line"]
    assert opts().lines("items") == []
    assert opts(items="").lines("items") == []


def test_key_values_split_on_first_equals_and_keep_spaces():
    value = """
        PATH=/usr/bin:/bin
        GREETING = hello  big world
        OPTS=-Dx=1 -Dy=2
        EMPTY=
        # COMMENTED=1
        """
    assert opts(env=value).key_values("env") == {
        "PATH": "/usr/bin:/bin",
        "GREETING": "hello  big world",
        "OPTS": "-Dx=1 -Dy=2",
        "EMPTY": "",
    }


def test_key_values_other_separator():
    assert opts(m="a:b:c").key_values("m", separator=":") == {"a": "b:c"}


@pytest.mark.parametrize("line", ["novalue", "=value", "two words=x"])
def test_key_values_errors(line):
    message = error_of(lambda: opts(labels="ok=1\n" + line).key_values("labels"))
    assert message.startswith("Part [mypart], option 'labels' = %r:" % line)
    assert "KEY=VALUE" in message


# -- scripts --------------------------------------------------------------------------
def test_script_dedents_keeps_relative_indentation_blank_lines_and_dollars():
    value = """
        set -e
        for f in a b; do
            echo "$$f" $${HOME}
        done

        cat > /tmp/x <<EOF
        line one
          indented line

        EOF
        """
    assert opts(script=value).script("script") == (
        "set -e\n"
        "for f in a b; do\n"
        "    echo \"$f\" ${HOME}\n"
        "done\n"
        "\n"
        "cat > /tmp/x <<EOF\n"
        "line one\n"
        "  indented line\n"
        "\n"
        "EOF\n")


def test_script_first_line_on_option_line():
    # "script = echo hi" followed by more lines: buildout gives "echo hi\n    more"
    assert opts(script="echo hi").script("script") == "echo hi\n"
    assert opts(script="").script("script") is None
    assert opts(script="  \n \n").script("script") is None
    assert opts().script("script") is None


# -- argv --------------------------------------------------------------------------
def test_argv_shell_quoting():
    value = """sh -c 'echo "a b"; echo $$HOME' "two words" plain\\ space"""
    assert opts(command=value).argv("command") == [
        "sh", "-c", 'echo "a b"; echo $HOME', "two words", "plain space"]


def test_argv_defaults_and_errors():
    assert opts().argv("command") is None
    assert opts().argv("command", ["true"]) == ["true"]
    assert opts(command="   ").argv("command", ["x"]) == ["x"]
    message = error_of(lambda: opts(command="echo 'unbalanced").argv("command"))
    assert message.startswith("Part [mypart], option 'command' = \"echo 'unbalanced\":")
    assert "command line" in message


# -- addresses ---------------------------------------------------------------------
def test_network_and_address():
    assert opts(subnet="172.28.5.0/24").network("subnet") == ipaddress.ip_network("172.28.5.0/24")
    assert opts(subnet="fd00:1::/64").network("subnet").version == 6
    assert opts(gateway="172.28.5.1").address("gateway") == ipaddress.ip_address("172.28.5.1")
    assert opts().network("subnet") is None and opts().address("gateway") is None


@pytest.mark.parametrize("value", ["172.28.5.1/24", "172.28.5.0/33", "nonsense", "300.1.1.0/24"])
def test_network_errors(value):
    message = error_of(lambda: opts(subnet=value).network("subnet"))
    assert message.startswith("Part [mypart], option 'subnet' = %r:" % value)
    assert "CIDR" in message


@pytest.mark.parametrize("value", ["172.28.5.256", "host.example", "172.28.5.0/24"])
def test_address_errors(value):
    message = error_of(lambda: opts(gateway=value).address("gateway"))
    assert message.startswith("Part [mypart], option 'gateway' = %r:" % value)
    assert "IP address" in message


# -- paths -------------------------------------------------------------------------
def test_path(tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "file").write_text("x")
    o = opts(source="ctx", file="file", missing="nope")
    assert o.path("source", str(tmp_path), must_exist=True, kind="dir") == str(tmp_path / "ctx")
    assert o.path("source", "/elsewhere") == "/elsewhere/ctx"
    assert "does not exist" in error_of(lambda: o.path("missing", str(tmp_path), must_exist=True))
    assert "not a directory" in error_of(
        lambda: o.path("file", str(tmp_path), must_exist=True, kind="dir"))
    assert "not a file" in error_of(
        lambda: o.path("source", str(tmp_path), must_exist=True, kind="file"))


# -- secrets -----------------------------------------------------------------------
def test_secret_from_option_is_removed_from_options():
    values = {"password": " hunter2 ", "username": "me"}
    o = Options("mypart", values)
    assert o.secret("password", "/") == "hunter2"
    assert "password" not in values and values["username"] == "me"


def test_secret_from_file(tmp_path):
    (tmp_path / "pw").write_text("from file\n")
    values = {"password-file": "pw"}
    assert Options("mypart", values).secret("password", str(tmp_path)) == "from file"
    assert "password" not in values
    # the file name is not secret; it stays (a changed file name reinstalls)
    assert values["password-file"] == "pw"


def test_secret_from_environment(monkeypatch):
    monkeypatch.setenv("MY_REGISTRY_PW", "from env")
    values = {"password-env": "MY_REGISTRY_PW"}
    assert Options("mypart", values).secret("password", "/") == "from env"
    assert "from env" not in repr(values)


def test_secret_absent():
    values = {"password": ""}
    assert Options("mypart", values).secret("password", "/") is None
    assert "password" not in values
    assert Options("mypart", {}).secret("password", "/") is None


def test_secret_errors_do_not_show_the_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VARIABLE_X", raising=False)
    message = error_of(lambda: Options("mypart", {"password": "hunter2", "password-file": "f"})
                       .secret("password", str(tmp_path)))
    assert "Part [mypart], option 'password'" in message and "password-file" in message
    assert "hunter2" not in message
    message = error_of(lambda: Options("mypart", {"password-file": "missing"})
                       .secret("password", str(tmp_path)))
    assert message.startswith("Part [mypart], option 'password-file' = 'missing':")
    message = error_of(lambda: Options("mypart", {"password-env": "NO_SUCH_VARIABLE_X"})
                       .secret("password", "/"))
    assert message.startswith("Part [mypart], option 'password-env' = 'NO_SUCH_VARIABLE_X':")
    assert "not set" in message


# -- messages and helpers ----------------------------------------------------------
def test_error_message_format_and_truncation():
    assert str(option_error("p", "o", None, "why")) == "Part [p], option 'o': why"
    assert str(option_error("p", "o", "v", "why")) == "Part [p], option 'o' = 'v': why"
    long = "x" * 500
    message = str(option_error("p", "o", long, "why"))
    assert len(message) < 300 and "..." in message


def test_parse_mapping():
    o = opts()
    assert parse_mapping(o, "volumes", "data:/srv") == ["data", "/srv"]
    assert parse_mapping(o, "volumes", "data:/srv:ro") == ["data", "/srv", "ro"]
    for bad in ("data", ":/srv", "a:b:c:d"):
        message = error_of(lambda: parse_mapping(o, "volumes", bad))
        assert message.startswith("Part [mypart], option 'volumes' = %r:" % bad)


# -- Docker object names ---------------------------------------------------------------
@pytest.mark.parametrize("value", ["ab", "my-app_1.2", "0a", "3f4e5d6c7b8a"])
def test_object_name_strict_ok(value):
    assert opts(name=value).object_name("name") == value


@pytest.mark.parametrize("value", ["a", "-x", "--help", "a b", "_a", ".a", "a/b", "a:b", "ünï"])
def test_object_name_strict_refused(value):
    text = error_of(lambda: opts(name=value).object_name("name"))
    assert "Part [mypart], option 'name'" in text and "2 or more" in text


@pytest.mark.parametrize("value", ["a", "a/b", "net.work:1", "ünï"])
def test_object_name_loose_ok(value):
    assert opts(name=value).object_name("name", strict=False) == value


@pytest.mark.parametrize("value", ["-x", "--help", "a b", "a\tb"])
def test_object_name_loose_refused(value):
    text = error_of(lambda: opts(name=value).object_name("name", strict=False, hint=" (h)"))
    assert "option 'name'" in text and "not start with '-' (h)" in text


# -- image references -----------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("busybox", "busybox"),
    ("docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "busybox"),
    ("library/busybox:1", "busybox:1"),
    ("127.0.0.1:5000/ns/x@sha256:" + "a" * 64, "127.0.0.1:5000/ns/x@sha256:" + "a" * 64),
    ("a" * 64, "a" * 64),  # an image id
    ("sha256:" + "a" * 64, "sha256:" + "a" * 64),
])
def test_image_ref_gives_the_familiar_form(value, expected):
    assert opts(image=value).image_ref("image") == expected


def test_reference_is_normalised():
    ref = opts(image="index.docker.io/library/busybox").reference("image")
    assert (ref.domain, ref.path, str(ref.normalized())) == ("docker.io", "library/busybox",
                                                             "busybox:latest")


@pytest.mark.parametrize("value, kwargs, words", [
    ("Busybox", {}, "must be lowercase"),
    ("busybox:", {}, "tag ''"),
    ("x@sha256:" + "a" * 64, {"digest": False}, "not a digest reference"),
    ("https://example.com/x", {}, "without a scheme"),
])
def test_image_ref_errors(value, kwargs, words):
    message = error_of(lambda: opts(image=value).image_ref("image", **kwargs))
    assert message.startswith("Part [mypart], option 'image' = %r: " % value), message
    assert "valid image reference" in message or "digest" in message
    assert words in message, message
