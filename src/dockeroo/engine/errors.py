"""Typed errors of the docker CLI: the only reader of the engine's error text
(and of the other answers whose wording decides something).

Docker and Podman word the same failure differently; a failed command
becomes :class:`NotFound`, :class:`InUse`, :class:`Conflict`,
:class:`Timeout`, :class:`Unreachable` or :class:`HostChanged` (a
command refused while the host's interfaces changed, safe to run again)
here, once, so that callers never match error texts.
"""
import re

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

    def masking(self, secret):
        """This error with SECRET masked in its answer (a new one, typed again)."""
        return self.from_output(self.cmd, self.returncode,
                                self.stderr.replace(secret or "\0", "***"), self.timed_out)

    @property
    def detail(self):
        """The engine's own words, without the gRPC wrapper of a swarm
        manager's answer (``rpc error: code = ... desc = ``)."""
        return self.stderr.split("desc = ")[-1]

    @property
    def reasons(self):
        """The lines of the answer without the client's own summary line
        (``Error: failed to start containers: NAME``)."""
        return [line.strip() for line in self.stderr.splitlines()
                if line.strip() and not line.startswith("Error: failed to start")]

    @property
    def unknown_user(self):
        """Does the answer say that the user of ``exec --user`` does not
        exist?  (Podman answers an unknown exec user with a bare 500.)"""
        return ("unable to find user" in self.stderr.lower()
                or "unable to upgrade to tcp, received 500" in self.stderr)

    def container_ids(self, image_id=""):
        """The ids (or id prefixes) of the containers the answer names as the
        users of an image it could not remove (Docker and Podman both name
        them), without IMAGE_ID's own."""
        own = image_id.split(":", 1)[-1]
        return {i for i in re.findall(r"\b[0-9a-f]{12,64}\b", self.stderr)
                if not own.startswith(i)}

    @property
    def missing_folder(self):
        """Did ``docker cp - CONTAINER:PATH`` fail because PATH is not a folder there?"""
        return "must be a directory" in self.stderr

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


class HostChanged(DockerError):
    """The engine could not read the host's network interfaces because one
    came or went while it read them (Podman checks a new network's subnet
    against every interface's addresses, and Go's reading of them fails with
    ``route ip+net: no such network interface`` when a container starts or
    stops at that instant): the command changed nothing and may be run again.
    """


class SshFailed(Unreachable):
    """The ssh connection to a remote engine (``engine-url = ssh://...``) could
    not be made, or was lost: one line with ssh's own words."""

    def __init__(self, cmd, returncode, stderr, timed_out=None, url="", lost=False):
        self.url = url
        self.lost = lost
        what = "lost the ssh connection" if lost else "cannot connect over ssh"
        if timed_out:  # failure_text names option 'timeout'
            line = "option 'engine-url' = %s: %s within %ss" % (url, what, timed_out)
        else:
            line = "option 'engine-url' = %s: %s: %s" % (url, what, ssh_cause(stderr, returncode))
        # the one line is the answer: a recipe that quotes the answer names the option too
        super().__init__(cmd, returncode, line, timed_out)

    def __str__(self):
        return self.stderr


def ssh_cause(stderr, returncode=None):
    """ssh's own words in one line: the line that names the file
    (``Offending ... key in known_hosts:N``) and its last line."""
    lines = [l.strip(" @\t") for l in (stderr or "").splitlines()]
    lines = [l for l in lines if l and not l.startswith(("Warning: Permanently added",
                                                         "WARNING: REMOTE HOST"))]
    named = [l for l in lines if l.startswith("Offending")]
    last = lines[-1:] if lines else ["ssh ended without a word (exit %s)" % returncode]
    return "; ".join(dict.fromkeys(named + last))


class CopySourceError(DockerError):
    """A source path of a copy is missing, or is not the folder its line says."""

    def __init__(self, cmd, returncode, stderr, container, path):
        self.container = container
        self.path = path
        super().__init__(cmd, returncode, stderr)

    @classmethod
    def not_a_folder(cls, container, path):
        """PATH, asked for as a folder, is a file in CONTAINER."""
        return cls(["cp", "%s:%s" % (container, path), "-"], 1, "not a directory", container, path)

    @property
    def reason(self):
        text = self.stderr.lower()
        if "no such container" in text:
            return "container %s does not exist" % self.container
        if "not a directory" in text:
            return "%s is not a folder in container %s" % (self.path.rstrip("/"), self.container)
        if "could not find" in text or "no such file" in text:
            return "%s does not exist in container %s" % (self.path.rstrip("/"), self.container)
        return self.stderr or "docker cp failed"


#: (class, lower-case fragments of Docker's and Podman's error texts), tried in order
_ERROR_TEXTS = (
    # before NotFound ("no such"): a race with another process, not a missing object
    (HostChanged, ("route ip+net: no such network interface",)),
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


# -- what other answers of the docker CLI say ----------------------------------------

def build_needs_buildx(output):
    """Does a failed ``docker build``'s OUTPUT say the client cannot build without buildx?"""
    return "requires BuildKit" in output or "buildx component is missing" in output


def build_could_not_resolve(output):
    """Does a failed ``docker build``'s OUTPUT say something could not be resolved
    (a frontend image, a base image)?"""
    return "resolve" in output


class LegacyBuildSteps:
    """The images a legacy (``DOCKER_BUILDKIT=0``) ``docker build``'s steps
    made, read from its output lines as they stream (:meth:`feed`): not the
    ``FROM`` step's (the base image), not one taken from the cache.  What a
    failed build leaves as cache (``images``, in the build's order)."""

    #: a step (``Step 2/3 : COPY . /ctx/``; Podman's ``STEP 2/3: COPY . /ctx/``),
    #: a step served from the cache (`` ---> Using cache``; ``--> Using cache ID``),
    #: the image a step made (`` ---> 3f2a1b0c9d8e``; Podman's ``--> 3f2a1b0c9d8``)
    STEP = re.compile(r"^(?:\[\d+/\d+\] )?(?:Step|STEP) \d+/\d+ ?: (\S+)")
    CACHED = re.compile(r"^\s*-?--> Using cache(?:\s+[0-9a-f]+)?\s*$")
    IMAGE = re.compile(r"^\s*-?--> ([0-9a-f]{11,64})\s*$")

    def __init__(self):
        self.images = []
        self._step = {}

    def feed(self, line):
        found = self.STEP.match(line)
        if found:
            self._step = {"instruction": found.group(1).upper(), "cached": False}
        elif self.CACHED.match(line):
            if self._step:
                self._step["cached"] = True
        else:
            found = self.IMAGE.match(line)
            if found and self._step and self._step["instruction"] != "FROM" and \
                    not self._step["cached"]:
                self.images.append(found.group(1))
                self._step = {}  # one image a step


def only_untagged(stdout):
    """Did ``docker image rm``'s answer STDOUT delete nothing (it only untagged)?"""
    return "Deleted:" not in stdout
