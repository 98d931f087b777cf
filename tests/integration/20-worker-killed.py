# 20-worker-killed: kill -9 a worker: its queue and URLs vanish (404), the other app still serves; the last one gone closes the port.
from harness import Story, check, check_eq, wait_until, listening, find_queue, body_pid

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="a")
    b = s.hello(["http://+:%d/b/" % port], text="b")
    base = "http://127.0.0.1:%d" % port
    check_eq(s.get(base + "/a/x").status, 200, "/a/x served before the kill")
    check(listening(port) == ["127.0.0.1"], "port %d is listening on 127.0.0.1 only" % port, repr(listening(port)))

    a.kill9()
    st = wait_until(lambda: s.get(base + "/a/x").status == 404, 5, 0.1)
    check(st, "after kill -9 of /a/'s worker, /a/x is 404 within 5 s", "status %d" % s.get(base + "/a/x").status)
    r = s.get(base + "/b/x")
    check(r.status == 200 and body_pid(r.body) == b.pid, "/b/x still served by b", repr(r))
    check(find_queue(d.status(), a.queue) is None, "status no longer lists queue %s" % a.queue)

    b.kill9()
    gone = wait_until(lambda: not listening(port), 5, 0.1)
    check(gone, "after the last worker died, port %d is no longer listening (ss -ltn)" % port, repr(listening(port)))
    check(find_queue(d.status(), b.queue) is None, "status no longer lists queue %s" % b.queue)
    r = s.get(base + "/b/x", timeout=5)
    check_eq(r.status, 0, "a new connection to port %d is refused" % port)
