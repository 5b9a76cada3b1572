"""What ``dockeroo plan`` may do, written down here independently of
dockeroo's own classification (``dockeroo.engine.commands.plan_safe``), so
that a test of the plan's side effects does not take production code as its
oracle: the docker commands it may run (an explicit allow-list of read-only
commands), and a snapshot of a directory tree to compare before and after.
"""

import hashlib
import os
import stat

from support.engine import objects_with_prefix
from support.plan_exact import plan_of

#: docker commands (first word) that only read
READ_ONLY_COMMANDS = frozenset({"inspect", "ps", "info", "version", "--version", "images",
                                "history"})
#: docker management commands and the verbs of theirs that only read
READ_ONLY_VERBS = {
    "container": {"inspect", "ls", "list", "ps"},
    "image": {"inspect", "ls", "list", "history"},
    "network": {"inspect", "ls", "list"},
    "volume": {"inspect", "ls", "list"},
    "system": {"info", "df"},
    "context": {"show", "inspect", "ls", "list"},
    "builder": {"inspect", "ls", "list", "version"},
    "buildx": {"inspect", "ls", "list", "version"},
    "service": {"inspect", "ls", "list", "ps"},
    "secret": {"inspect", "ls", "list"},
    "config": {"inspect", "ls", "list"},
    "node": {"inspect", "ls", "list", "ps"},
}
#: the docker CLI's global options that take a value (``--host H``); others are flags
GLOBAL_WITH_VALUE = frozenset({"-H", "--host", "-c", "--context", "--config", "-l",
                               "--log-level", "--tlscacert", "--tlscert", "--tlskey"})


def command_words(argv):
    """ARGV (without the program) less the docker CLI's global options."""
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--version":
        i += 2 if argv[i] in GLOBAL_WITH_VALUE else 1
    return argv[i:]


def read_only(argv):
    """Whether docker ARGV is on the allow-list of read-only commands."""
    words = command_words(argv)
    if not words:
        return True
    if words[0] in READ_ONLY_COMMANDS:
        return True
    return len(words) > 1 and words[1] in READ_ONLY_VERBS.get(words[0], ())


def snapshot(root):
    """Every path under ROOT (ROOT included): type, size, mtime_ns, sha256."""
    found = {}
    for here, dirs, files in os.walk(root):
        for name in [""] + dirs + files:
            path = os.path.join(here, name) if name else here
            if name == "" and here != root:
                continue
            st = os.lstat(path)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            found[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), st.st_size,
                                                  st.st_mtime_ns, digest)
    return found


def assert_plan_is_side_effect_free(buildout, recorder, prefix, *args):
    """Run ``dockeroo plan`` (JSON, then text) in BUILDOUT with the docker
    RECORDER first on PATH: every docker command it ran is on the allow-list,
    no path of the buildout changed, no object named with PREFIX appeared or
    went away. Returns the JSON plan's result."""
    before = snapshot(buildout.directory)
    objects = sorted(objects_with_prefix(prefix))
    recorder.clear()
    result = plan_of(buildout, *args, env=recorder.env)
    assert result.code in (0, 2), result.output + result.stderr
    calls = recorder.commands()
    assert calls, "the plan asked the engine nothing"
    unsafe = [argv for argv in calls if not read_only(argv)]
    assert not unsafe, "dockeroo plan ran commands that are not read-only: %s" % unsafe
    after = snapshot(buildout.directory)
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, "dockeroo plan changed the buildout: %s" % changed
    assert sorted(objects_with_prefix(prefix)) == objects
    # the text output too
    recorder.clear()
    text = plan_of(buildout, *args, env=recorder.env, json_output=False)
    assert text.code == result.code, text.output + text.stderr
    unsafe = [argv for argv in recorder.commands() if not read_only(argv)]
    assert not unsafe, "dockeroo plan (text) ran commands that are not read-only: %s" % unsafe
    assert snapshot(buildout.directory) == before
    assert sorted(objects_with_prefix(prefix)) == objects
    return result
