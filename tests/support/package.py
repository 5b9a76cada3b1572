"""The dockeroo package's modules, as files (for the tests that walk the source)."""

import os

import dockeroo

PACKAGE = os.path.dirname(os.path.abspath(dockeroo.__file__))

def modules():
    """{module name: path} of every module of the package."""
    found = {}
    for folder, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                found[rel[:-9] if rel.endswith(".__init__") else rel] = path
    return found
