"""docker.service, docker.secret, docker.config and overlay networks on a private swarm."""

import os
import textwrap

import pytest

pytestmark = pytest.mark.swarm


def acted(result):
    """The lines of a run's output that say a service is created, updated or repaired."""
    return [line for line in result.output.splitlines()
            if any(w in line for w in ("creating service", "updating service", "repairing service"))]


def stack(prefix, image, octet, replicas=2, secret_file="db.secret", extra=""):
    return """
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        driver = overlay
        attachable = true
        subnet = 172.30.%(n)d.0/24

        [db-password]
        recipe = dockeroo:docker.secret
        name = %(p)s-db
        file = %(secret)s

        [app-conf]
        recipe = dockeroo:docker.config
        name = %(p)s-conf
        content =
            greeting = hello
            colour = blue

        [app]
        recipe = dockeroo:docker.service
        name = %(p)s-app
        image = %(image)s
        command = sh -c 'while true; do sleep 1; done'
        replicas = %(replicas)d
        endpoint-mode = dnsrr
        env =
            MODE=test
        labels =
            tier=web
        networks =
            ${net:network} app-alias
        secrets =
            db-password
        configs =
            app-conf,target=/etc/app.conf,mode=0440
        update-parallelism = 1
        update-monitor = 2s
        stop-grace-period = 1s
        %(extra)s
        """ % {"p": prefix, "image": image, "replicas": replicas, "secret": secret_file,
               "n": octet, "extra": extra}


def test_stack_create_rerun_secret_change_scale_uninstall(sbuildout, sprefix, sreserve,
                                                          swarm_engine, swarm_image,
                                                          docker_recorder):
    sw = swarm_engine
    sbuildout.write("db.secret", "s3cret-one\n")
    sbuildout.configure(stack(sprefix, swarm_image, sreserve.octets(1)[0]))
    result = sbuildout.ok(env=docker_recorder.env)
    creates = [c for c in docker_recorder.commands("secret") if c[1] == "create"]
    assert len(creates) == 1 and creates[0][-1] == "-", creates  # the content went on stdin
    assert "s3cret-one" not in result.output
    assert "s3cret-one" not in sbuildout.installed()

    service = sw.inspect("service", sprefix + "-app")
    assert service["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert service["Spec"]["Labels"]["tier"] == "web"
    assert service["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    tasks = sw.wait_running(sprefix + "-app", 2)
    containers = sw.task_containers(sprefix + "-app")
    # secret and config content inside a task; the secret's target is the part's name
    assert sw.exec(containers[0], "cat", "/run/secrets/%s-db" % sprefix) == "s3cret-one\n"
    assert sw.exec(containers[0], "cat", "/etc/app.conf") == "greeting = hello\ncolour = blue\n"
    assert sw.exec(containers[0], "sh", "-c", "echo $MODE") == "test\n"
    net = sw.inspect("network", sprefix + "-net")
    assert net["Driver"] == "overlay" and net["Attachable"] is True and net["Scope"] == "swarm"
    assert sw.exec(containers[0], "nslookup", "app-alias") is not None
    secrets = sw.names("secret", sprefix)
    assert len(secrets) == 1 and secrets[0].startswith(sprefix + "-db-")
    # the versioned name reveals nothing of the content
    import hashlib
    assert hashlib.sha256(b"s3cret-one\n").hexdigest()[:12] not in secrets[0]

    # a re-run with nothing changed makes no update and no new task
    version = service["Version"]["Index"]
    task_ids = sorted(t["ID"] for t in tasks)
    result = sbuildout.ok()
    assert not acted(result), result.output
    again = sw.inspect("service", sprefix + "-app")
    assert again["Version"]["Index"] == version
    assert sorted(t["ID"] for t in sw.tasks(sprefix + "-app")) == task_ids

    # scaled by hand: repaired
    sw.docker("service", "scale", "--detach", sprefix + "-app=1")
    sbuildout.ok()
    assert sw.inspect("service", sprefix + "-app")["Spec"]["Mode"]["Replicated"]["Replicas"] == 2
    sw.wait_running(sprefix + "-app", 2)

    # a changed secret: new version, service switched in the same run, old one removed
    sbuildout.write("db.secret", "s3cret-two\n")
    result = sbuildout.ok(env=docker_recorder.env)
    argv = [" ".join(c["argv"]) for c in docker_recorder.calls()]
    assert not any("s3cret" in a for a in argv), "a secret value reached a command line"
    assert "s3cret-two" not in result.output and "s3cret-two" not in sbuildout.installed()
    # the replaced configuration of the secret part leaves nothing to retry
    assert "Could not remove" not in result.output, result.output
    new_secrets = sw.names("secret", sprefix)
    assert len(new_secrets) == 1 and new_secrets != secrets, new_secrets
    refs = sw.inspect("service", sprefix + "-app")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    assert [r["SecretName"] for r in refs] == new_secrets
    sw.wait_running(sprefix + "-app", 2)
    for container in sw.task_containers(sprefix + "-app"):
        assert sw.exec(container, "cat", "/run/secrets/%s-db" % sprefix) == "s3cret-two\n"

    # uninstall leaves no service, secret, config or network of the test
    result = sbuildout.uninstall_all()
    assert result.ok, result.output
    for kind in ("service", "secret", "config", "network"):
        assert sw.names(kind, sprefix) == [], kind
    assert sw.task_containers(sprefix + "-app") == []


def build_and_service(prefix, base, extra=""):
    return """
        [image]
        recipe = dockeroo:docker.build
        name = %(p)s-img:v1
        source = ${buildout:directory}/context

        [web]
        recipe = dockeroo:docker.service
        name = %(p)s-web
        image = ${image:image}
        replicas = 2
        endpoint-mode = dnsrr
        update-parallelism = 1
        update-monitor = 3s
        stop-grace-period = 1s
        wait = 120
        %(extra)s
        """ % {"p": prefix, "extra": extra}


def write_context(bo, base, version, cmd="while true; do sleep 1; done"):
    bo.write("context/Dockerfile", "FROM %s\nRUN echo %s > /version\nCMD [\"sh\", \"-c\", \"%s\"]\n"
             % (base, version, cmd))


def versions(sw, service):
    return sorted(sw.exec(c, "cat", "/version").strip() for c in sw.task_containers(service))


def test_rebuilt_image_rolls_out_and_a_failing_one_rolls_back(sbuildout, sprefix, swarm_engine,
                                                              swarm_image):
    sw = swarm_engine
    web = sprefix + "-web"
    write_context(sbuildout, swarm_image, "one")
    sbuildout.configure(build_and_service(sprefix, swarm_image))
    sbuildout.ok()
    assert versions(sw, web) == ["one", "one"]
    first = sw.inspect("service", web)
    service_id = first["ID"]

    # image rebuilt under the same tag: a rolling update in place, converged when buildout ends
    write_context(sbuildout, swarm_image, "two")
    result = sbuildout.ok()
    # the run logs the reason of the run's plan ("... will be rebuilt (...)")
    assert "updating service %s because image %s-img:v1 " % (web, sprefix) in result.output, \
        result.output
    assert "has converged" in result.output
    service = sw.inspect("service", web)
    assert service["ID"] == service_id, "updated in place, not re-created"
    assert (service.get("UpdateStatus") or {}).get("State") == "completed"
    running = sw.tasks(web)
    assert len(running) == 2 and all(t["Status"]["State"] == "running" for t in running)
    assert versions(sw, web) == ["two", "two"]

    # a new image whose tasks fail: the update rolls back and the part fails saying so
    write_context(sbuildout, swarm_image, "three", cmd="echo broken; exit 3")
    result = sbuildout.fails()
    error = result.error_line()
    assert "Part [web]" in error and "rolled back" in error, result.output
    assert "task errors:" in error and "non-zero exit (3)" in error, error
    assert "Traceback" not in result.output
    service = sw.inspect("service", web)
    assert service["ID"] == service_id
    assert service["UpdateStatus"]["State"] == "rollback_completed"
    sw.wait_running(web, 2)
    assert versions(sw, web) == ["two", "two"]

    # fixed again: the next run rolls the fixed image out
    write_context(sbuildout, swarm_image, "four")
    sbuildout.ok()
    assert versions(sw, web) == ["four", "four"]


def test_changed_options_update_in_place_and_hand_updates_are_repaired(
        sbuildout, sprefix, swarm_engine, swarm_image):
    sw = swarm_engine
    app = sprefix + "-app"
    base = textwrap.dedent("""
        [app]
        recipe = dockeroo:docker.service
        name = %s
        image = %s
        command = sleep 1000
        endpoint-mode = dnsrr
        stop-grace-period = 1s
        """ % (app, swarm_image)) + "%s\n"
    sbuildout.configure(base % "env =\n    A=1\n    B=2\nlabels =\n    x=1")
    sbuildout.ok()
    first = sw.inspect("service", app)
    task = sw.tasks(app)[0]["ID"]

    # only a service label changes: updated in place, the task is not replaced
    sbuildout.configure(base % "env =\n    A=1\n    B=2\nlabels =\n    x=2")
    sbuildout.ok()
    service = sw.inspect("service", app)
    assert service["ID"] == first["ID"] and service["Spec"]["Labels"]["x"] == "2"
    assert [t["ID"] for t in sw.tasks(app)] == [task]

    # env changed: B dropped, C added, same service
    sbuildout.configure(base % "env =\n    A=1\n    C=3\nlabels =\n    x=2")
    sbuildout.ok()
    service = sw.inspect("service", app)
    assert service["ID"] == first["ID"]
    assert sorted(service["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]) == ["A=1", "C=3"]

    # updated by hand: repaired on the next run
    sw.docker("service", "update", "--detach", "--env-add", "A=hand", "--env-rm", "C", app)
    result = sbuildout.ok()
    assert "repairing service %s because service %s was changed by hand (env)" % (app, app) \
        in result.output, result.output
    spec = sw.inspect("service", app)["Spec"]
    assert sorted(spec["TaskTemplate"]["ContainerSpec"]["Env"]) == ["A=1", "C=3"]
    sw.wait_running(app, 1)

    # removed by hand: created again
    sw.docker("service", "rm", app)
    sbuildout.ok()
    assert sw.inspect("service", app)["ID"] != first["ID"]
    sw.wait_running(app, 1)

    # renamed: the new service runs, the old one is removed (it was left running)
    sbuildout.configure((base % "").replace("name = %s\n" % app, "name = %s-b\n" % app))
    sbuildout.ok()
    assert sw.names("service", sprefix) == [app + "-b"]
    sw.wait_running(app + "-b", 1)

    # keep = true: uninstall leaves the service
    sbuildout.configure(base % "keep = true")
    sbuildout.ok()
    sbuildout.uninstall_all()
    assert sw.inspect("service", app) is not None


def test_parts_needing_a_swarm_fail_on_an_engine_that_is_not_a_manager(buildout, prefix, tmp_path):
    # the default (shared) engine of the other tests is not in swarm mode and must
    # never be: only `docker info` is asked, nothing may be created
    buildout.write("s.txt", "x")
    buildout.configure("""
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        driver = overlay

        [s]
        recipe = dockeroo:docker.secret
        name = %(p)s-s
        file = s.txt

        [svc]
        recipe = dockeroo:docker.service
        name = %(p)s-svc
        image = busybox
        """ % {"p": prefix}, parts=["net"])
    from support.engine import inspect
    for part in ("net", "s", "svc"):
        text = open(buildout.path("buildout.cfg")).read()
        with open(buildout.path("buildout.cfg"), "w") as handle:
            handle.write(text.replace(text.splitlines()[1], "parts = " + part))
        result = buildout.fails()
        assert "Part [%s]" % part in result.error_line()
        assert "needs a swarm manager" in result.error_line()
        assert "not in swarm mode" in result.error_line()
        assert "Nothing was created" in result.error_line()
    assert inspect("network", prefix + "-net") is None


@pytest.mark.parametrize("options, message", [
    ("recipe = dockeroo:docker.secret\ncontent = hush", "not 'content'"),
    ("recipe = dockeroo:docker.secret\nenv = DKS_UNSET_VARIABLE", "is not set"),
    ("recipe = dockeroo:docker.secret\nfile = a\nenv = B", "exactly one"),
    ("recipe = dockeroo:docker.config\n", "exactly one"),
    ("recipe = dockeroo:docker.service\nimage = x\nmode = global\nreplicas = 2", "no replicas"),
    ("recipe = dockeroo:docker.service\nimage = x\nsecrets = a,target", "SOURCE[,target=T]"),
    ("recipe = dockeroo:docker.service\nimage = x\nupdate-delay = soon", "a duration"),
    ("recipe = dockeroo:docker.service\nimage = x\nupdate-failure-action = explode", "one of"),
    ("recipe = dockeroo:docker.service\nimage = x\nmounts = type=volume,target=rel", "--mount"),
    ("recipe = dockeroo:docker.service\nimage = x\nports = 80:eighty", "PUBLISHED:TARGET"),
    ("recipe = dockeroo:docker.network\ndriver = bridge\nattachable = true", "overlay only"),
])
def test_bad_options_are_user_errors(buildout, options, message):
    buildout.configure("[p]\n" + options + "\n")
    result = buildout.fails()
    assert "Part [p]" in result.error_line() and message in result.error_line(), result.output


def test_every_option_reaches_the_spec_and_a_rerun_changes_nothing(sbuildout, sprefix, sreserve,
                                                                    swarm_engine, swarm_image):
    sw = swarm_engine
    name = sprefix + "-full"
    os.environ["DKS_TEST_SECRET"] = "from-env"
    sbuildout.write("conf.txt", "from-file\n")
    sw.docker("volume", "create", sprefix + "-vol")
    sbuildout.configure("""
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        driver = overlay
        subnet = 172.30.%(n)d.0/24

        [token]
        recipe = dockeroo:docker.secret
        name = %(p)s-token
        env = DKS_TEST_SECRET

        [conf]
        recipe = dockeroo:docker.config
        name = %(p)s-conf
        file = conf.txt

        [full]
        recipe = dockeroo:docker.service
        name = %(name)s
        image = %(image)s
        entrypoint = sh -c
        command = "echo started; exec sleep 1000"
        replicas = 1
        endpoint-mode = dnsrr
        env =
            A=1
        labels =
            svc=yes
        container-labels =
            ctr=yes
        networks =
            ${net:network} one two
        volumes =
            %(p)s-vol:/data
        mounts =
            type=tmpfs,target=/scratch
        secrets =
            token,target=tok,uid=1000,gid=1000,mode=0400
        configs =
            ${conf:config},target=/etc/conf.txt
        constraints =
            node.role == manager
        placement-preferences =
            spread=node.id
        limit-cpu = 0.5
        limit-memory = 64M
        reserve-memory = 8M
        restart-condition = on-failure
        restart-delay = 2s
        restart-max-attempts = 3
        health-cmd = true
        health-interval = 5s
        health-retries = 2
        update-parallelism = 2
        update-delay = 1s
        update-order = start-first
        update-monitor = 2s
        rollback-parallelism = 1
        rollback-order = stop-first
        workdir = /tmp
        user = 1000
        stop-grace-period = 3s
        ports =
            published=%(port)d,target=80,mode=host
        """ % {"p": sprefix, "n": sreserve.octets(1)[0], "name": name,
               "image": swarm_image, "port": sreserve.ports()})
    try:
        sbuildout.ok()
    finally:
        del os.environ["DKS_TEST_SECRET"]
    spec = sw.inspect("service", name)["Spec"]
    task = spec["TaskTemplate"]
    cs = task["ContainerSpec"]
    assert cs["Command"] == ["sh", "-c"] and cs["Args"] == ["echo started; exec sleep 1000"]
    assert cs["Labels"]["ctr"] == "yes" and spec["Labels"]["svc"] == "yes"
    assert cs["User"] == "1000" and cs["Dir"] == "/tmp"
    assert sorted((m["Type"], m["Target"]) for m in cs["Mounts"]) == [("tmpfs", "/scratch"),
                                                                      ("volume", "/data")]
    assert cs["Secrets"][0]["File"] == {"Name": "tok", "UID": "1000", "GID": "1000", "Mode": 0o400}
    assert cs["Configs"][0]["File"]["Name"] == "/etc/conf.txt"
    assert task["Placement"]["Constraints"] == ["node.role == manager"]
    assert task["Resources"]["Limits"]["NanoCPUs"] == 500000000
    assert task["RestartPolicy"]["Condition"] == "on-failure"
    assert task["RestartPolicy"]["MaxAttempts"] == 3
    assert cs["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert spec["UpdateConfig"]["Parallelism"] == 2 and spec["UpdateConfig"]["Order"] == "start-first"
    assert spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert task["Networks"][0]["Aliases"] == ["one", "two"]
    assert spec["EndpointSpec"]["Ports"][0]["PublishMode"] == "host"
    container = sw.wait_running(name, 1) and sw.task_containers(name)[0]
    assert sw.exec(container, "cat", "/run/secrets/tok") == "from-env"
    assert sw.exec(container, "cat", "/etc/conf.txt") == "from-file\n"
    assert sw.exec(container, "id", "-u") == "1000\n"

    version = sw.inspect("service", name)["Version"]["Index"]
    result = sbuildout.ok(env={"DKS_TEST_SECRET": "from-env"})
    assert not acted(result), result.output
    assert sw.inspect("service", name)["Version"]["Index"] == version


def test_a_new_service_that_does_not_converge_is_removed(sbuildout, sprefix, swarm_engine,
                                                         swarm_image):
    sw = swarm_engine
    sbuildout.configure("""
        [bad]
        recipe = dockeroo:docker.service
        name = %s-bad
        image = %s
        command = sh -c 'exit 7'
        endpoint-mode = dnsrr
        wait = 8s
        """ % (sprefix, swarm_image))
    result = sbuildout.fails()
    error = result.error_line()
    assert "Part [bad]" in error and "did not converge within 8s" in error, result.output
    assert "non-zero exit (7)" in error
    assert sw.inspect("service", sprefix + "-bad") is None
    assert sw.task_containers(sprefix + "-bad") == []


def test_uninstalling_a_secret_a_foreign_service_uses_fails_and_names_it(
        sbuildout, sprefix, swarm_engine, swarm_image):
    sw = swarm_engine
    sbuildout.write("s.txt", "x")
    sbuildout.configure("""
        [s]
        recipe = dockeroo:docker.secret
        name = %s-s
        file = s.txt
        """ % sprefix)
    sbuildout.ok()
    [secret] = sw.names("secret", sprefix)
    sw.docker("service", "create", "--detach", "--name", sprefix + "-foreign", "--no-resolve-image",
              "--secret", secret, "--stop-grace-period", "1s", swarm_image, "sleep", "1000")
    result = sbuildout.uninstall_all()
    assert not result.ok and "Traceback" not in result.output
    assert "still in use" in result.output and sprefix + "-foreign" in result.output, result.output
    assert sw.names("secret", sprefix) == [secret]
    sw.docker("service", "rm", sprefix + "-foreign")


def test_list_options_change_in_place(sbuildout, sprefix, sreserve, swarm_engine, swarm_image):
    sw = swarm_engine
    name = sprefix + "-lists"
    port = sreserve.ports()  # and port + 1
    sbuildout.write("s.txt", "x")
    template = textwrap.dedent("""
        [net]
        recipe = dockeroo:docker.network
        name = %(p)s-net
        driver = overlay
        subnet = 172.30.%(n)d.0/24

        [s]
        recipe = dockeroo:docker.secret
        name = %(p)s-s
        file = s.txt

        [svc]
        recipe = dockeroo:docker.service
        name = %(name)s
        image = %(image)s
        command = sleep 1000
        endpoint-mode = dnsrr
        stop-grace-period = 1s
        networks =
            ${net:network} %%(alias)s
        mounts =
            type=tmpfs,target=%%(mount)s
        secrets =
            s,target=%%(target)s
        constraints =
            %%(constraint)s
        ports =
            published=%%(port)d,target=80,mode=host
        """ % {"p": sprefix, "n": sreserve.octets(1)[0], "name": name,
               "image": swarm_image})
    first = dict(alias="a1", mount="/m1", target="t1", constraint="node.role == manager", port=port)
    sbuildout.configure(template % first)
    sbuildout.ok()
    service_id = sw.inspect("service", name)["ID"]
    second = dict(alias="a2", mount="/m2", target="t2", constraint="node.role != worker",
                  port=port + 1)
    sbuildout.configure(template % second)
    result = sbuildout.ok()
    assert "updating service %s because option 'constraints' changed; option 'mounts' changed; " \
        "option 'networks' changed; option 'ports' changed; option 'secrets' changed" \
        % name in result.output, result.output
    service = sw.inspect("service", name)
    assert service["ID"] == service_id
    task = service["Spec"]["TaskTemplate"]
    cs = task["ContainerSpec"]
    assert task["Networks"][0]["Aliases"] == ["a2"] and len(task["Networks"]) == 1
    assert [m["Target"] for m in cs["Mounts"]] == ["/m2"]
    assert [s["File"]["Name"] for s in cs["Secrets"]] == ["t2"]
    assert task["Placement"]["Constraints"] == ["node.role != worker"]
    assert [p["PublishedPort"] for p in service["Spec"]["EndpointSpec"]["Ports"]] == [port + 1]
    container = sw.wait_running(name, 1) and sw.task_containers(name)[0]
    assert sw.exec(container, "cat", "/run/secrets/t2") == "x"
    version = service["Version"]["Index"]
    result = sbuildout.ok()
    assert not acted(result), result.output
    assert sw.inspect("service", name)["Version"]["Index"] == version
