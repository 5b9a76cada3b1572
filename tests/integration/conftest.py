"""Fixtures of the integration tests (helpers: tests/support): a second engine
endpoint behind TLS, and archives served over HTTP."""

import http.server
import lzma
import os
import shutil
import subprocess
import threading

import pytest

from support.busybox import busybox_rootfs_tar
from support.tls_engine import TLSEndpoint
from support.www import Served, tar_bytes


@pytest.fixture(scope="module")
def tls_endpoint(engine, tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.fail("openssl is needed (apt-get install openssl)")
    endpoint = TLSEndpoint(str(tmp_path_factory.mktemp("tls")))
    endpoint.build()
    endpoint.start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def tls(tls_endpoint):
    """The module's TLS endpoint, running when the test starts."""
    tls_endpoint.ensure_running()
    yield tls_endpoint
    if tls_endpoint.proc.poll() is not None:  # gone during the test: say why
        print("TLS proxy exited during the test (status %s): %s"
              % (tls_endpoint.proc.returncode, tls_endpoint.errors()))


@pytest.fixture(scope="module")
def www(engine, tmp_path_factory):
    """rootfs.tar.gz (busybox), rootfs.tar.zst, extra.tar.xz, served from 127.0.0.1."""
    root = str(tmp_path_factory.mktemp("www"))
    rootfs = os.path.join(root, "rootfs.tar")
    busybox_rootfs_tar(rootfs)
    subprocess.run(["gzip", "-k", "-n", rootfs], check=True)
    if shutil.which("zstd"):
        subprocess.run(["zstd", "-q", "-k", rootfs], check=True)
    os.unlink(rootfs)
    with open(os.path.join(root, "extra.tar.xz"), "wb") as handle:
        handle.write(lzma.compress(tar_bytes({"hello.txt": b"hello from xz\n",
                                              "sub/data": b"data\n"})))
    served = None

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=root, **kwargs)

        def log_message(self, *args):
            served.requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = Served(root, server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()
