"""docker.gentoo-build against the real Portage test builder (tests/gentoo/).

The toy repository (tests/gentoo/image/repo) has, in app-toy/: hello (USE
flag ``extra`` adds /usr/share/hello/extra; needs greeting at run time),
greeting, tool 1.0 and 1.1, kw 1.0 and ~arch 2.0, masked 1.0 and 2.0
(masked in the profile), builddep.  Every toy package installs
/usr/bin/<name> printing <name>-<version>.

Emerging is the slow part, so one buildout with two parts (defaults, and
every Portage option) covers most checks.
"""

import io
import os
import platform
import subprocess
import tarfile
import textwrap

import pytest

from support.engine import docker, inspect

MACHINE = platform.machine()
KEYWORD = {"x86_64": "amd64", "aarch64": "arm64"}.get(MACHINE, "amd64")
TARGET = "/usr/%s-dockeroo-linux-gnu" % MACHINE  # the builder's target root
CHROOT = "chroot-%s-docker" % MACHINE

#: --privileged is refused on these engines: the capability set that works
PRIVILEGES = """privileged = false
cap-add = ALL
cap-drop = SYS_RESOURCE
security-opt = seccomp=unconfined"""


def cfg(template, **values):
    """Dedent TEMPLATE, then fill it (values may span lines)."""
    values.setdefault("priv", PRIVILEGES)
    return textwrap.dedent(template) % values


def containers_named(prefix):
    return [n for n in docker("ps", "-a", "--format", "{{.Names}}").split() if n.startswith(prefix)]


def image_names(image, probe):
    """The files (not folders) of IMAGE, from ``docker export``."""
    docker("create", "--name", probe, image)
    try:
        proc = subprocess.run(["docker", "export", probe], capture_output=True, check=True)
    finally:
        docker("rm", probe)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        names = {m.name for m in tar if not m.isdir()}
    # what Docker puts in every container
    return names - {".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab",
                    "dev/console"}


def image_files(image, *paths):
    """{path: content or None} read with the image's own busybox."""
    out = docker("run", "--rm", "--entrypoint", "/bin/sh", image, "-c",
                 'for f; do if [ -f "$f" ]; then echo "$f=$(cat "$f" | tr "\\n" " ")"; '
                 'else echo "$f"; fi; done', "sh", *paths)
    found = {}
    for line in out.splitlines():
        path, sep, value = line.partition("=")
        found[path] = value.strip() if sep else None
    return found


def test_gentoo_build_packages_and_portage_options(buildout, prefix, base_image, portage_builder):
    buildout.write("layout/etc/motd", "welcome\n")
    buildout.write("layout/srv/app/config", "key=value\n")
    buildout.write("build-layout/etc/build-marker", "from build-layout\n")
    buildout.configure(cfg("""
        [plain]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-plain
        build-image = %(builder)s
        base-image = %(base)s
        packages =
            app-toy/hello
            app-toy/tool app-toy/kw
            app-toy/masked
        command = /usr/bin/hello
        %(priv)s

        [tuned]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-tuned:v1
        build-image = %(builder)s
        build-container = %(prefix)s-tb
        assemble-container = %(prefix)s-ta
        base-image = %(base)s
        build-layout = build-layout
        build-env =
            GREETING=hello world
        use =
            app-toy/hello extra
        mask =
            =app-toy/tool-1.1
        unmask =
            =app-toy/masked-2.0
        accept-keywords =
            app-toy/kw ~%(kw)s
        build-dependencies = app-toy/builddep
        pre-build-script =
            echo "pre $$GREETING" >> /tmp/steps
        build-script =
            %(chroot)s -c builddep >> /tmp/steps
            cat /etc/build-marker >> /tmp/steps
        post-build-script =
            echo "post as $$(id -un)" > /tmp/post
        post-build-script-user = nobody
        packages =
            app-toy/hello
            app-toy/tool
            app-toy/kw
            app-toy/masked
        copy =
            /tmp/steps /usr/share/steps
            /tmp/post /usr/share/post
            %(target)s/etc/portage/package.use/ /etc/built-with
        layout = layout
        layout-uid = 1000
        layout-gid = 1000
        script =
            echo "script as $$(id -u)" > /srv/app/script-ran
            cat /srv/app/config >> /srv/app/script-ran
        script-user = app
        command = /bin/sh -c "hello; echo 'two words'"
        user = app
        labels =
            maintainer=toy@example.invalid
            equation=a=b
        expose =
            8080
            53/udp
        volumes =
            /data
        %(priv)s
        """, prefix=prefix, builder=portage_builder, base=base_image, kw=KEYWORD,
        chroot=CHROOT, target=TARGET))
    buildout.ok()
    assert containers_named(prefix) == [], "temporary containers must be removed"

    plain, tuned = prefix + "-plain:latest", prefix + "-tuned:v1"
    p_labels = inspect("image", plain)["Config"]["Labels"]
    assert p_labels["io.dockeroo.packages"].split() == [
        "app-toy/greeting-1.0", "app-toy/hello-1.0", "app-toy/kw-1.0", "app-toy/masked-1.0",
        "app-toy/tool-1.1"]
    t = inspect("image", tuned)
    t_labels = t["Config"]["Labels"]
    # mask, unmask and accept-keywords each change the version that lands
    assert t_labels["io.dockeroo.packages"].split() == [
        "app-toy/greeting-1.0", "app-toy/hello-1.0", "app-toy/kw-2.0", "app-toy/masked-2.0",
        "app-toy/tool-1.0"]

    # the image runs: hello and its runtime dependency
    assert docker("run", "--rm", plain).strip() == "hello-1.0: greetings from greeting-1.0"
    assert docker("run", "--rm", tuned).splitlines() == [
        "hello-1.0: greetings from greeting-1.0", "two words"]
    for image, versions in ((plain, {"tool": "1.1", "kw": "1.0", "masked": "1.0"}),
                            (tuned, {"tool": "1.0", "kw": "2.0", "masked": "2.0"})):
        for name, version in versions.items():
            out = docker("run", "--rm", "--entrypoint", "/usr/bin/" + name, image)
            assert out.strip() == "%s-%s" % (name, version)

    # USE=extra adds a file; build dependencies stay in the builder
    files = ["/usr/share/hello/extra", "/usr/bin/builddep", "/usr/share/dockeroo/packages",
             "/usr/share/steps", "/usr/share/post", "/etc/built-with/zz-dockeroo-tuned",
             "/etc/motd",
             "/srv/app/script-ran", "/etc/build-marker", "/.dockeroo-freeze",
             "/var/db/pkg/app-toy/hello-1.0/USE"]
    p_files = image_files(plain, *files)
    t_files = image_files(tuned, *files)
    assert p_files["/usr/share/hello/extra"] is None
    assert t_files["/usr/share/hello/extra"] == "installed because USE=extra"
    assert "extra" not in p_files["/var/db/pkg/app-toy/hello-1.0/USE"].split()
    assert "extra" in t_files["/var/db/pkg/app-toy/hello-1.0/USE"].split()
    assert p_files["/usr/bin/builddep"] is None and t_files["/usr/bin/builddep"] is None
    manifest = t_files["/usr/share/dockeroo/packages"]
    assert manifest.split() == t_labels["io.dockeroo.packages"].split()
    # build-env, the three build scripts in order, build-layout, copy
    assert t_files["/usr/share/steps"] == "pre hello world builddep-1.0 from build-layout"
    assert t_files["/usr/share/post"] == "post as nobody"
    assert t_files["/etc/built-with/zz-dockeroo-tuned"] == "app-toy/hello extra"
    assert t_files["/etc/build-marker"] is None  # build-layout stays in the builder
    # layout with owners, script as script-user; the temporary freeze is gone
    assert t_files["/etc/motd"] == "welcome" and p_files["/etc/motd"] is None
    assert t_files["/srv/app/script-ran"] == "script as 1000 key=value"
    assert t_files["/.dockeroo-freeze"] is None
    owners = docker("run", "--rm", "--user", "0", "--entrypoint", "/bin/stat", tuned,
                    "-c", "%u:%g %n", "/srv/app/config", "/etc/motd", "/srv/app").split("\n")
    assert [o.split()[0] for o in owners if o] == ["1000:1000"] * 3

    # CMD, USER, LABEL, EXPOSE, VOLUME
    config = t["Config"]
    assert config["Cmd"] == ["/bin/sh", "-c", "hello; echo 'two words'"]
    assert config["User"] == "app"
    assert t_labels["maintainer"] == "toy@example.invalid"
    assert t_labels["equation"] == "a=b"
    assert t_labels["io.dockeroo.part"] == "tuned"
    assert set(config["ExposedPorts"]) == {"8080/tcp", "53/udp"}
    assert set(config["Volumes"]) == {"/data"}
    assert inspect("image", plain)["Config"]["User"] == ""

    # nothing changed: nothing is rebuilt
    ids = (inspect("image", plain)["Id"], t["Id"])
    result = buildout.ok()
    assert "Emerging" not in result.output
    assert (inspect("image", plain)["Id"], inspect("image", tuned)["Id"]) == ids
    assert containers_named(prefix) == []

    buildout.uninstall_all()
    assert inspect("image", plain) is None and inspect("image", tuned) is None


def test_gentoo_build_failures_leave_nothing(buildout, prefix, base_image, portage_builder):
    # emerge fails in the build container
    buildout.configure(cfg("""
        [broken]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-broken
        build-image = %(builder)s
        packages = app-toy/does-not-exist
        %(priv)s
        """, prefix=prefix, builder=portage_builder))
    result = buildout.fails()
    assert "Part [broken]" in result.output and "does-not-exist" in result.output
    assert containers_named(prefix) == []
    assert inspect("image", prefix + "-broken") is None
    # nothing left of the empty base image imported for it either
    assert docker("image", "ls", "--all", "--quiet", "--filter",
                  "label=io.dockeroo.part=broken").split() == []

    # the script fails in the assemble container (no builder needed)
    buildout.configure(cfg("""
        [broken]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-broken
        base-image = %(base)s
        script = echo about to fail; exit 3
        %(priv)s
        """, prefix=prefix, base=base_image))
    result = buildout.fails()
    assert "about to fail" in result.output
    assert containers_named(prefix) == []
    assert inspect("image", prefix + "-broken") is None


def test_gentoo_build_not_a_builder(buildout, prefix, base_image):
    buildout.configure(cfg("""
        [img]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-img
        build-image = %(base)s
        packages = app-misc/foo
        %(priv)s
        """, prefix=prefix, base=base_image))
    result = buildout.fails()
    line = result.error_line()
    assert "is not a Gentoo builder" in line and "chroot-" in line, result.output
    assert containers_named(prefix) == []


def test_gentoo_build_assemble_only_update_and_uninstall(buildout, prefix, base_image, tmp_path):
    """No builder: an empty image, an archive, a base image; change detection."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "release").write_text("toy 1\n")
    archive = tmp_path / "root.tar.gz"
    with tarfile.open(str(archive), "w:gz") as tar:
        tar.add(str(root / "etc"), "etc")
    buildout.write("layout/etc/app.conf", "one\n")
    buildout.configure(cfg("""
        [empty]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-empty
        layout = layout

        [archived]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-archived
        archives = %(archive)s
        layout = layout
        volumes-from =

        [based]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-based
        base-image = %(prefix)s-base:1
        layout = layout
        keep = true
        """, prefix=prefix, archive=archive))
    docker("tag", base_image, prefix + "-base:1")
    buildout.ok()
    assert containers_named(prefix) == []
    empty = inspect("image", prefix + "-empty")
    # no command anywhere: freeze is installed as the image's command
    assert empty["Config"]["Cmd"] == ["/bin/freeze"]
    assert image_names(prefix + "-empty", prefix + "-probe") == {"bin/freeze", "etc/app.conf"}
    docker("run", "--name", prefix + "-run", "-d", prefix + "-empty")
    docker("stop", "--time", "30", prefix + "-run")  # freeze stops at once, exit 0
    assert inspect("container", prefix + "-run")["State"]["ExitCode"] == 0
    docker("rm", prefix + "-run")
    assert image_names(prefix + "-archived", prefix + "-probe") == {
        "bin/freeze", "etc/app.conf", "etc/release"}
    archived = inspect("image", prefix + "-archived")
    assert archived["Config"]["Cmd"] == ["/bin/freeze"]
    based = inspect("image", prefix + "-based")
    assert based["Config"]["Cmd"] == ["/bin/sh"]  # the base image's
    out = docker("run", "--rm", prefix + "-based", "cat", "/etc/app.conf")
    assert out == "one\n"

    # nothing changed: same images; the layout changes: rebuilt, old image removed
    ids = {n: inspect("image", prefix + "-" + n)["Id"] for n in ("empty", "archived", "based")}
    buildout.ok()
    assert {n: inspect("image", prefix + "-" + n)["Id"] for n in ids} == ids
    buildout.write("layout/etc/app.conf", "two\n")
    buildout.ok()
    new = {n: inspect("image", prefix + "-" + n)["Id"] for n in ids}
    assert all(new[n] != ids[n] for n in ids)
    for old in ids.values():
        assert inspect("image", old) is None, "the replaced image must be removed"
    assert docker("run", "--rm", prefix + "-based", "cat", "/etc/app.conf") == "two\n"

    # a new base image (same reference) rebuilds the image on update
    docker("create", "--name", prefix + "-c", prefix + "-base:1", "true")
    docker("commit", "--change", "LABEL base.version=2", prefix + "-c", prefix + "-base:1")
    docker("rm", prefix + "-c")
    before = inspect("image", prefix + "-based")["Id"]
    buildout.ok()
    rebuilt = inspect("image", prefix + "-based")
    assert rebuilt["Id"] != before and rebuilt["Config"]["Labels"]["base.version"] == "2"
    assert inspect("image", prefix + "-empty")["Id"] == new["empty"]

    # a removed image is rebuilt by the next run
    docker("image", "rm", prefix + "-based")
    buildout.ok()
    assert inspect("image", prefix + "-based") is not None

    buildout.uninstall_all()
    assert inspect("image", prefix + "-empty") is None
    assert inspect("image", prefix + "-archived") is None
    assert inspect("image", prefix + "-based") is not None  # keep = true
    assert docker("image", "ls", "--all", "--quiet", "--filter",
                  "label=io.dockeroo.part=empty").split() == []


def test_gentoo_build_bad_options(buildout, prefix):
    cases = [
        ("packages", "not an atom", "'packages'"),
        ("use", "app-misc/foo", "'use'"),
        ("mask", "app-misc/foo extra", "'mask'"),
        ("accept-keywords", "app-misc/foo ~am$d", "'accept-keywords'"),
        ("expose", "80/xyz", "'expose'"),
        ("volumes", "data", "'volumes'"),
        ("copy", "relative/path", "'copy'"),
        ("layout-uid", "-1", "'layout-uid'"),
        ("build-container", "bad name", "'build-container'"),
        ("arch", "x86 64", "'arch'"),
        ("platform", "vax", "'platform'"),
        ("labels", "io.dockeroo.part=x", "'labels'"),
        ("command", "'unclosed", "'command'"),
        ("name", "Bad:Name", "'name'"),
    ]
    for option, value, needle in cases:
        buildout.configure("""
            [bad]
            recipe = dockeroo:docker.gentoo-build
            name = %s-bad
            build-image = some/builder
            %s = %s
            """ % (prefix, option, value) if option != "name" else """
            [bad]
            recipe = dockeroo:docker.gentoo-build
            name = %s
            """ % value)
        line = buildout.fails().error_line()
        assert "Part [bad]" in line and needle in line, (option, line)
    buildout.configure("""
        [bad]
        recipe = dockeroo:docker.gentoo-build
        name = %s-bad
        packages = app-misc/foo
        """ % prefix)
    line = buildout.fails().error_line()
    assert "needs build-image" in line
    buildout.configure("""
        [bad]
        recipe = dockeroo:docker.gentoo-build
        name = %s-bad
        build-image = %s-no-such-builder
        """ % (prefix, prefix))
    line = buildout.fails().error_line()
    assert "no such image" in line and "'build-image'" in line
    assert containers_named(prefix) == []
    assert inspect("image", prefix + "-bad") is None


def test_gentoo_build_foreign_platform_needs_binfmt(buildout, prefix, base_image):
    foreign = "arm64" if MACHINE == "x86_64" else "amd64"
    handler = "/proc/sys/fs/binfmt_misc/qemu-" + ("aarch64" if foreign == "arm64" else "x86_64")
    if os.path.exists(handler):
        pytest.skip("a QEMU binfmt handler for %s is registered here" % foreign)
    buildout.configure(cfg("""
        [img]
        recipe = dockeroo:docker.gentoo-build
        name = %(prefix)s-img
        base-image = %(base)s
        platform = linux/%(foreign)s
        """, prefix=prefix, base=base_image, foreign=foreign))
    line = buildout.fails(env={"DOCKER_MACHINE_NAME": ""}).error_line()
    assert "'platform'" in line and "binfmt" in line and "machine-name" in line, line
    assert containers_named(prefix) == [] and inspect("image", prefix + "-img") is None
