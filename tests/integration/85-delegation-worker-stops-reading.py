# 85-delegation-worker-stops-reading: a worker that stops calling ps_receive while holding an idle delegated connection: the daemon's IdleConnection limit (1 s) still ends it with a FIN, and frees its fd.
import time
from harness import Story, Proc, check, check_eq, get_req, body_pid, wait_until

N = 3

with Story() as s:
    d = s.daemon(limits={"IdleConnection": 1})
    port = s.free_port()
    argv = [s.bin("testworker"), "--socket", d.sock, "--url", "http://+:%d/s/" % port, "--mode", "stall-after",
            "--count", str(N), "--text", "S"]
    w = Proc(s, argv, "testworker-stall-after").ready()
    keeper = s.hello(["http://+:%d/k/" % port], text="K")  # keeps the port bound whatever happens to w

    time.sleep(0.1)  # the route snapshot is published 20 ms after a change: let it settle first
    fds0 = d.fds()
    print("  daemon fds before the connection: %d" % fds0)
    c = s.conn(port)
    for i in range(N):
        r = c.request(get_req("/s/%d" % i), timeout=5)
        check(r.status == 200 and body_pid(r.body) == w.pid, "request %d of %d answered by the worker" % (i + 1, N), repr(r))
    t0 = time.monotonic()
    w.wait_for(r"stalled after %d requests" % N, "stderr", 3)
    check_eq(d.status().get("connections_in_workers"), 1, "after response %d of %d the worker holds the connection" % (N, N))
    check(w.alive(), "the worker stays alive and stops calling ps_receive")

    data, how = c.read_all(4)
    took = time.monotonic() - t0
    check(how == "eof", "the idle connection is ended with a FIN (EOF) by the daemon's idle limit (%s after %.2f s)"
          % (how, took), "got %s with %r" % (how, data[:200]))
    check_eq(data, b"", "no bytes before the EOF (no response, no 408)")
    check(took <= 3.0, "EOF within 3 s of the last response (IdleConnection 1): %.2f s" % took)
    c.close()

    back = wait_until(lambda: d.fds() <= fds0, 3, 0.05)
    check(back, "the daemon's fd count returns to %d once the client closed (now %d)" % (fds0, d.fds()))
    check_eq(d.status().get("connections_in_workers"), 0, "no connection left in a worker")
    check(w.alive() and d.alive(), "worker and daemon still running")
    r = s.conn(port).request(get_req("/k/1"))
    check(r.status == 200 and body_pid(r.body) == keeper.pid, "the daemon still serves other apps", repr(r))
