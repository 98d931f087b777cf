# 102-proxy-streams: server-sent events flow through portshare-proxy as they are written (each event within 200 ms of the backend writing it, before the next is written); long polls are answered when the backend answers; while more long requests are in progress than the proxy had threads, keep-alive and new clients are still served at once (more threads start, and no connection waits with a busy one).
import re
import threading
import time
from harness import Story, check, check_eq, get_req
from proxy_help import backend, proxy

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    px = proxy(s, ["http://+:%d/" % port], "http://127.0.0.1:%s" % bport, extra=["--threads", "16"])

    # SSE: 6 events 0.4 s apart; each carries the monotonic time it was written
    c = s.conn(port)
    c.send(get_req("/sse?n=6&gap=0.4"))
    arrivals, data = [], b""
    deadline = time.monotonic() + 10
    for _ in range(10000):
        if len(arrivals) == 6 or time.monotonic() > deadline:
            break
        if not c._fill(deadline):
            break
        now = time.monotonic()
        for m in re.finditer(rb"data: (\d+) ([\d.]+)\n\n", bytes(c.buf)[len(data):]):
            arrivals.append((int(m.group(1)), float(m.group(2)), now))
        data = bytes(c.buf)
        if re.search(rb"data: \d+ [\d.]+\n\n$", data) is None:
            data = data[:data.rfind(b"\n\n") + 2] if b"\n\n" in data else b""
    check(data.startswith(b"HTTP/1.1 200 ") and b"text/event-stream" in data, "the event stream's head", repr(data[:200]))
    check_eq([a[0] for a in arrivals], list(range(6)), "all 6 events arrived, in order")
    lags = [round(now - sent, 3) for _, sent, now in arrivals]
    check(all(l < 0.2 for l in lags), "each event arrived within 200 ms of being written (%s s)" % lags)
    check(all(arrivals[i][2] < arrivals[i + 1][1] for i in range(5)),
          "each event arrived before the next was written (nothing held back)")
    c.close()

    # a keep-alive client served first, so its connection may sit with a proxy thread
    k = s.conn(port)
    for i in range(5):
        r = k.request(get_req("/headers?k=%d" % i))
        check_eq(r.status, 200, "keep-alive request %d before the long polls" % i)

    # three long polls (2 s each), more than the two threads the proxy starts with
    results = []

    def long_poll(i):
        t0 = time.monotonic()
        lc = s.conn(port, timeout=10)
        r = lc.request(get_req("/slow?s=2&i=%d" % i), timeout=10)
        results.append((r.status, r.body, time.monotonic() - t0))
        lc.close()

    threads = [threading.Thread(target=long_poll, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.8)
    for i in range(3):
        t0 = time.monotonic()
        r = k.request(get_req("/headers?during=%d" % i), timeout=5)
        took = time.monotonic() - t0
        check(r.status == 200 and took < 0.5, "keep-alive request %d during the long polls answered in %.2f s"
              % (i, took))
        t0 = time.monotonic()
        r = s.get(s.url(port, "/headers?new=%d" % i))
        took = time.monotonic() - t0
        check(r.status == 200 and took < 0.5, "a new client during the long polls answered in %.2f s" % took)
    for t in threads:
        t.join(10)
    check(len(results) == 3 and all(st == 200 and body == b"late\n" and 1.9 < took < 4 for st, body, took in results),
          "the long polls got their answers after 2 s", repr(results))
    k.close()
    check(px.alive(), "the proxy is still running")
