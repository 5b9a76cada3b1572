"""Scripts travel on ``docker exec``'s stdin, never on a command line."""

import textwrap

from support.engine import docker, inspect


def big_script(prefix, lines=4500):
    body = "\n".join("echo l%05d-%s >> /big" % (i, "x" * 30) for i in range(lines))
    return textwrap.dedent("""\
        read x; echo "read=$$? x=[$$x]" > /seen
        cat >> /seen
        echo "cat=$$?" >> /seen
        if true; then
            cat > /heredoc <<EOF
          kept   indentation $${HOME}
        EOF
        fi
        : MARKER-%s
        """) % prefix + body + "\nid -u > /uid\n"


def app_part(prefix, image, extra="", script=""):
    return ("[app]\nrecipe = dockeroo:docker.run\nname = %s-app\nimage = %s\n"
            "command = sleep 3600\nstop-timeout = 0\n%s\nscript =\n%s"
            % (prefix, image, extra, textwrap.indent(script, "    ")))


def test_script_on_stdin(buildout, prefix, base_image, docker_recorder):
    """A 200 KiB script (over the 128 KiB limit of one argv word) runs as
    ``sh -c`` would run it; its commands see an empty stdin; the script is
    in no argv of any docker call."""
    script = big_script(prefix)
    assert len(script) > 200 * 1024
    buildout.configure(app_part(prefix, base_image, script=script))
    result = buildout.run(env=docker_recorder.env)
    assert result.ok, result.output[-3000:]
    name = prefix + "-app"
    assert docker("exec", name, "cat", "/seen") == "read=1 x=[]\ncat=0\n"
    assert docker("exec", name, "cat", "/heredoc") == "  kept   indentation /root\n"
    big = docker("exec", name, "cat", "/big").splitlines()
    assert len(big) == 4500 and big[-1] == "l04499-" + "x" * 30
    assert docker("exec", name, "cat", "/uid") == "0\n"
    calls = docker_recorder.commands()
    assert any(argv[:1] == ["exec"] for argv in calls)
    for argv in calls:
        for word in argv:
            assert "MARKER-" not in word and "l00001" not in word, argv[:8]


def test_script_failure_and_timeout(buildout, prefix, base_image):
    buildout.configure(app_part(prefix, base_image,
                                script="echo out-before\necho err-line >&2\nexit 5\n"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app]" in line and "'script'" in line and "exit 5" in line, result.output
    assert "app: out-before" in result.output
    assert "err-line" in result.output
    assert inspect("container", prefix + "-app") is None
    buildout.configure(app_part(prefix, base_image, "timeout = 3", script="sleep 120\n"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app], option 'script'" in line and "did not finish within 3" in line, \
        result.output
    assert inspect("container", prefix + "-app") is None
