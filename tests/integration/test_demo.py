"""The repository's demo buildout.cfg (README, command 1) against the real engine.

The demo's own names and subnet are overridden on the command line
(``section:option=value``) so that this test never touches a demo the
user installed, nor another test's network.
"""

import os
import shutil

from support.buildout import HERE
from support.engine import docker, free_subnet, inspect

REPO = os.path.dirname(HERE)




def test_demo_buildout(buildout, prefix):
    shutil.copy(os.path.join(REPO, "buildout.cfg"), buildout.path("buildout.cfg"))
    shutil.copytree(os.path.join(REPO, "demo"), buildout.path("demo"))
    net = free_subnet()
    image = prefix + "-demo:latest"
    overrides = [
        "demo-network:name=%s-net" % prefix,
        "demo-network:subnet=%s" % net,
        "demo-network:gateway=%s" % next(net.hosts()),
        "demo-volume:name=%s-data" % prefix,
        "demo-image:name=%s" % image,
    ]
    result = buildout.ok(*overrides)
    assert "Built image %s" % image in result.output
    network = inspect("network", prefix + "-net")
    assert network["IPAM"]["Config"][0]["Subnet"] == str(net)
    assert network["Labels"]["io.dockeroo.demo"] == "true"
    assert inspect("volume", prefix + "-data")["Labels"]["io.dockeroo.demo"] == "true"
    img = inspect("image", image)
    assert img["Config"]["Labels"]["io.dockeroo.demo.greeting"] == "Hello from dockeroo"
    container = docker("create", image, "/nothing").strip()
    try:
        assert docker("cp", container + ":/hello.txt", "-")  # the file is in the image
    finally:
        docker("rm", container)

    again = buildout.ok(*overrides)  # a re-run changes nothing
    assert "nothing to build" in again.output
    assert inspect("image", image)["Id"] == img["Id"]

    gone = buildout.run(*overrides + ["buildout:parts="])
    assert gone.ok, gone.output
    assert inspect("image", image) is None
    assert inspect("volume", prefix + "-data") is None
    assert inspect("network", prefix + "-net") is None
