# proxy_help.py: what the proxy stories (1NN-proxy-*.py) share: starting portshare-proxy, portshare-run and the scripted backend.
import os
import socket
import sys

from harness import HERE, Proc, fail

PROXY_READY = r"ready queue=(\S+)"


def backend(s, where=None, name="backend"):
    """The scripted backend (backend.py) on a free loopback port, or on unix:/path; returns
    (Proc, port or path)."""
    where = where or str(s.free_port())
    p = Proc(s, [sys.executable, os.path.join(HERE, "backend.py"), where], name)
    p.wait_for(r"backend: ready", timeout=10)
    return p, where


def proxy(s, urls, backend_spec, queue="px", extra=(), ready=True):
    argv = [s.bin("portshare-proxy"), "--socket", s.daemons[-1].sock, "--queue", queue, "--backend", backend_spec]
    for u in urls:
        argv += ["--url", u]
    argv += list(extra)
    p = Proc(s, argv, "proxy")
    if ready:
        p.wait_for(PROXY_READY, timeout=10)
    return p


def run(s, urls, command, extra=(), ready=True, timeout=20):
    argv = [s.bin("portshare-run"), "--socket", s.daemons[-1].sock]
    for u in urls:
        argv += ["--url", u]
    argv += list(extra) + ["--"] + list(command)
    p = Proc(s, argv, "portshare-run")
    if ready:
        p.wait_for(PROXY_READY, timeout=timeout)
    return p


def connections_seen(p):
    """How many connections the scripted backend accepted so far."""
    return p.stdout().count("backend: connection ")


def raw(port, data, timeout=5.0, host="127.0.0.1"):
    """Sends data on a new connection and reads until the server closes or timeout; returns bytes."""
    c = socket.create_connection((host, port), timeout=timeout)
    try:
        c.sendall(data)
        out = b""
        for _ in range(100000):
            try:
                b = c.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                out += b"<RESET>"
                break
            if not b:
                break
            out += b
        return out
    finally:
        c.close()


def ps_of(p):
    if not p.alive():
        fail("%s (pid %d) is not running" % (p.name, p.pid))
    return p
