# 27-response-wait: a queue's ResponseWait: a worker that never answers gets the client a 503 and close; one that stops half-way gets the connection aborted; answering workers and queues without it are left alone.
import time
from harness import Story, check, check_eq, check_between

WAIT_MS = 500

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    s.testworker(["http://+:%d/silent/" % port], mode="hang", trigger="slow", response_wait_ms=WAIT_MS)
    s.testworker(["http://+:%d/half/" % port], mode="hang-mid-response", trigger="slow",
                 response_wait_ms=WAIT_MS)
    s.testworker(["http://+:%d/fine/" % port], text="F", response_wait_ms=WAIT_MS)
    s.testworker(["http://+:%d/nolimit/" % port], mode="hang", trigger="slow")

    # nothing written: 503, Connection: close, then the connection closes
    mark = d.mark()
    c = s.conn(port)
    t0 = time.monotonic()
    r = c.request(b"GET /silent/slow HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    took = time.monotonic() - t0
    check_eq(r.status, 503, "a worker that writes nothing: status")
    check_eq((r.header("connection") or "").lower(), "close", "the 503 says Connection: close")
    check_between(round(took, 2), 0.4, 2.0, "503 after the ResponseWait of 0.5 s (s)")
    how, extra = c.wait_closed(3)
    check(how in ("eof", "reset") and extra == b"", "connection closed after the 503", how)
    d.wait_error_log(503, "Timer_ResponseWait", since=mark)
    check(True, "error log names Timer_ResponseWait")

    # part written, then nothing: the connection is aborted, never a second response
    mark = d.mark()
    c = s.conn(port)
    c.send(b"GET /half/slow HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    how, got = c.wait_closed(5)
    took = time.monotonic() - t0
    check(how in ("eof", "reset"), "a worker stopped half-way: the connection ends", how)
    check(got.startswith(b"HTTP/1.1 200"), "the client got the part the worker wrote", repr(got[:40]))
    check(b"503" not in got, "and no second response")
    check_between(round(took, 2), 0.4, 3.0, "ended within two ResponseWait periods (s)")
    d.wait_log(r"Timer_ResponseWait: the worker stopped in the middle", since=mark)
    check(True, "error log says the worker stopped in the middle of its response")

    # a worker that answers is not disturbed, also on a kept-alive connection past the limit
    c = s.conn(port)
    for i in range(3):
        r = c.request(b"GET /fine/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        check_eq(r.status, 200, "answering worker with ResponseWait, request %d" % i)
        time.sleep(WAIT_MS / 1000.0 * 0.8)
    time.sleep(WAIT_MS / 1000.0 * 1.5)
    r = c.request(b"GET /fine/late HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(r.status, 200, "the same connection after more than the ResponseWait")

    # a queue without ResponseWait: a slow worker is waited for
    c = s.conn(port)
    c.send(b"GET /nolimit/slow HTTP/1.1\r\nHost: x\r\n\r\n")
    check(not c.readable_within(1.5), "no ResponseWait: nothing sent to the client after 1.5 s")

    # the daemon serves on
    check_eq(s.get("http://127.0.0.1:%d/fine/after" % port).status, 200, "served afterwards")
