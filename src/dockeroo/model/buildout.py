"""Buildout's configuration and record, as dockeroo reads them.

The one place that touches zc.buildout's internals: every other module asks
this one.  The parts a run constructed, which options other parts reference,
whether a run is a plain ``buildout`` (which uninstalls every part it no
longer has), the parts uninstalled together with one, read from
``.installed.cfg``, and what ``buildout install`` decides before it acts
(for ``dockeroo plan``).

Supported: zc.buildout 3, 4, 5 and 6 (:data:`SUPPORTED`).  Where buildout has
a public API (``buildout[section]``, ``Options.get``, ``UserError``) it is
used; what only a private name provides is listed here, with what each major
version has (measured on 3.4, 4.2.0, 5.2.0 and 6.0.1; see
``tests/unit/test_buildout_internals.py``, run on each by ``tox -e bo3`` ...
``tox -e bo6``):

=====================================  ======================================
``Buildout._raw``                      3-6: {section: options as written}
``Buildout._data``                     3-6: {section: Options initialized}
``Buildout._parts``                    3-6: parts in the order constructed
``Buildout._read_installed_part_options``  3-6: (record, whether it exists)
``Buildout._compute_part_signatures``  3-6
``Buildout._buildout_path``            3-6
``Buildout._logger``                   3-6
``Buildout._update_sys_path``          6 only; 3-5 put the develop-eggs
                                       directory first on ``sys.path``
``zc.buildout.buildout._save_options`` 3-6: writes one record section
``zc.buildout.configparser.parse``     3-6: reads a record
=====================================  ======================================
"""

import os
import re
import sys

from zc.buildout import UserError

from dockeroo.model.options import removal_settings
from dockeroo.model.ownership import OWNER_OPTION
from dockeroo.model.engines import engine_options

#: the zc.buildout major versions dockeroo runs on (each one tested)
SUPPORTED = (3, 4, 5, 6)


def buildout_version():
    from importlib.metadata import version
    return version("zc.buildout")


def buildout_major(text=None):
    """The major version of zc.buildout (TEXT, by default the installed one)."""
    text = text or buildout_version()
    try:
        return int(text.split(".")[0])
    except ValueError:
        return 0


def check_supported(version=None):
    """Raise a UserError when zc.buildout (VERSION, by default the installed
    one) is older than dockeroo supports (when a recipe's module is loaded,
    and by ``dockeroo plan``), before anything is created."""
    version = version or buildout_version()
    if 0 < buildout_major(version) < SUPPORTED[0]:
        raise UserError(
            "dockeroo needs zc.buildout %d or later (tested: %s); this buildout runs "
            "zc.buildout %s.  Upgrade it (pip install 'zc.buildout>=%d') and run "
            "buildout again; nothing was changed." % (
                SUPPORTED[0], ", ".join(str(v) for v in SUPPORTED), version, SUPPORTED[0]))


def raw_sections(buildout):
    """{section: {option: value as written}} of BUILDOUT's configuration
    (before substitution; nothing gets initialized)."""
    return getattr(buildout, "_raw", None) or {}


def initialized_sections(buildout):
    """{section: options} of the sections BUILDOUT has initialized so far
    (values substituted)."""
    return getattr(buildout, "_data", None) or {}


def constructed_parts(buildout):
    """The parts BUILDOUT constructed, in the order it installs them (the
    configured parts and those they refer to), or None."""
    parts = getattr(buildout, "_parts", None)
    return list(parts) if parts else None


def part_recipe(buildout, part):
    """The recipe object BUILDOUT constructed for PART (None if it has not)."""
    return getattr(buildout[part], "recipe", None)


def read_record(path):
    """{section: {option: value}} of the record (``.installed.cfg``) at PATH,
    as buildout reads it; raises OSError or buildout's parse errors."""
    import zc.buildout.configparser
    with open(path) as handle:
        return zc.buildout.configparser.parse(handle, path)


def write_record_section(handle, section, values):
    """Append SECTION with VALUES to the record open in HANDLE, in buildout's
    own format (multi-line values indented; values written as given: buildout
    escapes ``$`` as ``$$`` in the options it records itself)."""
    from zc.buildout.buildout import _save_options
    _save_options(section, values, handle)


def update_sys_path(buildout):
    """Make the develop eggs of BUILDOUT importable, as its ``install`` does
    before loading recipes (6: ``_update_sys_path``, which also reads the
    ``.pth`` files there; 3-5: the directory first on ``sys.path``)."""
    if buildout_major() >= 6:
        buildout._update_sys_path()
        return
    path = buildout["buildout"]["develop-eggs-directory"]
    if path not in sys.path:
        sys.path.insert(0, path)


# -- what buildout install decides (dockeroo plan) -----------------------------------
class _NoDirectories:
    """zc.buildout's ``os`` while its Buildout reads the configuration: it
    creates the eggs and download cache directories there; plan creates none."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def makedirs(self, *args, **kwargs):
        pass

    def mkdir(self, *args, **kwargs):
        pass


def load_buildout(config, options, user_defaults=True):
    """zc.buildout's Buildout for CONFIG, as ``bin/buildout`` constructs it
    (``main()``), without creating a directory."""
    import logging
    import zc.buildout.buildout as zb
    real_os = zb.os
    zb.os = _NoDirectories(real_os)
    quiet = logging.Filter()
    quiet.filter = lambda record: not str(record.msg).startswith("Creating directory")
    logging.getLogger("zc.buildout").addFilter(quiet)
    try:
        b = zb.Buildout(config, options, user_defaults, "install", ())
    finally:
        zb.os = real_os
        logging.getLogger("zc.buildout").removeFilter(quiet)
    # a recipe egg not installed yet is looked up locally only: plan downloads nothing
    b.offline, b.newest = True, False
    return b


def select_parts(b):
    """What buildout's ``install`` decides before it acts, without its side
    effects (no directories, develop eggs, upgrade, ``.installed.cfg``):
    (installed part options, parts to install or update in order,
    {changed part: its installed options})."""
    if b["buildout"].get("extensions", "").split():
        b._logger.warning("dockeroo plan: buildout extensions are not loaded (%s)",
                          b["buildout"]["extensions"])
    update_sys_path(b)
    installed, _ = b._read_installed_part_options()
    conf_parts = (b["buildout"]["parts"] or "").split()
    # construct the parts (and those they refer to), as buildout's install does
    [b[part]["recipe"] for part in conf_parts]
    install_parts = b._parts
    b._compute_part_signatures(install_parts)
    os.chdir(b["buildout"]["directory"])  # where buildout installs, updates, uninstalls
    return installed, install_parts, changed_parts(b, installed, install_parts)


def decided(b):
    """What the running buildout B decided (its ``install`` has constructed
    every part and computed their signatures): (installed part options,
    parts to install or update in order, {changed part: its installed
    options}).  Read-only."""
    installed, _ = b._read_installed_part_options()
    install_parts = list(getattr(b, "_parts", None) or [])
    return installed, install_parts, changed_parts(b, installed, install_parts)


def changed_parts(b, installed, install_parts):
    """{part: its installed options} of the installed parts of INSTALLED
    that buildout B installs again because their options (or files) changed."""
    changed = {}
    for part in (installed["buildout"]["parts"] or "").split():
        if part not in install_parts:
            continue
        old = installed[part].copy()
        files = old.pop("__buildout_installed__", "")
        if old == b.get(part) and all(os.path.exists(b._buildout_path(f))
                                      for f in files.split("\n") if f):
            continue
        changed[part] = installed[part].copy()
    return changed



REFERENCE_RE = re.compile(r"\$\{([^:}]*):([^}]+)\}")


def referenced_options(buildout, part, cache=None):
    """The options of PART that the raw configuration refers to (``${part:x}``,
    or ``${:x}`` in PART itself); scanned once per configuration: CACHE (a
    dict the caller keeps, the run's) holds the last scan."""
    cache = {} if cache is None else cache
    raw = raw_sections(buildout)
    if cache.get("raw") is not raw:
        found = {}
        for section, values in raw.items():
            for value in values.values():
                if isinstance(value, str) and "${" in value:
                    for match in REFERENCE_RE.finditer(value):
                        found.setdefault(match.group(1) or section, set()).add(match.group(2))
        cache.update(raw=raw, references=found)
    return cache["references"].get(part, set())


def plain_install(argv):
    """Whether ARGV is ``buildout [options] [assignments] [install]`` (which
    uninstalls every part the configuration no longer has), parsed as
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
    """(part, options) of the other parts of the recipes ENTRIES (by default
    PART's own) that this plain ``buildout`` run uninstalls right after PART
    (last installed first, read from the record INSTALLED, which must hold
    PART with these OPTIONS), so that one uninstall removes their objects in
    one batch.  It stops at the first part of another recipe than dockeroo's
    and leaves out parts kept, of other buildouts or engines, and those
    constructed in this run (CONFIGURED: (owner, part) pairs).  Empty when
    anything is uncertain: each part is then removed by its own uninstall.
    """
    owner = options.get(OWNER_OPTION)
    recipe = options.get("recipe")
    entries = set(entries or [dockeroo_entry(recipe)])
    if not owner or not recipe or not plain_install(sys.argv):
        return []
    try:
        sections = read_record(installed)
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



def referenced_outputs(buildout, part, names, cache=None):
    """Which of NAMES the configuration references as ``${part:name}``."""
    return referenced_options(buildout, part, cache) & set(names)
