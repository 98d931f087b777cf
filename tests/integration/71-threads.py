# 71-threads: two event-loop threads: the front thread accepts and checks heads, hands accepted ones to the main thread; reload, bad heads and shutdown reach both.
import signal
import threading
import time
from harness import Story, check, check_eq, check_between, wait_until, hello_body_re

CLIENTS = 8
PER_CLIENT = 40

with Story() as s:
    d = s.daemon(limits={"HeaderWait": 30})
    port = s.free_port()
    s.hello(["http://+:%d/" % port], text="T")
    st = d.status()
    check_eq(len(st["threads"]), 2, "status lists two threads")

    # new connections from several clients at once: every one answered by the app
    results = []
    lock = threading.Lock()

    def client(k):
        got = []
        for i in range(PER_CLIENT):
            try:
                c = s.conn(port)
                r = c.request(b"GET /c%d/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % (k, i))
                got.append((r.status, hello_body_re("T", "/c%d/%d" % (k, i)).search(r.text()) is not None))
                c.close()
            except OSError as e:
                got.append((str(e), False))
        with lock:
            results.extend(got)

    workers = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    total = CLIENTS * PER_CLIENT
    check_eq(len(results), total, "every request came back")
    bad = [r for r in results if r != (200, True)]
    check(not bad, "every request answered 200 by the app with its own path", repr(bad[:5]))
    st = d.status()
    accepted = [t["accepted"] for t in st["threads"]]
    check(sum(accepted) >= total, "accepted counts add up: %r" % accepted)
    check(accepted[1] > 0, "the front thread accepted connections: %r" % accepted)

    # a bad head is answered by whichever thread accepted it, and nothing else breaks
    statuses = []
    for i in range(20):
        c = s.conn(port)
        statuses.append(c.request(b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n").status)
        c.close()
    check_eq(set(statuses), {400}, "20 heads with two Host fields: all 400")
    check_eq(s.get("http://127.0.0.1:%d/after-bad" % port).status, 200, "served after the bad heads")

    # a reload reaches the front thread: the new HeaderWait applies to new connections
    d.write_config(["listen 127.0.0.1", "ShutdownGrace 2", "HeaderWait 1"])
    mark = d.mark()
    d.reload()
    d.wait_log(r"reloaded", since=mark)
    # partial heads until the front thread has taken one (the kernel wakes whichever
    # thread waits; a front thread that never takes one in 40 tries is stuck)
    before = d.status()["threads"][1]["accepted"]
    slow = []
    for i in range(40):
        c = s.conn(port)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        slow.append((c, time.monotonic()))
        time.sleep(0.01)
        if d.status()["threads"][1]["accepted"] > before:
            break
    counts = [t["accepted"] for t in d.status()["threads"]]
    check(counts[1] > before, "the front thread took one of %d slow heads (accepted %r)" % (len(slow), counts))
    for c, t0 in slow:
        r = c.read_response(timeout=5)
        check_eq(r.status, 408, "partial head after the reload: status")
        check_between(round(time.monotonic() - t0, 1), 0.5, 3.0, "408 after the reloaded 1 s header wait (s)")

    # keep-alive across the hand-over: several requests on one connection
    c = s.conn(port)
    for i in range(5):
        r = c.request(b"GET /ka/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        check_eq(r.status, 200, "keep-alive request %d after the hand-over" % i)

    # shutdown with idle connections held on both threads: exit 0, connections closed
    idle = [s.conn(port) for _ in range(10)]
    for c in idle:
        c.send(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq({c.read_response().status for c in idle}, {200}, "10 connections served once, then idle")
    d.expected_exit = True
    d.signal(signal.SIGTERM)
    rc = d.wait(10)
    check_eq(rc, 0, "SIGTERM with connections on both threads: exit status")
    closed = [c.wait_closed(3)[0] for c in idle]
    check(all(h in ("eof", "reset") for h in closed), "every idle connection was closed", repr(closed))

    # a thread count out of range is refused with a clear message
    r = s.run([s.bin("portshared"), "--threads", "9", "--socket", s.path("x.sock")])
    check(r.returncode == 2 and "--threads takes a number from 1 to 4" in r.stderr,
          "--threads 9 refused", r.stderr)
