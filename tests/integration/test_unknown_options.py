"""The warning about options a recipe does not know (a typo is not silently ignored).

A part with an option its recipe never reads (``build_args`` for
``build-args``, ``comand``, ``secrets`` on a recipe without secrets) gets
one warning naming the part, the option and the closest known option, and
is otherwise installed exactly as without it.  No example buildout of the
documentation (README.rst, docs/, the repository's buildout.cfg) gets the
warning: each of their dockeroo parts is constructed (options read and
validated, as buildout does before installing) against a stand-in engine
(tests/support/doc_examples.py).
"""

import os
import sys

import pytest

from support.engine import docker, inspect

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "support"))
import doc_examples  # noqa: E402

WARNING = "is not an option of"
EXAMPLES = list(doc_examples.examples())


@pytest.mark.parametrize("where, line, text", EXAMPLES,
                         ids=["%s:%d" % (where, line) for where, line, _ in EXAMPLES])
def test_documented_examples_give_no_unknown_option_warning(where, line, text, tmp_path,
                                                            monkeypatch, caplog):
    warnings, errors = doc_examples.construct(text, str(tmp_path), monkeypatch, caplog)
    assert warnings == [], "%s:%d" % (where, line)
    assert errors == {}, "%s:%d: the example's parts could not be checked" % (where, line)


def test_the_examples_cover_every_recipe():
    recipes = {line.split("dockeroo:", 1)[1].strip()
               for _where, _line, text in EXAMPLES for line in text.splitlines()
               if line.startswith("recipe = dockeroo:")}
    documented = {name[:-4] for name in os.listdir(os.path.join(doc_examples.ROOT, "docs",
                                                                "recipes"))}
    assert documented <= recipes, documented - recipes


@pytest.mark.parametrize("recipe, options, option, closest", [
    ("docker.build", "source = app\nbuild_args = X=1", "build_args", "build-args"),
    ("docker.run", "image = example/app:1\ncomand = sleep 1", "comand", "command"),
    ("docker.volume", "ports = 8080", "ports", None),
    ("docker.network", "subnett = 172.28.7.0/24", "subnett", "subnet"),
    ("docker.service", "image = example/app:1\nreplica = 2", "replica", "replicas"),
    ("docker.secret", "file = secrets/db-password\nlabel = a=b", "label", "labels"),
])
def test_a_typo_is_warned_with_part_option_and_closest(recipe, options, option, closest,
                                                      tmp_path, monkeypatch, caplog):
    text = "[part]\nrecipe = dockeroo:%s\n%s\n" % (recipe, options)
    warnings, errors = doc_examples.construct(text, str(tmp_path), monkeypatch, caplog)
    assert errors == {}
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("option %r is not an option of dockeroo:%s"
                                  % (option, recipe)), warnings
    if closest:
        assert "(did you mean %r?)" % closest in warnings[0], warnings
    else:
        assert "did you mean" not in warnings[0], warnings


def test_options_the_configuration_uses_are_not_unknown(tmp_path, monkeypatch, caplog):
    # helper options read only through substitutions, in the part or from another
    text = """
        [vol]
        recipe = dockeroo:docker.volume
        arch = x86_64
        flavour = slim
        name = data-${:arch}

        [net]
        recipe = dockeroo:docker.network
        name = net-${vol:flavour}
        """
    warnings, errors = doc_examples.construct(text.replace("\n        ", "\n"), str(tmp_path),
                                              monkeypatch, caplog)
    assert errors == {} and warnings == []


def warned(result, part, option):
    return [line for line in result.output.splitlines()
            if line.startswith("%s: option %r %s" % (part, option, WARNING))]


def test_typos_in_a_real_run_warn_and_change_nothing_else(buildout, prefix, base_image):
    buildout.write("app/Dockerfile", "FROM %s\nARG X=default\nRUN echo $X > /x\n" % base_image)
    parts = """
        [img]
        recipe = dockeroo:docker.build
        name = %(p)s-img:1
        source = app
        %(build)s

        [vol]
        recipe = dockeroo:docker.volume
        name = %(p)s-vol
        %(vol)s

        [app]
        recipe = dockeroo:docker.run
        container = %(p)s-app
        image = ${img:image}
        %(run)s
        """
    buildout.configure(parts % {"p": prefix, "build": "build_args = X=typo",
                                "vol": "secrets = token", "run": "comand = sleep 1000"})
    result = buildout.ok()
    assert len(warned(result, "img", "build_args")) == 1, result.output
    assert "did you mean 'build-args'" in warned(result, "img", "build_args")[0]
    assert len(warned(result, "app", "comand")) == 1, result.output
    assert "did you mean 'command'" in warned(result, "app", "comand")[0]
    assert len(warned(result, "vol", "secrets")) == 1, result.output
    # ignored: the build argument keeps its default, the container the image's command
    assert docker("run", "--rm", prefix + "-img:1", "cat", "/x").strip() == "default"
    container = inspect("container", prefix + "-app")
    assert container["Config"]["Cmd"] == inspect("image", prefix + "-img:1")["Config"]["Cmd"]
    volume = inspect("volume", prefix + "-vol")
    assert "secrets" not in str(volume["Labels"]) and volume["Options"] in (None, {})

    # the typos fixed: no warning (buildout reinstalls the changed parts)
    buildout.configure(parts % {"p": prefix, "build": "build-args = X=fixed",
                                "vol": "", "run": "command = sleep 1000"})
    result = buildout.ok()
    assert WARNING not in result.output, result.output
    assert docker("run", "--rm", prefix + "-img:1", "cat", "/x").strip() == "fixed"
    assert inspect("container", prefix + "-app")["Config"]["Cmd"] == ["sleep", "1000"]


def test_the_repository_buildout_gives_no_warning_in_a_real_run(buildout, prefix):
    """The demo, run for real (its network, volume and image renamed for this test)."""
    with open(os.path.join(doc_examples.ROOT, "buildout.cfg")) as handle:
        text = handle.read()
    from support.engine import free_subnet
    net = free_subnet()
    text = (text.replace("dockeroo-demo", prefix + "-demo")
            .replace("172.31.254.0/24", str(net))
            .replace("172.31.254.1", str(next(net.hosts())))
            .replace("source = demo", "source = " + os.path.join(doc_examples.ROOT, "demo")))
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write(text)
    result = buildout.ok()
    assert WARNING not in result.output, result.output
    assert inspect("network", prefix + "-demo") is not None
