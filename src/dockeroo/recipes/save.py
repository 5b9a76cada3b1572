"""dockeroo:docker.save: images written to a file (``docker save``).

read -> plan -> apply (see :mod:`dockeroo.model.plan` and
docs/recipes/docker.save.rst).  The file is written (under a temporary name,
then renamed) when it is missing, changed, or an image id changed.
"""

import dataclasses
import glob
import os
from typing import Tuple


from dockeroo.base import mode
from dockeroo.model.plan import action, not_fingerprinted
from dockeroo.model.options import Options
from dockeroo.recipes.common import imagefiles
from dockeroo.recipes.common.registry import (STATE_FILE, STATE_OPTION, PartState, StateRecipe,
                                              require_local)

TEMPORARY = ".dockeroo-save-"


@dataclasses.dataclass(frozen=True)
class Spec:
    images: Tuple[str, ...]
    path: str
    compression: str
    state_path: str = not_fingerprinted()


def read(opts, part, directory, parts_directory):
    """The part's options -> Spec (every mistake a UserError)."""
    images = []
    for line in opts.lines("name", aliases=("images", "image")):
        for word in line.split():
            ref = opts.image_ref("name", word)
            if ref not in images:
                images.append(ref)
    if not images:
        raise opts.error("name", "is required: the images to save, one or more references")
    given = opts.text("path")
    compression = opts.choice("compression", tuple(imagefiles.COMPRESSIONS))
    if given is None:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in part)
        path = os.path.join(parts_directory, part,
                            safe + imagefiles.COMPRESSIONS[compression or "none"])
    else:
        path = opts.path("path", directory)
        if given.endswith("/") or os.path.isdir(path):
            raise opts.error("path", "is a folder: give the file's path", given)
        if os.path.islink(path):
            raise opts.error("path", "is a symbolic link: give the file's real path", given)
        if os.path.exists(path) and not os.path.isfile(path):
            raise opts.error("path", "exists and is not a regular file", given)
        if not os.path.isdir(os.path.dirname(path)):
            inside = os.path.abspath(path).startswith(os.path.abspath(directory) + os.sep)
            if not inside:
                raise opts.error("path", "the folder %s does not exist (only folders inside "
                                 "the buildout directory are created)" % os.path.dirname(path),
                                 given)
    return Spec(images=tuple(images), path=path,
                compression=compression or imagefiles.compression_for(path),
                state_path=os.path.join(parts_directory, part, STATE_FILE))


def file_stat(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def plan(part, spec, observed, context, state, on_disk):
    """[Action] for the file of SPEC.  STATE: the part's state file (what it
    wrote last); ON_DISK: the file's :func:`file_stat` now (None: missing)."""
    ids, reasons = {}, []
    for ref in spec.images:
        image, rebuilt = require_local(part, "docker.save", observed, context, ref,
                                       "built, pulled or loaded")
        if rebuilt is not None:
            reasons.append("image %s will be rebuilt" % ref)
        ids[ref] = (image or {}).get("Id")
    acts = []  # the file of an older path: Recipe.replaced_removals
    old = context.old or {}
    written = state.get("images") or {}
    if state.get("path") != spec.path or on_disk is None:
        if state.get("path") == spec.path:
            verb, why = "repair", ["file %s is missing (removed by hand?)" % spec.path]
        elif old:
            verb, why = "create", ["option 'path' changed"]
        else:
            verb, why = "create", ["new part"]
        return acts + [action(part, "file", spec.path, verb, *why, data=ids)]
    if on_disk != state.get("stat"):
        return acts + [action(part, "file", spec.path, "repair", "file %s changed since this part "
                              "wrote it" % spec.path, data=ids)]
    if state.get("compression") != spec.compression:
        reasons.append("option 'compression' changed")
    if list(written) != list(spec.images):
        reasons.append("the images to save changed")
    for ref in spec.images:
        if ref in written and ids[ref] and written[ref] != ids[ref]:
            reasons.append("image %s changed (id %s -> %s)" % (ref, written[ref][7:19],
                                                               ids[ref][7:19]))
    if reasons:
        return acts + [action(part, "file", spec.path, "recreate", *reasons, data=ids)]
    return acts + [action(part, "file", spec.path, "unchanged", data=ids)]


class Recipe(StateRecipe):
    recipe = "docker.save"
    has_name = False
    known_options = ("images", "image", "sha256")

    def setup(self):
        self.spec = read(self.opts, self.part, self.directory, self.parts_directory)
        self.state = PartState(self.spec.state_path)
        self.options[STATE_OPTION] = self.state.path
        self.options["path"] = self.spec.path
        self.options["compression"] = self.spec.compression
        data = self.state.load()
        # the digest of the file as this part wrote it (see the docs: a part
        # reading ${part:sha256} in the run that rewrites the file sees the old one)
        current = data.get("path") == self.spec.path and data.get("stat") == file_stat(
            self.spec.path)
        self.options["sha256"] = data.get("sha256", "") if current else ""

    @classmethod
    def owned(cls, values):
        return []

    def plan(self, context):
        return plan(self.part, self.spec, self.observed(), context, self.state.load(),
                    file_stat(self.spec.path))

    def apply(self, actions):
        self.drop_temporaries(self.spec.path)
        for act in actions:
            if act.kind == "file" and act.name == self.spec.path and act.changes:
                self.write(act.data)
        return []

    def write(self, ids):
        spec = self.spec
        mode.check_writable("write %s" % spec.path)
        folder = os.path.dirname(spec.path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, "%s%s%s" % (TEMPORARY, os.path.basename(spec.path),
                                               "-%d" % os.getpid()))
        self.on_failure(lambda: imagefiles.remove_quietly(tmp))
        self.log.info("Saving %s to %s", ", ".join(spec.images), spec.path)
        with open(tmp, "wb") as out:
            self.engine.reader(["save"] + list(spec.images),
                               lambda src: imagefiles.copy_into(src, out, spec.compression),
                               timeout=self.cmd_timeout(long=True))
            out.flush()
            os.fsync(out.fileno())
        # the ids the file holds: what was saved (the tags may have moved meanwhile)
        index = {ref: self.engine.image_id(ref) for ref in spec.images}
        digest = imagefiles.file_digest(tmp).split(":", 1)[1]
        os.replace(tmp, spec.path)
        state = {"path": spec.path, "images": index, "sha256": digest,
                 "compression": spec.compression, "stat": file_stat(spec.path)}
        self.state.save(state)

    @staticmethod
    def drop_temporaries(path):
        """Remove what an interrupted run left next to PATH."""
        pattern = os.path.join(glob.escape(os.path.dirname(path)),
                               TEMPORARY + glob.escape(os.path.basename(path)) + "-*")
        for leftover in glob.glob(pattern):
            imagefiles.remove_quietly(leftover)

    # -- changed configuration and uninstall ---------------------------------------------
    def replaced_removals(self, observed, old, why):
        """The file of the old path, when the path changed: removed if this
        part wrote it (its state names it, or the new file that replaced it)."""
        old_path = old.get("path")
        if not old_path or old_path == self.spec.path or not os.path.exists(old_path):
            return []
        if Options(self.part, dict(old)).bool("keep", False):
            return [action(self.part, "file", old_path, "unchanged", "keep = true: left in place")]
        if self.state.load().get("path") not in (old_path, self.spec.path):
            return [action(self.part, "file", old_path, "unchanged", "not written by this part")]
        return [action(self.part, "file", old_path, "remove", "replaced by file %s"
                       % self.spec.path)]

    def forget_replaced(self, old):
        if old.get("path") and old["path"] != self.spec.path:
            self.drop_temporaries(old["path"])

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        path = old_options.get("path")
        if not path or not os.path.exists(path):
            return []
        if Options(part, dict(old_options)).bool("keep", False):
            return [action(part, "file", path, "unchanged", "keep = true: left in place")]
        state = PartState.for_options(old_options)
        if state is None or state.load().get("path") != path:
            return [action(part, "file", path, "unchanged", "not written by this part")]
        return [action(part, "file", path, "remove", why)]

    @classmethod
    def uninstalled(cls, part, options, log):
        """What a killed run's save left next to the file (its removal, if
        this part wrote it, is the removal plan's, kept or not)."""
        if options.get("path"):
            cls.drop_temporaries(options["path"])
        super().uninstalled(part, options, log)  # the state file


uninstall = Recipe.uninstaller()
