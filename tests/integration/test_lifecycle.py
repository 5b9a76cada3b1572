"""The lifecycle core against real buildout processes killed at the worst moment.

Each test reproduces a defect of the issue "reliability" sections 2-4: a
buildout is started with ``subprocess.Popen``, its part's script touches a
file in a bind-mounted host folder and then blocks, and the test kills the
buildout (SIGKILL, SIGTERM, SIGINT) or runs a second one beside it.  What
Docker holds afterwards is checked with the docker CLI.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

from support.buildout import BUILDOUT
from support.engine import container_names, containers_left, docker, inspect, leftovers

from dockeroo.model.ownership import owner_id

#: the script of the app part: counts its runs, then blocks while /host/block exists
SCRIPT = """script =
            echo %(tag)s >> /host/runs
            while [ -e /host/block ]; do sleep 0.1; done"""


def app(prefix, host, name="app", tag="run", extra=""):
    return """
        [app]
        recipe = dockeroo:docker.run
        name = %s-%s
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0
        volumes = %s:/host
        %s
        %s
        """ % (prefix, name, host, SCRIPT % {"tag": tag}, extra)


class Started:
    """A buildout running in the background until its script blocks."""

    def __init__(self, buildout, host, env=None):
        self.host = host
        open(os.path.join(host, "block"), "w").close()
        self.before = self.runs()
        environ = dict(os.environ, **(env or {}))
        self.proc = subprocess.Popen([BUILDOUT, "-N"], cwd=buildout.directory, env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def runs(self):
        path = os.path.join(self.host, "runs")
        return open(path).read().split() if os.path.exists(path) else []

    def wait_for_script(self, timeout=120):
        deadline = time.monotonic() + timeout
        while len(self.runs()) == len(self.before):
            assert self.proc.poll() is None, self.proc.stdout.read()
            assert time.monotonic() < deadline, "the script did not start"
            time.sleep(0.1)

    def kill(self, signum):
        self.proc.send_signal(signum)
        output = self.proc.communicate(timeout=120)[0]
        os.remove(os.path.join(self.host, "block"))
        return self.proc.returncode, output


def configure(buildout, base_image, text):
    """buildout.cfg with TEXT's parts; ${buildout:base} is the base image."""
    buildout.configure(text)
    with open(buildout.path("buildout.cfg")) as handle:
        content = handle.read()
    if "${buildout:base}" in content:
        content = content.replace("[buildout]\n", "[buildout]\nbase = %s\n" % base_image, 1)
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write(content)


def host_folder(tmp_path):
    path = tmp_path / "host"
    path.mkdir()
    os.chmod(path, 0o777)
    return str(path)


# -- 2. half-made containers ------------------------------------------------------------
def test_killed_recreation_is_redone_on_the_next_run(buildout, prefix, base_image, tmp_path):
    """SIGKILL buildout while the new container's script runs, then kill that
    container (a reboot, the OOM killer): the next run must not take it for
    complete; it makes it again and runs the script, and nothing else is
    left (the old container set aside is gone)."""
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host, tag="first"))
    buildout.ok()
    configure(buildout, base_image, app(prefix, host, tag="second"))
    started = Started(buildout, host)
    started.wait_for_script()
    code, output = started.kill(signal.SIGKILL)
    assert code == -signal.SIGKILL
    for name in container_names(prefix):
        docker("kill", name, check=False)

    result = buildout.ok()
    assert "(it was exited)" not in result.output, result.output
    assert started.runs() == ["first", "second", "second"], result.output
    assert container_names(prefix) == [prefix + "-app"], result.output
    assert inspect("container", prefix + "-app")["State"]["Running"]
    assert "io.dockeroo.temporary" not in inspect("container", prefix + "-app")["Config"]["Labels"]
    # an unchanged re-run does nothing
    result = buildout.ok()
    assert started.runs() == ["first", "second", "second"]


def test_recreated_container_carries_no_temporary_label(buildout, prefix, base_image,
                                                        tmp_path):
    """A container made under a temporary name and renamed to its final name
    carries no io.dockeroo.temporary (whoever cleans leftovers by that label
    must not remove it) nor the run's id; the log says how long the stop of
    the previous one may take, and with which option."""
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host, tag="first"))
    buildout.ok()
    configure(buildout, base_image, app(prefix, host, tag="second"))
    result = buildout.ok()
    assert "Waiting up to 0 s for %s-app to stop (stop-timeout)" % prefix in result.output, \
        result.output
    labels = inspect("container", prefix + "-app")["Config"]["Labels"]
    assert "io.dockeroo.temporary" not in labels and "io.dockeroo.run" not in labels, labels
    assert container_names(prefix) == [prefix + "-app"], "no temporary is left"


def test_killed_first_install_leaves_nothing_that_looks_complete(buildout, prefix, base_image,
                                                                 tmp_path):
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host))
    started = Started(buildout, host)
    started.wait_for_script()
    started.kill(signal.SIGKILL)
    assert inspect("container", prefix + "-app") is None, "named before it was complete"
    buildout.ok()
    assert started.runs() == ["run", "run"]
    assert container_names(prefix) == [prefix + "-app"]


# -- 3. state that lives only in memory ----------------------------------------------------
def test_renamed_container_killed_during_the_new_script(buildout, prefix, base_image, tmp_path):
    """name = x-old -> x-new, SIGKILL during the new script: the old
    container must not survive the next run, nor an uninstall of every part."""
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host, name="old"))
    buildout.ok()
    configure(buildout, base_image, app(prefix, host, name="new"))
    started = Started(buildout, host)
    started.wait_for_script()
    started.kill(signal.SIGKILL)
    buildout.uninstall_all()
    assert container_names(prefix) == []

    # and a re-run after the kill keeps the new one only
    configure(buildout, base_image, app(prefix, host, name="old"))
    buildout.ok()
    configure(buildout, base_image, app(prefix, host, name="new"))
    started = Started(buildout, host)
    started.wait_for_script()
    started.kill(signal.SIGKILL)
    buildout.ok()
    assert container_names(prefix) == [prefix + "-new"]


def test_renamed_container_when_an_earlier_part_fails(buildout, prefix, base_image, tmp_path):
    host = host_folder(tmp_path)
    first = """
        [first]
        recipe = dockeroo:docker.run
        name = %s-first
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0
        %s
        """
    configure(buildout, base_image, first % (prefix, "") + app(prefix, host, name="old"))
    buildout.ok()
    configure(buildout, base_image, first % (prefix, "script = exit 3")
              + app(prefix, host, name="new"))
    buildout.fails()
    configure(buildout, base_image, first % (prefix, "") + app(prefix, host, name="new"))
    buildout.ok()
    assert container_names(prefix) == [prefix + "-first", prefix + "-new"]
    buildout.uninstall_all()
    assert container_names(prefix) == []


def build_and_run(prefix, tag, host):
    return """
        [img]
        recipe = dockeroo:docker.build
        name = %s-img:%s
        source = ctx

        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = ${img:image}
        command = sleep 3600
        stop-timeout = 0
        volumes = %s:/host
        """ % (prefix, tag, prefix, host)


def our_images(buildout):
    """Every image (intermediate ones too) carrying this buildout's labels."""
    owner = owner_id(buildout.directory)
    return docker("image", "ls", "--all", "--quiet", "--no-trunc", "--filter",
                  "label=io.dockeroo.buildout=" + owner).split()


def test_build_tag_renamed_while_a_container_uses_the_image(buildout, prefix, base_image,
                                                            tmp_path):
    """The old tag cannot be removed while the run part's container uses it:
    that must not fail the install; it is removed once the container is
    recreated, in the same run."""
    host = host_folder(tmp_path)
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo one > /v\n" % base_image)
    buildout.configure(build_and_run(prefix, "v1", host))
    buildout.ok()
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo two > /v\n" % base_image)
    buildout.configure(build_and_run(prefix, "v2", host))
    result = buildout.ok()
    assert inspect("image", prefix + "-img:v1") is None, result.output
    assert docker("exec", prefix + "-app", "cat", "/v") == "two\n"
    assert not os.path.exists(buildout.path("parts", ".dockeroo", "pending", "img.json"))
    installed = buildout.installed()
    result = buildout.ok("-vv")
    assert "Installing" not in result.output, (installed, result.output)


@pytest.mark.podman_limit(
    "build layers", "Podman's builder lists every intermediate image of a rebuilt layer chain "
    "as an image carrying the build's labels, so the labelled-image count this test compares "
    "differs there (the replaced image itself is removed)")
def test_dockerfile_change_leaks_no_image(buildout, prefix, base_image, tmp_path):
    host = host_folder(tmp_path)
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo one > /v\n" % base_image)
    buildout.configure(build_and_run(prefix, "v1", host))
    buildout.ok()
    first = our_images(buildout)
    first_id = inspect("image", prefix + "-img:v1")["Id"]
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo two > /v\n" % base_image)
    result = buildout.ok()
    assert inspect("image", first_id) is None, result.output
    assert len(our_images(buildout)) == len(first), result.output
    assert docker("exec", prefix + "-app", "cat", "/v") == "two\n"
    buildout.uninstall_all()
    assert our_images(buildout) == []
    assert container_names(prefix) == []


def test_image_used_by_another_container_is_removed_once_unused(buildout, prefix, base_image,
                                                                tmp_path):
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo one > /v\n" % base_image)
    buildout.configure("""
        [img]
        recipe = dockeroo:docker.build
        name = %s-img:v1
        source = ctx
        """ % prefix)
    buildout.ok()
    first_id = inspect("image", prefix + "-img:v1")["Id"]
    docker("create", "--name", prefix + "-user", prefix + "-img:v1", "true")
    buildout.write("ctx/Dockerfile", "FROM %s\nRUN echo two > /v\n" % base_image)
    result = buildout.ok()
    assert "Keeping the previous image" in result.output and prefix + "-user" in result.output
    assert inspect("image", first_id) is not None
    docker("rm", prefix + "-user")
    result = buildout.ok()  # nothing changed: the pending removal is retried
    assert inspect("image", first_id) is None, result.output
    buildout.uninstall_all()
    assert our_images(buildout) == []


def test_replaced_objects_are_removed_on_the_engine_of_the_old_options(buildout, prefix,
                                                                       base_image, tls):
    part = """
        [app]
        recipe = dockeroo:docker.run
        name = %s-%s
        image = ${buildout:base}
        command = sleep 3600
        stop-timeout = 0
        %s
        """
    configure(buildout, base_image, part % (prefix, "old", "engine-url = %s\n        "
                                            "engine-tls-cert-path = %s" % (tls.url, tls.client)))
    buildout.ok()
    configure(buildout, base_image, part % (prefix, "new", ""))
    before = tls.accepted()
    result = buildout.ok()
    assert container_names(prefix) == [prefix + "-new"], result.output
    assert tls.accepted() > before, "the old container was not looked up on its own engine"


# -- 4. hard kills and two runs at once --------------------------------------------------------
def test_second_run_waits_for_the_lock_then_fails_clearly(buildout, prefix, base_image, tmp_path):
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host))
    started = Started(buildout, host)
    started.wait_for_script()
    second = buildout.run(env={"DOCKEROO_LOCK_TIMEOUT": "1"})
    assert not second.ok
    line = second.error_line()
    assert "another buildout run (pid %d)" % started.proc.pid in line, second.output
    assert buildout.directory in line and "DOCKEROO_LOCK_TIMEOUT" in line
    assert "Traceback" not in second.output
    # the first run's temporaries are untouched by the second
    assert len(container_names(prefix)) == 1
    # a second run with time to wait runs once the first is done
    waiting = subprocess.Popen([BUILDOUT, "-N"], cwd=buildout.directory, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # the first run goes on once the second says it waits (however long a
    # loaded machine takes to start it; at most 120 s)
    block = os.path.join(host, "block")
    unblock = threading.Timer(120, lambda: os.path.exists(block) and os.remove(block))
    unblock.start()
    said = []
    for line in waiting.stdout:
        said.append(line)
        if "Waiting for the other buildout run" in line:
            break
    unblock.cancel()
    if os.path.exists(block):
        os.remove(block)
    assert started.proc.wait(timeout=120) == 0, started.proc.stdout.read()
    output = "".join(said) + waiting.communicate(timeout=120)[0]
    assert waiting.returncode == 0, output
    assert "Waiting for the other buildout run" in output
    assert started.runs() == ["run"]
    assert container_names(prefix) == [prefix + "-app"]


def test_uninstall_only_run_takes_the_lock(buildout, prefix, base_image, tmp_path):
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host))
    buildout.ok()
    configure(buildout, base_image, app(prefix, host, tag="again"))
    started = Started(buildout, host)
    started.wait_for_script()
    with open(buildout.path("buildout.cfg"), "w") as handle:
        handle.write("[buildout]\nparts =\n")
    second = buildout.run(env={"DOCKEROO_LOCK_TIMEOUT": "1"})
    assert not second.ok and "another buildout run" in second.error_line(), second.output
    started.kill(signal.SIGKILL)
    buildout.ok()
    assert container_names(prefix) == []


def test_temporaries_of_a_killed_recreation_are_removed_when_the_part_is_gone(
        buildout, prefix, base_image, tmp_path):
    """A recreation killed while the old container is set aside and the new
    one under its temporary name: both are dealt with by the next run even
    when the part is gone from the buildout."""
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host, extra="restart = always"))
    buildout.ok()
    configure(buildout, base_image, app(prefix, host, tag="again", extra="restart = always"))
    started = Started(buildout, host)
    started.wait_for_script()
    started.kill(signal.SIGKILL)
    assert len(container_names(prefix)) == 2  # the set-aside one and the new one
    buildout.uninstall_all()
    assert container_names(prefix) == []


def test_killed_bootstrap_rebuild_leaves_no_temporary(buildout, prefix, base_image, www,
                                                       tmp_path):
    """docker.gentoo-bootstrap rebuilds in a temporary container: killed
    during its script, that container (and the previous one, set aside or
    not) must be dealt with by the next run."""
    host = host_folder(tmp_path)
    part = """
        [boot]
        recipe = dockeroo:docker.gentoo-bootstrap
        image = %s-boot:1
        container = %s-boot
        archives = %s
        privileged = false
        volumes = %s:/host
        %s
        """
    configure(buildout, base_image, part % (prefix, prefix, www.url("rootfs.tar.gz"), host,
                                            SCRIPT % {"tag": "first"}))
    buildout.ok()
    configure(buildout, base_image, part % (prefix, prefix, www.url("rootfs.tar.gz"), host,
                                            SCRIPT % {"tag": "second"}))
    started = Started(buildout, host)
    started.wait_for_script()
    started.kill(signal.SIGKILL)
    result = buildout.ok()
    assert started.runs() == ["first", "second", "second"], result.output
    assert containers_left(prefix, buildout) == [prefix + "-boot"], result.output
    assert docker("exec", prefix + "-boot", "cat", "/host/runs").split()[-1] == "second"
    assert "io.dockeroo.temporary" not in inspect("container", prefix + "-boot")["Config"]["Labels"]
    buildout.uninstall_all()
    assert leftovers(prefix, buildout) == []


# -- signals -----------------------------------------------------------------------------------
def test_sigint_rolls_back_and_says_so_in_one_line(buildout, prefix, base_image, tmp_path):
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host))
    started = Started(buildout, host)
    started.wait_for_script()
    code, output = started.kill(signal.SIGINT)
    assert code == 128 + signal.SIGINT, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    lines = [l for l in output.splitlines() if "interrupted" in l.lower()]
    assert lines == ["app: interrupted (SIGINT): removed the new container %s-app" % prefix], output
    assert container_names(prefix) == []


def test_sigterm_during_a_recreation_puts_the_old_container_back(buildout, prefix, base_image,
                                                                 tmp_path):
    host = host_folder(tmp_path)
    configure(buildout, base_image, app(prefix, host, tag="first"))
    buildout.ok()
    before = inspect("container", prefix + "-app")["Id"]
    configure(buildout, base_image, app(prefix, host, tag="second"))
    started = Started(buildout, host)
    started.wait_for_script()
    code, output = started.kill(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output
    assert "Traceback" not in output, output
    lines = [l for l in output.splitlines() if "interrupted" in l.lower()]
    assert lines == ["app: interrupted (SIGTERM): removed the new container %s-app, put back "
                     "the previous container %s-app" % (prefix, prefix)], output
    back = inspect("container", prefix + "-app")
    assert back["Id"] == before and back["State"]["Running"]
    assert container_names(prefix) == [prefix + "-app"]
