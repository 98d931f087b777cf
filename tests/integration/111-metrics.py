# 111-metrics: portsharectl metrics prints the Prometheus text format; requests by queue and status class (delegated keep-alive ones too), the daemon's own answers by reason, queue gauges, the request duration histogram; counters never go back when a worker is SIGKILLed; a scanner's random Hosts and paths create no series. Also with PORTSHARE_DEFAULTS=1.
import random

from harness import Story, check, check_eq, get_req, wait_until
from metrics_parse import parse, value, series

with Story() as s:
    d = s.daemon()
    port = s.free_port()

    def metrics():
        r = d.ctl("metrics")
        if r.returncode != 0:
            check(False, "portsharectl metrics exits 0", r.stderr)
        return parse(r.stdout)

    keep = s.testworker(urls=["http://+:%d/a/" % port], queue="a", text="KEEP")
    w = s.testworker(queue="a", open_=True, text="W")
    m0 = metrics()
    check(value(m0, "portshare_requests_total", queue="a", code="2xx") == 0, "queue a starts with 0 2xx")
    # 5 requests to queue a on one keep-alive connection (delegated after the first)
    c = s.conn(port)
    for i in range(5):
        r = c.request(get_req("/a/%d" % i))
        if r.status != 200:
            check(False, "request %d to queue a answered" % i, repr(r))
    # 2 404s from the daemon
    for i in range(2):
        c2 = s.conn(port)
        r = c2.request(get_req("/nowhere/%d" % i))
        check_eq(r.status, 404, "the daemon answers 404 to an unregistered path")
        c2.close()
    ok = wait_until(lambda: value(metrics(), "portshare_requests_total", queue="a", code="2xx") == 5, 3, 0.05)
    m = metrics()
    print("  requests_total a 2xx %r, (daemon) 4xx %r, NotFound %r" % (
        value(m, "portshare_requests_total", queue="a", code="2xx"),
        value(m, "portshare_requests_total", queue="(daemon)", code="4xx"),
        value(m, "portshare_daemon_answers_total", reason="NotFound")))
    check_eq(value(m, "portshare_requests_total", queue="a", code="2xx"), 5,
             "portshare_requests_total{queue=a,code=2xx} counts the 5 requests while the connection is open")
    check_eq(value(m, "portshare_requests_total", queue="(daemon)", code="4xx"), 2,
             "the daemon's own 404s are counted under queue (daemon), code 4xx")
    check_eq(value(m, "portshare_daemon_answers_total", reason="NotFound"), 2,
             "portshare_daemon_answers_total{reason=NotFound} is 2")
    check_eq(value(m, "portshare_request_duration_seconds_count", queue="a"), 5,
             "the duration histogram of queue a counts the 5 requests")
    les = ["0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"]
    cum = [value(m, "portshare_request_duration_seconds_bucket", queue="a", le=le) for le in les]
    check(all(x is not None for x in cum) and cum == sorted(cum) and cum[-1] == 5,
          "its buckets are cumulative and le=+Inf is the count", repr(cum))
    check(0 < value(m, "portshare_request_duration_seconds_sum", queue="a") < 5,
          "its sum is a plausible number of seconds (%r)" % value(m, "portshare_request_duration_seconds_sum", queue="a"))
    check_eq(value(m, "portshare_queue_workers", queue="a"), 2, "queue a has 2 workers")
    check_eq(value(m, "portshare_queue_depth", queue="a"), 0, "queue a's depth is 0")
    check(value(m, "portshare_handoffs_total") >= 1, "handoffs counted (%r)" % value(m, "portshare_handoffs_total"))
    check(value(m, "portshare_connections_accepted_total") >= 3, "accepted connections counted")
    check(value(m, "portshare_connections_workers") >= 1, "the open keep-alive connection is held by a worker")
    check_eq(value(m, "portshare_connections_delegated"), value(m, "portshare_connections_workers"),
             "and delegated: its worker reads the next requests itself")
    check(value(m, "process_resident_memory_bytes") > 1e5, "the daemon's RSS is read from /proc (%r)"
          % value(m, "process_resident_memory_bytes"))
    check(value(m, "process_open_fds") >= 3, "the daemon's fds are counted (%r)" % value(m, "process_open_fds"))
    c.close()

    # a worker killed: counters never go back
    before = metrics()
    pid_w, sent = w.pid, 0
    for attempt in range(6):  # a connection served by w, then w killed while holding it
        c = s.conn(port)
        r = c.request(get_req("/a/k%d" % attempt))
        sent += 1
        if str(pid_w).encode() in r.body:
            c.request(get_req("/a/k%d-2" % attempt))
            sent += 1
            break
        c.close()
    w.kill9()
    check(wait_until(lambda: value(metrics(), "portshare_queue_workers", queue="a") == 1, 3, 0.05),
          "the daemon saw the killed worker go")
    after = metrics()
    back = [(k, before[k], after.get(k)) for k in before
            if k[0].endswith("_total") and (after.get(k) is None or after[k] < before[k])]
    check(not back, "no counter went backwards when the worker was SIGKILLed", repr(back))
    check_eq(value(after, "portshare_requests_total", queue="a", code="2xx"),
          value(before, "portshare_requests_total", queue="a", code="2xx") + sent,
          "the %d responses since, the killed worker's among them, stay counted" % sent)

    # a scanner: random Hosts and paths, bounded
    known = series(metrics())
    rnd = random.Random(111)
    for i in range(40):
        host = "h%08x.example" % rnd.getrandbits(32)
        path = "/%08x/%s" % (rnd.getrandbits(32), "x" * rnd.randint(0, 20))
        cs = s.conn(port)
        cs.request(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, host)).encode())
        cs.close()
    new = series(metrics()) - known
    check(not new, "40 requests with random Hosts and paths create no new series", repr(sorted(new)[:5]))
    m = metrics()
    check_eq(value(m, "portshare_daemon_answers_total", reason="NotFound"), 2 + 40,
             "the scanner's 40 404s are counted under NotFound")
