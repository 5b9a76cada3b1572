"""The run's graph of objects and the order a careful operator follows
(dockeroo.model.graph), on small situations built here and inspect JSON
recorded from the real engine (fixtures/inspect)."""

import json
import os

import pytest
from support.dot import parse_dot

from dockeroo.model import graph as g
from dockeroo.model.options import Options
from dockeroo.model.plan import action
from dockeroo.recipes import copy as copy_mod
from dockeroo.recipes import run as run_mod
from dockeroo.recipes import service as service_mod

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "fixtures", "inspect", "run-app.json")) as _handle:
    REC = json.load(_handle)
E = "the default docker engine"


def container_json(name, image_id="sha256:" + "1" * 64, networks=(), volumes=(),
                   volumes_from=(), links=()):
    """A container's inspect JSON as Docker gives it (the fields the graph reads)."""
    return {"Name": "/" + name, "Image": image_id,
            "Mounts": [{"Type": "volume", "Name": v, "Destination": "/d"} for v in volumes]
            + [{"Type": "bind", "Source": "/srv", "Destination": "/srv"}],
            "NetworkSettings": {"Networks": {n: {} for n in networks}},
            "HostConfig": {"VolumesFrom": list(volumes_from), "Links": list(links)}}


def situation(actions, configured=(), observed=()):
    """A Graph: ACTIONS (Action), CONFIGURED uses (user kind, user name,
    kind, name) of the new configuration, OBSERVED containers (name, inspect JSON)."""
    graph = g.Graph()
    for act in actions:
        graph.add_action(E, act)
    for user_kind, user, kind, name in configured:
        graph.add_use(graph.node(E, user_kind, user), kind, name, kind, configured=True)
    for name, obj in observed:
        graph.add_observed(graph.node(E, "container", name), obj)
    return graph


def moved():
    """Container x-app moves from network part net-a (removed) to net-b (new)."""
    acts = [action("net-b", "network", "x-b", "create", "new part"),
            action("app", "container", "x-app", "recreate", "option 'networks' changed"),
            action("net-a", "network", "x-a", "remove", "part removed")]
    return situation(acts, configured=[("container", "x-app", "network", "x-b")],
                     observed=[("x-app", container_json("x-app", networks=("x-a",)))])


def lines(the_order):
    return [[s.line() for s in batch] for batch in the_order.batches]


def test_observed_uses_from_inspect_json():
    obj = container_json("x-app", networks=("x-a", "bridge"), volumes=("x-data",),
                         volumes_from=("x-src:ro",), links=("/x-db:/x-app/db",))
    assert g.observed_uses(obj) == [
        ("image", "sha256:" + "1" * 64, "image"), ("volume", "x-data", "volume"),
        ("network", "x-a", "network"), ("container", "x-src", "volumes-from"),
        ("container", "x-db", "link")]
    # a container recorded from the real engine: its image by id, its default network left out
    running = REC["running"]
    assert g.observed_uses(running)[0] == ("image", running["Image"], "image")
    assert all(kind != "network" or name not in g.PREDEFINED_NETWORKS
               for kind, name, _ in g.observed_uses(running))


def test_container_moved_to_another_network_part_the_old_one_removed():
    graph = moved()
    the_order = g.order(graph)
    assert the_order.blocked == []
    assert lines(the_order) == [["+ create network x-b"], ["~ recreate container x-app"],
                                ["- remove network x-a"]]
    edge = graph.edges[(g.node_key(E, "container", "x-app"), g.node_key(E, "network", "x-a"))]
    assert edge.observed and not edge.configured


def test_network_recreated_under_two_containers():
    acts = [action("net", "network", "x-net", "recreate", "option 'subnet' changed"),
            action("web", "container", "x-web", "recreate", "network x-net recreated"),
            action("db", "container", "x-db", "recreate", "network x-net recreated")]
    configured = [("container", c, "network", "x-net") for c in ("x-web", "x-db")]
    observed = [(c, container_json(c, networks=("x-net",))) for c in ("x-web", "x-db")]
    the_order = g.order(situation(acts, configured, observed))
    assert the_order.blocked == []
    assert lines(the_order) == [
        ["release container x-db (let go of network x-net)",
         "release container x-web (let go of network x-net)"],
        ["~ recreate network x-net"],
        ["~ recreate container x-db", "~ recreate container x-web"]]


def test_network_recreated_under_a_container_that_is_not_replaced_is_blocked():
    acts = [action("net", "network", "x-net", "recreate", "option 'subnet' changed"),
            action("web", "container", "x-web", "unchanged")]
    graph = situation(acts, [("container", "x-web", "network", "x-net")],
                      [("x-web", container_json("x-web", networks=("x-net",)))])
    the_order = g.order(graph)
    assert [(a.name, why) for a, why in the_order.blocked] == [
        ("x-net", "used by container x-web, which is not replaced with it")]


def test_removal_under_a_container_of_no_part_is_blocked():
    acts = [action("vol", "volume", "x-data", "remove", "part removed")]
    graph = situation(acts, observed=[("by-hand", container_json("by-hand", volumes=("x-data",)))])
    the_order = g.order(graph)
    assert [(a.name, why) for a, why in the_order.blocked] == [
        ("x-data", "used by container by-hand, which no part of this buildout manages")]
    # a removal the new configuration still uses
    acts = [action("vol", "volume", "x-data", "remove", "part removed"),
            action("app", "container", "x-app", "unchanged")]
    graph = situation(acts, configured=[("container", "x-app", "volume", "x-data")])
    assert [why for _, why in g.order(graph).blocked] == [
        "container x-app is configured to use it"]


def test_independent_steps_together_a_removal_once_its_users_are_gone():
    acts = [action("old", "container", "x-old", "remove", "part removed"),
            action("img", "image", "x-img", "create", "new part"),
            action("vol", "volume", "x-data", "create", "new part"),
            action("app", "container", "x-app", "create", "new part"),
            action("other", "container", "x-other", "unchanged"),
            action("old-vol", "volume", "x-old-data", "remove", "part removed")]
    graph = situation(acts, configured=[("container", "x-app", "image", "x-img:latest"),
                                        ("container", "x-app", "volume", "x-data")],
                      observed=[("x-old", container_json("x-old", volumes=("x-old-data",)))])
    the_order = g.order(graph)
    assert the_order.blocked == []
    # x-img and docker.io/library/x-img:latest are one node
    assert len([k for k in graph.nodes if k[1] == "image"]) == 2   # + the id x-old runs
    # a removed part's container that nothing waits for goes at once (buildout
    # uninstalls removed parts first); the volume it used once it is gone
    assert lines(the_order) == [["+ create image x-img", "- remove container x-old",
                                 "+ create volume x-data"],
                                ["+ create container x-app", "- remove volume x-old-data"]]
    assert the_order.batch_of(acts[3]) == 2 and the_order.batch_of(acts[4]) is None


def test_what_a_changed_part_no_longer_owns_goes_after_its_new_objects():
    acts = [action("net", "network", "x-new", "create", "option 'name' changed"),
            action("net", "network", "x-old", "remove", "replaced by network x-new"),
            action("db", "volume", "x-db", "create", "new part")]
    the_order = g.order(situation(acts))
    assert lines(the_order) == [["+ create volume x-db", "+ create network x-new"],
                                ["- remove network x-old"]]


def test_same_name_made_again_by_another_part_goes_first():
    acts = [action("net-a", "network", "x-net", "remove", "part removed"),
            action("net-b", "network", "x-net", "create", "new part")]
    assert lines(g.order(situation(acts))) == [["- remove network x-net"],
                                               ["+ create network x-net"]]


def test_steps_waiting_for_each_other_are_an_error():
    acts = [action("a", "container", "x-a", "create"), action("b", "container", "x-b", "create")]
    graph = situation(acts, configured=[("container", "x-a", "container", "x-b"),
                                        ("container", "x-b", "container", "x-a")])
    with pytest.raises(g.OrderError, match="wait for each other"):
        g.order(graph)


def test_recipes_name_what_their_spec_uses():
    spec = run_mod.read(Options("app", {
        "image": "x-img", "networks": "x-a\nx-b", "volumes": "x-data:/data\n/srv:/srv",
        "volumes-from": "x-src:ro", "links": "x-db:db"}), "x-app", "name", "/nowhere")
    assert run_mod.uses(spec) == [
        ("image", "x-img", "image"), ("volume", "x-data", "volume"),
        ("container", "x-src", "volumes-from"), ("container", "x-db", "link"),
        ("network", "x-a", "network"), ("network", "x-b", "network")]
    copy = copy_mod.read(Options("cp", {"container-from": "x-src", "container-to": "x-app",
                                        "paths": "/a"}), "/nowhere/state.json")
    assert copy_mod.uses(copy) == [("container", "x-src", "source"),
                                   ("container", "x-app", "target")]
    assert service_mod.uses(type("S", (), {"image": "x-img", "secrets": (("s-1", "/t"),),
                                           "configs": (), "networks": (("x-o", ()),)})) == [
        ("image", "x-img", "image"), ("secret", "s-1", "secret"), ("network", "x-o", "network")]


# -- DOT ------------------------------------------------------------------------------
def test_dot_shows_objects_users_and_actions_by_part():
    graph = moved()
    recipes = {"net-a": "dockeroo:docker.network", "net-b": "dockeroo:docker.network",
               "app": "dockeroo:docker.run"}   # the order of the plan
    text = g.dot(graph, g.order(graph), recipes)
    nodes, edges, clusters = parse_dot(text)
    assert nodes["container x-app"][:3] == ["container x-app", "~ recreate (batch 2)",
                                           "  option 'networks' changed"]
    assert nodes["network x-a"][1] == "- remove (batch 3)"
    assert nodes["image sha256:" + "1" * 64][-1] == "(no part of this buildout)"
    assert ("container x-app", "network x-b", "network", ", style=bold") in edges
    assert ("container x-app", "network x-a", "network", ", style=dashed") in edges
    assert clusters == ["[net-a] (dockeroo:docker.network)", "[net-b] (dockeroo:docker.network)",
                        "[app] (dockeroo:docker.run)"]
    assert "// batch 1: + create network x-b" in text


def test_graph_argument():
    from zc.buildout import UserError
    from dockeroo import cli
    assert cli.parse_plan_args(["--graph", "-N"]).graph
    assert not cli.parse_plan_args([]).graph
    with pytest.raises(UserError, match="either --json or --graph"):
        cli.parse_plan_args(["--graph", "--json"])


class _Images:
    """An engine that knows one image (its inspect JSON)."""

    def __init__(self, tags=(), digests=()):
        self.obj = {"Id": "sha256:" + "a" * 64, "RepoTags": list(tags),
                    "RepoDigests": list(digests)}

    def inspect(self, kind, name):
        return self.obj


def test_which_image_removals_remove_the_image():
    from dockeroo.runtime.graph import _last_name
    digest = "sha256:" + "b" * 64
    # the last tag (Docker's familiar spelling, Podman's localhost/ one)
    assert _last_name(_Images(["x:1"]), "x:1")
    assert _last_name(_Images(["localhost/x:1"]), "x:1")
    assert _last_name(_Images(["x:1"], ["x@" + digest]), "x:1")  # its digest goes with it
    # one of several references only untags
    assert not _last_name(_Images(["x:1", "y:1"]), "x:1")
    assert not _last_name(_Images(["x:1"], ["r/y@" + digest]), "x:1")
    assert not _last_name(_Images(["x:1"], ["r/x@" + digest]), "r/x@" + digest)
    assert _last_name(_Images([], ["r/x@" + digest]), "r/x@" + digest)
    assert _last_name(_Images(["x:1"]), "sha256:" + "a" * 64)


def test_the_graph_inspects_services_with_the_swarm_helper():
    """runtime.graph._service asks the swarm recipes' own inspect
    (recipes.common.swarm.inspect is model.ownership.swarm_inspect): None
    for no such service and for an engine that is no swarm manager."""
    from dockeroo.model.ownership import swarm_inspect
    from dockeroo.recipes.common import swarm
    assert swarm.inspect is swarm_inspect
    from dockeroo.engine.errors import DockerError, NotFound
    from dockeroo.runtime import graph as run_graph

    class Engine:
        def __init__(self, answer):
            self.answer, self.asked = answer, []

        def json(self, args, timeout=None):
            self.asked.append(args)
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer
    found = Engine([{"ID": "x", "Spec": {"Name": "app"}}])
    assert run_graph._service(found, "app") == {"ID": "x", "Spec": {"Name": "app"}}
    assert found.asked == [["service", "inspect", "--", "app"]]
    assert run_graph._service(Engine(NotFound(["service"], 1, "no such service: app")),
                              "app") is None
    assert run_graph._service(Engine(DockerError(
        ["service"], 1, "This node is not a swarm manager.")), "app") is None
    assert run_graph._service(Engine([]), "app") is None


def test_a_swarm_task_container_stands_for_its_service_until_its_task_ended():
    """runtime.graph._user_key: a running task's container is its service's
    use; the stopped container of an ended task (kept for the task history)
    is no user at all; any other container is itself."""
    from dockeroo.runtime import graph as run_graph

    def task(service, running):
        return {"Config": {"Labels": {"com.docker.swarm.service.name": service,
                                      "com.docker.swarm.task.id": "t1"}},
                "State": {"Running": running}}

    class Engine:
        held = {"app.1.x": task("app", True), "old.1.y": task("old", False),
                "web": {"Config": {"Labels": {}}, "State": {"Running": False}}}

        def inspect(self, kind, name):
            return self.held.get(name)
    graph = g.Graph()
    assert run_graph._user_key(graph, Engine(), E, "app.1.x") == (E, "service", "app")
    assert run_graph._user_key(graph, Engine(), E, "old.1.y") is None
    assert run_graph._user_key(graph, Engine(), E, "web") == (E, "container", "web")
