# 113-metrics-prometheus: real clients of the metrics: promtool check metrics accepts portsharectl metrics' output, and a Prometheus server (Debian's prometheus) scraping MetricsListen every second answers its query API with portshare_requests_total equal to the requests the story sent.
import json
import shutil
import subprocess
import urllib.request

from harness import Proc, Story, check, check_eq, get_req, wait_until

N = 9  # requests to queue p

with Story() as s:
    check(shutil.which("prometheus") is not None and shutil.which("promtool") is not None,
          "prometheus and promtool are installed (Debian package prometheus; scripts/deps.sh installs it "
          "without starting its service)")
    mport = s.free_port()
    d = s.daemon(extra=["MetricsListen 127.0.0.1:%d" % mport])
    port = s.free_port()
    w = s.testworker(urls=["http://+:%d/p/" % port], queue="p")
    c = s.conn(port)
    for i in range(N):
        r = c.request(get_req("/p/%d" % i))
        if r.status != 200:
            check(False, "request %d to queue p answered" % i, repr(r))
    c.close()
    c = s.conn(port)
    check_eq(c.request(get_req("/nothing-here")).status, 404, "one 404 from the daemon")
    c.close()

    out = d.ctl("metrics").stdout
    r = subprocess.run(["promtool", "check", "metrics"], input=out, capture_output=True, text=True, timeout=30)
    print("  promtool check metrics: exit %d %s" % (r.returncode, (r.stdout + r.stderr).strip()[:300]))
    check_eq(r.returncode, 0, "promtool check metrics accepts the output")

    pport = s.free_port()
    cfg = s.path("prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: portshare\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % mport)
    prom = Proc(s, ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + s.path("prom-data"),
                    "--web.listen-address=127.0.0.1:%d" % pport], "prometheus")
    query = 'portshare_requests_total{queue="p",code="2xx"}'
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (pport, urllib.request.quote(query))
    got = []

    def answer():
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                res = json.load(resp)
        except OSError:
            return None
        got[:] = res.get("data", {}).get("result", [])
        return got if got else None

    ok = wait_until(answer, 30, 0.5)
    print("  prometheus query %s -> %s" % (query, json.dumps(got)))
    check(ok, "Prometheus scraped MetricsListen and its query API has %s" % query)
    check_eq(float(got[0]["value"][1]), N, "Prometheus's %s equals the %d requests sent" % (query, N))
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query?query=%s" % (
            pport, urllib.request.quote('portshare_daemon_answers_total{reason="NotFound"}')), timeout=2) as resp:
        res = json.load(resp)["data"]["result"]
    check(res and float(res[0]["value"][1]) == 1, "and the daemon's one NotFound", json.dumps(res))
    prom.stop(10)
