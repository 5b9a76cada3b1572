"""DockerEngine: the only code in dockeroo that starts ``docker`` or ``docker-machine``.

Every call is an argv list.  Failures raise :class:`DockerError`, carrying
the command, the exit code and stderr, typed once here from the engine's
answer (:class:`NotFound`, :class:`InUse`, :class:`Conflict`,
:class:`Timeout`, :class:`Unreachable`, :class:`HostChanged`: Docker and
Podman word them differently), so that callers never match error texts.
Structured output comes from ``inspect`` JSON, never from scraped tables.
"""

import atexit
import copy
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager, suppress
from dataclasses import astuple

from dockeroo.base import mode, references, scratch
from dockeroo.engine.capabilities import Capabilities
from dockeroo.base.redaction import redact
from dockeroo.base.state import read_json, store_json
from dockeroo.engine.client import ClientBuilder, _CLIENT_BUILDERS, _client_key
from dockeroo.engine.commands import INSPECT_KINDS, _PLAN_SAFE_MACHINE, _changed_kinds, _read_only, plan_safe
from dockeroo.engine.errors import DockerError, HostChanged, SshFailed, Unreachable, _only_missing
from dockeroo.engine.process import DEFAULT_LONG_TIMEOUT, DEFAULT_TIMEOUT, Feed, Result, Supervisor, _write_all
from dockeroo.engine.selection import EngineConfig
from dockeroo.engine.ssh import Tunnel

log = logging.getLogger("dockeroo")

#: the commands that a :class:`HostChanged` answer proves changed nothing (Podman
#: checks a new network's subnet before it makes anything), run again after these pauses
_RUN_AGAIN_IF_HOST_CHANGED = {("network", "create")}
_HOST_CHANGED_PAUSES = (0.2, 0.5, 1.0, 2.0)


class DockerEngine:
    """Runs the docker CLI against one engine, with a batched inspect cache."""

    _shared = {}

    def __init__(self, config=None, docker=None):
        self.config = config or EngineConfig()
        self.docker = docker or self.config.docker
        self._cache = {kind: {} for kind in INSPECT_KINDS}
        self._pending = {kind: set() for kind in INSPECT_KINDS}
        self._facts = {}  # docker info and version, shared with the with_timeout() views
        self._listings = {}  # read-only listings (listing()), shared with the views too
        self._wanted_listings = set()  # fetched with the next batch of inspects
        self.calls = 0
        #: how long one batched ``docker KIND inspect`` may take
        self.inspect_timeout = DEFAULT_TIMEOUT
        #: the ssh connection of an ssh:// engine (shared with the with_timeout() views)
        self.tunnel = Tunnel(self.config.ssh) if self.config.ssh else None

    @classmethod
    def shared(cls, config):
        """One engine object per configuration and process (shares the cache)."""
        engine = cls._shared.get(config)
        if engine is None:
            engine = cls._shared[config] = cls(config)
        return engine

    @classmethod
    def disconnect_all(cls):
        """End the ssh connections of this process's engines (at exit; never raises)."""
        for engine in list(cls._shared.values()):
            if engine.tunnel is not None:
                engine.tunnel.close()

    def _lost(self, exc):
        """EXC, or the error saying why when the engine's ssh connection is gone
        (a command cut off by it fails with docker's own words, or none: ssh
        may end a moment after the command)."""
        tunnel = self.tunnel
        if tunnel is None or tunnel.proc is None or not isinstance(exc, DockerError) \
                or isinstance(exc, SshFailed):
            return exc
        with suppress(subprocess.TimeoutExpired):
            tunnel.proc.wait(1 if isinstance(exc, Unreachable) or exc.returncode == 255 else 0.05)
        return tunnel.died(exc.cmd) if not tunnel.alive() else exc

    def with_timeout(self, timeout):
        """This engine as seen by a part with option ``timeout`` = TIMEOUT: the
        same inspect cache and pending names, but the batched inspects it
        starts wait at most TIMEOUT seconds.  Without TIMEOUT: this engine."""
        if not timeout:
            return self
        view = copy.copy(self)  # shares _cache, _pending and _facts (the same dicts)
        view.inspect_timeout = timeout
        return view

    # -- running commands -------------------------------------------------
    def _argv(self, args, program=None):
        """The argv of ``docker ARGS`` (or ``PROGRAM ARGS``), checked before
        any process starts: ``dockeroo plan`` runs only what changes nothing."""
        argv = [program or self.docker] + [str(a) for a in args]
        if mode.PLANNING and not (plan_safe(argv[1:]) if program is None
                                   else argv[1:2] and argv[1] in _PLAN_SAFE_MACHINE):
            raise mode.PlanViolation("dockeroo plan must not run %s" % " ".join(
                redact(a) for a in argv[:3]))
        self.calls += 1
        if program is None:
            self._changing(argv[1:])
        if log.isEnabledFor(logging.DEBUG):
            log.debug("running %s", [redact(word) for word in argv[:6]])
        return argv

    def popen(self, args, supervisor, program=None, env=None, **kwargs):
        """Start ``docker ARGS`` under SUPERVISOR (a :class:`Supervisor`: its
        deadline kills it); the only way dockeroo starts a process."""
        argv = self._argv(args, program)
        environ = self.config.environ(env)
        if self.tunnel is not None and program is None:
            environ["DOCKER_HOST"] = self.tunnel.docker_host(supervisor.left(), argv)
        return supervisor.start(argv, env=environ, **kwargs)

    def run(self, args, *, input=None, timeout=DEFAULT_TIMEOUT, check=True,
            stream=None, env=None, program=None):
        """Run ``docker ARGS`` (argv list).

        ``input`` (str or bytes) is written to stdin.  ``stream`` is a
        logger: stdout and stderr lines go to it as they come (stdout is
        still returned).  ``timeout`` seconds: the process is killed and a
        :class:`Timeout` says so.  A ``network create`` answered with
        :class:`HostChanged` (it made nothing) is run again after a pause.
        """
        for pause in _HOST_CHANGED_PAUSES if tuple(args[:2]) in _RUN_AGAIN_IF_HOST_CHANGED else ():
            try:
                return self._run_once(args, input, timeout, check, stream, env, program)
            except HostChanged as exc:
                log.debug("%s; running it again in %ss", exc, pause)
                time.sleep(pause)
        return self._run_once(args, input, timeout, check, stream, env, program)

    def _run_once(self, args, input, timeout, check, stream, env, program):
        data = input.encode() if isinstance(input, str) else input
        if stream is None:
            with Supervisor(timeout) as group:
                proc = self.popen(args, group, program=program, env=env,
                                  stdin=None if data is None else subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                out, err = group.communicate(proc, data)
            if group.timed_out:
                raise group.timeout(proc, err)
            result = Result(proc.args, proc.returncode, out, err)
        else:
            result = self._run_streamed(args, data, timeout, stream, env, program)
        if check and result.returncode != 0:
            raise self._lost(DockerError.from_output(result.args, result.returncode,
                                                     result.stderr or result.stdout[-2000:]))
        return result

    def _run_streamed(self, args, data, timeout, logger, env, program):
        out, err = [], []

        def pump(pipe, sink):
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace")
                sink.append(line)
                text = line.rstrip("\r\n")
                if text:
                    logger.info("%s", redact(text))
            pipe.close()

        # the pipes are left open: a reader thread may still block on them
        with Supervisor(timeout, close_pipes=False) as group:
            proc = self.popen(args, group, program=program, env=env,
                              stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            threads = [threading.Thread(target=pump, args=(pipe, sink), daemon=True)
                       for pipe, sink in ((proc.stdout, out), (proc.stderr, err))]
            if data is not None:  # written by a thread: the deadline holds while it blocks
                threads.append(threading.Thread(target=_write_all, args=(proc.stdin, data),
                                                daemon=True))
            for t in threads:
                t.start()
            proc.wait()
        # after a kill, a grandchild (the ssh client of docker-machine ssh)
        # may still hold the pipes open: do not wait for it
        give_up = time.monotonic() + 3
        for t in threads:
            t.join(max(0.0, give_up - time.monotonic()) if group.timed_out else None)
        stderr = "".join(err)
        if group.timed_out:
            raise group.timeout(proc, stderr[-2000:])
        return Result(proc.args, proc.returncode, "".join(out), stderr)

    def json(self, args, **kwargs):
        return self.run(args, **kwargs).json()

    # -- streaming pipes ----------------------------------------------------
    def feed(self, args, writer, timeout=DEFAULT_LONG_TIMEOUT):
        """Run ``docker ARGS`` with stdin written by ``writer(binary_file)``.

        Used for ``docker cp - c:/``, ``docker import -`` and friends; the
        data never touches the disk.  Returns the :class:`Result`.
        """
        return self.pipe(None, args, lambda _src, out: writer(out), timeout)

    def pipe(self, src_args, dst_args, transform=None, timeout=DEFAULT_LONG_TIMEOUT):
        """``docker SRC_ARGS | transform | docker DST_ARGS``.

        Without ``transform`` the two processes are connected directly (no
        Python in the data path: a producer that fails midway ends the
        consumer's input as if it were whole).  ``transform(src, out)``
        reads the producer's stdout (None when there is no producer) and
        writes the consumer's stdin; when the transform or the producer
        fails, the consumer's input is spoiled (:class:`Feed`) so that
        ``docker import`` or ``docker load`` refuses it instead of making an
        image of a part.  Both processes are killed when ``timeout``
        passes; any failure raises :class:`DockerError`.
        """
        producer = None
        transform_error = None
        with Supervisor(timeout) as group:
            if src_args is not None:
                producer = self.popen(src_args, group, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            direct = producer is not None and transform is None
            consumer = self.popen(
                dst_args, group, stdin=producer.stdout if direct else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if direct:
                producer.stdout.close()  # the consumer holds the read end now
            readers = {proc: group.collect(proc, stdout=proc is consumer) for proc in group.procs}
            if not direct:
                feed = Feed(consumer.stdin)
                try:
                    transform(producer.stdout if producer else None, feed)
                    if producer is not None:  # its stream ends cleanly only if it succeeded
                        producer.stdout.close()
                        if producer.wait() != 0:
                            feed.spoil()
                except BrokenPipeError:
                    pass
                except Exception as exc:  # report after the processes are reaped
                    transform_error = exc
                    feed.spoil()  # the consumer refuses what it got, and exits
                    if producer:
                        group.kill(producer)
                except BaseException:  # Ctrl-C, SIGTERM: the supervisor kills them
                    feed.spoil()
                    raise
                finally:
                    with suppress(OSError):
                        consumer.stdin.close()
                    if producer:
                        producer.stdout.close()
            for proc in group.procs:
                proc.wait()
            outputs = {proc: join() for proc, join in readers.items()}
        if group.timed_out:
            raise group.timeout(consumer)
        for proc in group.procs:
            if proc.returncode != 0 and transform_error is None:
                raise self._lost(group.error(proc, outputs[proc][1]))
        if transform_error is not None:
            raise transform_error
        return Result(consumer.args, consumer.returncode, outputs[consumer][0], "")

    def reader(self, args, consume, timeout=DEFAULT_LONG_TIMEOUT):
        """Run ``docker ARGS`` and hand its stdout to ``consume(binary_file)``."""
        with Supervisor(timeout) as group:
            proc = self.popen(args, group, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
            join = group.collect(proc, stdout=False)
            try:
                value = consume(proc.stdout)
                proc.stdout.close()
                proc.wait()
            finally:
                group.kill()
                proc.wait()
                _out, err = join()
        if group.timed_out:
            raise group.timeout(proc)
        if proc.returncode != 0:
            raise self._lost(group.error(proc, err))
        return value

    # -- engine facts -----------------------------------------------------
    def info(self):
        if "info" not in self._facts:
            self._facts["info"] = self.json(["info", "--format", "{{json .}}"])
        return self._facts["info"]

    @property
    def capabilities(self):
        """What the engine is (:class:`capabilities.Capabilities`): one
        ``docker version``, run the first time something asks, then cached
        for the engine's life (one engine per configuration and run)."""
        if "capabilities" not in self._facts:
            answer = self.json(["version", "--format", "{{json .}}"])
            self._facts["capabilities"] = Capabilities.from_version(answer)
        return self._facts["capabilities"]

    @property
    def kind(self):
        """``docker`` or ``podman``."""
        return self.capabilities.kind

    def architecture(self):
        """The engine's architecture as Docker names it (amd64, arm64, ...)."""
        return self.capabilities.arch

    def client_builder(self, cache_dir=None):
        """What this engine's docker client can build with: a :class:`ClientBuilder`.

        Asked once per client and process (``docker --version``, and ``docker
        buildx version`` for clients that need the plugin); with CACHE_DIR
        the answer is also kept there, keyed by the client's and the buildx
        plugins' files, so that later runs start no process for it.
        """
        environ = self.config.environ()
        path = shutil.which(self.docker, path=environ.get("PATH"))
        if path is None:
            return ClientBuilder(False, False, self.docker, "", "the docker client %r was not found"
                                 % self.docker)
        key = _client_key(path, environ)
        found = _CLIENT_BUILDERS.get(key)
        store = os.path.join(cache_dir, "docker-clients.json") if cache_dir else None
        if found is None and store:
            try:
                found = ClientBuilder(*read_json(store, {})[key])
            except (KeyError, TypeError):
                found = None
        if found is None:
            found = self._probe_client(path)
            if store and found.version and not mode.PLANNING:  # not asked again; plan writes nothing
                store_json(store, key, list(astuple(found)))
        _CLIENT_BUILDERS[key] = found
        return found

    def _probe_client(self, path):
        # "Docker version 20.10.24+dfsg1, build 297e128": the client alone, no engine asked
        result = self.run(["--version"], check=False, timeout=60)
        version = re.search(r"version\s+([^\s,]+)", result.stdout)
        version = version.group(1) if version else ""
        number = re.match(r"(\d+)\.(\d+)", version)
        number = tuple(int(n) for n in number.groups()) if number else None
        client = "%s (%s)" % (path, version or "version unknown")
        if number is not None and (18, 9) <= number < (23, 0):
            # BuildKit built into the client (DOCKER_BUILDKIT=1); its Dockerfile
            # frontend predates heredocs
            return ClientBuilder(True, False, path, version,
                                 "the docker client %s has BuildKit built in" % client)
        buildx = self.run(["buildx", "version"], check=False, timeout=60)
        if buildx.returncode == 0:
            return ClientBuilder(True, True, path, version, "the docker client %s has the buildx "
                                 "plugin (%s)" % (client, buildx.stdout.strip()[:80]))
        if number is not None and number < (18, 9):
            why = "the docker client %s predates BuildKit" % client
        else:
            why = "the docker client %s has no buildx plugin" % client
        return ClientBuilder(False, False, path, version, why)

    # -- batched inspection -------------------------------------------------
    def want(self, kind, name):
        """Register an object to be fetched with the next inspect of its kind."""
        if name and name not in self._cache[kind]:
            self._pending[kind].add(name)

    def _changing(self, args):
        """Before a command that may change Docker objects: drop the cached
        inspect data it may make wrong (fetched again, still batched, when
        next asked for).

        Only what the command can change is dropped: the objects of its own
        kind that it names (by name or id, also as ``NAME:PATH``), objects of
        other kinds it names that were cached as missing (``create`` makes
        the named volume of ``--volume`` and may pull its image), all images
        for a command that moves tags, and everything for a command not
        known here.  So a first apply does not fetch every kind again after
        each create.
        """
        if _read_only(args):
            return
        self._listings.clear()
        kinds = _changed_kinds(args)
        if kinds is None:
            words, kinds, own = None, INSPECT_KINDS, ()
        else:
            kinds, own = kinds
            words = set()
            for arg in args[1:]:
                if not arg.startswith("-"):
                    words.add(arg)
                    words.add(arg.split(":", 1)[0])
        for kind in INSPECT_KINDS:
            cache = self._cache[kind]
            if not cache:
                continue
            if kind in kinds:
                stale = list(cache)
            elif words is None:
                continue
            else:
                stale = [name for name, obj in cache.items()
                         if (name in words and (obj is None or kind in own))
                         or (obj and kind in own and _names_id(obj, words))]
            for name in stale:
                self._pending[kind].add(name)
                del cache[name]

    def inspect(self, kind, name):
        """The inspect JSON of one object, or None when it does not exist.

        All names registered with :meth:`want` for the same kind are fetched
        in the same ``docker KIND inspect`` call, and the names wanted of the
        other kinds are fetched at the same time by concurrent processes
        (a no-op buildout run costs one round of inspects, whatever the
        number of parts).  Cached data is dropped whenever this engine runs
        a command that may change objects.
        """
        cache = self._cache[kind]
        if name in cache:
            return cache[name]
        self._pending[kind].add(name)
        batches = {k: sorted(self._pending[k]) for k in INSPECT_KINDS if self._pending[k]}
        for k in batches:
            self._pending[k].clear()
        listings = [key for key in self._wanted_listings if key not in self._listings]
        self._wanted_listings.clear()
        error = None
        with Supervisor(self.inspect_timeout) as group:  # one deadline for the whole batch
            procs = {k: self.popen([k, "inspect", "--"] + names, group, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                     for k, names in batches.items()}
            listed = {key: self.popen(list(key), group, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                      for key in listings}
            answers = {k: group.communicate(proc) for k, proc in procs.items()}
            for key, proc in listed.items():  # kept when it answered; else asked again when used
                out, _err = group.communicate(proc)
                if proc.returncode == 0 and not group.timed_out:
                    self._listings[key] = out
        for k, proc in procs.items():
            out, err = answers[k]
            if proc.returncode < 0 and group.timed_out:
                if k == kind:
                    error = group.timeout(proc, err)
                self._pending[k].update(batches[k])
                continue
            try:
                found = (json.loads(out) or []) if out.strip() else []
            except ValueError:
                found = []
            if proc.returncode != 0 and not found and not _only_missing(err):
                # asked for by someone else: fetched again (and reported) then
                if k == kind:
                    error = self._lost(DockerError.from_output(proc.args, proc.returncode, err))
                self._pending[k].update(batches[k])
                continue
            for wanted in batches[k]:
                self._cache[k][wanted] = _match(k, wanted, found, lambda: self.capabilities.is_podman)
        if error is not None:
            self._pending[kind].discard(name)
            raise error
        return cache[name]

    def inspect_existing(self, kind, names, timeout=DEFAULT_TIMEOUT):
        """The inspect JSON of those of NAMES (KIND objects) that exist, in one
        ``docker KIND inspect`` (not cached): one removed since it was listed
        (by anyone) is only missing from the answer.  Any other failure raises
        (typed, as :meth:`run`)."""
        if not names:
            return []
        result = self.run([kind, "inspect", "--"] + list(names), timeout=timeout, check=False)
        if result.returncode != 0 and not _only_missing(result.stderr):
            raise self._lost(DockerError.from_output(result.args, result.returncode,
                                                     result.stderr or result.stdout[-2000:]))
        return result.json() or []

    def want_listing(self, args):
        """Register the read-only command ``docker ARGS`` (see :meth:`listing`)
        to run beside the next batch of inspects: its answer is then there
        when asked for, without a process of its own."""
        key = tuple(args)
        if _read_only(list(key)) and key not in self._listings:
            self._wanted_listings.add(key)

    def listing(self, args):
        """The output of the read-only command ``docker ARGS`` (a ``ps``
        listing), run once and kept until this engine runs a command that
        may change objects (or :meth:`forget` is called): the users of
        many networks and volumes come from one ``ps``.  A failure raises
        (typed, as :meth:`run`) and is not kept."""
        key = tuple(args)
        if not _read_only(list(key)):
            raise ValueError("not a read-only command: %r" % (key,))
        if key not in self._listings:
            self._listings[key] = self.run(list(key)).stdout
        return self._listings[key]

    def forget(self, kind, name=None):
        """Drop cached inspect data (after the object changed)."""
        self._listings.clear()
        if name is None:
            self._cache[kind].clear()
        else:
            self._cache[kind].pop(name, None)
            if kind == "image":  # ids and other references may name the same image
                self._cache[kind].clear()

    def image_id(self, ref):
        data = self.inspect("image", ref)
        return data["Id"] if data else None

    # -- registry login ----------------------------------------------------
    @contextmanager
    def login(self, registry, username, password, timeout=DEFAULT_TIMEOUT):
        """Log in with a throw-away DOCKER_CONFIG; yields the env to use.

        Without credentials the user's own configuration is used as it is
        (yields None).  The password only ever travels on stdin.
        """
        if not username:
            yield None
            return
        # a private directory named after this process: a kill before the
        # finally below leaves it (with the credentials docker login wrote),
        # and the next run sweeps it (dockeroo.base.scratch)
        tmp = scratch.owned_directory("login")
        try:
            env = self._login_config(tmp)
            args = ["login", "--username", username, "--password-stdin"]
            if registry:
                args.append(registry)
            try:
                self.run(args, input=(password or "") + "\n", env=env, timeout=timeout)
            except DockerError as exc:
                raise exc.masking(password)
            yield env
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _login_config(self, tmp):
        """The env for a throw-away DOCKER_CONFIG in TMP that still selects the
        user's engine: the current context (and the context store) and the
        default TLS certificate directory live in the user's DOCKER_CONFIG."""
        environ = self.config.environ()
        user_dir = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
        env = {"DOCKER_CONFIG": tmp}
        config = {}
        try:
            with open(os.path.join(user_dir, "config.json")) as handle:
                current = json.load(handle).get("currentContext")
            if current and current != "default":
                config["currentContext"] = current
        except (OSError, ValueError, AttributeError):
            pass
        with open(os.path.join(tmp, "config.json"), "w") as handle:
            json.dump(config, handle)
        if os.path.isdir(os.path.join(user_dir, "contexts")):
            os.symlink(os.path.join(user_dir, "contexts"), os.path.join(tmp, "contexts"))
        if (environ.get("DOCKER_TLS_VERIFY") or environ.get("DOCKER_TLS")) and not environ.get("DOCKER_CERT_PATH"):
            env["DOCKER_CERT_PATH"] = user_dir
        return env


# the ssh connections end with the process: registered at import, before any Run
# registers its exit hook, so it runs after the Run's (which may still need them)
atexit.register(DockerEngine.disconnect_all)


def _names_id(obj, words):
    oid = (obj.get("Id") or obj.get("ID") or "").split(":", 1)[-1]
    return any(len(w) >= 12 and oid.startswith(w.split(":", 1)[-1]) for w in words)


def _match(kind, name, objects, podman=None):
    if kind == "image":  # references compared parsed: busybox is docker.io/library/busybox:latest
        return references.find_image(name, objects, podman)
    for obj in objects:
        oid = obj.get("Id") or obj.get("ID") or ""
        if kind == "container":
            if obj.get("Name", "").lstrip("/") == name or (len(name) >= 12 and oid.startswith(name)):
                return obj
        elif kind in ("volume", "network"):
            if obj.get("Name") == name or (kind == "network" and len(name) >= 12 and oid.startswith(name)):
                return obj
    return None

