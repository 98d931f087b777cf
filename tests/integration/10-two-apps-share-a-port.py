# 10-two-apps-share-a-port: two hello apps share one port under /a/ and /b/; status lists both; /c is 404; keep-alive across both. Also with PORTSHARE_DEFAULTS=1.
from harness import Story, check, check_eq, find_queue, hello_body_re, body_pid, listening

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="app-a")
    b = s.hello(["http://+:%d/b/" % port], text="app-b")
    check_eq(sorted(listening(port)), sorted(s.bound), "port %d is bound on %s" % (port, " and ".join(s.bound)))

    for host in s.hosts:
        for app, path, text in ((a, "/a/x", "app-a"), (b, "/b/y/z", "app-b")):
            r = s.get(s.url(port, path, host))
            check_eq(r.status, 200, "GET %s on %s status" % (path, host))
            check(hello_body_re(text, path).match(r.text()) is not None and body_pid(r.body) == app.pid,
                  "GET %s on %s answered by %s (pid %d)" % (path, host, text, app.pid), "body %r" % r.body)

    st = d.status()
    for app, prefix in ((a, "/a/"), (b, "/b/")):
        q = find_queue(st, app.queue)
        check(q is not None, "status --json lists queue %s" % app.queue, "queues: %r" % st.get("queues"))
        url = "http://+:%d%s" % (port, prefix)
        check(url in q.get("urls", []), "queue %s has url %s" % (app.queue, url), "urls %r" % q.get("urls"))
        pids = [w.get("pid") for w in q.get("workers", [])]
        check(app.pid in pids, "queue %s lists worker pid %d" % (app.queue, app.pid), "workers %r" % pids)

    for host in s.hosts:
        r = s.get(s.url(port, "/c", host))
        check_eq(r.status, 404, "GET /c (no prefix) on %s status" % host)
        r = s.get(s.url(port, "/ab", host))
        check_eq(r.status, 404, "GET /ab (not under /a/) on %s status" % host)

        # one curl invocation, two URLs: the second must reuse the first connection
        p1, p2 = s.path("k1"), s.path("k2")
        r = s.curl(["-o", p1, "-o", p2, "-w", "%{http_code} %{num_connects}\\n", s.url(port, "/a/k1", host),
                    s.url(port, "/b/k2", host)])
        check_eq(r.returncode, 0, "curl with two URLs on %s exit status" % host)
        lines = r.stdout.split()
        check_eq(lines, ["200", "1", "200", "0"], "both answered 200 over one connection to %s (status, new connections)" % host)
        with open(p1, "rb") as f1, open(p2, "rb") as f2:
            b1, b2 = f1.read(), f2.read()
        check(hello_body_re("app-a", "/a/k1").match(b1.decode()) is not None, "keep-alive: /a/k1 answered by app-a", repr(b1))
        check(hello_body_re("app-b", "/b/k2").match(b2.decode()) is not None, "keep-alive: /b/k2 answered by app-b", repr(b2))
