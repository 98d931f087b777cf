# 30-pipelining: four pipelined GETs to two apps in one send come back in order; HEAD keeps Content-Length; HTTP/1.0 keep-alive.
from harness import Story, check, check_eq, get_req, hello_body_re, body_pid, parse_responses

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="A")
    b = s.hello(["http://+:%d/b/" % port], text="B")
    owner = {"/a/": ("A", a.pid), "/b/": ("B", b.pid)}

    def check_answer(r, path, what):
        text, pid = owner[path[:3]]
        check(r.status == 200 and hello_body_re(text, path).match(r.text()) is not None and body_pid(r.body) == pid,
              "%s: %s answered by %s" % (what, path, text), repr(r))

    c = s.conn(port)
    paths = ["/a/1", "/b/1", "/a/2", "/b/2"]
    c.send(b"".join(get_req(p) for p in paths))
    for p in paths:
        check_answer(c.read_response(), p, "pipelined")

    # HEAD: same Content-Length as GET, no body; a GET pipelined behind it is parsed right
    c.send(get_req("/a/h", method="HEAD") + get_req("/b/after-head"))
    h = c.read_response(method="HEAD")
    check_eq(h.status, 200, "HEAD /a/h status")
    check_eq(h.header("Content-Length"), str(len(("A pid=%d path=/a/h\n" % a.pid).encode())),
             "HEAD /a/h keeps the GET's Content-Length")
    check_answer(c.read_response(), "/b/after-head", "after HEAD")
    check(not c.readable_within(0.3), "no stray bytes after the HEAD response (no body was sent)")

    # more pipelining on the same (already handed over several times) connection
    c.send(get_req("/b/3") + get_req("/a/3"))
    check_answer(c.read_response(), "/b/3", "second batch")
    check_answer(c.read_response(), "/a/3", "second batch")
    c.close()

    # HTTP/1.0 with keep-alive: the connection stays open for a second request
    c = s.conn(port)
    r = c.request(get_req("/a/10", version="1.0", extra="Connection: keep-alive\r\n"))
    check_answer(r, "/a/10", "HTTP/1.0 keep-alive")
    check(r.header("Content-Length") is not None, "HTTP/1.0 keep-alive response has Content-Length", repr(r.headers))
    r = c.request(get_req("/b/10", version="1.0", extra="Connection: keep-alive\r\n"))
    check_answer(r, "/b/10", "HTTP/1.0 keep-alive, second request on the same connection")
    c.close()

    # HTTP/1.0 without keep-alive: answered, then closed
    c = s.conn(port)
    c.send(b"GET /a/11 HTTP/1.0\r\n\r\n")
    data, how = c.read_all(5)
    check(how in ("eof", "reset"), "HTTP/1.0 without keep-alive: connection closed after the response", how)
    rs, rest = parse_responses(data, ["GET"])
    check_answer(rs[0], "/a/11", "HTTP/1.0 close")
    check_eq(rest, b"", "nothing after the HTTP/1.0 response")
