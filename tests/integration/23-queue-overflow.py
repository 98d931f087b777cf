# 23-queue-overflow: a queue of length 2 whose worker never receives holds 2 requests; the 3rd gets 503 QueueFull at once.
import time
from harness import Story, check, check_eq, check_between, find_queue, get_req, wait_until

with Story() as s:
    d = s.daemon(limits={"RequestQueue": 3})
    port = s.free_port()
    w = s.testworker(["http://+:%d/q/" % port], mode="noreceive", max_length=2)
    t0 = time.monotonic()
    held = []
    for i in range(2):
        c = s.conn(port)
        c.send(get_req("/q/held%d" % i))
        held.append(c)
    depth = wait_until(lambda: (find_queue(d.status(), w.queue) or {}).get("depth") == 2, 2, 0.05)
    check(depth, "status shows depth 2 for queue %s" % w.queue, repr(find_queue(d.status(), w.queue)))
    for i, c in enumerate(held):
        check(not c.readable_within(0.2), "request %d is held (no answer yet)" % i)

    mark = d.mark()
    c3 = s.conn(port)
    t3 = time.monotonic()
    r = c3.request(get_req("/q/third"), timeout=5)
    check_eq(r.status, 503, "third request status")
    check(time.monotonic() - t3 < 1.0, "third request answered at once (%.2f s)" % (time.monotonic() - t3))
    d.wait_error_log(503, "QueueFull", since=mark)
    check(True, "error-log line names QueueFull")

    for i, c in enumerate(held):
        r = c.read_response(timeout=6)
        check_eq(r.status, 503, "held request %d status after the queue-wait limit" % i)
    check_between(round(time.monotonic() - t0, 2), 2.5, 5.5, "held requests answered after about 3 s (s)")
