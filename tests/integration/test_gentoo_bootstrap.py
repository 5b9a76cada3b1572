"""docker.gentoo-bootstrap against the real engine.

Root filesystem archives are made from the busybox-static rootfs of the
``base_image`` fixture and served over HTTP from 127.0.0.1; one more is a
local path.  This engine refuses ``--privileged`` (see engine-facts.md), so
the parts use ``privileged = false`` and capability options instead.
"""

import bz2
import hashlib
import json
import os
import shutil
import subprocess
import textwrap

import pytest

from support.engine import containers_left, docker, image_id, inspect, leftovers
from support.tls_engine import MACHINE
from support.www import tar_bytes

from dockeroo.model.ownership import owner_id

FREEZE_AARCH64 = os.path.join(os.path.dirname(__file__), "..", "..", "src", "dockeroo", "runtime", "freeze",
                              "freeze-aarch64")


def local_archive(buildout, motd=b"local archive\n"):
    """A .tar.bz2 in the buildout directory (a local path archive)."""
    path = buildout.path("local.tar.bz2")
    group = b"root:x:0:\ndaemon:x:1:\napp:x:1000:\nnogroup:x:65534:\nlocal:x:2000:\n"
    with open(path, "wb") as handle:
        handle.write(bz2.compress(tar_bytes({"etc/motd": motd, "etc/group": group})))
    return "local.tar.bz2"


def configure(buildout, parts, buildout_extra=""):
    text = textwrap.dedent(parts)
    names = [l.strip()[1:-1] for l in text.splitlines() if l.startswith("[")]
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write("[buildout]\nparts = %s\n%s\n%s" % (" ".join(names),
                                                         textwrap.dedent(buildout_extra), text))


def fill(template, values):
    """Dedent a part template, then substitute (multi-line values keep their place)."""
    return textwrap.dedent(template) % values


def archives_option(www, local):
    return "\n    ".join([
        "%s sha256:%s" % (www.url("rootfs.tar.gz"), www.sha256("rootfs.tar.gz")),
        "%s /opt/extra md5:%s" % (www.url("extra.tar.xz"), www.md5("extra.tar.xz")),
        local])


def run_in(image, script):
    return docker("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script)


# -- commit = true: archives, layout, script, re-run, change, uninstall -------------------
def test_bootstrap_commit(buildout, prefix, www):
    image = prefix + "/boot:1"
    layout = buildout.path("layout")
    os.makedirs(os.path.join(layout, "etc/portage"))
    os.makedirs(os.path.join(layout, "usr/local/bin"))
    with open(os.path.join(layout, "etc/portage/make.conf"), "w") as handle:
        handle.write('FEATURES="-sandbox"\n')
    tool = os.path.join(layout, "usr/local/bin/tool")
    with open(tool, "w") as handle:
        handle.write("#!/bin/sh\necho tool ran\n")
    os.chmod(tool, 0o750)
    os.chown(tool, 1234, 1234)  # layouts land owned by root
    local = local_archive(buildout)
    part = """
        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %(image)s
        container = %(prefix)s-builder
        archives =
            %(archives)s
        layout = layout
        commit = true
        privileged = false
        script =
            set -e
            cat > /etc/greeting <<'EOF'
            hello $$USER
              indented line
            EOF
            V=value
            echo "shell=$$0 var=$${V} tool=$$(/usr/local/bin/tool)" > /etc/script-ran
            test "$$(cat /etc/motd)" = "%(motd)s"
        """
    values = dict(image=image, prefix=prefix, archives=archives_option(www, local),
                  motd="local archive")
    configure(buildout, fill(part, values))
    before = len(www.requests)
    result = buildout.ok()
    assert "boot: Importing %s" % www.url("rootfs.tar.gz") in result.output
    assert len(www.requests) == before + 2

    img = inspect("image", image)
    labels = img["Config"]["Labels"]
    assert labels["io.dockeroo.part"] == "boot"
    assert labels["io.dockeroo.fingerprint"] in buildout.installed()
    assert img["Config"]["Cmd"] == ["/bin/freeze"]
    out = run_in(image, "cat /etc/greeting /etc/script-ran /etc/motd /opt/extra/hello.txt "
                        "/opt/extra/sub/data /etc/portage/make.conf; "
                        "stat -c '%a %u:%g %n' /usr/local/bin/tool /bin/freeze; "
                        "grep -c local /etc/group")
    assert out.splitlines() == [
        "hello $USER", "  indented line",
        "shell=/bin/sh var=value tool=tool ran",
        "local archive", "hello from xz", "data", 'FEATURES="-sandbox"',
        "750 0:0 /usr/local/bin/tool", "755 0:0 /bin/freeze",
        "1"]  # a later archive's file replaces an earlier one's
    assert containers_left(prefix, buildout) == []  # committed and removed

    # nothing changed: nothing rebuilt, nothing downloaded
    before = len(www.requests)
    result = buildout.ok()
    assert "Updating boot" in result.output and "Importing" not in result.output
    assert image_id(image) == img["Id"]
    assert len(www.requests) == before

    # a changed local archive: rebuilt; the previous image is removed
    local_archive(buildout, b"changed\n")
    values["motd"] = "changed"
    configure(buildout, fill(part, values))
    result = buildout.ok()
    assert "Importing" in result.output
    new_id = image_id(image)
    assert new_id != img["Id"]
    assert inspect("image", img["Id"]) is None
    assert run_in(image, "cat /etc/motd") == "changed\n"

    buildout.uninstall_all()
    assert inspect("image", image) is None
    assert leftovers(prefix, buildout) == []


# -- commit = false: the running container is the result ---------------------------------
def test_bootstrap_container_options(buildout, prefix, www, base_image, tmp_path):
    docker("create", "--name", prefix + "-vols", "--volume", "/shared", base_image, "true")
    docker("volume", "create", prefix + "-data")
    host = tmp_path / "host"
    host.mkdir()
    (host / "from-host").write_text("host file\n")
    image = prefix + "/builder:latest"
    name = prefix + "-builder"
    local = local_archive(buildout)
    part = """
        [builder]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %(image)s
        container = %(name)s
        archives =
            %(archives)s
        crossdev-platform = x86_64
        tty = true
        volumes =
            %(prefix)s-data:/data
            %(host)s:/host:ro
        volumes-from = %(prefix)s-vols
        privileged = false
        cap-add =
            SYS_ADMIN
            SYS_PTRACE
        cap-drop = NET_RAW
        security-opt = seccomp=unconfined
        devices = /dev/null:/dev/xnull
        device-cgroup-rules = b 7:* rmw
        timeout = 2m
        script =
            mkdir -p /mnt/t && mount -t tmpfs none /mnt/t && umount /mnt/t
            cp /host/from-host /data/copied
            echo %(marker)s > /shared/marker
        """
    values = dict(image=image, name=name, prefix=prefix, host=host, marker="one",
                  archives=archives_option(www, local))
    configure(buildout, fill(part, values))
    buildout.ok()
    c = inspect("container", name)
    assert c["State"]["Running"]
    assert c["Config"]["Cmd"] == ["/bin/freeze"] and c["Config"]["Tty"] is True
    hc = c["HostConfig"]
    assert hc["Privileged"] is False
    assert sorted(hc["CapAdd"]) == ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]
    assert hc["CapDrop"] == ["CAP_NET_RAW"]
    assert hc["SecurityOpt"] == ["seccomp=unconfined"]
    assert hc["Devices"][0]["PathOnHost"] == "/dev/null"
    assert hc["Devices"][0]["PathInContainer"] == "/dev/xnull"
    assert hc["DeviceCgroupRules"] == ["b 7:* rmw"]
    assert hc["VolumesFrom"] == [prefix + "-vols"]
    assert sorted(hc["Binds"]) == sorted(["%s-data:/data" % prefix, "%s:/host:ro" % host])
    assert c["Image"] == image_id(image)
    assert docker("exec", name, "cat", "/data/copied", "/shared/marker", "/etc/motd") == \
        "host file\none\nlocal archive\n"
    started = c["State"]["StartedAt"]

    result = buildout.ok()  # no change
    c2 = inspect("container", name)
    assert c2["Id"] == c["Id"] and c2["State"]["StartedAt"] == started

    docker("stop", name)  # stopped by hand: started again, not rebuilt
    result = buildout.ok()
    c2 = inspect("container", name)
    assert c2["Id"] == c["Id"] and c2["State"]["Running"]

    # only the script changed: a new container, the imported image is reused
    values["marker"] = "two"
    configure(buildout, fill(part, values))
    result = buildout.ok()
    assert "Importing" not in result.output
    c3 = inspect("container", name)
    assert c3["Id"] != c["Id"] and c3["Image"] == c["Image"] and c3["State"]["Running"]
    assert docker("exec", name, "cat", "/shared/marker") == "two\n"
    assert containers_left(prefix, buildout) == sorted([name, prefix + "-vols"])

    buildout.uninstall_all()
    assert inspect("container", name) is None and inspect("image", image) is None
    assert inspect("volume", prefix + "-data") is not None  # not the part's
    assert leftovers(prefix, buildout) == [("container", prefix + "-vols")]


def failing_docker(tmp_path, command, match):
    """PATH entry with a ``docker`` that fails the first ``docker COMMAND ...``
    whose arguments contain MATCH."""
    directory = tmp_path / ("fail-" + command)
    directory.mkdir()
    real = shutil.which("docker")
    (directory / "docker").write_text(textwrap.dedent("""\
        #!/bin/sh
        case "$1 $*" in
            "%(command)s "*%(match)s*)
                if mkdir %(once)s 2>/dev/null; then
                    echo "simulated failure of $1" >&2; exit 1
                fi;;
        esac
        exec %(real)s "$@"
        """) % dict(command=command, match=match, real=real, once=directory / "failed"))
    os.chmod(str(directory / "docker"), 0o755)
    return {"PATH": "%s:%s" % (directory, os.environ["PATH"])}


def test_failure_after_commit_puts_the_previous_image_back(buildout, prefix, www, tmp_path):
    image = prefix + "/committed:1"
    part = """
        [builder]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s
        container = %s-builder
        archives = %s
        privileged = false
        commit = true
        script = echo %%s > /marker
        """ % (image, prefix, www.url("rootfs.tar.gz"))
    configure(buildout, fill(part, "one"))
    buildout.ok()
    old_image = image_id(image)
    before = sorted(leftovers(prefix, buildout))
    configure(buildout, fill(part, "two"))
    # the temporary container's removal right after the commit fails
    result = buildout.fails(env=failing_docker(tmp_path, "rm", "-new-"))
    assert "simulated failure of rm" in result.error_line(), result.output
    assert image_id(image) == old_image
    assert run_in(image, "cat /marker") == "one\n"
    assert sorted(leftovers(prefix, buildout)) == before
    buildout.ok()
    assert run_in(image, "cat /marker") == "two\n"


@pytest.mark.parametrize("command,match", [("rename", ""), ("rename", "-new-"), ("rm", "-old-")])
def test_failed_swap_puts_the_previous_container_and_image_back(buildout, prefix, www, tmp_path,
                                                                 command, match):
    """A failure while the new container takes the place of the previous one
    (rename or removal failing) leaves the previous container and image tag
    as they were, and nothing new behind."""
    image = prefix + "/builder:1"
    name = prefix + "-builder"
    part = """
        [builder]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s
        container = %s
        archives = %%s
        privileged = false
        script = echo %%s > /marker
        """ % (image, name)
    configure(buildout, fill(part, (www.url("rootfs.tar.gz"), "one")))
    buildout.ok()
    before = inspect("container", name)
    old_image = image_id(image)
    # another archive (a new image) and script
    configure(buildout, fill(part, (www.url("rootfs.tar.gz") + "\n    " + www.url("extra.tar.xz"),
                                    "two")))
    result = buildout.fails(env=failing_docker(tmp_path, command, match))
    assert "simulated failure of %s" % command in result.error_line(), result.output
    after_ = inspect("container", name)
    assert after_["Id"] == before["Id"] and after_["State"]["Running"], result.output
    assert docker("exec", name, "cat", "/marker") == "one\n"
    assert image_id(image) == old_image
    assert containers_left(prefix, buildout) == [name]
    owner = owner_id(buildout.directory)
    assert docker("images", "-a", "-q", "--no-trunc", "--filter",
                  "label=io.dockeroo.buildout=" + owner).split() == [old_image]
    # and without the failure, the change goes through
    buildout.ok()
    assert docker("exec", name, "cat", "/marker") == "two\n"
    assert containers_left(prefix, buildout) == [name]


def test_keep_and_defaults(buildout, prefix, www):
    """keep = true; image and container default to the part's name."""
    configure(buildout, """
        [%s]
        recipe = dockeroo:docker.gentoo-bootstrap
        archives = %s
        privileged = false
        keep = true
        """ % (prefix, www.url("rootfs.tar.gz")))
    buildout.ok()
    container = prefix + "_bootstrap"
    assert inspect("container", container)["State"]["Running"]
    assert inspect("container", container)["Image"] == image_id(prefix + ":latest")
    buildout.uninstall_all()
    assert inspect("image", prefix + ":latest") is not None
    assert inspect("container", container) is not None


# -- failures leave nothing behind ---------------------------------------------------------
def test_checksum_mismatch(buildout, prefix, www, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    os.makedirs(buildout.path("cache"))
    wrong = "0" * 64
    configure(buildout, """
        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s/boot:1
        archives =
            %s
            %s sha256:%s
        privileged = false
        """ % (prefix, local_archive(buildout), www.url("extra.tar.xz"), wrong),
        "download-cache = cache\n")
    result = buildout.fails(env={"TMPDIR": str(tmp)})
    line = result.error_line()
    assert line.startswith("Error: Part [boot], option 'archives' = ")
    assert "sha256 checksum mismatch: expected %s, got %s" % (wrong, www.sha256("extra.tar.xz")) \
        in line
    assert leftovers(prefix, buildout) == []
    assert inspect("container", "boot_bootstrap") is None
    assert os.listdir(str(tmp)) == []
    cached = [f for _, _, files in os.walk(buildout.path("cache")) for f in files]
    assert cached == [], "the bad download must not stay in the download cache"


def flipped(data, at):
    data = bytearray(data)
    data[at] ^= 0x01
    return bytes(data)


@pytest.mark.parametrize("bad", [0, 1, 2])
def test_flipped_byte_in_any_archive_leaves_nothing(buildout, prefix, www, tmp_path, bad):
    """Three archives (two downloaded, one with a prefix, one local), one byte
    flipped in archive BAD: the checksum stops the import before Docker sees
    the end of that archive's stream.  The flips keep the archives readable
    (a gzip trailer byte, a data byte of a plain tar), so only the checksum
    catches them: no image, no container, no file in the download cache."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    os.makedirs(buildout.path("cache"))
    names = ["%s-rootfs.tar.gz" % prefix, "%s-extra.tar" % prefix, "local.tar"]
    good = [open(www.path("rootfs.tar.gz"), "rb").read(),
            tar_bytes({"hello.txt": b"hello from a plain tar\n", "sub/data": b"data\n"}),
            tar_bytes({"etc/motd": b"local archive\n"})]
    sums = [hashlib.sha256(data).hexdigest() for data in good]
    files = list(good)
    files[bad] = flipped(good[bad], len(good[bad]) - 3 if bad == 0 else
                         good[bad].index(b"hello from") if bad == 1 else
                         good[bad].index(b"local archive"))
    for name, data in zip(names[:2], files[:2]):
        with open(www.path(name), "wb") as handle:
            handle.write(data)
    with open(buildout.path(names[2]), "wb") as handle:
        handle.write(files[2])
    try:
        configure(buildout, """
            [boot]
            recipe = dockeroo:docker.gentoo-bootstrap
            image = %s/boot:1
            container = %s-boot
            archives =
                %s sha256:%s
                %s /opt/extra sha256:%s
                %s sha256:%s
            privileged = false
            commit = false
            """ % (prefix, prefix, www.url(names[0]), sums[0], www.url(names[1]), sums[1],
                   names[2], sums[2]),
            "download-cache = cache\n")
        result = buildout.fails(env={"TMPDIR": str(tmp)})
    finally:
        for name in names[:2]:
            os.unlink(www.path(name))
    line = result.error_line()
    assert line.startswith("Error: Part [boot], option 'archives' = "), result.output
    assert "sha256 checksum mismatch: expected %s" % sums[bad] in line
    assert leftovers(prefix, buildout) == []
    assert containers_left(prefix, buildout) == []
    assert inspect("image", prefix + "/boot:1") is None
    assert os.listdir(str(tmp)) == []
    cached = [f for _, _, found in os.walk(buildout.path("cache")) for f in found]
    # the good downloads stay cached (named by the md5 of their URL), the bad one is gone
    assert sorted(cached) == sorted(hashlib.md5(www.url(name).encode()).hexdigest()
                                    for i, name in enumerate(names[:2]) if i != bad)


def test_failing_script(buildout, prefix, www):
    configure(buildout, """
        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s/boot:1
        container = %s-builder
        archives = %s
        privileged = false
        commit = true
        script =
            echo about to fail
            exit 3
        """ % (prefix, prefix, www.url("rootfs.tar.gz")))
    result = buildout.fails()
    assert "boot: about to fail" in result.output
    assert "Part [boot]" in result.error_line() and "exit 3" in result.error_line()
    assert leftovers(prefix, buildout) == []


def test_option_errors(buildout, prefix, www):
    def fails(extra, *expected):
        configure(buildout, fill("""
            [boot]
            recipe = dockeroo:docker.gentoo-bootstrap
            image = %s/boot:1
            privileged = false
            %s
            """, (prefix, extra)))
        line = buildout.fails().error_line()
        for text in expected:
            assert text in line, line
    url = www.url("rootfs.tar.gz")
    fails("", "option 'archives': is required")
    fails("archives = %s sha256:abc" % url, "option 'archives'", "64 hex digits")
    fails("archives = %s ../up" % url, "points outside the target root")
    fails("archives = nowhere.tar", "nowhere.tar is not a file")
    fails("archives = %s\ncrossdev-platform = mips" % url, "option 'crossdev-platform'",
          "unknown platform")
    fails("archives = %s\ncontainer = bad/name" % url, "option 'container'")
    fails("archives = %s\nlayout = missing" % url, "option 'layout'", "does not exist")
    fails("archives = %s\nvolumes = relative" % url, "option 'volumes'")
    assert leftovers(prefix, buildout) == []


# -- zstd, download cache, offline mode ---------------------------------------------------
@pytest.mark.skipif(not shutil.which("zstd"), reason="zstd is not installed")
def test_zstd_download_cache_offline(buildout, prefix, www):
    os.makedirs(buildout.path("cache"))
    image = prefix + "/zst:1"
    part = """
        [zst]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s
        archives = %s sha256:%s
        privileged = false
        commit = true
        script = echo %s > /etc/run
        """
    args = (image, www.url("rootfs.tar.zst"), www.sha256("rootfs.tar.zst"))
    configure(buildout, fill(part, args + ("one",)), "download-cache = cache\n")
    before = len(www.requests)
    buildout.ok()
    assert len(www.requests) == before + 1
    assert run_in(image, "cat /etc/run; ls /bin/busybox") == "one\n/bin/busybox\n"
    # offline (-o): rebuilt from the download cache, the server is not asked
    configure(buildout, fill(part, args + ("two",)), "download-cache = cache\n")
    result = buildout.ok("-o")
    assert "Importing" in result.output
    assert len(www.requests) == before + 1
    assert run_in(image, "cat /etc/run") == "two\n"


# -- foreign architectures --------------------------------------------------------------
def handler_enabled(name):
    try:
        with open("/proc/sys/fs/binfmt_misc/" + name) as handle:
            return handle.readline().strip() == "enabled"
    except OSError:
        return False


def test_foreign_platform_without_machine_says_what_is_needed(buildout, prefix, www):
    if handler_enabled("qemu-s390x"):
        pytest.skip("this host runs s390x programs already")
    configure(buildout, """
        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s/boot:1
        container = %s-builder
        archives = %s
        crossdev-platform = s390x
        privileged = false
        """ % (prefix, prefix, www.url("rootfs.tar.gz")))
    line = buildout.fails(env={"DOCKER_MACHINE_NAME": ""}).error_line()
    assert "option 'crossdev-platform'" in line
    assert "differs from the engine's architecture amd64" in line
    assert "qemu-s390x" in line and "machine-name" in line
    assert leftovers(prefix, buildout) == []


@pytest.fixture
def binfmt_restored():
    """Undo what the test registers in the host's binfmt_misc."""
    mounted = os.path.exists("/proc/sys/fs/binfmt_misc/register")
    present = os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    yield
    if not present and os.path.exists("/proc/sys/fs/binfmt_misc/qemu-aarch64"):
        with open("/proc/sys/fs/binfmt_misc/qemu-aarch64", "w") as handle:
            handle.write("-1")
    if not mounted and os.path.exists("/proc/sys/fs/binfmt_misc/register"):
        subprocess.run(["umount", "/proc/sys/fs/binfmt_misc"], check=False)


@pytest.mark.skipif(not shutil.which("qemu-aarch64-static"),
                    reason="qemu-user-static is not installed")
def test_foreign_platform_through_docker_machine(buildout, prefix, www, tls, tmp_path,
                                                 binfmt_restored):
    """The stand-in docker-machine runs ``ssh`` commands on this host (as the machine's)."""
    calls = tmp_path / "calls"
    env = tls.env(str(calls))
    env["DOCKER_MACHINE_NAME"] = ""
    layout = buildout.path("layout", "usr", "local", "bin")
    os.makedirs(layout)
    shutil.copy(FREEZE_AARCH64, os.path.join(layout, "probe"))
    image = prefix + "/arm:1"
    part = """
        [arm]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s
        archives = %s
        layout = layout
        crossdev-platform = aarch64
        %s
        privileged = false
        commit = true
        script =
            set -e
            /usr/local/bin/probe &
            pid=$$!
            sleep 0.5
            readlink /proc/$$pid/exe > /probe
            kill $$pid
            wait $$pid
            echo "probe exit $$?" >> /probe
        """
    configure(buildout, fill(part, (image, www.url("rootfs.tar.gz"), "machine-name = " + MACHINE)))
    result = buildout.ok(env=env)
    assert "registering the QEMU binfmt handler qemu-aarch64 on machine %s" % MACHINE \
        in result.output
    ssh = [json.loads(l) for l in calls.read_text().splitlines() if json.loads(l)[0] == "ssh"]
    assert len(ssh) == 1 and ssh[0][:3] == ["ssh", MACHINE, "--"]
    assert "qemu-aarch64" in " ".join(ssh[0]) and "qemu-aarch64-static" in " ".join(ssh[0])
    assert handler_enabled("qemu-aarch64")
    probe = run_in(image, "cat /probe").splitlines()
    assert "qemu-aarch64" in probe[0] and probe[1] == "probe exit 0"

    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write("[buildout]\nparts =\n")
    buildout.ok(env=env)
    assert inspect("image", image) is None

    # the handler is registered now: a local engine needs no machine
    configure(buildout, fill(part, (image, www.url("rootfs.tar.gz"), "")))
    result = buildout.ok(env={"DOCKER_MACHINE_NAME": ""})
    assert "using the registered binfmt handler qemu-aarch64" in result.output
    assert run_in(image, "cat /probe").splitlines()[1] == "probe exit 0"
