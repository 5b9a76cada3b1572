"""``dockeroo plan --graph`` on a real buildout: a network, a volume, an
image and two containers; one container moves to another network.  The DOT
shows the objects, who uses what (as configured and as the engine holds
it), and each action with its reasons and batch; the plain plan is unchanged."""

import os
import shutil
import subprocess

from support.dot import parse_dot
from support.engine import free_subnet, inspect
from support.plan_exact import plan_of

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
"""


def container(prefix, name, network, extra=""):
    return """
        [{name}]
        recipe = dockeroo:docker.run
        name = {p}-{name}
        image = ${{img:name}}
        command = sleep 3600
        stop-timeout = 0
        networks = {network}
        {extra}
        """.format(p=prefix, name=name, network=network, extra=extra)


def configure(buildout, prefix, base_image, subnets, web_network):
    buildout.write("ctx/Dockerfile", DOCKERFILE)
    buildout.configure("""
        [net-a]
        recipe = dockeroo:docker.network
        name = {p}-a
        subnet = {a}

{net_b}
        [data]
        recipe = dockeroo:docker.volume
        name = {p}-data

        [img]
        recipe = dockeroo:docker.build
        name = {p}-img:1
        source = ctx
        build-args = BASE={base}

{web}
{db}
        """.format(p=prefix, a=subnets[0], base=base_image,
                   web=container(prefix, "web", web_network % {"p": prefix},
                                 "volumes = ${data:name}:/data"),
                   db=container(prefix, "db", "${net-a:name}"),
                   net_b="" if "-b" not in web_network else """
        [net-b]
        recipe = dockeroo:docker.network
        name = {p}-b
        subnet = {b}
""".format(p=prefix, b=subnets[1])))


def test_graph_of_a_container_moved_to_another_network(buildout, prefix, base_image):
    first = free_subnet()
    subnets = (first, free_subnet(avoid=[first]))
    configure(buildout, prefix, base_image, subnets, "%(p)s-a")
    buildout.ok()
    assert inspect("container", prefix + "-web")["NetworkSettings"]["Networks"].keys() == {
        prefix + "-a"}

    configure(buildout, prefix, base_image, subnets, "%(p)s-b")
    plain = plan_of(buildout, json_output=False)
    graph = plan_of(buildout, "--graph", json_output=False)
    assert graph.code == plain.code == 2, graph.stderr
    assert "digraph" not in plain.output
    nodes, edges, clusters = parse_dot(graph.output)
    web, db = "container %s-web" % prefix, "container %s-db" % prefix
    net_a, net_b = "network %s-a" % prefix, "network %s-b" % prefix
    image, volume = "image %s-img:1" % prefix, "volume %s-data" % prefix

    # the actions, with their reasons and batches: the container after its new network
    assert nodes[net_b][1:] == ["+ create (batch 1)", "  new part"], nodes[net_b]
    assert nodes[web][1] == "~ recreate (batch 2)", nodes[web]
    assert "  option 'networks' changed" in nodes[web]
    for node in (net_a, image, volume, db):
        assert nodes[node][1] == "= unchanged", (node, nodes[node])
    # who uses what: configured and held (solid), configured only (bold), held only (dashed)
    edge = {(u, k): (rel, attrs) for u, k, rel, attrs in edges}
    assert edge[(web, net_b)] == ("network", ", style=bold")
    assert edge[(web, net_a)] == ("network", ", style=dashed")
    assert edge[(web, image)] == ("image", "")
    assert edge[(web, volume)] == ("volume", "")
    assert edge[(db, net_a)] == ("network", "")
    assert edge[(db, image)] == ("image", "")
    assert "[web] (dockeroo:docker.run)" in clusters and "[img] (dockeroo:docker.build)" in clusters
    assert "// batch 1: + create network %s-b" % prefix in graph.output
    assert "// batch 2: ~ recreate container %s-web" % prefix in graph.output
    # nothing changed in Docker
    assert inspect("container", prefix + "-web")["NetworkSettings"]["Networks"].keys() == {
        prefix + "-a"}
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tsvg", "-o", os.devnull], input=graph.output, text=True,
                       check=True)

    buildout.ok()
    assert inspect("container", prefix + "-web")["NetworkSettings"]["Networks"].keys() == {
        prefix + "-b"}


def test_graph_orders_a_move_whose_old_network_part_is_removed(buildout, prefix, base_image):
    """Issue 18's first example: the container moves to a new network part
    and the old part is removed.  The graph orders it: create the new
    network, recreate the container, then remove the old network (on the
    engine the removed part's recorded options select)."""
    first = free_subnet()
    second = free_subnet(avoid=[first])
    buildout.write("ctx/Dockerfile", DOCKERFILE)
    image = """
        [img]
        recipe = dockeroo:docker.build
        name = {p}-img:1
        source = ctx
        build-args = BASE={base}
        """.format(p=prefix, base=base_image)
    network = """
        [{part}]
        recipe = dockeroo:docker.network
        name = {p}-{part}
        subnet = {subnet}
        """
    buildout.configure(network.format(part="net-a", p=prefix, subnet=first) + image
                       + container(prefix, "web", "${net-a:name}"))
    buildout.ok()
    buildout.configure(network.format(part="net-b", p=prefix, subnet=second) + image
                       + container(prefix, "web", "${net-b:name}"))
    graph = plan_of(buildout, "--graph", json_output=False)
    assert graph.code == 2, graph.stderr
    nodes, edges, _ = parse_dot(graph.output)
    web = "container %s-web" % prefix
    assert nodes["network %s-net-b" % prefix][1] == "+ create (batch 1)"
    assert nodes[web][1] == "~ recreate (batch 2)"
    assert nodes["network %s-net-a" % prefix][1:] == ["- remove (batch 3)", "  part removed"]
    assert (web, "network %s-net-a" % prefix, "network", ", style=dashed") in edges
    assert "blocked" not in graph.output
    assert inspect("network", prefix + "-net-a") is not None   # nothing changed
