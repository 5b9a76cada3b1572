"""container.script_input: what ``SHELL -c '. /dev/stdin'`` reads, run here with
the host's shells (dash, bash, busybox sh) as the containers run it."""

import shutil
import subprocess

import pytest

from dockeroo.runtime.container import SCRIPT_LOADER, script_input

SHELLS = [s for s in ("/bin/sh", "/bin/dash", "/bin/bash", "/bin/busybox") if shutil.which(s)]


def run(shell, script, env=None):
    argv = [shell] + (["sh"] if shell.endswith("busybox") else []) + ["-c", SCRIPT_LOADER]
    return subprocess.run(argv, input=script_input(script, env).encode(), capture_output=True,
                          timeout=60)


@pytest.mark.parametrize("shell", SHELLS)
def test_scripts_run_as_with_sh_c(shell):
    script = ("read x; echo \"read=$? x=[$x]\"\ncat; echo \"cat=$?\"\n"
              "cat <<EOF\n  kept $TOKEN\nEOF\n"
              + "".join(": line %d %s\n" % (i, "x" * 40) for i in range(5000))
              + "echo \"$LINENO\" >&2\nexit 7\n")
    assert len(script) > 200 * 1024
    proc = run(shell, script, {"TOKEN": "it's a \"value\" $HOME \\ `x`"})
    assert proc.returncode == 7, proc.stderr[-500:]
    assert proc.stdout.decode() == "read=1 x=[]\ncat=0\n  kept it's a \"value\" $HOME \\ `x`\n"
    # the preamble shares the script's first line: line numbers are the script's own
    # (dash has no $LINENO in a sourced file)
    assert proc.stderr.decode().strip() in (str(script.count("\n") - 1), "")


def test_bad_variable_names_are_refused():
    with pytest.raises(ValueError):
        script_input("true", {"A-B": "x"})
