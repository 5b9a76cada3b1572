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


class Taker:
    """A configured part's recipe, as :func:`runplan.hand_over` asks it."""

    def __init__(self, reasons=None, advice=None):
        self.answer = (reasons, advice)

    def take_over(self, kind, name, previous):
        return self.answer


def test_an_object_a_renamed_part_describes_again_is_handed_over():
    # part net-a removed, part net-b makes the same network, container web uses it
    gone = action("net-a", "network", "x-net", "remove", "part removed")
    kept = action("net-b", "network", "x-net", "unchanged")
    web = action("web", "container", "x-web", "unchanged")
    graph = graph_with([gone, kept, web], [("x-web", "network", "x-net")], [("x-web", "web")])
    graph.add_use(graph.node(E, "container", "x-web"), "network", "x-net", "network",
                  configured=True)
    configured = {"net-b": Taker(("taken over from part net-a",)), "web": object()}
    swaps = {}
    handovers, absorbed, declined = runplan.hand_over(graph, swaps, configured)
    new = swaps[id(kept)]
    assert new.line() == "~ recreate network x-net: taken over from part net-a"
    assert handovers == {("net-a", "network", "x-net"): new}
    assert absorbed == {id(gone)} and declined == {}
    runplan.take_along(graph, swaps)
    assert swaps[id(web)].line() == ("~ recreate container x-web: network x-net is recreated "
                                     "(taken over from part net-a)")
    steps = g.order(graph)
    assert steps.blocked == []
    assert [[s.line() for s in b] for b in steps.batches] == [
        ["release container x-web (let go of network x-net)"],
        ["~ recreate network x-net"], ["~ recreate container x-web"]]
    entries = [(r, swaps.get(id(e), e)) for r, e in [("n", gone), ("n", kept), ("r", web)]
               if id(e) not in absorbed]
    result = runplan.RunPlan(runplan.run_order(entries, runplan.deferred_parts(
        graph, configured)), graph, steps, set(), handovers)
    assert [e.line() for _r, e in result.entries] == [new.line(), swaps[id(web)].line()]
    assert result.handed_over("net-a") == [("network", "x-net")]
    assert result.taker("net-b", "network", "x-net") is new and result.refusal() is None


def test_a_part_that_declines_the_hand_over_says_what_to_do():
    gone = action("vol-a", "volume", "x-vol", "remove", "part removed")
    kept = action("vol-b", "volume", "x-vol", "unchanged")
    graph = graph_with([gone, kept], [("x-web", "volume", "x-vol")], [("x-web", "web")])
    graph.add_use(graph.node(E, "container", "x-web"), "volume", "x-vol", "volume",
                  configured=True)
    configured = {"vol-b": Taker(advice="set recreate = true in [vol-b]"), "web": object()}
    handovers, absorbed, declined = runplan.hand_over(graph, {}, configured)
    assert handovers == {} and absorbed == set()
    result = runplan.RunPlan([("v", gone), ("v", kept)], graph, g.order(graph), set(),
                             declined=declined)
    assert result.refusal() == (
        "Part [vol-a]: cannot remove volume x-vol: container x-web is configured to use it; "
        "set recreate = true in [vol-b]\n(nothing was changed)")


def test_no_hand_over_without_a_removal_of_a_removed_part():
    # keep = true in the old part: nothing removes it, the new part uses it as it is
    gone = action("net-a", "network", "x-net", "unchanged", "keep = true: left in place")
    kept = action("net-b", "network", "x-net", "unchanged")
    graph = graph_with([gone, kept])
    assert runplan.hand_over(graph, {}, {"net-b": Taker(("x",))}) == ({}, set(), {})
    # a changed part's own removal (it is configured) is no hand-over either
    gone = action("net-a", "network", "x-net", "remove", "replaced by network x-other")
    graph = graph_with([gone, kept])
    assert runplan.hand_over(graph, {}, {"net-a": Taker(), "net-b": Taker(("x",))}) == (
        {}, set(), {})


class Engine:
    """What :func:`dockeroo.runtime.run.taken_over` asks an engine: inspect JSON."""

    def __init__(self, objects):
        self.objects = objects

    def forget(self, kind, name):
        pass

    def inspect(self, kind, name):
        return self.objects.get((kind, name))


def test_the_record_of_a_removed_part_whose_network_is_another_part_s_now():
    from dockeroo.recipes.network import Recipe
    from dockeroo.runtime.run import taken_over
    old = {"recipe": "dockeroo:docker.network", "name": "x-net", "dockeroo-owner": "o"}

    def held(part, owner="o"):
        return Engine({("network", "x-net"): {"Labels": {"io.dockeroo.part": part,
                                                        "io.dockeroo.buildout": owner}}})
    handed = [("network", "x-net")]
    # handed over by this run's plan, still the old part's (the new part failed): kept
    assert taken_over(held("net-a"), Recipe, "net-a", old, handed) is False
    # the new part's now: the record is done, nothing removed
    assert taken_over(held("net-b"), Recipe, "net-a", old, handed) is True
    # so too when the new part made it again after a kill (no hand-over planned)
    assert taken_over(held("net-b"), Recipe, "net-a", old, ()) is True
    # the old part's, another buildout's, or gone: removed as usual (its own checks)
    assert taken_over(held("net-a"), Recipe, "net-a", old, ()) is None
    assert taken_over(held("net-b", "other"), Recipe, "net-a", old, ()) is None
    assert taken_over(Engine({}), Recipe, "net-a", old, handed) is None
