# 32-expect-100: "HTTP/1.1 100 Continue" arrives before the client sends the body (raw and curl); none for HTTP/1.0.
import os
from harness import Story, check, check_eq, fnv1a

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = s.testworker(["http://+:%d/u/" % port], text="U")

    c = s.conn(port)
    c.send(b"POST /u/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    check_eq((r.version, r.status), ("HTTP/1.1", 100), "interim response before the body is sent")
    c.send(b"abcde")
    r = c.read_response(timeout=5)
    check(r.status == 200 and r.body == ("U pid=%d path=/u/e body=5\n" % w.pid).encode()
          and r.header("X-Body-FNV1a") == fnv1a(b"abcde"), "final response after the body", repr(r))
    # the connection goes on
    r = c.request(b"GET /u/next HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(r.status, 200, "next request on the same connection")
    c.close()

    # the daemon answering a request with a body itself (no prefix): no 100, the answer, then close
    c = s.conn(port)
    c.send(b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    check_eq(r.status, 404, "Expect on a request the daemon answers itself: the final status, no 100 first")
    how, extra = c.wait_closed(3)
    check(how in ("eof", "reset") and extra == b"", "and the connection is closed (its body was never sent)", how)
    c.close()

    # HTTP/1.0: no 100 Continue (RFC 9110 10.1.1)
    c = s.conn(port)
    c.send(b"POST /u/e10 HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    check(not c.readable_within(0.5), "HTTP/1.0 with Expect: nothing sent before the body")
    c.send(b"xyz")
    r = c.read_response(timeout=5)
    check(r.status == 200 and r.body.endswith(b"body=3\n"), "HTTP/1.0 body answered with a final response", repr(r))

    # curl with an explicit Expect header and a 300 KiB body
    data = os.urandom(300 * 1024)
    path = s.path("upload.bin")
    with open(path, "wb") as f:
        f.write(data)
    res = s.curl(["-v", "-H", "Expect: 100-continue", "--data-binary", "@" + path, "-D", "-", "-o", s.path("out"),
                  "http://127.0.0.1:%d/u/curl" % port])
    check_eq(res.returncode, 0, "curl upload exit status")
    check("HTTP/1.1 100 Continue" in res.stdout + res.stderr, "curl saw HTTP/1.1 100 Continue", res.stderr[-600:])
    with open(s.path("out"), "rb") as f:
        out = f.read()
    check_eq(out, ("U pid=%d path=/u/curl body=%d\n" % (w.pid, len(data))).encode(), "curl upload answer")
    check("x-body-fnv1a: " + fnv1a(data) in res.stdout.lower(), "worker read exactly the uploaded bytes")
