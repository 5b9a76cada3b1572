"""dockeroo:docker.copy: paths streamed from one container to another.

Data goes ``docker cp SRC:path -`` → ``docker cp - DST:dir`` with no
temporary files (see :func:`dockeroo.container.copy_paths`), so the
destination needs no shell or tar (``FROM scratch`` works).

A state file under ``parts/<part>/`` remembers the ids of both containers
and the paths: a re-run copies again only when one of the containers was
recreated (new id) or the paths changed.
"""

import json
import os
import posixpath
import shlex

from .. import container as ct
from ..engine import DockerError
from ..fingerprint import hash_values
from ..recipe import Recipe as Base

STATE_FILE = "copy-state.json"
#: the part option holding the state file's path (read by the uninstall)
STATE_OPTION = "dockeroo-state"


class Recipe(Base):
    recipe = "docker.copy"
    has_name = False

    def __init__(self, buildout, name, options):
        super().__init__(buildout, name, options)
        self.engine.want("container", self.source)
        self.engine.want("container", self.target)

    def setup(self):
        opts = self.opts
        self.source = opts.object_name("container-from")
        self.target = opts.object_name("container-to")
        if self.source == self.target:
            raise opts.error("container-to", "is the same container as container-from",
                             self.target)
        self.pairs = []
        for line in opts.lines("paths"):
            self.pairs.append(parse_path_line(opts, line))
        if not self.pairs:
            raise opts.error("paths", "is required: one path per line (/file, /folder/, or "
                             "SOURCE DESTINATION)")
        self.state_dir = os.path.join(self.parts_directory, self.part)
        self.state_path = os.path.join(self.state_dir, STATE_FILE)
        self.options[STATE_OPTION] = self.state_path

    def container_id(self, option, name):
        obj = self.engine.inspect("container", name)
        if obj is None:
            raise self.opts.error(option, "container %s does not exist" % name, name)
        return obj["Id"]

    def ensure(self):
        state = {
            "from": self.container_id("container-from", self.source),
            "to": self.container_id("container-to", self.target),
            "paths": hash_values(self.pairs),
        }
        try:
            with open(self.state_path) as handle:
                previous = json.load(handle)
        except (OSError, ValueError):
            previous = None
        if previous == state:
            self.log.debug("nothing to copy: containers and paths unchanged")
            return []
        self.log.info("Copying %d path(s) from %s to %s", len(self.pairs), self.source,
                      self.target)
        try:
            ct.copy_paths(self.engine, self.source, self.target, self.pairs,
                          timeout=self.cmd_timeout(long=True))
        except ct.CopySourceError as exc:
            raise self.opts.error("paths", exc.reason, exc.path)
        except DockerError as exc:
            if not exc.timed_out:
                raise
            raise self.opts.error("timeout", "the copy did not finish within %gs and was "
                                  "stopped (nothing is left running)" % exc.timed_out)
        os.makedirs(self.state_dir, exist_ok=True)
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(state, handle)
        os.replace(tmp, self.state_path)
        # not returned as an installed path: buildout would delete it when any
        # option changes (timeout...) and the paths would be copied again
        return []

    @classmethod
    def uninstalled(cls, part, options, log):
        """The part is gone: forget what it copied (a new part copies again)."""
        path = options.get(STATE_OPTION)
        if not path:
            return
        for name in (path, path + ".tmp"):
            if os.path.exists(name):
                os.remove(name)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


def parse_path_line(opts, line, option="paths"):
    """``/file``, ``/folder/`` or ``SOURCE DESTINATION`` -> (source, destination).

    Shell quoting rules apply (``"/a b" /c``).  A source ending in ``/``
    must be a folder; a destination ending in ``/`` is the folder the
    source goes into, otherwise it is the source's new path.
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise opts.error(option, "cannot be parsed (%s)" % exc, line)
    if len(words) not in (1, 2):
        raise opts.error(option, "each line is PATH or SOURCE DESTINATION (quote paths "
                         "with spaces)", line)
    for word in words:
        if not word.startswith("/"):
            raise opts.error(option, "paths must be absolute (start with /)", line)
        if ".." in word.split("/"):
            raise opts.error(option, "paths must not contain '..'", line)
    source = words[0]
    if posixpath.normpath(source) == "/":
        raise opts.error(option, "cannot copy / itself: name the folders to copy", line)
    if len(words) == 1:
        return source, posixpath.normpath(source)
    target = words[1]
    if target.endswith("/"):
        target = posixpath.join(target, posixpath.basename(posixpath.normpath(source)))
    target = posixpath.normpath(target)
    if target == "/":
        raise opts.error(option, "the destination must be below /", line)
    return source, target


uninstall = Recipe.uninstaller()
