"""docker.run: bad input gets a clear error and leaves no container behind."""

import pytest

from support.engine import container_names, docker, engine_kind, inspect


def app_part(prefix, image, extra=""):
    return """
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = sleep 3600
        stop-timeout = 0
        %s
        """ % (prefix, image, extra)


BAD_OPTIONS = [
    # (option lines, option named in the error, words in the error)
    ("links = %(p)s-db:alias:extra", "links", "CONTAINER:ALIAS"),
    ("links = bad name", "links", "CONTAINER:ALIAS"),
    ("volumes = just-a-name", "volumes", "SOURCE:TARGET"),
    ("volumes = data:relative/path", "volumes", "absolute"),
    ("volumes = data:/data:sideways", "volumes", "mount mode"),
    ("volumes-from = other:rx", "volumes-from", "CONTAINER:ro"),
    ("env = NOVALUE", "env", "KEY=VALUE"),
    ("env-file = missing.env", "env-file", "is not a file"),
    ("ports = 80:http", "ports", "CONTAINER-PORT"),
    ("ports = 70000", "ports", "1 to 65535"),
    ("ports = 300.1.1.1:80:80", "ports", "not an IP address"),
    ("layout = no-such-folder", "layout", "does not exist"),
    ("network-aliases = www", "network-aliases", "user-defined network"),
    ("networks =\n            host\n            other", "networks", "cannot be combined"),
    ("restart = sometimes", "restart", "on-failure"),
    ("wait = soon", "wait", "duration"),
    ("tty = maybe", "tty", "boolean"),
    ("stop-timeout = -1", "stop-timeout", "at least 0"),
    ("command = sh -c 'unclosed", "command", "command line"),
    ("start = false\n        script = echo hi", "script", "start = true"),
    ("labels = io.dockeroo.part=mine", "labels", "set by dockeroo"),
    ("workdir = relative", "workdir", "absolute"),
    # names the docker CLI would read as options, and names Docker refuses
    ("networks = -x", "networks", "not start with '-'"),
    ("networks = --help", "networks", "not start with '-'"),
    ("volumes-from = -x", "volumes-from", "CONTAINER"),
    ("links = -x:alias", "links", "CONTAINER:ALIAS"),
    ("links = x:alias", "links", "CONTAINER:ALIAS"),
]


@pytest.mark.parametrize("lines,option,words", BAD_OPTIONS,
                         ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD_OPTIONS)])
def test_run_bad_option(buildout, prefix, base_image, lines, option, words):
    buildout.configure(app_part(prefix, base_image, lines % {"p": prefix}))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app]" in line and "'%s'" % option in line and words in line, result.output
    assert container_names(prefix) == []


def test_run_bad_name_and_missing_image(buildout, prefix, base_image):
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s app
        image = %s
        """ % (prefix, base_image))
    line = buildout.fails().error_line()
    assert "Part [app]" in line and "'name'" in line, line

    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        """ % prefix)
    line = buildout.fails().error_line()
    assert "Part [app], option 'image': is required" in line, line
    assert container_names(prefix) == []


def test_run_image_not_local_names_the_part_that_makes_it(buildout, prefix, base_image):
    image = prefix + "-missing:1.0"
    buildout.configure(app_part(prefix, image))
    line = buildout.fails().error_line()
    assert "Part [app], option 'image'" in line and "does not exist" in line, line
    assert "no part of this buildout builds or pulls it" in line

    # a pull part making it exists but is not in the parts
    buildout.configure(app_part(prefix, image) + """
        [fetch]
        recipe = dockeroo:docker.pull
        image = %s
        """ % image, parts=["app"])
    line = buildout.fails().error_line()
    assert "part [fetch] (dockeroo:docker.pull) pulls it but is not in the buildout's parts" \
        in line, line
    # a build part making it comes later in the parts
    buildout.write("ctx/Dockerfile", "FROM %s\n" % base_image)
    buildout.configure(app_part(prefix, image) + """
        [maker]
        recipe = dockeroo:docker.build
        name = %s
        source = ctx
        """ % image, parts=["app", "maker"])
    line = buildout.fails().error_line()
    assert "part [maker] (dockeroo:docker.build) builds it but has not made it yet" in line, line
    assert "${maker:image}" in line
    assert container_names(prefix) == []


def test_run_unknown_script_user(buildout, prefix, base_image):
    buildout.configure(app_part(prefix, base_image, "script = id\n        script-user = ghost"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app]" in line and "'script-user'" in line and "ghost" in line, result.output
    assert container_names(prefix) == []


def test_run_failing_script_leaves_no_container(buildout, prefix, base_image):
    buildout.configure(app_part(prefix, base_image, "script =\n            echo about to fail\n"
                                                    "            false"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app], option 'script'" in line and "exit 1" in line, result.output
    assert "app: about to fail" in result.output
    assert container_names(prefix) == []


def test_run_unknown_network_leaves_no_container(buildout, prefix, base_image):
    buildout.configure(app_part(prefix, base_image,
                                "networks =\n            bridge\n            %s-nonet" % prefix))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app], option 'networks'" in line and "%s-nonet does not exist" % prefix in line, result.output
    assert container_names(prefix) == []


def test_run_foreign_container_with_the_same_name(buildout, prefix, base_image):
    docker("create", "--name", prefix + "-app", base_image, "true")
    before = inspect("container", prefix + "-app")["Id"]
    buildout.configure(app_part(prefix, base_image))
    line = buildout.fails().error_line()
    assert "Part [app]" in line and "not created by this part" in line, line
    assert inspect("container", prefix + "-app")["Id"] == before


def test_run_container_that_cannot_start(buildout, prefix, base_image):
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = /no/such/program
        """ % (prefix, base_image))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app]: container %s-app did not start" % prefix in line, result.output
    assert "/no/such/program" in line
    assert container_names(prefix) == []


def test_run_container_name_errors_name_the_option_used(buildout, prefix, base_image):
    """The SPEC writes the name as ``container =``: errors say so; one
    character (the default for a part named so) is refused as Docker does."""
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        container = -%s
        image = %s
        """ % (prefix, base_image))
    line = buildout.fails().error_line()
    assert "Part [app], option 'container' = '-%s'" % prefix in line, line
    buildout.configure("""
        [a]
        recipe = dockeroo:docker.run
        image = %s
        """ % base_image)
    line = buildout.fails().error_line()
    assert "Part [a], option 'name' = 'a'" in line and "defaults to the part name" in line, line
    # no container named "a" made by a part ("docker inspect a" would also match
    # any container whose id starts with "a")
    named = docker("ps", "--all", "--filter", "name=^/a$", "--filter", "label=io.dockeroo.part",
                   "--format", "{{.Names}}").split()
    assert named == [], named
    assert container_names(prefix) == []


def test_run_sigterm_during_the_script_leaves_no_container(buildout, prefix, base_image):
    """buildout stopped with SIGTERM (a CI job cancelled) while the script
    runs: the container is removed, instead of staying with the label of a
    complete container that the next run would take as up to date."""
    import os
    import signal
    import subprocess
    import sys
    import time
    buildout.configure(app_part(prefix, base_image, "script = echo started; sleep 60"))
    exe = os.path.join(os.path.dirname(sys.executable), "buildout")
    proc = subprocess.Popen([exe, "-N"], cwd=buildout.directory, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = []
    for line in proc.stdout:
        output.append(line)
        if "app: started" in line:
            break
    os.kill(proc.pid, signal.SIGTERM)
    output.append(proc.stdout.read())
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, "".join(output)
    assert "Traceback" not in "".join(output)
    deadline = time.monotonic() + 10
    while container_names(prefix) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert container_names(prefix) == [], "".join(output)
    # and the next run makes it completely
    buildout.configure(app_part(prefix, base_image, "script = echo again > /done"))
    buildout.ok()
    assert docker("exec", prefix + "-app", "cat", "/done") == "again\n"


def only_on_podman():
    if engine_kind() != "podman":
        pytest.skip("a Podman limit: Docker can do it (tested in test_run.py)")


@pytest.mark.parametrize("option,value", [("links", "%s-db:alias"), ("devices", "/dev/null%.0s")])
def test_podman_limits_are_an_error_before_anything_is_made(buildout, prefix, base_image,
                                                            option, value):
    only_on_podman()
    docker("create", "--name", prefix + "-db", base_image, "true")
    buildout.configure(app_part(prefix, base_image, "%s = %s" % (option, value % prefix)))
    line = buildout.fails().error_line()
    assert "Part [app], option '%s'" % option in line and "Podman 4.3" in line, line
    assert "nothing was created" in line
    assert container_names(prefix) == [prefix + "-db"]


def test_podman_healthcheck_that_never_runs_is_named(buildout, prefix, base_image, tmp_path):
    only_on_podman()
    image = prefix + "-health:latest"
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        "FROM %s\nHEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD true\n" % base_image)
    docker("build", "-q", "-t", image, str(tmp_path / "ctx"))
    buildout.configure(app_part(prefix, image, "wait = 3"))
    line = buildout.fails().error_line()
    assert "Part [app], option 'wait'" in line and "never ran" in line, line
    assert "systemd" in line
    assert container_names(prefix) == []
