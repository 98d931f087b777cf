# 143-requeue-order: requests a worker gives back (ps_client_yield: REQUEUE of what its receive window brought and it had not taken) go back to the queue in their place by arrival, before the requests that came after them, so they are served in the order they came: a worker with a window of 3 busy with a slow request holds the next two, two more wait in the daemon's queue, it yields, and the four are answered in the order they were sent (the daemon that put each one back at the front served the two given back in reverse). Also with PORTSHARE_DEFAULTS=1.
import json
import time

from harness import Story, check, check_eq, find_queue, get_req, wait_until


def posted(d, pid):
    q = find_queue(d.status(), "rq") or {}
    return next((w["receives"] for w in q.get("workers", []) if w["pid"] == pid), None)


with Story() as s:
    log = s.path("access.log")
    d = s.daemon(extra=["AccessLog %s" % log, "AccessLogFormat json"])
    port = s.free_port()
    a = s.testworker(["http://+:%d/r/" % port], queue="rq", window=3, mode="yield", trigger="/r/slow",
                     delay_ms=1500)
    check(wait_until(lambda: posted(d, a.pid) == 3, 5), "the worker keeps three receives posted")

    slow = s.conn(port)
    slow.send(get_req("/r/slow", extra="Connection: close\r\n"))
    check(wait_until(lambda: posted(d, a.pid) == 2, 2, 0.01), "it took the slow request (two receives left)")
    conns = []
    for i in range(4):
        c = s.conn(port)
        c.send(get_req("/r/n%d" % i, extra="Connection: close\r\n"))
        conns.append(c)
        time.sleep(0.05)  # routed in this order
    q = find_queue(d.status(), "rq")
    check_eq((posted(d, a.pid), q["depth"]), (0, 2),
             "n0 and n1 went to its two receives, n2 and n3 wait in the queue (receives, depth)")

    # it yields (n0 and n1 go back), answers the slow request, then receives again
    for i, c in enumerate(conns):
        r = c.read_response(timeout=10)
        check(r.status == 200 and b"path=/r/n%d" % i in r.body, "n%d got its own answer (%d)" % (i, r.status))
    check_eq(slow.read_response(timeout=5).status, 200, "the slow request is answered")
    check(a.stdout().count("yield: ok") == 1, "the worker yielded once:\n%s" % a.stdout())

    # the order the worker answered them in: the access log's times (when each response
    # ended; the worker answers one at a time)
    def answered():
        try:
            with open(log) as f:
                lines = [json.loads(x) for x in f if x.strip()]
        except FileNotFoundError:
            return []
        return sorted((x["time"], x["request"].split()[1]) for x in lines if "/r/n" in x["request"])

    check(wait_until(lambda: len(answered()) == 4, 5), "the access log has the four")
    order = [int(path.rsplit("n", 1)[1]) for _, path in answered()]
    print("  answered in the order n%s" % " n".join(map(str, order)))
    check_eq(order, [0, 1, 2, 3], "the two given back were served before the two that came after them, "
             "each pair in the order it came")
