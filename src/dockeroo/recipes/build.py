"""dockeroo:docker.build: an image built with ``docker build``, rebuilt only when its inputs change.

The inputs (context content honouring ``.dockerignore``, Dockerfile, build
arguments and options) are hashed in ``setup()`` into the ``fingerprint``
option, so buildout reinstalls the part exactly when they change; the image
carries the same fingerprint as a label, so ``ensure()`` does nothing when
the tagged image already matches.
"""

import logging
import os

from zc.buildout import UserError

from ..engine import ANSI_ESCAPE, DockerError, normalize_image_ref
from ..fingerprint import IgnoreRules, file_fingerprint, folder_fingerprint, hash_values
from ..recipe import LABEL_FINGERPRINT, Recipe as Base, label_args

#: contexts ``docker build`` fetches itself (git repositories, URLs): passed through
REMOTE_PREFIXES = ("http://", "https://", "git://", "git@", "github.com/")
#: the client's notice about the legacy builder (DOCKER_BUILDKIT=0): not worth logging
LEGACY_NOTICE = ("The legacy builder is deprecated", "BuildKit is currently disabled",
                 "environment-variable.")


class Recipe(Base):
    recipe = "docker.build"

    def setup(self):
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.image = normalize_image_ref(self.opts.image_ref("name", self.name, digest=False, hint=hint))
        self.build_args = self.opts.key_values("build-args")
        self.user_labels = self.opts.key_values("labels")
        self.target = self.opts.word("target")
        self.platform = self.opts.word("platform")
        self.no_cache = self.opts.bool("no-cache", False)
        self.pull = self.opts.bool("pull", False)
        source = self.opts.text("source", required=True)
        if source.startswith(REMOTE_PREFIXES):
            self.context, self.dockerfile = source, self.opts.text("dockerfile")
            content = ("remote", source, self.dockerfile)
        else:
            self.context, self.dockerfile, content = self.local_context()
        self.fingerprint = hash_values(content, self.build_args, self.user_labels, self.target,
                                       self.platform, self.no_cache, self.pull)
        self.options["image"] = self.image
        self.options["fingerprint"] = self.fingerprint

    def local_context(self):
        """(context dir, Dockerfile path, content fingerprint) of a local source."""
        context = self.path_option("source", must_exist=True, kind="dir")
        option = "dockerfile" if self.opts.text("dockerfile") else "source"
        dockerfile = self.opts.path("dockerfile", context, default=os.path.join(context, "Dockerfile"))
        if not os.path.isfile(dockerfile):
            raise self.opts.error(option, "there is no Dockerfile at %s" % dockerfile, self.opts.text(option))
        relative = os.path.relpath(dockerfile, context)
        inside = not (relative == os.pardir or relative.startswith(os.pardir + os.sep))
        # the CLI always sends the Dockerfile and .dockerignore, even when ignored
        always = (".dockerignore", relative) if inside else (".dockerignore",)
        try:
            folder = folder_fingerprint(context, IgnoreRules.from_dir(context),
                                        cache_dir=self.cache_directory, always=always)
            outside = None if inside else file_fingerprint(dockerfile)
        except OSError as exc:
            raise self.opts.error("source", "cannot read the build context: %s" % exc,
                                  self.opts.text("source"))
        return context, dockerfile, ("local", folder, relative if inside else None, outside)

    @classmethod
    def owned(cls, values):
        return [("image", values["image"])]

    def ensure(self):
        current = self.engine.inspect("image", self.image)
        labels = ((current or {}).get("Config") or {}).get("Labels") or {}
        if current and labels.get(LABEL_FINGERPRINT) == self.fingerprint:
            self.log.info("Image %s is up to date (%s): nothing to build", self.image, short(current["Id"]))
            return []
        self.build()
        self.engine.forget("image", self.image)
        new_id = self.engine.image_id(self.image)
        self.log.info("Built image %s (%s)", self.image, short(new_id))
        if current and current["Id"] != new_id and self.is_ours(current):
            self.retire_image(current["Id"])
        return []

    def build(self):
        args = ["build", "--force-rm", "--tag", self.image]
        if self.dockerfile:
            args += ["--file", self.dockerfile]
        if self.target:
            args += ["--target", self.target]
        if self.platform:
            args += ["--platform", self.platform]
        if self.no_cache:
            args.append("--no-cache")
        if self.pull:
            args.append("--pull")
        for key, value in self.build_args.items():
            args += ["--build-arg", "%s=%s" % (key, value)]
        args += label_args(self.labels(self.fingerprint, self.user_labels))
        self.log.info("Building image %s from %s", self.image, self.context)
        # the tag is applied only when the whole build succeeded: a failure tags nothing
        quiet = logging.Filter()
        quiet.filter = tidy_record
        self.log.addFilter(quiet)
        try:
            result = self.run(args + [self.context], long=True, stream=True, check=False,
                              env={"DOCKER_BUILDKIT": "0"})
        except DockerError as exc:
            if not exc.timed_out:
                raise
            # the build was cancelled with its client: nothing is tagged
            raise self.opts.error("timeout", "building image %s did not finish within %ss; "
                                  "nothing was tagged" % (self.image, exc.timed_out),
                                  self.opts.text("timeout"))
        finally:
            self.log.removeFilter(quiet)
        if result.returncode != 0:
            tail = "\n".join(line for line in result.tail(25).splitlines() if not is_notice(line))
            raise UserError("Part [%s] (%s): building image %s failed (exit %s); the end of its output:\n%s"
                            % (self.part, self.recipe, self.image, result.returncode, tail))


def tidy_record(record):
    """Log filter for build output: no legacy-builder notice, no colour codes."""
    record.msg = ANSI_ESCAPE.sub("", record.getMessage())
    record.args = ()
    return not is_notice(record.msg)


def is_notice(line):
    return any(part in line for part in LEGACY_NOTICE) and len(line) < 120


def short(image_id):
    return (image_id or "").split(":", 1)[-1][:12]


uninstall = Recipe.uninstaller()
