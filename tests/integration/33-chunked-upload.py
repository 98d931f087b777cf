# 33-chunked-upload: chunked request bodies (curl -T -, raw with extensions and trailers) reach workers de-chunked and exact.
import os
from harness import Story, check, check_eq, fnv1a

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    echo = s.upload_echo("http://+:%d/e/" % port)
    w = s.testworker(["http://+:%d/t/" % port], text="T")
    data = os.urandom(256 * 1024 + 123)

    out = s.path("echoed")
    res = s.curl(["-T", "-", "-o", out, "-w", "%{http_code}", "http://127.0.0.1:%d/e/up" % port], input_bytes=data)
    check_eq((res.returncode, res.stdout), (0, "200"), "curl -T - to upload-echo: exit status and HTTP status")
    with open(out, "rb") as f:
        got = f.read()
    check(got == data, "upload-echo returned the %d bytes exactly" % len(data), "got %d bytes" % len(got))

    res = s.curl(["-T", "-", "-D", "-", "-o", out, "http://127.0.0.1:%d/t/up" % port], input_bytes=data)
    with open(out, "rb") as f:
        got = f.read()
    check_eq(got, ("T pid=%d path=/t/up body=%d\n" % (w.pid, len(data))).encode(), "curl -T - to testworker: length")
    check("x-body-fnv1a: " + fnv1a(data) in res.stdout.lower(), "testworker read exactly the uploaded bytes",
          res.stdout[:400])

    raw_body = (b"5;name=val\r\nhello\r\n6;c;q=\"a b\"\r\n world\r\n0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n")
    c = s.conn(port)
    c.send(b"POST /t/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + raw_body +
           b"GET /t/after HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    check(r.status == 200 and r.body == ("T pid=%d path=/t/c body=11\n" % w.pid).encode()
          and r.header("X-Body-FNV1a") == fnv1a(b"hello world"),
          "raw chunked body with extensions and trailers: 11 bytes, exact", repr(r))
    r = c.read_response()
    check(r.status == 200 and r.body == ("T pid=%d path=/t/after\n" % w.pid).encode(),
          "request pipelined after the trailers answered", repr(r))
    c.close()

    c = s.conn(port)
    c.send(b"POST /e/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + raw_body)
    r = c.read_response()
    check(r.status == 200 and r.body == b"hello world", "upload-echo echoes the de-chunked raw body", repr(r))

    # a body over the queue's limit (ps_queue_opts.max_body): 413 and close
    small = s.testworker(["http://+:%d/small/" % port], text="S", max_body=100)
    c = s.conn(port)
    c.send(b"POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"y" * 1000)
    r = c.read_response(timeout=3)
    check_eq(r.status, 413, "Content-Length 1000 to a queue with max_body 100: status")
    how, extra = c.wait_closed(3)
    check(how in ("eof", "reset") and extra == b"", "and the connection is closed", how)
    c = s.conn(port)
    r = c.request(b"POST /small/y HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"y" * 100)
    check(r.status == 200 and r.body == ("S pid=%d path=/small/y body=100\n" % small.pid).encode(),
          "a body of exactly max_body is served", repr(r))

    # RFC 9112 7.1.1 allows an extension after one with a value (5;a=b;c), but llhttp 8.1
    # (the parser that frames bodies, DESIGN 5a) refuses it: a known gap, written down in
    # docs/DECISIONS.md. What we hold is the safe side of it: a clean 400 and close, never
    # a mis-framed body, and the next client is served.
    c = s.conn(port)
    r = c.request(b"POST /t/ext2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;a=b;c\r\nhello\r\n6;a=b;c=d\r\n world\r\n0\r\n\r\n")
    check_eq(r.status, 400, "chunk extension after a valued one (llhttp 8.1 refuses it): status")
    how, extra = c.wait_closed(3)
    check(how in ("eof", "reset") and extra == b"", "and the connection is closed", how)
    c = s.conn(port)
    r = c.request(b"POST /t/ext3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;a;c\r\nhello\r\n6;c;a=b\r\n world\r\n0\r\n\r\n")
    check(r.status == 200 and r.body == ("T pid=%d path=/t/ext3 body=11\n" % w.pid).encode(),
          "valueless extensions, and a valued one last, are accepted", repr(r))
