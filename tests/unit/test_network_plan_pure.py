"""The pure plan of docker.network, on inspect JSON recorded from the real engine.

Fixtures (tests/unit/fixtures/inspect/): ``network-bridge-ours.json``, a
network a docker.network part [net] made (subnet, gateway, internal, a
label); ``network-bridge-foreign.json``, one made by hand; ``swarm-*``, an
overlay network and ``docker info`` of a swarm manager and of an engine
that is not one.
"""

import copy
import json
import os

import pytest
from zc.buildout import UserError

from dockeroo.model.options import Options
from dockeroo.model.plan import Context
from dockeroo.recipes import network
from dockeroo.recipes.common.swarm import Observed

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "inspect")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


OURS = fixture("network-bridge-ours.json")
FOREIGN = fixture("network-bridge-foreign.json")
OWNER = OURS["Labels"]["io.dockeroo.buildout"]
SUBNET = OURS["IPAM"]["Config"][0]["Subnet"]
GATEWAY = OURS["IPAM"]["Config"][0]["Gateway"]
#: the part's options as it was installed
INSTALLED = {"recipe": "dockeroo:docker.network", "name": "dkrec-net", "subnet": SUBNET,
             "gateway": GATEWAY, "internal": "true", "labels": "tier=back",
             "network": "dkrec-net"}


def spec_of(options, part="net"):
    values = dict(options)
    return network.read(Options(part, values), values["name"], "name", OWNER)


def plan(options, objects, old=INSTALLED, part="net"):
    return network.plan(part, spec_of(options, part), Observed.recorded(objects), Context(old=old))


def verbs(actions):
    return [(a.kind, a.name, a.verb) for a in actions]


def test_nothing_changed_is_unchanged():
    [act] = plan(INSTALLED, {("network", "dkrec-net"): OURS})
    assert (act.verb, act.reasons) == ("unchanged", ())


def test_a_changed_subnet_recreates_with_the_difference_as_reason():
    other = "172.28.77.0/24"
    [act] = plan(dict(INSTALLED, subnet=other, gateway="172.28.77.1"),
                 {("network", "dkrec-net"): OURS})
    assert verbs([act]) == [("network", "dkrec-net", "recreate")]
    assert act.reasons == ("addresses: has subnet=%s gateway=%s, wants subnet=%s gateway=172.28.77.1"
                           % (SUBNET, GATEWAY, other),)
    assert act.line().startswith("~ recreate network dkrec-net: addresses: has subnet=")


def test_each_setting_is_a_reason():
    options = dict(INSTALLED, internal="false", labels="tier=front")
    [act] = plan(options, {("network", "dkrec-net"): OURS})
    assert act.verb == "recreate"
    assert act.reasons == ("internal: has True, wants False",
                           "labels: has {'tier': 'back'}, wants {'tier': 'front'}")


def test_attached_containers_are_recreated_with_it_labels_too():
    """Issue 18: under containers the network is recreated (the executor
    releases and makes again the containers of the buildout's parts, or
    refuses the run for any other user); a label change too: never
    "unchanged" (Docker cannot change a network's labels in place)."""
    objects = {("network", "dkrec-net"): OURS, ("network-users", "dkrec-net"): ["dkrec-db"]}
    [act] = plan(dict(INSTALLED, internal="false"), objects)
    assert (act.verb, act.reasons) == ("recreate", ("internal: has True, wants False",))
    [act] = plan(dict(INSTALLED, labels="tier=front"), objects)
    assert act.verb == "recreate"
    assert act.reasons == ("labels: has {'tier': 'back'}, wants {'tier': 'front'}",)


def test_a_network_of_someone_else_that_differs_is_an_error():
    options = dict(INSTALLED, name="dkrec-foreign")
    objects = {("network", "dkrec-foreign"): FOREIGN}
    with pytest.raises(UserError) as err:
        plan(options, objects)
    assert "network dkrec-foreign already exists but was not created by this part" in str(err.value)
    # its labels are its business: not a difference
    [act] = plan({"name": "dkrec-foreign", "labels": "tier=front"}, objects)
    assert (act.verb, act.reasons) == ("unchanged", ())


def test_a_missing_network_is_created_or_repaired():
    [act] = plan(INSTALLED, {}, old=None)
    assert (act.verb, act.reasons) == ("create", ("new part",))
    [act] = plan(INSTALLED, {})
    assert (act.verb, act.reasons) == ("repair", ("network dkrec-net is missing (removed by hand?)",))
    [act] = plan(dict(INSTALLED, name="dkrec-net2"), {})
    assert (act.name, act.verb, act.reasons) == ("dkrec-net2", "create",
                                                 ("option 'name' changed (was dkrec-net)",))


def test_an_overlay_network_needs_a_manager():
    overlay = fixture("swarm-network-overlay.json")
    options = {"name": overlay["Name"], "driver": "overlay", "attachable": "true",
               "subnet": overlay["IPAM"]["Config"][0]["Subnet"], "labels": "tier=back"}
    part = overlay["Labels"]["io.dockeroo.part"]
    spec = network.read(Options(part, dict(options)), options["name"], "name",
                        overlay["Labels"]["io.dockeroo.buildout"])
    manager = {("network", overlay["Name"]): overlay, ("info", ""): fixture("swarm-info-manager.json")}
    # the gateway swarm chose is not a difference
    [act] = network.plan(part, spec, Observed.recorded(manager), Context(old=options))
    assert (act.verb, act.reasons) == ("unchanged", ())
    inactive = dict(manager)
    inactive[("info", "")] = fixture("swarm-info-inactive.json")
    with pytest.raises(UserError) as err:
        network.plan(part, spec, Observed.recorded(inactive), Context(old=options))
    assert "an overlay (swarm) network needs a swarm manager" in str(err.value)
    assert "is not in swarm mode (swarm: inactive)" in str(err.value)


def test_podman_shows_no_ip_range_and_always_a_gateway():
    shown = copy.deepcopy(OURS)
    shown["IPAM"]["Config"] = [{"Subnet": SUBNET, "Gateway": GATEWAY}]
    options = dict(INSTALLED, gateway="", **{"ip-range": SUBNET})
    objects = {("network", "dkrec-net"): shown}
    [act] = plan(options, objects)
    assert act.verb == "recreate"  # Docker would show the range
    objects[("engine", "kind")] = "podman"
    [act] = plan(options, objects)
    assert (act.verb, act.reasons) == ("unchanged", ())
