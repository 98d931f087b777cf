# proxy_help.py: what the proxy stories (1NN-proxy-*.py) share: starting portshare-proxy, portshare-run and the scripted backend.
import os
import shutil
import sys
import threading
import time

from harness import HERE, Proc, check, rss_kib

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


def gunicorn(s):
    """The gunicorn program (Debian package gunicorn, installed by scripts/deps.sh)."""
    path = shutil.which("gunicorn")
    check(path is not None, "gunicorn is installed (Debian package gunicorn; scripts/deps.sh)")
    return path


class RssPeak:
    """Samples a process's RSS every 20 ms (at most 10,000 times) until stop(); `base` is
    the RSS at the start, `peak` the highest seen, both in KiB."""

    def __init__(self, pid):
        self.pid = pid
        self.base = self.peak = rss_kib(pid)
        self.done = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        for _ in range(10000):
            if self.done.is_set():
                return
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def stop(self):
        self.done.set()
        self.t.join(5)
        return self.peak - self.base
