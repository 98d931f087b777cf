# 115-access-log: AccessLog writes every request exactly once with its status, queue, worker pid and duration: 1,000 delegated keep-alive requests on one connection, requests pipelined to two queues, the daemon's own answers (404, 400, OPTIONS *), a worker killed after a whole response, in the middle of one and with a request read, an upgrade (at its 101), requests over TLS (delegated too) and plain HTTP sent to a TLS port; Referer and User-Agent escaped; a reload that turns it off and on; goaccess --log-format=COMBINED parses every line. Also with PORTSHARE_DEFAULTS=1.
import json
import os
import re
import signal
import subprocess
import time

from harness import Proc, Story, check, check_eq, get_req, say, wait_until

LINE = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] "((?:[^"\\]|\\x[0-9A-F]{2})*)" '
                  r'(\d{3}) (\d+) "((?:[^"\\]|\\x[0-9A-F]{2})*)" "((?:[^"\\]|\\x[0-9A-F]{2})*)" (\S+) (\S+) (\d+)$')


def read_log(path):
    """Every line parsed: (remote, time, request, status, bytes, referer, agent, queue, pid, duration)."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path, "rb") as f:
        for raw in f.read().split(b"\n")[:-1]:
            m = LINE.match(raw.decode("ascii"))
            check(m is not None, "a whole, well-formed line", raw)
            out.append(m.groups())
    return out


def by_request(lines):
    seen = {}
    for ln in lines:
        seen.setdefault(ln[2], []).append(ln)
    return seen


def worker(s, mode, queue, url, trigger=None):
    argv = [s.bin("testworker"), "--socket", s.daemons[-1].sock, "--queue", queue, "--url", url, "--mode", mode]
    if trigger:
        argv += ["--trigger", trigger]
    return Proc(s, argv, "testworker-" + queue).ready()


with Story() as s:
    log = s.path("access.log")
    d = s.daemon(extra=["AccessLog %s" % log])
    port = s.free_port()
    host = s.client_host if hasattr(s, "client_host") else "127.0.0.1"
    a = s.hello(["http://+:%d/a/" % port], queue="qa", text="A")
    b = s.hello(["http://+:%d/b/" % port], queue="qb", text="B")
    # the route snapshot comes 20 ms after the last change; delegation starts with it
    time.sleep(0.3)

    # 1,000 requests on one connection: after the first the worker reads them itself
    c = s.conn(port)
    statuses = [c.request(get_req("/a/k%d" % i)).status for i in range(1000)]
    check_eq(statuses, [200] * 1000, "1,000 requests on one connection answered")
    c.close()

    # pipelined to two queues in one write
    c = s.conn(port)
    c.send(get_req("/a/p1") + get_req("/b/p2") + get_req("/a/p3"))
    for path in ("/a/p1", "/b/p2", "/a/p3"):
        check_eq(c.read_response().status, 200, "pipelined %s" % path)
    c.close()

    # escaped fields: a quote, a backslash and bytes past ASCII cannot end a field or a line
    c = s.conn(port)
    c.send(b'GET /a/esc HTTP/1.1\r\nHost: x\r\nReferer: http://r/"q"\\\r\nUser-Agent: ag\xc3\xa9nt "x"\r\n\r\n')
    check_eq(c.read_response().status, 200, "a request with odd Referer and User-Agent")
    c.close()

    # the daemon's own answers
    c = s.conn(port)
    check_eq(c.request(get_req("/nothing")).status, 404, "404 from the daemon")
    c.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(c.read_response().status, 200, "OPTIONS *")
    c.close()
    c = s.conn(port)
    c.send(b"GET /a/\x01bad HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(c.read_response().status, 400, "400 from the daemon")
    c.close()

    # an upgrade: logged at its 101
    up = worker(s, "upgrade", "qup", "http://+:%d/up/" % port)
    time.sleep(0.1)
    c = s.conn(port)
    c.send(get_req("/up/x", extra="Connection: Upgrade\r\nUpgrade: echo\r\n"))
    check_eq(c.read_response().status, 101, "101 Switching Protocols")
    c.send(b"ping")
    check_eq(c.read_exactly(4), b"ping", "the upgraded connection echoes")
    c.close()

    # workers killed: after a whole response (logged once, 200), mid-response (logged once
    # as the worker began it), with the request read and nothing sent (the daemon's 503)
    dl = worker(s, "die-after-last", "qdl", "http://+:%d/dl/" % port, trigger="kill")
    dm = worker(s, "die-mid-response", "qdm", "http://+:%d/dm/" % port, trigger="kill")
    dd = worker(s, "die", "qdd", "http://+:%d/dd/" % port, trigger="kill")
    time.sleep(0.1)
    for path, proc in (("/dl/kill", dl), ("/dm/kill", dm), ("/dd/kill", dd)):
        c = s.conn(port)
        c.send(get_req(path))
        try:
            c.read_all(timeout=5)
        except Exception:
            pass
        c.close()
        proc.wait(5)
    # over TLS: three requests on one connection (the worker keeps it), and plain HTTP sent
    # to the TLS port (the daemon's 400)
    tport = s.free_port()
    cert, key = s.tls_certificate()
    for ep in ("0.0.0.0:%d" % tport, "[::]:%d" % tport):
        check_eq(d.ctl("sslcert", "add", "--ipport", ep, "--cert", cert, "--key", key).returncode, 0,
                 "sslcert add --ipport %s" % ep)
    t = s.hello(["https://+:%d/t/" % tport], queue="qt", text="T")
    time.sleep(0.1)
    r = s.curl(["--cacert", cert, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} ",
                "https://localhost:%d/t/1" % tport, "https://localhost:%d/t/2" % tport,
                "https://localhost:%d/t/3" % tport])
    check_eq(r.stdout.split(), ["200", "200", "200"], "three requests over TLS on one connection")
    c = s.conn(tport)
    c.send(get_req("/t/plain"))
    check_eq(c.read_response().status, 400, "plain HTTP to the TLS port: 400")
    c.close()

    # a reload that turns the log off: what comes then is not logged; on again, it is
    d.write_config(["listen 127.0.0.1"] if not s.defaults else [])
    mark = d.mark()
    d.reload()
    d.wait_log(r"reloaded", since=mark)
    check_eq(s.get(s.url(port, "/a/off")).status, 200, "served with the log off")
    d.write_config((["listen 127.0.0.1"] if not s.defaults else []) + ["AccessLog %s" % log])
    mark = d.mark()
    d.reload()
    d.wait_log(r"reloaded", since=mark)
    check_eq(s.get(s.url(port, "/a/on")).status, 200, "served with the log on again")

    check(wait_until(lambda: "GET /a/on HTTP/1.1" in by_request(read_log(log)), 3),
          "lines are written within a second or so")
    lines = read_log(log)
    seen = by_request(lines)
    say("  %d lines; e.g.\n    %s" % (len(lines), "\n    ".join(open(log).read().splitlines()[-6:])))

    def fields(req):
        return [(ln[3], ln[7], ln[8]) for ln in seen.get(req, [])]

    def one(req, status, queue, pid, what):
        check_eq(fields(req), [(status, queue, str(pid) if pid else "-")],
                 "%s: logged exactly once (status, queue, worker pid)" % what)
        return seen[req][0]

    wrong = [i for i in range(1000) if fields("GET /a/k%d HTTP/1.1" % i) != [("200", "qa", str(a.pid))]]
    check_eq(wrong, [], "each of the 1,000 keep-alive requests logged exactly once, 200, queue qa, its pid")
    one("GET /a/p1 HTTP/1.1", "200", "qa", a.pid, "pipelined /a/p1")
    one("GET /b/p2 HTTP/1.1", "200", "qb", b.pid, "pipelined /b/p2")
    one("GET /a/p3 HTTP/1.1", "200", "qa", a.pid, "pipelined /a/p3")
    ln = one("GET /a/esc HTTP/1.1", "200", "qa", a.pid, "odd headers")
    check_eq(ln[5], 'http://r/\\x22q\\x22\\x5C', "Referer escaped")
    check_eq(ln[6], 'ag\\xC3\\xA9nt \\x22x\\x22', "User-Agent escaped")
    one("GET /nothing HTTP/1.1", "404", "-", None, "the daemon's 404")
    one("OPTIONS * HTTP/1.1", "200", "-", None, "OPTIONS *")
    one("GET /a/\\x01bad HTTP/1.1", "400", "-", None, "the daemon's 400")
    one("GET /up/x HTTP/1.1", "101", "qup", up.pid, "the upgrade")
    one("GET /dl/kill HTTP/1.1", "200", "qdl", dl.pid, "killed after a whole response")
    ln = one("GET /dm/kill HTTP/1.1", "200", "qdm", dm.pid, "killed mid-response")
    check_eq(ln[4], "100", "killed mid-response: the body bytes that went")
    one("GET /dd/kill HTTP/1.1", "503", "qdd", None, "killed with the request read: the daemon's 503")
    for i in (1, 2, 3):
        one("GET /t/%d HTTP/1.1" % i, "200", "qt", t.pid, "over TLS, request %d" % i)
    one("GET /t/plain HTTP/1.1", "400", "-", None, "plain HTTP to the TLS port")
    check("GET /a/off HTTP/1.1" not in seen, "nothing logged while the log was off")
    one("GET /a/on HTTP/1.1", "200", "qa", a.pid, "logged again once it is back on")
    check(all(ln[0] in ("127.0.0.1", "::1") for ln in lines), "the client's address")
    durations = [int(ln[9]) for ln in lines]
    check(all(0 <= x < 5000000 for x in durations), "durations in µs, sane")

    # goaccess (Debian's) reads it as the combined format
    out = s.path("goaccess.json")
    r = s.run(["goaccess", log, "--log-format=COMBINED", "--no-global-config", "-o", out], timeout=60)
    check_eq(r.returncode, 0, "goaccess exit status: %s" % r.stderr[-300:])
    g = json.load(open(out))["general"]
    say("  goaccess: total %d, valid %d, failed %d" % (g["total_requests"], g["valid_requests"],
                                                        g["failed_requests"]))
    check_eq(g["total_requests"], len(lines), "goaccess read every line")
    check_eq(g["failed_requests"], 0, "goaccess failed none")
