"""dockeroo:docker.config: a swarm config, versioned like docker.secret
(see :mod:`dockeroo.recipes.secret`); its content may also be inline."""

from dockeroo.recipes.common.swarm_objects import SwarmObject


class Recipe(SwarmObject):
    recipe = "docker.config"
    kind = "config"
    sources = ("file", "content", "env")


uninstall = Recipe.uninstaller()
