"""Fault injection: kill buildout after the k-th docker call, then check convergence.

A :class:`FaultDocker` is a ``docker`` first on PATH (``docker_fault.py``)
that numbers every call of a buildout run and, at call K, signals the
buildout process (SIGKILL or SIGTERM) and/or ``docker kill``s a container.

A :class:`Scenario` is a list of buildout configurations: the first ones
are applied by plain runs, the last one (the *target*: a first install,
a change or an uninstall) is the run that gets interrupted.  A
:class:`Sweep` runs the scenario uninterrupted once (the reference: N
docker calls, the state Docker holds), then for each K:

1. fresh buildout directory (same path: same owner id), the earlier steps;
2. the target run, faulted at call K;
3. a plain run of the target: must succeed and reach the reference state
   (:func:`snapshot`: objects with the prefix or the owner label, their
   configuration and labels, every file in the containers, registry tags);
4. one more run: must not change Docker (no create/start/build/rm...);
5. ``buildout buildout:parts=``: no object with the prefix or the owner
   label is left (images included), except what the test made itself.

Problems are collected per K (:class:`Outcome`), not asserted one by one,
so that one test reports every kill point that does not converge.
"""

import hashlib
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from support.buildout import Buildout, BuildoutRun
from support.engine import docker, image_id, inspect, objects_with_prefix
from support.engine import free_subnet as pool_subnet

HERE = os.path.dirname(os.path.abspath(__file__))
LABEL_BUILDOUT = "io.dockeroo.buildout"
#: seconds one buildout run may take (a hung run is a finding, not a hung test session)
RUN_TIMEOUT = 300


def owner_of(directory):
    """The owner id dockeroo labels a buildout's objects with (recipe.owner_id)."""
    return hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:16]


def real_docker():
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory, "docker")
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    raise AssertionError("no docker client on PATH")


# -- the docker wrapper ------------------------------------------------------------
class FaultDocker:
    """A counting/faulting ``docker`` in DIRECTORY (see docker_fault.py)."""

    def __init__(self, directory, real=None):
        self.directory = directory
        self.real = real or real_docker()
        self.bin = os.path.join(directory, "bin")
        os.makedirs(self.bin, exist_ok=True)
        #: the buildouts' TMPDIR: what a killed run leaves there, the next run removes
        self.tmp = os.path.join(directory, "tmp")
        os.makedirs(self.tmp, exist_ok=True)
        with open(os.path.join(HERE, "docker_fault.py")) as handle:
            source = handle.read()
        wrapper = os.path.join(self.bin, "docker")
        with open(wrapper, "w") as handle:
            handle.write("#!%s -SE\n%s" % (sys.executable, source))
        os.chmod(wrapper, 0o755)

    def env(self, at=None, signal="KILL", when="after", container=None):
        env = {"PATH": self.bin + os.pathsep + os.environ.get("PATH", ""),
               "DOCKEROO_FAULT_DIR": self.directory, "DOCKEROO_FAULT_REAL": self.real,
               "DOCKEROO_FAULT_AT": str(at or ""), "DOCKEROO_FAULT_SIGNAL": signal,
               "DOCKEROO_FAULT_WHEN": when, "DOCKEROO_FAULT_CONTAINER": container or "",
               "TMPDIR": self.tmp}
        return env

    def temporary_files(self):
        """What the buildouts left in their TMPDIR (private folders that are empty
        do not count): a throw-away DOCKER_CONFIG holds registry credentials."""
        found = []
        for root, dirs, files in os.walk(self.tmp):
            found += [os.path.relpath(os.path.join(root, f), self.tmp) for f in files]
            if root != self.tmp and not dirs and not files \
                    and os.path.dirname(root) != self.tmp:
                found.append(os.path.relpath(root, self.tmp) + "/")
        return sorted(found)

    def reset(self):
        for name in ("count", "calls.jsonl", "fault.json"):
            path = os.path.join(self.directory, name)
            if os.path.exists(path):
                os.remove(path)

    def calls(self):
        path = os.path.join(self.directory, "calls.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as handle:
            records = [json.loads(line) for line in handle if line.strip()]
        return [r["argv"] for r in sorted(records, key=lambda r: r["n"])]

    def fault(self):
        path = os.path.join(self.directory, "fault.json")
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return json.load(handle)


#: commands that change nothing in Docker (first word, or KIND + verb)
READ_ONLY = {"inspect", "ps", "info", "version", "images", "login", "logout", "logs", "history",
             "events"}
READ_ONLY_VERBS = {"inspect", "ls", "list", "history", "logs", "show"}


def changes_docker(argv):
    """Whether a recorded docker argv may change an object."""
    if not argv or argv[0] in READ_ONLY:
        return False
    if argv[0] in ("container", "image", "volume", "network", "context", "system", "builder") \
            and len(argv) > 1:
        return argv[1] not in READ_ONLY_VERBS
    if argv[0] == "cp":  # docker cp CONTAINER:PATH - only reads
        return argv[-1] != "-"
    return True


# -- what Docker holds ----------------------------------------------------------------
def _ids(args):
    return [line for line in docker(*args).split() if line]


def objects_of(prefix, owner, roots=()):
    """{(kind, name)} of the objects named with PREFIX or labelled with OWNER.

    Images are named by tag, or by id when they have none; intermediate
    images (``image ls -a``) with the label count too, and so does every
    image descending from one of the image ids ROOTS (the test's own base
    images: what its builds leave, labelled or not).
    """
    found = set(objects_with_prefix(prefix))
    if roots:
        found.update(("image", i) for i in descendants(roots))
    label = "label=%s=%s" % (LABEL_BUILDOUT, owner)
    for name in _ids(["ps", "-a", "--filter", label, "--format", "{{.Names}}"]):
        found.add(("container", name))
    for kind in ("volume", "network"):
        for name in _ids([kind, "ls", "--filter", label, "--format", "{{.Name}}"]):
            found.add((kind, name))
    for line in docker("image", "ls", "-a", "--no-trunc", "--filter", label, "--format",
                       "{{.Repository}}:{{.Tag}}|{{.ID}}").splitlines():
        ref, _, image_id = line.partition("|")
        found.add(("image", image_id if "<none>" in ref else ref))
    # an untagged image found by prefix is reported by short id; normalise to the full id
    normal = set()
    for kind, name in found:
        if kind == "image" and "/" not in name and ":" not in name:
            name = "sha256:" + name if len(name) == 64 else _full_id(name)
        normal.add((kind, name))
    return normal


def descendants(roots):
    """Ids of the images whose parent chain reaches one of ROOTS (ids), roots excluded."""
    ids = _ids(["image", "ls", "-a", "-q", "--no-trunc"])
    if not ids:
        return set()
    proc = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}} {{.Parent}}", *ids],
                          capture_output=True, text=True)
    parent = dict((line.split() + [""])[:2] for line in proc.stdout.splitlines() if line.strip())
    roots, found = set(roots), set()
    for image in parent:
        seen, node = set(), parent.get(image)
        while node and node not in seen:
            if node in roots:
                found.add(image)
                break
            seen.add(node)
            node = parent.get(node)
    return found - roots


def _full_id(short):
    out = docker("image", "inspect", "--format", "{{.Id}}", short, check=False).strip()
    return out or short


def filesystem(container):
    """{path: description} of every entry of a container's filesystem."""
    proc = subprocess.run(["docker", "export", container], capture_output=True, timeout=120)
    if proc.returncode != 0:
        return {"<export failed>": proc.stderr.decode("utf-8", "replace")[:200]}
    entries = {}
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar:
            if member.isreg():
                desc = "file %o %d:%d %s" % (member.mode & 0o7777, member.uid, member.gid,
                                            hashlib.sha256(tar.extractfile(member).read())
                                            .hexdigest()[:16])
            elif member.issym():
                desc = "link -> %s" % member.linkname
            elif member.islnk():
                desc = "hardlink -> %s" % member.linkname
            elif member.isdir():
                desc = "dir %o %d:%d" % (member.mode & 0o7777, member.uid, member.gid)
            else:
                desc = "other %s" % member.type
            entries[member.name.rstrip("/")] = desc
    return entries


#: labels whose values differ from run to run by design (the id of the run that made an
#: object, the temporary name that carries that id): not compared
VOLATILE_LABELS = ("io.dockeroo.run", "io.dockeroo.temporary")


def _labels(labels):
    return {k: v for k, v in (labels or {}).items() if k not in VOLATILE_LABELS}


def describe(kind, name, files=True):
    """A canonical description of one object: what an equal state must share."""
    obj = inspect(kind, name)
    if obj is None:
        return None
    if kind == "container":
        config = obj.get("Config") or {}
        host = obj.get("HostConfig") or {}
        desc = {
            "image": config.get("Image"),
            "cmd": config.get("Cmd"), "entrypoint": config.get("Entrypoint"),
            # Podman adds HOSTNAME=<the container's own id> to the environment
            "env": sorted(e for e in config.get("Env") or [] if not e.startswith("HOSTNAME=")),
            "labels": _labels(config.get("Labels")),
            "user": config.get("User"), "workdir": config.get("WorkingDir"),
            "running": (obj.get("State") or {}).get("Running"),
            "binds": sorted(host.get("Binds") or []),
            "mounts": sorted((m.get("Type"), _mount_source(m), m.get("Destination"))
                             for m in obj.get("Mounts") or []),
            "networks": sorted(((obj.get("NetworkSettings") or {}).get("Networks") or {})),
        }
        if files:
            desc["files"] = filesystem(name)
        return desc
    if kind == "image":
        config = obj.get("Config") or {}
        desc = {"tags": sorted(obj.get("RepoTags") or []), "labels": _labels(config.get("Labels")),
                "cmd": config.get("Cmd"), "env": sorted(config.get("Env") or []),
                "layers": len((obj.get("RootFS") or {}).get("Layers") or [])}
        if files and obj.get("RepoTags"):
            desc["files"] = image_files(obj["Id"], name)
        return desc
    if kind == "volume":
        return {"driver": obj.get("Driver"), "labels": _labels(obj.get("Labels")),
                "options": obj.get("Options") or {}}
    if kind == "network":
        return {"driver": obj.get("Driver"), "internal": obj.get("Internal"),
                "labels": _labels(obj.get("Labels")),
                "subnets": sorted(c.get("Subnet") for c in (obj.get("IPAM") or {})
                                  .get("Config") or []),
                "containers": sorted(c.get("Name") for c in (obj.get("Containers") or {})
                                     .values())}
    return obj


def _mount_source(mount):
    name = mount.get("Name") or mount.get("Source")
    if mount.get("Type") == "volume" and len(name or "") == 64:
        return "<anonymous>"  # a random name
    return name


def image_files(image_id, ref):
    """The filesystem an image gives a container (created, exported, removed)."""
    probe = "dktprobe" + hashlib.sha256(ref.encode()).hexdigest()[:8] + str(os.getpid())
    docker("create", "--name", probe, image_id, "true")
    try:
        return filesystem(probe)
    finally:
        docker("rm", "-f", probe, check=False)


def snapshot(prefix, owner, registry=None, ignore=(), roots=()):
    """{(kind, name): description} of the test's objects, plus registry tags."""
    state, untagged = {}, []
    for kind, name in sorted(objects_of(prefix, owner, roots)):
        if (kind, name) in ignore:
            continue
        if kind == "image" and name.startswith("sha256:"):  # ids differ from run to run
            untagged.append(describe(kind, name, files=False))
            continue
        state[(kind, name)] = describe(kind, name)
    for i, desc in enumerate(sorted(untagged, key=repr)):
        state[("image", "<untagged #%d>" % (i + 1))] = desc
    if registry is not None:
        for repo in registry.catalog():
            if repo.startswith(prefix):
                for tag in sorted(registry.tags(repo)):
                    state[("registry", "%s:%s" % (repo, tag))] = \
                        registry.manifest(repo, tag)["config"]["digest"]
    return state


def folder_state(folder):
    """{("file", path): sha256} of the files in FOLDER (none when it is missing)."""
    found = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        path = os.path.join(folder, name)
        with open(path, "rb") as handle:
            found[("file", path)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def differences(want, have, limit=12):
    """Readable lines describing how state HAVE differs from WANT."""
    lines = []
    for key in sorted(set(want) | set(have), key=repr):
        if key not in have:
            lines.append("missing %s" % (key,))
        elif key not in want:
            lines.append("extra %s" % (key,))
        elif want[key] != have[key]:
            a, b = want[key], have[key]
            if isinstance(a, dict) and isinstance(b, dict):
                for field_ in sorted(set(a) | set(b)):
                    if a.get(field_) != b.get(field_):
                        if isinstance(a.get(field_), dict) and isinstance(b.get(field_), dict):
                            sub = [p for p in sorted(set(a[field_]) | set(b[field_]))
                                   if a[field_].get(p) != b[field_].get(p)]
                            lines.append("%s %s differs at %s: want %s, have %s" % (
                                key, field_, sub[:3], [a[field_].get(p) for p in sub[:3]],
                                [b[field_].get(p) for p in sub[:3]]))
                        else:
                            lines.append("%s %s: want %r, have %r" % (key, field_,
                                                                      a.get(field_),
                                                                      b.get(field_)))
            else:
                lines.append("%s: want %r, have %r" % (key, a, b))
    return lines[:limit] + (["... %d more" % (len(lines) - limit)] if len(lines) > limit else [])


# -- scenarios --------------------------------------------------------------------------
@dataclass
class Step:
    """One buildout configuration: part sections (None: uninstall all) and files."""

    parts: str = None
    files: dict = field(default_factory=dict)
    args: tuple = ()

    def apply(self, bo, values):
        for path, content in self.files.items():
            full = bo.path(path % values)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            mode = "wb" if isinstance(content, bytes) else "w"
            with open(full, mode) as handle:
                handle.write(content if isinstance(content, bytes) else
                             textwrap.dedent(content) % values)
        if self.parts is None:
            return ("buildout:parts=",) + tuple(self.args)
        bo.configure(textwrap.dedent(self.parts) % values)
        return tuple(self.args)


@dataclass
class Scenario:
    """Steps applied by plain runs, then the TARGET run that is interrupted."""

    name: str
    steps: list
    #: function(prefix) -> dict of extra template values; makes the test's own objects
    setup: object = None
    #: a container (template) to ``docker kill`` at the fault
    container: str = None
    registry: object = None
    #: template values naming the test's own base images (see :func:`objects_of`)
    roots: tuple = ()
    #: folders (templates) whose files are part of the state (docker.save's file:
    #: a temporary file left there, or a partial file, is a difference)
    folders: tuple = ()
    #: labels not compared, for this scenario (a container's fingerprint holds the id
    #: of an image each case builds anew; the re-run, which must change nothing,
    #: checks that it is the right one)
    volatile: tuple = ()


@dataclass
class Outcome:
    k: int
    problems: list

    def __str__(self):
        return "k=%d: %s" % (self.k, "; ".join(self.problems))


class Sweep:
    """One scenario in one buildout directory with one prefix (see module doc)."""

    def __init__(self, scenario, workdir, prefix, values=None):
        self.scenario = scenario
        self.prefix = prefix
        self.bo = Buildout(os.path.join(workdir, "buildout"), prefix)
        self.owner = owner_of(self.bo.directory)
        self.docker = FaultDocker(os.path.join(workdir, "fault"))
        self.values = dict(values or {}, p=prefix, dir=self.bo.directory)
        self.baseline = set()
        self.reference = None
        self.calls = []
        self._roots = None

    # -- pieces ------------------------------------------------------------------
    def run(self, step, **fault):
        args = step.apply(self.bo, self.values)
        self.docker.reset()
        try:
            return self.bo.run(*args, env=self.docker.env(**fault), timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            return BuildoutRun(-1, "Error: buildout did not end within %ss\n%s" % (
                RUN_TIMEOUT, exc.output or ""))

    def fresh(self):
        """Uninstall what an earlier case left, wipe the buildout directory."""
        problems = []
        said = self.uninstall_earlier(problems)
        left = self.leftovers()
        if left:
            problems.append("left before the case: %s%s" % (
                sorted(left), "\n    the uninstall said:\n%s" % said if said else ""))
            self.clean(left)
        if os.path.exists(self.bo.directory):
            shutil.rmtree(self.bo.directory)
        os.makedirs(self.bo.directory)
        return problems

    def uninstall_earlier(self, problems):
        """Remove what the earlier case installed (``buildout:parts=``);
        returns what the uninstall printed (None when there was nothing)."""
        if os.path.exists(self.bo.path(".installed.cfg")):
            result = self.bo.run("buildout:parts=")
            if not result.ok:
                problems.append("the uninstall of the earlier case failed: %s"
                                % result.error_line())
            return result.output
        return None

    def clean(self, objects):
        remove(objects)

    @property
    def roots(self):
        if self._roots is None:
            self._roots = [image_id(self.values[key]) for key in self.scenario.roots]
        return self._roots

    def leftovers(self):
        return objects_of(self.prefix, self.owner, self.roots) - self.baseline

    def prepare(self):
        for step in self.scenario.steps[:-1]:
            result = self.run(step)
            if not result.ok:
                return ["a preparing step failed: %s" % result.output[-800:]]
        return []

    def state(self):
        found = snapshot(self.prefix, self.owner, self.scenario.registry,
                         ignore=self.baseline, roots=self.roots)
        for folder in self.scenario.folders:
            found.update(folder_state(folder % self.values))
        for desc in found.values():
            if isinstance(desc, dict) and isinstance(desc.get("labels"), dict):
                for label in self.scenario.volatile:
                    desc["labels"].pop(label, None)
        return found

    def converged(self, problems):
        """Steps 4 and 5: a re-run changes nothing; uninstall leaves nothing."""
        target = self.scenario.steps[-1]
        result = self.run(target)
        changed = [c for c in self.docker.calls() if changes_docker(c)]
        if not result.ok:
            problems.append("re-run failed: %s" % result.error_line())
        elif changed:
            problems.append("re-run changed Docker: %s" % [" ".join(c[:4]) for c in changed])
        result = self.bo.run("buildout:parts=")
        if not result.ok:
            problems.append("uninstall failed: %s" % result.error_line())
        left = self.leftovers()
        if left:
            problems.append("left after uninstall: %s" % sorted(left))
            self.clean(left)
        files = [key for folder in self.scenario.folders
                 for key in folder_state(folder % self.values)]
        if files:
            problems.append("files left after uninstall: %s" % sorted(files))
        temporary = self.docker.temporary_files()
        if temporary:
            problems.append("temporary files left after a plain run: %s" % temporary)

    # -- the sweep -----------------------------------------------------------------
    def start(self, check=True):
        """Test objects, then the uninterrupted reference; returns N.

        With CHECK, the reference must itself converge (re-run, uninstall);
        without, the first case's preparation uninstalls it (still checked
        for leftovers).
        """
        if self.scenario.setup:
            self.values.update(self.scenario.setup(self.prefix) or {})
            self.baseline = objects_of(self.prefix, self.owner)
        problems = self.fresh() + self.prepare()
        result = self.run(self.scenario.steps[-1])
        assert result.ok and not problems, (problems, result.output)
        self.calls = self.docker.calls()
        self.reference = self.state()
        if check:
            self.converged(problems)
        assert not problems, "the uninterrupted scenario does not converge: %s" % problems
        return len(self.calls)

    def case(self, k, signal="KILL", kill_container=False, when="after"):
        problems = self.fresh() + self.prepare()
        if problems:
            return Outcome(k, problems)
        container = (self.scenario.container % self.values) if kill_container else None
        result = self.run(self.scenario.steps[-1], at=k, signal=signal, when=when,
                          container=container)
        fault = self.docker.fault()
        if signal != "none" and fault is None and not result.ok:
            # no fault happened and still the run failed.  (A call that dockeroo
            # itself stops, e.g. the check of a copy's source path that is closed
            # once the path is found, cannot be a kill point: the run then goes
            # on unharmed and must converge like any other.)
            problems.append("the fault did not happen (%d calls) and the run failed"
                            % len(self.docker.calls()))
        if "Traceback" in result.output:
            problems.append("traceback in the faulted run")
        result = self.run(self.scenario.steps[-1])
        if not result.ok:
            problems.append("the run after the fault failed: %s" % (
                result.error_line() or result.output[-300:]))
        diff = differences(self.reference, self.state())
        if diff:
            problems.append("state differs: " + " | ".join(diff))
        self.converged(problems)
        return Outcome(k, problems)

    def finish(self):
        self.fresh()
        if self.scenario.setup:
            roots = self.roots
            self.clean(objects_of(self.prefix, self.owner, roots) | {("image", r) for r in roots})


def sweep(make_sweep, ks, signal="KILL", kill_container=False, workers=2, check=True):
    """Run the cases KS, spread over up to WORKERS independent sweeps (threads).

    MAKE_SWEEP(i) returns a fresh :class:`Sweep` (its own directory and
    prefix); each worker makes its own reference.  KS is a list of ints or
    a function (N, reference calls) -> list; a second worker is started
    only when there are enough cases to share.  Returns (N, ks, failures,
    seconds, reference calls): failures are the Outcomes with problems.
    """
    started = time.monotonic()
    sweeps = [make_sweep(0)]
    outcomes = []
    try:
        n = sweeps[0].start(check)
        chosen = list(ks(n, sweeps[0].calls) if callable(ks) else ks)
        if workers > 1 and len(chosen) >= 4:
            sweeps += [make_sweep(i) for i in range(1, workers)]
        shares = [chosen[i::len(sweeps)] for i in range(len(sweeps))]

        def work(i):
            if i and sweeps[i].start(check) != n:
                # a read-only call more or less (a cached inspect read again after a
                # change made by a parallel job) moves the kill points but changes
                # nothing of what the sweep kills; other changing calls are a defect
                mine, first = sweeps[i].calls, sweeps[0].calls
                def changing(calls, prefix):  # what each changing call does (names vary)
                    return sorted(" ".join(w for w in c[:2] if not w.startswith(prefix))
                                  for c in calls if changes_docker(c))
                if changing(first, sweeps[0].prefix) != changing(mine, sweeps[i].prefix):
                    return [Outcome(0, ["worker %d counts another N (%d, not %d), and other "
                                        "changing calls (%s / %s): %s" % (
                        i, len(mine), n, changing(first, sweeps[0].prefix),
                        changing(mine, sweeps[i].prefix), " | ".join(
                            "%d: %s / %s" % (j, " ".join(a[:4]) if a else "-",
                                             " ".join(b[:4]) if b else "-")
                            for j, (a, b) in enumerate(itertools.zip_longest(first, mine))
                            if (a or [])[:2] != (b or [])[:2]))])]
            return [sweeps[i].case(k, signal, kill_container) for k in shares[i]]

        with ThreadPoolExecutor(len(sweeps)) as pool:
            outcomes = [o for part in pool.map(work, range(len(sweeps))) for o in part]
    finally:
        for s in sweeps:
            try:
                s.finish()
            except Exception:  # noqa: BLE001 - the prefix fixture cleans the rest
                pass
    failures = sorted((o for o in outcomes if o.problems), key=lambda o: o.k)
    return n, chosen, failures, time.monotonic() - started, sweeps[0].calls


def remove(objects):
    """Remove (kind, name) OBJECTS; images children first (a parent with children stays)."""
    for kind in ("container", "network", "volume"):
        names = [n for k, n in objects if k == kind]
        if kind == "container" and names:
            docker("rm", "-f", "-v", *names, check=False)
        elif names:
            docker(kind, "rm", *names, check=False)
    images = [n for k, n in objects if k == "image"]
    for _ in range(10):
        if not images:
            break
        docker("image", "rm", "-f", *images, check=False)
        images = [i for i in images if inspect("image", i) is not None]


# -- helpers for scenario set-ups ----------------------------------------------------------
def free_subnet():
    """A free 172.{28..31}.X.0/24, as text (see support.engine.free_subnet)."""
    return str(pool_subnet())
