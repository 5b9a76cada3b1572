"""dockeroo:docker.load: images loaded from a file or URL (``docker load``).

read -> plan -> apply (see :mod:`dockeroo.model.plan` and
docs/recipes/docker.load.rst).  The archive is read to its end first
(checksum, image index), then streams into ``docker load`` with its last
block held back until the bytes match again.  The state file remembers
the tags the part brought: uninstall removes only those.
"""

import dataclasses
import os
from typing import Optional, Tuple

from zc.buildout import UserError

from dockeroo.base import references
from dockeroo.engine.process import DEFAULT_TIMEOUT
from dockeroo.model.options import Options
from dockeroo.model.plan import action, not_fingerprinted
from dockeroo.recipes.common import archives as archives_mod
from dockeroo.recipes.common import imagefiles
from dockeroo.recipes.common.registry import (STATE_FILE, STATE_OPTION, PartState, StateRecipe,
                                              plan_reference_removals, remove_reference)


@dataclasses.dataclass(frozen=True)
class Spec:
    source: str               # an absolute path or a URL
    is_url: bool
    shown: str                # the source as it may be logged
    algorithm: Optional[str]  # of the expected checksum
    checksum: Optional[str]   # hex
    names: Tuple[str, ...]    # the images the archive must hold (none: any)
    archive: object = not_fingerprinted()
    state_path: str = not_fingerprinted()

    @property
    def expected(self):
        return "%s:%s" % (self.algorithm, self.checksum) if self.checksum else None


def read(opts, part, directory, parts_directory):
    """The part's options -> Spec (every mistake a UserError)."""
    opts.known("path", "url", "checksum")
    option = "url" if (opts.options.get("url") or "").strip() else "path"
    if (opts.options.get("url") or "").strip() and (opts.options.get("path") or "").strip():
        raise opts.error("url", "give path or url, not both")
    if not (opts.options.get(option) or "").strip():
        raise opts.error("path", "is required: the archive's path or URL")
    checksum = opts.text("checksum")
    if checksum:  # checked as an ``archives`` line checks it
        opts.options[option] = opts.options[option].strip() + " " + checksum
    try:
        found = archives_mod.parse_archives(opts, option, directory)
    finally:
        if checksum:
            opts.options[option] = opts.options[option].rsplit(" ", 1)[0]
    if len(found) != 1 or found[0].prefix:
        raise opts.error(option, "must be one file: PATH or URL [ALGORITHM:HEX]",
                         opts.options[option])
    archive = found[0]
    names = []
    for line in opts.lines("name", aliases=("images", "image")):
        for word in line.split():
            ref = str(opts.reference("name", word, digest=False).normalized())
            if ref not in names:
                names.append(ref)
    return Spec(source=archive.source, is_url=archive.is_url, shown=archive.shown,
                algorithm=archive.algorithm, checksum=archive.digest, names=tuple(names),
                archive=archive, state_path=os.path.join(parts_directory, part, STATE_FILE))


def identity(spec, state, stat):
    """What says whether the file changed: the expected checksum; for a local
    file without one its sha256 (computed again only when its size or
    times changed since the part recorded it); for a URL without one the URL."""
    if spec.expected:
        return spec.expected
    if spec.is_url:
        return "url:" + spec.source
    if state.get("source") == spec.source and state.get("stat") == stat and state.get("identity"):
        return state["identity"]
    return imagefiles.file_digest(spec.source)


def plan(part, spec, observed, context, state, ident, index=None, keep=False):
    """[Action]s for the images the archive of SPEC holds.

    STATE: the part's state file; IDENT: :func:`identity` now; INDEX: the
    archive's :class:`imagefiles.Index` when it was read (a local file
    whose identity changed), else None."""
    same = state.get("identity") == ident and list(state.get("names") or []) == list(spec.names)
    loaded = state.get("images") or {}
    if same and loaded:
        expected = dict(loaded)
    elif index is not None:
        expected = {}
        for image in index.images:
            for tag in image.tags:
                expected[_normal(tag)] = image.id
    else:
        expected = {name: None for name in spec.names}
    # the images this part loaded before that the archive does not hold (any more)
    acts = []
    owned = state.get("owned") or {}
    for ref, image_id in sorted(loaded.items()):
        if ref in expected or not owned.get(ref) or keep:
            continue
        current = observed.get("image", ref)
        if current is not None and current["Id"] == image_id:
            acts.append(action(part, "image", ref, "remove", "the archive does not hold it"))
    if not expected:
        shown = spec.shown
        if same:
            return acts + [action(part, "archive", shown, "unchanged")]
        return acts + [action(part, "archive", shown, "create", "new part" if not state else
                              "the archive changed", data="load")]
    why = "new part" if context.old is None and not state else \
        "the archive or the images it must hold changed"
    for tag, image_id in sorted(expected.items()):
        current = observed.get("image", tag)
        if current is None:
            verb, reasons = ("repair", ["image %s is missing (removed by hand?)" % tag]) \
                if same else ("create", [why])
        elif image_id is not None and current["Id"] == image_id:
            verb, reasons = "unchanged", []
        elif image_id is not None:
            verb, reasons = "update", ["%s is another image (id %s), the archive holds %s"
                                       % (tag, current["Id"][7:19], image_id[7:19])]
        elif same:
            verb, reasons = "unchanged", []
        else:
            verb, reasons = "update", [why]
        act = action(part, "image", tag, verb, *reasons, data="load" if verb != "unchanged"
                     else None)
        if act.changes:
            context.will_change_image(tag, act)
        acts.append(act)
    return acts


def _normal(ref):
    try:
        return str(references.parse(ref).normalized())
    except references.ReferenceError:
        return ref


class Recipe(StateRecipe):
    recipe = "docker.load"
    has_name = False
    known_options = ("images", "image")

    def setup(self):
        self.spec = read(self.opts, self.part, self.directory, self.parts_directory)
        self.state = PartState(self.spec.state_path)
        self.options[STATE_OPTION] = self.state.path
        self.read_index = None  # (stat, Index) of the local file the plan read

    @classmethod
    def owned(cls, values):
        return []

    def plan(self, context):
        spec = self.spec
        state = self.state.load()
        stat = None
        if not spec.is_url:
            if not os.path.isfile(spec.source):
                raise UserError("Part [%s] (%s): %s is not a file" % (self.part, self.recipe,
                                                                      spec.source))
            stat = _stat(spec.source)
        ident = identity(spec, state, stat)
        index = None
        if not spec.is_url and (state.get("identity") != ident or not state.get("images")):
            index = self.index(spec.source)
            self.read_index = (stat, index)
        return plan(self.part, spec, self.observed(), context, state, ident, index, self.keep)

    def index(self, path):
        """The archive's index (a UserError naming the part for a bad file)."""
        spec = self.spec
        try:
            index = imagefiles.read_index(path, spec.algorithm or "sha256", spec.checksum)
        except (imagefiles.BadArchive, archives_mod.ChecksumMismatch) as exc:
            raise self.opts.error("url" if spec.is_url and self.options.get("url") else "path",
                                  "%s: %s" % (spec.shown if spec.is_url else path, exc))
        self.check_names(index)
        return index

    def check_names(self, index):
        if not self.spec.names:
            return
        held = set()
        for image in index.images:
            tags = {_normal(tag) for tag in image.tags}
            if not tags & set(self.spec.names):
                raise UserError("Part [%s] (%s): the archive holds an image not named in option "
                                "'name' (%s): refused" % (self.part, self.recipe, ", ".join(
                                    sorted(tags)) or image.id[7:19] + ", untagged"))
            other = tags - set(self.spec.names)
            if other:
                raise UserError("Part [%s] (%s): the archive holds tags not named in option "
                                "'name' (%s): refused" % (self.part, self.recipe,
                                                         ", ".join(sorted(other))))
            held |= tags
        missing = [name for name in self.spec.names if name not in held]
        if missing:
            raise UserError("Part [%s] (%s): the archive does not hold %s"
                            % (self.part, self.recipe, ", ".join(missing)))

    def apply(self, actions):
        if not any(act.data == "load" for act in actions):
            if self.read_index is not None:
                # the engine holds the archive's images (a run killed right after its
                # load): the record catches up, and replaced images go
                state = self.state.load()
                self.record(self.read_index[1], state, self.owned_map(self.read_index[1], state))
            return []
        spec = self.spec
        with archives_mod.Fetcher(self.buildout["buildout"], self.log) as fetcher:
            try:
                path = fetcher.path(spec.archive)
            except UserError as exc:
                raise self.opts.error("url" if self.options.get("url") else "path",
                                      str(exc).strip(), spec.shown)
            try:
                if not spec.is_url and self.read_index and self.read_index[0] == _stat(path):
                    index = self.read_index[1]  # read by the plan; stream() checks its digest
                else:
                    index = self.index(path)
            except UserError:
                if spec.is_url and fetcher.cached(path):
                    imagefiles.remove_quietly(path)  # a bad copy in the download cache
                raise
            self.load(path, index)
        return []

    def owned_map(self, index, state):
        """Which of the archive's tags (untagged images: ids) this part brings."""
        owned = dict(state.get("owned") or {})
        for key in archive_keys(index):
            if key not in owned:
                owned[key] = self.engine.inspect("image", key) is None
        return owned

    def load(self, path, index):
        spec = self.spec
        why = (self.engine.capabilities.limit("gzip-load")
               if imagefiles.compression_of(path) == "gzip" else None)
        if why:
            option = "url" if spec.is_url else "path"
            raise self.opts.error(option, why + " (nothing was loaded)", spec.shown)
        state = self.state.load()
        # recorded before loading: a run killed during or right after the
        # load still knows which tags this part brought
        owned = self.owned_map(index, state)
        images = archive_keys(index)
        state.update({"owned": owned, "source": spec.source})
        self.state.save(state)
        self.log.info("Loading %s (%s)", spec.shown, ", ".join(sorted(images)))
        try:
            self.engine.feed(["load"], lambda out: imagefiles.stream(path, index.digest, out),
                             timeout=self.cmd_timeout(long=True))
        except archives_mod.ChecksumMismatch as exc:
            raise self.opts.error("path", "%s changed while it was loaded: %s" % (spec.shown, exc))
        for key, image_id in images.items():
            self.engine.forget("image", key)
            found = self.engine.image_id(key)
            if found != image_id:
                raise UserError("Part [%s] (%s): docker load succeeded but %s is %s, not the "
                                "archive's image %s" % (self.part, self.recipe, key,
                                                        found and found[7:19], image_id[7:19]))
        self.record(index, state, owned)

    def record(self, index, state, owned):
        """The state after the archive's images are in the engine; the images
        of the archive loaded before that this one does not hold are removed."""
        spec = self.spec
        images = archive_keys(index)
        stat = None if spec.is_url else _stat(spec.source)
        ident = spec.expected or ("url:" + spec.source if spec.is_url else index.digest)
        before = state.get("images") or {}
        state.update({"identity": ident, "digest": index.digest, "stat": stat, "owned": owned,
                      "source": spec.source, "images": images, "names": list(spec.names)})
        self.state.save(state)
        for ref, image_id in sorted(before.items()):
            if ref in images:
                continue
            if owned.get(ref) and not self.keep:
                _remove_if(self.engine, self.part, ref, image_id, self.log, self.cmd_timeout())
            owned.pop(ref, None)
        self.state.save(state)

    # -- uninstall ----------------------------------------------------------------------
    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        keep = Options(part, dict(old_options)).bool("keep", False)
        state = PartState.for_options(old_options)
        data = state.load() if state is not None else {}
        owned = data.get("owned") or {}
        return plan_reference_removals(part, observed, [
            (ref, owned.get(ref), image_id)
            for ref, image_id in sorted((data.get("images") or {}).items())], keep, why, "loaded")

    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """A reference this part loaded, still naming the image it loaded."""
        timeout = Options(part, dict(options)).duration("timeout", DEFAULT_TIMEOUT)
        state = PartState.for_options(options)
        image_id = ((state.load() if state is not None else {}).get("images") or {}).get(act.name)
        _remove_if(engine, part, act.name, image_id, log, timeout)


def archive_keys(index):
    """{tag: image id} of an archive (an untagged image: {id: id})."""
    keys = {}
    for image in index.images:
        for key in [_normal(tag) for tag in image.tags] or [image.id]:
            keys[key] = image.id
    return keys


def _remove_if(engine, part, ref, image_id, log, timeout):
    """Remove REF when it still names IMAGE_ID (the image this part loaded)."""
    current = engine.inspect("image", ref)
    if current is None:
        return
    if current["Id"] != image_id:
        log.info("Leaving %s: it names another image now (%s)", ref, current["Id"][7:19])
        return
    remove_reference(engine, part, ref, log, timeout)


def _stat(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


uninstall = Recipe.uninstaller()
