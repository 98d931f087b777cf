# 105-proxy-headers: what the backend sees (Forwarded and X-Forwarded-For/-Proto/-Host from what the daemon saw, the client's own values of them dropped, hop-by-hop headers and those Connection names removed, Host kept, the canonical path) and what the client sees (the backend's hop-by-hop headers removed, end-to-end ones kept); --strip-prefix. Also with PORTSHARE_DEFAULTS=1.
import json
from harness import Story, check, check_eq, get_req
from proxy_help import backend, proxy

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    proxy(s, ["http://+:%d/app/" % port], "http://127.0.0.1:%s" % bport, queue="plain")
    proxy(s, ["http://+:%d/strip/" % port], "http://127.0.0.1:%s" % bport, queue="strip", extra=["--strip-prefix"])

    def seen(host, path, extra=""):
        c = s.conn(port, host)
        r = c.request(get_req(path, host="Example.COM:%d" % port, extra=extra))
        c.close()
        check_eq(r.status, 200, "GET %s on %s: status" % (path, host))
        got = json.loads(r.body)
        return got, {k.lower(): v for k, v in got["headers"]}, [k.lower() for k, _ in got["headers"]], r

    spoof = ("X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n"
             "Forwarded: for=6.6.6.6;proto=https\r\nx-forwarded-for: 7.7.7.7\r\n")
    hop = ("Connection: keep-alive, X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\n"
           "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-End: kept\r\n")
    for host in s.hosts:
        got, h, names, _ = seen(host, "/app/a//b/../c?q=1&r=2", spoof + hop)
        check_eq(got["target"], "/app/a/c?q=1&r=2", "the backend gets the canonical path the daemon routed on (%s)" % host)
        check_eq(got["version"], "HTTP/1.1", "and speaks HTTP/1.1 to it")
        check_eq(names.count("x-forwarded-for"), 1, "one X-Forwarded-For reaches the backend (%s)" % host)
        check_eq(h.get("x-forwarded-for"), host, "X-Forwarded-For is the client's address as the daemon saw it")
        check_eq(h.get("x-forwarded-proto"), "http", "X-Forwarded-Proto is http (ps_request_scheme)")
        check_eq(h.get("x-forwarded-host"), "Example.COM:%d" % port, "X-Forwarded-Host is the Host the client sent")
        check_eq(names.count("forwarded"), 1, "one Forwarded header")
        want_for = '"[%s]"' % host if ":" in host else host
        check_eq(h.get("forwarded"), 'for=%s;host="Example.COM:%d";proto=http' % (want_for, port),
                 "Forwarded says for, host and proto (RFC 7239)")
        check("6.6.6.6" not in r"%s" % got["headers"] and "7.7.7.7" not in "%s" % got["headers"]
              and "evil" not in "%s" % got["headers"], "no value the client sent for them reaches the backend")
        for name in ("keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-secret-hop"):
            check(name not in names, "hop-by-hop %s is not passed on" % name, "%r" % got["headers"])
        check(h.get("connection") is None, "the client's Connection header is not passed on", "%r" % got["headers"])
        check_eq(h.get("x-end"), "kept", "an end-to-end header is passed on")
        check_eq(h.get("host"), "Example.COM:%d" % port, "Host is passed on as the client sent it")

    # HTTP/1.0 without Host: the backend still gets one
    c = s.conn(port)
    r = c.request(b"GET /app/old HTTP/1.0\r\n\r\n")
    got = json.loads(r.body)
    h = {k.lower(): v for k, v in got["headers"]}
    check(got["version"] == "HTTP/1.1" and h.get("host") == "127.0.0.1",
          "an HTTP/1.0 request without Host reaches the backend as HTTP/1.1 with a Host", repr(got))
    c.close()

    # an absolute-form target: its authority is the host (RFC 9112 3.2.2), whatever Host says
    c = s.conn(port)
    r = c.request(b"GET http://Other.Example:%d/app/abs?z=1 HTTP/1.1\r\nHost: ignored.example\r\n\r\n" % port)
    got = json.loads(r.body) if r.status == 200 else {}
    h = {k.lower(): v for k, v in got.get("headers", [])}
    check(got.get("target") == "/app/abs?z=1" and h.get("host") == "Other.Example:%d" % port
          and "ignored" not in r.body.decode(), "an absolute-form request reaches the backend in origin form, "
          "with the authority as Host", repr(r))
    c.close()

    # the reply's hop-by-hop headers do not reach the client
    r = s.get(s.url(port, "/strip/hop"))
    names = [k.lower() for k, _ in r.headers]
    check_eq((r.status, r.body), (200, b"hop\n"), "GET /strip/hop")
    for name in ("x-hop", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"):
        check(name not in names, "the reply's hop-by-hop %s is not passed on" % name, repr(r.headers))
    check(dict((k.lower(), v) for k, v in r.headers).get("connection") in (None, "keep-alive"),
          "the reply's Connection value is the library's, not the backend's", repr(r.headers))
    check(("x-end-to-end", "kept") in [(k.lower(), v) for k, v in r.headers], "the reply's end-to-end header is kept")

    # --strip-prefix: /strip/x reaches the backend as /x, the bare /strip as /
    for path, want in (("/strip/headers", "/headers"), ("/strip/a/b?x=1", "/a/b?x=1"), ("/strip", "/"),
                       ("/strip/", "/")):
        got, _, _, r = seen(s.hosts[0], path)
        check_eq(got["target"], want, "--strip-prefix: %s reaches the backend as" % path)
    got, _, _, r = seen(s.hosts[0], "/app/headers")
    check_eq(got["target"], "/app/headers", "without --strip-prefix the path is kept whole")
