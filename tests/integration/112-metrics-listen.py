# 112-metrics-listen: with MetricsListen the daemon serves /metrics over HTTP on that address (GET and HEAD, any query ignored), in the Prometheus text format with its content type; other paths get 404, other methods 405; the counts match portsharectl metrics and the requests the story made; the address is not a registrable prefix. Also with PORTSHARE_DEFAULTS=1.
import subprocess

from harness import Story, check, check_eq, get_req, wait_until
from metrics_parse import parse, value

with Story() as s:
    mport = s.free_port()
    d = s.daemon(extra=["MetricsListen 127.0.0.1:%d" % mport])
    d.wait_log(r"metrics at http://127\.0\.0\.1:%d/metrics" % mport, timeout=5)
    port = s.free_port()
    w = s.testworker(urls=["http://+:%d/b/" % port], queue="b")
    c = s.conn(port)
    for i in range(3):
        r = c.request(get_req("/b/%d" % i))
        if r.status != 200:
            check(False, "request %d to queue b answered" % i, repr(r))
    c.close()

    def curl(*args):
        return subprocess.run(["curl", "-sS", "--max-time", "5"] + list(args), capture_output=True, text=True)

    url = "http://127.0.0.1:%d" % mport
    r = curl("-i", url + "/metrics")
    check_eq(r.returncode, 0, "curl reaches MetricsListen")
    head, _, body = r.stdout.partition("\n\n")  # text mode: CRLF read as LF
    check(head.startswith("HTTP/1.1 200"), "GET /metrics answers 200", head[:200])
    check("Content-Type: text/plain; version=0.0.4" in head, "with the text format's content type", head)
    m = parse(body)
    check_eq(value(m, "portshare_requests_total", queue="b", code="2xx"), 3,
             "over HTTP: portshare_requests_total{queue=b,code=2xx} is 3")
    ctl = parse(d.ctl("metrics").stdout)
    check_eq(value(ctl, "portshare_requests_total", queue="b", code="2xx"), 3, "portsharectl metrics says the same")
    r = curl("-o", "/dev/null", "-w", "%{http_code}", url + "/metrics?x=1")
    check_eq(r.stdout, "200", "a query is ignored")
    r = curl("-I", url + "/metrics")
    check(r.stdout.startswith("HTTP/1.1 200") and "Content-Length:" in r.stdout, "HEAD /metrics answers 200", r.stdout[:200])
    for path in ("/", "/metrics/", "/b/0", "/metricsx", "/favicon.ico"):
        r = curl("-o", "/dev/null", "-w", "%{http_code}", url + path)
        check_eq(r.stdout, "404", "GET %s on MetricsListen answers 404" % path)
    r = curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", url + "/metrics")
    check_eq(r.stdout, "405", "POST /metrics answers 405")
    # a scraper that connects and says nothing does not hold the listener: the next scrape works
    idle = [s.conn(mport) for _ in range(3)]
    r = curl("-o", "/dev/null", "-w", "%{http_code}", url + "/metrics")
    check_eq(r.stdout, "200", "a scrape works while idle connections are open")
    for x in idle:
        x.close()
    # the metrics port is the daemon's own: an app's prefix on it is not served there
    w2 = s.testworker(urls=["http://+:%d/metrics/app/" % mport], queue="m", ready=False)
    r = curl("-o", "/dev/null", "-w", "%{http_code}", url + "/metrics/app/x")
    check_eq(r.stdout, "404", "a path under an app's prefix on the metrics port still gets the listener's 404")
