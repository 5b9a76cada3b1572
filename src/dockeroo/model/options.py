"""Typed readers for a part's options.

Every problem becomes a ``zc.buildout.UserError`` naming the part, the
option, the value and what is wrong, raised from the recipe's ``__init__``
before anything is created.
"""

import ipaddress
import os
import posixpath
import re
import shlex
from contextlib import contextmanager

from zc.buildout import UserError

from dockeroo.base import references
from dockeroo.base.redaction import redact
from dockeroo.engine.process import DEFAULT_TIMEOUT


TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "h": 3600.0}

#: Docker's rule for container names and ``local`` volume names: 2 characters
#: or more (Docker answers "Invalid container name (a), only
#: [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" to a 1-character name)
CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

#: a network alias or link alias (a host name): the same characters, 1 or more
ALIAS_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def removal_settings(part, options):
    """(keep, timeout) of the (old) OPTIONS of PART, for removing what it
    owns (uninstall, a replaced configuration, a removal together):
    ``keep`` (default false) and ``timeout`` (seconds; default
    DEFAULT_TIMEOUT, 180 s).  A bad value is a UserError naming the option."""
    opts = Options(part, dict(options))
    return opts.bool("keep", False), opts.duration("timeout", DEFAULT_TIMEOUT)


def option_error(part, option, value, why):
    """The UserError for a bad value; secrets (see :func:`dockeroo.base.redaction.redact`) hidden."""
    why = redact(why)
    if value is None:
        return UserError("Part [%s], option %r: %s" % (part, option, why))
    value = redact(value)
    shown = value if len(value) <= 200 else value[:200] + "..."
    return UserError("Part [%s], option %r = %r: %s" % (part, option, shown, why))


class Options:
    """Reads one part's options; remembers which were read."""

    def __init__(self, part, options):
        self.part = part
        self.options = options
        #: the options asked for (read or looked up), for the unknown-option warning
        self.seen = set()

    def known(self, *names):
        """Mark NAMES as options of the recipe (read only in some configurations)."""
        self.seen.update(names)

    # -- basics ---------------------------------------------------------------
    def error(self, option, why, value=None):
        return option_error(self.part, option, value, why)

    def raw(self, option, aliases=()):
        """The raw value of OPTION (or its first alias present), or None."""
        self.seen.add(option)
        self.seen.update(aliases)
        names = [o for o in (option,) + tuple(aliases) if o in self.options]
        if len(names) > 1:
            values = {self.options[n] for n in names}
            if len(values) > 1:
                raise self.error(option, "given both as %s; use one" % " and ".join(repr(n) for n in names))
        return self.options[names[0]] if names else None

    def text(self, option, default=None, required=False, aliases=(), strip=True):
        value = self.raw(option, aliases)
        if value is not None and strip:
            value = value.strip()
        if value in (None, ""):
            if required:
                raise self.error(option, "is required")
            return default
        return value

    def word(self, option, default=None, required=False, aliases=()):
        """A single token: no whitespace inside."""
        value = self.text(option, default, required, aliases)
        if value is not None and re.search(r"\s", value):
            raise self.error(option, "must be a single word (no spaces)", value)
        return value

    def bool(self, option, default=False):
        value = self.text(option)
        if value is None:
            return default
        low = value.lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise self.error(option, "must be a boolean (true/false, yes/no, on/off, 1/0)", value)

    def int(self, option, default=None, minimum=None, maximum=None):
        value = self.text(option)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise self.error(option, "must be a whole number", value)
        if minimum is not None and number < minimum:
            raise self.error(option, "must be at least %s" % minimum, value)
        if maximum is not None and number > maximum:
            raise self.error(option, "must be at most %s" % maximum, value)
        return number

    def duration(self, option, default=None):
        """Seconds, as a float; accepts ``30``, ``30s``, ``500ms``, ``2m``, ``1h``."""
        value = self.text(option)
        if value is None:
            return default
        match = _DURATION.match(value)
        if not match:
            raise self.error(option, "must be a duration in seconds (e.g. 30, 30s, 2m)", value)
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        if seconds <= 0:
            raise self.error(option, "must be greater than zero", value)
        return seconds

    def choice(self, option, choices, default=None):
        value = self.text(option)
        if value is None:
            return default
        if value not in choices:
            raise self.error(option, "must be one of %s" % ", ".join(choices), value)
        return value

    # -- multi-line values ----------------------------------------------------
    def lines(self, option, aliases=()):
        """Non-empty stripped lines; lines starting with ``#`` are comments."""
        value = self.raw(option, aliases)
        if not value:
            return []
        return [line.strip() for line in value.splitlines()
                if line.strip() and not line.strip().startswith("#")]

    def script(self, option):
        """A multi-line script, relative indentation and blank lines kept.

        ``$$`` becomes ``$`` (buildout passes it through literally).
        """
        value = self.raw(option)
        if value is None or not value.strip():
            return None
        lines = value.splitlines()
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
        cut = min(indents) if indents else 0
        body = "\n".join(l[cut:] if l.strip() else "" for l in lines)
        return body.replace("$$", "$") + "\n"

    def key_values(self, option, separator="="):
        """``KEY=VALUE`` lines, split on the first separator; values keep spaces."""
        result = {}
        for line in self.lines(option):
            key, sep, val = line.partition(separator)
            key = key.strip()
            if not sep or not key or re.search(r"\s", key):
                raise self.error(option, "each line must be KEY%sVALUE" % separator, line)
            result[key] = val.strip()
        return result

    def user_labels(self, option="labels"):
        """:meth:`key_values` of labels the user sets (never ``io.dockeroo.*``)."""
        labels = self.key_values(option)
        for key in labels:
            if key.startswith("io.dockeroo."):
                raise self.error(option, "io.dockeroo.* labels are set by dockeroo itself", key)
        return labels

    def argv(self, option, default=None):
        """A command line parsed with shell quoting rules into an argv list."""
        value = self.text(option)
        if value is None:
            return default
        try:
            args = shlex.split(value.replace("$$", "$"))
        except ValueError as exc:
            raise self.error(option, "cannot be parsed as a command line (%s)" % exc, value)
        if not args:
            return default
        return args

    # -- addresses -------------------------------------------------------------
    def network(self, option):
        value = self.text(option)
        if value is None:
            return None
        try:
            return ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise self.error(option, "must be a CIDR subnet such as 172.28.5.0/24 (%s)" % exc, value)

    def address(self, option):
        value = self.text(option)
        if value is None:
            return None
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            raise self.error(option, "must be an IP address", value)

    # -- image references ----------------------------------------------------------
    def reference(self, option, value=None, digest=True, hint=""):
        """An image reference (VALUE defaults to the option's), parsed and
        normalised as Docker does: a :class:`references.Reference`.

        ``digest=False`` refuses ``@sha256:...`` (a tag is needed, e.g. to
        build or tag an image).
        """
        if value is None:
            value = self.text(option, required=True)
        try:
            ref = references.parse(value)
        except references.ReferenceError as exc:
            raise self.error(option, "is not a valid image reference %s: %s%s"
                             % (references.FORMAT, exc.reason, hint), value)
        if ref.digest and not digest:
            raise self.error(option, "must be NAME[:TAG], not a digest reference" + hint, value)
        return ref

    def image_ref(self, option, value=None, digest=True, hint=""):
        """:meth:`reference` as docker commands take it: the familiar form
        (``busybox``, ``busybox:1``, ``host:5000/ns/app@sha256:...``), the
        tag and digest as given.  A whole image id (64 hex digits, optionally
        after ``sha256:``) is returned as it is."""
        if value is None:
            value = self.text(option, required=True)
        if references.is_full_image_id(value):
            return value
        return str(self.reference(option, value, digest, hint))

    # -- Docker object names --------------------------------------------------------
    def object_name(self, option, value=None, strict=True, hint=""):
        """Check the name of a Docker object (VALUE defaults to the option's).

        ``strict``: Docker's rule for containers and ``local`` volumes (a
        letter or digit, then letters, digits and ``_ . -``; 2 characters or
        more; container ids match too).  Otherwise (networks, volumes of other
        drivers) any text without whitespace.  Never a leading ``-``, which
        the docker CLI would read as an option.  Returns the name.
        """
        if value is None:
            value = self.text(option, required=True)
        if strict:
            if not CONTAINER_NAME.match(value):
                raise self.error(option, "a name has 2 or more letters, digits and _ . - "
                                 "and starts with a letter or digit" + hint, value)
        elif value.startswith("-") or re.search(r"\s", value) or not value.isprintable():
            raise self.error(option, "a name has no spaces or control characters and does "
                             "not start with '-'" + hint, value)
        return value

    # -- files and secrets ------------------------------------------------------
    def path(self, option, base, must_exist=False, kind=None, default=None):
        value = self.text(option)
        if value is None:
            return default
        path = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
        if must_exist and not os.path.exists(path):
            raise self.error(option, "%s does not exist" % path, value)
        if kind == "dir" and must_exist and not os.path.isdir(path):
            raise self.error(option, "%s is not a directory" % path, value)
        if kind == "file" and must_exist and not os.path.isfile(path):
            raise self.error(option, "%s is not a file" % path, value)
        return path

    def secret(self, option, base):
        """Read a secret from OPTION, OPTION-file or OPTION-env.

        OPTION itself (the secret value) is removed from the part's options
        so that it never reaches ``.installed.cfg``; OPTION-file and
        OPTION-env hold only a file or variable name and stay.
        """
        self.known(option, option + "-file", option + "-env")
        given = [o for o in (option, option + "-file", option + "-env") if self.options.get(o, "").strip()]
        if len(given) > 1:
            raise self.error(option, "give only one of %s" % ", ".join(given))
        secret = None
        if given:
            name = given[0]
            value = self.options[name].strip()
            if name == option:
                secret = value
            elif name.endswith("-file"):
                path = os.path.join(base, os.path.expanduser(value))
                try:
                    with open(path) as handle:
                        secret = handle.read().rstrip("\r\n")
                except OSError as exc:
                    raise self.error(name, "cannot read %s: %s" % (path, exc.strerror), value)
            else:
                if value not in os.environ:
                    raise self.error(name, "environment variable %s is not set" % value, value)
                secret = os.environ[value]
        if option in self.options:
            del self.options[option]
        return secret


def parse_mapping(opts, option, line, min_parts=2, max_parts=3):
    """Split ``a:b[:c]`` as used by volumes and links; errors name the option."""
    parts = line.split(":")
    if not (min_parts <= len(parts) <= max_parts) or not all(parts[:2]):
        raise opts.error(option, "each line must look like SOURCE:TARGET[:MODE]", line)
    return parts


@contextmanager
def os_errors(opts, option, what, value=None):
    """An OSError in the block (an unreadable layout file, a full disk) becomes
    the UserError ``Part [P], option 'OPTION' = VALUE: WHAT: FILE: REASON``."""
    try:
        yield
    except OSError as exc:
        if exc.filename and exc.strerror:
            reason = "%s: %s" % (exc.filename, exc.strerror)
        else:
            reason = str(exc) or type(exc).__name__
        raise opts.error(option, "%s: %s" % (what, reason), value) from None


def quote_command(argv):
    """An argv list as one shell-quoted string (for messages and CMD)."""
    return " ".join(shlex.quote(a) for a in argv)


def parse_path_line(opts, line, option="paths"):
    """``/file``, ``/folder/`` or ``SOURCE DESTINATION`` -> (source, destination).

    Shell quoting rules apply (``"/a b" /c``).  A source ending in ``/``
    must be a folder; a destination ending in ``/`` is the folder the
    source goes into, otherwise it is the source's new path.
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise opts.error(option, "cannot be parsed (%s)" % exc, line)
    if len(words) not in (1, 2):
        raise opts.error(option, "each line is PATH or SOURCE DESTINATION (quote paths "
                         "with spaces)", line)
    for word in words:
        if not word.startswith("/"):
            raise opts.error(option, "paths must be absolute (start with /)", line)
        if ".." in word.split("/"):
            raise opts.error(option, "paths must not contain '..'", line)
    source = words[0]
    if posixpath.normpath(source) == "/":
        raise opts.error(option, "cannot copy / itself: name the folders to copy", line)
    if len(words) == 1:
        return source, posixpath.normpath(source)
    target = words[1]
    if target.endswith("/"):
        target = posixpath.join(target, posixpath.basename(posixpath.normpath(source)))
    target = posixpath.normpath(target)
    if target == "/":
        raise opts.error(option, "the destination must be below /", line)
    return source, target
