"""Cross-part situations (issue 18): one change that spans parts, checked end to end.

A :class:`Situation` is a list of buildout configurations applied in
sequence and the expected outcome of the last one.  :func:`check`
does, against the real engine:

1. apply every configuration but the last with ``bin/buildout`` (then the
   situation's ``setup``: an object made by hand, ...);
2. write the last configuration, run ``dockeroo plan --json`` and the text
   form: their exit status (2: changes, 1: refused) and actions;
3. run ``bin/buildout`` (its docker commands recorded): either it applies
   (exit 0) or it refuses with an ``Error:`` naming the reason, and then
   nothing changed (a snapshot of every object of the test prefix, before
   and after: ids, labels, options);
4. an applied run carried out exactly the Actions the plan predicted, in the
   plan's order: one log line per changing Action (``part: recreating
   container x because ...``, the format of :func:`dockeroo.model.plan.Action.doing`,
   reasons included), and what its docker commands did to each object is
   the plan's verb (:func:`support.plan_exact.compare`);
5. a re-run changes nothing: the plan exits 0, the run logs no action and
   every object keeps its id;
6. ``buildout buildout:parts=`` leaves no object of the test prefix (but the
   objects ``keep = true`` leaves, listed in ``kept``).

Configurations are templates: ``%(p)s`` the test prefix, ``%(base)s`` the
busybox image, ``%(s1)s`` .. ``%(s3)s`` free /24 subnets of the test pool,
``%(dir)s`` the buildout directory, plus the situation's ``values``.
"""

import fnmatch
import json
import re
import textwrap
import threading
import time
from dataclasses import dataclass, field

import subprocess

from support.engine import free_subnet
from support.plan_exact import classify, compare, describe, plan_of
from support.side_effects import read_only


@dataclass
class Situation:
    name: str
    #: buildout configurations (part sections, templates), the last one is the change
    steps: list
    #: "apply" or "refuse"
    outcome: str = "apply"
    #: for a refusal: a regular expression (template) the run's Error line and the
    #: plan's error output must match
    refusal: str = None
    #: files written into the buildout directory first: path -> text (templates)
    files: dict = field(default_factory=dict)
    #: function(ctx) run after the "before" configurations (ctx: the Context)
    setup: object = None
    #: function(ctx) run before the final removal (undoes what setup made by hand)
    teardown: object = None
    #: (kind, name template) that ``buildout:parts=`` leaves because of keep = true
    kept: tuple = ()
    #: function(ctx) asserting what Docker holds after the applied run
    holds: object = None
    #: needs the registry fixture (ctx.registry)
    registry: bool = False
    #: function(ctx) run before the first configuration (images pushed, ...)
    first: object = None
    #: strict xfail reason (the executor does not handle it yet)
    xfail: str = None
    #: the plan's Actions that change something, in its order ("verb kind name"
    #: templates), when the situation is about the order
    planned: tuple = ()


@dataclass
class Context:
    buildout: object
    prefix: str
    values: dict
    registry: object = None

    def fill(self, text):
        return textwrap.dedent(text) % self.values


@dataclass
class Timing:
    seconds: dict = field(default_factory=dict)

    def mark(self, what, started):
        self.seconds[what] = round(time.monotonic() - started, 1)


# -- what Docker holds -------------------------------------------------------------------
#: how each kind of object is listed: (argv, whether the engine must be a swarm manager)
LISTINGS = {
    "container": (["ps", "-a", "--format", "{{.Names}}"], False),
    "volume": (["volume", "ls", "--format", "{{.Name}}"], False),
    "network": (["network", "ls", "--format", "{{.Name}}"], False),
    "image": (["image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"], False),
    "service": (["service", "ls", "--format", "{{.Name}}"], True),
    "secret": (["secret", "ls", "--format", "{{.Name}}"], True),
    "config": (["config", "ls", "--format", "{{.Name}}"], True),
}


def _docker(env, *args):
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    return proc.stdout if proc.returncode == 0 else ""


def _listing(env, args):
    """The output of the listing ``docker ARGS``.  A failed listing is tried
    again, then raises: Podman's ``image ls`` fails when another test removes
    an image while it lists (the situations run side by side), and an empty
    answer would read as every object gone."""
    for attempt in range(5):
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                              timeout=120)
        if proc.returncode == 0:
            return proc.stdout
        time.sleep(0.2 * (attempt + 1))
    raise AssertionError("docker %s failed: %s" % (" ".join(args), proc.stderr.strip()))


def objects(prefix, env=None, swarm=False):
    """[(kind, name)] of every object named with PREFIX (images: by reference, an
    untagged one by id) on the engine ENV's DOCKER_HOST selects."""
    found = []
    for kind, (args, needs_swarm) in LISTINGS.items():
        if needs_swarm and not swarm:
            continue
        for line in _listing(env, args).splitlines():
            name, _, image_id = line.partition(" ")
            base = name.rsplit("/", 1)[-1]
            if name.startswith(prefix) or base.startswith(prefix):
                found.append((kind, image_id if name.endswith(":<none>") and image_id else name))
    return sorted(found)


def snapshot(prefix, env=None, swarm=False):
    """{(kind, name): what identifies it} for every object named with PREFIX:
    ids and labels (containers: also their image and state; volumes: their
    creation time and options, they have no id)."""
    found = {}
    for kind, name in objects(prefix, env, swarm):
        text = _docker(env, kind, "inspect", name)
        if not text.strip():
            continue
        obj = json.loads(text)[0]
        if kind == "container":
            value = (obj["Id"], obj["Image"], obj["State"]["Status"],
                     tuple(sorted((obj["Config"].get("Labels") or {}).items())))
        elif kind == "image":
            value = (obj["Id"], tuple(sorted(((obj.get("Config") or {}).get("Labels")
                                              or {}).items())))
        elif kind == "volume":
            value = (obj.get("CreatedAt"), tuple(sorted((obj.get("Options") or {}).items())),
                     tuple(sorted((obj.get("Labels") or {}).items())))
        elif kind in ("service", "secret", "config"):
            value = (obj["ID"], obj["Version"]["Index"],
                     tuple(sorted((obj["Spec"].get("Labels") or {}).items())))
        else:
            value = (obj["Id"], tuple(sorted((obj.get("Labels") or {}).items())))
        found[(kind, name)] = value
    return found


def snapshot_diff(before, after):
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            lines.append("  %s %s: %s -> %s" % (key[0], key[1], before.get(key, "(none)"),
                                                after.get(key, "(none)")))
    return "\n".join(lines)


# -- the run's action lines --------------------------------------------------------------
#: one line per Action of a real run: ``part: recreating container x because ...``
ACTION_LINE = re.compile(r"^(?P<part>[\w.-]+): (?P<doing>creating|recreating|updating|removing|"
                         r"repairing|checking) (?P<kind>[\w-]+) (?P<name>\S+)"
                         r"(?: because (?P<why>.*))?$", re.M)


def logged(output):
    """[(part, verb, kind, name, reasons)] of the action lines of a run's OUTPUT."""
    from dockeroo.model.plan import DOING
    verbs = {v: k for k, v in DOING.items()}
    return [(m["part"], verbs[m["doing"]], m["kind"], m["name"], m["why"] or "")
            for m in ACTION_LINE.finditer(output)]


def expected_lines(actions):
    """The log lines the plan's ACTIONS promise, as :func:`logged` reads them."""
    from dockeroo.model.plan import SPOKEN
    return [(a["part"], a["action"], a["kind"], a["name"],
             "; ".join(SPOKEN.get(r, r) for r in a["reasons"]))
            for a in actions if a["kind"] != "part" and a["action"] != "unchanged"]


def in_order(wanted, lines, actions):
    """Whether the run's LINES are the WANTED lines (of the plan's ACTIONS) in the
    plan's order (when the plan gives batches, in any order inside one batch:
    they run in parallel)."""
    if len(wanted) != len(lines):
        return False
    changing = [a for a in actions if a["kind"] != "part" and a["action"] != "unchanged"]
    if not all("batch" in a for a in changing):
        return wanted == lines
    i = 0
    for batch in sorted({a["batch"] for a in changing}):
        group = [w for w, a in zip(wanted, changing) if a["batch"] == batch]
        if sorted(group) != sorted(lines[i:i + len(group)]):
            return False
        i += len(group)
    return True


def assert_logged_as_planned(actions, output):
    """The run's OUTPUT logs one line per changing Action of the plan, in the plan's
    order: first the actions themselves (part, verb, kind, name), then their reasons."""
    wanted, lines = expected_lines(actions), logged(output)
    for width, what in ((4, "actions"), (5, "reasons")):
        assert in_order([w[:width] for w in wanted], [l[:width] for l in lines], actions), (
            "the run's action lines are not the plan's %s, in its order:\nplanned:\n  %s\n"
            "logged:\n  %s\n--- run:\n%s" % (what, "\n  ".join(map(str, wanted)),
                                               "\n  ".join(map(str, lines)), output))


# -- the check ------------------------------------------------------------------------------
#: subnets handed to situations that run now (in threads): never handed twice
_RESERVED = set()
_RESERVING = threading.Lock()


def reserve_subnets(count):
    with _RESERVING:
        subnets = []
        for _ in range(count):
            subnets.append(_free_subnet(subnets + sorted(_RESERVED)))
        _RESERVED.update(subnets)
    return subnets


def _free_subnet(avoid):
    """support.engine.free_subnet, asked again when a network went away while the
    engine's networks were listed (other tests remove theirs meanwhile)."""
    for attempt in range(5):
        try:
            return free_subnet(avoid=avoid)
        except AssertionError as exc:
            if "not found" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2)


def release_subnets(subnets):
    with _RESERVING:
        _RESERVED.difference_update(subnets)


def prepare(situation, buildout, prefix, base_image, registry=None, values=None):
    subnets = reserve_subnets(3)
    extra = values
    values = {"p": prefix, "base": base_image, "dir": buildout.directory,
              "s1": str(subnets[0]), "s2": str(subnets[1]), "s3": str(subnets[2])}
    values.update(extra or {})
    values["subnets"] = subnets
    if registry is not None:
        values.update(host=registry.host, user=registry.username, password=registry.password)
    return Context(buildout, prefix, values, registry)


def configure(ctx, step):
    ctx.buildout.configure(ctx.fill(step))


def check(situation, *args, **kwargs):
    """Run SITUATION (see the module's doc); returns its Timing.  ARGS: those of
    :func:`run_situation`."""
    reserved = []
    try:
        return run_situation(situation, reserved, *args, **kwargs)
    finally:
        release_subnets(reserved)


def run_situation(situation, reserved, buildout, prefix, base_image, recorder, registry=None,
                  env=None, swarm=False, values=None):
    """Run SITUATION (see the module's doc); returns its Timing.  RESERVED: gets
    the subnets reserved for it.  ENV: the
    environment that selects the engine the parts use (its DOCKER_HOST), for
    the snapshots; SWARM: list services, secrets and configs too."""
    timing = Timing()

    def snapshot_now():
        return snapshot(prefix, env, swarm)

    ctx = prepare(situation, buildout, prefix, base_image, registry, values)
    reserved += ctx.values["subnets"]
    for path, text in situation.files.items():
        buildout.write(path % ctx.values, ctx.fill(text))

    # 1. the configurations before the change
    started = time.monotonic()
    if situation.first:
        situation.first(ctx)
    for step in situation.steps[:-1]:
        configure(ctx, step)
        buildout.ok()
    if situation.setup:
        situation.setup(ctx)
    timing.mark("before", started)

    # 2. the plan of the change
    configure(ctx, situation.steps[-1])
    started = time.monotonic()
    recorder.clear()
    plan = plan_of(buildout, env=recorder.env)
    text = plan_of(buildout, json_output=False, env=recorder.env)
    unsafe = [argv for argv in recorder.commands() if not read_only(argv)]
    assert not unsafe, "dockeroo plan ran docker commands that are not read-only: %s" % unsafe
    timing.mark("plan", started)
    refused = situation.outcome == "refuse"
    reason = re.compile(ctx.fill(situation.refusal)) if refused else None
    if refused:
        assert plan.code == 1 and text.code == 1, (
            "the plan of a refused change must exit 1 (got %d):\n%s%s" % (
                plan.code, plan.output, plan.stderr))
        assert reason.search(plan.stderr) and reason.search(text.stderr), (
            "the plan's error does not say %r:\n%s" % (reason.pattern, plan.stderr))
    else:
        assert plan.code == 2 and text.code == 2, (
            "the plan of a change must exit 2 (got %d/%d):\n%s%s\n%s" % (
                plan.code, text.code, plan.output, plan.stderr, text.output))
        assert "No changes" not in text.output, text.output
        if situation.planned:
            assert ["%s %s %s" % (a["action"], a["kind"], a["name"]) for a in plan.actions
                    if a["action"] != "unchanged"] == [ctx.fill(x) for x in situation.planned], (
                "the plan's order is not the expected one:\n%s" % text.output)
        shown = [line.strip() for line in text.output.splitlines() if line.startswith("  ")]
        assert [s for s in shown if not s.startswith("=")] == [
            line_of(a) for a in plan.actions if a["action"] != "unchanged"], (
            "the text plan and the JSON plan differ:\n%s\n%s" % (text.output, plan.output))

    # 3. the run
    before = snapshot_now()
    recorder.clear()
    started = time.monotonic()
    run = buildout.run(env=recorder.env)
    timing.mark("run", started)
    assert "Traceback" not in run.output, run.output
    if refused:
        assert not run.ok, "the run applied a change that must be refused:\n" + run.output
        assert reason.search(run.error_line()), (
            "the run's Error does not say %r:\n%s" % (reason.pattern, run.output))
        after = snapshot_now()
        assert after == before, "a refused run changed Docker:\n%s\n%s" % (
            snapshot_diff(before, after), run.output)
    else:
        assert run.ok, "the run failed:\n%s\n--- plan:\n%s" % (run.output, text.output)
        # 4. exactly the plan's actions, in its order
        assert_logged_as_planned(plan.actions, run.output)
        effects = classify(recorder.commands(), recorder.made_ids())
        problems = compare(plan.actions, effects)
        assert not problems, "the plan is not what the run did:\n  %s\n%s\n--- run:\n%s" % (
            "\n  ".join(problems), describe(plan.actions, effects), run.output)
        if situation.holds:
            situation.holds(ctx)
        after = snapshot_now()

    # 5. a re-run changes nothing
    started = time.monotonic()
    again = plan_of(buildout)
    if refused:
        assert again.code == 1 and reason.search(again.stderr), again.stderr
        rerun = buildout.run()
        assert not rerun.ok and reason.search(rerun.error_line()), rerun.output
    else:
        assert again.code == 0, "the re-run's plan is not empty:\n%s%s" % (again.output,
                                                                          again.stderr)
        rerun = buildout.ok()
        assert logged(rerun.output) == [], rerun.output
    assert snapshot_now() == after, "the re-run changed Docker:\n%s\n%s" % (
        snapshot_diff(after, snapshot_now()), rerun.output)
    timing.mark("rerun", started)

    # 6. the removal leaves nothing (but what keep = true leaves)
    if situation.teardown:
        situation.teardown(ctx)
    started = time.monotonic()
    removal = buildout.run("buildout:parts=")
    timing.mark("removal", started)
    assert removal.ok and "Traceback" not in removal.output, removal.output
    left = objects(prefix, env, swarm)
    kept = [(kind, ctx.fill(name)) for kind, name in situation.kept]
    assert len(left) == len(kept) and all(
        any(k == kind and fnmatch.fnmatchcase(name, pattern) for kind, pattern in kept)
        for k, name in left), "buildout:parts= left %s (kept by keep = true: %s)\n%s" % (
        left, kept, removal.output)
    return timing


def line_of(act):
    from dockeroo.model.plan import SIGNS
    text = "%s %s %s %s" % (SIGNS[act["action"]], act["action"], act["kind"], act["name"])
    return text + (": " + "; ".join(act["reasons"]) if act["reasons"] else "")
