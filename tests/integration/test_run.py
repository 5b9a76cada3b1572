"""docker.run against the real engine: what the containers hold.

Networks are free /24s of the test subnet pool (conftest.subnet_pool).
"""

import os
import subprocess
import tempfile
import time

import pytest

from support.engine import container_names, docker, engine_kind, free_subnet, inspect

LOOP = "/bin/sh -c 'echo started; exec sleep 3600'"


def make_network(name):
    """A network with a free /24 of the test subnet pool; returns its name."""
    docker("network", "create", "--subnet", str(free_subnet()), name)
    return name


def derived_image(prefix, base_image, suffix, *changes):
    """An image made from the base image with ``docker commit --change`` lines
    (built from them on Podman, which refuses the docker CLI's commit)."""
    ref = "%s-%s:latest" % (prefix, suffix)
    if engine_kind() == "podman":
        with tempfile.TemporaryDirectory() as context:
            with open(os.path.join(context, "Dockerfile"), "w") as handle:
                handle.write("FROM %s\n%s\n" % (base_image, "\n".join(changes)))
            docker("build", "-q", "-t", ref, context)
        return ref
    tmp = prefix + "-tmp-" + suffix
    docker("create", "--name", tmp, base_image, "true")
    args = []
    for change in changes:
        args += ["--change", change]
    docker("commit", *args, tmp, ref)
    docker("rm", tmp)
    return ref


def dexec(container, *args, user=None):
    extra = ["--user", user] if user else []
    return docker("exec", *extra, container, *args)


def write_layout(buildout):
    buildout.write("layout/usr/local/bin/greet", "#!/bin/sh\necho \"greet $1\"\n")
    os.chmod(buildout.path("layout/usr/local/bin/greet"), 0o755)
    buildout.write("layout/etc/app/conf.d/a.conf", "x=1\n")
    os.chmod(buildout.path("layout/etc/app/conf.d/a.conf"), 0o640)
    os.symlink("conf.d", buildout.path("layout/etc/app/current"))


@pytest.mark.podman_limit("links")
def test_run_two_containers_on_networks(buildout, prefix, base_image, tmp_path):
    front = make_network(prefix + "-front")
    back = make_network(prefix + "-back")
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    (host_dir / "hello.txt").write_text("from the host\n")
    write_layout(buildout)
    buildout.configure("""
        [data]
        recipe = dockeroo:docker.volume
        name = %(p)s-data

        [db]
        recipe = dockeroo:docker.run
        container = %(p)s-db
        image = %(img)s
        command = %(loop)s
        tty = true
        volumes =
            ${data:name}:/data
            %(host)s:/host:ro
        networks = %(front)s
        network-aliases =
            database
            dbalias
        layout = ${buildout:directory}/layout
        stop-timeout = 1
        script =
            set -e
            GREETING=hello
            echo "greeting=$${GREETING} home=$$HOME" > /data/greeting
            cat > /data/notes.txt <<'EOF'
            line one

              indented two
            EOF
            greet script >> /data/greeting
            echo "script says $$GREETING"

        [web]
        recipe = dockeroo:docker.run
        name = %(p)s-web
        image = %(img)s
        command = sleep 3600
        user = app
        links = ${db:container}:dblink
        volumes-from = ${db:container}
        networks =
            %(front)s
            %(back)s
        network-aliases = www
        stop-timeout = 0
        """ % {"p": prefix, "img": base_image, "loop": LOOP, "host": host_dir,
               "front": front, "back": back})
    result = buildout.ok()
    assert "db: script says hello" in result.output  # script output streamed to the log
    db, web = inspect("container", prefix + "-db"), inspect("container", prefix + "-web")
    assert db["State"]["Running"] and web["State"]["Running"]

    # db: tty, volumes, aliases, layout, script
    assert db["Config"]["Tty"] is True
    mounts = {m["Destination"]: m for m in db["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == prefix + "-data"
    assert mounts["/host"]["Type"] == "bind" and mounts["/host"]["RW"] is False
    assert {"database", "dbalias"} <= set(db["NetworkSettings"]["Networks"][front]["Aliases"])
    assert dexec(prefix + "-db", "cat", "/data/greeting") == \
        "greeting=hello home=/root\ngreet script\n"
    assert dexec(prefix + "-db", "cat", "/data/notes.txt") == "line one\n\n  indented two\n"
    assert dexec(prefix + "-db", "greet", "layout") == "greet layout\n"
    assert dexec(prefix + "-db", "stat", "-c", "%a %u:%g", "/etc/app/conf.d/a.conf",
                 "/usr/local/bin/greet").split("\n")[:2] == ["640 0:0", "755 0:0"]
    assert dexec(prefix + "-db", "readlink", "/etc/app/current") == "conf.d\n"
    assert dexec(prefix + "-db", "cat", "/host/hello.txt") == "from the host\n"

    # web: user, links, volumes-from, two networks with the alias on each
    assert web["Config"]["User"] == "app"
    assert dexec(prefix + "-web", "id", "-u") == "1000\n"
    assert web["HostConfig"]["VolumesFrom"] == [prefix + "-db"]
    assert dexec(prefix + "-web", "cat", "/host/hello.txt") == "from the host\n"
    assert dexec(prefix + "-web", "head", "-1", "/data/greeting").startswith("greeting=hello")
    assert set(web["NetworkSettings"]["Networks"]) == {front, back}
    for net in (front, back):
        assert "www" in web["NetworkSettings"]["Networks"][net]["Aliases"]
    assert any("dblink" in link for link in web["HostConfig"]["Links"] or
               web["NetworkSettings"]["Networks"][front].get("Links") or [])
    db_ip = db["NetworkSettings"]["Networks"][front]["IPAddress"]
    for host in ("dblink", "database", "dbalias", prefix + "-db"):
        out = dexec(prefix + "-web", "ping", "-c1", "-W2", host, user="root")
        assert db_ip in out, (host, out)
    out = dexec(prefix + "-db", "nslookup", "www", "127.0.0.11")
    assert web["NetworkSettings"]["Networks"][front]["IPAddress"] in out

    # re-run: nothing changes
    result = buildout.ok()
    assert "Updating db" in result.output and "Updating web" in result.output
    assert "Creating" not in result.output and "Running script" not in result.output
    assert inspect("container", prefix + "-db")["Id"] == db["Id"]
    assert inspect("container", prefix + "-web")["Id"] == web["Id"]

    buildout.uninstall_all()
    assert container_names(prefix) == []
    assert inspect("volume", prefix + "-data") is None


def test_run_restores_stopped_and_removed_containers(buildout, prefix, base_image):
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = sleep 3600
        stop-timeout = 0
        script = echo run >> /runs
        """ % (prefix, base_image))
    buildout.ok()
    first = inspect("container", prefix + "-app")

    docker("stop", "--time", "0", prefix + "-app")
    result = buildout.ok()
    assert "Starting container %s-app" % prefix in result.output
    again = inspect("container", prefix + "-app")
    assert again["Id"] == first["Id"] and again["State"]["Running"]
    # the script is part of the container's state: not run again on a restart
    assert dexec(prefix + "-app", "cat", "/runs") == "run\n"

    docker("rm", "-f", prefix + "-app")
    result = buildout.ok()
    assert "app: repairing container %s-app because" % prefix in result.output, result.output
    recreated = inspect("container", prefix + "-app")
    assert recreated["Id"] != first["Id"] and recreated["State"]["Running"]
    assert dexec(prefix + "-app", "cat", "/runs") == "run\n"


def test_run_changes_recreate_the_container(buildout, prefix, base_image):
    write_layout(buildout)
    image = derived_image(prefix, base_image, "img", "ENV BUILD=1")
    cfg = """
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = %%s
        layout = layout
        stop-timeout = 0
        script = cat /etc/app/conf.d/a.conf >> /seen
        """ % (prefix, image)
    buildout.configure(cfg % "sleep 3600")
    buildout.ok()
    first = inspect("container", prefix + "-app")

    # layout content change (same names, one byte) reaches the container
    with open(buildout.path("layout/etc/app/conf.d/a.conf"), "w") as handle:
        handle.write("x=2\n")
    result = buildout.ok()
    assert "app: recreating container %s-app because" % prefix in result.output, result.output
    second = inspect("container", prefix + "-app")
    assert second["Id"] != first["Id"]
    assert dexec(prefix + "-app", "cat", "/etc/app/conf.d/a.conf") == "x=2\n"
    assert dexec(prefix + "-app", "cat", "/seen") == "x=2\n"  # script ran again
    assert inspect("container", first["Id"]) is None  # the old one is gone

    # a touch changes nothing
    os.utime(buildout.path("layout/etc/app/conf.d/a.conf"))
    buildout.ok()
    assert inspect("container", prefix + "-app")["Id"] == second["Id"]

    # the image is rebuilt under the same name: the options did not change
    old_image = inspect("image", image)["Id"]
    derived_image(prefix, base_image, "img", "ENV BUILD=2")
    result = buildout.ok()
    assert "Updating app" in result.output and \
        "app: recreating container %s-app because" % prefix in result.output, result.output
    third = inspect("container", prefix + "-app")
    assert third["Id"] != second["Id"]
    assert "BUILD=2" in third["Config"]["Env"]
    assert third["Image"] == inspect("image", image)["Id"]
    docker("image", "rm", old_image)  # unused now: the old container is gone

    # an option change
    buildout.configure(cfg % "sleep 3601")
    buildout.ok()
    fourth = inspect("container", prefix + "-app")
    assert fourth["Id"] != third["Id"] and fourth["Config"]["Cmd"] == ["sleep", "3601"]
    assert container_names(prefix) == [prefix + "-app"]


def test_run_renamed_container_replaces_the_old_one(buildout, prefix, base_image):
    cfg = """
        [app]
        recipe = dockeroo:docker.run
        name = %s-%%s
        image = %s
        command = sleep 3600
        stop-timeout = 0
        """ % (prefix, base_image)
    buildout.configure(cfg % "one")
    buildout.ok()
    buildout.configure(cfg % "two")
    buildout.ok()
    assert container_names(prefix) == [prefix + "-two"]


def test_run_rename_with_a_failed_install_still_removes_the_old_container(buildout, prefix,
                                                                           base_image):
    """Buildout forgets the old configuration of a part whose install fails:
    the next successful install still removes the container of the old name."""
    cfg = """
        [app]
        recipe = dockeroo:docker.run
        name = %s-%%s
        image = %s
        command = sleep 3600
        stop-timeout = 0
        %%s
        """ % (prefix, base_image)
    buildout.configure(cfg % ("one", ""))
    buildout.ok()
    buildout.configure(cfg % ("two", "script = exit 3"))
    buildout.fails()
    assert container_names(prefix) == [prefix + "-one"], "the old one stays while the new fails"
    buildout.configure(cfg % ("three", "script = exit 4"))
    buildout.fails()
    buildout.configure(cfg % ("two", ""))
    buildout.ok()
    assert container_names(prefix) == [prefix + "-two"]
    assert not os.path.exists(buildout.path("parts", ".dockeroo", "pending", "app.json"))


def test_run_failed_recreation_puts_the_old_container_back(buildout, prefix, base_image):
    cfg = """
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = sleep 3600
        stop-timeout = 0
        script = %%s
        """ % (prefix, base_image)
    buildout.configure(cfg % "echo ok > /state")
    buildout.ok()
    first = inspect("container", prefix + "-app")
    buildout.configure(cfg % "echo broken; exit 3")
    result = buildout.fails()
    line = result.error_line()
    assert "Part [app]" in line and "'script'" in line and "exit 3" in line, result.output
    assert "broken" in result.output
    assert "previous container %s-app was put back" % prefix in result.output
    back = inspect("container", prefix + "-app")
    assert back["Id"] == first["Id"] and back["State"]["Running"]
    assert container_names(prefix) == [prefix + "-app"]
    assert dexec(prefix + "-app", "cat", "/state") == "ok\n"
    # fixing the script recreates it
    buildout.configure(cfg % "echo fixed > /state")
    buildout.ok()
    assert dexec(prefix + "-app", "cat", "/state") == "fixed\n"


def test_run_uninstall_removes_anonymous_volumes_and_honours_keep(buildout, prefix, base_image):
    image = derived_image(prefix, base_image, "vol", "VOLUME /anon")
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = sleep 3600
        stop-timeout = 0

        [kept]
        recipe = dockeroo:docker.run
        name = %s-kept
        image = %s
        command = sleep 3600
        stop-timeout = 0
        keep = true
        """ % (prefix, image, prefix, image))
    buildout.ok()
    app = inspect("container", prefix + "-app")
    anon = [m["Name"] for m in app["Mounts"] if m["Destination"] == "/anon"][0]
    assert inspect("volume", anon) is not None
    buildout.uninstall_all()
    assert inspect("container", prefix + "-app") is None
    assert inspect("volume", anon) is None
    kept = inspect("container", prefix + "-kept")
    assert kept is not None and kept["State"]["Running"]
    docker("rm", "-f", "-v", prefix + "-kept")


def test_run_stop_timeout_on_uninstall(buildout, prefix, base_image):
    # the command traps TERM: uninstall stops it gracefully before removing
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        volumes = %s-logs:/logs
        command = /bin/sh -c 'trap "echo term > /logs/bye; exit 0" TERM; while :; do sleep 0.2; done'
        stop-timeout = 5
        """ % (prefix, base_image, prefix))
    buildout.ok()
    assert inspect("container", prefix + "-app")["Config"]["StopTimeout"] == 5
    buildout.uninstall_all()
    assert inspect("container", prefix + "-app") is None
    out = docker("run", "--rm", "-v", prefix + "-logs:/logs", base_image, "cat", "/logs/bye")
    assert out == "term\n"


def test_run_more_options(buildout, prefix, base_image):
    buildout.write("app.env", "FROM_FILE=yes\n")
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        entrypoint = /bin/sh -c
        command = 'echo "$$0 $$GREETING $$FROM_FILE"; exec sleep 3600' argzero
        env =
            GREETING=hello world
            EQ=a=b
        env-file = app.env
        ports =
            127.0.0.1::8080
            9090/udp
        restart = unless-stopped
        labels =
            tier=front
        workdir = /tmp
        hostname = apphost
        cap-drop = NET_RAW
        cap-add = SYS_TIME
        stop-timeout = 0
        wait = 10
        """ % (prefix, base_image))
    buildout.ok()
    obj = inspect("container", prefix + "-app")
    config, host = obj["Config"], obj["HostConfig"]
    assert config["Entrypoint"] == ["/bin/sh"]
    assert config["Cmd"] == ["-c", "echo \"$0 $GREETING $FROM_FILE\"; exec sleep 3600", "argzero"]
    for _ in range(50):  # the first output may take a moment
        logs = docker("logs", prefix + "-app")
        if logs:
            break
        time.sleep(0.1)
    assert logs == "argzero hello world yes\n"
    assert {"GREETING=hello world", "EQ=a=b", "FROM_FILE=yes"} <= set(config["Env"])
    assert host["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    assert "9090/udp" in config["ExposedPorts"]
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert config["Labels"]["tier"] == "front"
    assert config["Labels"]["io.dockeroo.part"] == "app"
    assert config["WorkingDir"] == "/tmp" and config["Hostname"] == "apphost"
    if engine_kind() == "podman":  # Podman lists its own defaults too, without CAP_
        assert "NET_RAW" in host["CapDrop"] and "SYS_TIME" in host["CapAdd"]
    else:
        assert host["CapDrop"] == ["CAP_NET_RAW"] and host["CapAdd"] == ["CAP_SYS_TIME"]
    # the env file's content defines the container
    buildout.write("app.env", "FROM_FILE=changed\n")
    buildout.ok()
    assert "FROM_FILE=changed" in inspect("container", prefix + "-app")["Config"]["Env"]


def test_run_start_false_and_outputs(buildout, prefix, base_image):
    net = make_network(prefix + "-net")
    buildout.configure("""
        [server]
        recipe = dockeroo:docker.run
        name = %(p)s-server
        image = %(img)s
        command = sleep 3600
        networks = %(net)s
        stop-timeout = 0

        [client]
        recipe = dockeroo:docker.run
        name = %(p)s-client
        image = %(img)s
        command = sleep 3600
        start = false
        env =
            SERVER=${server:container}
            SERVER_IP=${server:ip-address}
            SERVER_ID=${server:container-id}
        """ % {"p": prefix, "img": base_image, "net": net})
    result = buildout.ok()
    server = inspect("container", prefix + "-server")
    client = inspect("container", prefix + "-client")
    assert client["State"]["Status"] == "created"
    ip = server["NetworkSettings"]["Networks"][net]["IPAddress"]
    # unknown when buildout started: empty, and the log says to run again
    assert "SERVER_IP=" in client["Config"]["Env"]
    assert "run buildout again" in result.output
    result = buildout.ok()
    assert inspect("container", prefix + "-server")["Id"] == server["Id"]
    client = inspect("container", prefix + "-client")
    env = client["Config"]["Env"]
    assert "SERVER=%s-server" % prefix in env
    assert "SERVER_IP=%s" % ip in env and "SERVER_ID=%s" % server["Id"] in env
    assert client["State"]["Status"] == "created"  # start = false
    # stable from now on
    result = buildout.ok()
    assert "run buildout again" not in result.output
    assert inspect("container", prefix + "-client")["Id"] == client["Id"]
    assert inspect("container", prefix + "-server")["Id"] == server["Id"]


@pytest.mark.podman_limit("healthcheck")
def test_run_wait_for_healthcheck(buildout, prefix, base_image, tmp_path):
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM %s\nHEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD cat /tmp/ready\n"
        % base_image)
    image = prefix + "-health:latest"
    subprocess.run(["docker", "build", "-q", "-t", image, str(context)], check=True,
                   capture_output=True, env=dict(os.environ, DOCKER_BUILDKIT="0"))
    buildout.configure("""
        [app]
        recipe = dockeroo:docker.run
        name = %s-app
        image = %s
        command = /bin/sh -c 'sleep 2; echo yes > /tmp/ready; exec sleep 3600'
        stop-timeout = 0
        wait = 30
        script = cat /tmp/ready
        """ % (prefix, image))
    result = buildout.ok()
    assert "app: yes" in result.output  # the script ran once the container was healthy
    assert inspect("container", prefix + "-app")["State"]["Health"]["Status"] == "healthy"

    buildout.configure("""
        [never]
        recipe = dockeroo:docker.run
        name = %s-never
        image = %s
        command = sleep 3600
        stop-timeout = 0
        wait = 3
        """ % (prefix, image))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [never]" in line and "'wait'" in line, result.output
    assert "can't open '/tmp/ready'" in result.output
    assert inspect("container", prefix + "-never") is None


def test_run_noop_rerun_of_ten_parts_is_batched(buildout, prefix, base_image, tmp_path):
    sections = []
    for i in range(10):
        sections.append("""
            [app%d]
            recipe = dockeroo:docker.run
            name = %s-app%d
            image = %s
            command = sleep 3600
            stop-timeout = 0
            """ % (i, prefix, i, base_image))
    buildout.configure("\n".join(sections))
    buildout.ok()
    wrapper_dir = tmp_path / "wrap"
    wrapper_dir.mkdir()
    log = tmp_path / "calls.log"
    real = subprocess.run(["sh", "-c", "command -v docker"], capture_output=True,
                          text=True).stdout.strip()
    (wrapper_dir / "docker").write_text('#!/bin/sh\necho "$*" >> %s\nexec %s "$@"\n' % (log, real))
    os.chmod(wrapper_dir / "docker", 0o755)
    env = {"PATH": "%s:%s" % (wrapper_dir, os.environ["PATH"])}
    times = []
    for _ in range(3):
        if log.exists():
            log.unlink()
        start = time.monotonic()
        result = buildout.ok(env=env)
        times.append(time.monotonic() - start)
    calls = log.read_text().splitlines()
    print("no-op re-run of 10 docker.run parts: %.2fs (best of 3), %d docker processes: %s"
          % (min(times), len(calls), calls))
    assert result.output.count("Updating app") == 10
    assert len(calls) <= 3, calls
    # one container inspect for the ten (the image is fetched at the same time)
    assert [c.split()[:2] for c in calls].count(["container", "inspect"]) == 1, calls
