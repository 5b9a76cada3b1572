"""docker.network against the real engine.

Subnets are free /24s of the test subnet pool (conftest.subnet_pool, inside
172.28.0.0/14); never anything overlapping 10.0.0.0/8.
"""

import ipaddress
import random

import pytest

from support.engine import docker, engine_kind, free_subnet, inspect




def ipam(name):
    return inspect("network", name)["IPAM"]["Config"]


def shown(pools):
    """POOLS as the engine shows them: Podman drops the ip-range (it applies it:
    see the address test below) and always shows a gateway."""
    if engine_kind() != "podman":
        return pools
    out = []
    for pool in pools:
        pool = {k: v for k, v in pool.items() if k != "IPRange"}
        pool.setdefault("Gateway", str(next(ipaddress.ip_network(pool["Subnet"]).hosts())))
        out.append(pool)
    return out


def test_network_install_update_uninstall(buildout, prefix, base_image):
    net = free_subnet()
    hosts = list(net.hosts())
    name = prefix + "-net"
    buildout.configure("""
        [net]
        recipe = dockeroo:docker.network
        name = %s
        subnet = %s
        gateway = %s
        ip-range = %s
        internal = true
        labels =
            tier=back end
        [vol]
        recipe = dockeroo:docker.volume
        name = %s-vol
        labels = net=${net:network}
        """ % (name, net, hosts[0], list(net.subnets(1))[1], prefix))
    buildout.ok()
    found = inspect("network", name)
    assert found["IPAM"]["Config"] == shown([{"Subnet": str(net), "Gateway": str(hosts[0]),
                                              "IPRange": str(list(net.subnets(1))[1])}])
    assert found["Internal"] is True
    assert found["EnableIPv6"] is False
    assert found["Driver"] == "bridge"
    assert found["Labels"]["tier"] == "back end"
    assert found["Labels"]["io.dockeroo.part"] == "net"
    assert inspect("volume", prefix + "-vol")["Labels"]["net"] == name  # ${net:network}
    # a container gets its address from the ip-range
    out = docker("run", "--rm", "--network", name, base_image, "ip", "-4", "-o", "addr", "show", "eth0")
    address = ipaddress.ip_address(out.split(" inet ")[1].split("/")[0])
    assert address in list(net.subnets(1))[1]

    result = buildout.ok()
    assert "Updating net" in result.output
    assert inspect("network", name)["Id"] == found["Id"]

    buildout.uninstall_all()
    assert inspect("network", name) is None


def test_network_change_recreates_unless_attached(buildout, prefix, base_image):
    first, second = free_subnet(), None
    second = free_subnet(avoid=[first])
    name = prefix + "-chg"
    part = """
        [n]
        recipe = dockeroo:docker.network
        name = %s
        subnet = %s
        """
    buildout.configure(part % (name, first))
    buildout.ok()
    old_id = inspect("network", name)["Id"]

    # a (stopped) container of no part on the network blocks the change
    docker("create", "--name", prefix + "-user", "--network", name, base_image, "true")
    buildout.configure(part % (name, second))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [n]: cannot recreate network %s: used by container %s-user, which no part " \
        "of this buildout manages" % (name, prefix) in line, result.output
    assert inspect("network", name)["Id"] == old_id
    assert ipam(name)[0]["Subnet"] == str(first)

    # once it is gone, the network is recreated with the new subnet
    docker("rm", prefix + "-user")
    result = buildout.ok()
    assert "recreating network %s because addresses: has subnet=%s" % (name, first) in result.output
    assert inspect("network", name)["Id"] != old_id
    assert ipam(name) == shown([{"Subnet": str(second)}])

    # internal flips too; a re-run then leaves it alone
    buildout.configure(part % (name, second) + "internal = yes\n")
    buildout.ok()
    found = inspect("network", name)
    assert found["Internal"] is True
    buildout.ok()
    assert inspect("network", name)["Id"] == found["Id"]


def test_network_recreated_when_changed_behind_our_back(buildout, prefix):
    net = free_subnet()
    name = prefix + "-drift"
    buildout.configure("""
        [n]
        recipe = dockeroo:docker.network
        name = %s
        subnet = %s
        """ % (name, net))
    buildout.ok()
    # removed by hand: the next run (update) creates it again
    docker("network", "rm", name)
    buildout.ok()
    assert ipam(name) == shown([{"Subnet": str(net)}])


def test_network_label_change(buildout, prefix, base_image):
    net = free_subnet()
    name = prefix + "-lbl"
    part = """
        [n]
        recipe = dockeroo:docker.network
        name = %s
        subnet = %s
        labels = color=%s
        """
    buildout.configure(part % (name, net, "red"))
    buildout.ok()
    old_id = inspect("network", name)["Id"]
    # nothing attached: recreated with the new labels
    buildout.configure(part % (name, net, "blue"))
    buildout.ok()
    found = inspect("network", name)
    assert found["Id"] != old_id and found["Labels"]["color"] == "blue"
    # attached to a container of no part: refused (labels need a recreation),
    # nothing changed
    docker("create", "--name", prefix + "-user", "--network", name, base_image, "true")
    buildout.configure(part % (name, net, "green"))
    result = buildout.fails()
    assert "cannot recreate network %s: used by container %s-user" % (name, prefix) \
        in result.output
    assert inspect("network", name)["Id"] == found["Id"]
    assert inspect("network", name)["Labels"]["color"] == "blue"
    docker("rm", prefix + "-user")  # then the uninstall removes the network (teardown checks)


def test_network_ipv6_dual_stack(buildout, prefix):
    net = free_subnet()
    v6 = ipaddress.ip_network("fd00:%x:%x::/64" % (random.randint(1, 0xffff), random.randint(1, 0xffff)))
    name = prefix + "-v6"
    buildout.configure("""
        [n]
        recipe = dockeroo:docker.network
        name = %s
        ipv6 = on
        subnet =
            %s
            %s
        gateway =
            %s
            %s
        """ % (name, net, v6, v6[1], net[254]))
    buildout.ok()
    found = inspect("network", name)
    assert found["EnableIPv6"] is True
    assert sorted(found["IPAM"]["Config"], key=lambda c: c["Subnet"]) == sorted(
        [{"Subnet": str(net), "Gateway": str(net[254])}, {"Subnet": str(v6), "Gateway": str(v6[1])}],
        key=lambda c: c["Subnet"])
    buildout.ok()
    assert inspect("network", name)["Id"] == found["Id"]


def test_network_keep_and_in_use_on_uninstall(buildout, prefix, base_image):
    name = prefix + "-keep"
    part = """
        [n]
        recipe = dockeroo:docker.network
        name = %s
        subnet = %s
        keep = %s
        """
    net = free_subnet()
    buildout.configure(part % (name, net, "false"))
    buildout.ok()
    docker("create", "--name", prefix + "-user", "--network", name, base_image, "true")
    result = buildout.uninstall_all()
    assert not result.ok and "Traceback" not in result.output
    assert "cannot remove network %s: used by container %s-user" % (name, prefix) \
        in result.output
    assert inspect("network", name) is not None
    docker("rm", prefix + "-user")
    assert buildout.uninstall_all().ok
    assert inspect("network", name) is None

    buildout.configure(part % (name, net, "true"))
    buildout.ok()
    buildout.uninstall_all()
    assert inspect("network", name) is not None, "keep = true must leave the network"
    docker("network", "rm", name)


def test_network_not_created_by_part(buildout, prefix):
    net = free_subnet()
    name = prefix + "-foreign"
    docker("network", "create", "--subnet", str(net), name)
    part = """
        [n]
        recipe = dockeroo:docker.network
        name = %s
        subnet = %s
        """
    # same configuration: used as it is, left alone on uninstall
    buildout.configure(part % (name, net))
    buildout.ok()
    result = buildout.uninstall_all()
    assert "was not created by this part" in result.output
    foreign_id = inspect("network", name)["Id"]
    # different configuration: an error, never recreated
    buildout.configure(part % (name, free_subnet(avoid=[net])))
    result = buildout.fails()
    assert "Part [n]" in result.error_line() and "not created by this part" in result.error_line()
    assert inspect("network", name)["Id"] == foreign_id


def test_network_bad_options(buildout, prefix):
    net = free_subnet()
    other = free_subnet(avoid=[net])
    cases = [
        ({"subnet": "garbage"}, "'subnet'"),
        ({"subnet": "%s/24" % net[5]}, "'subnet'"),  # host bits set
        ({"subnet": "%s\n    %s" % (net, net.supernet(1))}, "'subnet'"),  # overlap
        ({"subnet": str(net), "gateway": str(other[1])}, "'gateway'"),
        ({"subnet": str(net), "gateway": "nonsense"}, "'gateway'"),
        ({"subnet": str(net), "gateway": str(net.network_address)}, "'gateway'"),
        ({"gateway": str(net[1])}, "'gateway'"),  # without subnet
        ({"subnet": str(net), "ip-range": str(other)}, "'ip-range'"),
        ({"ip-range": str(net)}, "'ip-range'"),  # without subnet
        ({"subnet": str(net), "internal": "maybe"}, "'internal'"),
        ({"subnet": str(net), "ipv6": "true"}, "'ipv6'"),
        ({"subnet": "fd00:1:2::/64"}, "'subnet'"),  # IPv6 subnet, ipv6 off
        ({"subnet": str(net), "ipv6": "perhaps"}, "'ipv6'"),
        ({"subnet": str(net), "driver": "two words"}, "'driver'"),
        ({"subnet": str(net), "labels": "novalue"}, "'labels'"),
        ({"subnet": str(net), "keep": "maybe"}, "'keep'"),
        ({"subnet": str(net), "timeout": "soon"}, "'timeout'"),
    ]
    for options, needle in cases:
        lines = "\n".join("%s = %s" % item for item in options.items())
        buildout.configure("[bad]\nrecipe = dockeroo:docker.network\nname = %s-bad\n%s\n" % (prefix, lines))
        result = buildout.fails()
        line = result.error_line()
        assert "Part [bad]" in line and needle in line, (options, result.output)
        assert inspect("network", prefix + "-bad") is None


def test_network_bad_names(buildout, prefix):
    """A name the docker CLI would read as an option (``--help`` made
    ``network create`` print its help and succeed) or with spaces is an
    error naming the option; nothing is created."""
    names = ("--help", "-x", "%s bad" % prefix)

    def made():
        # only the networks these names could have made: other lanes and runs make networks
        # on the same engine meanwhile
        found = docker("network", "ls", "--format", "{{.Name}}").splitlines()
        return sorted(n for n in found if n in names or n.startswith((prefix, "help", "x")))
    before = made()
    for name in names:
        buildout.configure("[bad]\nrecipe = dockeroo:docker.network\nname = %s\n" % name)
        result = buildout.fails()
        line = result.error_line()
        assert "Part [bad], option 'name'" in line and "'-'" in line, (name, result.output)
    assert made() == before


HOST_CHANGED = "Error response from daemon: route ip+net: no such network interface"


def test_a_network_create_refused_while_the_host_changed_is_run_again(prefix, tmp_path):
    """Podman checks a new network's subnet against the addresses of every
    interface of the host, and answers ``route ip+net: no such network
    interface`` when one goes while it reads them (seen in CI, with other
    lanes' containers stopping): nothing was made, and the engine runs that
    ``network create`` again.  Any other command with that answer fails at
    once.  A wrapper of the real docker CLI gives the answer once per command."""
    import shutil
    from dockeroo.engine.docker import DockerEngine
    from dockeroo.engine.errors import HostChanged

    calls = tmp_path / "calls"
    wrapper = tmp_path / "docker"
    wrapper.write_text("""#!/bin/sh
echo "$1 $2" >> %(calls)s
if [ "$2" = create ] && [ ! -e %(tmp)s/answered-$1 ]; then
    touch %(tmp)s/answered-$1
    echo "%(answer)s" >&2
    exit 1
fi
exec %(docker)s "$@"
""" % {"calls": calls, "tmp": tmp_path, "answer": HOST_CHANGED, "docker": shutil.which("docker")})
    wrapper.chmod(0o755)
    net = free_subnet()
    engine = DockerEngine(docker=str(wrapper))
    engine.run(["network", "create", "--subnet", str(net), prefix + "-raced"])
    assert ipam(prefix + "-raced")[0]["Subnet"] == str(net)
    assert calls.read_text().split("\n").count("network create") == 2
    with pytest.raises(HostChanged):
        engine.run(["volume", "create", prefix + "-raced"])
    assert inspect("volume", prefix + "-raced") is None
    assert calls.read_text().split("\n").count("volume create") == 1
