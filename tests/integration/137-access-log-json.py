# 137-access-log-json: AccessLogFormat json writes one JSON object a line (Python's json module parses every one): delegated keep-alive requests with their queue, worker pid, status, body bytes and duration, the daemon's own 404 with queue and pid null, a Referer and a User-Agent with quotes, a backslash, a tab and bytes outside ASCII escaped so the line stays valid JSON; time in UTC with µs; a bad value is refused with a clear error; a reload switches the format of the lines that follow. Also with PORTSHARE_DEFAULTS=1.
import datetime
import json
import os
import time

from harness import Story, check, check_eq, wait_until


def read_json(path):
    """Every line as parsed JSON (a line that is not JSON fails the story)."""
    out = []
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n")[:-1]:
            try:
                out.append(json.loads(raw.decode("ascii")))
            except (UnicodeDecodeError, ValueError) as e:
                check(False, "each line is ASCII JSON", "%r: %r" % (e, raw))
    return out


with Story() as s:
    log = s.path("access.log")
    base = ["listen 127.0.0.1"] if not s.defaults else []

    d = s.daemon(extra=["AccessLog %s" % log, "AccessLogFormat json"])
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], queue="qa", text="A")
    time.sleep(0.3)  # the route snapshot: delegation starts with it

    t0 = time.time()
    c = s.conn(port)
    statuses = [c.request(b"GET /a/k%d HTTP/1.1\r\nHost: x\r\n\r\n" % i).status for i in range(20)]
    check_eq(statuses, [200] * 20, "20 keep-alive requests on one connection")
    weird = b'GET /a/q?x=%22y%22 HTTP/1.1\r\nHost: x\r\nReferer: http://r/"q"\\\r\nUser-Agent: ua\t\xc3\xa9\xff\r\n\r\n'
    r = c.request(weird)
    check_eq(r.status, 200, "a request whose Referer has quotes and a backslash, its User-Agent a tab and bytes "
             "outside ASCII")
    c.close()
    r = s.get(s.url(port, "/nothing-here"))
    check_eq(r.status, 404, "a request no queue takes: the daemon's 404")

    check(wait_until(lambda: os.path.exists(log) and len(read_json(log)) >= 22, 5, 0.2), "22 lines within 5 s")
    lines = read_json(log)
    check_eq(len(lines), 22, "one line per request")
    keys = ["time", "remote_addr", "request", "status", "body_bytes", "referer", "user_agent", "queue", "pid",
            "duration_us"]
    check(all(list(ln.keys()) == keys for ln in lines), "every line has the keys in order", repr(lines[0]))
    ka = [ln for ln in lines if ln["request"].startswith("GET /a/k")]
    check_eq(len(ka), 20, "the 20 keep-alive requests")
    check(all(ln["status"] == 200 and ln["queue"] == "qa" and ln["pid"] == a.pid and ln["body_bytes"] > 0
              and isinstance(ln["duration_us"], int) for ln in ka),
          "each with status 200, queue qa, the worker's pid %d, its body bytes and a duration" % a.pid, repr(ka[0]))
    w = [ln for ln in lines if ln["request"].startswith("GET /a/q")]
    check_eq(len(w), 1, "the request with odd bytes has one line")
    check_eq(w[0]["request"], "GET /a/q?x=%22y%22 HTTP/1.1", "its request line")
    check_eq(w[0]["referer"], 'http://r/"q"\\', "its Referer: quotes and the backslash kept")
    check_eq(w[0]["user_agent"], "ua\t\u00c3\u00a9\u00ff", "its User-Agent: the tab and each byte outside ASCII as "
             "\\u00XX")
    nf = [ln for ln in lines if ln["request"].startswith("GET /nothing-here")]
    check(len(nf) == 1 and nf[0]["status"] == 404 and nf[0]["queue"] is None and nf[0]["pid"] is None,
          "the daemon's own 404: queue and pid null", repr(nf))
    stamp = datetime.datetime.strptime(ka[0]["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    check(abs(stamp.timestamp() - t0) < 5, "the time is UTC with microseconds (%s)" % ka[0]["time"])

    # a reload back to combined: the next lines are in the combined format
    mark = len(d.stderr())
    d.write_config(base + ["AccessLog %s" % log, "AccessLogFormat combined"])
    d.reload()
    d.wait_log(r"reloaded", since=mark)
    check_eq(s.get(s.url(port, "/a/after")).status, 200, "a request after the reload")

    def last_line():
        with open(log, "rb") as f:
            return f.read().split(b"\n")[-2]
    check(wait_until(lambda: last_line().startswith(b"127.0.0.1 - - ["), 5, 0.2),
          "after a reload to combined the next line is combined", repr(last_line()))

    # a bad value: the reload is refused with a clear error, the daemon serves on
    mark = len(d.stderr())
    d.write_config(base + ["AccessLog %s" % log, "AccessLogFormat xml"])
    d.reload()
    m = d.wait_log(r"AccessLogFormat is combined or json, not 'xml'", since=mark)
    check(m is not None, "AccessLogFormat xml: refused, saying what it takes")
    check_eq(s.get(s.url(port, "/a/still")).status, 200, "the daemon serves on with its config")
