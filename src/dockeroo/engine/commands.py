"""What a docker command does to objects, read from its argv.

Read-only commands, the commands ``dockeroo plan`` may run, and which cached
kinds a mutating command makes stale.
"""


def repeated(flag, values):
    """FLAG before each of VALUES, as the docker CLI takes lists: ``--env A --env B``."""
    return [word for value in values for word in (flag, value)]


INSPECT_KINDS = ("container", "image", "network", "volume")
#: kinds of objects in a swarm's store (``docker service inspect``, ...)
SWARM_KINDS = ("service", "secret", "config", "node")


#: docker commands (first word, or "KIND verb") that change no object
_READ_ONLY = {"inspect", "ps", "info", "version", "--version", "logs", "history", "images",
              "login", "logout", "port", "top", "diff", "stats", "search", "events", "save"}
_READ_ONLY_VERBS = {"inspect", "ls", "list", "history", "logs", "port", "top", "diff", "df",
                    "stats", "save", "version"}


#: the only commands ``dockeroo plan`` may run (they change no object and write no file)
_PLAN_SAFE = {"inspect", "ps", "info", "version", "--version", "history", "images"}
_PLAN_SAFE_MACHINE = {"config", "env", "ls", "inspect", "url", "ip", "status", "active"}
_PLAN_SAFE_VERBS = {"inspect", "ls", "list", "history", "version", "show"}


def plan_safe(args):
    """Whether docker ARGS may run while ``dockeroo plan`` plans."""
    if not args:
        return True
    if args[0] in _PLAN_SAFE:
        return True
    if args[0] in INSPECT_KINDS + ("system", "builder", "buildx", "context", "manifest") \
            and len(args) > 1:
        return args[1] in _PLAN_SAFE_VERBS and not (args[0] == "manifest")
    if args[0] in SWARM_KINDS and len(args) > 1:
        return args[1] in _PLAN_SAFE_VERBS or args[1] == "ps"
    return False


def _read_only(args):
    if not args:
        return True
    if args[0] in _READ_ONLY:
        return True
    if args[0] in INSPECT_KINDS + ("system", "builder", "buildx", "context", "manifest") and len(args) > 1:
        return args[1] in _READ_ONLY_VERBS
    if args[0] in SWARM_KINDS and len(args) > 1:  # the swarm's store, not the cached kinds
        return args[1] in _READ_ONLY_VERBS or args[1] == "ps"
    if args[0] == "cp" and len(args) > 2:  # docker cp CONTAINER:PATH - reads only
        return args[-1] == "-" or ":" not in args[-1]
    return False


#: commands whose effect is limited to the objects named in their arguments
_NAMED_ONLY = {"create", "run", "start", "stop", "restart", "kill", "rm", "rename", "pause",
               "unpause", "update", "exec", "cp", "wait", "attach"}
#: commands that may move image tags: every cached image is dropped
_IMAGE_CHANGING = {"build", "commit", "tag", "rmi", "pull", "push", "import", "load"}


def _changed_kinds(args):
    """(kinds whose whole cache a mutating command makes stale, kinds of the
    objects it changes when it names them), or None when the command is
    not known here (everything is dropped)."""
    verb = args[0]
    sub = args[1] if len(args) > 1 else None
    if verb == "network" and sub in ("create", "rm", "remove"):
        return set(), {"network"}
    if verb == "network" and sub in ("connect", "disconnect"):
        return set(), {"network", "container"}
    if verb == "volume" and sub in ("create", "rm", "remove"):
        return set(), {"volume"}
    if verb == "container" and sub in _NAMED_ONLY:
        return set(), {"container"}
    if verb == "image" or verb in _IMAGE_CHANGING:
        return {"image"}, {"container"}
    if verb in _NAMED_ONLY:
        return set(), {"container"}
    return None
