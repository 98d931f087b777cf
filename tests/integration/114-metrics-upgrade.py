# 114-metrics-upgrade: portshared --upgrade carries the counters: requests by queue and class (delegated ones too), the daemon's answers by reason, handoffs, accepted connections and the response body bytes are never lower in the new daemon than in the old one just before, and go on counting; status's served count carries over too; the access log, written by both daemons, has every request once. Also with PORTSHARE_DEFAULTS=1.
from harness import Story, check, check_eq, find_queue, get_req, wait_until
from metrics_parse import parse, value

N = 6

with Story() as s:
    log = s.path("access.log")
    d1 = s.daemon(extra=["AccessLog %s" % log])
    port = s.free_port()
    w = s.testworker(urls=["http://+:%d/u/" % port], queue="u")
    c = s.conn(port)
    for i in range(N):
        r = c.request(get_req("/u/%d" % i))
        if r.status != 200:
            check(False, "request %d to queue u answered" % i, repr(r))
    c.close()
    c = s.conn(port)
    check_eq(c.request(get_req("/none")).status, 404, "one 404 from the daemon")
    c.close()
    before = parse(d1.ctl("metrics").stdout)
    check_eq(value(before, "portshare_requests_total", queue="u", code="2xx"), N, "the old daemon counts %d" % N)
    body = value(before, "portshare_response_body_bytes_total", queue="u")
    check(body > 0, "the old daemon counts the body bytes sent (%r)" % body)
    check_eq(find_queue(d1.status(), "u")["served"], N, "status: the old daemon served %d" % N)
    d1.expected_exit = True
    d2 = s.daemon(sock=d1.sock, state_dir=d1.state_dir, args=["--upgrade"], name="portshared-new",
                  extra=["AccessLog %s" % log])
    d2.wait_log(r"upgrade complete", timeout=15)
    check(wait_until(lambda: d1.wait(0.1) is not None, 10, 0.1), "the old daemon exited")
    d2.wait_log(r"counters carried over", timeout=5)
    after = parse(d2.ctl("metrics").stdout)
    back = [(k, before[k], after.get(k)) for k in before
            if k[0].endswith("_total") and (after.get(k) is None or after[k] < before[k])]
    check(not back, "no counter is lower in the new daemon than in the old one", repr(back))
    check_eq(value(after, "portshare_requests_total", queue="u", code="2xx"), N,
             "the new daemon's requests_total{queue=u,code=2xx} carries the %d" % N)
    check_eq(value(after, "portshare_daemon_answers_total", reason="NotFound"), 1, "and the one NotFound")
    check_eq(value(after, "portshare_request_duration_seconds_count", queue="u"), N, "and the duration histogram's count")
    check_eq(value(after, "portshare_response_body_bytes_total", queue="u"), body, "and the body bytes")
    q = wait_until(lambda: find_queue(d2.status(), "u"), 10, 0.1)
    check_eq(q and q["served"], N, "status: the new daemon's served count carries the %d" % N)
    # the worker re-attached: new requests add to the carried count
    ok = wait_until(lambda: s.get("http://127.0.0.1:%d/u/after" % port).status == 200, 10, 0.2)
    check(ok, "the queue serves after the upgrade")
    m = parse(d2.ctl("metrics").stdout)
    check(value(m, "portshare_requests_total", queue="u", code="2xx") >= N + 1,
          "requests after the upgrade add to the carried count (%r)" % value(m, "portshare_requests_total", queue="u", code="2xx"))

    # the access log: the old daemon's lines (written as it exited), then the new one's
    served = find_queue(d2.status(), "u")["served"]

    def lines():
        with open(log) as f:
            return f.read().splitlines()

    def ours():
        return [ln for ln in lines() if '"GET /u/' in ln and ln.endswith(tuple("0123456789"))
                and " 200 " in ln and " u %d " % w.pid in ln]

    check(wait_until(lambda: len(ours()) >= served, 5), "the log has a line for each of the %d requests" % served,
          "\n".join(lines()[-10:]))
    check_eq(len(ours()), served, "and no more: every request once across the upgrade")
    check_eq(sum('"GET /none HTTP/1.1" 404 ' in ln for ln in lines()), 1, "the old daemon's 404, once")
