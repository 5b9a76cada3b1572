"""dockeroo.model.buildout: every use of zc.buildout's internals, on the
zc.buildout this runs with.  ``tox -e bo3`` ... ``tox -e bo6`` run this file
on the newest release of each supported major version (``.ci/buildouts``
in CI); each test checks what that version provides."""

import os
import sys

import pytest
from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.model import buildout as mb
from dockeroo.runtime.recipe import Recipe

MAJOR = mb.buildout_major()


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


@pytest.fixture
def planning(monkeypatch):
    monkeypatch.setattr(mode, "PLANNING", True)


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A buildout directory with a buildout.cfg of two volume parts (the
    second refers to the first) and a section no part uses."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(tmp_path / "buildout.cfg", """\
[buildout]
parts = second
newest = false

[first]
recipe = dockeroo:docker.volume
name = dkinternals-first

[second]
recipe = dockeroo:docker.volume
name = dkinternals-second
labels = from=${first:name}

[unused]
value = $${not-substituted}
""")
    return str(tmp_path / "buildout.cfg")


def test_the_installed_buildout_is_supported():
    assert MAJOR in mb.SUPPORTED, mb.buildout_version()
    mb.check_supported()


@pytest.mark.parametrize("version", ["2.13.8", "2.0", "1.7.1"])
def test_older_than_3_is_refused_naming_both_versions(version):
    with pytest.raises(UserError) as err:
        mb.check_supported(version)
    text = str(err.value)
    assert "zc.buildout %s" % version in text
    assert "needs zc.buildout 3 or later" in text and "nothing was changed" in text


@pytest.mark.parametrize("version", ["3.0.1", "4.2.0", "5.2.0", "6.0.1", "7.0"])
def test_3_and_later_pass(version):
    mb.check_supported(version)


def test_what_buildout_install_decides(config, planning):
    b = mb.load_buildout(config, [])
    assert not os.path.exists(os.path.join(os.path.dirname(config), "eggs"))  # nothing created
    installed, parts, changed = mb.select_parts(b)
    assert installed["buildout"]["parts"] == "" and changed == {}
    # the parts in the order buildout installs them: the referenced one first
    assert parts == ["first", "second"] == mb.constructed_parts(b)
    assert all(isinstance(mb.part_recipe(b, p), Recipe) for p in parts)
    raw = mb.raw_sections(b)
    assert raw["second"]["labels"] == "from=${first:name}"  # as written
    assert raw["unused"]["value"] == "$${not-substituted}"
    done = mb.initialized_sections(b)
    assert set(parts) <= set(done) and "unused" not in done
    assert done["second"]["labels"] == "from=dkinternals-first"
    assert mb.referenced_options(b, "first") == {"name"}


def test_develop_eggs_become_importable(config, planning):
    b = mb.load_buildout(config, [])
    eggs = b["buildout"]["develop-eggs-directory"]
    os.makedirs(eggs)
    write(os.path.join(eggs, "extra.pth"), os.path.join(eggs, "from-pth") + "\n")
    os.makedirs(os.path.join(eggs, "from-pth"))
    mb.update_sys_path(b)
    assert eggs in sys.path
    if MAJOR >= 6:  # 6 reads the .pth files there too, as its install does
        assert hasattr(b, "_update_sys_path")
        assert os.path.join(eggs, "from-pth") in sys.path
    else:  # 3-5: only the directory, first, as their install does
        assert not hasattr(b, "_update_sys_path")
        assert sys.path[0] == eggs


def test_the_record_round_trips(tmp_path):
    path = str(tmp_path / ".installed.cfg")
    with open(path, "w") as handle:
        mb.write_record_section(handle, "buildout", {"parts": "vol"})
        handle.write("\n")
        mb.write_record_section(handle, "vol", {"recipe": "dockeroo:docker.volume",
                                                "script": "echo $HOME\nline two",
                                                "__buildout_installed__": ""})
    record = mb.read_record(path)
    assert record["buildout"]["parts"] == "vol"
    # values as given (buildout's own record holds $ escaped as $$: its caller
    # escapes), continuation lines indented with a tab
    assert record["vol"]["script"] == "echo $HOME\nline two"
    assert "\n\tline two\n" in open(path).read()


def test_a_missing_record_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        mb.read_record(str(tmp_path / "missing.cfg"))


def test_the_record_written_is_what_buildout_itself_reads(tmp_path, config, planning):
    os.makedirs(tmp_path / "parts", exist_ok=True)
    with open(tmp_path / ".installed.cfg", "w") as handle:
        mb.write_record_section(handle, "buildout", {"parts": "second"})
        handle.write("\n")
        mb.write_record_section(handle, "second", {"recipe": "dockeroo:docker.volume",
                                                   "__buildout_installed__": ""})
    b = mb.load_buildout(config, [])
    installed, _parts, changed = mb.select_parts(b)
    assert installed["buildout"]["parts"] == "second"
    assert set(changed) == {"second"}  # its options differ from the configuration
