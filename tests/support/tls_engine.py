"""A second engine endpoint: the engine behind a TLS proxy (tls_proxy.py) with
its own CA, client certificates, a wrong CA, and a docker-machine store
with a stand-in docker-machine (docker-machine) for machine ``MACHINE``."""

import os
import shutil
import subprocess
import sys
import warnings

from support.buildout import HERE

SUPPORT = os.path.join(HERE, "support")
MACHINE = "testmachine"


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(folder, cn):
    os.makedirs(folder, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=" + cn,
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)


def _make_cert(ca_dir, folder, stem, cn, extensions):
    os.makedirs(folder, exist_ok=True)
    key, csr, ext = stem + "key.pem", stem + ".csr", stem + ".ext"
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, cwd=folder)
    with open(os.path.join(folder, ext), "w") as handle:
        handle.write(extensions)
    _openssl("x509", "-req", "-in", csr, "-CA", os.path.join(ca_dir, "ca.pem"),
             "-CAkey", os.path.join(ca_dir, "ca-key.pem"),
             "-set_serial", "0x" + os.urandom(8).hex(), "-out", stem + "cert.pem",
             "-days", "2", "-extfile", ext, cwd=folder)
    os.unlink(os.path.join(folder, csr))
    os.unlink(os.path.join(folder, ext))


class TLSEndpoint:
    def __init__(self, root):
        self.root = root
        self.ca = os.path.join(root, "ca")
        self.server = os.path.join(root, "server")
        self.client = os.path.join(root, "client")  # ca.pem cert.pem key.pem
        self.wrong = os.path.join(root, "wrong-ca")  # a client dir trusting another CA
        self.store = os.path.join(root, "machine-store")
        self.bin = os.path.join(root, "bin")
        self.proxy_log = os.path.join(root, "proxy.log")
        self.proc = None
        self.port = None

    def build(self):
        _make_ca(self.ca, "dockeroo-test-ca")
        _make_cert(self.ca, self.server, "server-", "127.0.0.1",
                   "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        shutil.copy(os.path.join(self.ca, "ca.pem"), self.server)
        _make_cert(self.ca, self.client, "", "dockeroo-client", "extendedKeyUsage=clientAuth\n")
        shutil.copy(os.path.join(self.ca, "ca.pem"), self.client)
        other = os.path.join(self.root, "other-ca")
        _make_ca(other, "some-other-ca")
        os.makedirs(self.wrong)
        shutil.copy(os.path.join(other, "ca.pem"), self.wrong)
        for name in ("cert.pem", "key.pem"):
            shutil.copy(os.path.join(self.client, name), self.wrong)
        # a docker-machine store laid out like the real one
        certs = os.path.join(self.store, "certs")
        mdir = os.path.join(self.store, "machines", MACHINE)
        os.makedirs(certs)
        os.makedirs(mdir)
        for folder in (certs, mdir):
            for name in ("ca.pem", "cert.pem", "key.pem"):
                shutil.copy(os.path.join(self.client, name), folder)
        shutil.copy(os.path.join(self.ca, "ca-key.pem"), certs)
        shutil.copy(os.path.join(self.server, "server-cert.pem"), os.path.join(mdir, "server.pem"))
        shutil.copy(os.path.join(self.server, "server-key.pem"), mdir)
        os.makedirs(self.bin)
        os.symlink(os.path.join(SUPPORT, "docker-machine"), os.path.join(self.bin, "docker-machine"))

    def start(self):
        self.stderr = os.path.join(self.root, "proxy.stderr")
        with open(self.stderr, "a") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(SUPPORT, "tls_proxy.py"), self.server,
                 self.proxy_log], stdout=subprocess.PIPE, stderr=errors, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError("TLS proxy did not start: %s %s" % (line, self.errors()))
        self.port = int(line.split()[1])

    def errors(self):
        with open(self.stderr) as handle:
            return handle.read()

    def ensure_running(self):
        """Start the proxy again if it is gone (it is the tests' scaffolding,
        not what they test), with a warning giving its exit status and stderr."""
        if self.proc.poll() is None:
            return
        warnings.warn("the TLS proxy had exited (status %s): %s; started again"
                      % (self.proc.returncode, self.errors().strip() or "no output"))
        self.start()

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port

    def proxy_lines(self):
        try:
            with open(self.proxy_log) as handle:
                return handle.read().splitlines()
        except FileNotFoundError:
            return []

    def accepted(self):
        return sum(1 for line in self.proxy_lines() if line.startswith("ok "))

    def refused(self):
        return sum(1 for line in self.proxy_lines() if line.startswith("refused "))

    def env(self, log, forbid=False, **extra):
        env = {
            "PATH": self.bin + os.pathsep + os.environ["PATH"],
            "MACHINE_STORAGE_PATH": self.store,
            "DM_STANDIN_URL": self.url,
            "DM_STANDIN_LOG": str(log),
        }
        if forbid:
            env["DM_STANDIN_FORBID"] = "1"
        env.update(extra)
        return env
