"""The tests' base image: a root filesystem of Debian's busybox-static."""

import io
import subprocess
import tarfile

BUSYBOX = "/bin/busybox"


def busybox_rootfs_tar(path):
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        def add_dir(name, mode=0o755):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name, data, mode=0o644):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))

        for d in ("bin", "sbin", "etc", "root", "home", "usr", "usr/bin", "usr/sbin", "var", "dev",
                  "proc", "sys", "run"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        info = tar.gettarinfo(BUSYBOX, "bin/busybox")
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        with open(BUSYBOX, "rb") as handle:
            tar.addfile(info, handle)
        for applet in applets:
            if applet == "busybox":
                continue
            link = tarfile.TarInfo("bin/" + applet)
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                               b"daemon:x:1:1:daemon:/:/bin/false\n"
                               b"app:x:1000:1000:app:/home/app:/bin/sh\n"
                               b"nobody:x:65534:65534:nobody:/:/bin/false\n")
        add_file("etc/group", b"root:x:0:\ndaemon:x:1:\napp:x:1000:\nnogroup:x:65534:\n")
        add_dir("home/app")
