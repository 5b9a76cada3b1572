"""The pure plans of docker.network and docker.volume told what other parts
hand over in the run (``Context.handing``, issue 18): an object another part
of the buildout made and removes (a removed part, or one that no longer
describes it) is compared as the part's own, so a hand-over that also
changes its settings is planned (``recreate``, the difference as reason)
instead of refused as "not created by this part".  On inspect JSON recorded
from the real engine (tests/unit/fixtures/inspect/)."""

import copy
import json
import os

import pytest
from zc.buildout import UserError

from dockeroo.model.options import Options
from dockeroo.model.plan import Context, Observed
from dockeroo.recipes import network, volume
from dockeroo.recipes.common.swarm import Observed as NetObserved

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "inspect")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


NET = fixture("network-bridge-ours.json")  # made by part [net]
NET_OWNER = NET["Labels"]["io.dockeroo.buildout"]
SUBNET = NET["IPAM"]["Config"][0]["Subnet"]
GATEWAY = NET["IPAM"]["Config"][0]["Gateway"]
VOL = fixture("volume-owned.json")  # made by part [demo-volume]
VOL_OWNER = VOL["Labels"]["io.dockeroo.buildout"]


def net_plan(part, options, handing=None, obj=NET):
    values = dict({"recipe": "dockeroo:docker.network", "name": "dkrec-net", "subnet": SUBNET,
                   "gateway": GATEWAY, "internal": "true", "labels": "tier=back"}, **options)
    spec = network.read(Options(part, values), values["name"], "name", NET_OWNER)
    return network.plan(part, spec, NetObserved.recorded({("network", "dkrec-net"): obj}),
                        Context(old=None, handing=handing))


def test_a_network_handed_over_with_another_subnet_is_recreated_for_it():
    other = "172.28.77.0/24"
    handing = {("network", "dkrec-net"): "net"}
    [act] = net_plan("net2", {"subnet": other, "gateway": "172.28.77.1"}, handing)
    assert act.verb == "recreate"
    assert act.reasons == ("addresses: has subnet=%s gateway=%s, wants subnet=%s "
                           "gateway=172.28.77.1" % (SUBNET, GATEWAY, other),)
    # its user labels are compared too (as on the part's own network)
    [act] = net_plan("net2", {"labels": "tier=front"}, handing)
    assert act.reasons == ("labels: has {'tier': 'back'}, wants {'tier': 'front'}",)
    # the same settings: unchanged (the hand-over makes it the recreation)
    [act] = net_plan("net2", {}, handing)
    assert act.verb == "unchanged"


def test_a_network_no_one_hands_over_that_differs_is_still_an_error():
    with pytest.raises(UserError, match="not created by this part, and differs"):
        net_plan("net2", {"subnet": "172.28.77.0/24", "gateway": ""})
    # handed over by a part that did not make it (another part's labels): an error too
    with pytest.raises(UserError, match="not created by this part, and differs"):
        net_plan("net2", {"subnet": "172.28.77.0/24", "gateway": ""},
                 {("network", "dkrec-net"): "net-other"})
    # of another buildout
    foreign = copy.deepcopy(NET)
    foreign["Labels"]["io.dockeroo.buildout"] = "another"
    with pytest.raises(UserError, match="not created by this part, and differs"):
        net_plan("net2", {"subnet": "172.28.77.0/24", "gateway": ""},
                 {("network", "dkrec-net"): "net"}, foreign)


def vol_plan(part, options, handing=None):
    values = dict({"recipe": "dockeroo:docker.volume", "name": "dkplancli-demo-data"},
                  **options)
    spec = volume.read(Options(part, values), values["name"], "name")
    return volume.plan(part, spec, Observed.recorded({("volume", "dkplancli-demo-data"): VOL}),
                       Context(old=None, handing=handing), VOL_OWNER)


def test_a_volume_handed_over_with_other_options():
    handing = {("volume", "dkplancli-demo-data"): "demo-volume"}
    opts = {"driver-opts": "type=tmpfs\ndevice=tmpfs\no=size=2m"}
    # recreate = true: recreated for the difference, its data dropped
    [act] = vol_plan("store", dict(opts, recreate="true"), handing)
    assert act.verb == "recreate"
    assert act.reasons[1:] == ("recreate = true: its data is dropped",)
    assert "options {}, but the part asks for driver local and options {'type'" in act.reasons[0]
    # without: no error of its own, the hand-over declines with its advice (Recipe.take_over)
    [act] = vol_plan("store", opts, handing)
    assert act.verb == "unchanged" and "options {}" in act.reasons[0]
    # nobody hands it over: refused as before (not created by this part)
    with pytest.raises(UserError, match="not created by this part"):
        vol_plan("store", dict(opts, recreate="true"))
    with pytest.raises(UserError, match="its data is not dropped"):
        vol_plan("store", opts)


def test_context_names_the_part_that_hands_an_object_over():
    ctx = Context(handing={("network", "x"): "net"})
    mine = {"Labels": {"io.dockeroo.part": "net", "io.dockeroo.buildout": "o"}}
    assert ctx.handed_by("network", "x", mine, "o") == "net"
    assert ctx.handed_by("network", "x", mine, "other") is None
    assert ctx.handed_by("volume", "x", mine, "o") is None
    assert ctx.handed_by("network", "x", None, "o") is None
    assert Context().handed_by("network", "x", mine, "o") is None
