"""A stream into ``docker import`` that fails makes no image.

Docker and Podman both make an image of a stream that ends cleanly between
two tar members (an empty one too), and Podman 4.3 also of what it received
when the client is killed in the middle of the request: the engine spoils
a failed stream before its end (``engine.process.Feed``).
"""

import tarfile
import time

import pytest

from support.engine import docker
from dockeroo.engine.docker import DockerEngine
from dockeroo.engine.errors import DockerError


def images(label):
    return docker("image", "ls", "-aq", "--filter", "label=test=" + label).split()


def no_image_appears(label, seconds=3.0):
    """The engine may make the image after the client has gone: watch a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = images(label)
        if found:
            docker("image", "rm", "-f", *found)
            return found
        time.sleep(0.2)
    return []


def member(name, data):
    """One tar member (header, data, padding), without the end-of-archive blocks."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


class Broken(Exception):
    pass


@pytest.mark.parametrize("written", [0, 1, 2], ids=["nothing", "one-member", "two-members"])
def test_a_writer_that_fails_leaves_no_image(engine, prefix, written):
    """The writer fails after WRITTEN whole members, once the client has sent
    the request (Podman 4.3 made an empty image of a killed client's)."""
    label = "%s-%d" % (prefix, written)

    def writer(out):
        for index in range(written):
            out.write(member("f%d" % index, b"x" * (700 + index)))
        out.flush()
        time.sleep(1.0)  # the client is connected and waits for more
        raise Broken("the source broke")

    with pytest.raises(Broken):
        DockerEngine().feed(["import", "--change", "LABEL test=" + label, "-"], writer,
                            timeout=60)
    assert no_image_appears(label) == []


def test_a_producer_that_fails_leaves_no_image(engine, prefix):
    """``docker cp`` of a missing container fails at once: the import
    behind it received nothing, and must not make an (empty) image of it."""
    label = prefix + "-p"
    with pytest.raises(DockerError):
        DockerEngine().pipe(["cp", prefix + "-missing:/etc", "-"],
                            ["import", "--change", "LABEL test=" + label, "-"],
                            transform=lambda src, out: out.write(src.read()), timeout=60)
    assert no_image_appears(label) == []


def test_a_whole_stream_still_makes_its_image(engine, prefix):
    """The spoiling is for failures only: a stream that ends cleanly is imported."""
    label = prefix + "-w"
    data = member("etc/hello", b"hello\n") + bytes(1024)
    result = DockerEngine().feed(["import", "--change", "LABEL test=" + label, "-"],
                                 lambda out: out.write(data), timeout=60)
    try:
        assert images(label)
        assert result.stdout.strip().split(":")[-1].startswith(images(label)[0])
    finally:
        for image in images(label):
            docker("image", "rm", "-f", image)
