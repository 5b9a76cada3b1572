"""Buildout's configuration and record, as dockeroo reads them.

The parts a run constructed, which options other parts reference, whether a
run is a plain ``buildout`` (which uninstalls every part it no longer has),
and the parts uninstalled together with one, read from ``.installed.cfg``.
"""

import os
import re
import sys

from zc.buildout import UserError

from dockeroo.model.options import removal_settings
from dockeroo.model.ownership import OWNER_OPTION
from dockeroo.model.engines import engine_options


def referenced_options(buildout, part):
    """The options of PART that the configuration refers to (``${part:x}``,
    or ``${:x}`` in PART itself), read from the raw configuration."""
    raw = getattr(buildout, "_raw", None) or {}
    pattern = re.compile(r"\$\{([^:}]*):([^}]+)\}")
    found = set()
    for section, values in raw.items():
        for value in values.values():
            if isinstance(value, str) and "${" in value:
                found.update(m.group(2) for m in pattern.finditer(value)
                             if (m.group(1) or section) == part)
    return found


def plain_install(argv):
    """Whether ARGV is ``buildout [options] [assignments] [install]``: a run
    that uninstalls every installed part the configuration no longer has
    (``buildout install PART...`` uninstalls nothing else).  Parsed as
    zc.buildout's ``main()`` does; anything unexpected answers False."""
    if not argv or "buildout" not in os.path.basename(argv[0]):
        return False
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg.startswith("-"):
            op = arg[1:].lstrip("vqhWUoOnNDA")
            if op[:1] == "c":
                if len(op) == 1:
                    if not args:
                        return False
                    args.pop(0)
            elif op[:1] == "t":
                if not args:
                    return False
                args.pop(0)
            elif op:
                return False
        elif "=" in arg:
            continue
        else:
            return arg == "install" and not args
    return True


def dockeroo_entry(recipe):
    """The entry of a dockeroo recipe string (``docker.run`` of
    ``dockeroo:docker.run``, a version or extras allowed), else None."""
    dist, _, entry = (recipe or "").partition(":")
    dist = re.split(r"[\[<>=!~ ]", dist.strip(), maxsplit=1)[0]
    return entry.strip() or None if dist.lower() == "dockeroo" else None


def uninstalled_together(part, options, entries=None, installed=".installed.cfg",
                         configured=()):
    """The other parts of the recipes ENTRIES (``docker.volume``, ...; by
    default PART's own) that this buildout run uninstalls right after PART,
    as (part, options) pairs, so that one uninstall can remove all of their
    objects in one batch (parallel docker calls) instead of one part after
    the other.

    Called from a part's real (not deferred) uninstall.  Buildout has then
    already constructed every configured part, and in a plain ``buildout``
    run it uninstalls every installed part it did not construct, last
    installed first, taking each out of its record as it goes.  The
    installed parts are read from that record (``.installed.cfg`` in the
    buildout directory, the current directory while buildout runs); it
    must hold PART with these options.  Only the parts up to the first part
    of another recipe than dockeroo's are included (that part's uninstall
    sees everything still there that it would without the batch), and not
    parts kept (``keep = true``), parts of other buildouts and parts
    constructed in this run (CONFIGURED: (owner, part) pairs, the run's
    registry of configured parts).  An empty list when anything is uncertain:
    each part is then removed by its own uninstall.
    """
    owner = options.get(OWNER_OPTION)
    recipe = options.get("recipe")
    entries = set(entries or [dockeroo_entry(recipe)])
    if not owner or not recipe or not plain_install(sys.argv):
        return []
    try:
        import zc.buildout.configparser
        with open(installed) as handle:
            sections = zc.buildout.configparser.parse(handle, installed)
    except Exception:  # no record, or not one we can read: no batch
        return []
    mine = sections.get(part) or {}
    if any(mine.get(key) != options.get(key) for key in (OWNER_OPTION, "recipe", "name")):
        return []
    names = (sections.get("buildout") or {}).get("parts", "").split()
    if part not in names:
        return []
    found = []
    for other in reversed(names[:names.index(part)]):  # buildout's uninstall order
        values = sections.get(other)
        if not values or dockeroo_entry(values.get("recipe")) is None:
            break  # another recipe's uninstall comes first
        if (owner, other) in configured or dockeroo_entry(values.get("recipe")) not in entries:
            continue
        if values.get(OWNER_OPTION) != owner or engine_options(values) != engine_options(options):
            continue  # another buildout's, or another engine's
        values = {k: v.replace("$$", "$") for k, v in values.items()}
        try:
            if removal_settings(other, values)[0]:
                continue
        except UserError:  # its own uninstall reports it
            continue
        found.append((other, values))
    return found


# -- outputs and hints ----------------------------------------------------------------
REFERENCE_RE = re.compile(r"\$\{([^:}]*):([^}]*)\}")


def referenced_outputs(buildout, part, names, cache=None):
    """Which of NAMES other sections reference as ``${part:name}``.

    Read from the raw configuration (nothing gets initialized), scanned
    once per configuration, not once per part: CACHE (a dict the caller
    keeps, the run's) holds the last scan.
    """
    cache = {} if cache is None else cache
    raw = getattr(buildout, "_raw", None) or {}
    if cache.get("raw") is not raw:
        found = {}
        for values in raw.values():
            for value in values.values():
                if isinstance(value, str) and "${" in value:
                    for match in REFERENCE_RE.finditer(value):
                        found.setdefault(match.group(1), set()).add(match.group(2))
        cache.update(raw=raw, references=found)
    return cache["references"].get(part, set()) & set(names)
