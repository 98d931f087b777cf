# 20-worker-killed: kill -9 a worker: its queue and URLs vanish (404), the other app still serves; the last one gone closes the port. Also with PORTSHARE_DEFAULTS=1.
from harness import Story, check, check_eq, wait_until, listening, find_queue, body_pid

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="a")
    b = s.hello(["http://+:%d/b/" % port], text="b")
    for host in s.hosts:
        check_eq(s.get(s.url(port, "/a/x", host)).status, 200, "/a/x on %s served before the kill" % host)
    check(sorted(listening(port)) == sorted(s.bound), "port %d is listening on %s only" % (port, " and ".join(s.bound)),
          repr(listening(port)))

    a.kill9()
    base = s.url(port, "", s.hosts[0])
    st = wait_until(lambda: s.get(base + "/a/x").status == 404, 5, 0.1)
    check(st, "after kill -9 of /a/'s worker, /a/x is 404 within 5 s", "status %d" % s.get(base + "/a/x").status)
    for host in s.hosts:
        check_eq(s.get(s.url(port, "/a/x", host)).status, 404, "/a/x on %s: 404" % host)
        r = s.get(s.url(port, "/b/x", host))
        check(r.status == 200 and body_pid(r.body) == b.pid, "/b/x on %s still served by b" % host, repr(r))
    check(find_queue(d.status(), a.queue) is None, "status no longer lists queue %s" % a.queue)

    b.kill9()
    gone = wait_until(lambda: not listening(port), 5, 0.1)
    check(gone, "after the last worker died, port %d is no longer listening (ss -ltn)" % port, repr(listening(port)))
    check(find_queue(d.status(), b.queue) is None, "status no longer lists queue %s" % b.queue)
    for host in s.hosts:
        r = s.get(s.url(port, "/b/x", host), timeout=5)
        check_eq(r.status, 0, "a new connection to %s port %d is refused" % (host, port))
