# 22-persistent-queue: a persistent queue outlives its worker: 503 AppOffline at once while none is attached, served again by a new worker.
import time
from harness import Story, check, check_eq, find_queue, get_req, request_once, body_pid, wait_until

with Story() as s:
    d = s.daemon(limits={"RequestQueue": 5})
    port = s.free_port()
    w1 = s.testworker(["http://+:%d/p/" % port], queue="pq", persistent=True, mode="exit-after", count=1, text="one")
    r = request_once(port, get_req("/p/1"))
    check(r.status == 200 and body_pid(r.body) == w1.pid, "first request served by the first worker", repr(r))
    check_eq(w1.wait(5), 0, "first worker exit status after its one request")

    wait_until(lambda: not (find_queue(d.status(), "pq") or {}).get("workers"), 3, 0.05)
    q = find_queue(d.status(), "pq")
    check(q is not None and q.get("persistent") is True, "status still lists persistent queue pq", repr(q))
    check(q is not None and not q.get("workers"), "queue pq has no workers", repr(q))
    url = "http://+:%d/p/" % port
    check(q is not None and url in q.get("urls", []), "queue pq keeps its url %s" % url, repr(q))

    mark = d.mark()
    t0 = time.monotonic()
    r = request_once(port, get_req("/p/2"), timeout=6)
    took = time.monotonic() - t0
    check_eq(r.status, 503, "request while no worker is attached: status")
    check(took < 1.0, "503 came at once (%.2f s), not after the queue-wait limit" % took)
    d.wait_error_log(503, "AppOffline", since=mark)
    check(True, "error-log line names AppOffline")

    w2 = s.testworker(queue="pq", open_=True, text="two")
    r = request_once(port, get_req("/p/3"))
    check(r.status == 200 and body_pid(r.body) == w2.pid and r.text().startswith("two "),
          "a new worker that opened pq serves again", repr(r))
