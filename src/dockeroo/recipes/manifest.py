"""dockeroo:docker.manifest: one tag in a registry for several platforms.

read -> plan -> apply (see :mod:`dockeroo.model.plan` and
docs/recipes/docker.manifest.rst).  Members are pushed as
``REPOSITORY:TAG-ARCH[VARIANT]``, then the list is made and pushed; the
state file remembers each member's pushed image id, so only what changed
is pushed again.  A member whose image records another platform is
loaded again with a corrected config before it is pushed.
"""

import base64
import dataclasses
import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional, Tuple

from zc.buildout import UserError

from dockeroo.base import references
from dockeroo.base.redaction import redact
from dockeroo.model.options import Options
from dockeroo.model.ownership import remove_image
from dockeroo.model.plan import action
from dockeroo.recipes.common import imagefiles
from dockeroo.recipes.common.registry import (PartState, RegistryRecipe, read_credentials,
                                              require_local)

_PLATFORM = re.compile(r"^([a-z0-9]+)/([a-z0-9_]+)(?:/([a-z0-9]+))?$")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64})")


@dataclasses.dataclass(frozen=True)
class Member:
    local: str                           # the local image, as docker takes it
    platform: Tuple[str, str, Optional[str]]  # os, architecture, variant
    remote: str                          # REPOSITORY:TAG-ARCH[VARIANT]

    @property
    def platform_text(self):
        return "/".join(p for p in self.platform if p)


def parse_platform(opts, option, text):
    match = _PLATFORM.match(text.strip().lower())
    if not match:
        raise opts.error(option, "a platform is OS/ARCH[/VARIANT] (linux/amd64, "
                         "linux/arm64/v8, linux/arm/v7)", text)
    return match.group(1), match.group(2), match.group(3)


def member_tag(tag, platform):
    os_name, arch, variant = platform
    return "%s-%s%s%s" % (tag, "" if os_name == "linux" else os_name + "-", arch, variant or "")


def read_members(opts, ref):
    members = []
    for line in opts.lines("members"):
        words = line.split()
        if len(words) != 2:
            raise opts.error("members", "each line is IMAGE OS/ARCH[/VARIANT]", line)
        local = opts.image_ref("members", words[0])
        platform = parse_platform(opts, "members", words[1])
        remote = "%s:%s" % (ref.familiar_name, member_tag(ref.tag or "latest", platform))
        if any(m.platform == platform for m in members):
            raise opts.error("members", "two members for the platform %s"
                             % "/".join(p for p in platform if p), line)
        members.append(Member(local, platform, remote))
    if not members:
        raise opts.error("members", "is required: one line per image, IMAGE OS/ARCH[/VARIANT]")
    return tuple(members)


def loopback(host):
    name = (host or "").rsplit(":", 1)[0].strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plan(part, image, members, observed, context, state, offline):
    """[Action]s: one per member (its push) and one for the list IMAGE."""
    acts = [action(part, "image", ref, "remove", "tag added for a push by an interrupted run")
            for ref in state.get("added-tags") or [] if observed.get("image", ref) is not None]
    pushed = state.get("members") or {}
    changed = []
    ids = {}
    for member in members:
        local, rebuilt = require_local(part, "docker.manifest", observed, context, member.local,
                                       "built, pulled, imported or loaded")
        last = pushed.get(member.remote) or {}
        local_id = (local or {}).get("Id")
        ids[member.remote] = local_id
        if rebuilt is None and last.get("image-id") == local_id \
                and last.get("platform") == member.platform_text:
            acts.append(action(part, "image", member.remote, "unchanged"))
            continue
        if offline:
            acts.append(action(part, "image", member.remote, "unchanged",
                               "buildout is offline (-o): not pushed"))
            continue
        if not last:
            act = action(part, "image", member.remote, "create", "first push of %s for %s"
                         % (member.local, member.platform_text), data=member)
        elif rebuilt is not None:
            act = action(part, "image", member.remote, "update", "image %s will be rebuilt"
                         % member.local, data=member)
        elif last.get("image-id") != local_id:
            act = action(part, "image", member.remote, "update", "image %s changed since the "
                         "last push (id %s -> %s)" % (member.local, last["image-id"][7:19],
                                                       local_id[7:19]), data=member)
        else:
            act = action(part, "image", member.remote, "update", "platform changed (%s -> %s)"
                         % (last.get("platform"), member.platform_text), data=member)
        acts.append(act)
        changed.append(act)
    listed = state.get("list") or {}
    wanted = [m.remote for m in members]
    if offline:
        why = [] if listed.get("ref") == image and not changed else \
            ["buildout is offline (-o): not pushed"]
        return acts + [action(part, "manifest", image, "unchanged", *why)]
    if not listed:
        return acts + [action(part, "manifest", image, "create", "new manifest list of %s"
                              % ", ".join(m.platform_text for m in members), data="push")]
    reasons = ["member %s pushed again" % act.name for act in changed]
    if listed.get("ref") != image:
        reasons.append("the list's reference changed (was %s)" % listed.get("ref"))
    if listed.get("members") != wanted:
        reasons.append("the members changed")
    elif not changed and listed.get("member-ids") != ids:
        # a member pushed by a run killed before it pushed the list
        reasons.append("the list was pushed with other member images")
    if reasons:
        return acts + [action(part, "manifest", image, "update", *reasons, data="push")]
    return acts + [action(part, "manifest", image, "unchanged")]


class Recipe(RegistryRecipe):
    recipe = "docker.manifest"
    allow_digest = False

    def setup(self):
        self.read_registry_options()
        self.members = read_members(self.opts, self.ref)
        self.insecure = self.opts.bool("insecure", loopback(self.ref.login_server))
        self.options["repository"] = self.ref.familiar_name
        self.options["insecure"] = "true" if self.insecure else "false"

    def plan(self, context):
        return plan(self.part, self.image, self.members, self.observed(), context,
                    self.state.load(), self.offline)

    def apply(self, actions):
        self.drop_added_tags()
        for act in actions:
            if act.kind == "image" and act.data is not None:
                self.push_member(act.data)
            elif act.kind == "manifest" and act.data == "push":
                self.push_list()
        return []

    def push_member(self, member):
        local = self.engine.inspect("image", member.local)
        if local is None:
            raise UserError("Part [%s] (%s): image %s does not exist locally"
                            % (self.part, self.recipe, member.local))
        recorded = (local.get("Os") or "", local.get("Architecture") or "",
                    local.get("Variant") or None)
        pushed_id = local["Id"]
        if recorded != member.platform:
            pushed_id = self.corrected(member, local["Id"], recorded)
            digest = self.push_as(member.remote, member.remote, pushed_id)
            self.drop_added_tags()
        else:
            digest = self.push_as(member.local, member.remote, local["Id"])
        state = self.state.load()
        state.setdefault("members", {})[member.remote] = {
            "image-id": local["Id"], "pushed-id": pushed_id, "digest": digest,
            "platform": member.platform_text}
        self.state.save(state)

    def corrected(self, member, image_id, recorded):
        """The image IMAGE_ID with its config's platform set to the member's,
        loaded as the member's tag (recorded first: removed after the push,
        or by the next run if this one is killed)."""
        self.log.info("%s records the platform %s, not %s: pushing it with a corrected config",
                      member.local, "/".join(p for p in recorded if p) or "(none)",
                      member.platform_text)
        existing = self.engine.inspect("image", member.remote)
        if existing is not None:
            raise UserError("Part [%s] (%s): %s is a local tag already; remove it (the part "
                            "tags the corrected image so)" % (self.part, self.recipe,
                                                               member.remote))
        state = self.state.load()
        state.setdefault("added-tags", []).append(member.remote)
        self.state.save(state)
        made = {}

        def rewrite(src, out):
            made["id"] = imagefiles.retag_platform(src, out, image_id, member.remote,
                                                   member.platform)
        self.engine.pipe(["save", image_id], ["load"], rewrite,
                         timeout=self.cmd_timeout(long=True))
        self.engine.forget("image", member.remote)
        if self.engine.image_id(member.remote) != made.get("id"):
            raise UserError("Part [%s] (%s): the corrected image of %s was not loaded as %s"
                            % (self.part, self.recipe, member.local, member.remote))
        return made["id"]

    def push_list(self):
        flags = ["--insecure"] if self.insecure else []
        with self.registry_env() as env:
            self.log.info("Pushing the manifest list %s (%s)", self.image,
                          ", ".join(m.platform_text for m in self.members))
            self.run(["manifest", "create", "--amend"] + flags + [self.image]
                     + [m.remote for m in self.members], env=env)
            for m in self.members:
                os_name, arch, variant = m.platform
                self.run(["manifest", "annotate", self.image, m.remote, "--os", os_name,
                          "--arch", arch] + (["--variant", variant] if variant else []), env=env)
            result = self.run(["manifest", "push", "--purge"] + flags + [self.image],
                              long=True, env=env)
        found = _DIGEST.findall(result.stdout)
        state = self.state.load()
        pushed = state.get("members") or {}
        state["list"] = {"ref": self.image, "digest": found[-1] if found else None,
                         "members": [m.remote for m in self.members],
                         "member-ids": {m.remote: (pushed.get(m.remote) or {}).get("image-id")
                                        for m in self.members},
                         "insecure": self.insecure}
        self.state.save(state)

    # -- changed configuration and uninstall ---------------------------------------------
    def forget_replaced(self, old):
        """Forget the members the list no longer has (nothing is removed from
        the registry)."""
        state = self.state.load()
        members = state.get("members") or {}
        stale = [ref for ref in members if ref not in {m.remote for m in self.members}]
        for ref in stale:
            del members[ref]
        if stale:
            self.state.save(state)

    @classmethod
    def plan_removal(cls, observed, part, old_options, why):
        state = PartState.for_options(old_options)
        data = state.load() if state else {}
        listed = data.get("list") or {}
        acts = [action(part, "image", ref, "remove", "tag added for a push by an interrupted "
                       "run") for ref in data.get("added-tags") or []
                if observed.get("image", ref) is not None]
        if listed.get("digest"):
            if Options(part, dict(old_options)).bool("keep", False):
                acts.append(action(part, "manifest", listed["ref"], "unchanged",
                                   "keep = true: left in the registry"))
            else:
                acts.append(action(part, "manifest", listed["ref"], "remove", why))
        return acts

    @classmethod
    def remove_step(cls, engine, part, options, act, log):
        """A tag a killed run added for a push, or the manifest list this part
        pushed (deleted from the registry)."""
        if act.kind == "image":
            remove_image(engine, act.name, check=False)
            return
        state = PartState.for_options(options)
        listed = (state.load() if state else {}).get("list") or {}
        opts = Options(part, dict(options))
        try:
            username, password = read_credentials(opts, os.getcwd())
        except UserError as exc:
            log.warning("Cannot delete the manifest list %s: %s", listed["ref"], exc)
            return
        ref = references.parse(listed["ref"]).normalized()
        timeout = opts.duration("timeout", 60)
        try:
            gone = delete_manifest(ref.login_server or "registry-1.docker.io", ref.path,
                                   listed["digest"], username, password,
                                   listed.get("insecure"), timeout)
        except (OSError, ValueError) as exc:
            raise UserError("Part [%s] (docker.manifest): cannot delete the manifest list %s "
                            "from the registry: %s" % (part, listed["ref"], redact(str(exc))))
        log.info("%s the manifest list %s", "Deleted" if gone else "Already gone:",
                 listed["ref"])


def delete_manifest(host, repository, digest, username, password, insecure, timeout):
    """``DELETE /v2/REPOSITORY/manifests/DIGEST`` (basic auth, or a bearer token
    from the realm the registry names); False when it was gone already."""
    url = "%s://%s/v2/%s/manifests/%s" % ("http" if insecure else "https", host, repository,
                                          digest)
    basic = None
    if username:
        basic = "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode()).decode()
    auth = basic
    for _ in range(2):
        request = urllib.request.Request(url, method="DELETE")
        if auth:
            request.add_header("Authorization", auth)
        try:
            urllib.request.urlopen(request, timeout=timeout).close()
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            challenge = exc.headers.get("WWW-Authenticate") or ""
            if exc.code == 401 and challenge.lower().startswith("bearer") and auth == basic:
                auth = "Bearer " + _token(challenge, basic, timeout)
                continue
            if exc.code == 405:
                raise ValueError("the registry does not allow deletes (405)")
            raise ValueError("the registry answered %d %s" % (exc.code, exc.reason))
    raise ValueError("the registry refused the credentials")


def _token(challenge, basic, timeout):
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = fields.pop("realm", None)
    if not realm:
        raise ValueError("the registry's challenge names no realm")
    request = urllib.request.Request(realm + "?" + urllib.parse.urlencode(fields))
    if basic:
        request.add_header("Authorization", basic)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body = json.loads(answer.read())
    return body.get("token") or body.get("access_token") or ""


uninstall = Recipe.uninstaller()
