# proxy_help.py: what the proxy stories (1NN-proxy-*.py) share: starting portshare-proxy, portshare-run and the scripted backend.
import base64
import hashlib
import os
import re
import shutil
import struct
import sys
import threading
import time

from harness import HERE, Proc, check, find_queue, rss_kib, wait_until

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


# ---------------------------------------------------------------- no request waits behind a long one (128, 129)

LONG_COUNT = 4  # long requests per phase, started 0.3 s apart


def sse_stream(connect, host, out):
    """One event stream of 8 events 0.25 s apart from the scripted backend; out gets each
    event's lag (arrival - written)."""
    c = connect()
    c.send(("GET /sse?n=8&gap=0.25 HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
    seen, deadline = 0, time.monotonic() + 10
    for _ in range(10000):
        if seen == 8 or time.monotonic() > deadline or not c._fill(deadline):
            break
        now = time.monotonic()
        found = re.findall(rb"data: (\d+) ([\d.]+)\n\n", bytes(c.buf))
        for _, sent in found[seen:]:
            out.append(now - float(sent))
        seen = len(found)
    c.close()


def slow_reply(connect, host, out):
    """One request the scripted backend answers after 1.5 s; out gets (status, body)."""
    c = connect()
    r = c.request(("GET /slow?s=1.5 HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode(), timeout=10)
    out.append((r.status, r.body))
    c.close()


def long_phase(connect, host, keep, name, long_fn):
    """Starts LONG_COUNT long requests (long_fn(connect, host, results)) 0.3 s apart while the
    keep-alive clients `keep` and new clients (connect()) send quick requests. Checks that
    every quick one was answered 200; returns (longest keep-alive wait, longest new-client
    wait, results of the long ones, keep-alive requests made)."""
    results, threads, failed = [], [], []
    worst_keep = worst_new = 0.0
    count = 0
    t_end = time.monotonic() + 0.3 * LONG_COUNT + 0.5
    for i in range(2000):
        if i % 20 == 0 and len(threads) < LONG_COUNT:
            t = threading.Thread(target=long_fn, args=(connect, host, results), daemon=True)
            t.start()
            threads.append(t)
        if time.monotonic() > t_end:
            break
        req = ("GET /headers?%s=%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (name, i, host)).encode()
        t0 = time.monotonic()
        r = keep[i % len(keep)].request(req, timeout=5)
        worst_keep = max(worst_keep, time.monotonic() - t0)
        count += 1
        if r.status != 200:
            failed.append(("keep-alive", i, r.status))
        if i % 8 == 0:
            t0 = time.monotonic()
            c = connect()
            r = c.request(req, timeout=5)
            c.close()
            worst_new = max(worst_new, time.monotonic() - t0)
            if r.status != 200:
                failed.append(("new", i, r.status))
        time.sleep(0.01)
    for t in threads:
        t.join(15)
    check(not failed, "%s: every keep-alive and new client's request was answered 200 %r" % (name, failed[:5]))
    print("  %s: %d keep-alive requests during %d long ones, longest wait %.3f s; new clients %.3f s"
          % (name, count, len(threads), worst_keep, worst_new))
    return worst_keep, worst_new, results, count


def no_wait_behind_long(d, connect, queue, host="x", wait_max=0.1, keep_count=8):
    """Stories 128 and 129: keep-alive clients kept by the proxy's threads (delegation on),
    then event streams, then slow replies, started on those threads one after another;
    no quick request may wait wait_max or more."""
    keep = [connect() for _ in range(keep_count)]
    warm_req = ("GET /headers?warm HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode()
    warm = [k.request(warm_req).status for _ in range(5) for k in keep]
    check(warm == [200] * len(warm), "the keep-alive clients' first requests answered")
    q = wait_until(lambda: (lambda q: q if q and q.get("delegated", 0) > 0 else None)(
        find_queue(d.status(), queue)), 3, 0.05) or find_queue(d.status(), queue)
    check(q and q.get("delegated", 0) > 0,
          "with no option the proxy serves keep-alive requests itself (delegated %r of %r served)"
          % (q and q.get("delegated"), q and q.get("served")))
    for name, fn, what in (("sse", sse_stream, "the streams"), ("slow", slow_reply, "a slow backend reply")):
        worst_keep, worst_new, results, n = long_phase(connect, host, keep, name, fn)
        check(worst_keep < wait_max, "no keep-alive request waited %.0f ms or more behind %s (longest %.3f s)"
              % (wait_max * 1000, what, worst_keep))
        check(worst_new < wait_max, "no new client waited %.0f ms or more behind %s (longest %.3f s)"
              % (wait_max * 1000, what, worst_new))
        check(n >= 40, "the keep-alive clients went on meanwhile (%d requests)" % n)
        if name == "sse":
            check(len(results) == LONG_COUNT * 8, "every event of the %d streams arrived (%d)"
                  % (LONG_COUNT, len(results)))
            check(results and max(results) < 0.2, "each event arrived within 200 ms of being written "
                  "(longest %.3f s)" % (max(results) if results else -1))
        else:
            check(results == [(200, b"late\n")] * LONG_COUNT, "the slow replies were answered %r" % results)
    q = find_queue(d.status(), queue)
    print("  status: served %r, delegated %r, refused %r" % (q.get("served"), q.get("delegated"), q.get("refused")))
    check(q.get("refused") == 0, "nothing was refused")
    for k in keep:
        k.close()


def given_to_busy_thread(start_proxy, connect, host, rounds=3):
    """Stories 128 and 129: a fresh proxy has one thread. Two slow requests (0.6 s) sent
    together: the first goes to that thread, the second to the receive it posted at once
    (prefetch) while its second thread starts. The busy thread gives the second back
    after 15 ms (REQUEUE) and the other thread serves it: both end after about 0.6 s, not
    1.2 s. Each round stops its proxy."""
    req = ("GET /slow?s=0.6 HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode()
    for i in range(rounds):
        px = start_proxy()
        t0 = time.monotonic()
        c1 = connect()
        c1.send(req)
        c2 = connect()
        c2.send(req)
        r1, r2 = c1.read_response(timeout=5), c2.read_response(timeout=5)
        took = time.monotonic() - t0
        c1.close()
        c2.close()
        check((r1.status, r1.body, r2.status, r2.body) == (200, b"late\n", 200, b"late\n"),
              "round %d: both slow requests answered" % i)
        check(took < 0.9, "round %d: two slow requests sent together to a fresh proxy both ended within 0.9 s "
              "(%.3f s: the second did not wait for the first)" % (i, took))
        px.stop()


# ---- WebSocket, for the echo at backend.py's /ws (stories 103, 136)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(op, data):
    mask = os.urandom(4)
    n = len(data)
    head = bytes([0x80 | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def read_frame(c):
    hdr = c.read_exactly(2, 5)
    if len(hdr) < 2:
        return None, b""
    op, n = hdr[0] & 0x0F, hdr[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.read_exactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.read_exactly(8))[0]
    return op, c.read_exactly(n, 10)


def handshake(s, port, first=b"", tls=None):
    key = base64.b64encode(os.urandom(16))
    c = s.conn(port, timeout=10, tls=tls)
    c.send(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n" + first)
    r = c.read_response(timeout=5)
    want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    return c, r, want
