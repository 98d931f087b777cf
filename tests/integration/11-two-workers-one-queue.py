# 11-two-workers-one-queue: a second hello joins the first's queue with --queue; 40 new connections are shared by both pids.
import collections
from harness import Story, check, check_eq, hello_body_re, body_pid, get_req

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w1 = s.hello(["http://+:%d/w/" % port], text="shared")
    w2 = s.hello(queue=w1.queue, text="shared")
    check_eq(w2.queue, w1.queue, "second worker joined queue %s" % w1.queue)

    seen = collections.Counter()
    for i in range(40):
        c = s.conn(port)
        r = c.request(get_req("/w/%d" % i, extra="Connection: close\r\n"))
        c.close()
        if r.status != 200 or not hello_body_re("shared", "/w/%d" % i).match(r.text()):
            check(False, "request %d answered 200 by a worker" % i, repr(r))
        seen[body_pid(r.body)] += 1
    check(set(seen) <= {w1.pid, w2.pid}, "every answer came from one of the two workers", "pids %r" % dict(seen))
    check(seen[w1.pid] > 0 and seen[w2.pid] > 0, "both workers answered (%d / %d)" % (seen[w1.pid], seen[w2.pid]),
          "pids %r" % dict(seen))
    q = [q for q in d.status().get("queues", []) if q.get("name") == w1.queue]
    check(len(q) == 1 and {w.get("pid") for w in q[0].get("workers", [])} >= {w1.pid, w2.pid},
          "status lists both workers on the queue", repr(q))
