# 41-head-timeout: with HeaderWait 1 a partial head gets 408 and close after about 1 s, also when bytes keep trickling in.
import time
from harness import Story, check, check_eq, check_between

with Story() as s:
    d = s.daemon(limits={"HeaderWait": 1})
    port = s.free_port()
    s.hello(["http://+:%d/h/" % port], text="H")

    mark = d.mark()
    c = s.conn(port)
    t0 = time.monotonic()
    c.send(b"GET /h/ HTTP/1.1\r\nHost: x\r\n")
    r = c.read_response(timeout=5)
    took = time.monotonic() - t0
    check_eq(r.status, 408, "partial head: status")
    check_between(round(took, 2), 0.8, 3.0, "408 after the header wait (s)")
    how, extra = c.wait_closed(2)
    check(how in ("eof", "reset") and extra == b"", "connection closed after the 408", how)
    d.wait_error_log(408, "Timer_HeaderWait", since=mark)
    check(True, "error-log line names Timer_HeaderWait")

    # one byte every 0.2 s: trickling does not extend the header wait
    c = s.conn(port)
    head = b"GET /h/slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100
    t0 = time.monotonic()
    sent = 0
    for i in range(len(head)):
        if c.readable_within(0.2) or time.monotonic() - t0 > 4:
            break
        try:
            c.send(head[i:i + 1])
            sent += 1
        except OSError:
            break
    r = c.read_response(timeout=3)
    took = time.monotonic() - t0
    check_eq(r.status, 408, "trickled head (%d bytes sent): status" % sent)
    check_between(round(took, 2), 0.8, 3.0, "408 for the trickled head after the header wait (s)")

    # a complete head in time is served
    c = s.conn(port)
    r = c.request(b"GET /h/ok HTTP/1.1\r\nHost: x\r\n\r\n")
    check_eq(r.status, 200, "a complete head is served")
