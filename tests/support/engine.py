"""The engine as the tests see it: the docker CLI, the objects a test made
(named with its prefix), subnets from the test pool, and which engine answers."""

import ipaddress
import json
import os
import random
import subprocess
import time

import pytest

#: the remote lane (.ci/run remote): the buildouts reach the engine over ssh
#: (DOCKER_HOST=ssh://...), the tests' own checks read it directly through this socket
DIRECT_ENV = "DOCKEROO_TEST_DIRECT_HOST"


def checking_env(env=None):
    """The environment of the tests' own docker commands (see DIRECT_ENV)."""
    direct = os.environ.get(DIRECT_ENV)
    if not direct:
        return env
    return dict(env or os.environ, DOCKER_HOST=direct)


def docker(*args, check=True, input=None, env=None):
    """Run the docker CLI, return stdout (str).

    A listing of images that fails because an image went away while it was
    being listed (Podman: "image not known", when another test removes
    images at the same time) is asked again."""
    for attempt in range(5):
        proc = subprocess.run(["docker", *args], input=input, capture_output=True, text=True,
                              env=checking_env(env))
        listing = "ls" in args[:2] or args[:1] in (("images",), ("ps",))
        if proc.returncode == 0 or not listing or "image not known" not in proc.stderr:
            break
        time.sleep(0.5)
    if check and proc.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout


def used_subnets():
    # a network another lane removes between the listing and the inspect: listed again
    for attempt in range(10):
        ids = docker("network", "ls", "--quiet").split()
        listed = docker("network", "inspect", *ids, check=attempt == 9) if ids else "[]"
        if listed.strip():
            break
    nets = json.loads(listed)
    return [ipaddress.ip_network(c["Subnet"], strict=False)
            for n in nets for c in ((n.get("IPAM") or {}).get("Config") or []) if c.get("Subnet")]


def subnet_pool():
    """The networks tests take their /24s from: DOCKEROO_TEST_SUBNETS (networks
    inside 172.28.0.0/14, separated by commas), all of 172.28.0.0/14 unless set.

    CI gives the lanes that share this host's network namespace (Docker's and
    Podman's) disjoint pools, so they run at the same time without one lane
    taking a subnet the other's engine already uses."""
    whole = ipaddress.ip_network("172.28.0.0/14")
    text = os.environ.get("DOCKEROO_TEST_SUBNETS", "").strip()
    pool = [ipaddress.ip_network(t.strip()) for t in text.split(",") if t.strip()] or [whole]
    for net in pool:
        if not net.subnet_of(whole) or net.prefixlen > 24:
            raise pytest.UsageError("DOCKEROO_TEST_SUBNETS: %s is not a /24 or larger inside %s"
                                    % (net, whole))
    return pool


def free_subnet(avoid=()):
    """A random /24 of the subnet pool (see subnet_pool) no existing network overlaps."""
    used = used_subnets() + list(avoid)
    candidates = [net for pool in subnet_pool() for net in pool.subnets(new_prefix=24)]
    for _ in range(200):
        net = random.choice(candidates)
        if not any(net.overlaps(u) for u in used if u.version == 4):
            return net
    pytest.fail("no free /24 in %s" % ", ".join(map(str, subnet_pool())))


def subnet_taken(text):
    """Whether an engine's error says a subnet is already in use: Docker says
    'Pool overlaps with other one on this address space', Podman 'subnet ... is
    already used on the host or by another config'."""
    text = text.lower()
    return "overlap" in text or "already used" in text


def inspect(kind, name):
    """Inspect JSON of one object, or None."""
    proc = subprocess.run(["docker", kind, "inspect", name], capture_output=True, text=True,
                          env=checking_env())
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def objects_with_prefix(prefix):
    found = []
    listings = {
        "container": ["ps", "-a", "--format", "{{.Names}}"],
        "volume": ["volume", "ls", "--format", "{{.Name}}"],
        "network": ["network", "ls", "--format", "{{.Name}}"],
        "image": ["image", "ls", "--digests", "--format",
                  "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}"],
    }
    for kind, args in listings.items():
        for line in docker(*args).splitlines():
            name, _, rest = line.partition(" ")
            image_id, _, digest = rest.partition(" ")
            base = name.rsplit("/", 1)[-1]
            if name.startswith(prefix) or base.startswith(prefix):
                if name.endswith(":<none>") and digest.startswith("sha256:"):
                    # known only by digest: that reference (its id may be a shared image's)
                    found.append((kind, name[:-len(":<none>")] + "@" + digest))
                elif name.endswith(":<none>") and image_id:
                    found.append((kind, image_id))
                else:
                    found.append((kind, name))
    return found


def remove_with_prefix(prefix):
    objs = objects_with_prefix(prefix)
    for kind in ("container", "network", "volume", "image"):
        names = [n for k, n in objs if k == kind]
        if not names:
            continue
        if kind == "container":
            docker("rm", "-f", "-v", *names, check=False)
        elif kind == "image":
            docker("image", "rm", "-f", *names, check=False)
        else:
            docker(kind, "rm", *names, check=False)


# -- the engine the tests talk to: Docker, or Podman's Docker-compatible API ------------
_ENGINE_KIND = []


def engine_kind():
    """``docker`` or ``podman`` (dockeroo's own answer to one ``docker version``)."""
    if not _ENGINE_KIND:
        from dockeroo.engine.capabilities import Capabilities
        proc = subprocess.run(["docker", "version", "--format", "{{json .}}"], env=checking_env(),
                              capture_output=True, text=True)
        try:
            answer = json.loads(proc.stdout)
        except ValueError:
            answer = {}
        _ENGINE_KIND.append(Capabilities.from_version(answer).kind)
    return _ENGINE_KIND[0]


def skip_on_podman(feature, why=None):
    """Inside a test: skip it on Podman, whose FEATURE limit it needs (as the marker)."""
    if engine_kind() == "podman":
        from dockeroo.engine.capabilities import PODMAN_LIMITS
        pytest.skip("Podman 4.3 limit (%s): %s" % (feature, why or PODMAN_LIMITS[feature]))


def image_id(ref):
    """The id of image REF, or None."""
    found = inspect("image", ref)
    return found["Id"] if found else None


def container_names(prefix):
    """The names of the containers named with PREFIX, sorted."""
    return sorted(docker("ps", "-a", "--filter", "name=" + prefix,
                         "--format", "{{.Names}}").split())


def leftovers(prefix, buildout):
    """Containers and images this test or its buildout still has."""
    from dockeroo.model.ownership import owner_id
    found = [o for o in objects_with_prefix(prefix) if o[0] in ("container", "image")]
    owner = owner_id(buildout.directory)
    for kind, args in (("container", ["ps", "-a", "-q"]), ("image", ["images", "-a", "-q"])):
        ids = docker(*args, "--filter", "label=io.dockeroo.buildout=" + owner).split()
        found += [(kind, i) for i in ids]
    return found


def containers_left(prefix, buildout):
    """Names of the containers named with PREFIX or labelled by this buildout."""
    from dockeroo.model.ownership import owner_id
    names = {n for k, n in objects_with_prefix(prefix) if k == "container"}
    owner = owner_id(buildout.directory)
    names |= set(docker("ps", "-a", "--format", "{{.Names}}", "--filter",
                        "label=io.dockeroo.buildout=" + owner).split())
    return sorted(names)


def own_image(base_image, ref, label):
    """An image with its own id (BASE_IMAGE plus a LABEL), tagged REF; returns REF.
    REF is a label too: two tests (lanes run at once) that build the same LABEL
    would otherwise share one image, and one's cleanup leave it untagged."""
    docker("build", "-q", "-t", ref, "-",
           input="FROM %s\nLABEL dkt.variant=%s dkt.ref=%s\n" % (base_image, label, ref),
           env=dict(os.environ, DOCKER_BUILDKIT="0"))
    return ref


def build_image(base_image, ref, label):
    """A small image distinct from the base (its own id), tagged REF; returns its id."""
    return inspect("image", own_image(base_image, ref, label))["Id"]
