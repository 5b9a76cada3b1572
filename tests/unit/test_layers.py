"""The package's layers: imports only go down, no cycles, recipes never import each other.

Layers, lowest first (see docs/architecture.rst):

base -> engine -> model -> runtime -> recipes.common -> recipes -> cli

Every import counts, at module level or inside a function.
"""

import ast

import pytest

from support.package import modules
LAYERS = ("base", "engine", "model", "runtime", "recipes.common", "recipes", "cli")


def imports(module, path, known):
    """The package's modules that MODULE imports (module or function level)."""
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    out = set()
    with open(path) as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [base + "." + a.name for a in node.names]
        for name in names:
            # the module itself, or the closest enclosing module of a name it imports
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name != "dockeroo":
                out.add(name)
    return out


def layer(module):
    """(index, name) of MODULE's layer."""
    rest = module[len("dockeroo."):]
    for index in range(len(LAYERS) - 1, -1, -1):
        name = LAYERS[index]
        if rest == name or rest.startswith(name + "."):
            if name == "recipes" and (rest + ".").startswith("recipes.common."):
                continue
            return index, name
    raise AssertionError("module %s is in no layer: put it in one of %s" % (module, LAYERS))


def graph():
    known = modules()
    return {m: imports(m, p, known) for m, p in known.items()}


def test_every_module_is_in_a_layer():
    for module in graph():
        if module != "dockeroo":
            layer(module)


def test_imports_only_go_down():
    upward = []
    for module, used in sorted(graph().items()):
        if module == "dockeroo":
            continue
        mine = layer(module)
        for other in sorted(used):
            if layer(other)[0] > mine[0]:
                upward.append("%s imports %s (%s is above %s)" % (module, other, layer(other)[1],
                                                                   mine[1]))
    assert upward == []


def test_recipes_never_import_each_other():
    crossed = []
    for module, used in sorted(graph().items()):
        if module != "dockeroo" and layer(module)[1] in ("recipes", "recipes.common"):
            for other in sorted(used):
                if layer(other)[1] == "recipes" and other != "dockeroo.recipes":
                    crossed.append("%s imports %s" % (module, other))
    assert crossed == []


def cycles(g):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on.add(node)
        for nxt in sorted(g.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            comp = []
            while True:
                top = stack.pop()
                on.discard(top)
                comp.append(top)
                if top == node:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for node in sorted(g):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


@pytest.mark.parametrize("g, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_cycles(g, expected):
    assert cycles(g) == expected


def test_the_walker_sees_function_level_and_relative_imports(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("def f():\n    from ..engine import errors\n    import dockeroo.model.plan\n")
    known = {"dockeroo.engine.errors", "dockeroo.model.plan", "dockeroo.recipes.run",
             "dockeroo.engine"}
    assert imports("dockeroo.recipes.run", str(path), known) == {
        "dockeroo.engine.errors", "dockeroo.model.plan", "dockeroo.engine"}


def test_the_layers_are_ordered_and_an_upward_import_is_seen():
    assert [layer(m)[1] for m in ("dockeroo.base.redaction", "dockeroo.engine.errors",
                                  "dockeroo.model.plan", "dockeroo.runtime.run",
                                  "dockeroo.recipes.common.swarm", "dockeroo.recipes.run",
                                  "dockeroo.cli")] == list(LAYERS)
    assert layer("dockeroo.recipes.run")[0] > layer("dockeroo.runtime.run")[0]
