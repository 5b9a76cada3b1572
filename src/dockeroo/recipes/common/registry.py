"""What docker.pull and docker.push share: registries, references, credentials, state.

``registry`` puts a name that names no registry into
``HOST[:PORT][/NAMESPACE]`` (references: :mod:`dockeroo.base.references`).
Pulled images cannot carry ownership labels and a push leaves nothing to
label, so these recipes remember what they did in their own JSON state
file, ``PARTS/<part>/dockeroo-state.json`` (the part option
``dockeroo-state``), removed by their uninstall.
"""

import json
import os
import re

from zc.buildout import UserError

from dockeroo.base import references
from dockeroo.base.state import atomic_json
from dockeroo.engine.errors import Conflict, DockerError, InUse, only_untagged
from dockeroo.model.ownership import containers_named_in, remove_image
from dockeroo.model.plan import action
from dockeroo.runtime.recipe import Recipe as Base

STATE_OPTION = "dockeroo-state"
_DIGEST_LINE = re.compile(r"digest: (sha256:[0-9a-f]{64})")
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


class StateRecipe(Base):
    """A recipe that remembers what it did in its state file (see the module
    docstring), removed when the part is really uninstalled."""

    @classmethod
    def uninstalled(cls, part, options, log):
        state = PartState.for_options(options)
        if state is not None:
            state.remove()


class RegistryRecipe(StateRecipe):
    """Base of docker.pull, docker.push and docker.manifest: registry, credentials, state file."""

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

    def push_as(self, local, remote, image_id):
        """Push the local image LOCAL (id IMAGE_ID) as REMOTE: ``docker tag`` when
        REMOTE is not a local tag yet (recorded first, removed right after the
        push), ``docker push``; returns the manifest digest the push printed."""
        added = False
        if remote != local:
            existing = self.engine.inspect("image", remote)
            if existing is None:
                # recorded before tagging: a run killed before the untag
                # leaves a record, and the next run removes the tag
                state = self.state.load()
                state.setdefault("added-tags", []).append(remote)
                self.state.save(state)
                self.run(["tag", local, remote])
                added = True
            elif existing["Id"] != image_id:
                raise UserError(
                    "Part [%s] (%s): %s already tags another local image (%s), not %s (%s); "
                    "remove or move that tag first"
                    % (self.part, self.recipe, remote, existing["Id"][7:19], local,
                       image_id[7:19]))
        try:
            with self.registry_env() as env:
                self.log.debug("Pushing %s (id %s)", remote, image_id[7:19])
                result = self.run(["push", remote], long=True, stream=True, env=env)
        finally:
            if added:  # only the tag this part added; the image keeps its own tags
                self.drop_added_tags()
            self.engine.forget("image", remote)
        found = _DIGEST_LINE.findall(result.stdout)
        return found[-1] if found else None

    def drop_added_tags(self):
        """Remove the tags this part added for a push (recorded before
        tagging), also those a killed run left."""
        state = self.state.load()
        added = state.get("added-tags") or []
        if not added:
            return
        left = []
        for ref in added:
            self.engine.forget("image", ref)
            if self.engine.inspect("image", ref) is None:
                continue
            untag = remove_image(self.engine, ref, timeout=self.cmd_timeout(), check=False)
            if untag.returncode != 0:
                self.log.warning("Could not remove the tag %s added for the push: %s",
                                 ref, untag.stderr.strip())
                left.append(ref)
        state = self.state.load()
        state["added-tags"] = left
        if not left:
            del state["added-tags"]
        if state:
            self.state.save(state)
        else:  # nothing pushed yet: no record at all
            self.state.remove()



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


def remove_reference(engine, part, ref, log, timeout):
    """``docker image rm REF``: removes that reference only (other tags stay)."""
    image = engine.inspect("image", ref)
    if image is None:
        return
    try:
        result = remove_image(engine, ref, timeout=timeout)
    except (InUse, Conflict) as exc:
        users = containers_named_in(engine, exc.container_ids(image["Id"]))
        log.warning("Image %s is still used by container(s) %s: left in place (removed by "
                    "this part's next uninstall once they are gone)", ref,
                    ", ".join(users) or "(unknown)")
        return
    if only_untagged(result.stdout) and engine.capabilities.is_podman:
        # Podman only untags the last tag of an image it knows a digest of
        left = engine.inspect("image", image["Id"])
        if left is not None and not left.get("RepoTags"):
            remove_image(engine, image["Id"], check=False, timeout=timeout)
    log.info("Removed image %s", ref)


def require_local(part, recipe, observed, context, ref, how="built, pulled or tagged"):
    """(the inspect JSON of the local image REF or None, the Action of an earlier
    part that (re)makes it or None); a UserError when there is neither."""
    local = observed.get("image", ref)
    rebuilt = context.image_change(ref)
    if local is None and rebuilt is None:
        raise UserError("Part [%s] (%s): image %s does not exist locally; it must be %s "
                        "before this part runs (e.g. by a part listed earlier)"
                        % (part, recipe, ref, how))
    return local, rebuilt


def plan_reference_removals(part, observed, entries, keep, why, verb="pulled"):
    """The removals of the references a part brought: ENTRIES are (reference,
    whether the part brought it, the image id it had or None)."""
    acts = []
    for ref, owned, image_id in entries:
        current = observed.get("image", ref)
        if current is None:
            acts.append(action(part, "image", ref, "unchanged", "already gone"))
        elif keep:
            acts.append(action(part, "image", ref, "unchanged", "keep = true: left in place"))
        elif not owned:
            acts.append(action(part, "image", ref, "unchanged", "it was in the engine "
                               "before this part %s it" % verb))
        elif image_id and current["Id"] != image_id:
            acts.append(action(part, "image", ref, "unchanged", "it names another image now"))
        else:
            acts.append(action(part, "image", ref, "remove", why))
    return acts
