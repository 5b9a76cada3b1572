"""The pure plans of docker.service, docker.secret and docker.config, on
inspect JSON recorded from a real single-node swarm (tests/swarm/engine.sh).

The fixtures (tests/unit/fixtures/inspect/swarm-*) were recorded after one
buildout run of the parts of ``PARTS`` below: the service ``dksrec-app``
(part [app]), the secret ``dksrec-db-<version>`` (part [db-password], file
content ``s3cret-rec\\n``, its buildout's hash key ``swarm-key.txt``), the
config ``dksrec-conf-<version>`` (part [app-conf]), the overlay network,
the image and ``docker info`` of the manager (and of an engine not in
swarm mode).
"""

import copy
import json
import os

import pytest
from zc.buildout import UserError

from dockeroo.model.options import Options
from dockeroo.model.plan import Context, action
from dockeroo.recipes import secret
from dockeroo.recipes.common import swarm_objects as secret_mod
from dockeroo.recipes import service as service_mod
from dockeroo.recipes.common.swarm import Observed

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "inspect")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


SERVICE = fixture("swarm-service.json")
SECRET = fixture("swarm-secret.json")
CONFIG = fixture("swarm-config.json")
NETWORK = fixture("swarm-network-overlay.json")
IMAGE = fixture("swarm-image.json")
MANAGER = fixture("swarm-info-manager.json")
with open(os.path.join(FIXTURES, "swarm-key.txt"), "rb") as _handle:
    KEY = _handle.read().strip()
OWNER = SERVICE["Spec"]["Labels"]["io.dockeroo.buildout"]
SECRET_CONTENT = b"s3cret-rec\n"

#: the options of the service part as installed (.installed.cfg)
APP = {"recipe": "dockeroo:docker.service", "name": "dksrec-app", "service": "dksrec-app",
       "image": "dockeroo-test/busybox:swarm", "command": "sleep 100000", "replicas": "2",
       "endpoint-mode": "dnsrr", "env": "MODE=test", "labels": "tier=web",
       "networks": "dksrec-net app-alias", "secrets": "db-password",
       "configs": "app-conf,target=/etc/app.conf,mode=0440", "dockeroo-owner": OWNER}


class FakeBuildout(dict):
    """The sections the service refers to (its secret and config parts)."""

    def __init__(self, secret=SECRET["Spec"]["Name"], config=CONFIG["Spec"]["Name"]):
        super().__init__()
        self["db-password"] = {"name": "dksrec-db", "secret": secret}
        self["app-conf"] = {"name": "dksrec-conf", "config": config}
        self._raw = {"db-password": {"recipe": "dockeroo:docker.secret", "name": "dksrec-db"},
                     "app-conf": {"recipe": "dockeroo:docker.config", "name": "dksrec-conf"},
                     "net": {"recipe": "dockeroo:docker.network", "name": "dksrec-net"}}


def objects(changes=()):
    """The recorded objects, with CHANGES ({(kind, name): JSON, or None: missing})."""
    found = {("service", "dksrec-app"): SERVICE, ("network", "dksrec-net"): NETWORK,
             ("image", "dockeroo-test/busybox:swarm"): IMAGE, ("info", ""): MANAGER}
    found.update(dict(changes))
    return {k: v for k, v in found.items() if v is not None}


def service_plan(options=APP, found=None, old=APP, buildout=None, context=None):
    values = dict(options)
    spec = service_mod.read(Options("app", values), buildout or FakeBuildout(), values["name"],
                            "name", OWNER)
    context = context or Context(old=old)
    return service_mod.plan("app", spec, Observed.recorded(found or objects()), context)


def test_the_recorded_service_is_unchanged():
    [act] = service_plan()
    assert (act.kind, act.name, act.verb, act.reasons) == ("service", "dksrec-app", "unchanged", ())


def test_replicas_changed_is_an_update_in_place():
    [act] = service_plan(dict(APP, replicas="3"))
    assert (act.verb, act.reasons) == ("update", ("option 'replicas' changed",))
    flags = act.data["flags"]
    assert flags[flags.index("--replicas") + 1] == "3"
    # the tasks do not change: their fingerprint is the recorded one
    assert "--container-label-add=io.dockeroo.task-fingerprint" not in " ".join(flags)


def test_a_rebuilt_image_under_the_same_tag_is_an_update():
    rebuilt = dict(IMAGE, Id="sha256:" + "1" * 64)
    [act] = service_plan(found=objects({("image", "dockeroo-test/busybox:swarm"): rebuilt}))
    assert (act.verb, act.reasons) == ("update", ("image dockeroo-test/busybox:swarm changed",))
    flags = act.data["flags"]
    assert flags[flags.index("--image") + 1] == rebuilt["Id"]  # deployed by id, not resolved


def test_a_new_secret_version_is_an_update():
    new = "dksrec-db-0123456789ab"
    [act] = service_plan(buildout=FakeBuildout(secret=new))
    assert (act.verb, act.reasons) == ("update", ("secret versions changed (new content)",))
    assert "--secret-rm=%s" % SECRET["Spec"]["Name"] in act.data["flags"]
    assert any(f.startswith("--secret-add=source=%s," % new) for f in act.data["flags"])


def test_a_service_changed_by_hand_is_repaired():
    scaled = copy.deepcopy(SERVICE)
    scaled["Spec"]["Mode"]["Replicated"]["Replicas"] = 1
    scaled["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] = ["MODE=hand"]
    [act] = service_plan(found=objects({("service", "dksrec-app"): scaled}))
    assert (act.verb, act.reasons) == ("repair", ("service dksrec-app was changed by hand "
                                                  "(env, replicas)",))


def test_a_changed_mode_recreates():
    options = dict(APP, mode="global")
    del options["replicas"]
    [act] = service_plan(options)
    assert act.verb == "recreate"
    assert act.reasons == ("option 'mode' changed (replicated -> global): a service cannot "
                           "change its mode in place",)


def test_a_missing_service_is_created_or_repaired():
    [act] = service_plan(found=objects({("service", "dksrec-app"): None}), old=None)
    assert (act.verb, act.reasons) == ("create", ("new part",))
    [act] = service_plan(found=objects({("service", "dksrec-app"): None}))
    assert (act.verb, act.reasons) == ("repair", ("service dksrec-app is missing (removed by hand?)",))


def test_a_service_of_someone_else_is_an_error():
    foreign = copy.deepcopy(SERVICE)
    foreign["Spec"]["Labels"]["io.dockeroo.part"] = "other"
    with pytest.raises(UserError) as err:
        service_plan(found=objects({("service", "dksrec-app"): foreign}))
    assert "service dksrec-app exists and was not made by this part" in str(err.value)


def test_an_engine_that_is_not_a_manager_is_an_error_before_anything():
    with pytest.raises(UserError) as err:
        service_plan(found=objects({("info", ""): fixture("swarm-info-inactive.json")}))
    assert "needs a swarm manager" in str(err.value) and "Nothing was created" in str(err.value)


def test_a_missing_network_is_an_error_unless_a_part_makes_it_while_planning():
    found = objects({("network", "dksrec-net"): None, ("service", "dksrec-app"): None})
    with pytest.raises(UserError) as err:
        service_plan(found=found, old=None)
    assert "network dksrec-net (option networks) does not exist" in str(err.value)
    [act] = service_plan(found=found, context=Context(old=None, planning=True))
    assert (act.verb, act.reasons) == ("create", ("new part",))


def test_while_planning_an_image_an_earlier_part_rebuilds_is_an_update():
    context = Context(old=APP, planning=True)
    context.will_change_image("dockeroo-test/busybox:swarm", action(
        "image", "image", "dockeroo-test/busybox:swarm", "recreate", "context file app.py changed"))
    [act] = service_plan(context=context)
    assert (act.verb, act.reasons) == ("update", ("image dockeroo-test/busybox:swarm will be "
                                                  "rebuilt (context file app.py changed)",))


# -- secrets and configs ---------------------------------------------------------------
SECRET_PART = {"recipe": "dockeroo:docker.secret", "name": "dksrec-db", "file": "db.secret",
               "secret": SECRET["Spec"]["Name"], "dockeroo-owner": OWNER}


def secret_plan(content=SECRET_CONTENT, found=None, old=SECRET_PART, key=KEY, kind="secret",
                options=SECRET_PART, part="db-password"):
    values = {k: v for k, v in options.items() if k != kind}
    spec, got = secret_mod.read(Options(part, values), kind, ("file", "content", "env"),
                                values["name"], "name", key, lambda option: content, OWNER)
    assert got == content
    found = found if found is not None else {(kind, spec.object_name): SECRET, ("info", ""): MANAGER}
    return spec, secret_mod.plan(part, spec, Observed.recorded(found), Context(old=old),
                                 "docker." + kind)


def test_the_recorded_secret_is_unchanged_and_its_name_is_its_version():
    spec, [act] = secret_plan()
    assert spec.object_name == SECRET["Spec"]["Name"]
    assert (act.kind, act.name, act.verb) == ("secret", SECRET["Spec"]["Name"], "unchanged")


def test_new_content_is_a_new_version_and_the_old_one_is_removed_without_the_content():
    old_name = SECRET["Spec"]["Name"]
    found = {("info", ""): MANAGER, ("secret-versions", "db-password"): [old_name]}
    spec, actions = secret_plan(content=b"s3cret-two\n", found=found)
    assert [(a.name == old_name, a.verb) for a in actions] == [(False, "create"), (True, "remove")]
    assert actions[0].reasons == ("a new version (content changed)",)
    assert actions[1].reasons == ("replaced by %s (removed once no service uses it)"
                                  % spec.object_name,)
    shown = repr(spec) + "".join(a.line() for a in actions) + repr(actions)
    assert "s3cret" not in shown


def test_a_secret_removed_by_hand_is_repaired_and_someone_elses_is_an_error():
    _spec, [act] = secret_plan(found={("info", ""): MANAGER})
    assert (act.verb, act.reasons) == ("repair", ("secret %s is missing (removed by hand?)"
                                                  % SECRET["Spec"]["Name"],))
    foreign = copy.deepcopy(SECRET)
    foreign["Spec"]["Labels"]["io.dockeroo.buildout"] = "someone-else"
    with pytest.raises(UserError) as err:
        secret_plan(found={("info", ""): MANAGER, ("secret", SECRET["Spec"]["Name"]): foreign})
    assert "exists and was not made by this part" in str(err.value)


def test_planning_before_the_hash_key_exists_names_no_version():
    spec, [act] = secret_plan(key=None, old=None, found={("info", ""): MANAGER})
    assert spec.object_name == "dksrec-db-????????????"
    assert (act.kind, act.name, act.verb) == ("part", "db-password", "maybe")
    assert act.reasons == ("the secret's version (dksrec-db-<hash>) is named with this "
                           "buildout's hash key, which the first real run makes",)


def test_the_recorded_config_is_unchanged():
    options = {"recipe": "dockeroo:docker.config", "name": "dksrec-conf",
               "content": "greeting = hello", "dockeroo-owner": OWNER}
    found = {("config", CONFIG["Spec"]["Name"]): CONFIG, ("info", ""): MANAGER}
    spec, [act] = secret_plan(content=b"greeting = hello\n", found=found, kind="config",
                              options=options, old=options, part="app-conf")
    assert spec.object_name == CONFIG["Spec"]["Name"]
    assert act.verb == "unchanged"


def test_a_renamed_service_is_created_and_the_old_one_removed():
    options = dict(APP, name="dksrec-app2", service="dksrec-app2")
    actions = service_plan(options)
    assert [(a.name, a.verb, a.reasons) for a in actions] == [
        ("dksrec-app2", "create", ("option 'name' changed (was dksrec-app)",))]
    # what the old configuration had: removed once the new one runs (replaced_removals)
    values = dict(options)
    spec = service_mod.read(Options("app", values), FakeBuildout(), values["name"], "name", OWNER)
    observed = Observed.recorded(objects())
    gone = service_mod.renamed("app", spec, observed, APP, "part configuration changed")
    assert [(a.name, a.verb, a.reasons) for a in gone] == [
        ("dksrec-app", "remove", ("replaced by service dksrec-app2",))]
    assert service_mod.renamed("app", spec, observed, dict(APP, keep="true"), "why")[0].verb \
        == "unchanged"
    assert service_mod.renamed("app", spec, observed, options, "why") == []


# -- removals (a removed part) ------------------------------------------------------------
def test_the_removal_of_a_service_part_honours_keep_ownership_and_the_engine():
    found = Observed.recorded(objects())
    assert [(a.name, a.verb) for a in service_mod.Recipe.plan_removal(
        found, "app", APP, "part removed")] == [("dksrec-app", "remove")]
    assert [(a.verb, a.reasons) for a in service_mod.Recipe.plan_removal(
        found, "app", dict(APP, keep="true"), "part removed")] == [
            ("unchanged", ("keep = true: left in place",))]
    assert [(a.verb, a.reasons) for a in service_mod.Recipe.plan_removal(
        found, "other", APP, "part removed")] == [("unchanged", ("not created by this part",))]
    inactive = Observed.recorded(objects({("info", ""): fixture("swarm-info-inactive.json")}))
    assert service_mod.Recipe.plan_removal(inactive, "app", APP, "part removed") == []


def test_the_removal_of_a_secret_part_removes_every_version():
    old_name = SECRET["Spec"]["Name"]
    older = copy.deepcopy(SECRET)
    older["Spec"]["Name"] = "dksrec-db-0123456789ab"
    found = Observed.recorded({("info", ""): MANAGER, ("secret", old_name): SECRET,
                               ("secret", older["Spec"]["Name"]): older,
                               ("secret-versions", "db-password"): [older["Spec"]["Name"], old_name]})
    actions = secret.Recipe.plan_removal(found, "db-password", SECRET_PART, "part removed")
    assert [(a.kind, a.name, a.verb) for a in actions] == [
        ("secret", older["Spec"]["Name"], "remove"), ("secret", old_name, "remove")]
