"""Is ``dockeroo plan`` exact?  Plan, then run, then compare.

``plan_of(buildout, *args)`` runs ``dockeroo plan --json`` in a test's
buildout directory.  ``classify(argv_list)`` turns the docker commands a
run started (recorded by the ``docker_recorder`` fixture) into what they
did to which object: ``{(kind, name): {effect, ...}}``, read-only commands
left out.  ``assert_plan_matches_run(buildout, recorder, *args)`` plans
(checking that every docker command the plan started is read-only), runs
``bin/buildout`` with the same arguments, and compares each object's plan
verb with what the run did to it:

=============  ==========================================================
plan verb      the run must
=============  ==========================================================
create         make the object (a container started back counts for a
repair         stopped container that is repaired, an update in place for
               a service changed by hand)
recreate       remove and make it again, or rebuild the image under its tag
update         change it in place (no removal)
remove         remove it
unchanged      run no mutating command naming it
maybe          anything
=============  ==========================================================

An object the run changed that the plan does not name is a mismatch too
(unless a part could not plan: ``? maybe ... part X``, or IGNORE says so).

The classifier is a table (:data:`COMMANDS`): a command unknown to it
that is not read-only is reported (``("unknown", argv0)``), so a new
command shows up instead of being missed; add a row for it.
"""

import json
import os
import re
import sys
from dataclasses import dataclass, field

from support.buildout import DOCKEROO, run_process

#: effects that make an object, remove it, or change it in place
MADE = {"create", "build", "import", "commit", "pull", "tag", "complete",
        "push"}  # a first push makes the image in the registry
REMOVED = {"remove"}
CHANGED = {"start", "stop", "update", "push", "exec", "copy-in", "connect", "disconnect",
           "set-aside", "kill", "restart", "pause", "unpause"}

LABEL_TEMPORARY = "io.dockeroo.temporary"
#: the object ``docker load`` makes (its tags are in the archive, not the argv)
LOADED = "(loaded)"


class PlanResult(tuple):
    """``(exit code, actions)``; also ``.output`` (stdout) and ``.stderr``."""

    def __new__(cls, code, actions, output, stderr):
        self = super().__new__(cls, (code, actions))
        self.code, self.actions, self.output, self.stderr = code, actions, output, stderr
        return self


def plan_of(buildout, *args, env=None, json_output=True):
    """Run ``dockeroo plan [--json] ARGS`` in BUILDOUT's directory (``-N`` as
    ``buildout.run`` adds it, unless ``-n`` is given)."""
    environ = dict(os.environ)
    environ.update(env or {})
    # a venv made before the console script existed: the module does the same
    program = [DOCKEROO] if os.path.exists(DOCKEROO) else [sys.executable, "-m", "dockeroo.cli"]
    argv = program + ["plan"] + (["--json"] if json_output else []) + \
        ([] if "-n" in args else ["-N"]) + list(args)
    proc = run_process(argv, cwd=buildout.directory, env=environ, timeout=600)
    actions = []
    if json_output and proc.returncode in (0, 2):
        actions = json.loads(proc.stdout)
    return PlanResult(proc.returncode, actions, proc.stdout, proc.stderr)


# -- the classifier ----------------------------------------------------------------------
#: options that take a value, per command (only those dockeroo uses need to be here:
#: a positional argument is found by skipping them)
VALUE_OPTIONS = {
    "global": {"-H", "--host", "--context", "-c", "--config", "--log-level", "-l",
               "--tlscacert", "--tlscert", "--tlskey"},
    "volume create": {"-d", "--driver", "-o", "--opt", "--label", "--name"},
    "network create": {"-d", "--driver", "-o", "--opt", "--label", "--subnet", "--gateway",
                       "--ip-range", "--aux-address", "--ipam-driver", "--ipam-opt", "--scope",
                       "--config-from"},
    "network connect": {"--alias", "--ip", "--ip6", "--link", "--link-local-ip",
                        "--driver-opt"},
    "stop": {"-t", "--time", "-s", "--signal"},
    "restart": {"-t", "--time", "-s", "--signal"},
    "kill": {"-s", "--signal"},
    "rm": set(),
    "import": {"-c", "--change", "-m", "--message", "--platform"},
    "commit": {"-a", "--author", "-c", "--change", "-m", "--message"},
    "tag": set(),
    "push": set(),
    "pull": {"--platform"},
    "exec": {"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"},
    "service update": {"--image", "--env-add", "--env-rm", "--label-add", "--label-rm",
                       "--replicas", "--secret-add", "--secret-rm", "--config-add",
                       "--config-rm", "--publish-add", "--publish-rm", "--network-add",
                       "--network-rm", "--mount-add", "--mount-rm", "--update-order",
                       "--constraint-add", "--constraint-rm", "--args", "--entrypoint",
                       "--user", "--workdir", "--limit-cpu", "--limit-memory", "--mode",
                       "--update-parallelism", "--update-delay", "--update-failure-action",
                       "--stop-grace-period", "--health-cmd", "--restart-condition"},
    "secret create": {"-d", "--driver", "-l", "--label", "--template-driver"},
    "config create": {"-l", "--label", "--template-driver"},
    "manifest annotate": {"--os", "--arch", "--variant", "--os-features", "--os-version"},
}

#: words that name the same command (``container run`` is ``run``, ...)
ALIASES = {
    ("container", "run"): "run", ("container", "create"): "create", ("container", "rm"): "rm",
    ("container", "remove"): "rm", ("container", "start"): "start",
    ("container", "stop"): "stop", ("container", "rename"): "rename",
    ("container", "restart"): "restart", ("container", "kill"): "kill",
    ("container", "exec"): "exec", ("container", "cp"): "cp", ("container", "commit"): "commit",
    ("container", "update"): "container update",
    ("image", "build"): "build", ("buildx", "build"): "build", ("builder", "build"): "build",
    ("image", "tag"): "tag", ("image", "rm"): "rmi", ("image", "remove"): "rmi",
    ("image", "pull"): "pull", ("image", "push"): "push", ("image", "import"): "import",
    ("image", "load"): "load",
    ("volume", "remove"): "volume rm", ("network", "remove"): "network rm",
    ("service", "remove"): "service rm", ("secret", "remove"): "secret rm",
    ("config", "remove"): "config rm",
}


def _positionals(args, values):
    """ARGS without their options (and the values of VALUES options)."""
    out, it = [], iter(args)
    for arg in it:
        if arg == "--":
            out += list(it)
            break
        if arg.startswith("-") and arg != "-":
            if "=" not in arg and arg in values:
                next(it, None)
            continue
        out.append(arg)
    return out


def _option_values(args, names):
    """The values of the options NAMES in ARGS (``--tag X``, ``--tag=X``, ``-tX``)."""
    found, it = [], iter(args)
    for arg in it:
        for name in names:
            if arg == name:
                value = next(it, None)
                if value is not None:
                    found.append(value)
            elif arg.startswith(name + "="):
                found.append(arg[len(name) + 1:])
            elif len(name) == 2 and arg.startswith(name) and not arg.startswith("--"):
                found.append(arg[2:])
    return found


def _labels(args):
    return dict(v.partition("=")[::2] for v in _option_values(args, ("--label", "-l")))


def _container_made(cmd, args):
    names = _option_values(args, ("--name",))
    if not names:
        return []  # an anonymous helper container: no object of a part
    return [("container", names[0], "create", _labels(args).get(LABEL_TEMPORARY))]


def _every(kind, effect, values=()):
    return lambda cmd, args: [(kind, n, effect, None) for n in _positionals(args, set(values))]


def _last(kind, effect):
    return lambda cmd, args: [(kind, p[-1], effect, None)
                              for p in [_positionals(args, VALUE_OPTIONS.get(cmd, set()))] if p]


def _nth(kind, effect, index):
    def classify(cmd, args):
        pos = _positionals(args, VALUE_OPTIONS.get(cmd, set()))
        return [(kind, pos[index], effect, None)] if len(pos) > index else []
    return classify


def _build(cmd, args):
    return [("image", tag, "build", None) for tag in _option_values(args, ("-t", "--tag"))]


def _rename(cmd, args):
    pos = _positionals(args, set())
    return [("container", pos[0], "rename", pos[1])] if len(pos) == 2 else []


def _copy(cmd, args):
    pos = _positionals(args, set())
    if len(pos) == 2 and ":" in pos[1]:  # docker cp SRC CONTAINER:PATH writes into it
        return [("container", pos[1].split(":", 1)[0], "copy-in", None)]
    return []


def _network_attach(effect):
    def classify(cmd, args):
        pos = _positionals(args, VALUE_OPTIONS["network connect"])
        return [("container", pos[1], effect, None)] if len(pos) > 1 else []
    return classify


def _service_create(cmd, args):
    return [("service", n, "create", None) for n in _option_values(args, ("--name",))[:1]]


#: command -> function (command, args after it) -> [(kind, name, effect, extra)]
COMMANDS = {
    "volume create": lambda cmd, args: [
        ("volume", n, "create", None) for n in (_option_values(args, ("--name",))
                                                or _positionals(args, VALUE_OPTIONS[cmd])[-1:])],
    "volume rm": _every("volume", "remove"),
    "network create": _last("network", "create"),
    "network rm": _every("network", "remove"),
    "network connect": _network_attach("connect"),
    "network disconnect": _network_attach("disconnect"),
    "run": _container_made,
    "create": _container_made,
    "rm": _every("container", "remove"),
    "start": _every("container", "start", ("--detach-keys",)),
    "stop": _every("container", "stop", VALUE_OPTIONS["stop"]),
    "restart": _every("container", "restart", VALUE_OPTIONS["restart"]),
    "kill": _every("container", "kill", VALUE_OPTIONS["kill"]),
    "pause": _every("container", "pause"),
    "unpause": _every("container", "unpause"),
    "container update": _last("container", "update"),
    "rename": _rename,
    "exec": _nth("container", "exec", 0),
    "cp": _copy,
    "build": _build,
    "tag": _nth("image", "tag", 1),
    "rmi": _every("image", "remove"),
    "pull": _nth("image", "pull", 0),
    "push": _nth("image", "push", 0),
    "import": _nth("image", "import", 1),
    "commit": _nth("image", "commit", 1),
    # which tags a load makes is in the archive, not in the argv: see compare()
    "load": lambda cmd, args: [("image", LOADED, "import", None)],
    "export": lambda cmd, args: [],  # reads a container (docker.gentoo-diskimage's base)
    "service create": _service_create,
    "service update": _last("service", "update"),
    "service rm": _every("service", "remove"),
    "secret create": _nth("secret", "create", 0),
    "secret rm": _every("secret", "remove"),
    "config create": _nth("config", "create", 0),
    "config rm": _every("config", "remove"),
    "manifest create": lambda cmd, args: [
        ("manifest", p[0], "create", None) for p in [_positionals(args, set())] if p],
    "manifest annotate": lambda cmd, args: [],  # the client's local copy of a list
    "manifest push": lambda cmd, args: [
        ("manifest", p[0], "push", None) for p in [_positionals(args, set())] if p],
    "manifest rm": lambda cmd, args: [],
}


def _command(argv):
    """(command name, its arguments) of one docker argv, global options skipped."""
    args = list(argv)
    while args and args[0].startswith("-") and args[0] not in ("--version",):
        opt = args.pop(0)
        if opt in VALUE_OPTIONS["global"] and "=" not in opt and args:
            args.pop(0)
    if not args:
        return None, []
    first = args[0]
    second = args[1] if len(args) > 1 else None
    if (first, second) in ALIASES:
        return ALIASES[(first, second)], args[2:]
    if second is not None and "%s %s" % (first, second) in COMMANDS:
        return "%s %s" % (first, second), args[2:]
    return first, args[1:]


def classify(argvs, made_ids=()):
    """{(kind, name): set of effects} for the mutating commands of ARGVS.

    MADE_IDS are the ids the run's imports, commits and builds printed
    (``DockerRecorder.made_ids``): an image removed by one of them was made
    and removed by the run, a helper (the untagged import a committed image
    was made from, a build step's image: Podman leaves both), not a part's
    object.

    Containers dockeroo makes under a temporary name (``NAME-dockeroo-new-RUN``,
    or labelled ``io.dockeroo.temporary``) and renames to NAME count as NAME;
    a container set aside (``rename NAME ASIDE``) and removed later counts as
    NAME too; a temporary never renamed (say, the container a committed image
    is made in) is a helper and is ignored.  Image
    references are normalized (``x`` -> ``docker.io/library/x:latest``)."""
    from dockeroo.engine.commands import plan_safe
    records = []
    for argv in argvs:
        cmd, args = _command(argv)
        if cmd is None or plan_safe(argv):
            continue
        handler = COMMANDS.get(cmd)
        if handler is None:
            if not _read_only(argv):
                records.append(("unknown", " ".join(argv[:2]), "unknown", None))
            continue
        records += handler(cmd, args)
    temporaries = {name for kind, name, effect, temp in records
                   if kind == "container" and effect == "create" and temp}
    alias = {}
    for kind, name, effect, extra in records:
        if effect != "rename":
            continue
        if name in temporaries or "-dockeroo-new-" in name:
            alias[name] = extra          # completion: the temporary becomes NAME
        else:
            alias[extra] = name          # NAME set aside under EXTRA
    effects = {}
    for kind, name, effect, extra in records:
        if kind == "container":
            if effect == "rename":
                if name in temporaries or "-dockeroo-new-" in name:
                    target, effect = extra, "complete"
                else:
                    target, effect = name, "set-aside"
            else:
                target = alias.get(name)
                if target is None:
                    if name in temporaries or "-dockeroo-new-" in name:
                        continue  # a helper container, never renamed: not a part's object
                    if "-dockeroo-" in name:
                        target = name.split("-dockeroo-", 1)[0]
                    else:
                        target = name
            name = target
        elif kind == "image":
            if effect == "remove" and _is_made(name, made_ids):
                continue
            name = normal_image(name)
        effects.setdefault((kind, name), set()).add(effect)
    # docker.push tags the image for the push and removes the tag right after:
    # a temporary tag, which neither makes nor removes anything (docker.manifest
    # loads a member with a corrected config under that tag instead of tagging it)
    loaded = ("image", LOADED) in effects
    for key, got in effects.items():
        if key[0] == "image" and {"remove", "push"} <= got and ("tag" in got or loaded):
            got -= {"tag", "remove"}
    return effects


def _is_made(ref, made_ids):
    """Whether REF (an image id, possibly short) is one of MADE_IDS (ids or
    their prefixes: Podman's build prints 11 digits)."""
    ref = ref.split(":", 1)[-1] if ref.startswith("sha256:") else ref
    if not re.fullmatch(r"[0-9a-f]{11,64}", ref):
        return False
    made = [m.split(":", 1)[-1] for m in made_ids]
    return any(m.startswith(ref) or ref.startswith(m) for m in made if len(m) >= 11)


def _read_only(argv):
    from dockeroo.engine.commands import _read_only as engine_read_only
    return engine_read_only(argv)


def normal_image(ref):
    from dockeroo.model.plan import normal_ref
    return ref if ref.startswith("sha256:") else normal_ref(ref)


def plan_key(act):
    name = act["name"]
    return (act["kind"], normal_image(name) if act["kind"] == "image" else name)


# -- plan against run ---------------------------------------------------------------------
def verb_matches(verb, effects, kind):
    """Whether the run's EFFECTS on one object agree with the plan VERB."""
    if verb == "maybe":
        return True
    if verb == "unchanged":
        return not effects
    if verb == "remove":
        return "remove" in effects
    if verb in ("create", "repair"):
        if verb == "repair" and kind == "container" and "start" in effects:
            return True  # a stopped container started again
        if verb == "repair" and kind == "service" and effects == {"update"}:
            return True  # a service changed by hand updated back in place
        return bool(effects & MADE)
    if verb == "recreate":
        if kind == "image":
            return bool(effects & {"build", "import", "commit"})
        return "remove" in effects and bool(effects & MADE)
    if verb == "update":
        return bool(effects) and "remove" not in effects
    return False


@dataclass
class Exactness:
    plan: list               # the plan's actions (JSON objects)
    code: int                # dockeroo plan's exit status
    effects: dict            # (kind, name) -> effects of the real run
    run: object              # the BuildoutRun
    plan_calls: list = field(default_factory=list)  # docker argv the plan started
    run_calls: list = field(default_factory=list)   # docker argv the run started


def compare(actions, effects, ignore=None):
    """Mismatches (text lines) between plan ACTIONS and run EFFECTS."""
    problems = []
    planned = {}
    for act in actions:
        if act["kind"] == "part":
            continue
        planned.setdefault(plan_key(act), []).append(act)
    cannot_plan = [a for a in actions if a["kind"] == "part" and a["action"] == "maybe"]
    # a load makes the tags its archive holds: the images planned to change that no
    # command names were made by it, and it is planned when one of them is
    loaded = effects.get(("image", LOADED))
    load_planned = False
    for key, acts in planned.items():
        got = effects.get(key, set())
        if loaded and not got and key[0] in ("image", "archive") and any(
                a["action"] not in ("unchanged", "remove") for a in acts):
            got, load_planned = set(loaded), True
        verbs = {a["action"] for a in acts}
        # an object two parts name (a changed part's old and new configuration): any verb fits
        if not any(verb_matches(v, got, key[0]) for v in verbs):
            problems.append("%s %s: plan says %s, the run did %s" % (
                key[0], key[1], "/".join(sorted(verbs)), ", ".join(sorted(got)) or "nothing"))
    for key, got in sorted(effects.items()):
        if key in planned or (ignore and ignore(key, got)):
            continue
        if key == ("image", LOADED) and (load_planned or any(
                (k[0] == "image" and "push" in effects.get(k, ())) for k in planned)):
            continue
        if cannot_plan and key[0] != "unknown":
            continue  # a part that cannot plan yet may have done it
        problems.append("%s %s: not in the plan, the run did %s" % (key[0], key[1],
                                                                    ", ".join(sorted(got))))
    return problems


def describe(actions, effects):
    lines = ["plan:"]
    for act in actions:
        lines.append("  [%s] %s %s %s: %s" % (act["part"], act["action"], act["kind"], act["name"],
                                             "; ".join(act["reasons"])))
    lines.append("run:")
    for (kind, name), got in sorted(effects.items()):
        lines.append("  %s %s: %s" % (kind, name, ", ".join(sorted(got))))
    return "\n".join(lines)


def file_state(path):
    """What tells whether the run made, replaced or removed the file PATH."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def file_effects(before):
    """{("file", path): effects} for the planned files (BEFORE: path -> their
    :func:`file_state` before the run) that the run made, replaced or removed
    (no docker command names them: docker.gentoo-diskimage's disk image files)."""
    out = {}
    for path, was in before.items():
        now = file_state(path)
        if now != was:
            out[("file", path)] = ({"create"} if was is None else {"remove"} if now is None
                                   else {"remove", "create"})
    return out


def assert_plan_matches_run(buildout, recorder, *args, ignore=None, run_ok=True):
    """Plan (read-only docker commands only), run buildout with ARGS, and
    check the run did what the plan said, object by object.  IGNORE(key,
    effects) -> True leaves an unplanned object of the run out.  Returns
    an :class:`Exactness`."""
    from support.side_effects import read_only
    recorder.clear()
    code, actions = result = plan_of(buildout, *args, env=recorder.env)
    assert code in (0, 2), "dockeroo plan failed (%d):\n%s%s" % (code, result.output, result.stderr)
    plan_calls = recorder.commands()
    unsafe = [argv for argv in plan_calls if not read_only(argv)]
    assert not unsafe, "dockeroo plan ran docker commands that are not read-only: %s" % unsafe
    changes = any(a["action"] != "unchanged" for a in actions)
    assert code == (2 if changes else 0), "exit status %d for plan:\n%s" % (code, result.output)

    files = {a["name"]: file_state(a["name"]) for a in actions if a["kind"] == "file"}
    recorder.clear()
    run = buildout.run(*args, env=recorder.env)
    if run_ok:
        assert run.ok and "Traceback" not in run.output, run.output
    run_calls = recorder.commands()
    effects = classify(run_calls, recorder.made_ids())
    effects.update(file_effects(files))
    problems = compare(actions, effects, ignore)
    assert not problems, "the plan is not what the run did:\n  %s\n%s\n--- buildout output:\n%s" % (
        "\n  ".join(problems), describe(actions, effects), run.output)
    return Exactness(actions, code, effects, run, plan_calls, run_calls)


# -- the actions a real run logs ----------------------------------------------------------------
#: a real run's log line for an action that changes something (``app: recreating container app because ...``)
ACTION_LINE = re.compile(r"^(?P<part>[\w.-]+): (?P<doing>creating|recreating|updating|removing|"
                         r"repairing|checking) (?P<kind>\w+) (?P<name>\S+)"
                         r"(?: because (?P<why>.*))?$", re.M)
LOGGED_VERBS = {"creating": "create", "recreating": "recreate", "updating": "update",
                "removing": "remove", "repairing": "repair", "checking": "maybe"}


def logged(output):
    """[(part, verb, kind, name, reasons text)] of the actions a real run's OUTPUT logged."""
    return [(m["part"], LOGGED_VERBS[m["doing"]], m["kind"], m["name"], m["why"] or "")
            for m in ACTION_LINE.finditer(output)]
