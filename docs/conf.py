"""Sphinx configuration for the dockeroo documentation."""

import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "..", "src", "dockeroo", "__init__.py")) as _handle:
    release = re.search(r'__version__ = "([^"]+)"', _handle.read()).group(1)
version = ".".join(release.split(".")[:2])

project = "dockeroo"
author = "dockeroo developers"
copyright = "2016, Giacomo Cariello; dockeroo developers"

extensions = []
templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
master_doc = "index"
language = "en"
highlight_language = "ini"
pygments_style = "sphinx"

html_theme = "alabaster"
html_static_path = []
html_title = "dockeroo %s" % release

#: top-level pages index.rst lists itself; every other top-level page
#: (performance.rst, freeze.rst, ...) is listed where the marker stands
LISTED_PAGES = ("index", "engine", "options", "plan", "changes")
OPTIONAL_MARKER = "optional-pages-go-here"


def _optional_pages(app, docname, source):
    if docname != "index":
        return
    extra = sorted(name[:-4] for name in os.listdir(HERE)
                   if name.endswith(".rst") and name[:-4] not in LISTED_PAGES)
    present = [page for page in ("performance",) if page in extra]
    present += [page for page in extra if page not in present]
    lines = []
    for line in source[0].splitlines():
        if line.strip() == OPTIONAL_MARKER:
            indent = line[:len(line) - len(line.lstrip())]
            lines.extend(indent + page for page in present)
        else:
            lines.append(line)
    source[0] = "\n".join(lines) + "\n"


def setup(app):
    app.connect("source-read", _optional_pages)
    # index.rst's table of contents depends on the folder: always read it again
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: ["index"])
