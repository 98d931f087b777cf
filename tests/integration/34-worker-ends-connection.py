# 34-worker-ends-connection: a worker answering "Connection: close" ends the connection (client sees EOF) and the daemon frees its fd.
import time
from harness import Story, check, check_eq, get_req, wait_until, say

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = s.testworker(["http://+:%d/c/" % port], mode="close", text="C")

    def one(i):
        c = s.conn(port)
        c.send(get_req("/c/%d" % i))
        r = c.read_response()
        how, extra = c.wait_closed(3)
        c.close()
        return r, how, extra

    one(0)  # warm-up: whatever the daemon allocates once
    time.sleep(0.3)
    base = d.fds()
    say("  daemon fds before: %d" % base)
    for i in range(1, 6):
        r, how, extra = one(i)
        check(r.status == 200 and r.body == ("C pid=%d path=/c/%d\n" % (w.pid, i)).encode(),
              "request %d answered by the worker" % i, repr(r))
        check_eq((r.header("Connection") or "").lower(), "close", "response %d says Connection: close" % i)
        check_eq((how, extra), ("eof", b""), "response %d followed by EOF (recv returns 0), nothing more" % i)
    back = wait_until(lambda: d.fds() == base, 2, 0.05)
    check(back, "the daemon's fd count returns to %d within 2 s" % base, "now %d" % d.fds())
