# 86-delegation-exit-clean: a worker that exits cleanly (SIGTERM -> ps_close) while holding idle delegated connections hands them back; the next request on each is answered by another worker of the queue, without a reset.
from harness import Story, Proc, check, check_eq, get_req, body_pid

NCONN = 4

with Story() as s:
    d = s.daemon()
    port = s.free_port()

    def worker(text, open_):
        argv = [s.bin("testworker"), "--socket", d.sock, "--queue", "q86", "--text", text]
        argv += ["--open"] if open_ else ["--url", "http://+:%d/e/" % port]
        return Proc(s, argv, "testworker-" + text).ready()

    w1 = worker("W1", False)
    w2 = worker("W2", True)
    workers = {w1.pid: w1, w2.pid: w2}

    # connections until one worker holds at least one (receives alternate between the two)
    conns = []
    for i in range(NCONN):
        c = s.conn(port)
        r = c.request(get_req("/e/c%d-1" % i))
        check(r.status == 200 and body_pid(r.body) in workers, "connection %d: first request answered" % i, repr(r))
        r2 = c.request(get_req("/e/c%d-2" % i))
        check(r2.status == 200 and body_pid(r2.body) == body_pid(r.body),
              "connection %d: second request answered by the same worker (it holds the connection)" % i, repr(r2))
        conns.append((c, body_pid(r.body)))
    st = d.status()
    check_eq(st.get("connections_in_workers"), NCONN, "all %d connections are held by workers" % NCONN)

    # stop the worker holding the first connection; the others it holds go back too
    victim = workers[conns[0][1]]
    other = [w for w in workers.values() if w is not victim][0]
    held = [c for c, pid in conns if pid == victim.pid]
    # one more request on each, so none of them is near the library's own idle return (1 s)
    for n, c in enumerate(held):
        r = c.request(get_req("/e/refresh-%d" % n))
        check(r.status == 200 and body_pid(r.body) == victim.pid, "refresh %d answered by the holder" % n, repr(r))
    check_eq(d.status().get("connections_in_workers"), NCONN, "just before SIGTERM all are still held by workers")
    rc = victim.stop(3)
    check_eq(rc, 0, "the worker holding %d idle connection(s) exited cleanly on SIGTERM" % len(held))
    for c in held:
        check(not c.readable_within(0.2), "its connection saw no EOF or reset", "eof %s reset %s %r"
              % (c.eof, c.reset, bytes(c.buf[:100])))
    for n, c in enumerate(held):
        r = c.request(get_req("/e/after-exit-%d" % n))
        check(r.status == 200 and body_pid(r.body) == other.pid,
              "next request on connection %d is answered by the other worker (pid %d)" % (n, other.pid), repr(r))
    for n, (c, pid) in enumerate(conns):
        if pid == other.pid:
            r = c.request(get_req("/e/other-%d" % n))
            check(r.status == 200 and body_pid(r.body) == other.pid, "connection held by the other worker unaffected",
                  repr(r))
    for c, _ in conns:
        c.close()
