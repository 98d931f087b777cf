# 81-delegation-foreign-in-pipeline: on a connection delegated to A, pipelined requests for A and B (one send, then the foreign request split at many offsets) come back in order from the right app; routing by host and canonical path is the daemon's; 404 and bad heads get the daemon's answers.
import re
from harness import Story, check, check_eq, find_queue, get_req, hello_body_re, body_pid, same_path

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="A")
    b = s.hello(["http://+:%d/b/" % port], text="B")
    hn = s.hello(["http://h.test:%d/c/" % port], text="HN")  # host-name class, a path "+" does not have
    owner = {"/a/": ("A", a.pid), "/b/": ("B", b.pid)}

    def right(r, path):
        text, pid = owner[path[:3]]
        return r.status == 200 and hello_body_re(text, path).match(r.text()) is not None and body_pid(r.body) == pid

    def delegated_conn(tag):
        """A connection whose first request went to A (so A may now hold it)."""
        c = s.conn(port)
        r = c.request(get_req("/a/%s-first" % tag))
        if not right(r, "/a/%s-first" % tag):
            check(False, "%s: first request /a/%s-first answered by A" % (tag, tag), repr(r))
        return c

    # one send, five pipelined requests, alternating owners
    c = delegated_conn("one-send")
    st = d.status()
    check_eq(st.get("connections_in_workers"), 1, "after the first response the connection stays with A (delegated)")
    paths = ["/a/1", "/b/1", "/a/2", "/b/2", "/a/3"]
    c.send(b"".join(get_req(p) for p in paths))
    got = [c.read_response(timeout=5) for _ in paths]
    for p, r in zip(paths, got):
        check(right(r, p), "pipelined in one send: %s answered by %s, in order" % (p, owner[p[:3]][0]), repr(r))
    check(not c.readable_within(0.2), "nothing more on the connection after the five responses")
    r = c.request(get_req("/a/4"))
    check(right(r, "/a/4"), "the connection goes on after the pipeline: /a/4", repr(r))
    c.close()

    # the foreign request's bytes split across two sends, at several offsets: A reads its own
    # request and only part of B's; it must not answer, misroute or lose a byte of it
    a1, b1, a2 = get_req("/a/s1"), get_req("/b/s1", extra="X-Pad: %s\r\n" % ("p" * 40)), get_req("/a/s2")
    data = a1 + b1 + a2
    end_of_b = len(a1) + len(b1)
    offsets = sorted(set([len(a1), len(a1) + 1, len(a1) + 4, len(a1) + 5, len(a1) + 7, len(a1) + 16,
                          len(a1) + b1.index(b"\r\n") + 1, len(a1) + b1.index(b"X-Pad") + 10,
                          end_of_b - 3, end_of_b - 2, end_of_b - 1, end_of_b + 3]))
    failures = []
    for k in offsets:
        c = delegated_conn("split%d" % k)
        c.send(data, split_at=k, pause=0.05)
        rs = []
        for p in ("/a/s1", "/b/s1", "/a/s2"):
            rs.append(c.read_response(timeout=5))
        ok = right(rs[0], "/a/s1") and right(rs[1], "/b/s1") and right(rs[2], "/a/s2")
        if not ok:
            failures.append((k, rs))
        extra = c.readable_within(0.05)
        if extra:
            failures.append((k, "extra bytes %r" % bytes(c.buf[:200])))
        c.close()
    check(not failures, "split at %d offsets (%s): /a/s1, /b/s1, /a/s2 answered in order by A, B, A"
          % (len(offsets), ",".join(str(k - len(a1)) for k in offsets)), repr(failures[:2]))

    # a long pause inside the foreign head: A holds half a head for a while
    c = delegated_conn("slow")
    k = len(a1) + b1.index(b"Host")
    c.send(a1 + b1[:k - len(a1)])
    r = c.read_response(timeout=5)
    check(right(r, "/a/s1"), "slow split: A answers its own request first", repr(r))
    check(not c.readable_within(0.4), "nothing answers half a head")
    c.send(b1[k - len(a1):] + a2)
    r1, r2 = c.read_response(timeout=5), c.read_response(timeout=5)
    check(right(r1, "/b/s1") and right(r2, "/a/s2"), "slow split: then B and A answer", repr((r1, r2)))
    c.close()

    # heads A cannot serve itself: no prefix (404 from the daemon, connection kept), then
    # A again, then a malformed head (400 from the daemon, then close)
    c = delegated_conn("daemon")
    c.send(get_req("/a/5") + get_req("/c/1") + get_req("/a/6"))
    r5, r404, r6 = c.read_response(), c.read_response(), c.read_response()
    check(right(r5, "/a/5"), "pipelined /a/5 answered by A", repr(r5))
    check_eq(r404.status, 404, "pipelined /c/1 (no prefix) answered 404 by the daemon")
    check(right(r6, "/a/6"), "pipelined /a/6 after the 404 answered by A", repr(r6))
    c.send(get_req("/a/7") + b"GET /a/8 HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
    r7 = c.read_response()
    check(right(r7, "/a/7"), "/a/7 before a malformed head answered by A", repr(r7))
    r400 = c.read_response()
    check_eq(r400.status, 400, "malformed head after a delegated response: 400 from the daemon")
    how, rest = c.wait_closed(3)
    check(how in ("eof", "reset") and rest == b"", "and the connection is closed after the 400", "%s %r" % (how, rest))

    # routing on a delegated connection is the daemon's: host class, canonical path
    # (want app, canonical path the app sees), sent on a connection A holds
    routing = [
        ("GET /a/../b/x HTTP/1.1\r\nHost: x\r\n\r\n", "B", "/b/x"),
        ("GET /a/%2e%2e/b/y HTTP/1.1\r\nHost: x\r\n\r\n", "B", "/b/y"),
        ("GET /a/./../b/z HTTP/1.1\r\nHost: x\r\n\r\n", "B", "/b/z"),
        ("GET /%62/w HTTP/1.1\r\nHost: x\r\n\r\n", "B", "/b/w"),
        ("GET //b//v HTTP/1.1\r\nHost: x\r\n\r\n", "B", "/b/v"),
        ("GET /b/../a/u HTTP/1.1\r\nHost: x\r\n\r\n", "A", "/a/u"),
        ("GET /%61/t HTTP/1.1\r\nHost: x\r\n\r\n", "A", "/a/t"),
        ("GET /a/y%2Fz HTTP/1.1\r\nHost: x\r\n\r\n", "A", "/a/y%2Fz"),
        ("GET /a/%252e%252e/b HTTP/1.1\r\nHost: x\r\n\r\n", "A", "/a/%252e%252e/b"),
        ("GET /c/1 HTTP/1.1\r\nHost: h.test\r\n\r\n", "HN", "/c/1"),
        ("GET /c/2 HTTP/1.1\r\nHost: H.Test:%d\r\n\r\n" % port, "HN", "/c/2"),
        ("GET http://h.test/c/3 HTTP/1.1\r\nHost: x\r\n\r\n", "HN", "/c/3"),
        ("GET /a/4 HTTP/1.1\r\nHost: h.test\r\n\r\n", "A", "/a/4"),
        ("GET /c/5 HTTP/1.1\r\nHost: other.test\r\n\r\n", 404, None),
        ("GET http://other.test/c/6 HTTP/1.1\r\nHost: h.test\r\n\r\n", 404, None),
    ]
    pids = {"A": a.pid, "B": b.pid, "HN": hn.pid}
    c = delegated_conn("routing")
    bad = []
    for req, want, path in routing:
        r = c.request(req.encode())
        m = re.match(r"^(\S+) pid=(\d+) path=(\S*)\n$", r.text())
        if isinstance(want, int):
            ok = r.status == want and m is None
        else:
            ok = (r.status == 200 and m is not None and m.group(1) == want and int(m.group(2)) == pids[want]
                  and same_path(m.group(3), path))
        if not ok:
            bad.append((req.split("\r\n")[0], req.split("\r\n")[1], want, path, r))
        r = c.request(get_req("/a/between"))  # back to A, which holds the connection again
        if not right(r, "/a/between"):
            bad.append(("/a/between after", req.split("\r\n")[0], r))
    check(not bad, "%d requests on a connection A holds, each followed by one for A: routed by host class and "
          "canonical path exactly as the daemon routes" % len(routing), repr(bad[:3]))
    c.close()

    # heads the daemon refuses are refused the same on a delegated connection (A's library
    # must not serve what the daemon would not): status, short body, then close
    H = "Host: x\r\n"
    refused = [
        ("bare LF", b"GET /a/1 HTTP/1.1\nHost: x\n\n", 400),
        ("bare LF in a header line", b"GET /a/1 HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
        ("bare LF as the final empty line", b"GET /a/1 HTTP/1.1\r\nHost: x\r\n\n", 400),
        ("lone CR", b"GET /a/1 HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400),
        ("obs-fold", b"GET /a/1 HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400),
        ("obs-fold hiding Content-Length",
         b"POST /a/1 HTTP/1.1\r\nHost: x\r\nX-A: b\r\n Content-Length: 5\r\n\r\nhello", 400),
        ("duplicate Host", b"GET /a/1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
        ("no Host on HTTP/1.1", b"GET /a/1 HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
        ("Content-Length and Transfer-Encoding",
         b"POST /a/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("duplicate Content-Length",
         b"POST /a/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400),
        ("Transfer-Encoding: chunked, identity",
         b"POST /a/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding: identity, chunked",
         b"POST /a/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 400),
        ("Transfer-Encoding: xchunked", b"POST /a/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
        ("unknown method FOO", b"FOO /a/1 HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
        ("/a/../../ climbs above /", b"GET /a/../../b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("encoded NUL", b"GET /a/%00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("invalid escape", b"GET /a/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("%2F that changes the route", b"GET /a%2Fb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("control character", b"GET /a/\x01b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("URL segment over 260 bytes", ("GET /a/%s HTTP/1.1\r\n%s\r\n" % ("s" * 300, H)).encode(), 414),
        ("one header too large", ("GET /a/1 HTTP/1.1\r\n%sX-%s: v\r\n\r\n" % (H, "h" * 20000)).encode(), 431),
        ("request line too long", ("GET /a/%s HTTP/1.1\r\n%s\r\n" % ("a/" * 9000, H)).encode(), 414),
    ]
    bad = []
    for name, data, status in refused:
        c = delegated_conn("refused")
        c.send(data)
        r = c.read_response(timeout=3)
        how, extra = c.wait_closed(3)
        if r.status != status or b"pid=" in r.body or not (0 < len(r.body) < 1024) \
                or how not in ("eof", "reset") or extra != b"":
            bad.append((name, r, how, extra[:60]))
        c.close()
    check(not bad, "%d malformed or refused heads after a delegated response: the daemon's status, short body, close"
          % len(refused), repr(bad[:3]))
    for version, status in ((b"HTTP/1.2", 505), (b"HTTP/2.0", 505)):
        c = delegated_conn("version")
        r = c.request(b"GET /a/1 " + version + b"\r\nHost: x\r\n\r\n")
        check_eq(r.status, status, "%s after a delegated response: status" % version.decode())
        c.close()
    c = delegated_conn("options")
    r = c.request(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    check(r.status == 200 and r.body == b"" and "GET" in (r.header("Allow") or ""),
          "OPTIONS * after a delegated response: the daemon's 200 with Allow", repr(r))
    r = c.request(get_req("/a/after-options"))
    check(right(r, "/a/after-options"), "and the connection goes on", repr(r))
    c.close()
    c = delegated_conn("h09")
    c.send(b"GET /a/1\r\n")
    data, how = c.read_all(3)
    check(how in ("eof", "reset") and data == b"", "HTTP/0.9 request line after a delegated response: closed, no bytes",
          "%s %r" % (how, data[:100]))
    c.close()

    # status: both apps served their requests, some of A's by A alone
    qa, qb = find_queue(d.status(), a.queue), find_queue(d.status(), b.queue)
    print("  queue A served %r delegated %r; queue B served %r delegated %r"
          % (qa.get("served"), qa.get("delegated"), qb.get("served"), qb.get("delegated")))
    check(qa.get("delegated", 0) > 0, "some of A's requests were served by A alone (delegated %r)" % qa.get("delegated"))
