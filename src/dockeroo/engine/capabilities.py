"""What the engine is, learned from one ``docker version`` answer.

Docker's first server component is ``Engine``, Podman's ``Podman Engine``.
The engine asks once per run, only when something needs to know (see
``DockerEngine.capabilities``).  Pure standard library.
"""

from dataclasses import dataclass

DOCKER = "docker"
PODMAN = "podman"

#: machine names (``uname -m``) -> Docker's platform names
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armhf": "arm",
         "i386": "386", "i686": "386"}


#: what Podman 4.3 cannot do through the docker CLI, and why
PODMAN_LIMITS = {
    "links": "has no legacy container links (--link): put the containers on a "
             "user-defined network instead (they find each other by name there)",
    "devices": "rejects the docker CLI's --device ('unknown server OS')",
    "healthcheck": "runs healthchecks from systemd timers only: without systemd they "
                   "never run (the status stays 'starting')",
    "buildkit": "does not serve BuildKit's build sessions (builder = buildkit, secrets, "
                "ssh, RUN --mount): builder = legacy builds there",
    "build-hosts": "rejects the extra hosts of a build (--add-host: '400 Bad Request')",
    "commit": "refuses the docker CLI's commit (it sends no request body: 'Decode(): EOF')",
    "gzip-load": "loads uncompressed image archives only ('docker load' of a .tar.gz: "
                 "'payload does not match any of the supported image formats'); a .tar "
                 "or a .tar.zst (docker.load decompresses zstd itself) loads",
}


@dataclass(frozen=True)
class Capabilities:
    """The engine behind the docker CLI."""

    kind: str  # DOCKER or PODMAN
    version: str  # the engine's own version: "20.10.24+dfsg1", "4.3.1"
    api_version: str  # the Docker API version it serves: "1.41"
    os: str  # "linux"
    arch: str  # Docker's platform name: amd64, arm64, arm, ...

    @property
    def is_podman(self):
        return self.kind == PODMAN

    def limit(self, feature):
        """Why this engine cannot do FEATURE (a key of :data:`PODMAN_LIMITS`), or None."""
        if self.is_podman:
            return "Podman %s (through its Docker-compatible API) %s" % (
                self.version, PODMAN_LIMITS[feature])
        return None

    @classmethod
    def from_version(cls, data):
        """From ``docker version --format '{{json .}}'`` (its ``Server`` part)."""
        server = (data or {}).get("Server") or {}
        names = [str(c.get("Name") or "") for c in server.get("Components") or []]
        platform = str((server.get("Platform") or {}).get("Name") or "")
        podman = any("podman" in name.lower() for name in names) or "podman" in platform.lower()
        arch = str(server.get("Arch") or "")
        return cls(kind=PODMAN if podman else DOCKER,
                   version=str(server.get("Version") or ""),
                   api_version=str(server.get("ApiVersion") or server.get("APIVersion") or ""),
                   os=str(server.get("Os") or ""),
                   arch=_ARCH.get(arch, arch))
