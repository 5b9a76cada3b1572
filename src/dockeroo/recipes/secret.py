"""dockeroo:docker.secret: a swarm secret, versioned by a keyed hash of its content.

Swarm cannot change a secret (or a config) in place, so the object is named
``NAME-<hash>``: the hash is an HMAC-SHA256 of the content (and labels)
under a random key kept in ``parts/.dockeroo-swarm-key``, so the name
reveals nothing of the content.  A changed content makes a new object; the
services referencing ``${part:secret}`` switch to it in the same run, and
the versions the part made before are removed as soon as no service uses
them (at the end of the buildout run, and on every later run).

The content travels to Docker on stdin only: never on a command line, in
the options buildout records, or in the log.  :class:`SwarmObject` is
shared with ``docker.config`` (:mod:`dockeroo.recipes.config`).

read -> plan -> apply (see :mod:`dockeroo.model.plan`).
"""
from dockeroo.recipes.common.swarm_objects import SwarmObject





class Recipe(SwarmObject):
    recipe = "docker.secret"
    kind = "secret"
    sources = ("file", "env")


uninstall = Recipe.uninstaller()
