"""A stream into ``docker import`` or ``docker load`` that fails makes no image.

Docker and Podman both make an image of a stream that ends cleanly between
two tar members (an empty one too; ``docker load`` loads an image archive
without its end blocks), and Podman 4.3 also of what it received when the
client is killed in the middle of an import: the engine spoils a failed
stream before its end (``engine.process.Feed``).  With the stream closed
instead of spoiled, the writer and load tests fail on both engines; with
the client killed instead (the code before), the writer tests fail on
Podman and the producer test on both.
"""

import subprocess
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


def test_a_load_whose_writer_fails_at_the_end_loads_nothing(engine, prefix, base_image, tmp_path):
    """``docker load`` of a whole image archive but its end-of-archive blocks,
    whose writer then fails (as a checksum compared at the end does): the
    engine must refuse it, not load the image it holds."""
    ref = prefix + "-loaded:1"
    docker("tag", base_image, ref)
    try:
        archive = tmp_path / "image.tar"
        subprocess.run(["docker", "save", "--output", str(archive), ref], check=True)
    finally:
        docker("image", "rm", ref)
    members = []
    with tarfile.open(str(archive)) as tar:
        for info in tar:
            data = tar.extractfile(info).read() if info.isfile() else b""
            members.append((info, data))

    def writer(out):
        for info, data in members:
            out.write(info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512))
        out.flush()
        time.sleep(1.0)
        raise Broken("the checksum did not match")

    with pytest.raises(Broken):
        DockerEngine().feed(["load"], writer, timeout=60)
    time.sleep(2.0)  # an engine may load it after the client has gone
    assert docker("image", "ls", "--quiet", ref) == ""
