"""The engine layer is the only reader of docker's answers and the only starter of processes.

Walks the package's source (no engine needed):

- outside ``engine/``, docker's error text is never inspected to decide
  something: an answer (``X.stderr``, what ``communicate()`` returned,
  ``str(exc)``) may be shown in a message or a log line, never compared,
  searched, parsed or handed to another function; and no literal is
  looked for in a command's output (``.stdout``, ``.tail()``).  The
  decisions live in :mod:`dockeroo.engine.errors` (typed errors, their
  attributes and helpers);
- outside ``engine/``, no DockerError (or subclass) is constructed and
  none is derived: the engine types every failure;
- outside ``engine/``, no process is started with :mod:`subprocess`
  (except the local zstd process of archives.zstd_process, which is no
  docker process): every docker process goes through the engine's supervisor.
"""

import ast
import inspect
import os

import dockeroo
from dockeroo.engine import errors

PACKAGE = os.path.dirname(os.path.abspath(dockeroo.__file__))
ENGINE = os.path.join(PACKAGE, "engine")

#: string methods that read a text to decide something
PARSING = {"lower", "upper", "casefold", "split", "rsplit", "splitlines", "partition",
           "rpartition", "startswith", "endswith", "find", "rfind", "index", "count"}
#: methods that keep a text a text (the result is as tainted as the text)
KEEPING = {"strip", "rstrip", "lstrip", "decode", "read"}
#: attributes (and methods) that carry what a docker command answered
SOURCES = {"stderr", "stdout", "communicate", "tail"}
#: calls that only show a text
SHOWING = {"debug", "info", "warning", "error", "exception", "critical", "log", "format"}
#: the only module outside engine/ that may start a process: zstd (archives'
#: decompressor, the image files' compressor: archives.zstd_process), not docker
LOCAL_PROCESSES = {os.path.join("recipes", "common", "archives.py")}
ERROR_CLASSES = {name for name, obj in vars(errors).items()
                 if inspect.isclass(obj) and issubclass(obj, errors.DockerError)}


def sources():
    """(path relative to the package, parsed module) of every module outside engine/."""
    if not _PARSED:
        _PARSED.extend(_parse())
    return _PARSED


_PARSED = []


def _parse():
    for folder, _dirs, files in os.walk(PACKAGE):
        if os.path.abspath(folder).startswith(ENGINE):
            continue
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as handle:
                    yield os.path.relpath(path, PACKAGE), ast.parse(handle.read())


def _parents(tree):
    parents = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    return parents


class _Scope:
    """Names in one function (or module) bound to docker's answers."""

    def __init__(self):
        self.errors = set()  # answers: error text, stderr
        self.outputs = set()  # output text of a command

    def answer(self, node, parents):
        """Does NODE carry docker's error text (not yet turned into a message)?"""
        for sub in ast.walk(node):
            if self._inside_message(sub, node, parents):
                continue
            if _carries(sub, "stderr", "communicate", self.errors):
                return True
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) \
                    and sub.func.id == "str" and sub.args \
                    and isinstance(sub.args[0], ast.Name) and sub.args[0].id in self.handlers:
                return True
        return False

    def output(self, node):
        """Does NODE carry a command's output?"""
        return any(_carries(sub, "stdout", "tail", self.outputs) for sub in ast.walk(node))

    @staticmethod
    def _inside_message(sub, top, parents):
        node = sub
        while node is not top and node in parents:
            parent = parents[node]
            if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mod) \
                    and node is parent.right:
                return True
            if isinstance(parent, ast.JoinedStr):
                return True
            node = parent
        return False


def _carries(node, stream, method, names):
    """Is NODE ``X.STREAM`` (not ``sys``'s), a call of ``X.METHOD()`` or one of NAMES?"""
    if isinstance(node, ast.Attribute) and node.attr == stream:
        return not (isinstance(node.value, ast.Name) and node.value.id == "sys")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == method
    return isinstance(node, ast.Name) and node.id in names


def _targets(target):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _targets(elt)


def _own_nodes(scope):
    """The nodes of SCOPE (a module or function), not those of the functions in it."""
    todo = [scope]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(child for child in ast.iter_child_nodes(node) if not isinstance(
            child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)))


def _catches_docker_errors(handler):
    """Does HANDLER catch docker's errors only (or anything)?"""
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return all(kind is None or getattr(kind, "id", getattr(kind, "attr", ""))
               in ERROR_CLASSES | {"Exception", "BaseException"} for kind in kinds)


def _call_name(call):
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def error_text_reads(rel, tree):
    """Places of TREE that inspect docker's answers: (line, what)."""
    parents = None
    found = []
    scopes = [tree] + [n for n in ast.walk(tree)
                       if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    for scope_node in scopes:
        scope = _Scope()
        nodes = list(_own_nodes(scope_node))
        if not any(isinstance(n, ast.Attribute) and n.attr in SOURCES
                   or isinstance(n, ast.Name) and n.id == "str" for n in nodes):
            continue  # nothing here carries an answer
        parents = parents or _parents(tree)
        scope.handlers = {h.name for h in nodes if isinstance(h, ast.ExceptHandler) and h.name
                          and _catches_docker_errors(h)}
        for _ in range(3):  # names bound from names bound from answers
            for node in nodes:
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = [n for t in targets for n in _targets(t)]
                    if scope.answer(node.value, parents):
                        scope.errors.update(names)
                    if scope.output(node.value):
                        scope.outputs.update(names)
                elif isinstance(node, (ast.For, ast.comprehension)):
                    if scope.answer(node.iter, parents):
                        scope.errors.update(_targets(node.target))
        for node in nodes:
            if isinstance(node, ast.Compare) and not all(
                    isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops):
                operands = [node.left] + node.comparators
                if any(scope.answer(o, parents) for o in operands):
                    found.append((node.lineno, "compares docker's answer"))
                elif any(scope.output(o) for o in operands) and any(
                        isinstance(o, ast.Constant) and isinstance(o.value, (str, bytes))
                        for o in operands):
                    found.append((node.lineno, "looks for a text in docker's output"))
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in PARSING \
                        and scope.answer(func.value, parents):
                    found.append((node.lineno, "parses docker's answer (.%s)" % func.attr))
                elif _call_name(node) not in SHOWING | KEEPING and any(
                        scope.answer(arg, parents) for arg in node.args + [
                            k.value for k in node.keywords]):
                    found.append((node.lineno, "hands docker's answer to %s()" % _call_name(node)))
    return sorted(set(found))


def test_docker_answers_are_read_only_in_the_engine():
    reads = ["%s:%s: %s" % (rel, line, what) for rel, tree in sources()
             for line, what in error_text_reads(rel, tree)]
    assert reads == [], "\n".join(reads)


def test_docker_errors_are_made_only_in_the_engine():
    made = []
    for rel, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (_call_name(node) in ERROR_CLASSES
                                               or _call_name(node) == "from_output"):
                made.append("%s:%s: %s(...)" % (rel, node.lineno, _call_name(node)))
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", getattr(b, "attr", "")) in ERROR_CLASSES for b in node.bases):
                made.append("%s:%s: class %s" % (rel, node.lineno, node.name))
    assert made == [], "\n".join(made)


def test_processes_start_only_in_the_engine():
    started = []
    for rel, tree in sources():
        if rel in LOCAL_PROCESSES:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and getattr(node.func.value, "id", "") in ("subprocess", "os") \
                    and node.func.attr in ("Popen", "run", "call", "check_call", "check_output",
                                           "system", "popen", "spawnv", "spawnvp", "execv",
                                           "execvp", "fork"):
                started.append("%s:%s: %s.%s" % (rel, node.lineno, node.func.value.id,
                                                 node.func.attr))
    assert started == [], "\n".join(started)


def test_the_checks_see_what_they_look_for():
    """The walker finds each way of reading an answer (a check that cannot fail is no check)."""
    code = '''
def f(engine, exc, result, proc):
    err = exc.stderr.lower()
    if "no such" in err:
        return 1
    ids = pick(exc.stderr)
    lines = exc.stderr.splitlines()
    _out, answer = proc.communicate()
    if b"must be" in answer:
        return 2
    if "Deleted:" in result.stdout:
        return 3
    try:
        pass
    except Exception as failure:
        if "x" in str(failure):
            return 4
    log.info("shown: %s", exc.stderr)
    raise Error("shown: %s" % exc.stderr.strip())
'''
    found = error_text_reads("x.py", ast.parse(code))
    assert [line for line, _what in found] == [3, 4, 6, 7, 9, 11, 16]
