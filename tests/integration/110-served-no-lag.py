# 110-served-no-lag: status's "served" counts a delegated connection's requests as their responses end, while the worker still holds the connection (the first one, which the daemon delivered, too); closing it adds nothing. Also with PORTSHARE_DEFAULTS=1.
from harness import Story, Proc, check, check_eq, find_queue, get_req, wait_until

N = 7  # keep-alive requests on one connection

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = Proc(s, [s.bin("testworker"), "--socket", d.sock, "--queue", "q110", "--text", "T110",
                 "--url", "http://+:%d/n/" % port], "testworker").ready()
    c = s.conn(port)
    for i in range(N):
        r = c.request(get_req("/n/%d" % i))
        check_eq(r.status, 200, "request %d answered" % i)
        served = wait_until(lambda: (lambda q: q if q and q.get("served") == i + 1 else None)(
            find_queue(d.status(), "q110")), 3, 0.05)
        q = served or find_queue(d.status(), "q110")
        check_eq(q.get("served"), i + 1, "after response %d, with the connection still open, served counts it" % (i + 1))
    q = find_queue(d.status(), "q110")
    print("  connection open: served %r delegated %r" % (q.get("served"), q.get("delegated")))
    # most of them; one may go through the daemon if the route snapshot came late
    check(0 < q.get("delegated") <= N - 1, "requests after the first were served by the worker alone (%r of %d)"
          % (q.get("delegated"), N - 1))
    c.close()
    # the connection's end must not count the first request again
    wait_until(lambda: False, 0.5, 0.1)
    q = find_queue(d.status(), "q110")
    check_eq(q.get("served"), N, "after the connection closed, served is still %d (nothing counted twice)" % N)
    w.kill9()
    check(wait_until(lambda: not find_queue(d.status(), "q110") or not find_queue(d.status(), "q110").get("workers"),
                     3, 0.05), "the daemon saw the worker go")
    q = find_queue(d.status(), "q110")
    if q:
        check_eq(q.get("served"), N, "after the worker was killed, served is still %d" % N)
