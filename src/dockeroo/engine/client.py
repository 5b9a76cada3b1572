"""What the docker client can build with (BuildKit, heredocs), probed once per client."""

import json
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientBuilder:
    """What a docker client builds with (see :meth:`DockerEngine.client_builder`)."""

    buildkit: bool  # BuildKit (DOCKER_BUILDKIT=1 docker build) works
    heredocs: bool  # its Dockerfile frontend understands heredocs without a syntax line
    client: str  # the client's path
    version: str
    why: str  # one line for the log


#: ClientBuilder per client identity (see _client_key), for this process
_CLIENT_BUILDERS = {}
#: where the docker CLI looks for plugins besides DOCKER_CONFIG/cli-plugins
PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
               "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


def _client_key(path, environ):
    """A string that changes when the client or a buildx plugin it may use changes."""
    def identity(name):
        try:
            st = os.stat(name)
        except OSError:
            return None
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".docker")
    dirs = [os.path.join(config_dir, "cli-plugins")]
    try:
        with open(os.path.join(config_dir, "config.json")) as handle:
            dirs += list(json.load(handle).get("cliPluginsExtraDirs") or [])
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    dirs += PLUGIN_DIRS
    plugins = [[d, identity(os.path.join(d, "docker-buildx"))] for d in dirs]
    return json.dumps([os.path.realpath(path), identity(path), plugins])
