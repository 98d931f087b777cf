# 50-daemon-restart: SIGTERM lets an in-flight request finish and exits 0; a new daemon on the same socket and state dir gets the running apps back.
import signal
import time
from harness import Story, check, check_eq, body_pid, listening, wait_until

with Story() as s:
    d1 = s.daemon(limits={"ShutdownGrace": 3})
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="A")
    b = s.hello(["http://+:%d/b/" % port], text="B")
    w = s.testworker(["http://+:%d/w/" % port], text="W")
    base = "http://127.0.0.1:%d" % port
    for app, path in ((a, "/a/1"), (b, "/b/1"), (w, "/w/1")):
        r = s.get(base + path)
        check(r.status == 200 and body_pid(r.body) == app.pid, "%s served before the restart" % path, repr(r))

    # a request in flight: head and half the body sent, the worker is reading the rest
    c = s.conn(port)
    c.send(b"POST /w/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    time.sleep(0.3)
    d1.expected_exit = True
    t_term = time.monotonic()
    d1.signal(signal.SIGTERM)
    time.sleep(0.5)
    check(d1.alive(), "after SIGTERM the daemon waits for the request in flight")
    check(wait_until(lambda: not listening(port), 2), "and stops accepting: port %d no longer listening" % port,
          repr(listening(port)))
    c.send(b"67890")
    r = c.read_response(timeout=5)
    check(r.status == 200 and r.body == ("W pid=%d path=/w/slow body=10\n" % w.pid).encode(),
          "the in-flight request completes after SIGTERM", repr(r))
    rc = d1.wait(6)
    check_eq(rc, 0, "daemon exit status after SIGTERM")
    check(time.monotonic() - t_term < 4.0, "it exited within the 3 s grace period (%.1f s after SIGTERM)"
          % (time.monotonic() - t_term))
    c.close()

    t0 = time.monotonic()
    d2 = s.daemon(sock=d1.sock, state_dir=d1.state_dir, name="portshared-2")

    def all_back():
        rs = [(app, s.get(base + path, timeout=4)) for app, path in ((a, "/a/2"), (b, "/b/2"), (w, "/w/2"))]
        return all(r.status == 200 and body_pid(r.body) == app.pid for app, r in rs)

    back = wait_until(all_back, 10, 0.2)
    check(back, "all three prefixes answered again by the same apps within 10 s (%.1f s)" % (time.monotonic() - t0))
    check(a.alive() and b.alive() and w.alive(), "the apps were not restarted")
    st = d2.status()
    check_eq(st.get("pid"), d2.pid, "status comes from the new daemon")
