"""Process state in one place: module-level mutable state lives only on the
Run (:mod:`dockeroo.runtime.run`) and in the engine's caches, and the Run's
one exit hook runs its steps in the documented order.

The walk finds, in every module of the package:

- module-level and class-level names bound to a mutable container (a dict,
  list or set display or comprehension, ``dict()``, ``set()``, ...) that
  some code mutates (item assignment or deletion, a mutating method,
  augmented assignment), in its module or through ``module.NAME``;
- ``global`` statements (a module-level name rebound by a function);
- assignments to another module's name (``mode.NAME = ...``).

Each one must be in ALLOWED, with the reason it may stay.
"""

import ast
import logging
import os

import pytest

from dockeroo.runtime import run as lifecycle
from support.package import modules as layer_modules
from support.runs import bare_run

ALLOWED = {
    # the registry of this process's runs: everything else a run remembers is on its Run
    "dockeroo.runtime.run._runs": "the process's Runs",
    # engine caches: facts of an engine, valid for the whole process
    "dockeroo.engine.docker.DockerEngine._shared": "one engine object (and inspect cache) per "
                                                   "configuration",
    "dockeroo.engine.client._CLIENT_BUILDERS": "the builder (buildx) of each docker client",
    "dockeroo.engine.machine._CONFIGS": "what docker-machine answered, per machine",
    # the documented exceptions (base layer: below the Run, and not run state)
    "dockeroo.base.redaction._SECRETS": "a value seen once as a secret stays hidden in every "
                                        "message of the process, formed in any layer, with or "
                                        "without a Run (dockeroo plan, errors at exit)",
    "dockeroo.base.mode.PLANNING": "the process's mode, set by dockeroo plan before any Run "
                                   "exists and read by the base layer's check_writable",
}

MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem",
            "remove", "discard", "clear", "difference_update", "intersection_update",
            "symmetric_difference_update", "sort", "reverse"}
MUTABLE_CALLS = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque", "Counter",
                 "WeakSet", "WeakKeyDictionary", "WeakValueDictionary"}


def modules():
    """{module name: parsed tree} of every module of the package."""
    found = {}
    for module, path in layer_modules().items():
        with open(path) as handle:
            found[module] = ast.parse(handle.read())
    return found


def is_mutable(value):
    if isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        return name in MUTABLE_CALLS
    return False


def bound(body):
    """{name: node} of the names BODY (module or class statements) binds to a
    mutable container."""
    out = {}
    for node in body:
        if isinstance(node, ast.Assign) and is_mutable(node.value):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node
        elif isinstance(node, ast.AnnAssign) and node.value is not None \
                and is_mutable(node.value) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def mutated(node):
    """The expression NODE mutates (in place), or None."""
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for target in targets:
            if isinstance(target, ast.Subscript):
                return target.value
            if isinstance(node, ast.AugAssign):
                return target
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr in MUTATORS:
        return node.func.value
    return None


def name_of(expr):
    """NAME of ``NAME`` or ``anything.NAME``."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def module_aliases(tree, known):
    """Names under which TREE imports a module of the package."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dockeroo"):
            for alias in node.names:
                if node.module + "." + alias.name in known:
                    out.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known and alias.asname:
                    out.add(alias.asname)
    return out


def in_functions(tree):
    """The nodes of TREE inside a function (what runs after import: the
    statements at module level only build the module's constants)."""
    seen = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for inner in ast.walk(node):
                if id(inner) not in seen:
                    seen.add(id(inner))
                    yield inner


def process_state():
    """The qualified names of the package's module-level mutable state."""
    trees = modules()
    candidates = {}  # name -> [qualified names]
    found = set()
    for module, tree in trees.items():
        for name in bound(tree.body):
            candidates.setdefault(name, []).append("%s.%s" % (module, name))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                for name in bound(node.body):
                    candidates.setdefault(name, []).append("%s.%s.%s" % (module, node.name, name))
    for module, tree in trees.items():
        aliases = module_aliases(tree, trees)
        # this module's globals, and those it imports by name: module -> names
        own = {name: [module] for name in bound(tree.body)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in trees:
                for alias in node.names:
                    own.setdefault(alias.asname or alias.name, []).append(node.module)
        for node in in_functions(tree):
            if isinstance(node, ast.Global):
                found.update("%s.%s" % (module, name) for name in node.names)
            target = mutated(node)
            name = name_of(target)
            if isinstance(target, ast.Attribute) and name in candidates:
                found.update(candidates[name])  # anyone's NAME, through any object
            elif isinstance(target, ast.Name) and name in own:
                found.update(q for q in candidates.get(name, ())
                             if q.rpartition(".")[0] in own[name])
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) \
                            and t.value.id in aliases:
                        full = next(m for m in trees if m.endswith("." + t.value.id)
                                    or m == t.value.id)
                        found.add("%s.%s" % (full, t.attr))
    return found


def test_module_level_mutable_state_is_the_runs_and_the_engine_caches():
    found = process_state()
    assert sorted(found - set(ALLOWED)) == [], (
        "module-level mutable state outside the Run and the engine caches: keep it on the "
        "Run (dockeroo.runtime.run) or justify it in ALLOWED")


def test_the_walk_finds_what_it_looks_for():
    # every allowed entry is still found: the walk would see a new one of its kind
    assert process_state() >= set(ALLOWED)


def test_the_walk_sees_a_new_registry(monkeypatch):
    tree = ast.parse("CONSTANT = {'a': 1}\n_seen = {}\n\ndef see(x):\n    _seen[x] = 1\n"
                     "    found = {}\n    found[x] = CONSTANT['a']\n\n"
                     "class A:\n    _k = []\n    def f(self):\n        self._k.append(1)\n")
    other = ast.parse("from dockeroo import x\n\ndef g():\n    x.FLAG = True\n")
    monkeypatch.setitem(globals(), "modules", lambda: {"dockeroo.x": tree, "dockeroo.y": other})
    assert process_state() == {"dockeroo.x._seen", "dockeroo.x.A._k", "dockeroo.x.FLAG"}


# -- the one exit hook --------------------------------------------------------------
class _Ahead:
    def __init__(self, steps):
        self.steps = steps

    def undo(self):
        self.steps.append("undo ahead")


@pytest.mark.parametrize("interrupted", [False, True])
def test_finish_runs_its_steps_in_order(tmp_path, monkeypatch, caplog, interrupted):
    run = bare_run(tmp_path)
    steps = []
    run.ahead = _Ahead(steps)
    monkeypatch.setattr(run, "drop_pending", lambda: steps.append("drop pending"))
    monkeypatch.setattr(run, "_forget_temporaries", lambda: steps.append("forget temporaries"))
    if interrupted:
        run.interrupted = lifecycle.Interrupted(15)
    with caplog.at_level(logging.ERROR):
        run.finish()
    if interrupted:
        steps.append([r.getMessage() for r in caplog.records])
        assert steps == ["undo ahead", "forget temporaries", ["Interrupted (SIGTERM)"]]
    else:
        assert steps == ["undo ahead", "drop pending", "forget temporaries"]


def test_a_failing_step_does_not_stop_the_next(tmp_path, monkeypatch):
    run = bare_run(tmp_path)
    steps = []

    def fail():
        steps.append("drop pending")
        raise RuntimeError("engine gone")
    monkeypatch.setattr(run, "drop_pending", fail)
    monkeypatch.setattr(run, "_forget_temporaries", lambda: steps.append("forget temporaries"))
    run.finish()
    assert steps == ["drop pending", "forget temporaries"]


def test_one_exit_hook_per_run(tmp_path, monkeypatch):
    hooks = []
    monkeypatch.setattr(lifecycle.atexit, "register", hooks.append)
    monkeypatch.setattr(lifecycle.Run, "_signals", lambda self: None)
    monkeypatch.setattr(lifecycle, "_runs", {})
    run = lifecycle.current(str(tmp_path / "parts"), str(tmp_path))
    assert hooks == [run.finish]
    os.close(run._lock_fd)


# -- the registries on the Run ------------------------------------------------------
class _Recipe:
    def __init__(self, owner, recipe):
        self.owner, self.recipe = owner, recipe


def test_configured_parts_are_the_runs(tmp_path, monkeypatch):
    run = bare_run(tmp_path)
    run.configured = {"a": _Recipe("OWNER", "docker.run"), "b": _Recipe("OTHER", "docker.volume")}
    monkeypatch.setattr(lifecycle, "_runs", {run.parts_directory: run})
    assert lifecycle.configured_parts("OWNER") == {("OWNER", "a")}
    assert lifecycle.configured_recipe("OWNER", "a") == "docker.run"
    assert lifecycle.configured_recipe("OWNER", "b") is None
    assert lifecycle.configured_recipe("OTHER", "b") == "docker.volume"


def test_removed_together_is_one_set_on_the_run(tmp_path, monkeypatch):
    from dockeroo.runtime import ahead
    run = bare_run(tmp_path)
    monkeypatch.setattr(lifecycle, "_runs", {run.parts_directory: run})
    ahead.mark_removed("OWNER", ["c", "v"])  # a container part, a volume part
    assert run.removed_together == {("OWNER", "c"), ("OWNER", "v")}
    assert ahead.removed_earlier("OWNER", "c") and not ahead.removed_earlier("OWNER", "c")
    assert not ahead.removed_earlier("OTHER", "v")
    assert run.removed_together == {("OWNER", "v")}


def test_retired_objects_are_durable_pending_records(tmp_path):
    run = bare_run(tmp_path)
    run.retire("s", "docker.secret", "s-0123456789ab", {"engine-url": "unix:///x"})
    assert run.pending("s") == [{"retired": "s-0123456789ab", "recipe": "dockeroo:docker.secret",
                                 "engine": {"engine-url": "unix:///x"}}]
    run.retired("s", "s-0123456789ab")
    assert run.pending("s") == []


class _Retiring:
    engine_options = {}

    def __init__(self, keeps):
        self.keeps, self.asked = keeps, []

    def drop_retired(self, engine, name):
        self.asked.append(name)
        return not self.keeps


def test_retired_records_are_dropped_by_their_part_on_its_engine():
    entry = {"retired": "s-0123456789ab", "recipe": "dockeroo:docker.secret", "engine": {}}
    # the part is gone, or on another engine now: forgotten, nothing asked
    assert lifecycle.drop_pending_entry(None, "s", entry) is True
    moved = _Retiring(keeps=True)
    assert lifecycle.drop_pending_entry(moved, "s", dict(entry, engine={"engine-url": "x"}))
    assert moved.asked == []
    # still in use: kept for a later run; gone: dropped
    assert lifecycle.drop_pending_entry(_Retiring(keeps=True), "s", entry) is False
    done = _Retiring(keeps=False)
    assert lifecycle.drop_pending_entry(done, "s", entry) is True and done.asked == [entry["retired"]]
