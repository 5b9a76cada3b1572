"""Failures outside Docker (an unreadable layout file, a full disk) end in one
``Error:`` line naming the part and the option: no traceback, nothing left."""

import os
import shutil
import subprocess
import textwrap

import pytest

from support.buildout import BUILDOUT, BuildoutRun
from support.engine import inspect

#: as root, a file with mode 000 is readable: buildout runs without the
#: capabilities that bypass file permissions
NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
          "--bounding-set=-dac_override,-dac_read_search"]


def run_without_dac(buildout):
    wrapper = NO_DAC if os.geteuid() == 0 else []
    if wrapper and not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop root's file access capabilities")
    proc = subprocess.run(wrapper + [BUILDOUT, "-N"], cwd=buildout.directory,
                          capture_output=True, text=True, timeout=1200)
    return BuildoutRun(proc.returncode, proc.stdout + proc.stderr)


def make_layout(buildout):
    layout = buildout.path("layout")
    os.makedirs(os.path.join(layout, "etc"))
    with open(os.path.join(layout, "etc", "app.conf"), "w") as handle:
        handle.write("x=1\n")
    return layout


def app_part(prefix, image, extra=""):
    return textwrap.dedent("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = sleep 3600
        stop-timeout = 0
        layout = layout
        """) % (prefix, image) + extra


def assert_error_names_layout(result, layout):
    assert not result.ok and "Traceback" not in result.output, result.output[-3000:]
    line = result.error_line()
    assert line == ("Error: Part [app], option 'layout' = %r: cannot read the layout: "
                    "%s: Permission denied" % (layout, os.path.join(layout, "etc", "app.conf"))), \
        result.output[-3000:]


def test_unreadable_layout_file(buildout, prefix, base_image):
    layout = make_layout(buildout)
    os.chmod(os.path.join(layout, "etc", "app.conf"), 0)
    buildout.configure(app_part(prefix, base_image))
    result = run_without_dac(buildout)
    assert_error_names_layout(result, layout)
    assert inspect("container", prefix + "-app") is None


@pytest.mark.parametrize("recipe, option", [("docker.gentoo-bootstrap", "layout"),
                                            ("docker.gentoo-build", "layout"),
                                            ("docker.gentoo-build", "build-layout")])
def test_unreadable_layout_file_gentoo(buildout, prefix, base_image, recipe, option):
    layout = make_layout(buildout)
    os.chmod(os.path.join(layout, "etc", "app.conf"), 0)
    source = ("archives = %s" % buildout.path("none.tar") if recipe.endswith("bootstrap")
              else "build-image = %s" % base_image)
    with open(buildout.path("none.tar"), "wb") as handle:
        handle.write(bytes(10240))
    buildout.configure(textwrap.dedent("""
        [app]
        recipe = dockeroo:%s
        image = %s/img:1
        %s
        %s = layout
        """) % (recipe, prefix, source, option))
    result = run_without_dac(buildout)
    assert not result.ok and "Traceback" not in result.output, result.output[-3000:]
    assert result.error_line() == (
        "Error: Part [app], option %r = %r: cannot read the layout: %s: Permission denied"
        % (option, layout, os.path.join(layout, "etc", "app.conf"))), result.output[-3000:]


def test_layout_file_unreadable_when_it_is_copied(buildout, prefix, base_image):
    """The file was readable when buildout read the configuration (the layout's
    fingerprint) and is not when the layout is streamed into the container:
    the part before it takes the read permission away."""
    layout = make_layout(buildout)
    buildout.configure(textwrap.dedent("""
        [spoiler]
        recipe = dockeroo:docker.run
        name = %s-spoiler
        image = %s
        command = sleep 3600
        stop-timeout = 0
        volumes = %s:/l
        script = chmod 000 /l/etc/app.conf
        """) % (prefix, base_image, layout) + app_part(prefix, base_image),
        parts=["spoiler", "app"])
    result = run_without_dac(buildout)
    assert_error_names_layout(result, layout)
    assert inspect("container", prefix + "-spoiler") is not None
    assert inspect("container", prefix + "-app") is None
    os.chmod(os.path.join(layout, "etc", "app.conf"), 0o644)


def test_full_disk_while_writing_the_disk_image(buildout, prefix, base_image):
    """The disk image goes to parts/disk/, here a 1 MiB tmpfs; the image is 3 MB."""
    location = buildout.path("parts", "disk")
    os.makedirs(location)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "dockeroo-test", location],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here: %s" % mounted.stderr.strip())
    try:
        buildout.configure(textwrap.dedent("""
            [disk]
            recipe = dockeroo:docker.gentoo-diskimage
            build-image = %(base)s
            base-image = %(base)s
            build-container = %(prefix)s-disk
            build-root = /mnt/root
            image-file = /var/%(prefix)s.img
            prepare-script =
                mkdir -p /mnt/root /var
                head -c 3000000 /dev/urandom > /var/%(prefix)s.img
            privileged = false
            """) % dict(base=base_image, prefix=prefix))
        result = buildout.fails()
        line = result.error_line()
        path = os.path.join(location, prefix + ".img")
        assert line.startswith("Error: Part [disk], option 'image-file' = %r: cannot write the "
                               "disk image: " % path), result.output[-3000:]
        assert line.endswith("No space left on device"), line
        assert os.listdir(location) == []
        assert inspect("container", prefix + "-disk") is None
    finally:
        subprocess.run(["umount", location], check=True)
