"""A registry (Debian's docker-registry with htpasswd) as the tests use it."""

import json
import os
import socket
import tempfile
from dataclasses import dataclass

from support.engine import docker

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: the manifests a push writes: Docker's (v2 schema 2), Podman's (OCI)
MANIFESTS = ("application/vnd.docker.distribution.manifest.v2+json, "
             "application/vnd.oci.image.manifest.v1+json")


@dataclass
class Registry:
    host: str
    username: str
    password: str
    directory: str

    def catalog(self):
        return self.api("/v2/_catalog")["repositories"]

    def tags(self, repo):
        return self.api("/v2/%s/tags/list" % repo).get("tags") or []

    def manifest(self, repo, tag):
        return self.api("/v2/%s/manifests/%s" % (repo, tag), accept=MANIFESTS)

    def part(self, recipe, image, part, extra=""):
        """A part of RECIPE (docker.pull, docker.push) for IMAGE with this registry's credentials."""
        return """
        [%s]
        recipe = dockeroo:%s
        image = %s
        registry = %s
        username = %s
        password = %s
        %s
        """ % (part, recipe, image, self.host, self.username, self.password, extra)

    def login(self, config_dir):
        """``docker login`` to this registry with DOCKER_CONFIG=CONFIG_DIR; returns that env."""
        env = dict(os.environ, DOCKER_CONFIG=str(config_dir))
        docker("login", "--username", self.username, "--password-stdin", self.host,
               input=self.password + "\n", env=env)
        return env

    def push(self, local, repo_tag):
        """Push local image LOCAL as HOST/REPO_TAG; the tag added for it is removed again.

        Logs in with a throw-away DOCKER_CONFIG; returns the remote reference.
        """
        remote = "%s/%s" % (self.host, repo_tag)
        with tempfile.TemporaryDirectory() as config_dir:
            env = self.login(config_dir)
            docker("tag", local, remote)
            try:
                docker("push", remote, env=env)
            finally:
                docker("image", "rm", remote)
        return remote

    def retag(self, repo, tag, new_tag):
        """Point REPO:NEW_TAG at the manifest of REPO:TAG (registry API, no docker)."""
        import urllib.request
        req = self._request("/v2/%s/manifests/%s" % (repo, tag))
        req.add_header("Accept", MANIFESTS)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body, media = resp.read(), resp.headers["Content-Type"]
        req = self._request("/v2/%s/manifests/%s" % (repo, new_tag), method="PUT", data=body)
        req.add_header("Content-Type", media)
        urllib.request.urlopen(req, timeout=10).close()

    def manifest_digest(self, repo, tag):
        """The manifest digest of REPO:TAG (what ``docker pull REPO@DIGEST`` takes)."""
        import urllib.request
        req = self._request("/v2/%s/manifests/%s" % (repo, tag), method="HEAD")
        req.add_header("Accept", MANIFESTS)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers["Docker-Content-Digest"]

    def _request(self, path, **kwargs):
        import base64
        import urllib.request
        req = urllib.request.Request("http://%s%s" % (self.host, path), **kwargs)
        token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        return req

    def api(self, path, accept=None):
        import base64
        import urllib.request
        req = urllib.request.Request("http://%s%s" % (self.host, path))
        token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())
