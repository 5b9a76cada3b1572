"""docker.copy with real-world sizes, counts and orders of paths.

Docker 20.10 holds the source container's lock while an archive stream of
it is open: a copy that opened several ``docker cp SRC:PATH -`` streams at
once deadlocked as soon as one stream filled its pipe (any file larger
than 64 KiB).  These tests copy files of 0 B, 100 KiB and 5 MiB in every
order of folder / file / renamed file / renamed folder; a hang fails them
(the buildout process is bounded) instead of stalling the suite.
"""

import itertools
import os
import subprocess
import textwrap
import time

from support.engine import docker

#: what the source container holds, made by its script
SRC_SCRIPT = """
            mkdir -p /data/dir /data/dir2 /tmp
            : > /data/dir/empty
            dd if=/dev/urandom of=/data/dir/k100 bs=1024 count=100 2>/dev/null
            dd if=/dev/urandom of=/data/dir/m5 bs=1048576 count=5 2>/dev/null
            : > /data/dir2/empty
            dd if=/dev/urandom of=/data/dir2/k100 bs=1024 count=100 2>/dev/null
            dd if=/dev/urandom of=/data/dir2/m5 bs=1048576 count=5 2>/dev/null
            dd if=/dev/urandom of=/data/file bs=1048576 count=5 2>/dev/null
            dd if=/dev/urandom of=/data/rfile bs=1024 count=100 2>/dev/null
            echo ran > /tmp/script-ran
"""

#: item -> (paths line, {source file: destination file})
ITEMS = {
    "folder": ("/data/dir/", {"/data/dir/%s" % n: "/data/dir/%s" % n
                              for n in ("empty", "k100", "m5")}),
    "file": ("/data/file", {"/data/file": "/data/file"}),
    "renamed-file": ("/data/rfile /moved/rfile", {"/data/rfile": "/moved/rfile"}),
    "renamed-folder": ("/data/dir2/ /moved/dir", {"/data/dir2/%s" % n: "/moved/dir/%s" % n
                                                  for n in ("empty", "k100", "m5")}),
}


def sums(container, paths):
    """{path: sha256} of files in a running container (busybox sha256sum)."""
    out = docker("exec", container, "sha256sum", *sorted(paths))
    found = {}
    for line in out.splitlines():
        digest, path = line.split(None, 1)
        found[path] = digest
    return found


def src_part(prefix, image, script=SRC_SCRIPT):
    return """
        [src]
        recipe = dockeroo:docker.run
        name = %s-src
        image = %s
        command = sleep 3600
        stop-timeout = 0
        script = %s
        """ % (prefix, image, script)


def dst_part(section, prefix, image):
    return """
        [%(s)s]
        recipe = dockeroo:docker.run
        name = %(p)s-%(s)s
        image = %(img)s
        command = sleep 3600
        stop-timeout = 0
        """ % {"s": section, "p": prefix, "img": image}


def copy_part(section, dst, paths, timeout="120"):
    lines = "\n            ".join(paths)
    return """
        [%s]
        recipe = dockeroo:docker.copy
        container-from = ${src:container}
        container-to = ${%s:container}
        timeout = %s
        paths =
            %s
        """ % (section, dst, timeout, lines)


def test_every_order_of_folder_file_and_renames(buildout, prefix, base_image):
    orders = list(itertools.permutations(ITEMS))
    assert len(orders) == 24
    text = src_part(prefix, base_image)
    for i, order in enumerate(orders):
        text += dst_part("d%d" % i, prefix, base_image)
        text += copy_part("c%d" % i, "d%d" % i, [ITEMS[item][0] for item in order])
    buildout.configure(text)
    started = time.monotonic()
    result = buildout.ok(timeout=900)  # a deadlock fails here, it does not stall
    took = time.monotonic() - started
    assert result.output.count("Copying 4 path(s)") == 24, result.output

    wanted = {}
    for item in ITEMS.values():
        wanted.update(item[1])
    source = sums(prefix + "-src", wanted)
    assert len(source) == 8 and len(set(source.values())) == 7  # two empty files
    for i, order in enumerate(orders):
        copied = sums("%s-d%d" % (prefix, i), wanted.values())
        assert copied == {dst: source[src] for src, dst in wanted.items()}, (order, copied)
    # nothing copied again
    result = buildout.ok()
    assert "Copying" not in result.output
    print("24 orders copied in %.1fs" % took)


def test_spec_example_with_a_large_shell(buildout, prefix, base_image):
    """The SPEC's example, verbatim, where /bin/sh is a 2 MB file (as on a
    real distribution), plus the two hanging reports of the issue."""
    script = SRC_SCRIPT + """
            mkdir -p /lib
            dd if=/dev/urandom of=/lib/libbig.so.1 bs=1048576 count=3 2>/dev/null
            ln -s libbig.so.1 /lib/libbig.so
            mkdir -p /etc/app
            dd if=/dev/urandom of=/etc/app/big.conf bs=1024 count=300 2>/dev/null
            rm -f /bin/sh
            cp /bin/busybox /bin/sh
"""
    text = src_part(prefix, base_image, script)
    for dst in ("dst", "dst2", "dst3"):
        text += dst_part(dst, prefix, base_image)
    text += copy_part("copy_part", "dst", ["/lib/", "/bin/sh", "/bin/sh /bin/bash"])
    text += copy_part("report1", "dst2", ["/tmp/script-ran", "/bin/busybox /opt/bb"])
    text += copy_part("report2", "dst3", ["/etc/app/", "/bin/busybox /opt/bb"])
    buildout.configure(text)
    buildout.ok(timeout=600)
    src = prefix + "-src"
    size = int(docker("exec", src, "stat", "-c", "%s", "/bin/sh"))
    assert size > 1024 * 1024
    want = sums(src, ["/lib/libbig.so.1", "/bin/sh", "/bin/busybox", "/tmp/script-ran",
                      "/etc/app/big.conf"])
    dst = prefix + "-dst"
    got = sums(dst, ["/lib/libbig.so.1", "/bin/sh", "/bin/bash"])
    assert got == {"/lib/libbig.so.1": want["/lib/libbig.so.1"], "/bin/sh": want["/bin/sh"],
                   "/bin/bash": want["/bin/sh"]}
    assert docker("exec", dst, "readlink", "/lib/libbig.so").strip() == "libbig.so.1"
    assert sums(prefix + "-dst2", ["/tmp/script-ran", "/opt/bb"]) == {
        "/tmp/script-ran": want["/tmp/script-ran"], "/opt/bb": want["/bin/busybox"]}
    assert sums(prefix + "-dst3", ["/etc/app/big.conf", "/opt/bb"]) == {
        "/etc/app/big.conf": want["/etc/app/big.conf"], "/opt/bb": want["/bin/busybox"]}


def test_timeout_bounds_the_copy_and_leaves_no_process(buildout, prefix, base_image, tmp_path):
    """A ``docker cp`` that never ends is killed at the part's timeout."""
    buildout.configure(src_part(prefix, base_image) + dst_part("dst", prefix, base_image))
    buildout.ok()
    # a docker client whose reads of the source stall (an engine that hangs)
    wrappers = tmp_path / "slow-docker"
    wrappers.mkdir()
    real = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True,
                          text=True).stdout.strip()
    (wrappers / "docker").write_text(textwrap.dedent("""\
        #!/bin/sh
        if [ "$1" = cp ] && [ "$3" = - ]; then
            case "$2" in *%s-src:*) exec sleep 600 ;; esac
        fi
        exec %s "$@"
        """) % (prefix, real))
    os.chmod(wrappers / "docker", 0o755)
    env = {"PATH": "%s:%s" % (wrappers, os.environ["PATH"])}
    buildout.configure(src_part(prefix, base_image) + dst_part("dst", prefix, base_image)
                       + copy_part("copy", "dst", ["/data/file", "/data/dir/ /moved/"],
                                   timeout="3"))
    started = time.monotonic()
    result = buildout.fails(env=env, timeout=120)
    assert time.monotonic() - started < 60
    line = result.error_line()
    assert "Part [copy], option 'timeout'" in line and "3" in line, result.output
    left = subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True, text=True).stdout
    ours = []
    for pid in left.split():
        try:
            with open("/proc/%s/environ" % pid, "rb") as handle:
                if str(wrappers).encode() in handle.read():
                    ours.append(pid)
        except OSError:  # already gone
            pass
    assert not ours, "processes left running: %s" % ours
    assert "data" not in docker("exec", prefix + "-dst", "ls", "/").split()
