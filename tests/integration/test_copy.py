"""docker.copy against the real engine."""

import io
import os
import subprocess
import tarfile

from support.engine import docker, engine_kind

SRC_SCRIPT = """
            mkdir -p /srv/app/bin /srv/app/data /srv/app/empty
            printf '#!/bin/sh\\necho tool\\n' > /srv/app/bin/tool
            chmod 755 /srv/app/bin/tool
            echo secret > /srv/app/data/file
            chown 1000:1000 /srv/app/data/file
            chmod 640 /srv/app/data/file
            ln /srv/app/data/file /srv/app/data/hard
            ln -s data/file /srv/app/link
            echo conf > /etc/app.conf
            chmod 600 /etc/app.conf
"""


def scratch_image(prefix):
    """An image with no shell and no tar: one file, imported from a tar stream."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("marker")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    ref = prefix + "-scratch:latest"
    subprocess.run(["docker", "import", "-", ref], input=buf.getvalue(), check=True,
                   capture_output=True)
    return ref


def exported(container):
    """{name: TarInfo} of a container's whole filesystem (``docker export``)."""
    proc = subprocess.run(["docker", "export", container], capture_output=True, check=True)
    members = {}
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        for member in tar:
            data = tar.extractfile(member).read() if member.isreg() else None
            members[member.name.rstrip("/")] = Member(member, data)
    return members


class Member:
    def __init__(self, info, data):
        self.info, self.data = info, data

    def __getattr__(self, name):
        return getattr(self.info, name)

    @property
    def mode(self):  # docker export keeps the file type bits
        return self.info.mode & 0o7777


def parts(prefix, image, dst_image, paths, dst_command="/nothing\n        start = false"):
    return """
        [src]
        recipe = dockeroo:docker.run
        name = %(p)s-src
        image = %(img)s
        command = sleep 3600
        stop-timeout = 0
        script = %(script)s

        [dst]
        recipe = dockeroo:docker.run
        name = %(p)s-dst
        image = %(dst)s
        command = %(dst_command)s
        stop-timeout = 0

        [copy]
        recipe = dockeroo:docker.copy
        container-from = ${src:container}
        container-to = ${dst:container}
        paths = %(paths)s
        """ % {"p": prefix, "img": image, "dst": dst_image, "script": SRC_SCRIPT,
               "paths": paths, "dst_command": dst_command}


def test_copy_into_scratch_container(buildout, prefix, base_image):
    dst_image = scratch_image(prefix)
    buildout.configure(parts(prefix, base_image, dst_image, """
            /srv/app/
            /etc/app.conf
            /etc/app.conf /config/renamed.conf
            /srv/app/bin/tool /usr/local/bin/
            "/srv/app/data/file" /top-level-file
        """))
    result = buildout.ok()
    assert "copy: Copying 5 path(s)" in result.output
    files = exported(prefix + "-dst")
    assert files["marker"].data == b"hi\n"  # the image's own file is still there
    # a folder: modes, owners, symlinks, hard links, empty folders
    tool = files["srv/app/bin/tool"]
    assert tool.mode == 0o755 and tool.data == b"#!/bin/sh\necho tool\n"
    data = files["srv/app/data/file"]
    assert (data.mode, data.uid, data.gid, data.data) == (0o640, 1000, 1000, b"secret\n")
    hard = files["srv/app/data/hard"]
    assert hard.islnk() and hard.linkname == "srv/app/data/file"
    link = files["srv/app/link"]
    assert link.issym() and link.linkname == "data/file"
    assert files["srv/app/empty"].isdir()
    # a single file, into a parent the scratch image does not have
    conf = files["etc/app.conf"]
    assert conf.mode == 0o600 and conf.data == b"conf\n"
    # renamed
    renamed = files["config/renamed.conf"]
    assert renamed.mode == 0o600 and renamed.data == b"conf\n"
    # "into a folder" (destination ending in /) and a quoted source
    assert files["usr/local/bin/tool"].mode == 0o755
    top = files["top-level-file"]
    assert (top.uid, top.data) == (1000, b"secret\n")

    result = buildout.ok()
    assert "Copying" not in result.output
    buildout.uninstall_all()
    assert not os.path.exists(buildout.path("parts", "copy"))


def test_copy_again_only_when_a_container_or_the_paths_change(buildout, prefix, base_image):
    def cfg(paths, sleep):
        return parts(prefix, base_image, base_image, paths, dst_command="sleep %s" % sleep)
    buildout.configure(cfg("/etc/app.conf", "3600"))
    buildout.ok()
    dst = prefix + "-dst"
    assert docker("exec", dst, "cat", "/etc/app.conf") == "conf\n"
    docker("exec", dst, "rm", "/etc/app.conf")

    result = buildout.ok()  # nothing changed: nothing copied
    assert "Copying" not in result.output
    assert docker("exec", dst, "ls", "/etc").split().count("app.conf") == 0

    # an option that changes neither container nor paths: reinstalled, not copied
    buildout.configure(cfg("/etc/app.conf", "3600") + "timeout = 300\n")
    result = buildout.ok()
    assert "Installing copy" in result.output and "Copying" not in result.output, result.output
    assert docker("exec", dst, "ls", "/etc").split().count("app.conf") == 0

    buildout.configure(cfg("/etc/app.conf", "3601"))  # dst recreated: new id
    result = buildout.ok()
    assert "recreating container %s because" % dst in result.output and \
        "Copying 1 path" in result.output, result.output
    assert docker("exec", dst, "cat", "/etc/app.conf") == "conf\n"

    buildout.configure(cfg("/etc/app.conf /etc/other.conf", "3601"))  # paths changed
    result = buildout.ok()
    assert "Copying 1 path" in result.output
    assert docker("exec", dst, "cat", "/etc/other.conf") == "conf\n"

    docker("rm", "-f", prefix + "-src")  # src removed by hand: recreated, copied again
    docker("exec", dst, "rm", "/etc/other.conf")
    result = buildout.ok()
    assert "Copying 1 path" in result.output
    assert docker("exec", dst, "cat", "/etc/other.conf") == "conf\n"


def test_copy_missing_source_path_copies_nothing(buildout, prefix, base_image):
    buildout.configure(parts(prefix, base_image, base_image, """
            /etc/app.conf
            /srv/app/no-such-file
        """, dst_command="sleep 3600"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [copy], option 'paths'" in line, result.output
    assert "/srv/app/no-such-file does not exist in container %s-src" % prefix in line
    # checked before anything was written
    assert "app.conf" not in docker("exec", prefix + "-dst", "ls", "/etc").split()

    buildout.configure(parts(prefix, base_image, base_image, "/etc/app.conf/",
                             dst_command="sleep 3600"))
    line = buildout.fails().error_line()
    assert "Part [copy], option 'paths'" in line and "/etc/app.conf is not a folder" in line, line


def test_copy_bad_options(buildout, prefix, base_image):
    cases = [
        ("container-from = aa\ncontainer-to = aa\npaths = /x", "'container-to'", "same container"),
        ("container-to = bb\npaths = /x", "'container-from'", "is required"),
        ("container-from = aa\npaths = /x", "'container-to'", "is required"),
        ("container-from = aa\ncontainer-to = bb", "'paths'", "is required"),
        ("container-from = aa\ncontainer-to = bb\npaths = relative", "'paths'", "absolute"),
        ("container-from = aa\ncontainer-to = bb\npaths = /a /b /c", "'paths'", "SOURCE DESTINATION"),
        ("container-from = aa\ncontainer-to = bb\npaths = /", "'paths'", "cannot copy /"),
        ("container-from = aa\ncontainer-to = bb\npaths = /a/../../b", "'paths'", "'..'"),
        ("container-from = %s-none\ncontainer-to = %s-none2\npaths = /x" % (prefix, prefix),
         "'container-from'", "does not exist"),
        # a name the docker CLI would read as an option
        ("container-from = -x\ncontainer-to = b1\npaths = /x", "'container-from'", "2 or more"),
        ("container-from = a1\ncontainer-to = --help\npaths = /x", "'container-to'", "2 or more"),
    ]
    for options, option, words in cases:
        buildout.configure("[copy]\nrecipe = dockeroo:docker.copy\n" + options + "\n")
        line = buildout.fails().error_line()
        assert "Part [copy]" in line and option in line and words in line, (options, line)


def test_copy_many_paths(buildout, prefix, base_image):
    # many paths: each is checked (one source stream open at a time) before
    # anything is written
    lines = ["/etc/app.conf /many/c%d.conf" % i for i in range(10)]
    lines += ["/srv/app/bin/tool /many/bin/", "/srv/app/link", "/srv/app/data/"]
    scratch = scratch_image(prefix)
    buildout.configure(parts(prefix, base_image, scratch, "\n            ".join(lines)))
    buildout.ok()
    files = exported(prefix + "-dst")
    for i in range(10):
        assert files["many/c%d.conf" % i].data == b"conf\n"
    assert files["many/bin/tool"].mode == 0o755
    if engine_kind() == "podman":  # Podman's cp follows a final symlink: its target is copied
        assert files["srv/app/link"].isreg() and files["srv/app/link"].data == b"secret\n"
    else:
        assert files["srv/app/link"].linkname == "data/file"
    assert files["srv/app/data/hard"].linkname == "srv/app/data/file"

    lines[-1] = "/srv/app/no-such-folder/"
    buildout.configure(parts(prefix, base_image, scratch, "\n            ".join(lines)))
    line = buildout.fails().error_line()
    assert "/srv/app/no-such-folder does not exist in container %s-src" % prefix in line, line
