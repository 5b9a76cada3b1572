"""The batched ``docker KIND inspect`` honours the ``timeout`` of the part that asks."""

import os
import shutil
import textwrap
import time

from support.engine import inspect


def test_batched_inspect_honours_the_part_timeout(buildout, prefix, base_image, tmp_path):
    real = shutil.which("docker")
    wrapper_dir = tmp_path / "slow-docker"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "docker"
    # every inspect hangs (exec: the killed process is the one holding the pipes)
    wrapper.write_text(textwrap.dedent("""\
        #!/bin/sh
        case "$2" in inspect) exec sleep 600;; esac
        exec %s "$@"
        """) % real)
    wrapper.chmod(0o755)
    buildout.configure(textwrap.dedent("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = sleep 3600
        timeout = 2
        """) % (prefix, base_image))
    started = time.monotonic()
    result = buildout.fails(env={"PATH": "%s%s%s" % (wrapper_dir, os.pathsep,
                                                     os.environ.get("PATH", ""))})
    elapsed = time.monotonic() - started
    line = result.error_line()
    assert line.startswith("Error: Part [app]"), result.output[-3000:]
    assert "inspect" in line and "timed out after 2" in line and "option 'timeout'" in line, line
    assert elapsed < 170, "the 180 s default applied, not the part's 2 s"
    assert inspect("container", prefix + "-app") is None
