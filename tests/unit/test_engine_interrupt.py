"""An interrupted streamed docker command leaves no orphaned process."""

import logging
import os
import signal
import stat
import threading
import time

import pytest

from dockeroo.engine.docker import DockerEngine


def test_interrupted_streamed_run_kills_the_child(tmp_path):
    pidfile = tmp_path / "pid"
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho $$ > %s\nexec sleep 30\n" % pidfile)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    engine = DockerEngine(docker=str(fake))

    def interrupt():
        while not pidfile.exists() or not pidfile.read_text().strip():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        engine.run(["build", "."], stream=logging.getLogger("t"), timeout=60)
    pid = int(pidfile.read_text())
    try:  # gone; on a busy machine its pid may already belong to another process
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            assert b"sleep\x0030" not in handle.read()
    except FileNotFoundError:
        pass
