"""Plans of the Gentoo recipes against what the real run does.

One chain, fast (no Portage): a gentoo-bootstrap image (committed) from an
archive of the test base image, a gentoo-build image on it (assemble only,
a layout) and a gentoo-diskimage file made from that image in a busybox
build container.  Each situation changes one thing; ``dockeroo plan`` is
compared with the following run (``assert_plan_matches_run``: verbs against
the recorded docker commands and the disk image file), whose log says what
each part does and why (``app: recreating image ... because ...``).
"""

import os
import subprocess
import textwrap

import pytest

from support.engine import docker, image_id, inspect
from support.plan_exact import assert_plan_matches_run

#: docker commands that change nothing
READ_ONLY = {"inspect", "version", "info", "ps", "images", "history", "logs"}

CHAIN = """
    [boot]
    recipe = dockeroo:docker.gentoo-bootstrap
    image = %(prefix)s-boot:1
    container = %(prefix)s-bootc
    archives = rootfs.tar
    commit = true
    privileged = false
    script = echo %(marker)s > /marker

    [app]
    recipe = dockeroo:docker.gentoo-build
    name = %(prefix)s-app:1
    base-image = ${boot:image}
    layout = layout
    privileged = false
    %(app)s

    [disk]
    recipe = dockeroo:docker.gentoo-diskimage
    base-image = ${app:image}
    build-image = %(busybox)s
    build-container = %(prefix)s-disk
    build-root = /mnt/root
    image-file = /disk.img
    privileged = false
    prepare-script = mkdir -p /mnt/root
    build-script = cat /mnt/root/marker /mnt/root/etc/motd > /disk.img
    """


def mutating(argvs):
    """The docker commands of ARGVS that change something."""
    out = []
    for argv in argvs:
        words = [w for w in argv[:2] if not w.startswith("-")]
        if words[:1] in (["image"], ["container"], ["volume"], ["network"]):
            words = words[1:]
        if words and words[0] not in READ_ONLY:
            out.append(argv)
    return out


def touching(commands, *names):
    return [argv for argv in commands if any(n in " ".join(argv) for n in names)]


class Chain:
    def __init__(self, buildout, prefix, base_image, recorder):
        self.buildout, self.prefix, self.recorder = buildout, prefix, recorder
        self.values = dict(prefix=prefix, marker="one", app="", busybox=base_image)
        probe = prefix + "-export"
        docker("create", "--name", probe, base_image)
        try:
            with open(buildout.path("rootfs.tar"), "wb") as handle:
                subprocess.run(["docker", "export", probe], stdout=handle, check=True)
        finally:
            docker("rm", probe)
        buildout.write("layout/etc/motd", "motd one\n")
        self.disk = buildout.path("parts", "disk", "disk.img")

    def run(self, parts=None, **values):
        """Plan, run and compare; returns the run's output (``self.plan``: the
        plan's actions, as (part, verb, kind, name) tuples)."""
        self.values.update(values)
        self.buildout.configure(CHAIN % self.values, parts)
        exact = assert_plan_matches_run(self.buildout, self.recorder)
        self.plan = [(a["part"], a["action"], a["kind"], a["name"]) for a in exact.plan
                     if not a["name"].startswith("sha256:")]
        self.planned = exact.plan
        self.output = exact.run.output
        self.commands = mutating(exact.run_calls)
        return self.output

    def reasons(self, part, kind):
        """The plan's reasons for PART's object of KIND."""
        return [a["reasons"] for a in self.planned if (a["part"], a["kind"]) == (part, kind)
                and not a["name"].startswith("sha256:")]

    def as_planned(self, part, kind):
        """The lines a run logs for the plan's changing actions of PART's KIND:
        the run plan's reasons (the executor decided them for those)."""
        from dockeroo.model.plan import DOING
        return ["%s %s %s because %s" % (DOING[a["action"]], a["kind"], a["name"],
                                         "; ".join(a["reasons"]))
                for a in self.planned if (a["part"], a["kind"]) == (part, kind)
                and a["action"] != "unchanged" and not a["name"].startswith("sha256:")]

    def said(self, part):
        """What PART logged it is doing (the plan's changing actions), as lines."""
        verbs = ("creating ", "recreating ", "repairing ", "updating ", "checking ")
        return [line.split(": ", 1)[1] for line in self.output.splitlines()
                if line.startswith(part + ": ") and line.split(": ", 1)[1].startswith(verbs)]

    def changed(self, part):
        """The recorded mutating commands of PART's objects."""
        names = {"boot": [self.prefix + "-boot"], "app": [self.prefix + "-app"],
                 "disk": [self.prefix + "-disk"]}[part]
        return touching(self.commands, *names)


@pytest.fixture
def chain(buildout, prefix, base_image, docker_recorder):
    return Chain(buildout, prefix, base_image, docker_recorder)


def test_gentoo_chain_plans(chain, prefix):
    p = prefix
    boot, app = "%s-boot:1" % p, "%s-app:1" % p
    # first run: everything is new; a typo is warned about, and ignored
    out = chain.run(app="build_args = x")
    assert "app: option 'build_args' is not an option of dockeroo:docker.gentoo-build" \
        in out, out
    assert "Part [app]: option" not in out  # the part is named once
    assert chain.said("boot") == ["creating image %s because the part is new" % boot]
    assert chain.said("app") == ["creating image %s because the part is new" % app]
    assert chain.said("disk") == ["creating file %s because the part is new" % chain.disk]
    with open(chain.disk) as handle:
        assert handle.read() == "one\nmotd one\n"
    ids = {ref: image_id(ref) for ref in (boot, app)}

    # the typo removed: buildout reinstalls [app], but nothing that defines it changed
    out = chain.run(app="")
    assert "is not an option" not in out
    assert [chain.said(part) for part in ("boot", "app", "disk")] == [[], [], []]
    assert chain.commands == [], chain.commands

    # nothing changed at all: not one docker command that changes something
    chain.run()
    assert [chain.said(part) for part in ("boot", "app", "disk")] == [[], [], []]
    assert chain.commands == [], chain.commands
    assert {ref: image_id(ref) for ref in ids} == ids

    # a gentoo-build option: its image and the disk image made from it, not the bootstrap
    chain.run(app="user = nobody")
    assert chain.said("boot") == [] and chain.changed("boot") == []
    assert chain.said("app") == ["recreating image %s because option 'user' added" % app]
    assert chain.said("disk") == chain.as_planned("disk", "file")
    assert inspect("image", app)["Config"]["User"] == "nobody"
    assert image_id(boot) == ids[boot] and image_id(app) != ids[app]

    # the layout's content
    chain.buildout.write("layout/etc/motd", "motd two\n")
    chain.run()
    assert chain.said("boot") == [] and chain.changed("boot") == []
    assert chain.said("app") == ["recreating image %s because layout content changed" % app]
    assert chain.said("disk") == chain.as_planned("disk", "file")
    with open(chain.disk) as handle:
        assert handle.read() == "one\nmotd two\n"

    # the bootstrap image rebuilt: the change cascades down the chain (the plan
    # names the earlier part's change, the run sees the new image id)
    chain.run(marker="two")
    why = "option 'script' changed"
    assert chain.reasons("boot", "image") == [[why]]
    assert chain.reasons("app", "image") == [["image %s will be rebuilt (%s)" % (boot, why)]]
    assert chain.reasons("disk", "file") == [["image %s will be rebuilt (image %s will be "
                                              "rebuilt (%s))" % (app, boot, why)]]
    assert chain.said("boot") == ["recreating image %s because option 'script' changed" % boot]
    assert chain.said("app") == chain.as_planned("app", "image")
    assert chain.said("disk") == chain.as_planned("disk", "file")
    with open(chain.disk) as handle:
        assert handle.read() == "two\nmotd two\n"

    # the disk image file removed by hand: repaired, nothing else touched
    os.unlink(chain.disk)
    chain.run()
    assert chain.said("boot") == [] and chain.said("app") == []
    assert chain.said("disk") == ["repairing file %s because file %s is missing (removed by "
                                  "hand?)" % (chain.disk, chain.disk)]
    assert chain.commands and chain.commands == chain.changed("disk"), chain.commands
    with open(chain.disk) as handle:
        assert handle.read() == "two\nmotd two\n"

    # the gentoo-build image removed by hand: repaired, and the disk image made again
    docker("image", "rm", app)
    chain.run()
    assert chain.said("boot") == [] and chain.changed("boot") == []
    assert chain.said("app") == ["repairing image %s because image %s is missing (removed by "
                                 "hand?)" % (app, app)]
    # no part changed: the run is not planned as a whole, the disk part says what it saw
    assert chain.said("disk") == ["recreating file %s because base-image %s changed"
                                  % (chain.disk, app)]

    # the disk image part removed: its file goes
    chain.run(parts=["boot", "app"])
    assert ("disk", "remove", "file", chain.disk) in chain.plan, chain.plan
    assert not os.path.exists(chain.disk)


def test_gentoo_bootstrap_live_container_plans(buildout, prefix, base_image, docker_recorder):
    """Without commit: the container stopped by hand is started again; a
    script change makes the container again from the same imported image."""
    chain = Chain(buildout, prefix, base_image, docker_recorder)
    template = textwrap.dedent("""
        [live]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %(prefix)s-live:1
        container = %(prefix)s-live
        archives = rootfs.tar
        privileged = false
        script = echo %(marker)s > /marker
        """)
    name, image = prefix + "-live", prefix + "-live:1"

    def run(marker):
        buildout.configure(template % dict(prefix=prefix, marker=marker))
        exact = assert_plan_matches_run(buildout, docker_recorder)
        chain.output = exact.run.output
        chain.commands = mutating(exact.run_calls)
        return chain.said("live")

    assert run("one") == ["creating image %s because the part is new" % image,
                          "creating container %s because the part is new" % name]
    image_before = image_id(image)
    docker("stop", "--time", "1", name)
    assert run("one") == ["repairing container %s because container %s is stopped"
                          % (name, name)]
    assert chain.commands == [["start", name]], chain.commands
    assert inspect("container", name)["State"]["Running"]
    assert run("two") == ["recreating container %s because option 'script' changed" % name]
    assert not [argv for argv in chain.commands if argv[0] in ("import", "tag")], chain.commands
    assert image_id(image) == image_before
    assert docker("exec", name, "cat", "/marker") == "two\n"
    assert run("two") == [] and chain.commands == []


def test_gentoo_build_renamed_and_kept(buildout, prefix, base_image, docker_recorder):
    """A new name makes the new image and removes the old one; a part removed
    with ``keep = true`` leaves its image."""
    buildout.write("layout/etc/motd", "motd\n")
    template = textwrap.dedent("""
        [app]
        recipe = dockeroo:docker.gentoo-build
        name = %(name)s
        base-image = %(base)s
        layout = layout
        privileged = false
        keep = %(keep)s
        """)

    def run(parts=None, **values):
        buildout.configure(template % values, parts)
        exact = assert_plan_matches_run(buildout, docker_recorder)
        return sorted((a["action"], a["kind"], a["name"], tuple(a["reasons"]))
                      for a in exact.plan if a["kind"] != "part")

    one, two = prefix + "-one:1", prefix + "-two:1"
    run(name=one, base=base_image, keep="false")
    assert run(name=two, base=base_image, keep="false") == [
        ("create", "image", two, ("option 'name' changed (was %s)" % one,)),
        ("remove", "image", one, ("replaced by image %s" % two,))]
    assert inspect("image", one) is None and inspect("image", two) is not None
    assert run(name=two, base=base_image, keep="true") == [("unchanged", "image", two, ())]
    removed = run(parts=[], name=two, base=base_image, keep="true")
    assert ("unchanged", "image", two, ("keep = true: left in place",)) in removed, removed
    assert inspect("image", two) is not None
    docker("image", "rm", two)
