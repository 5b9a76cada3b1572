"""The ``dockeroo`` command: ``dockeroo plan`` shows what ``bin/buildout``
would change in Docker, and why, without changing anything.

It reads the configuration as ``bin/buildout`` does (zc.buildout's own
``Buildout`` class: extends, ``${part:option}`` references, command-line
assignments), constructs the parts, decides as buildout's ``install``
which parts it would install, update or uninstall (comparing with
``.installed.cfg``), and asks every dockeroo part for its plan
(:meth:`dockeroo.runtime.recipe.Recipe.plan`) while :data:`dockeroo.mode.PLANNING`
is set: the engine then refuses any docker command that is not read-only,
and dockeroo writes no file.  See docs/plan.rst.
"""

import contextlib
import json
import os
import sys
import types

from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.model import plan as plan_mod
from dockeroo.model.buildout import check_supported, load_buildout, part_recipe, select_parts

USAGE = """\
dockeroo plan [-c buildout.cfg] [--json | --graph] [-N] [-n] [-o] [-O] [-v] [-q] [section:option=value ...]

Show what bin/buildout would change in Docker, and why, changing nothing.
--graph prints the objects, their users and the actions as Graphviz DOT.
Exit status: 0 nothing to do, 2 changes pending, 1 error."""

#: exit statuses (as terraform plan -detailed-exitcode)
NOTHING, ERROR, CHANGES = 0, 1, 2


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return NOTHING if argv else ERROR
    if argv[0] != "plan":
        print("dockeroo: unknown command %r\n\n%s" % (argv[0], USAGE), file=sys.stderr)
        return ERROR
    try:
        args = parse_plan_args(argv[1:])
    except UserError as exc:
        print("Error: %s" % exc, file=sys.stderr)
        return ERROR
    out = sys.stdout
    try:
        # buildout's log lines (warnings of the parts) go to stderr: stdout is the plan
        with contextlib.redirect_stdout(sys.stderr):
            result = make_plan(args.config, args.options, args.user_defaults)
            text = render_graph(result) if args.graph else None
    except (UserError, mode.PlanViolation) as exc:
        print("Error: %s" % exc, file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("Interrupted", file=sys.stderr)
        return 130
    if args.graph:
        out.write(text)
    elif args.json:
        out.write(json.dumps([entry_json(e) for _, e in result], indent=1) + "\n")
    else:
        out.write(render(result))
    return CHANGES if any(entry_changes(e) for _, e in result) else NOTHING


def parse_plan_args(args):
    """The arguments of ``dockeroo plan``, parsed as zc.buildout's ``main()``
    parses its own (short options may be combined: ``-No``)."""
    parsed = types.SimpleNamespace(config="buildout.cfg", options=[], json=False,
                                   graph=False, user_defaults=True)
    verbosity = 0
    args = list(args)
    while args:
        arg = args.pop(0)
        if arg == "--json":
            parsed.json = True
        elif arg == "--graph":
            parsed.graph = True
        elif arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(NOTHING)
        elif arg.startswith("-") and not arg.startswith("--"):
            op = arg[1:]
            while op and op[0] in "vqUoONn":
                flag = op[0]
                if flag == "v":
                    verbosity += 10
                elif flag == "q":
                    verbosity -= 10
                elif flag == "U":
                    parsed.user_defaults = False
                else:
                    parsed.options.append(("buildout", {"o": "offline", "O": "offline",
                                                        "n": "newest", "N": "newest"}[flag],
                                           "true" if flag in "on" else "false"))
                op = op[1:]
            if op[:1] == "c":
                value = op[1:] or (args.pop(0) if args else None)
                if not value:
                    raise UserError("No file name specified for option -c")
                parsed.config = value
            elif op:
                raise UserError("Invalid option %r (%s)" % ("-" + op[0], USAGE.splitlines()[0]))
        elif "=" in arg and not arg.startswith("-"):
            option, value = arg.split("=", 1)
            names = option.split(":")
            if len(names) == 1:
                names = ["buildout"] + names
            if len(names) != 2:
                raise UserError("Invalid option: %s" % option)
            parsed.options.append((names[0].strip(), names[1].strip(), value.strip()))
        else:
            raise UserError("unexpected argument %r (%s)" % (arg, USAGE.splitlines()[0]))
    if parsed.json and parsed.graph:
        raise UserError("give either --json or --graph (%s)" % USAGE.splitlines()[0])
    if verbosity:
        parsed.options.append(("buildout", "verbosity", str(verbosity)))
    return parsed


# -- what the plan holds ----------------------------------------------------------------
class PartEntry:
    """A part of another recipe (or one dockeroo cannot plan yet): what buildout does with it."""

    def __init__(self, part, recipe, verb, reason=None):
        self.part, self.recipe, self.verb, self.reason = part, recipe, verb, reason

    def line(self):
        if self.verb == "maybe":
            return "? maybe %s part %s: %s" % (self.recipe, self.part, self.reason)
        return "%s part %s" % (self.verb, self.part)


def entry_json(entry):
    if isinstance(entry, PartEntry):
        return {"part": entry.part, "kind": "part", "name": entry.part, "action": entry.verb,
                "reasons": [entry.reason] if entry.reason else [], "recipe": entry.recipe}
    return entry.json()


def entry_changes(entry):
    if isinstance(entry, PartEntry):
        return entry.verb in ("install", "uninstall", "maybe")
    return entry.changes


def render(entries):
    """The plan as text: the actions grouped under one header per part.
    ENTRIES: (recipe, Action or PartEntry) pairs."""
    lines, header = [], None
    for recipe, entry in entries:
        head = "[%s] (%s)" % (entry.part, recipe)
        if head != header:
            lines.append(head)
            header = head
        lines.append("  " + entry.line())
    lines.append(summary([e for _, e in entries]))
    return "\n".join(lines) + "\n"


def summary(entries):
    counts = {}
    for entry in entries:
        key = ("part " + entry.verb) if isinstance(entry, PartEntry) and entry.verb != "maybe" \
            else entry.verb
        counts[key] = counts.get(key, 0) + 1
    words = [("create", "to create"), ("recreate", "to recreate"), ("update", "to update"),
             ("repair", "to repair"), ("remove", "to remove"), ("maybe", "unknown (? maybe)"),
             ("unchanged", "unchanged")]
    shown = ["%d %s" % (counts[v], w) for v, w in words if counts.get(v)]
    parts = ["%d to %s" % (counts["part " + v], v) for v in ("install", "update", "uninstall")
             if counts.get("part " + v)]
    if not any(entry_changes(e) for e in entries):
        text = "No changes: Docker holds what the configuration describes."
        detail = ", ".join(shown + (["parts of other recipes: " + ", ".join(parts)] if parts else []))
        return text + (" (%s)" % detail if detail else "")
    text = "Plan: " + ", ".join(shown)
    if parts:
        text += "; parts of other recipes: " + ", ".join(parts)
    return text + "."


def render_graph(entries):
    """``--graph``: the plan ENTRIES as the run's graph of objects
    (:mod:`dockeroo.model.graph`), in Graphviz DOT, with the order a careful
    operator would follow (see docs/plan.rst)."""
    from dockeroo.model import graph as graph_mod
    from dockeroo.model.buildout import dockeroo_entry, read_record
    from dockeroo.model.engines import engine_from_options
    from dockeroo.model.options import Options
    from dockeroo.runtime import graph as run_graph
    from dockeroo.runtime.run import active
    run = active()
    configured = dict(run.configured) if run is not None else {}
    try:
        installed = read_record(os.path.join(run.directory if run else ".", ".installed.cfg"))
    except Exception:  # no record yet (or not one buildout reads): no removed part
        installed = {}
    # the engines of the removed parts, as their recorded options select them
    engines = {part: engine_from_options(Options(part, dict(values)))
               for part, values in installed.items() if part not in configured
               and dockeroo_entry(values.get("recipe"))}
    with engine_errors("buildout", "--graph"):
        graph, _ = run_graph.of_plan(entries, configured, engines)
    recipes = {e.part: r for r, e in entries}
    others = [(e.part, r, e.line()) for r, e in entries if isinstance(e, PartEntry)]
    try:
        steps = graph_mod.order(graph)
    except graph_mod.OrderError as exc:
        raise UserError("dockeroo plan --graph: %s" % exc) from None
    return graph_mod.dot(graph, steps, recipes, others)


# -- reading the configuration as bin/buildout does ---------------------------------------
def make_plan(config, options, user_defaults=True):
    """The plan of the buildout of CONFIG: (recipe, Action or PartEntry) pairs."""
    check_supported()
    mode.PLANNING = True
    from dockeroo.runtime.recipe import Recipe
    b = load_buildout(config, options, user_defaults)
    installed, install_parts, changed = select_parts(b)
    entries, images = [], {}
    # what buildout uninstalls first: the installed parts no longer configured
    for part in reversed(installed["buildout"]["parts"].split()):
        if part not in install_parts:
            entries += removal(part, installed[part].copy(), "part removed")
    # then the parts it installs or updates, in order
    for part in install_parts:
        recipe = part_recipe(b, part)
        name = b[part].get("recipe", "")
        old = changed.get(part)
        if not isinstance(recipe, Recipe):
            if old is not None:
                entries.append((old.get("recipe", ""),
                                PartEntry(part, old.get("recipe", ""), "uninstall")))
            verb = "update" if part in installed and old is None else "install"
            entries.append((name, PartEntry(part, name, verb)))
            continue
        if old is not None and old.get("recipe") != name:
            # another recipe now: the old configuration is uninstalled for real
            entries += removal(part, old, "part configuration changed")
            old = None
        elif old is None and part in installed:
            old = installed[part].copy()  # an update
        entries += plan_part(recipe, name, old, part in changed, images)
    recipes = {p: o.get("recipe", "") for p, o in installed.items()}
    recipes.update({p: b[p].get("recipe", "") for p in install_parts})
    configured = {p: part_recipe(b, p) for p in install_parts
                  if isinstance(part_recipe(b, p), Recipe)}
    listed = {(e.kind, e.name) for _, e in entries if isinstance(e, plan_mod.Action)}
    with engine_errors("buildout", "pending removals"):
        found = pending(b["buildout"]["parts-directory"], configured)
    for act in found:
        if (act.kind, act.name) not in listed:
            listed.add((act.kind, act.name))
            entries.append((recipes.get(act.part, "pending removal"), act))
    return entries


def removal(part, old, why):
    """The plan of uninstalling the configuration OLD of PART for real."""
    from dockeroo.runtime.run import recipe_class
    recipe = old.get("recipe", "")
    cls = recipe_class(recipe)
    if cls is None:
        return [(recipe, PartEntry(part, recipe, "uninstall"))]
    with engine_errors(part, recipe):
        return tagged(cls.plan_removal(observed_for(part, old), part, old, why), recipe)


def plan_part(recipe, name, old, changed, images):
    """The plan of the dockeroo part RECIPE (recipe NAME), installed with
    the options OLD before (None: new), CHANGED since."""
    part = recipe.part
    context = plan_mod.Context(old=old, images=images, planning=True)
    with engine_errors(part, name):
        actions = recipe.plan(context)
        if actions is None:
            return [(name, PartEntry(part, name, "maybe", "cannot plan this recipe yet"))]
        if changed and old is not None:
            actions = list(actions) + replaced(recipe, old, "part configuration changed")
    return tagged(actions, name)


@contextlib.contextmanager
def engine_errors(part, recipe):
    """An engine that fails to answer is the ``Error:`` line of the real run."""
    from dockeroo.engine.errors import DockerError
    from dockeroo.model.engines import failure_text
    try:
        yield
    except (DockerError, OSError) as exc:
        raise UserError("Part [%s] (%s): %s" % (part, recipe, failure_text(exc))) from None


def tagged(actions, recipe):
    """(RECIPE, action) for each of ACTIONS."""
    return [(recipe, act) for act in actions]


def observed_for(part, old):
    """What the engine the options OLD select holds (for a removal)."""
    from dockeroo.model.options import Options
    from dockeroo.model.engines import engine_from_options
    return plan_mod.Observed(engine_from_options(Options(part, dict(old))))


def replaced(recipe, old, why):
    """The removals of what the old configuration OLD of a changed part
    owned and the new one does not (done at the end of the real run)."""
    try:
        now = recipe.owned(recipe.options)
        gone = [o for o in recipe.owned(old) if o not in now]
    except (KeyError, ValueError):
        return []
    if not gone:
        return []
    new = {}
    for kind, name in now:
        new.setdefault(kind, name)
    out = []
    for act in type(recipe).plan_removal(observed_for(recipe.part, old), recipe.part, old, why):
        if (act.kind, act.name) not in gone:
            continue
        if act.verb == "remove" and act.kind in new:
            act = plan_mod.action(act.part, act.kind, act.name, "remove",
                                  "replaced by %s %s" % (act.kind, new[act.kind]))
        out.append(act)
    return out


def pending(parts_directory, configured):
    """What earlier runs left to remove (``parts/.dockeroo/pending``, see
    :mod:`dockeroo.runtime.run`), removed at the end of the real run:
    replaced images once unused, and the objects of configurations an
    interrupted run left (of a part removed since, or that its current
    configuration no longer owns).  CONFIGURED: part -> dockeroo recipe."""
    import urllib.parse
    from dockeroo.runtime.run import STATE_DIR
    from dockeroo.base.state import read_json
    from dockeroo.model.options import Options
    from dockeroo.model.engines import engine_from_options
    from dockeroo.model.ownership import is_owned, users as users_of
    from dockeroo.runtime.run import recipe_class
    folder = os.path.join(parts_directory, STATE_DIR, "pending")
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return []
    out = []
    for name in names:
        part = urllib.parse.unquote(name[:-5])
        for entry in read_json(os.path.join(folder, name), []):
            if not isinstance(entry, dict):
                continue
            if "options" in entry:
                old = dict(entry["options"])
                if part in configured:
                    out += replaced(configured[part], old, "left by an interrupted run")
                    continue
                cls = recipe_class(old.get("recipe"))
                if cls is not None:
                    out += cls.plan_removal(observed_for(part, old), part, old,
                                            "left by an interrupted run of a removed part")
                continue
            if "image" not in entry:
                continue
            engine = engine_from_options(Options(part, dict(entry.get("engine") or {})))
            image = entry["image"]
            obj = engine.inspect("image", image)
            if obj is None or obj.get("RepoTags") or not is_owned(obj, part, entry.get("owner")):
                continue  # gone, tagged again, or not ours: the run only forgets the record
            users = users_of(engine, "image", image)
            short = image.split(":", 1)[-1][:12]
            if users:
                out.append(plan_mod.action(
                    part, "image", image, "maybe", "image %s replaced earlier; removed at the "
                    "end of the run if no container uses it then (used now by %s)"
                    % (short, ", ".join(users))))
            else:
                out.append(plan_mod.action(part, "image", image, "remove",
                                           "image %s replaced earlier, removed once unused" % short))
    return out


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
