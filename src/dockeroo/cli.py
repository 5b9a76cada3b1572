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
import sys
import types

from zc.buildout import UserError

from dockeroo.base import mode
from dockeroo.model.buildout import check_supported, load_buildout, part_recipe, select_parts
from dockeroo.runtime import runplan
from dockeroo.runtime.runplan import PartEntry

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
    entries = result.entries
    if args.graph:
        out.write(text)
    elif args.json:
        out.write(json.dumps([entry_json(e) for _, e in entries], indent=1) + "\n")
    else:
        out.write(render(entries))
    refusal = result.refusal()
    if refusal:  # the run refuses before it changes anything: so does the plan
        out.flush()
        print("Error: %s" % refusal, file=sys.stderr)
        return ERROR
    return CHANGES if any(entry_changes(e) for _, e in entries) else NOTHING


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


def render_graph(result):
    """``--graph``: the RunPlan RESULT (the run's graph of objects,
    :mod:`dockeroo.model.graph`) in Graphviz DOT, with the order the run
    follows (see docs/plan.rst)."""
    from dockeroo.model import graph as graph_mod
    entries = result.entries
    recipes = {e.part: r for r, e in entries}
    others = [(e.part, r, e.line()) for r, e in entries if isinstance(e, PartEntry)]
    return graph_mod.dot(result.graph, result.order, recipes, others)


# -- reading the configuration as bin/buildout does ---------------------------------------
def make_plan(config, options, user_defaults=True):
    """The plan of the buildout of CONFIG, on its graph and in the order
    the run follows: a :class:`dockeroo.runtime.runplan.RunPlan`."""
    check_supported()
    mode.PLANNING = True
    b = load_buildout(config, options, user_defaults)
    installed, install_parts, changed = select_parts(b)
    entries = runplan.plan_run(b, installed, install_parts, changed)
    configured = runplan.configured_recipes(install_parts, lambda p: part_recipe(b, p))
    with runplan.engine_errors("buildout", "graph"):
        engines = runplan.removed_engines(b["buildout"]["directory"], configured,
                                          b["buildout"]["parts-directory"])
        return runplan.graph_of(entries, configured, engines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
