"""Typed errors of the docker CLI: the only reader of the engine's error text.

Docker and Podman word the same failure differently; a failed command
becomes :class:`NotFound`, :class:`InUse`, :class:`Conflict`,
:class:`Timeout` or :class:`Unreachable` here, once, so that callers never
match error texts.
"""
from dockeroo.base.redaction import redact



class DockerError(Exception):
    """A docker (or docker-machine) command failed or timed out."""

    def __init__(self, cmd, returncode, stderr, timed_out=None):
        self.cmd = [redact(str(word)) for word in cmd]
        self.returncode = returncode
        self.stderr = redact((stderr or "").strip())
        self.timed_out = timed_out
        super().__init__(str(self))

    def __str__(self):
        shown = " ".join(self.cmd[:4]) + (" ..." if len(self.cmd) > 4 else "")
        if self.timed_out:
            return "'%s' timed out after %ss and was killed%s" % (
                shown, self.timed_out,
                (": " + self.stderr) if self.stderr else "")
        return "'%s' failed (exit %s): %s" % (shown, self.returncode, self.stderr or "no error output")

    @property
    def not_found(self):
        return isinstance(self, NotFound)

    @classmethod
    def from_output(cls, cmd, returncode, stderr, timed_out=None):
        """The error for a failed command, typed from its answer: Docker and
        Podman word the same failure differently (see :func:`error_kind`)."""
        kind = Timeout if timed_out else error_kind(stderr)
        return (kind or cls)(cmd, returncode, stderr, timed_out)


class NotFound(DockerError):
    """The object the command names does not exist."""


class InUse(DockerError):
    """The object is still used (a volume by a container, an image by a container
    or a child image): nothing was removed."""


class Conflict(DockerError):
    """An object of that name already exists."""


class Timeout(DockerError):
    """The command did not finish in time and was killed."""


class Unreachable(DockerError):
    """No engine answers where the client looks for it."""


#: (class, lower-case fragments of Docker's and Podman's error texts), tried in order
_ERROR_TEXTS = (
    (Unreachable, ("cannot connect to the docker daemon", "error during connect",
                   "is the docker daemon running")),
    # before InUse: Docker's name conflict says "is already in use by container"
    (Conflict, ("already in use", "already exists", "already used", "conflict. the container name")),
    # Docker: "volume is in use", "conflict: unable to remove repository reference ...
    # container X is using its referenced image", "image is being used by running
    # container", "image has dependent child images"; Podman: "volume is being used",
    # "image is in use by a container"
    (InUse, ("in use", "is being used", "is using its referenced image",
             "dependent child images")),
    # Docker: "No such container: x", "No such object", "network x not found";
    # Podman: "no such container", "image not known", "network not found", and an
    # "invalid repository name ... 64-byte hexadecimal" for an unknown full id
    (NotFound, ("no such", "not found", "image not known", "cannot specify 64-byte hexadecimal")),
)


def error_kind(stderr):
    """The DockerError subclass for an engine's error text, or None."""
    text = (stderr or "").lower()
    for kind, fragments in _ERROR_TEXTS:
        if any(f in text for f in fragments):
            return kind
    return None


def _only_missing(stderr):
    """Does every line of an inspect's stderr say an object is missing?"""
    lines = [line for line in stderr.splitlines() if line.strip()]
    # Podman ends its answer for an unknown network with "exit status 1"
    return all(error_kind(line) is NotFound or line.strip() == "exit status 1" for line in lines)
