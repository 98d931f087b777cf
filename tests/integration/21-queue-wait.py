# 21-queue-wait: with RequestQueue 1 and a worker that never receives, a request gets 503 after about 1 s (Timer_QueueWait).
import time
from harness import Story, check, check_eq, check_between, get_req

with Story() as s:
    d = s.daemon(limits={"RequestQueue": 1})
    port = s.free_port()
    w = s.testworker(["http://+:%d/q/" % port], mode="noreceive")
    mark = d.mark()
    c = s.conn(port)
    t0 = time.monotonic()
    r = c.request(get_req("/q/held"), timeout=6)
    took = time.monotonic() - t0
    check_eq(r.status, 503, "held request status")
    check_between(round(took, 2), 0.8, 3.0, "503 arrived after the queue-wait limit (s)")
    check(r.header("Content-Type") is not None and r.header("Content-Type").startswith("text/plain") and r.body,
          "503 has a short text/plain body", repr(r))
    d.wait_error_log(503, "Timer_QueueWait", since=mark)
    check(True, "error-log line names Timer_QueueWait")
    check(w.alive(), "the worker is still running")
