"""docker.gentoo-diskimage against the real test builder (it has sfdisk, partx, e2fsprogs).

This kernel has no partition-table parsers and no VFAT: each partition is
an ext4 file system mounted through its own loop device (``mount -o
loop=DEV,offset=,sizelimit=``; the loop device is detached by the kernel
when the file system is unmounted, also when the container goes away).
Loop devices are shared with the host: the scripts unmount what they mount.
"""

import os
import subprocess
import textwrap

from support.engine import docker, inspect

PRIVILEGES = """privileged = false
cap-add = ALL
cap-drop = SYS_RESOURCE
security-opt = seccomp=unconfined
devices = /dev/loop-control
device-cgroup-rules = b 7:* rmw"""

#: shell functions for the scripts: partition N's offset and size, and a
#: loop mount that makes the /dev/loopN node the container lacks
HELPERS = r"""
    part() { partx -g -b -n "$2" -o START,SECTORS "$1" | awk '{print $1 * 512, $2 * 512}'; }
    loopmount() {
        for try in 1 2 3 4 5 6 7 8; do
            dev=$$(losetup -f)
            [ -e "$$dev" ] || mknod "$$dev" b 7 "$${dev#/dev/loop}"
            if mount -t ext4 -o "loop=$$dev,offset=$$2,sizelimit=$$3" "$$1" "$$4"; then
                return 0
            fi
            sleep 1
        done
        return 1
    }
"""


def loops_for(path_fragment):
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if path_fragment in line]


def debugfs(builder, directory, image, offset, request):
    """Run a debugfs request on the ext4 file system at OFFSET of IMAGE (read-only)."""
    return docker("run", "--rm", "--volume", "%s:/img:ro" % directory, builder,
                  "debugfs", "-R", request, "/img/%s?offset=%d" % (image, offset))


def test_gentoo_diskimage_two_ext4_partitions(buildout, prefix, base_image, portage_builder):
    buildout.configure(textwrap.dedent("""
        [disk]
        recipe = dockeroo:docker.gentoo-diskimage
        build-image = %(builder)s
        base-image = %(base)s
        build-container = %(prefix)s-disk
        build-root = /mnt/root
        image-file = /var/tmp/%(prefix)s.img
        build-script-shell = /bin/bash -e
        prepare-script =
            %(helpers)s
            img=${:image-file}
            truncate -s 40M "$$img"
            printf 'label: dos\\nstart=2048, size=40960, type=83\\nstart=43008, type=83\\n' \\
                | sfdisk -q "$$img"
            set -- $$(part "$$img" 1); mkfs.ext4 -q -L root -E offset=$$1 "$$img" $$(($$2 / 1024))k
            set -- $$(part "$$img" 2); mkfs.ext4 -q -L home -E offset=$$1 "$$img" $$(($$2 / 1024))k
            mkdir -p /mnt/root
            loopmount "$$img" $$(part "$$img" 1) /mnt/root
            mkdir -p /mnt/root/home
            loopmount "$$img" $$(part "$$img" 2) /mnt/root/home
        build-script =
            echo "made by dockeroo" > /mnt/root/etc/disk-note
            umount /mnt/root/home
            umount /mnt/root
        %(priv)s
        """) % dict(builder=portage_builder, base=base_image, prefix=prefix,
                    helpers=textwrap.indent(textwrap.dedent(HELPERS), "    ").strip(),
                    priv=PRIVILEGES))
    buildout.ok()
    path = buildout.path("parts", "disk", prefix + ".img")
    assert os.path.isfile(path)
    assert os.path.getsize(path) == 40 << 20
    assert os.stat(path).st_blocks * 512 < 40 << 20, "zero blocks are written as holes"
    assert "image-file = %s" % path in buildout.installed()
    assert docker("ps", "-a", "--quiet", "--filter", "name=" + prefix).split() == []
    assert loops_for(prefix + ".img") == []

    # read it back: partition 1 holds the base image, partition 2 its /home
    parts = docker("run", "--rm", "--volume", "%s:/img:ro" % os.path.dirname(path),
                   portage_builder, "partx", "-g", "-b", "-o", "START", "/img/" + prefix + ".img")
    offsets = [int(s) * 512 for s in parts.split()]
    assert len(offsets) == 2
    directory, name = os.path.dirname(path), os.path.basename(path)
    passwd = debugfs(portage_builder, directory, name, offsets[0], "cat /etc/passwd")
    assert "app:x:1000:1000" in passwd
    assert debugfs(portage_builder, directory, name, offsets[0],
                   "cat /etc/disk-note").strip() == "made by dockeroo"
    busybox = debugfs(portage_builder, directory, name, offsets[0], "stat /bin/busybox")
    assert "Type: regular" in busybox
    assert "dockerenv" not in debugfs(portage_builder, directory, name, offsets[0], "ls /")
    home = debugfs(portage_builder, directory, name, offsets[1], "ls -l /")
    assert " app" in home and "lost+found" in home

    # nothing changed: the file is kept as it is
    before = os.stat(path).st_mtime_ns
    result = buildout.ok()
    assert "Running prepare-script" not in result.output
    assert os.stat(path).st_mtime_ns == before

    buildout.uninstall_all()
    assert not os.path.exists(path)


def test_gentoo_diskimage_failure_cleans_up(buildout, prefix, base_image, portage_builder):
    buildout.configure(textwrap.dedent("""
        [disk]
        recipe = dockeroo:docker.gentoo-diskimage
        build-image = %(builder)s
        base-image = %(base)s
        build-container = %(prefix)s-disk
        build-root = /mnt/root
        image-file = /tmp/never-made.img
        prepare-script = mkdir -p /mnt/root
        build-script = echo build failed; exit 4
        %(priv)s
        """) % dict(builder=portage_builder, base=base_image, prefix=prefix,
                    priv=PRIVILEGES))
    result = buildout.fails()
    assert "build failed" in result.output and "Part [disk]" in result.output
    assert docker("ps", "-a", "--quiet", "--filter", "label=io.dockeroo.part=disk",
                  "--filter", "name=" + prefix).split() == []
    assert not os.path.exists(buildout.path("parts", "disk", "never-made.img"))

    # a missing image-file is a clear error, and nothing is left either
    buildout.configure(textwrap.dedent("""
        [disk]
        recipe = dockeroo:docker.gentoo-diskimage
        build-image = %(builder)s
        base-image = %(base)s
        build-container = %(prefix)s-disk
        build-root = /mnt/root
        image-file = /tmp/never-made.img
        prepare-script = mkdir -p /mnt/root
        %(priv)s
        """) % dict(builder=portage_builder, base=base_image, prefix=prefix,
                    priv=PRIVILEGES))
    line = buildout.fails().error_line()
    assert "'image-file'" in line and "cannot read it" in line
    assert docker("ps", "-a", "--quiet", "--filter", "name=" + prefix).split() == []
    assert inspect("container", prefix + "-disk") is None


def test_gentoo_diskimage_bad_options(buildout, prefix):
    for option, value, needle in [
        ("build-root", "relative", "'build-root'"),
        ("image-file", "/tmp/", "'image-file'"),
        ("build-script-shell", "'unclosed", "'build-script-shell'"),
        ("build-volumes-from", "a:b:c", "'build-volumes-from'"),
        ("privileged", "maybe", "'privileged'"),
    ]:
        values = {"build-image": "b", "base-image": "a", "build-root": "/mnt",
                  "image-file": "/tmp/x.img"}
        values[option] = value
        buildout.configure("[disk]\nrecipe = dockeroo:docker.gentoo-diskimage\n" + "".join(
            "%s = %s\n" % item for item in values.items()))
        line = buildout.fails().error_line()
        assert "Part [disk]" in line and needle in line, (option, line)
