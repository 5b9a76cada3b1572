"""dockeroo.recipes.common.portage and the gentoo recipes' option parsing (no engine)."""

import io

import pytest
from zc.buildout import UserError

from dockeroo.recipes.common import portage
from dockeroo.model.options import Options
from dockeroo.recipes.gentoo_diskimage import write_sparse


def opts(**values):
    return Options("img", {k.replace("_", "-"): v for k, v in values.items()})


@pytest.mark.parametrize("atom", [
    "app-misc/foo", "=app-misc/foo-1.2", ">=dev-lang/python-3.11:3.11", "~sys-apps/a-1",
    "sys-libs/ncurses:0/5", "app-misc/foo::toy", "app-misc/foo[extra,-doc]", "<x11-libs/gtk+-3",
    "=app-misc/foo-1.2*", "*/*", "!!app-misc/blocker"])
def test_atoms_accepted(atom):
    assert portage.read_atoms(opts(packages=atom), "packages") == [atom]


@pytest.mark.parametrize("word", ["foo", "app-misc/", "/foo", "app-misc/foo;rm", "$(x)/y",
                                  "app-misc/foo bar/baz'"])
def test_bad_atoms(word):
    with pytest.raises(UserError) as err:
        portage.read_atoms(opts(packages=word), "packages")
    assert "Part [img], option 'packages'" in str(err.value)


def test_atoms_several_per_line_and_sets():
    assert portage.read_atoms(opts(packages="a/b c/d\n@world\n# comment"), "packages") == [
        "a/b", "c/d", "@world"]
    with pytest.raises(UserError):
        portage.read_atoms(opts(packages="@world"), "packages", sets=False)


def test_package_entries():
    assert portage.read_entries(opts(use="app-misc/foo extra -doc\n*/* PYTHON_TARGETS: python3_11"),
                                "use") == ["app-misc/foo extra -doc",
                                           "*/* PYTHON_TARGETS: python3_11"]
    assert portage.read_entries(opts(accept_keywords="a/b ~amd64\nc/d **\ne/f"),
                                "accept-keywords") == ["a/b ~amd64", "c/d **", "e/f"]
    assert portage.read_entries(opts(mask="=a/b-1.1"), "mask") == ["=a/b-1.1"]
    for option, value in [("use", "a/b"), ("use", "a/b $(x)"), ("mask", "a/b extra"),
                          ("unmask", "notanatom"), ("accept-keywords", "a/b ~am;d")]:
        with pytest.raises(UserError) as err:
            portage.read_entries(opts(**{option.replace("-", "_"): value}), option)
        assert "option %r" % option in str(err.value)


def test_emerge_argv():
    assert portage.emerge_argv(["a/b"], usepkg=True, buildpkg=True) == [
        "emerge", "--color=n", "--verbose", "--binpkg-respect-use=y", "--oneshot", "--buildpkg",
        "--usepkg", "a/b"]
    argv = portage.emerge_argv(["=a/b-1"], usepkgonly=True, root="/dockeroo-root",
                               rdeps_only=True)
    assert argv[:2] == ["env", "ROOT=/dockeroo-root"]
    assert "--usepkgonly" in argv and "--root-deps=rdeps" in argv and argv[-1] == "=a/b-1"


def test_chroot_argv_quotes_every_word():
    argv = portage.chroot_argv("chroot-x86_64-docker", ["emerge", "a/b[x y]", "$(boom)"])
    assert argv == ["chroot-x86_64-docker", "-c", "emerge 'a/b[x y]' '$(boom)'"]
    argv = portage.chroot_argv("c", script='echo "$1"', args=["a b"])
    assert argv == ["c", "-c", 'echo "$1"', "dockeroo", "a b"]


def test_write_sparse(tmp_path):
    data = b"\0" * (3 << 20) + b"x" * 100 + b"\0" * (2 << 20)
    path = tmp_path / "disk.img"
    assert write_sparse(io.BytesIO(data), str(path)) == len(data)
    assert path.read_bytes() == data
    assert path.stat().st_blocks * 512 < len(data)
