# 80-delegation-keepalive: 200 keep-alive requests on one connection are served by the worker alone ("delegated"), the connection stays with it; a second app is unaffected; PORTSHARE_DELEGATION=0 turns it off. Also with PORTSHARE_DEFAULTS=1 (then over ::1 too).
import time
from harness import Story, Proc, check, check_eq, find_queue, get_req, hello_body_re, body_pid, wait_until

N = 200


def worker(s, urls, text, env_extra=None):
    """testworker (serve mode) with extra environment; waits for its ready line."""
    argv = [s.bin("testworker"), "--socket", s.daemons[-1].sock, "--text", text]
    for u in urls:
        argv += ["--url", u]
    env = dict(s.env)
    env.update(env_extra or {})
    return Proc(s, argv, "testworker-" + text, env).ready()


def run_keepalive(s, d, port, app, text, prefix, host="127.0.0.1"):
    """N requests on one connection to host; every answer checked. Returns the connection."""
    c = s.conn(port, host)
    bad = []
    for i in range(N):
        path = "%s%d" % (prefix, i)
        r = c.request(get_req(path))
        if r.status != 200 or not hello_body_re(text, path).match(r.text()) or body_pid(r.body) != app.pid:
            bad.append((i, r))
            if len(bad) > 3:
                break
    check(not bad, "%d keep-alive requests on one connection to %s on %s: all 200 from pid %d with the right body"
          % (N, prefix, host, app.pid), "first bad answers: %r" % bad[:3])
    return c


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = worker(s, ["http://+:%d/a/" % port], "A")
    b = worker(s, ["http://+:%d/b/" % port], "B")

    st = d.status()
    check_eq(st.get("connections_in_workers"), 0, "no connection in a worker before the test")
    served_b0 = find_queue(st, b.queue).get("served")

    # --- delegation on (the route snapshot is published after 20 ms without changes: a
    # request before it goes through the daemon, and on a loaded machine 10 of them fit)
    time.sleep(0.2)
    c = run_keepalive(s, d, port, a, "A", "/a/")
    st = d.status()
    qa = find_queue(st, a.queue)
    say_counts = "served %r, delegated %r" % (qa.get("served"), qa.get("delegated"))
    print("  queue A right after: %s, connections_in_workers %r" % (say_counts, st.get("connections_in_workers")))
    check(isinstance(qa.get("delegated"), int) and qa.get("delegated") >= N - 10,
          "queue A: at least %d of %d requests served by the worker alone (%s)" % (N - 10, N, say_counts))
    check(isinstance(qa.get("served"), int) and N - 1 <= qa.get("served") <= N,
          "queue A: served counts them all (%d..%d; the first is counted when the daemon gets the connection back)"
          % (N - 1, N), say_counts)
    check_eq(st.get("connections_in_workers"), 1, "right after the last response the connection is still in the worker")

    # the other app, on its own connection, meanwhile: unaffected
    cb = s.conn(port)
    for i in range(5):
        r = cb.request(get_req("/b/%d" % i))
        check(r.status == 200 and hello_body_re("B", "/b/%d" % i).match(r.text()) is not None and body_pid(r.body) == b.pid,
              "B (another prefix, another connection) answers /b/%d" % i, repr(r))
    # and A's delegated connection still works after B's traffic
    r = c.request(get_req("/a/after-b"))
    check(r.status == 200 and body_pid(r.body) == a.pid, "A's connection still answered by A after B's requests", repr(r))
    cb.close()
    c.close()

    def settled():
        st = d.status()
        qa, qb = find_queue(st, a.queue), find_queue(st, b.queue)
        if st.get("connections_in_workers") == 0 and qa.get("served") == N + 1 and qb.get("served") == served_b0 + 5:
            return st
        return None
    st = wait_until(settled, 3, 0.1)
    if not st:
        st = d.status()
    qa, qb = find_queue(st, a.queue), find_queue(st, b.queue)
    check_eq(qa.get("served"), N + 1, "after both connections closed: queue A served exactly %d (no double count)" % (N + 1))
    check_eq(qb.get("served"), served_b0 + 5, "queue B served exactly its 5 requests")
    check(qb.get("delegated", 0) <= 5, "queue B delegated count (%r) only counts B's requests" % qb.get("delegated"))
    check_eq(st.get("connections_in_workers"), 0, "no connection left in a worker after the clients closed")

    # the same over the other loopback(s) (the default configuration listens on both)
    for host in s.hosts[1:]:
        before = find_queue(d.status(), a.queue).get("delegated")
        c = run_keepalive(s, d, port, a, "A", "/a/", host)
        after = find_queue(d.status(), a.queue).get("delegated")
        check(after - before >= N - 10, "over %s: at least %d of %d requests served by the worker alone (delegated %d -> %d)"
              % (host, N - 10, N, before, after))
        c.close()

    # --- the same with delegation turned off in the worker's environment
    a.stop()
    check(wait_until(lambda: find_queue(d.status(), a.queue) is None, 3, 0.1), "queue A gone after its worker stopped")
    a0 = worker(s, ["http://+:%d/a/" % port], "A0", {"PORTSHARE_DELEGATION": "0"})
    c = run_keepalive(s, d, port, a0, "A0", "/a/")
    # (the library sends RETURN right after writing a response: allow the daemon a moment for it)
    st = wait_until(lambda: (lambda st: st if st.get("connections_in_workers") == 0 else None)(d.status()), 0.5, 0.05) \
        or d.status()
    q0 = find_queue(st, a0.queue)
    check_eq(q0.get("delegated"), 0, "PORTSHARE_DELEGATION=0: delegated count of the queue")
    check(q0.get("served") == N, "PORTSHARE_DELEGATION=0: served %r (want %d, every request via the daemon)"
          % (q0.get("served"), N))
    check_eq(st.get("connections_in_workers"), 0,
             "PORTSHARE_DELEGATION=0: between requests the connection is back in the daemon")
    r = c.request(get_req("/b/from-a0-conn"))
    check(r.status == 200 and body_pid(r.body) == b.pid, "PORTSHARE_DELEGATION=0: same connection then reaches B", repr(r))
    c.close()
