"""dockeroo: zc.buildout recipes that build and manage Docker objects."""

__version__ = "1.0.0.dev0"
