"""Private scratch directories owned by one process, and their removal once
that process is gone.

A directory that may hold a secret (a throw-away ``DOCKER_CONFIG`` after
``docker login``) lives in the user's private folder ``$TMPDIR/dockeroo-KIND-UID``
(mode 0700) under a name that says which process made it
(``PID-STARTTIME-random``).  A process killed before it could remove its
directory (SIGKILL, reboot, OOM) leaves it behind; :func:`sweep` removes
every directory whose process no longer runs, and runs at the start of each
dockeroo run and before each new directory is made.
"""

import os
import shutil
import tempfile
from contextlib import suppress


class NotPrivate(Exception):
    """The user's private folder exists but is not private (mode, owner, link)."""


def start_time(pid):
    """PID's start time (clock ticks since boot), or None when it does not run."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def private_folder(kind, parent=None):
    """``$TMPDIR/dockeroo-KIND-UID`` (or in PARENT), made with mode 0700 if
    missing; raises NotPrivate when it is not a directory of this user that
    only they can read."""
    path = os.path.join(parent or tempfile.gettempdir(), "dockeroo-%s-%d" % (kind, os.getuid()))
    with suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != os.getuid() \
            or st.st_mode & 0o077:
        raise NotPrivate("%s is not a private directory of this user (mode 0700)" % path)
    return path


def owned_directory(kind):
    """A new directory of this process in the private folder of KIND (the
    directories of processes that ended are swept first)."""
    sweep(kind)
    pid = os.getpid()
    return tempfile.mkdtemp(prefix="%d-%s-" % (pid, start_time(pid)), dir=private_folder(kind))


def sweep(kind):
    """Remove the directories of KIND whose process no longer runs (never raises)."""
    folder = os.path.join(tempfile.gettempdir(), "dockeroo-%s-%d" % (kind, os.getuid()))
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        pid, _, rest = name.partition("-")
        started, _, _ = rest.partition("-")
        if not pid.isdigit():
            continue
        now = start_time(int(pid))
        if now is not None and str(now) == started:
            continue  # its process still runs
        shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
