"""What docker.pull and docker.push share: registries, references, credentials, state.

Image references follow Docker's grammar ``[HOST[:PORT]/]PATH[:TAG][@DIGEST]``.
The first path component names a registry host when it contains ``.`` or
``:`` or is ``localhost`` (Docker's own rule); otherwise the image lives
on Docker Hub.

Pulled images cannot carry dockeroo's ownership labels, and a push leaves
nothing in the local engine to label; so these recipes remember what they
did in a small JSON file, ``PARTS/<part>/dockeroo-state.json`` (its path
is the part option ``dockeroo-state``), which they manage themselves:
buildout does not delete it when a changed part is reinstalled, and the
uninstall entry point removes it when the part goes away.
"""

import json
import os
import re
from dataclasses import dataclass
from typing import Optional

from zc.buildout import UserError

from .engine import DockerError
from .recipe import Recipe as Base

STATE_OPTION = "dockeroo-state"
STATE_FILE = "dockeroo-state.json"

#: registry hosts that mean Docker Hub (``docker login`` without a server)
HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = re.compile(r"^%(d)s(?:\.%(d)s)*(?::[0-9]{1,5})?$" % {"d": _DOMAIN_PART})
_PATH_PART = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


def is_host(component):
    """Docker's rule: does the first component of a name name a registry?"""
    return ("." in component or ":" in component or component == "localhost"
            or component.startswith("[") or component != component.lower())


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; ``host`` None means Docker Hub."""

    host: Optional[str]
    path: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @classmethod
    def parse(cls, value):
        rest, _, digest = value.partition("@")
        head, slash, last = rest.rpartition("/")
        tag = None
        if ":" in last:
            last, tag = last.rsplit(":", 1)
        name = head + slash + last
        first, _, remainder = name.partition("/")
        if remainder and is_host(first):
            host, path = first, remainder
        else:
            host, path = None, name
        if host in HUB_HOSTS:
            host = None
        return cls(host, path, tag, digest or None)

    @property
    def repository(self):
        return "%s/%s" % (self.host, self.path) if self.host else self.path

    @property
    def login_server(self):
        """The server for ``docker login`` (None: Docker Hub)."""
        return self.host

    def normalized(self):
        """With tag ``latest`` when neither tag nor digest is given."""
        if self.tag or self.digest:
            return self
        return ImageRef(self.host, self.path, "latest", None)

    def __str__(self):
        text = self.repository
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


def read_registry(opts, option="registry"):
    """``registry`` = ``HOST[:PORT][/NAMESPACE...]`` -> (host or None for Hub, namespace)."""
    value = opts.text(option)
    if value is None:
        return None, ""
    if "://" in value:
        raise opts.error(option, "give the registry as HOST[:PORT] (for example "
                         "registry.example.com or 127.0.0.1:5000), without a scheme", value)
    host, _, namespace = value.strip("/").partition("/")
    if not _HOST.match(host):
        raise opts.error(option, "must be a registry host name or address, optionally with "
                         ":PORT and /NAMESPACE", value)
    if not is_host(host):
        raise opts.error(option, "%r is not a registry host (Docker would read it as a "
                         "Docker Hub account): give a host such as registry.example.com or "
                         "localhost:5000, or put the account in name" % host, value)
    for part in namespace.split("/") if namespace else []:
        if not _PATH_PART.match(part):
            raise opts.error(option, "namespace %r must be lower case letters, digits and "
                             ". _ - separators" % part, value)
    return (None if host in HUB_HOSTS else host), namespace


def image_reference(opts, name, name_option, registry=None, digest=True):
    """The full reference for NAME in REGISTRY (see ``read_registry``).

    ``registry/name`` unless NAME already names that registry.  A NAME
    that names another registry is an error rather than a guess.
    """
    opts.image_ref(name_option, name, digest=digest)
    ref = ImageRef.parse(name)
    if registry is not None and opts.text("registry"):
        host, namespace = registry
        if ref.host is not None:
            if ref.host != host:
                raise opts.error(name_option, "names registry %s, but registry = %s; give only one"
                                 % (ref.host, opts.text("registry")), name)
        else:
            path = ref.path
            if namespace and not path.startswith(namespace + "/"):
                path = namespace + "/" + path
            ref = ImageRef(host, path, ref.tag, ref.digest)
            opts.image_ref(name_option, str(ref), digest=digest,
                           hint=" (after adding registry = %s)" % opts.text("registry"))
    return ref.normalized()


def read_credentials(opts, base):
    """(username, password) for ``docker login``, or (None, None).

    The password comes from ``password``, ``password-file`` or
    ``password-env`` and is removed from the part's options.
    """
    password = opts.secret("password", base)
    username = opts.text("username")
    given = [o for o in ("password", "password-file", "password-env") if opts.options.get(o, "").strip()]
    given = given[0] if given else "password"
    if password is not None and not username:
        raise opts.error("username", "is required when %s is given" % given)
    if username and password is None:
        raise opts.error("password", "username = %s needs a password: give password, "
                         "password-file or password-env" % username)
    if username and password == "":
        raise opts.error(given, "the password is empty")
    if username and re.search(r"\s", username):
        raise opts.error("username", "must not contain spaces", username)
    return username, password


class PartState:
    """A small JSON file remembering what a part did (see module docstring)."""

    def __init__(self, path):
        self.path = path

    @classmethod
    def for_options(cls, options):
        path = options.get(STATE_OPTION)
        return cls(path) if path else None

    def exists(self):
        return os.path.exists(self.path)

    def load(self):
        try:
            with open(self.path) as handle:
                data = json.load(handle)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save(self, data):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, self.path)

    def remove(self):
        for path in (self.path, self.path + ".tmp"):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(os.path.dirname(self.path))
        except OSError:
            pass


class RegistryRecipe(Base):
    """Base of docker.pull and docker.push: registry, credentials, state file."""

    name_aliases = ("image",)
    #: whether a digest reference is acceptable as name
    allow_digest = True

    def read_registry_options(self):
        # the secret first, so that it leaves the options whatever else fails
        self.username, self.password = read_credentials(self.opts, self.directory)
        self.name_option = "image" if "image" in self.options else "name"
        self.registry = read_registry(self.opts)
        self.ref = image_reference(self.opts, self.name, self.name_option,
                                   self.registry, digest=self.allow_digest)
        self.image = str(self.ref)
        self.options["image"] = self.image
        self.state = PartState(os.path.join(self.parts_directory, self.part, STATE_FILE))
        self.options[STATE_OPTION] = self.state.path

    def registry_env(self):
        """Context manager: the docker env for the registry (login when credentials given)."""
        return _Login(self)

    @classmethod
    def uninstalled(cls, part, options, log):
        state = PartState.for_options(options)
        if state is not None:
            state.remove()


class _Login:
    def __init__(self, recipe):
        self.recipe = recipe
        self.context = None

    def __enter__(self):
        r = self.recipe
        self.context = r.engine.login(r.ref.login_server, r.username, r.password,
                                      timeout=r.cmd_timeout())
        try:
            return self.context.__enter__()
        except DockerError as exc:
            self.context = None
            raise UserError("Part [%s] (%s): docker login to %s as %s failed: %s"
                            % (r.part, r.recipe, r.ref.login_server or "Docker Hub", r.username,
                               exc.stderr or exc))

    def __exit__(self, *exc_info):
        if self.context is not None:
            return self.context.__exit__(*exc_info)
        return False
