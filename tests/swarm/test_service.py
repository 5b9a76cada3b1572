"""docker.service, docker.secret, docker.config and overlay networks on a private swarm."""

import os

import pytest

pytestmark = pytest.mark.swarm


def stack(prefix, image, replicas=2, secret_file="db.secret", extra="", net=True):
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
        %(extra)s
        """ % {"p": prefix, "image": image, "replicas": replicas, "secret": secret_file,
               "n": 100 + int(prefix[-2:], 16) % 100, "extra": extra}


def test_stack_create_rerun_secret_change_scale_uninstall(sbuildout, sprefix, swarm_engine,
                                                          swarm_image):
    sw = swarm_engine
    sbuildout.write("db.secret", "s3cret-one\n")
    sbuildout.configure(stack(sprefix, swarm_image))
    result = sbuildout.ok()
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
    assert "Updating service" not in result.output
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
    result = sbuildout.ok()
    assert "s3cret-two" not in result.output and "s3cret-two" not in sbuildout.installed()
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
