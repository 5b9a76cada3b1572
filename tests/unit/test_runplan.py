"""What the run's plan adds on the graph (dockeroo.runtime.runplan): the
containers a recreated network takes along, the old image whose users are
all recreated, the run's order of the entries, and the refusal text."""

import dataclasses

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


def test_deferred_removals_come_right_after_their_users_are_replaced():
    # web leaves x-net (part net removed) for x-back; db, a later part, changes
    # nothing of it: x-net goes right after web's turn, not after db's
    net = action("net", "network", "x-net", "remove", "part removed")
    back = action("back", "network", "x-back", "create", "new part")
    web = action("web", "container", "x-web", "recreate", "option 'networks' changed")
    db = action("db", "container", "x-db", "recreate", "option 'image' changed")
    graph = graph_with([net, back, web, db], [("x-web", "network", "x-net")],
                       [("x-web", "web"), ("x-db", "db")])
    entries = [("n", net), ("n", back), ("r", web), ("r", db)]
    order, due = runplan.soonest(entries, {"net"}, (), graph)
    assert [e for _r, e in order] == [back, web, net, db]
    assert due == {"net": frozenset({"back", "web"})}


def test_what_a_changed_part_no_longer_owns_goes_after_its_own_turn_and_its_users():
    old = dataclasses.replace(action("net", "network", "x-old", "remove", "replaced by "
                                     "network x-new"), at_end=True)
    new = action("net", "network", "x-new", "create", "option 'name' changed")
    web = action("web", "container", "x-web", "recreate", "option 'networks' changed")
    other = action("other", "volume", "x-vol", "create", "new part")
    graph = graph_with([old, new, web, other], [("x-web", "network", "x-old")],
                       [("x-web", "web")])
    entries = [("n", new), ("n", old), ("r", web), ("v", other)]
    order, due = runplan.soonest(entries, set(), {id(old)}, graph)
    assert [e for _r, e in order] == [new, web, old, other]
    assert due == {"net": frozenset({"net", "web"})}
    # without users it goes right after the part's own turn
    graph = graph_with([old, new, web, other])
    order, due = runplan.soonest(entries, set(), {id(old)}, graph)
    assert [e for _r, e in order] == [new, old, web, other]
    assert due == {"net": frozenset({"net"})}


def test_an_old_image_id_and_a_maybe_stay_at_the_end_of_the_run():
    old = "sha256:" + "b" * 64
    img = action("img", "image", "x-img:1", "recreate", "context changed")
    gone = action("img", "image", old, "remove", "replaced (its users x-web are recreated "
                  "first)")
    web = action("web", "container", "x-web", "recreate", "image x-img:1 will be rebuilt")
    db = action("db", "container", "x-db", "unchanged")
    graph = graph_with([img, gone, web, db], [("x-web", "image", old)], [("x-web", "web")])
    order, due = runplan.soonest([("b", img), ("b", gone), ("r", web), ("r", db)], set(),
                                 {id(gone)}, graph)
    assert [e for _r, e in order] == [img, web, db, gone] and due == {}


class Taker:
    """A configured part's recipe, as :func:`runplan.hand_over` asks it."""

    def __init__(self, reasons=None, advice=None):
        self.answer = (reasons, advice)
        self.asked = []

    def take_over(self, kind, name, previous, stays=False):
        self.asked.append((kind, name, previous, stays))
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
    # a configured part's removal that is not what its old configuration owned
    # (at the end of the run) is no hand-over either
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


def test_a_renamed_part_whose_network_also_changes_hands_it_over_with_the_changes():
    # part net-a removed; part net-b describes the same network with another subnet: its
    # plan (Context.handing) compares it as its own and recreates it for the difference
    gone = action("net-a", "network", "x-net", "remove", "part removed")
    kept = action("net-b", "network", "x-net", "recreate", "addresses: has A, wants B")
    web = action("web", "container", "x-web", "unchanged")
    graph = graph_with([gone, kept, web], [("x-web", "network", "x-net")], [("x-web", "web")])
    taker = Taker(("taken over from part net-a",))
    configured = {"net-b": taker, "web": object()}
    swaps = {}
    handovers, absorbed, declined = runplan.hand_over(graph, swaps, configured)
    new = swaps[id(kept)]
    # why it is taken over first, then what changes with it
    assert new.line() == ("~ recreate network x-net: taken over from part net-a; addresses: "
                          "has A, wants B")
    assert taker.asked == [("network", "x-net", "net-a", False)]
    assert handovers == {("net-a", "network", "x-net"): new} and absorbed == {id(gone)}
    runplan.take_along(graph, swaps)
    assert swaps[id(web)].line() == (
        "~ recreate container x-web: network x-net is recreated (taken over from part "
        "net-a; addresses: has A, wants B)")
    assert g.order(graph).blocked == []


def test_a_volume_taken_over_does_not_repeat_its_reasons():
    gone = action("vol-a", "volume", "x-vol", "remove", "part removed")
    kept = action("vol-b", "volume", "x-vol", "recreate", "options differ",
                  "recreate = true: its data is dropped")
    graph = graph_with([gone, kept])
    configured = {"vol-b": Taker(("taken over", "recreate = true: its data is dropped"))}
    swaps = {}
    runplan.hand_over(graph, swaps, configured)
    assert swaps[id(kept)].reasons == ("taken over", "options differ",
                                       "recreate = true: its data is dropped")


def test_a_part_that_stays_hands_over_what_it_no_longer_describes():
    # part net stays but names x-new now (its old x-net removed at the end of the run);
    # part net2 describes x-net: handed over, not removed, not refused
    gone = dataclasses.replace(action("net", "network", "x-net", "remove",
                                      "replaced by network x-new"), at_end=True)
    made = action("net", "network", "x-new", "create", "option 'name' changed")
    kept = action("net2", "network", "x-net", "unchanged")
    web = action("web", "container", "x-web", "unchanged")
    graph = graph_with([gone, made, kept, web], [("x-web", "network", "x-net")],
                       [("x-web", "web")])
    graph.add_use(graph.node(E, "container", "x-web"), "network", "x-net", "network",
                  configured=True)
    taker = Taker(("no longer described by part net",))
    configured = {"net": Taker(), "net2": taker, "web": object()}
    swaps = {}
    handovers, absorbed, declined = runplan.hand_over(graph, swaps, configured)
    new = swaps[id(kept)]
    assert taker.asked == [("network", "x-net", "net", True)]
    assert handovers == {("net", "network", "x-net"): new} and absorbed == {id(gone)}
    runplan.take_along(graph, swaps)
    steps = g.order(graph)
    assert steps.blocked == []
    entries = [(r, swaps.get(id(e), e)) for r, e in [("n", made), ("n", gone), ("n", kept),
                                                     ("r", web)] if id(e) not in absorbed]
    result = runplan.RunPlan(runplan.run_order(entries, set()), graph, steps, set(), handovers)
    assert [e.line() for _r, e in result.entries] == [
        made.line(), "~ recreate network x-net: no longer described by part net",
        "~ recreate container x-web: network x-net is recreated (no longer described by "
        "part net)"]
    assert result.handed_over("net") == [("network", "x-net")]
    assert result.taking("net2") == {("network", "x-net"): "net"}
    assert result.taking("net") == {} and result.refusal() is None
    # without the hand-over (the part declines) the removal is refused with its advice
    gone2 = dataclasses.replace(gone)
    graph = graph_with([gone2, made, kept], [("x-web", "network", "x-net")],
                       [("x-web", "web")])
    graph.add_use(graph.node(E, "container", "x-web"), "network", "x-net", "network",
                  configured=True)
    _h, _a, declined = runplan.hand_over(graph, {}, {"net": Taker(), "net2": Taker(
        advice="set recreate = true in [net2]"), "web": object()})
    result = runplan.RunPlan([("n", gone2)], graph, g.order(graph), set(), declined=declined)
    assert result.refusal() == (
        "Part [net]: cannot remove network x-net: container x-web is configured to use it; "
        "set recreate = true in [net2]\n(nothing was changed)")


def test_what_the_configured_parts_may_take_over():
    configured = {"net": object(), "net2": object()}
    removed = action("old", "network", "x-a", "remove", "part removed")
    at_end = dataclasses.replace(action("net", "network", "x-b", "remove", "replaced by "
                                        "network x-c"), at_end=True)
    left = action("net2", "volume", "x-v", "remove", "left by an interrupted run")
    kept = action("old2", "network", "x-k", "unchanged", "keep = true: left in place")
    image = action("old3", "image", "x-i:1", "remove", "part removed")
    own = action("net", "network", "x-d", "remove", "replaced by network x-c")
    assert runplan.handing([removed, at_end, left, kept, image, own], configured) == {
        ("network", "x-a"): "old", ("network", "x-b"): "net", ("volume", "x-v"): "net2"}


def test_the_record_of_a_part_that_stays_keeps_what_it_handed_over():
    from dockeroo.runtime.run import still_ours
    old = {"recipe": "dockeroo:docker.network", "name": "x-net", "dockeroo-owner": "o"}

    def held(part):
        return Engine({("network", "x-net"): {"Labels": {"io.dockeroo.part": part,
                                                        "io.dockeroo.buildout": "o"}}})
    handed = [("network", "x-net")]
    # still the old part's (the taker failed): the record stays for a later run
    assert still_ours(held("net"), "net", old, handed) is True
    # the taker's now (or gone): the record is done, the object left to the taker
    assert still_ours(held("net2"), "net", old, handed) is False
    assert still_ours(Engine({}), "net", old, handed) is False


def test_a_taken_over_object_is_left_to_its_part_without_a_word():
    from dockeroo.runtime.run import others_now
    old = {"recipe": "dockeroo:docker.network", "name": "x-net", "dockeroo-owner": "o"}

    def held(part, owner="o"):
        return Engine({("network", "x-net"): {"Labels": {"io.dockeroo.part": part,
                                                        "io.dockeroo.buildout": owner}}})
    assert others_now(held("net2"), "net", old) == {("network", "x-net")}
    # still the part's, another buildout's, or gone: removed as usual (with its own checks)
    assert others_now(held("net"), "net", old) == set()
    assert others_now(held("net2", "other"), "net", old) == set()
    assert others_now(Engine({}), "net", old) == set()


def test_an_interrupted_hand_over_of_a_part_that_stays_is_planned_again(tmp_path):
    import json
    import os
    from dockeroo.recipes.network import Recipe

    class Net:
        owned = Recipe.owned

        def __init__(self, name):
            self.options = {"name": name}
    folder = tmp_path / ".dockeroo" / "pending"
    os.makedirs(folder)
    assert runplan.left_over(str(tmp_path), {"net": Net("x-new")}) is False
    (folder / "net.json").write_text(json.dumps([{"options": {
        "recipe": "dockeroo:docker.network", "name": "x-net"}}]))
    # its old configuration owned a network the part no longer describes
    assert runplan.left_over(str(tmp_path), {"net": Net("x-new")}) is True
    # the same network: nothing to hand over; a removed part: orphans() says it
    assert runplan.left_over(str(tmp_path), {"net": Net("x-net")}) is False
    assert runplan.left_over(str(tmp_path), {}) is False


class OneStep:
    """What :func:`runplan.remade_together` asks of a docker.run part: its
    recipe, whether it is made in one step, what it uses, its engine."""

    recipe = "docker.run"

    def __init__(self, image="base", steps=1):
        self.spec = dataclasses.make_dataclass("Spec", ["in_one_step", "container"])(
            steps == 1, dataclasses.make_dataclass("C", ["network"])("x-net"))
        self.image = image
        self.engine = Engine({("image", "base"): {"Id": "sha256:1"}})

    def uses(self):
        return [("image", self.image, "image"), ("network", "x-net", "network")]


def test_released_containers_made_again_together_right_after_the_network():
    """The users of a recreated network whose turn passed, and those whose other inputs
    are ready, move right after it (the run makes them together); not one whose image
    a later part rebuilds, nor one after a part of another recipe, nor one made in steps."""
    early, net = (action("early", "container", "x-early", "recreate", "net"),
                  action("net", "network", "x-net", "recreate", "addresses"))
    mid = action("mid", "volume", "x-mid", "create", "new part")
    web, img, db = (action("web", "container", "x-web", "recreate", "net"),
                    action("img", "image", "x-img", "recreate", "rebuilt"),
                    action("db", "container", "x-db", "recreate", "net"))
    slow, other = (action("slow", "container", "x-slow", "recreate", "net"),
                   runplan.PartEntry("other", "zc.recipe.egg", "update"))
    late = action("late", "container", "x-late", "recreate", "net")
    users = ["early", "web", "db", "slow", "late"]
    graph = graph_with([early, net, mid, web, img, db, slow, late],
                       [("x-" + u, "network", "x-net") for u in users],
                       [("x-" + u, u) for u in users])
    configured = {u: OneStep() for u in users}
    configured.update(db=OneStep("x-img"), slow=OneStep(steps=2), net=object())
    turns = [("r", e) for e in (early, net, mid, web, img, db, slow, other, late)]
    entries = runplan.recreated_first(graph, turns)
    entries, together = runplan.remade_together(graph, entries, turns, configured)
    assert together == {("net", "network", "x-net"): ["early", "web"]}
    assert [e for _r, e in entries] == [net, early, web, mid, img, db, slow, other, late]
