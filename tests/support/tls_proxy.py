"""A TLS front for the local Docker engine, for the engine-selection tests.

Usage: ``python tls_proxy.py CERT_DIR LOG_FILE [UNIX_SOCKET]``

Listens on 127.0.0.1 on a free port (printed on stdout as ``PORT <n>``),
requires a client certificate signed by ``CERT_DIR/ca.pem``, presents
``CERT_DIR/server-cert.pem`` and forwards the decrypted bytes to the
engine's unix socket.  Every accepted connection appends a line to
LOG_FILE: ``ok <peer certificate CN>`` after a successful handshake,
``refused <reason>`` when the handshake fails.  Dockerd itself is never
reconfigured: this is a real TLS endpoint of the same engine.
"""

import os
import select
import signal
import socket
import ssl
import sys
import threading
import time


def relay(tls, upstream):
    """Copy both ways between the client's TLS socket and the engine's unix
    socket, in this one thread: an SSL socket must never be read in one
    thread while another writes or closes it (OpenSSL is not safe for that;
    the proxy died with SIGSEGV when two pump threads shared it).

    The client half-closes its side after sending (``docker exec`` does,
    with no stdin attached) while the response is still streaming: that
    EOF is passed on to the engine with ``shutdown(SHUT_WR)`` and the other
    direction goes on until the engine closes.
    """
    client_open = True
    while True:
        if client_open and tls.pending():  # decrypted bytes select() cannot see
            ready = [tls]
        else:
            ready = select.select([upstream] + ([tls] if client_open else []), [], [])[0]
        for src in ready:
            try:
                data = src.recv(65536)
            except ssl.SSLWantReadError:  # a partial TLS record: wait for the rest
                continue
            except OSError:
                data = b""
            if src is upstream:
                if not data:
                    return
                tls.sendall(data)
            elif data:
                upstream.sendall(data)
            else:
                client_open = False
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass


def serve_one(conn, context, unix_path, log):
    try:
        tls = context.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as exc:
        log("refused %s" % exc.__class__.__name__ + " " + str(exc).replace("\n", " "))
        conn.close()
        return
    subject = dict(item[0] for item in tls.getpeercert().get("subject", ()))
    log("ok %s" % subject.get("commonName", "?"))
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            upstream.connect(unix_path)
        except OSError as exc:
            log("upstream-failed %s" % exc)
            return
        relay(tls, upstream)
    except OSError:  # a side went away mid-stream: the connection ends
        pass
    finally:
        for s in (tls, upstream):
            try:
                s.close()
            except OSError:
                pass


def main():
    cert_dir, log_path = sys.argv[1], sys.argv[2]
    unix_path = sys.argv[3] if len(sys.argv) > 3 else "/var/run/docker.sock"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(os.path.join(cert_dir, "server-cert.pem"),
                            os.path.join(cert_dir, "server-key.pem"))
    context.load_verify_locations(os.path.join(cert_dir, "ca.pem"))
    lock = threading.Lock()

    def log(line):
        with lock, open(log_path, "a") as handle:
            handle.write(line + "\n")

    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    print("PORT %d" % server.getsockname()[1], flush=True)
    # stopped by SIGTERM only: a signal meant for a process group it shares
    # (a shell's Ctrl-C, a hang-up) does not take the tests' endpoint away
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    while True:
        try:
            conn, _ = server.accept()
        except OSError as exc:  # out of descriptors, a connection aborted early
            log("accept-failed %s" % exc)
            time.sleep(0.05)
            continue
        threading.Thread(target=serve_one, args=(conn, context, unix_path, log),
                         daemon=True).start()


if __name__ == "__main__":
    main()
