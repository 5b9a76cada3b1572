"""docker.service and docker.secret plans against what the real run does (issue 9).

On the private swarm of tests/swarm: each situation is planned with
``dockeroo plan`` and run (``support.plan_exact.assert_plan_matches_run``:
read-only plan, each object's verb what the recorded run did to it); the
run's logged actions (``app: updating service S because option 'replicas'
changed``) are the plan's, and the recorded commands are exactly those
that action needs.
"""

import re

import pytest

from support import plan_exact
from support.plan_exact import assert_plan_matches_run

pytestmark = pytest.mark.swarm

def logged(result):
    """(part, verb, kind, name, reasons) of the actions a real run logged."""
    return plan_exact.logged(result.output)


def swarm_commands(recorder):
    """The mutating service/secret commands of a run: [(kind, verb, name)]."""
    out = []
    for argv in recorder.calls():
        argv = argv["argv"]
        if argv[:1] == ["service"] and argv[1] == "create":
            out.append(("service", "create", argv[argv.index("--name") + 1]))
        elif argv[:1] == ["service"] and argv[1] in ("update", "rm", "scale"):
            out.append(("service", argv[1], argv[-1]))
        elif argv[:1] == ["secret"] and argv[1] == "create":
            out.append(("secret", "create", argv[-2]))
        elif argv[:1] == ["secret"] and argv[1] == "rm":
            out.append(("secret", "rm", argv[-1]))
    return out


def stack(prefix, image, replicas):
    return """
        [db]
        recipe = dockeroo:docker.secret
        name = %(p)s-db
        file = db.secret

        [app]
        recipe = dockeroo:docker.service
        name = %(p)s-app
        image = %(image)s
        command = sleep 100000
        replicas = %(replicas)d
        endpoint-mode = dnsrr
        secrets =
            db
        update-monitor = 1s
        stop-grace-period = 1s
        """ % {"p": prefix, "image": image, "replicas": replicas}


def build(sw, ref, base, version):
    sw.docker("build", "-q", "-t", ref, "-", input="FROM %s\nLABEL version=%s\n" % (base, version))


def test_service_and_secret_plans_match_the_run(sbuildout, sprefix, swarm_engine, swarm_image,
                                                docker_recorder):
    sw = swarm_engine
    app, ref = sprefix + "-app", sprefix + "-img:1"
    build(sw, ref, swarm_image, 1)

    def run():
        exact = assert_plan_matches_run(sbuildout, docker_recorder)
        unknown = {a["part"] for a in exact.plan if a["kind"] == "part"}  # see the first run
        # (an uninstall logs what it removed, not the plan's line)
        planned = [(a["part"], a["action"], a["kind"], a["name"]) for a in exact.plan
                   if a["kind"] in ("service", "secret") and a["action"] != "unchanged"
                   and a["reasons"] != ["part removed"]]
        assert [entry[:4] for entry in logged(exact.run)
                if entry[0] not in unknown and entry[2] in ("service", "secret")] == planned, \
            exact.run.output
        plans.append(exact.plan)
        return exact.run, swarm_commands(docker_recorder)

    plans = []

    def secret_name():
        [name] = sw.names("secret", sprefix + "-db-")
        return name

    try:
        sbuildout.write("db.secret", "first-value\n")
        sbuildout.configure(stack(sprefix, ref, 1))
        result, commands = run()
        first = secret_name()
        # the first plan cannot name the secret's version: the buildout has no hash key yet
        assert [(a["kind"], a["action"]) for a in plans[0] if a["part"] == "db"] == [
            ("part", "maybe")]
        assert logged(result) == [("db", "create", "secret", first, "the part is new"),
                                  ("app", "create", "service", app, "the part is new")]
        assert commands == [("secret", "create", first), ("service", "create", app)]

        # nothing changed: no action, no mutating command
        result, commands = run()
        assert logged(result) == [] and commands == [], result.output

        # replicas changed: the service is updated in place
        sbuildout.configure(stack(sprefix, ref, 2))
        result, commands = run()
        assert logged(result) == [("app", "update", "service", app, "option 'replicas' changed")]
        assert commands == [("service", "update", app)]
        assert sw.inspect("service", app)["Spec"]["Mode"]["Replicated"]["Replicas"] == 2

        # the image rebuilt under the same tag: updated to the new image id
        build(sw, ref, swarm_image, 2)
        result, commands = run()
        assert logged(result) == [("app", "update", "service", app, "image %s changed" % ref)]
        assert commands == [("service", "update", app)]
        image_id = sw.inspect("image", ref)["Id"]
        assert sw.inspect("service", app)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image_id

        # the secret's content changed: a new version, the service switched to it, the
        # old version removed once no service uses it (tried at once, then at exit)
        sbuildout.write("db.secret", "second-value\n")
        result, commands = run()
        second = secret_name()
        assert second != first
        assert logged(result) == [
            ("db", "create", "secret", second, "a new version (content changed)"),
            ("db", "remove", "secret", first, "replaced by %s (removed once no service uses it)"
             % second),
            ("app", "update", "service", app, "secret versions changed (new content)")]
        assert [c for c in commands if c[0] == "service"] == [("service", "update", app)]
        assert ("secret", "create", second) in commands and ("secret", "rm", first) in commands
        assert "value" not in result.output
        assert sw.names("secret", sprefix + "-db-") == [second]
        # the replaced configuration leaves nothing to retry (it said "Could not remove
        # what a previous configuration owned" on every later run)
        assert "Could not remove" not in result.output, result.output
        result, commands = run()
        assert logged(result) == [] and commands == [], result.output

        # scaled by hand: repaired
        sw.docker("service", "scale", "--detach", app + "=1")
        result, commands = run()
        assert logged(result) == [("app", "repair", "service", app,
                                   "service %s was changed by hand (replicas)" % app)]
        assert commands == [("service", "update", app)]

        # renamed: the new service is made, the old one removed once it runs
        sbuildout.configure(stack(sprefix, ref, 2).replace("name = %s-app" % sprefix,
                                                           "name = %s-app2" % sprefix))
        result, commands = run()
        assert logged(result) == [
            ("app", "create", "service", app + "2", "option 'name' changed (was %s)" % app),
            ("app", "remove", "service", app, "replaced by service %s2" % app)]
        assert commands == [("service", "create", app + "2"), ("service", "rm", app)]
        assert sw.names("service", sprefix) == [app + "2"]

        # the service part removed (the secret part kept, now with keep = true): the
        # service is removed; then the secret part removed: keep leaves its version
        only_db = stack(sprefix, ref, 2).split("[app]")[0]
        sbuildout.configure(only_db + "keep = true\n")
        result, commands = run()
        assert [(a["kind"], a["name"], a["action"]) for a in plans[-1] if a["part"] == "app"] \
            == [("service", app + "2", "remove")]
        assert commands == [("service", "rm", app + "2")]
        sbuildout.configure("[other]\nrecipe = dockeroo:docker.volume\nname = %s-vol\n" % sprefix)
        result, commands = run()
        assert [(a["kind"], a["name"], a["action"], a["reasons"]) for a in plans[-1]
                if a["part"] == "db"] == [("secret", second, "unchanged", ["keep = true: left in place"])]
        assert commands == [] and sw.names("secret", sprefix + "-db-") == [second]
        sw.docker("secret", "rm", second)
    finally:
        sbuildout.uninstall_all()
        sw.docker("image", "rm", ref, check=False)
