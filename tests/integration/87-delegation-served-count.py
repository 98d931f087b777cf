# 87-delegation-served-count: a queue's "served" counts every request, also those a worker served alone, after that worker exits (cleanly or killed) and never goes down; "delegated" <= "served".
from harness import Story, Proc, check, check_eq, find_queue, get_req, body_pid, wait_until

K = 20  # requests per connection

with Story() as s:
    d = s.daemon()
    port = s.free_port()

    def worker(text, open_):
        argv = [s.bin("testworker"), "--socket", d.sock, "--queue", "q87", "--text", text]
        argv += ["--open"] if open_ else ["--url", "http://+:%d/n/" % port]
        return Proc(s, argv, "testworker-" + text).ready()

    keep = worker("KEEP", False)  # the queue's creator; stays to the end
    total = 0
    for how in ("SIGTERM", "SIGKILL"):
        w = worker("W-" + how, True)
        # connections until one is held by w (receives alternate between the two workers)
        served_by_w = 0
        for attempt in range(6):
            c = s.conn(port)
            pids = set()
            for i in range(K):
                r = c.request(get_req("/n/%s-%d-%d" % (how, attempt, i)))
                if r.status != 200:
                    check(False, "request answered", repr(r))
                pids.add(body_pid(r.body))
                total += 1
            c.close()
            if pids == {w.pid}:
                served_by_w += K
                break
        check(served_by_w == K, "%s case: one connection of %d requests was served entirely by the worker (pid %d)"
              % (how, K, w.pid), "pids seen on the last connection: %r" % pids)
        st = wait_until(lambda: (lambda q: q if q and q.get("served") == total else None)(find_queue(d.status(), "q87")),
                        3, 0.1)
        q = st or find_queue(d.status(), "q87")
        print("  %s case, worker still running: served %r delegated %r (requests sent so far %d)"
              % (how, q.get("served"), q.get("delegated"), total))
        check_eq(q.get("served"), total, "%s case: with the worker running the queue counts all %d requests" % (how, total))
        check(0 < q.get("delegated") <= q.get("served"), "%s case: delegated (%r) counts some of them, never more"
              % (how, q.get("delegated")))
        before = q.get("served")
        if how == "SIGTERM":
            check_eq(w.stop(3), 0, "the worker exits cleanly on SIGTERM")
        else:
            w.kill9()
        check(wait_until(lambda: len(find_queue(d.status(), "q87").get("workers", [])) == 1, 3, 0.05),
              "the daemon saw the worker go")
        q = find_queue(d.status(), "q87")
        print("  %s case, worker gone: served %r delegated %r" % (how, q.get("served"), q.get("delegated")))
        check(q.get("served") >= before, "%s case: served never goes down when a worker leaves (now %r, was %r)"
              % (how, q.get("served"), before))
        check_eq(q.get("served"), total, "%s case: after the worker left, served still counts all %d requests, "
                 "including the %d it served alone" % (how, total, K - 1))
