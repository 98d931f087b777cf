# 104-proxy-backend-failures: portshare-proxy answers 502 when the backend refuses connections, aborts the client connection when the backend breaks mid-reply (reset or early close), 504 after --backend-timeout; each with a reason on stderr; the proxy serves on afterwards.
import time
from harness import Story, check, check_eq, get_req, wait_until
from proxy_help import backend, proxy

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    dead = s.free_port()  # nothing listens there

    # 502: the backend refuses the connection
    down = proxy(s, ["http://+:%d/down/" % port], "http://127.0.0.1:%d" % dead, queue="down")
    c = s.conn(port)
    r = c.request(get_req("/down/x"))
    check_eq(r.status, 502, "backend refusing connections: status")
    check(wait_until(lambda: "502 Bad Gateway: backend 127.0.0.1:%d: connect failed: Connection refused (GET /down/x)"
                     % dead in down.stderr(), 3), "the proxy logged why (connect refused)", down.stderr()[-300:])
    r = c.request(get_req("/down/y"))
    check_eq(r.status, 502, "the client connection goes on after a 502: next request also 502")
    c.close()

    b, bport = backend(s)
    px = proxy(s, ["http://+:%d/b/" % port], "http://127.0.0.1:%s" % bport, queue="b",
               extra=["--backend-timeout", "2", "--strip-prefix"])

    # abort: the backend resets in the middle of a Content-Length body
    for path, what in (("/b/abort", "reset"), ("/b/close-early", "FIN")):
        c = s.conn(port)
        c.send(get_req(path))
        data, how = c.read_all(5)
        check(data.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 1000000" in data,
              "%s mid-reply: the head went out (%s)" % (what, path), repr(data[:200]))
        body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
        check(how in ("reset", "eof") and len(body) < 1000000,
              "%s mid-reply: the client connection is ended before the declared length (%d of 1000000 bytes, %s)"
              % (what, len(body), how))
        r = s.get(s.url(port, path))
        check(r.rc != 0, "curl sees %s mid-reply as a failure, never a whole response" % what, repr(r))
    check(wait_until(lambda: "abort: backend 127.0.0.1:%s: the backend closed the connection in the middle of its reply"
                     % bport in px.stderr() or "abort: backend 127.0.0.1:%s: reading the reply" % bport in px.stderr(), 3),
          "the proxy logged the abort with its reason", px.stderr()[-500:])

    # 504: the backend answers after the timeout (2 s)
    t0 = time.monotonic()
    r = s.get(s.url(port, "/b/slow?s=4"))
    took = time.monotonic() - t0
    check_eq(r.status, 504, "backend slower than --backend-timeout 2: status")
    check(1.8 <= took < 3.8, "the 504 came after about 2 s (%.1f s)" % took)
    check(wait_until(lambda: "504 Gateway Timeout: backend 127.0.0.1:%s: no reply within 2 s (GET /b/slow?s=4)"
                     % bport in px.stderr(), 3), "the proxy logged the 504 with its reason", px.stderr()[-500:])

    # a backend within the timeout, after all that: served
    r = s.get(s.url(port, "/b/slow?s=0.5"))
    check(r.status == 200 and r.body == b"late\n", "a reply within the timeout is served", repr(r))
    r = s.get(s.url(port, "/b/download?n=100"))
    check(r.status == 200 and len(r.body) == 100, "and the proxy serves on", repr(r))

    # the backend goes away: 502 for the next request
    b.stop()
    r = s.get(s.url(port, "/b/headers"))
    check_eq(r.status, 502, "backend stopped: the next request gets 502 (stale pooled connection, then refused)")
    check(px.alive() and down.alive(), "both proxies are still running")
