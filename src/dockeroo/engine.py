"""DockerEngine: the only code in dockeroo that starts ``docker`` or ``docker-machine``.

Every call is an argv list.  Failures become one exception type,
:class:`DockerError`, carrying the command, the exit code and stderr.
Structured output comes from ``inspect`` JSON, never from scraped tables.
"""

import copy
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_TIMEOUT = 180
#: default for long operations (build, pull, push, scripts, copies)
DEFAULT_LONG_TIMEOUT = 3600

log = logging.getLogger("dockeroo")

INSPECT_KINDS = ("container", "image", "network", "volume")
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# -- secrets -----------------------------------------------------------------------
#: values (build-env values, passwords in archive URLs) never shown: every
#: DockerError, logged command line, streamed output line and option error
#: shows ``***`` instead
_SECRETS = set()
#: shorter values are not hidden: they would blank out unrelated text
SECRET_MIN_LENGTH = 4
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def add_secret(value):
    """Hide VALUE (a str) wherever dockeroo forms a message from now on."""
    if value and len(value) >= SECRET_MIN_LENGTH:
        _SECRETS.add(value)


def redact(text):
    """TEXT with the registered secrets and the user:password of URLs as ``***``."""
    if not text or not isinstance(text, str):
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return _USERINFO.sub(r"\1***@", text) if "@" in text else text


class DockerError(Exception):
    """A docker (or docker-machine) command failed or timed out."""

    def __init__(self, cmd, returncode, stderr, timed_out=None):
        self.cmd = [redact(str(word)) for word in cmd]
        self.returncode = returncode
        self.stderr = redact((stderr or "").strip())
        self.timed_out = timed_out
        super().__init__(str(self))

    def __str__(self):
        shown = " ".join(self.cmd[:4]) + (" ..." if len(self.cmd) > 4 else "")
        if self.timed_out:
            return "'%s' timed out after %ss and was killed%s" % (
                shown, self.timed_out,
                (": " + self.stderr) if self.stderr else "")
        return "'%s' failed (exit %s): %s" % (shown, self.returncode, self.stderr or "no error output")

    @property
    def not_found(self):
        s = self.stderr.lower()
        return "no such" in s or "not found" in s


@dataclass
class Result:
    args: list
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None

    def json_lines(self):
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def tail(self, lines=20):
        """The last LINES lines of stdout, then of stderr, without colour codes."""
        parts = []
        for text in (self.stdout, self.stderr):
            kept = [l.rstrip() for l in ANSI_ESCAPE.sub("", text or "").splitlines() if l.strip()]
            parts.extend(kept[-lines:])
        return "\n".join(parts)


def _deadline_wait(proc, timeout):
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True
    except BaseException:  # Ctrl-C, SIGTERM: leave no orphaned docker client running
        proc.kill()
        proc.wait()
        raise


@dataclass(frozen=True)
class EngineConfig:
    """Where the engine is: extra environment for the docker CLI."""

    env: tuple = ()  # sorted (key, value) pairs added to os.environ
    unset: tuple = ()  # variables removed from os.environ
    description: str = "the default docker engine"

    def environ(self, extra=None):
        env = dict(os.environ)
        for key in self.unset:
            env.pop(key, None)
        env.update(dict(self.env))
        if extra:
            env.update(extra)
        return env


class DockerEngine:
    """Runs the docker CLI against one engine, with a batched inspect cache."""

    _shared = {}

    def __init__(self, config=None, docker="docker"):
        self.config = config or EngineConfig()
        self.docker = docker
        self._cache = {kind: {} for kind in INSPECT_KINDS}
        self._pending = {kind: set() for kind in INSPECT_KINDS}
        self._facts = {}  # docker info, shared with the with_timeout() views
        self.calls = 0
        #: how long one batched ``docker KIND inspect`` may take
        self.inspect_timeout = DEFAULT_TIMEOUT

    @classmethod
    def shared(cls, config):
        """One engine object per configuration and process (shares the cache)."""
        engine = cls._shared.get(config)
        if engine is None:
            engine = cls._shared[config] = cls(config)
        return engine

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
    def run(self, args, *, input=None, timeout=DEFAULT_TIMEOUT, check=True,
            stream=None, env=None, program=None):
        """Run ``docker ARGS`` (argv list).

        ``input`` (str or bytes) is written to stdin.  ``stream`` is a
        logger: stdout and stderr lines go to it as they come (stdout is
        still returned).  ``timeout`` seconds: the process is killed and a
        :class:`DockerError` says so.
        """
        argv = [program or self.docker] + [str(a) for a in args]
        self.calls += 1
        if program is None:
            self._changing(argv[1:])
        environ = self.config.environ(env)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("running %s", [redact(word) for word in argv[:6]])
        if stream is None:
            try:
                proc = subprocess.run(
                    argv, input=input.encode() if isinstance(input, str) else input,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env=environ, timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise DockerError(argv, None, _text(exc.stderr), timed_out=timeout)
            except FileNotFoundError:
                raise DockerError(argv, 127, "%s: command not found" % argv[0])
            result = Result(argv, proc.returncode, _text(proc.stdout), _text(proc.stderr))
        else:
            result = self._run_streamed(argv, input, timeout, stream, environ)
        if check and result.returncode != 0:
            raise DockerError(argv, result.returncode, result.stderr or result.stdout[-2000:])
        return result

    def _run_streamed(self, argv, input, timeout, logger, environ):
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ)
        except FileNotFoundError:
            raise DockerError(argv, 127, "%s: command not found" % argv[0])
        out, err = [], []

        def pump(pipe, sink, level):
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace")
                sink.append(line)
                text = line.rstrip("\r\n")
                if text:
                    logger.log(level, "%s", redact(text))
            pipe.close()

        threads = [threading.Thread(target=pump, args=(proc.stdout, out, logging.INFO), daemon=True),
                   threading.Thread(target=pump, args=(proc.stderr, err, logging.INFO), daemon=True)]
        if input is not None:  # written by a thread: the deadline holds while it blocks
            data = input.encode() if isinstance(input, str) else input
            threads.append(threading.Thread(target=_write_all, args=(proc.stdin, data),
                                            daemon=True))
        try:
            for t in threads:
                t.start()
        except BaseException:  # Ctrl-C while the threads start: no orphaned child
            proc.kill()
            proc.wait()
            raise
        timed_out = _deadline_wait(proc, timeout)
        # after a kill, a grandchild (the ssh client of docker-machine ssh)
        # may still hold the pipes open: do not wait for it
        give_up = time.monotonic() + 3
        for t in threads:
            t.join(max(0.0, give_up - time.monotonic()) if timed_out else None)
        stderr = "".join(err)
        if timed_out:
            raise DockerError(argv, None, stderr[-2000:], timed_out=timeout)
        return Result(argv, proc.returncode, "".join(out), stderr)

    def popen(self, args, **kwargs):
        """Start ``docker ARGS`` for streaming (tar pipes); caller waits."""
        argv = [self.docker] + [str(a) for a in args]
        self.calls += 1
        self._changing(argv[1:])
        kwargs.setdefault("env", self.config.environ())
        try:
            return subprocess.Popen(argv, **kwargs)
        except FileNotFoundError:
            raise DockerError(argv, 127, "%s: command not found" % argv[0])

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
        Python in the data path).  ``transform(src, out)`` reads the
        producer's stdout (None when there is no producer) and writes the
        consumer's stdin.  Both processes are killed when ``timeout``
        passes; any failure raises :class:`DockerError`.
        """
        procs, errors = [], {}
        producer = None
        try:
            if src_args is not None:
                producer = self.popen(src_args, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                procs.append(producer)
            direct = producer is not None and transform is None
            consumer = self.popen(
                dst_args, stdin=producer.stdout if direct else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append(consumer)
            if direct:
                producer.stdout.close()  # the consumer holds the read end now
            readers = []
            outputs = {}
            for proc in procs:
                outputs[proc] = ([], [])
                streams = [(proc.stderr, outputs[proc][1])]
                if proc is consumer:
                    streams.append((proc.stdout, outputs[proc][0]))
                for pipe, sink in streams:
                    t = threading.Thread(target=lambda p=pipe, s=sink: s.append(p.read()), daemon=True)
                    t.start()
                    readers.append(t)
            timer = threading.Timer(timeout, self._kill_all, args=(procs, errors))
            timer.daemon = True
            timer.start()
            transform_error = None
            try:
                if not direct:
                    try:
                        transform(producer.stdout if producer else None, consumer.stdin)
                    except BrokenPipeError:
                        pass
                    except Exception as exc:  # report after the processes are reaped
                        transform_error = exc
                        self._kill_all(procs, {})
                    finally:
                        try:
                            consumer.stdin.close()
                        except BrokenPipeError:
                            pass
                        if producer:
                            producer.stdout.close()
                for proc in procs:
                    proc.wait()
            finally:
                timer.cancel()
            for t in readers:
                t.join()
        except BaseException:
            self._kill_all(procs, {})
            raise
        if errors.get("timeout"):
            raise DockerError(procs[-1].args, None, "", timed_out=timeout)
        for proc in procs:
            err = b"".join(outputs[proc][1]).decode("utf-8", "replace")
            if proc.returncode != 0 and transform_error is None:
                raise DockerError(proc.args, proc.returncode, err)
        if transform_error is not None:
            raise transform_error
        out = b"".join(outputs[consumer][0]).decode("utf-8", "replace")
        return Result(consumer.args, consumer.returncode, out, "")

    @staticmethod
    def _kill_all(procs, errors):
        errors["timeout"] = True
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    def reader(self, args, consume, timeout=DEFAULT_LONG_TIMEOUT):
        """Run ``docker ARGS`` and hand its stdout to ``consume(binary_file)``."""
        proc = self.popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        err = []
        t = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        t.start()
        state = {}
        timer = threading.Timer(timeout, self._kill_all, args=([proc], state))
        timer.start()
        try:
            value = consume(proc.stdout)
            proc.stdout.close()
            proc.wait()
        except BaseException:
            self._kill_all([proc], {})
            proc.wait()
            raise
        finally:
            timer.cancel()
            t.join()
        if state.get("timeout"):
            raise DockerError(proc.args, None, "", timed_out=timeout)
        if proc.returncode != 0:
            raise DockerError(proc.args, proc.returncode, b"".join(err).decode("utf-8", "replace"))
        return value

    # -- engine facts -----------------------------------------------------
    def info(self):
        if "info" not in self._facts:
            self._facts["info"] = self.json(["info", "--format", "{{json .}}"])
        return self._facts["info"]

    def architecture(self):
        """The engine's architecture as Docker names it (amd64, arm64, ...)."""
        machine = self.info().get("Architecture", "")
        return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)

    # -- batched inspection -------------------------------------------------
    def want(self, kind, name):
        """Register an object to be fetched with the next inspect of its kind."""
        if name and name not in self._cache[kind]:
            self._pending[kind].add(name)

    def _changing(self, args):
        """Before a command that may change Docker objects: drop the cached
        inspect data (it described Docker before the change); the names
        are fetched again, still batched, when next asked for."""
        if _read_only(args):
            return
        for kind in INSPECT_KINDS:
            if self._cache[kind]:
                self._pending[kind].update(self._cache[kind])
                self._cache[kind].clear()

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
        procs = {}
        try:
            for k, names in batches.items():
                procs[k] = self.popen([k, "inspect", "--"] + names, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except DockerError:
            for proc in procs.values():
                proc.kill()
                proc.communicate()
            raise
        error = None
        deadline = time.monotonic() + self.inspect_timeout  # for the whole batch
        for k, proc in procs.items():
            try:
                out, err = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                if k == kind:
                    error = DockerError(proc.args, None, _text(err),
                                        timed_out=self.inspect_timeout)
                self._pending[k].update(batches[k])
                continue
            out, err = _text(out), _text(err)
            try:
                found = (json.loads(out) or []) if out.strip() else []
            except ValueError:
                found = []
            if proc.returncode != 0 and not found and not _only_missing(err):
                # asked for by someone else: fetched again (and reported) then
                if k == kind:
                    error = DockerError(proc.args, proc.returncode, err)
                self._pending[k].update(batches[k])
                continue
            for wanted in batches[k]:
                self._cache[k][wanted] = _match(k, wanted, found)
        if error is not None:
            self._pending[kind].discard(name)
            raise error
        return cache[name]

    def forget(self, kind, name=None):
        """Drop cached inspect data (after the object changed)."""
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
        tmp = tempfile.mkdtemp(prefix="dockeroo-login-")
        try:
            env = self._login_config(tmp)
            args = ["login", "--username", username, "--password-stdin"]
            if registry:
                args.append(registry)
            try:
                self.run(args, input=(password or "") + "\n", env=env, timeout=timeout)
            except DockerError as exc:
                raise DockerError(exc.cmd, exc.returncode,
                                  exc.stderr.replace(password or "\0", "***"), exc.timed_out)
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


def _write_all(pipe, data):
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError, ValueError):
        pass  # the process stopped reading: its exit status tells why
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def _text(data):
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


#: docker commands (first word, or "KIND verb") that change no object
_READ_ONLY = {"inspect", "ps", "info", "version", "logs", "history", "images", "login",
              "logout", "port", "top", "diff", "stats", "search", "events", "save"}
_READ_ONLY_VERBS = {"inspect", "ls", "list", "history", "logs", "port", "top", "diff", "df",
                    "stats", "save"}


def _read_only(args):
    if not args:
        return True
    if args[0] in _READ_ONLY:
        return True
    if args[0] in INSPECT_KINDS + ("system", "builder", "context", "manifest") and len(args) > 1:
        return args[1] in _READ_ONLY_VERBS
    if args[0] == "cp" and len(args) > 2:  # docker cp CONTAINER:PATH - reads only
        return args[-1] == "-" or ":" not in args[-1]
    return False


def _only_missing(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    # "No such object: x" (containers, images, volumes); "network x not found"
    return all("no such" in line.lower() or line.rstrip().endswith(" not found") for line in lines)


def normalize_image_ref(ref):
    """``busybox`` -> ``busybox:latest``; refs with a tag or digest unchanged."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"


def split_image_ref(ref):
    """``host:5000/a/b:tag`` -> (``host:5000/a/b``, ``tag``); tag ``latest`` by default."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, "@" + digest
    head, _, last = ref.rpartition("/")
    if ":" in last:
        name, tag = last.rsplit(":", 1)
        return (head + "/" + name if head else name), tag
    return ref, "latest"


def _match(kind, name, objects):
    for obj in objects:
        oid = obj.get("Id") or obj.get("ID") or ""
        if kind == "container":
            if obj.get("Name", "").lstrip("/") == name or (len(name) >= 12 and oid.startswith(name)):
                return obj
        elif kind in ("volume", "network"):
            if obj.get("Name") == name or (kind == "network" and len(name) >= 12 and oid.startswith(name)):
                return obj
        else:
            refs = set(obj.get("RepoTags") or []) | set(obj.get("RepoDigests") or [])
            bare = oid.split(":", 1)[-1]
            if (name in refs or normalize_image_ref(name) in refs or name == oid
                    or (len(name) >= 12 and bare.startswith(name.split(":", 1)[-1])
                        and all(c in "0123456789abcdef" for c in name.split(":", 1)[-1]))):
                return obj
    return None


# -- engine selection --------------------------------------------------------
def machine_config(name, timeout=DEFAULT_TIMEOUT):
    """Ask ``docker-machine`` where machine NAME's engine is and how to reach it."""
    runner = DockerEngine(EngineConfig(), docker="docker-machine")
    url = runner.run(["url", name], timeout=timeout).stdout.strip()
    info = runner.run(["inspect", name], timeout=timeout).json() or {}
    auth = (info.get("HostOptions") or {}).get("AuthOptions") or {}
    cert_path = auth.get("StorePath") or (
        os.path.dirname(auth["ClientCertPath"]) if auth.get("ClientCertPath") else None)
    env = {"DOCKER_HOST": url, "DOCKER_MACHINE_NAME": name}
    if cert_path:
        env["DOCKER_TLS_VERIFY"] = "1"
        env["DOCKER_CERT_PATH"] = cert_path
    return EngineConfig(env=tuple(sorted(env.items())),
                        unset=("DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"),
                        description="docker-machine %r (%s)" % (name, url))


def url_config(url, tls_verify=None, cert_path=None):
    env = {"DOCKER_HOST": url}
    if cert_path:
        env["DOCKER_CERT_PATH"] = cert_path
    if tls_verify:
        env["DOCKER_TLS_VERIFY"] = "1"
    elif cert_path and tls_verify is None:
        env["DOCKER_TLS_VERIFY"] = "1"
    elif cert_path:
        env["DOCKER_TLS"] = "1"
    return EngineConfig(env=tuple(sorted(env.items())),
                        unset=("DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"),
                        description="engine %s" % url)


def wait_until(predicate, timeout, interval=0.2):
    """Poll ``predicate`` until it returns a true value or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
