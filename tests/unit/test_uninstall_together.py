"""recipe.uninstalled_together: which parts one uninstall may remove together."""

import functools

import pytest

from dockeroo.model import buildout as recipe

INSTALLED = """[buildout]
parts = z egg b c d other foreign a

[z]
recipe = dockeroo:docker.run
name = z-name
dockeroo-owner = OWNER

[egg]
recipe = zc.recipe.egg
eggs = dockeroo

[a]
__buildout_installed__ =
recipe = dockeroo:docker.run
name = a-name
dockeroo-owner = OWNER

[b]
recipe = dockeroo:docker.run
name = b-name
dockeroo-owner = OWNER

[c]
recipe = dockeroo:docker.run
name = c-name
keep = true
dockeroo-owner = OWNER

[d]
recipe = dockeroo:docker.run
name = d-name
dockeroo-owner = OWNER

[other]
recipe = dockeroo:docker.volume
name = v
dockeroo-owner = OWNER

[foreign]
recipe = dockeroo:docker.run
name = f
dockeroo-owner = SOMEONE-ELSE
"""


@pytest.mark.parametrize("text, entry", [
    ("dockeroo:docker.run", "docker.run"),
    ("dockeroo==1.0:docker.volume", "docker.volume"),
    (" dockeroo[x] : docker.network", "docker.network"),
    ("zc.recipe.egg", None),
    ("zc.recipe.egg:scripts", None),
    ("dockeroo-other:docker.run", None),
    ("dockeroo", None),
    (None, None),
])
def test_dockeroo_entry(text, entry):
    assert recipe.dockeroo_entry(text) == entry


@pytest.mark.parametrize("argv, plain", [
    (["bin/buildout"], True),
    (["bin/buildout", "-N"], True),
    (["bin/buildout", "-Nv", "-c", "x.cfg", "buildout:offline=true"], True),
    (["bin/buildout", "-cx.cfg", "-t", "5", "install"], True),
    (["bin/buildout", "install", "a"], False),
    (["bin/buildout", "-N", "install", "a", "b"], False),
    (["bin/buildout", "annotate"], False),
    (["bin/buildout", "--weird"], False),
    (["python", "-m", "pytest"], False),
])
def test_plain_install(argv, plain):
    assert recipe.plain_install(argv) is plain


def test_uninstalled_together(tmp_path, monkeypatch):
    (tmp_path / ".installed.cfg").write_text(INSTALLED)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["bin/buildout", "-N"])
    # d is constructed in this run (the run's registry of configured parts)
    uninstalled = functools.partial(recipe.uninstalled_together, configured={("OWNER", "d")})
    options = {"recipe": "dockeroo:docker.run", "name": "a-name", "dockeroo-owner": "OWNER"}
    # buildout uninstalls the last installed part first (a), then the ones
    # before it: b only (c is kept, d is configured in this run, other and
    # foreign differ), and nothing before egg (another recipe's part)
    assert [p for p, _ in uninstalled("a", options)] == ["b"]
    together = uninstalled("a", options, entries={"docker.volume", "docker.run"})
    assert [p for p, _ in together] == ["other", "b"]
    # a part no longer in the record: nothing
    assert uninstalled("z", dict(options, name="z-name")) == []
    # options that do not match the record: nothing
    assert uninstalled("a", dict(options, name="x")) == []
    monkeypatch.setattr("sys.argv", ["bin/buildout", "install", "a"])
    assert uninstalled("a", options) == []
    monkeypatch.setattr("sys.argv", ["bin/buildout"])
    (tmp_path / ".installed.cfg").unlink()
    assert uninstalled("a", options) == []
