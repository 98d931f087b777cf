# 29-idle-connection: IdleConnection: a keep-alive connection the daemon holds between requests is closed quietly (FIN, no answer) after the limit, whether the daemon answered last or a worker gave it back; a busy one is not.
import time
from harness import Story, check, check_eq, check_between

with Story() as s:
    d = s.daemon(limits={"IdleConnection": 1})
    port = s.free_port()
    # without delegation the worker gives every connection back after its response
    s.testworker(["http://+:%d/w/" % port], text="W", env_extra={"PORTSHARE_DELEGATION": "0"})

    for what, path, status in (("after the daemon's own 404", "/nothing", 404),
                               ("after a worker gave the connection back", "/w/x", 200)):
        c = s.conn(port)
        r = c.request(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        check_eq(r.status, status, what + ": first answer")
        t0 = time.monotonic()
        how, extra = c.wait_closed(4)
        took = time.monotonic() - t0
        check(how == "eof" and extra == b"", what + ": closed quietly with a FIN, nothing sent", "%s %r" % (how, extra))
        check_between(round(took, 1), 0.8, 2.5, what + ": after IdleConnection of 1 s (s)")

    # requests every 0.6 s keep a connection open past the limit
    c = s.conn(port)
    for i in range(4):
        r = c.request(b"GET /w/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        check_eq(r.status, 200, "request %d, 0.6 s apart, on the same connection" % i)
        time.sleep(0.6)
