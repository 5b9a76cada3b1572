"""Portage in a builder container: ``package.*`` files, emerge command lines, portageq.

A Gentoo builder (see ``docs/recipes/docker.gentoo-build.rst``) has a target
root ``/usr/<processor>-<variant>-linux-<abi>/`` with its own
``etc/portage`` and a ``chroot-<arch>-docker`` script that enters it and
runs ``bash --login "$@"``.  Everything here runs through that script with
``docker exec``; only Portage's own tools are used (``emerge``,
``portageq``, ``emaint``), so any Gentoo builder works.

Values from options never pass through a shell unquoted: ``package.*``
lines travel on stdin, atoms as positional parameters or quoted with
:func:`shlex.quote`.
"""

import re
import shlex

from dockeroo.runtime.container import script_input
from dockeroo.engine.process import DEFAULT_LONG_TIMEOUT

#: option -> file below etc/portage
PACKAGE_FILES = {
    "use": "package.use",
    "mask": "package.mask",
    "unmask": "package.unmask",
    "accept-keywords": "package.accept_keywords",
}

_NAME = r"[A-Za-z0-9_*][A-Za-z0-9+_.*-]*"
ATOM = re.compile(
    r"^(?:!{1,2})?(?:[<>]=?|=|~)?" + _NAME + "/" + _NAME +
    r"(?::[A-Za-z0-9_.*/=+-]+)?(?:::[A-Za-z0-9_-]+)?(?:\[[^\s\]]+\])?$")
SET = re.compile(r"^@[A-Za-z0-9_][A-Za-z0-9+_.-]*$")
USE_TOKEN = re.compile(r"^(?:[-+]?[A-Za-z0-9][A-Za-z0-9+_@.-]*|[A-Z][A-Z0-9_]*:|-\*)$")
KEYWORD = re.compile(r"^(?:[-~]?[A-Za-z0-9_*-]+|\*\*|~\*|\*|-\*)$")

#: writes stdin into ETC/package.X: into the file when it is a file (appended),
#: otherwise into NAME inside the folder (created).  $1 = path, $2 = file name.
WRITE_SCRIPT = r"""set -e
if [ -f "$1" ]; then
    cat >> "$1"
else
    mkdir -p "$1"
    cat > "$1/$2"
fi
"""

#: prints "ATOM<TAB>CPV" per atom (CPV empty when nothing matches)
BEST_VERSIONS = r"""for atom; do
    printf '%s\t%s\n' "$atom" "$(portageq best_version / "$atom")"
done
"""


def read_atoms(opts, option, sets=True):
    """Package atoms (and ``@sets``), one per line or several per line."""
    atoms = []
    for line in opts.lines(option):
        for word in line.split():
            if not (ATOM.match(word) or (sets and SET.match(word))):
                raise opts.error(option, "%r is not a package atom (category/name, with an "
                                 "optional version operator, :slot or [use])" % word, line)
            atoms.append(word)
    return atoms


def read_entries(opts, option):
    """Lines for a ``package.*`` file: an atom, then USE flags or keywords."""
    entries = []
    for line in opts.lines(option):
        words = line.split()
        if not ATOM.match(words[0]):
            raise opts.error(option, "each line must start with a package atom "
                             "(e.g. app-misc/foo or >=app-misc/foo-1.2)", line)
        rest = words[1:]
        if option in ("mask", "unmask") and rest:
            raise opts.error(option, "one package atom per line", line)
        if option == "use":
            if not rest:
                raise opts.error(option, "each line must be ATOM FLAG [FLAG...]", line)
            bad = [w for w in rest if not USE_TOKEN.match(w)]
            if bad:
                raise opts.error(option, "%r is not a USE flag" % bad[0], line)
        if option == "accept-keywords":
            bad = [w for w in rest if not KEYWORD.match(w)]
            if bad:
                raise opts.error(option, "%r is not a keyword (e.g. ~amd64, **)" % bad[0], line)
        entries.append(" ".join(words))
    return entries


def chroot_argv(chroot, argv=None, script=None, args=()):
    """The argv that runs ARGV (or a SCRIPT with positional ARGS) inside the target root."""
    if script is not None:
        return [chroot, "-c", script, "dockeroo"] + list(args)
    return [chroot, "-c", " ".join(shlex.quote(a) for a in argv)]


def emerge_argv(atoms, buildpkg=False, usepkg=False, usepkgonly=False, root=None, oneshot=True,
                rdeps_only=False):
    """``emerge`` with the options the Gentoo recipes use (binary packages honour USE)."""
    argv = ["emerge", "--color=n", "--verbose", "--binpkg-respect-use=y"] + [
        flag for flag, wanted in (("--oneshot", oneshot), ("--buildpkg", buildpkg),
                                  ("--usepkgonly", usepkgonly), ("--usepkg", usepkg and not usepkgonly),
                                  ("--root-deps=rdeps", rdeps_only)) if wanted] + list(atoms)
    if root:
        argv = ["env", "ROOT=" + root] + argv
    return argv


class Builder:
    """The target root of one build container, reached through ``chroot-<arch>-docker``."""

    def __init__(self, engine, container, arch, target, log=None, env=None,
                 timeout=DEFAULT_LONG_TIMEOUT):
        self.engine = engine
        self.container = container
        self.chroot = "chroot-%s-docker" % arch
        self.target = target  # /usr/<processor>-<variant>-linux-<abi>
        self.log = log
        self.env = dict(env or {})
        self.timeout = timeout

    def exec_args(self, argv, stdin=False):
        """``docker exec`` argv, without the build-env variables (they are put
        on no command line: :meth:`run_env` passes them on stdin)."""
        args = ["exec"]
        if stdin:
            args.append("--interactive")
        return args + [self.container] + list(argv)

    def run_env(self, argv, **kwargs):
        """``engine.run`` of ARGV in the build container with the build-env
        variables, which travel on stdin (exported by ``sh``, then ARGV runs
        with an empty stdin), never on a command line."""
        if not self.env:
            return self.engine.run(self.exec_args(argv), **kwargs)
        wrapped = ["sh", "-c", '. /dev/stdin && exec "$@" </dev/null', "sh"] + list(argv)
        return self.engine.run(self.exec_args(wrapped, stdin=True),
                               input=script_input("", self.env), **kwargs)

    def check(self):
        """None when the builder has the contract, else what is missing."""
        result = self.engine.run(self.exec_args(
            ["sh", "-c", 'test -d "$1/etc/portage" || { echo "no $1/etc/portage"; exit 1; }; '
                         'command -v "$2" >/dev/null || { echo "no $2 on the PATH"; exit 1; }',
             "check", self.target, self.chroot]), check=False, timeout=self.timeout)
        if result.returncode != 0:
            return (result.stdout.strip() or result.stderr.strip() or
                    "exit %s" % result.returncode)
        return None

    def write_package_files(self, entries, name):
        """ENTRIES: option -> lines; written to the target's etc/portage/package.*."""
        for option, lines in entries.items():
            if not lines:
                continue
            path = "%s/etc/portage/%s" % (self.target, PACKAGE_FILES[option])
            self.engine.run(self.exec_args(["sh", "-c", WRITE_SCRIPT, "write", path, name],
                                           stdin=True),
                            input="".join(line + "\n" for line in lines), timeout=self.timeout)
            if self.log:
                self.log.info("%s: %s", PACKAGE_FILES[option], "; ".join(lines))

    def run(self, argv, stream=True):
        """Run ARGV in the target root; output streams to the log."""
        return self.run_env(chroot_argv(self.chroot, argv),
                            stream=self.log if stream else None, timeout=self.timeout)

    def emerge(self, atoms, **kwargs):
        return self.run(emerge_argv(atoms, **kwargs))

    def best_versions(self, atoms):
        """{atom: cpv or ''} of the installed versions in the target root."""
        result = self.run_env(chroot_argv(self.chroot, script=BEST_VERSIONS, args=atoms),
                              timeout=self.timeout)
        found = {}
        for line in result.stdout.splitlines():
            atom, _, cpv = line.partition("\t")
            if atom in atoms:
                found[atom] = cpv.strip()
        return found

    def installed(self, root):
        """The packages installed in ROOT (a path inside the target root), sorted."""
        result = self.run_env(chroot_argv(self.chroot, ["portageq", "match", root, ""]),
                              timeout=self.timeout)
        return sorted(line.strip() for line in result.stdout.splitlines() if "/" in line)

    def empty(self, path):
        """Remove what is inside PATH (a path in the build container), keep PATH."""
        self.engine.run(self.exec_args(
            ["sh", "-c", 'mkdir -p "$1" && find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +',
             "empty", path]), timeout=self.timeout)
