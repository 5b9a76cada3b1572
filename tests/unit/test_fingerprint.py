"""dockeroo.base.fingerprint: content fingerprints and .dockerignore rules (no engine)."""

import json
import os
import shutil
import subprocess

import pytest

from dockeroo.base import fingerprint
from dockeroo.base.fingerprint import IgnoreRules, folder_fingerprint, hash_values, walk


def make_tree(root):
    files = {
        "Dockerfile": "FROM scratch\nCOPY . /\n",
        "app/main.py": "print('hello')\n",
        "app/lib/util.py": "X = 1\n",
        "data/blob.bin": "\0\1\2" * 1000,
        "README.md": "# readme\n",
    }
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
    os.chmod(os.path.join(root, "app/main.py"), 0o755)
    os.symlink("main.py", os.path.join(root, "app/link"))
    os.makedirs(os.path.join(root, "empty"))
    return root


@pytest.fixture
def tree(tmp_path):
    return make_tree(str(tmp_path / "ctx"))


def test_hash_values_stable_and_sensitive():
    assert hash_values("a", {"x": 1, "y": [1, 2]}) == hash_values("a", {"y": [1, 2], "x": 1})
    assert hash_values("a", 1) != hash_values("a", "1")
    assert len(hash_values()) == 32


def test_touch_and_copies_with_new_mtimes_keep_the_fingerprint(tree, tmp_path):
    before = folder_fingerprint(tree)
    for rel, full, st in walk(tree):
        os.utime(full, (1, 1), follow_symlinks=False)
    assert folder_fingerprint(tree) == before
    copy = str(tmp_path / "copy")
    shutil.copytree(tree, copy, symlinks=True, copy_function=shutil.copy)  # new mtimes
    assert folder_fingerprint(copy) == before


def test_git_clone_keeps_the_fingerprint(tree, tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")
    shutil.rmtree(os.path.join(tree, "empty"))  # git does not keep empty folders
    before = folder_fingerprint(tree)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *args], cwd=tree, check=True, env=env)
    clone = str(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", tree, clone], check=True)
    shutil.rmtree(os.path.join(clone, ".git"))
    shutil.rmtree(os.path.join(tree, ".git"))
    assert folder_fingerprint(clone) == before


@pytest.mark.parametrize("change", ["byte", "mode", "rename", "new-file", "new-dir", "symlink",
                                    "remove"])
def test_content_changes_change_the_fingerprint(tree, change):
    before = folder_fingerprint(tree)
    if change == "byte":
        with open(os.path.join(tree, "data/blob.bin"), "r+b") as handle:
            handle.seek(1500)
            handle.write(b"X")
    elif change == "mode":
        os.chmod(os.path.join(tree, "app/lib/util.py"), 0o640)
    elif change == "rename":
        os.rename(os.path.join(tree, "README.md"), os.path.join(tree, "README.rst"))
    elif change == "new-file":
        open(os.path.join(tree, "empty/new"), "w").close()
    elif change == "new-dir":
        os.mkdir(os.path.join(tree, "app/new"))
    elif change == "symlink":
        os.unlink(os.path.join(tree, "app/link"))
        os.symlink("lib/util.py", os.path.join(tree, "app/link"))
    elif change == "remove":
        os.unlink(os.path.join(tree, "app/lib/util.py"))
    assert folder_fingerprint(tree) != before


def test_owners_only_count_when_asked(tree):
    path = os.path.join(tree, "README.md")
    plain, owned = folder_fingerprint(tree), folder_fingerprint(tree, owners=True)
    os.chown(path, 1234, 1234)
    assert folder_fingerprint(tree) == plain
    assert folder_fingerprint(tree, owners=True) != owned


# -- .dockerignore ------------------------------------------------------------------
def excluded(patterns, path):
    return IgnoreRules(patterns).excluded(path)


@pytest.mark.parametrize("patterns, path, result", [
    (["*.md"], "README.md", True),
    (["*.md"], "docs/README.md", False),          # * does not cross /
    (["**/*.md"], "docs/deep/README.md", True),
    (["**/*.md"], "README.md", True),              # **/ matches zero folders too
    (["docs/**/*.png"], "docs/a/b/x.png", True),
    (["docs/**/*.png"], "docs/x.png", True),
    (["**"], "anything/at/all", True),
    (["build"], "build/out/x.o", True),            # a folder pattern covers its content
    (["build/"], "build/x.o", True),               # trailing / is cleaned like Docker does
    (["/build"], "build/x.o", True),               # so is a leading one
    (["build"], "src/build", False),
    (["temp?"], "temp1", True),
    (["temp?"], "temp12", False),
    (["[ab].txt"], "a.txt", True),
    (["[^ab].txt"], "a.txt", False),
    (["[^ab].txt"], "c.txt", True),
    (["[!ab].txt"], "a.txt", True),               # as in Go: "!" is no negation
    (["[!ab].txt"], "!.txt", True),
    (["[!ab].txt"], "c.txt", False),
    (["*.md", "!README.md"], "README.md", False),  # exception
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["!README.md", "*.md"], "README.md", True),   # the last matching rule wins
    (["docs", "!docs/keep.md"], "docs/keep.md", False),
    (["docs", "!docs/keep.md"], "docs/other.md", True),
    (["# comment", "", "  *.log  "], "x.log", True),
    (["./secret"], "secret", True),
])
def test_ignore_patterns(patterns, path, result):
    assert excluded(patterns, path) is result


def test_walk_respects_dockerignore(tree):
    with open(os.path.join(tree, ".dockerignore"), "w") as handle:
        handle.write("# build context rules\ndata\n**/*.py\n!app/lib/util.py\n*.md\n")
    names = sorted(rel for rel, _, _ in walk(tree, IgnoreRules.from_dir(tree)))
    assert names == [".dockerignore", "Dockerfile", "app", "app/lib", "app/lib/util.py",
                     "app/link", "empty"]
    assert "data/blob.bin" not in names


def test_ignored_files_do_not_change_the_fingerprint(tree):
    with open(os.path.join(tree, ".dockerignore"), "w") as handle:
        handle.write("data/\n*.md\n")
    rules = IgnoreRules.from_dir(tree)
    before = folder_fingerprint(tree, rules)
    with open(os.path.join(tree, "data/blob.bin"), "a") as handle:
        handle.write("more")
    with open(os.path.join(tree, "README.md"), "a") as handle:
        handle.write("more")
    assert folder_fingerprint(tree, rules) == before
    with open(os.path.join(tree, "app/main.py"), "a") as handle:
        handle.write("# more")
    assert folder_fingerprint(tree, rules) != before


def test_always_includes_an_ignored_dockerfile(tree):
    rules = IgnoreRules(["Dockerfile"])
    before = folder_fingerprint(tree, rules, always=("Dockerfile",))
    with open(os.path.join(tree, "Dockerfile"), "a") as handle:
        handle.write("LABEL x=1\n")
    assert folder_fingerprint(tree, rules) == folder_fingerprint(tree, rules)
    assert folder_fingerprint(tree, rules, always=("Dockerfile",)) != before


def test_no_dockerignore():
    assert IgnoreRules.from_dir("/nonexistent-folder").rules == []
    assert IgnoreRules().excluded("anything") is False


# -- the digest cache -----------------------------------------------------------------
@pytest.fixture
def no_racy_window(monkeypatch):
    """Trust freshly written files (the tests' files are all fresh)."""
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", -1.0)


def cache_file(cache_dir):
    names = os.listdir(cache_dir)
    assert len(names) == 1, names
    return os.path.join(cache_dir, names[0])


def test_cache_is_used_when_nothing_changed(tree, tmp_path, no_racy_window):
    cache = str(tmp_path / "cache")
    first = folder_fingerprint(tree, cache_dir=cache)
    assert folder_fingerprint(tree, cache_dir=cache) == first
    # prove the second run read the cache: tamper with one stored digest
    path = cache_file(cache)
    data = json.load(open(path))
    data["entries"]["README.md"][4] = "0" * 64
    json.dump(data, open(path, "w"))
    assert folder_fingerprint(tree, cache_dir=cache) != first
    assert folder_fingerprint(tree) == first  # without the cache: the true value


def test_cache_sees_content_change_with_preserved_mtime(tree, tmp_path, no_racy_window):
    cache = str(tmp_path / "cache")
    path = os.path.join(tree, "app/main.py")
    first = folder_fingerprint(tree, cache_dir=cache)
    st = os.stat(path)
    with open(path, "r+") as handle:  # same size, same inode
        handle.write("PRINT")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == st.st_mtime_ns and os.stat(path).st_size == st.st_size
    changed = folder_fingerprint(tree, cache_dir=cache)
    assert changed != first
    assert changed == folder_fingerprint(tree)


def test_cache_sees_a_replaced_file_with_copied_metadata(tree, tmp_path, no_racy_window):
    cache = str(tmp_path / "cache")
    path = os.path.join(tree, "README.md")
    first = folder_fingerprint(tree, cache_dir=cache)
    other = str(tmp_path / "other")
    with open(other, "w") as handle:
        handle.write("# README\n")  # same size
    shutil.copystat(path, other)
    os.replace(other, path)
    assert folder_fingerprint(tree, cache_dir=cache) == folder_fingerprint(tree) != first


def test_cache_drops_entries_of_removed_files(tree, tmp_path, no_racy_window):
    cache = str(tmp_path / "cache")
    folder_fingerprint(tree, cache_dir=cache)
    assert "README.md" in json.load(open(cache_file(cache)))["entries"]
    os.unlink(os.path.join(tree, "README.md"))
    folder_fingerprint(tree, cache_dir=cache)
    assert "README.md" not in json.load(open(cache_file(cache)))["entries"]


def test_recently_changed_files_are_not_cached(tree, tmp_path):
    # with coarse timestamps a second write in the same tick keeps the key
    cache = str(tmp_path / "cache")
    folder_fingerprint(tree, cache_dir=cache)
    entries = json.load(open(cache_file(cache)))["entries"] if os.path.isdir(cache) else {}
    assert entries == {}, "files written just now must be hashed again next time"


def test_broken_cache_file_is_ignored(tree, tmp_path, no_racy_window):
    cache = tmp_path / "cache"
    first = folder_fingerprint(tree, cache_dir=str(cache))
    with open(cache_file(str(cache)), "w") as handle:
        handle.write("{not json")
    assert folder_fingerprint(tree, cache_dir=str(cache)) == first
