# 84-delegation-idle-return: a delegated connection left idle goes back to the daemon after about 1 s (connections_in_workers drops) and still works.
import time
from harness import Story, check, check_eq, find_queue, get_req, hello_body_re, body_pid

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="A")

    def in_workers():
        return d.status().get("connections_in_workers")

    for rnd in range(2):  # twice on the same connection: returned, delegated again, returned again
        if rnd == 0:
            c = s.conn(port)
        path = "/a/round%d" % rnd
        r = c.request(get_req(path))
        t0 = time.monotonic()
        check(r.status == 200 and hello_body_re("A", path).match(r.text()) is not None and body_pid(r.body) == a.pid,
              "round %d: %s answered by A" % (rnd, path), repr(r))
        check_eq(in_workers(), 1, "round %d: right after the response the connection is in the worker" % rnd)
        # watch it come back: poll until 0 (bounded), note when
        back = None
        for _ in range(100):
            if in_workers() == 0:
                back = time.monotonic() - t0
                break
            if time.monotonic() - t0 > 2.5:
                break
            time.sleep(0.05)
        check(back is not None and back <= 1.5 + 0.2,
              "round %d: the idle connection is back in the daemon within 1.5 s (after %s s)"
              % (rnd, "%.2f" % back if back is not None else "more than 2.5"))
        check(back >= 0.5, "round %d: and not at once (after %.2f s; the library keeps it about 1 s)" % (rnd, back))
        check(not c.readable_within(0.05), "round %d: the client noticed nothing (no byte, no EOF)" % rnd,
              "eof %s bytes %r" % (c.eof, bytes(c.buf[:100])))

    r = c.request(get_req("/a/after"))
    check(r.status == 200 and body_pid(r.body) == a.pid, "a request on the same connection after the return: A answers",
          repr(r))
    check_eq(in_workers(), 1, "and A holds it again")
    c.close()
    q = find_queue(d.status(), a.queue)
    check(q.get("served") is not None and q.get("served") >= 2, "queue A served %r" % q.get("served"))
