"""What the run's plan adds on the graph (dockeroo.runtime.runplan): the
containers a recreated network takes along, the old image whose users are
all recreated, the run's order of the entries, and the refusal text."""

from dockeroo.model import graph as g
from dockeroo.model.plan import action
from dockeroo.runtime import runplan

E = "the default docker engine"


def graph_with(actions, uses=(), parts=()):
    """A Graph: ACTIONS; USES (container, kind, name) held by the engine;
    PARTS (container name, part) managed by the buildout."""
    graph = g.Graph()
    for name, part in parts:
        graph.node(E, "container", name, part)
    for act in actions:
        graph.add_action(E, act)
    for user, kind, name in uses:
        graph.add_use(graph.node(E, "container", user), kind, name, kind, observed=True)
    return graph


def test_a_recreated_network_takes_its_containers_along():
    net = action("net", "network", "x-net", "recreate", "addresses: has A, wants B")
    web = action("web", "container", "x-web", "unchanged")
    graph = graph_with([net, web], [("x-web", "network", "x-net")], [("x-web", "web")])
    swaps = {}
    runplan.take_along(graph, swaps)
    new = swaps[id(web)]
    assert (new.verb, new.reasons) == ("recreate", ("network x-net is recreated (addresses: "
                                                    "has A, wants B)",))
    steps = g.order(graph)
    assert steps.blocked == []
    assert [[s.line() for s in b] for b in steps.batches] == [
        ["release container x-web (let go of network x-net)"],
        ["~ recreate network x-net"], ["~ recreate container x-web"]]


def test_a_container_of_no_part_blocks_with_advice():
    net = action("net", "network", "x-net", "remove", "part removed")
    graph = graph_with([net], [("stranger", "network", "x-net"), ("other", "network", "x-net")])
    result = runplan.RunPlan([("r", net)], graph, g.order(graph), set())
    assert result.refusal() == (
        "Part [net]: cannot remove network x-net: used by container stranger, which no part "
        "of this buildout manages; used by container other, which no part of this buildout "
        "manages; remove or move that container first, or set keep = true in [net] to leave "
        "the network in place\n(nothing was changed)")


def test_a_removal_left_pending_is_never_refused():
    net = action("net", "network", "x-net", "remove",
                 "left by an interrupted run of a removed part")
    graph = graph_with([net], [("stranger", "network", "x-net")])
    result = runplan.RunPlan([("r", net)], graph, g.order(graph), set())
    assert result.order.blocked and result.refusal() is None


def test_old_image_whose_users_are_recreated_is_removed_last():
    old = "sha256:" + "a" * 64
    img = action("img", "image", "x-img:1", "recreate", "context changed")
    gone = action("img", "image", old, "maybe", "replaced by the new build of x-img:1, removed "
                  "at the end of the run if no container uses it then (used now by x-web)")
    web = action("web", "container", "x-web", "recreate", "image x-img:1 will be rebuilt")
    graph = graph_with([img, gone, web], [("x-web", "image", old)], [("x-web", "web")])
    swaps = {}
    runplan.plain_removals(graph, swaps)
    new = swaps[id(gone)]
    assert new.line() == ("- remove image %s: replaced by the new build of x-img:1, removed at "
                          "the end of the run (its users x-web are recreated first)" % old)
    entries = [("b", img), ("b", new), ("r", web)]
    assert [e for _r, e in runplan.run_order(entries, set(), {id(new)})] == [img, web, new]


def test_removals_of_deferred_parts_come_last():
    net = action("net", "network", "x-net", "remove", "part removed")
    web = action("web", "container", "x-web", "recreate", "option 'networks' changed")
    back = action("back", "network", "x-back", "create", "new part")
    graph = graph_with([net, back, web], [("x-web", "network", "x-net")], [("x-web", "web")])
    configured = {"web": object(), "back": object()}
    assert runplan.deferred_parts(graph, configured) == {"net"}
    entries = [("n", net), ("n", back), ("r", web)]
    assert [e for _r, e in runplan.run_order(entries, {"net"})] == [back, web, net]
