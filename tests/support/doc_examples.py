"""The example buildouts of the documentation, and their parts constructed
without an engine (for the unknown-option warning's tests).

``examples()`` yields (file, line, text) for every ``ini`` code block (or
``::`` literal block) of README.rst and docs/ that uses a dockeroo recipe,
and the repository's buildout.cfg.  ``construct(text, directory)`` builds
each dockeroo part of one example as buildout would (``__init__``: options
read, validated, outputs set) against a stand-in engine that runs no docker
command, and returns the warnings logged; a part the example only refers to
(``${db-image:name}`` of a section it leaves out) gets a placeholder value.
"""

import glob
import logging
import os
import re
import textwrap

from zc.buildout import UserError

from dockeroo.engine.client import ClientBuilder
from dockeroo.runtime import run as lifecycle
from dockeroo.engine.capabilities import Capabilities
from dockeroo.runtime import recipe as recipe_mod
from dockeroo.runtime import run as run_mod

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REF = re.compile(r"\$\{([^:}]*):([^}]+)\}")
#: values of options of parts an example refers to but does not show
PLACEHOLDERS = {"image": "example/img:1", "name": "example/img:1", "container": "ctr",
                "network": "net", "volume": "vol", "secret": "s-0123456789ab",
                "config": "c-0123456789ab"}
#: files the examples name (created empty, or as a build context, in the buildout)
FILES = ("app/Dockerfile", "web/Dockerfile", "demo/Dockerfile", "secrets/db-password",
         "secrets/registry.txt", "secrets/pypi-token", "seed/.keep", "layouts/db/.keep",
         "base/.keep", "containers/builder_x86_64/.keep", "archives/local-overlay.tar.zst", "certs/build-host/ca.pem",
         "images/app-images.tar.zst")
#: environment variables the examples read
ENV = {"DB_PASSWORD": "x", "NPM_TOKEN": "x", "REGISTRY_PASSWORD": "x"}


def examples():
    paths = sorted(glob.glob(os.path.join(ROOT, "docs", "*.rst"))
                   + glob.glob(os.path.join(ROOT, "docs", "recipes", "*.rst"))) \
        + [os.path.join(ROOT, "README.rst")]
    for path in paths:
        for line, text in blocks(path):
            yield os.path.relpath(path, ROOT), line, text
    with open(os.path.join(ROOT, "buildout.cfg")) as handle:
        yield "buildout.cfg", 1, handle.read()


def blocks(path):
    with open(path) as handle:
        lines = handle.read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^\s*\.\. code-block:: ini\s*$", line) or (
                line.rstrip().endswith("::") and not line.lstrip().startswith("..")):
            indent = len(line) - len(line.lstrip())
            j = i + 1
            while j < len(lines) and (not lines[j].strip()
                                      or len(lines[j]) - len(lines[j].lstrip()) > indent):
                j += 1
            text = textwrap.dedent("\n".join(lines[i + 1:j])).strip("\n")
            if "recipe = dockeroo:" in text:
                yield i + 1, text
            i = j
        else:
            i += 1


def sections(text):
    """{section: {option: value}} of an example, and the sections shown in
    part only (a ``...`` line ends them)."""
    out, partial, section, current, key = {}, set(), None, None, None
    text = re.sub(r"(md5|sha\d+):<hex>", lambda m: m.group(1) + ":" + "0" * (
        32 if m.group(1) == "md5" else 64), text)
    for line in text.splitlines():
        if line.strip() == "...":
            if section is not None:
                partial.add(section)
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.match(r"^\[([^\]]+)\]\s*$", line)
        if match:
            section = match.group(1)
            current = out.setdefault(section, {})
            continue
        if current is None:
            continue
        if line[:1].isspace() and key is not None:
            current[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        current[key] = value.strip()
    return out, partial


class StandInEngine:
    """An engine that answers as an empty swarm manager and runs nothing."""

    kind = "docker"

    class config:
        description = "the stand-in engine"

    def with_timeout(self, timeout):
        return self

    def want(self, kind, name):
        pass

    def inspect(self, kind, name):
        return None

    def info(self):
        return {"Swarm": {"LocalNodeState": "active", "ControlAvailable": True}}

    def client_builder(self, cache_dir=None):
        return ClientBuilder(True, True, "/usr/bin/docker", "24.0", "stand-in")

    @property
    def capabilities(self):
        return Capabilities.from_version({"Server": {"Version": "24.0.0"}, "Version": "24.0.0"})

    def architecture(self):
        return "amd64"

    def run(self, args, **kwargs):
        raise UserError("the stand-in engine runs no docker command (%s)" % " ".join(args[:2]))

    def __getattr__(self, name):
        raise UserError("the stand-in engine has no %s" % name)


class _Buildout(dict):
    def __init__(self, directory, raw):
        super().__init__()
        self._raw = raw
        self.directory = directory
        dict.__setitem__(self, "buildout", {"directory": directory, "newest": "false",
                                            "offline": "true",
                                            "parts-directory": os.path.join(directory, "parts")})
        self.errors = {}

    def __missing__(self, section):
        values = self._raw.get(section)
        if values is None:
            return _Placeholder()
        options = dict(values)
        dict.__setitem__(self, section, options)  # first: ${:option} and cycles stop here
        for key, value in values.items():
            options[key] = self.substitute(section, value)
        cls = run_mod.recipe_class(options.get("recipe"))
        if cls is not None:
            try:
                cls(self, section, options)
            except UserError as exc:
                self.errors[section] = str(exc)
        return options

    def substitute(self, section, value):
        def one(match):
            where, option = match.group(1) or section, match.group(2)
            found = self[where]
            if option in found:
                return self.substitute(where, found[option])
            return PLACEHOLDERS.get(option, "x")
        return REF.sub(one, value).replace("$$", "$")


class _Placeholder(dict):
    def __missing__(self, option):
        return PLACEHOLDERS.get(option, "x")

    def __contains__(self, option):
        return True

    def get(self, option, default=None):
        return self[option]


def construct(text, directory, monkeypatch, caplog):
    """Construct every dockeroo part of the example TEXT in DIRECTORY.

    Returns ([unknown-option warnings], {part: UserError text}): the errors
    of the parts that could not be constructed, except the parts the example
    shows in part only (``...``).
    """
    for name in FILES:
        path = os.path.join(directory, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("FROM scratch\n" if name.endswith("Dockerfile") else "x\n")
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(recipe_mod, "engine_from_options", lambda opts: StandInEngine())
    monkeypatch.setattr(lifecycle, "current", lambda *a, **k: _Run())
    monkeypatch.chdir(directory)
    raw, partial = sections(text)
    raw.pop("buildout", None)
    bo = _Buildout(directory, raw)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        for section, values in raw.items():
            if (values.get("recipe") or "").startswith("dockeroo:"):
                bo[section]
    warnings = [r.getMessage() for r in caplog.records if "is not an option of" in r.getMessage()]
    return warnings, {k: v for k, v in bo.errors.items() if k not in partial}


class _Run:
    def __init__(self):
        self.configured = {}
        self.references = {}

    def __getattr__(self, name):
        raise UserError("the stand-in run has no %s" % name)
