"""dockeroo:docker.secret: a swarm secret, versioned by a keyed hash of its content.

The object is named ``NAME-<HMAC of the content>`` (swarm cannot change a
secret in place; the key is in ``parts/.dockeroo-swarm-key``), old versions
are removed once no service uses them, and the content travels on stdin
only (docs/recipes/docker.secret.rst).  :class:`SwarmObject` is shared with
``docker.config``.  read -> plan -> apply (see :mod:`dockeroo.model.plan`).
"""
from dockeroo.recipes.common.swarm_objects import SwarmObject





class Recipe(SwarmObject):
    recipe = "docker.secret"
    kind = "secret"
    sources = ("file", "env")


uninstall = Recipe.uninstaller()
