# 88-delegation-bodies: on a connection A holds, a POST to A with a body, a POST to B with a body and a GET to A in one buffer, split at every offset; 100-continue and max_body on a delegated connection.
import time
from harness import Story, StoryFailure, check, check_eq, fail, fnv1a, get_req, find_queue

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.testworker(["http://+:%d/a/" % port], text="A", max_body=100)
    b = s.testworker(["http://+:%d/b/" % port], text="B")
    body_a, body_b = b"hello world", b"0123456789abcdefghij"
    first = get_req("/a/first")
    want_first = ("A pid=%d path=/a/first\n" % a.pid).encode()
    variants = {
        "content-length": (b"POST /a/p HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n" + body_a +
                           b"POST /b/p HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + body_b),
        "chunked": (b"POST /a/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                    b"POST /b/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"a\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n"),
    }
    want_a = ("A pid=%d path=/a/p body=11\n" % a.pid).encode()
    want_b = ("B pid=%d path=/b/p body=20\n" % b.pid).encode()
    want_g = ("A pid=%d path=/a/g\n" % a.pid).encode()
    BATCH = 32  # connections split at once (each pipelined answer may wait for a delayed ACK: do them side by side)
    started = time.monotonic()
    for name, head in variants.items():
        data = head + get_req("/a/g")
        offsets = list(range(1, len(data)))
        for i in range(0, len(offsets), BATCH):
            batch = offsets[i:i + BATCH]
            conns = [s.conn(port) for _ in batch]
            for off, c in zip(batch, conns):
                r0 = c.request(first)
                if r0.status != 200 or r0.body != want_first:
                    fail("%s split at %d: first request %r" % (name, off, r0))
            for off, c in zip(batch, conns):
                c.send(data[:off])
            time.sleep(0.002)
            for off, c in zip(batch, conns):
                c.send(data[off:])
            for off, c in zip(batch, conns):
                try:
                    r1, r2, r3 = c.read_response(timeout=5), c.read_response(timeout=5), c.read_response(timeout=5)
                except StoryFailure as e:
                    fail("%s, split at offset %d (%r | %r): %s" % (name, off, data[:off][-20:], data[off:][:20], e))
                c.close()
                if r1.status != 200 or r1.body != want_a or r1.header("X-Body-FNV1a") != fnv1a(body_a):
                    fail("%s split at %d: POST /a/p answer %r (fnv %s), expected %r"
                         % (name, off, r1, r1.header("X-Body-FNV1a"), want_a))
                if r2.status != 200 or r2.body != want_b or r2.header("X-Body-FNV1a") != fnv1a(body_b):
                    fail("%s split at %d: POST /b/p answer %r (fnv %s), expected %r"
                         % (name, off, r2, r2.header("X-Body-FNV1a"), want_b))
                if r3.status != 200 or r3.body != want_g:
                    fail("%s split at %d: GET /a/g answer %r, expected %r" % (name, off, r3, want_g))
        check(True, "%s bodies, on delegated connections, split at each of %d offsets (%d side by side): "
              "A, B, A in order, bodies exact" % (name, len(offsets), BATCH))
    print("  (%.1f s)" % (time.monotonic() - started))
    qa = find_queue(d.status(), a.queue)
    check(qa.get("delegated", 0) > 0, "A served some of them alone (delegated %r)" % qa.get("delegated"))

    # Expect: 100-continue on a delegated connection: 100 first, then the final answer
    c = s.conn(port)
    check_eq(c.request(first).status, 200, "100-continue: first request")
    c.send(b"POST /a/e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    check_eq(r.status, 100, "delegated POST with Expect: 100-continue gets 100 Continue before the body is sent")
    c.send(b"abcde")
    r = c.read_response(timeout=3)
    check(r.status == 200 and r.body == ("A pid=%d path=/a/e body=5\n" % a.pid).encode(), "then the final 200, body 5",
          repr(r))
    r = c.request(get_req("/a/after-100"))
    check_eq(r.status, 200, "the connection goes on after the 100-continue exchange")
    c.close()

    # a body over A's max_body (100) on a delegated connection: 413 and close, as from the daemon
    c = s.conn(port)
    check_eq(c.request(first).status, 200, "max_body: first request")
    c.send(b"POST /a/big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"y" * 1000)
    r = c.read_response(timeout=3)
    check_eq(r.status, 413, "delegated POST with Content-Length 1000 to a queue with max_body 100")
    how, extra = c.wait_closed(3)
    check(how in ("eof", "reset") and extra == b"", "and the connection is closed", how)
    check("path=/a/big" not in a.stderr(), "A never handled /a/big")
    c = s.conn(port)
    check_eq(c.request(first).status, 200, "max_body exactly: first request")
    r = c.request(b"POST /a/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"y" * 100)
    check(r.status == 200 and r.body == ("A pid=%d path=/a/ok body=100\n" % a.pid).encode(),
          "a body of exactly max_body on a delegated connection is served", repr(r))
    c.close()
