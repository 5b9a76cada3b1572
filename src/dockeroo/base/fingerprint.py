"""Content fingerprints of folders (build contexts, layouts) and values.

A fingerprint depends on names, file types, permission bits, symlink
targets and file contents only: a ``touch``, a fresh ``git clone`` or a
copy with new mtimes gives the same fingerprint; one changed byte does not.

Hashing every byte on every buildout run would be slow for large trees, so
file digests are cached per file keyed by (size, mtime_ns, ctime_ns, inode).
The ctime is set by the kernel on every content write and cannot be set
back by tools such as ``touch -d`` or ``cp -p``, so a content change with a
preserved mtime still invalidates the entry.  Files changed in the last
``RACY_SECONDS`` are not cached, so that a second write within the same
timestamp tick cannot hide behind an unchanged key.
"""

import hashlib
import json
import os
import re
import stat
import time
from contextlib import suppress

from dockeroo.base import mode as _mode
from dockeroo.base.state import atomic_json

CACHE_VERSION = 1
#: files changed more recently than this are hashed again on the next run
RACY_SECONDS = 2.0


def hash_values(*values):
    """A short stable hash of JSON-able values."""
    data = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:32]


# -- .dockerignore ------------------------------------------------------------
def _pattern_regex(pattern):
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if pattern[i:i + 2] == "**":
                # as Docker's patternmatcher: "**/" is "**"; at the end it matches
                # everything, elsewhere any number of whole directories (even none)
                i += 2
                if pattern[i:i + 1] == "/":
                    i += 1
                out.append(".*" if i >= len(pattern) else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i)
            if j < 0:
                out.append(re.escape(c))
            else:
                # Go's filepath.Match: only "^" negates a class ("!" is literal)
                body = pattern[i + 1:j]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class IgnoreRules:
    """``.dockerignore`` patterns, matched as the Docker builder does."""

    def __init__(self, lines=()):
        self.rules = []
        for number, line in enumerate(lines):
            if number == 0:
                line = line[1:] if line.startswith("\ufeff") else line  # a UTF-8 byte order mark
            # a comment starts in the first column: " # x" is the pattern "# x"
            if line.startswith("#"):
                continue
            line = line.strip()
            if not line:
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:].strip()
            line = os.path.normpath(line).lstrip("/")
            if line in (".", ""):
                continue
            self.rules.append((negate, _pattern_regex(line)))
        self.has_exceptions = any(neg for neg, _ in self.rules)

    @classmethod
    def from_dir(cls, root):
        return cls.from_file(os.path.join(root, ".dockerignore"))

    @classmethod
    def from_file(cls, path):
        """The rules of ignore file PATH (none when it does not exist)."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                return cls(handle.read().split("\n"))
        except FileNotFoundError:
            return cls()

    def excluded(self, relpath):
        if not self.rules:
            return False
        parents = []
        parts = relpath.split("/")
        for n in range(1, len(parts) + 1):
            parents.append("/".join(parts[:n]))
        result = False
        for negate, regex in self.rules:
            if any(regex.match(p) for p in parents):
                result = not negate
        return result


# -- folder fingerprints ---------------------------------------------------------
class DigestCache:
    """Per-file content digests, persisted as one JSON file per folder.

    Besides the trusted entries (keyed by the file's metadata), the file
    keeps the digests of the files changed too recently to be trusted
    (``racy``): together they are the content of the previous run, so that
    :meth:`changes` can name the files that changed since.
    """

    def __init__(self, root, cache_dir=None):
        self.root = root
        self.path = None
        self.entries = {}
        self.racy = {}
        self.dirty = False
        if cache_dir:
            key = hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:24]
            self.path = os.path.join(cache_dir, "fp-%s.json" % key)
            try:
                with open(self.path) as handle:
                    data = json.load(handle)
                if data.get("version") == CACHE_VERSION:
                    self.entries = data["entries"]
                    self.racy = dict(data.get("racy") or {})
            except (OSError, ValueError, KeyError, AttributeError, TypeError):
                self.entries, self.racy = {}, {}
        #: the digest of every file of the previous run (None: no record of it)
        self.previous = ({rel: e[4] for rel, e in self.entries.items()} if self.path else None)
        if self.previous is not None:
            self.previous.update(self.racy)
        self.digests = {}
        self.seen = set()
        # entries changed less than RACY_SECONDS ago are not cached: with
        # coarse file timestamps a second write in the same tick would keep
        # the same (size, mtime, ctime) key ("racy git" problem)
        self.trust_before_ns = time.time_ns() - int(RACY_SECONDS * 1e9)

    def digest(self, relpath, fullpath, st):
        key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        self.seen.add(relpath)
        entry = self.entries.get(relpath)
        if entry and entry[:4] == key:
            self.digests[relpath] = entry[4]
            return entry[4]
        h = hashlib.sha256()
        with open(fullpath, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
        value = self.digests[relpath] = h.hexdigest()
        if st.st_ctime_ns < self.trust_before_ns:
            self.entries[relpath] = key + [value]
            self.dirty = True
            self.racy.pop(relpath, None)
        else:
            if self.entries.pop(relpath, None) is not None:
                self.dirty = True
            if self.racy.get(relpath) != value:
                self.racy[relpath] = value
                self.dirty = True
        return value

    def changes(self):
        """[(relpath, "changed" | "added" | "removed")] against the previous
        run's digests, in path order; None when there is no record of it."""
        if not self.previous:
            return None
        before, now = self.previous, self.digests
        found = [(rel, "changed") for rel in now if rel in before and before[rel] != now[rel]]
        found += [(rel, "added") for rel in now if rel not in before]
        found += [(rel, "removed") for rel in before if rel not in now]
        return sorted(found)

    def save(self):
        if not self.path or _mode.PLANNING:  # dockeroo plan writes no file
            return
        if set(self.entries) - self.seen or set(self.racy) - self.seen:
            self.entries = {k: v for k, v in self.entries.items() if k in self.seen}
            self.racy = {k: v for k, v in self.racy.items() if k in self.seen}
            self.dirty = True
        if not self.dirty:
            return
        data = {"version": CACHE_VERSION, "entries": self.entries}
        if self.racy:
            data["racy"] = self.racy
        with suppress(OSError):
            atomic_json(self.path, data, separators=(",", ":"))


def walk(root, ignore=None):
    """Yield (relpath, fullpath, lstat) for every entry below ROOT, sorted.

    Entries excluded by IGNORE (an :class:`IgnoreRules`) are skipped; an
    excluded folder is not entered unless an exception pattern exists.
    """
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        full_dir = os.path.join(root, rel_dir) if rel_dir else root
        with os.scandir(full_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            rel = rel_dir + "/" + entry.name if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            excluded = ignore is not None and ignore.excluded(rel)
            if stat.S_ISDIR(st.st_mode):
                if excluded and not ignore.has_exceptions:
                    continue
                if not excluded:
                    yield rel, entry.path, st
                subdirs.append(rel)
            elif not excluded:
                yield rel, entry.path, st
        stack.extend(reversed(subdirs))


def folder_fingerprint(root, ignore=None, owners=False, cache_dir=None, always=(),
                       changes=False):
    """Fingerprint of a folder's content.

    ``owners``: include uid/gid (for layouts copied with their owners).
    ``always``: relative paths included even when ignored (the Dockerfile).
    ``changes``: return (fingerprint, :meth:`DigestCache.changes`), the
    files whose content differs from the previous run's (read before the
    cache is saved).
    """
    cache = DigestCache(root, cache_dir)
    h = hashlib.sha256()
    for rel, full, st in walk(root, ignore):
        h.update(_entry_line(rel, full, st, owners, cache))
    for rel in always:
        full = os.path.join(root, rel)
        if ignore is not None and ignore.excluded(rel) and os.path.lexists(full):
            h.update(_entry_line(rel, full, os.lstat(full), owners, cache))
    found = cache.changes() if changes else None
    cache.save()
    return (h.hexdigest()[:32], found) if changes else h.hexdigest()[:32]


def _entry_line(rel, full, st, owners, cache):
    mode = st.st_mode
    perm = stat.S_IMODE(mode)
    if stat.S_ISREG(mode):
        what = "f %s" % cache.digest(rel, full, st)
    elif stat.S_ISDIR(mode):
        what = "d"
    elif stat.S_ISLNK(mode):
        what = "l %s" % os.readlink(full)
        perm = 0
    else:
        what = "o %o" % stat.S_IFMT(mode)
    own = " %d:%d" % (st.st_uid, st.st_gid) if owners else ""
    return ("%s\0%o%s %s\n" % (rel, perm, own, what)).encode("utf-8", "surrogateescape")


def file_fingerprint(path):
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]
