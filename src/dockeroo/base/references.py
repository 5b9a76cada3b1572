"""Image references, parsed and normalised the way Docker does.

Docker's grammar (its ``distribution/reference`` library) is::

    reference  := name [":" tag] ["@" digest]
    name       := [domain "/"] path
    domain     := host [":" port]      host: DNS-like name, IPv4 or [IPv6]
    path       := component ["/" component]*
    component  := [a-z0-9]+ with single ".", "_", "__" or runs of "-" between
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex     (sha256: 64 lower-case hex digits)

The first path component names a registry (the *domain*) only when the
name has more than one component and that first one contains ``.`` or
``:``, is ``localhost``, or has an upper-case letter; otherwise the image
lives on Docker Hub, domain ``docker.io``, and a single-component Hub path
is in the ``library/`` namespace.  So ``busybox``, ``library/busybox``,
``docker.io/busybox`` and ``docker.io/library/busybox`` all name
``docker.io/library/busybox``.  ``index.docker.io`` (Docker's own legacy
spelling) and ``registry-1.docker.io`` (the host Docker Hub is actually
served from; Docker itself keeps it as a separate name) mean Docker Hub
here too.  Domains are compared as written: ``Docker.io`` is not Hub.

Docker shows references in their *familiar* form (``busybox:latest``,
``team/app:1``, ``127.0.0.1:5000/ns/app:2``) in ``RepoTags`` and
``RepoDigests``; Podman shows them fully qualified
(``docker.io/library/busybox:latest``), and tags what its own CLI makes
``localhost/NAME:TAG``.  :meth:`Reference.matches` compares parsed
references, so both agree; on Podman a name written without a registry
also matches its ``localhost/`` spelling (:func:`find_image`).

Pure standard library: no engine, no buildout.
"""

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Optional

#: Docker Hub's domain, as references are normalised
HUB = "docker.io"
#: spellings of Docker Hub's domain
HUB_DOMAINS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
#: the namespace of Docker Hub's official images
OFFICIAL = "library/"
DEFAULT_TAG = "latest"
#: the longest fully qualified repository name (domain and path) Docker 20.10
#: accepts (newer versions limit the path alone)
MAX_NAME = 255

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^\w[\w.-]{0,127}$", re.ASCII)
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(r"^(?:(%s(?:\.%s)*)|\[([0-9A-Fa-f:.]+)\])(?::[0-9]+)?$"
                     % (_DOMAIN_LABEL, _DOMAIN_LABEL))
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
#: the digest algorithms Docker knows, and their length in hex digits
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
_FULL_ID = re.compile(r"^sha256:[a-f0-9]{64}$")
_IMAGE_ID = re.compile(r"^(?:sha256:)?[a-f0-9]{12,64}$")

FORMAT = "[REGISTRY[:PORT]/]NAME[:TAG][@DIGEST]"


class ReferenceError(ValueError):
    """TEXT is not an image reference Docker accepts; ``reason`` says why."""

    def __init__(self, text, reason):
        self.text = text
        self.reason = reason
        super().__init__("%r is not a valid image reference: %s" % (text, reason))


def is_domain(component):
    """Docker's rule: does COMPONENT, the first of several, name a registry?"""
    return ("." in component or ":" in component or component == "localhost"
            or component != component.lower())


def check_domain(domain):
    """The reason DOMAIN (``HOST[:PORT]``) is not a valid registry, or None."""
    match = _DOMAIN.match(domain)
    if match and match.group(2) is not None:
        try:
            ipaddress.IPv6Address(match.group(2))
        except ValueError:
            match = None
    if not match:
        return ("registry host %r is not valid: give a host name, IPv4 address or "
                "[IPv6] address, optionally with :PORT" % domain)
    return None


def check_path(path, text):
    """Raise ReferenceError unless PATH (``a/b/c``) is a valid repository path."""
    for component in path.split("/"):
        if not component:
            raise ReferenceError(text, "empty name component (a leading, trailing or "
                                       "doubled '/')")
        if not _COMPONENT.match(component):
            if _COMPONENT.match(component.lower()):
                raise ReferenceError(text, "repository name must be lowercase (%r)" % component)
            raise ReferenceError(text, "name component %r must be lower-case letters and "
                                       "digits, separated by '.', '_', '__' or dashes"
                                 % component)


def normal_domain(domain):
    return HUB if domain in HUB_DOMAINS else domain


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    ``domain`` is always set (``docker.io`` for Docker Hub) and ``path``
    is the full path (``library/busybox`` for an official image).  ``tag``
    and ``digest`` are None when not given; :meth:`normalized` applies
    Docker's defaults.
    """

    domain: str
    path: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @classmethod
    def parse(cls, text):
        """Parse TEXT as Docker does; raise :class:`ReferenceError` if invalid."""
        domain, path, tag, digest = split(text)
        if domain is None:
            domain = HUB
        domain = normal_domain(domain)
        if domain == HUB and "/" not in path:
            path = OFFICIAL + path
        ref = cls(domain, path, tag, digest)
        if len(ref.name) > MAX_NAME:
            raise ReferenceError(text, "the repository name %s is longer than %d characters"
                                 % (ref.name[:40] + "...", MAX_NAME))
        return ref

    # -- views --------------------------------------------------------------------
    @property
    def is_hub(self):
        return self.domain == HUB

    @property
    def name(self):
        """The fully qualified repository: ``docker.io/library/busybox``."""
        return "%s/%s" % (self.domain, self.path)

    @property
    def familiar_name(self):
        """The repository as Docker shows it: ``busybox``, ``team/app``, ``host:5000/app``."""
        if not self.is_hub:
            return self.name
        rest = self.path[len(OFFICIAL):] if self.path.startswith(OFFICIAL) else None
        return rest if rest and "/" not in rest else self.path

    @property
    def login_server(self):
        """The server for ``docker login`` (None: Docker Hub, the CLI's default)."""
        return None if self.is_hub else self.domain

    def normalized(self):
        """With Docker's defaults: tag ``latest`` when neither tag nor digest is
        given; only the digest when both are (a digest says everything)."""
        if self.digest:
            return replace(self, tag=None) if self.tag else self
        return self if self.tag else replace(self, tag=DEFAULT_TAG)

    def familiar(self):
        """As Docker shows it in RepoTags/RepoDigests: ``busybox:latest``."""
        return self._with_suffix(self.familiar_name)

    def qualified(self):
        """Fully qualified, as Podman shows it: ``docker.io/library/busybox:latest``."""
        return self._with_suffix(self.name)

    def _with_suffix(self, name):
        return name + (":" + self.tag if self.tag else "") + ("@" + self.digest if self.digest else "")

    def __str__(self):
        return self.familiar()

    # -- comparisons ------------------------------------------------------------------
    def same_repository(self, other):
        return (self.domain, self.path) == (other.domain, other.path)

    def matches(self, image, local=False):
        """Does the image (``docker image inspect`` JSON) carry this reference?

        A digest reference is looked up in ``RepoDigests``, any other in
        ``RepoTags`` (tag ``latest`` by default).  Entries are compared
        parsed, so familiar and fully qualified spellings agree.  With LOCAL
        (Podman, for a name written without a registry) ``localhost/NAME``
        matches too: Podman tags what its own CLI builds, imports and commits
        so, and resolves a short name to it first.
        """
        wanted = self.normalized()
        also = self.local() if local and wanted.is_hub else None
        field = "RepoDigests" if wanted.digest else "RepoTags"
        for text in (image or {}).get(field) or []:
            try:
                found = Reference.parse(text)
            except ReferenceError:  # "<none>:<none>" and the like
                continue
            if (wanted.same_repository(found) or (also and also.same_repository(found))) and (
                    found.digest == wanted.digest if wanted.digest else found.tag == wanted.tag):
                return True
        return False

    def local(self):
        """Podman's ``localhost/`` spelling of a Docker Hub reference."""
        return replace(self, domain="localhost", path=self.familiar_name)


def split(text):
    """TEXT -> (domain or None when not written, path as written, tag, digest).

    Checks the grammar (the length is checked by :meth:`Reference.parse`, on
    the normalised name); raises :class:`ReferenceError`.
    """
    if not isinstance(text, str) or not text:
        raise ReferenceError(text, "it is empty")
    if "://" in text:
        raise ReferenceError(text, "give %s, without a scheme such as https://" % FORMAT)
    if any(c.isspace() for c in text) or not text.isprintable():
        raise ReferenceError(text, "it contains spaces or control characters")
    if _HEX64.match(text):
        raise ReferenceError(text, "64 hexadecimal digits are an image id, not a repository "
                                   "name")
    rest, at, digest = text.partition("@")
    if at:
        check_digest(text, digest)
    else:
        digest = None
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise ReferenceError(text, "tag %r must be 1 to 128 letters, digits, '_', '.' and "
                                       "'-', not starting with '.' or '-'" % tag)
    if not rest:
        raise ReferenceError(text, "the repository name is missing")
    first, slash, remainder = rest.partition("/")
    domain, path = (first, remainder) if slash and is_domain(first) else (None, rest)
    if domain is not None:
        why = check_domain(domain)
        if why:
            raise ReferenceError(text, why)
    check_path(path, text)
    return domain, path, tag, digest


def check_digest(text, digest):
    if not _DIGEST.match(digest):
        raise ReferenceError(text, "digest %r must be ALGORITHM:HEX, such as sha256: and 64 "
                                   "hexadecimal digits" % digest)
    algorithm, _, hexa = digest.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None:
        raise ReferenceError(text, "digest algorithm %r is not supported (use %s)"
                             % (algorithm, ", ".join(sorted(_DIGEST_LENGTHS))))
    if len(hexa) != length or hexa != hexa.lower():
        raise ReferenceError(text, "a %s digest is %d lower-case hexadecimal digits, not %r"
                             % (algorithm, length, hexa))


def parse(text):
    """:meth:`Reference.parse`."""
    return Reference.parse(text)


def parse_registry(text):
    """``HOST[:PORT][/NAMESPACE...]`` -> (normalised domain, namespace or "").

    The host must be a registry by Docker's rule (``account`` alone would
    be a Docker Hub account); raises :class:`ReferenceError`.
    """
    if "://" in text:
        raise ReferenceError(text, "give the registry as HOST[:PORT] (for example "
                                   "registry.example.com or 127.0.0.1:5000), without a scheme")
    domain, _, namespace = text.strip("/").partition("/")
    why = check_domain(domain)
    if why:
        raise ReferenceError(text, why)
    if not is_domain(domain):
        raise ReferenceError(text, "%r is not a registry host (Docker would read it as a "
                                   "Docker Hub account): give a host such as "
                                   "registry.example.com or localhost:5000, or put the account "
                                   "in the image name" % domain)
    if namespace:
        try:
            check_path(namespace, text)
        except ReferenceError as exc:
            raise ReferenceError(text, "namespace %r: %s" % (namespace, exc.reason))
    return normal_domain(domain), namespace


def in_registry(text, domain, namespace=""):
    """TEXT placed in registry DOMAIN/NAMESPACE (see :func:`parse_registry`).

    A TEXT naming no registry is put under DOMAIN/NAMESPACE (its path as
    written: ``app`` becomes ``DOMAIN/NAMESPACE/app``, not ``library/app``);
    one naming DOMAIN is kept; one naming another registry raises
    :class:`ReferenceError`.
    """
    given, path, tag, digest = split(text)
    if given is not None:
        if normal_domain(given) != domain:
            raise ReferenceError(text, "it names registry %s, but registry = %s; give only one"
                                 % (given, domain + ("/" + namespace if namespace else "")))
        return Reference.parse(text)
    if namespace and not path.startswith(namespace + "/"):
        path = namespace + "/" + path
    return Reference.parse("%s/%s" % (domain, path) + (":" + tag if tag else "")
                           + ("@" + digest if digest else ""))


def is_image_id(text):
    """An image id as Docker accepts it: ``sha256:`` and 64 hex digits, or 12 to 64
    hex digits (an id prefix)."""
    return bool(_IMAGE_ID.match(text or ""))


def is_full_image_id(text):
    """A whole image id: 64 hex digits, optionally after ``sha256:``."""
    return bool(_FULL_ID.match(text or "") or _HEX64.match(text or ""))


def find_image(name, images, podman=None):
    """The image (inspect JSON) among IMAGES that NAME (a reference or id) names, or None.

    As Docker: a full id (``sha256:`` and 64 hex digits) is an id; any other
    NAME is a reference first, then an id prefix.  PODMAN (a callable, asked
    only when a ``localhost/`` tag could be the answer) tells whether the
    engine is Podman, whose ``localhost/NAME:TAG`` a bare ``NAME:TAG`` names.
    """
    try:
        ref = None if _FULL_ID.match(name) else Reference.parse(name)
    except ReferenceError:
        ref = None
    if ref is not None:
        for image in images:
            if ref.matches(image):
                return image
        if podman is not None and ref.is_hub and split(name)[0] is None:
            local = [image for image in images if ref.matches(image, local=True)]
            if local and podman():
                return local[0]
    if is_image_id(name):
        bare = name.split(":", 1)[-1]
        for image in images:
            if (image.get("Id") or "").split(":", 1)[-1].startswith(bare):
                return image
    return None
