# 42-many-connections: 10,000 client connections open at once, each with one request answered 200; afterwards the daemon's fds and memory go back to where they were.
import errno
import resource
import selectors
import socket
import time
from harness import (Story, check, check_eq, fd_count, get_req, parse_response, Incomplete, BadResponse, rss_kib, say,
                     wait_until)

N = 10000
SOURCES = ["127.0.0.%d" % i for i in range(2, 12)]  # 1,000 connections per source address
IN_FLIGHT = 500  # connections opened and not answered yet, at most
TIME_LIMIT = 60.0
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # <linux/in.h>


def raise_fd_limit():
    """Raises this process's soft fd limit to the hard one; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Client:
    __slots__ = ("sock", "out", "buf", "status", "eof")

    def __init__(self, sock, request):
        self.sock = sock
        self.out = request
        self.buf = bytearray()
        self.status = None
        self.eof = False


def open_all(port, n):
    """Opens n connections (at most IN_FLIGHT unanswered at a time), sends one request on
    each and reads its answer, keeping every connection open. Returns the clients."""
    sel = selectors.DefaultSelector()
    clients, opened, answered = [], 0, 0
    deadline = time.monotonic() + TIME_LIMIT
    for _ in range(100 * n):
        if answered == n or time.monotonic() > deadline:
            break
        while opened < n and opened - answered < IN_FLIGHT:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)  # the port is picked at connect
            sock.bind((SOURCES[opened % len(SOURCES)], 0))
            sock.setblocking(False)
            rc = sock.connect_ex(("127.0.0.1", port))
            if rc not in (0, errno.EINPROGRESS):
                raise OSError(rc, "connect %d: %s" % (opened, errno.errorcode.get(rc, rc)))
            c = Client(sock, get_req("/m/%d" % opened))
            clients.append(c)
            sel.register(sock, selectors.EVENT_WRITE, c)
            opened += 1
        for key, events in sel.select(timeout=1.0):
            c = key.data
            if events & selectors.EVENT_WRITE:
                try:
                    sent = c.sock.send(c.out)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    c.status, c.eof = -1, True
                    sel.unregister(c.sock)
                    answered += 1
                    continue
                c.out = c.out[sent:]
                if not c.out:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                chunk = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            c.buf += chunk
            c.eof = not chunk
            try:
                r, _ = parse_response(bytes(c.buf), "GET", c.eof)
                c.status = r.status
            except Incomplete:
                if not c.eof:
                    continue
                c.status = -1
            except BadResponse:
                c.status = -2
            sel.unregister(c.sock)
            answered += 1
    sel.close()
    return clients


with Story(time_limit=110) as s:
    hard = raise_fd_limit()
    if hard < N + 200:  # a machine with a low hard limit: as many as it allows
        N = hard - 200
        say("  RLIMIT_NOFILE hard limit %d: %d connections only" % (hard, N))
    check(N >= 1000, "this process may open at least 1,000 sockets (RLIMIT_NOFILE %d)" % hard)
    d = s.daemon()
    port = s.free_port()
    app = s.hello(["http://+:%d/m/" % port], text="m")
    check_eq(s.get("http://127.0.0.1:%d/m/warm" % port).status, 200, "the app answers")
    time.sleep(0.2)
    fds0, rss0, app_fds0 = d.fds(), rss_kib(d.pid), fd_count(app.pid)
    with open("/proc/%d/limits" % d.pid) as f:
        limit = [l for l in f if l.startswith("Max open files")][0].split()[3]
    say("  daemon at the start: %d fds, RSS %d KiB, fd limit %s" % (fds0, rss0, limit))

    t0 = time.monotonic()
    clients = open_all(port, N)
    took = time.monotonic() - t0
    by = {}
    for c in clients:
        by[c.status] = by.get(c.status, 0) + 1
    open_now = sum(1 for c in clients if not c.eof)
    peak_fds, peak_rss = d.fds(), rss_kib(d.pid)
    say("  %d connections, answers by status %r in %.1f s; %d still open" % (len(clients), by, took, open_now))
    say("  daemon with all of them open: %d fds, RSS %d KiB" % (peak_fds, peak_rss))
    check_eq(len(clients), N, "%d connections opened" % N)
    if int(limit) >= N + fds0 + 100:
        check_eq(by, {200: N}, "every one of the %d requests answered 200" % N)
    else:  # a daemon with fewer fds must refuse cleanly
        check(set(by) <= {200, 503}, "every request answered 200 or 503", repr(by))
    check(open_now == N, "all %d connections open at once (keep-alive)" % N, "%d open" % open_now)
    check(peak_fds >= fds0 + N, "the daemon holds one fd per connection (%d)" % peak_fds)
    check_eq(s.get("http://127.0.0.1:%d/m/during" % port).status, 200, "a new request is served meanwhile")

    t1 = time.monotonic()
    for c in clients:
        c.sock.close()
    back = wait_until(lambda: d.fds() <= fds0, 20, 0.1)
    after_fds = d.fds()
    time.sleep(0.5)
    after_rss = rss_kib(d.pid)
    say("  after closing them: daemon %d fds (start %d) within %.1f s, RSS %d KiB (start %d, peak %d)"
        % (after_fds, fds0, time.monotonic() - t1, after_rss, rss0, peak_rss))
    check(back, "daemon fds back to %d after the clients closed (now %d)" % (fds0, after_fds))
    check(wait_until(lambda: fd_count(app.pid) <= app_fds0, 5, 0.1),
          "the app's fds back to %d too (now %d)" % (app_fds0, fd_count(app.pid)))
    # Nothing grows once they are closed. What RSS keeps above the start is memory malloc
    # holds in its free lists (the daemon's heap in use after this run is ~170 KiB; a
    # malloc_trim gives the rest back); a leak of a few KiB per connection would show.
    # (ASan's quarantine keeps freed memory resident on purpose: no RSS check there, its
    # leak checker looks at the heap itself when the daemon exits)
    if not s.sanitizer:
        check(after_rss <= peak_rss + 512, "daemon RSS does not grow after the connections close (%d KiB, peak %d)"
              % (after_rss, peak_rss))
        check(after_rss - rss0 <= 32 * 1024, "daemon RSS within 32 MiB of the start: %d KiB more" % (after_rss - rss0))
    check_eq(s.get("http://127.0.0.1:%d/m/after" % port).status, 200, "the app still answers")
    check(d.alive() and app.alive(), "daemon and app still running")
