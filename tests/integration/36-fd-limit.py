# 36-fd-limit: a worker at its fd limit (MSG_CTRUNC on every delivery) loses no request: each one goes to another worker or gets 503.
import time
from harness import Story, check, check_eq, get_req, body_pid, say, StoryFailure

with Story() as s:
    d = s.daemon(limits={"RequestQueue": 2})
    port = s.free_port()
    bad = s.testworker(["http://+:%d/f/" % port], queue="fq", mode="fdlimit", text="bad")
    bad.wait_for(r"RLIMIT_NOFILE soft limit now \d+", "stderr", 3)

    def ask(conns, what):
        out = []
        for i, c in enumerate(conns):
            try:
                r = c.read_response(timeout=6)
            except StoryFailure as e:
                check(False, "%s %d answered (not lost, reset or timed out)" % (what, i), str(e))
            check(r.status in (200, 503), "%s %d answered 200 or 503 (got %d)" % (what, i, r.status), repr(r))
            out.append(r)
            c.close()
        return out

    # only the worker at its limit: it cannot take a connection, so nothing may come back 200
    t0 = time.monotonic()
    conns = [s.conn(port) for _ in range(3)]
    for i, c in enumerate(conns):
        c.send(get_req("/f/alone%d" % i, extra="Connection: close\r\n"))
    rs = ask(conns, "request with only the fd-starved worker")
    check(all(r.status == 503 for r in rs), "all 503: the fd-starved worker served nothing (%.1f s)" % (time.monotonic() - t0),
          repr(rs))
    check(bad.alive(), "the worker at its fd limit is still running (back-pressure, not a crash)")

    good = s.testworker(queue="fq", open_=True, text="good")
    by = {}
    for i in range(20):
        c = s.conn(port)
        c.send(get_req("/f/%d" % i, extra="Connection: close\r\n"))
        r = ask([c], "request")[0]
        key = body_pid(r.body) if r.status == 200 else "503"
        by[key] = by.get(key, 0) + 1
    say("  answers: %r (good pid %d, fd-starved pid %d)" % (by, good.pid, bad.pid))
    check(by.get(good.pid, 0) >= 1, "at least one request served 200 by the good worker")
    check(bad.pid not in by, "none served by the fd-starved worker")
    check(bad.alive() and good.alive(), "both workers still running")
    r = s.get("http://127.0.0.1:%d/f/after" % port)
    check_eq(r.status, 200, "a request after the run is served")
