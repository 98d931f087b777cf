# 31-body-then-next-request-split: a POST with a body to /a/ and a GET to /b/ in one buffer, split in two writes at every offset.
from harness import Story, StoryFailure, check, fail, fnv1a

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.testworker(["http://+:%d/a/" % port], text="A")
    b = s.testworker(["http://+:%d/b/" % port], text="B")
    body = b"hello world"
    second = b"GET /b/x HTTP/1.1\r\nHost: x\r\n\r\n"
    variants = {
        "content-length": b"POST /a/post HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n" + body,
        "chunked": b"POST /a/post HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    }
    want_a = ("A pid=%d path=/a/post body=11\n" % a.pid).encode()
    want_b = ("B pid=%d path=/b/x\n" % b.pid).encode()
    for name, first in variants.items():
        data = first + second
        for off in range(1, len(data)):
            c = s.conn(port)
            c.send(data, split_at=off, pause=0.002)
            try:
                r1 = c.read_response(timeout=5)
                r2 = c.read_response(timeout=5)
            except StoryFailure as e:
                fail("%s body, split at offset %d (%r | %r): %s" % (name, off, data[:off][-20:], data[off:][:20], e))
            c.close()
            if r1.status != 200 or r1.body != want_a or r1.header("X-Body-FNV1a") != fnv1a(body):
                fail("%s split at %d: POST answer %r (fnv %s), expected %r" % (name, off, r1, r1.header("X-Body-FNV1a"), want_a))
            if r2.status != 200 or r2.body != want_b:
                fail("%s split at %d: GET /b/x answer %r, expected %r" % (name, off, r2, want_b))
        check(True, "%s body + next request, split at each of %d offsets: both answered in order" % (name, len(data) - 1))
