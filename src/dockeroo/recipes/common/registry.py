"""What docker.pull and docker.push share: registries, references, credentials, state.

Image references are parsed and normalised by :mod:`dockeroo.base.references`
(Docker's grammar ``[HOST[:PORT]/]PATH[:TAG][@DIGEST]``); ``registry``
puts a name that names no registry into ``HOST[:PORT][/NAMESPACE]``.

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

from zc.buildout import UserError

from dockeroo.base import references
from dockeroo.base.state import atomic_json
from dockeroo.engine.errors import DockerError
from dockeroo.runtime.recipe import Recipe as Base

STATE_OPTION = "dockeroo-state"
STATE_FILE = "dockeroo-state.json"


def read_registry(opts, option="registry"):
    """``registry`` = ``HOST[:PORT][/NAMESPACE...]`` -> (domain, namespace), or None."""
    value = opts.text(option)
    if value is None:
        return None
    try:
        return references.parse_registry(value)
    except references.ReferenceError as exc:
        raise opts.error(option, exc.reason, value)


def image_reference(opts, name, name_option, registry=None, digest=True):
    """The normalised :class:`references.Reference` for NAME in REGISTRY
    (see ``read_registry``; None: NAME as it is).

    ``registry/name`` unless NAME already names that registry.  A NAME
    that names another registry is an error rather than a guess.
    """
    ref = opts.reference(name_option, name, digest=digest)
    if registry is not None:
        try:
            ref = references.in_registry(name, *registry)
        except references.ReferenceError as exc:
            raise opts.error(name_option, exc.reason, name)
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
        atomic_json(self.path, data, indent=1, sort_keys=True)

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
    #: the output option giving other parts the reference (docker.pull: ``image``,
    #: the image pulled; docker.push: ``pushed-image``, since its ``image`` is the input)
    image_output = "image"

    def read_registry_options(self):
        # the secret first, so that it leaves the options whatever else fails
        self.username, self.password = read_credentials(self.opts, self.directory)
        self.name_option = "image" if "image" in self.options else "name"
        self.registry = read_registry(self.opts)
        self.ref = image_reference(self.opts, self.name, self.name_option,
                                   self.registry, digest=self.allow_digest)
        self.image = str(self.ref)  # familiar, as RepoTags show it
        self.options[self.image_output] = self.image
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
