"""Plan helpers shared by the Gentoo recipes (bootstrap, build, diskimage)."""

import re

from zc.buildout import UserError

from dockeroo.model.ownership import LABEL_FINGERPRINT, is_owned, labels_of
from dockeroo.model.plan import action


#: the recorded option that holds a part's whole fingerprint
FINGERPRINT = "fingerprint"
#: what an earlier part's action does to an image, as a plan reason says it
DONE_TO_IMAGE = {"create": "created", "recreate": "rebuilt", "repair": "rebuilt",
                 "maybe": "checked", "update": "updated"}


def ours(part, observed, owner, kind, name, option):
    """The inspect JSON of KIND NAME, None when it does not exist; a UserError
    when another part or buildout made it (OPTION chooses the name)."""
    obj = observed.get(kind, name)
    if obj is not None and not is_owned(obj, part, owner):
        raise UserError("Part [%s]: %s %s exists and was not made by this part; "
                        "remove it or choose another %s name (option '%s')"
                        % (part, kind, name, kind, option))
    return obj


def label(obj, key=LABEL_FINGERPRINT):
    return labels_of(obj).get(key)


def changed(context, options, describe=None):
    """Reasons naming what differs from the part's previous configuration."""
    return context.changed_options(options, ignore=(FINGERPRINT,), describe=describe)


def missing(part, kind, name, context, options, name_option, describe=None):
    """The action for KIND NAME that does not exist: create (a new part, a
    changed configuration) or repair (removed by hand)."""
    old = context.old
    if old is None:
        return action(part, kind, name, "create", "new part")
    if old.get(name_option) != options.get(name_option):
        return action(part, kind, name, "create", "option %r changed (was %s)"
                      % (name_option, old.get(name_option)))
    reasons = changed(context, options, describe)
    if reasons:
        return action(part, kind, name, "create", *reasons)
    return action(part, kind, name, "repair", "%s %s is missing (removed by hand?)" % (kind, name))


def image_changes(context, refs):
    """(verb, reasons) for the images REFS ((option, ref) pairs) that earlier
    parts of ``dockeroo plan`` will change: verb ``maybe`` when one of them
    may change, ``recreate`` when one will, None when none will."""
    verb, reasons = None, []
    for _option, ref in refs:
        act = context.image_change(ref) if ref else None
        if act is None:
            continue
        reasons.append("image %s will be %s%s" % (ref, DONE_TO_IMAGE.get(act.verb, act.verb),
                                                 " (%s)" % "; ".join(act.reasons)
                                                 if act.reasons else ""))
        verb = "maybe" if act.verb == "maybe" and verb != "recreate" else "recreate"
    return verb, reasons


def retired(act, current, context):
    """The removal of CURRENT (the image ACT rebuilds under its tag) at the end
    of the run: ``maybe``, as it stays while a container or a child image
    uses it.  [] unless ACT recreates an existing image, and in a real run
    (the end of the run logs what it removes)."""
    if not context.planning or act.verb != "recreate" or current is None:
        return []
    return [action(act.part, "image", current["Id"], "maybe",
                   "replaced by the new %s, removed at the end of the run unless a container "
                   "or an image still uses it" % act.name)]


def without_temporaries(actions):
    """Removal ACTIONS without the temporary containers left alone: they exist
    only when a run was killed (their removal is shown then)."""
    return [a for a in actions if not (a.kind == "container" and a.verb == "unchanged")]


def image_id(part, observed, option, ref, where):
    """The id of image REF (named by OPTION); a UserError when there is none."""
    data = observed.get("image", ref)
    if data is None:
        raise UserError("Part [%s], option %r = %r: no such image on %s"
                        % (part, option, ref, where))
    return data["Id"]


DEFAULT_COMMAND = ["/bin/freeze"]

def name_from(text, fallback=""):
    """TEXT (a part name, an image reference) made a container name's start:
    other characters become '_', no leading '_ . -'; FALLBACK if nothing is left."""
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", text).lstrip("_.-") or fallback


def container_name(opts, option, default):
    return opts.object_name(option, opts.text(option, default=default))
