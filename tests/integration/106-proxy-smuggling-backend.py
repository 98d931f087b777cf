# 106-proxy-smuggling-backend: a backend's reply with bad framing (two Content-Lengths, Content-Length with Transfer-Encoding, a coding other than chunked, a bad chunk size, obs-fold, bare LF) gets the client a 502 and the backend connection dropped; a second reply slipped in after the first never reaches any client.
import re
from harness import Story, check, check_eq, get_req, wait_until
from proxy_help import backend, connections_seen, proxy

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    px = proxy(s, ["http://+:%d/" % port], "http://127.0.0.1:%s" % bport, extra=["--threads", "1"])

    # the reason logged: llhttp's own, or the proxy's check where llhttp 8.1 has none
    for kind, why in (("cl-twice", "uplicate Content-Length|more than one Content-Length"),
                      ("cl-te", "Content-Length can't be present with Transfer-Encoding|Content-Length with Transfer-Encoding"),
                      ("te-identity", "Transfer-Encoding other than one chunked"),
                      ("bad-chunk", "malformed reply body: Invalid character in chunk size"),
                      ("obs-fold", "obs-fold in the head"),
                      ("bare-lf", "bare LF in the head")):
        c = s.conn(port)
        c.send(get_req("/smuggle/" + kind))
        if kind == "bad-chunk":
            data, how = c.read_all(1.5)
        else:
            data = c.read_response().raw
        c.close()
        if kind == "bad-chunk":
            # the head was good; the bad chunk came with it, so nothing had gone out: a 502
            # (had the response begun, the connection would be reset instead)
            ok = b"hello" not in data and (data.startswith(b"HTTP/1.1 502 ") or how == "reset")
            check(ok, "%s: nothing of the bad body reaches the client: 502 (or a reset)" % kind,
                  "%s %r" % (how, data[:300]))
        else:
            check(data.startswith(b"HTTP/1.1 502 ") and b"hello" not in data,
                  "%s: the client gets 502, no byte of the bad reply" % kind, repr(data[:300]))
        before = connections_seen(b)
        check(wait_until(lambda: re.search(why, px.stderr()), 3), "%s: the proxy logged %r" % (kind, why), px.stderr()[-300:])
        r = s.get(s.url(port, "/download?n=10"))
        check(r.status == 200 and len(r.body) == 10, "%s: the next request is served" % kind, repr(r))
        check_eq(connections_seen(b) - before, 1, "%s: the bad connection was dropped (the next request opened "
                 "a new one)" % kind)

    # a second reply right after the first, in the same write: the first is answered,
    # the second never becomes the answer to anything
    c = s.conn(port)
    r = c.request(get_req("/smuggle/two-replies"))
    check(r.status == 200 and r.body == b"first", "two replies at once: the first is the answer", repr(r))
    for i in range(3):
        r = c.request(get_req("/headers"))
        check(r.status == 200 and b"second" not in r.body and r.header("X-Smuggled") is None
              and r.body.startswith(b"{"), "request %d after it gets its own reply, not the smuggled one" % (i + 1),
              repr(r))
    c.close()
    check(b.alive() and px.alive(), "backend and proxy still running")
