# 61-upgrade: a worker answers 101 and takes the connection (ps_request_upgrade) to echo bytes; a declined Upgrade stays HTTP/1.1.
import os
from harness import Story, check, check_eq, get_req, body_pid, request_once

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = s.testworker(["http://+:%d/ws/" % port], mode="upgrade", text="W")
    h = s.hello(["http://+:%d/h/" % port], text="H")

    c = s.conn(port)
    r = c.request(b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
    check_eq(r.status, 101, "upgrade request: status")
    check_eq((r.header("Upgrade") or "").lower(), "echo", "101 names Upgrade: echo")
    w.wait_for(r"upgraded, echoing", "stderr", 3)
    check(True, "the worker took the connection (ps_request_upgrade)")

    c.send(b"ping-1")
    check_eq(c.read_exactly(6, 3), b"ping-1", "bytes echoed on the upgraded connection")
    big = os.urandom(200 * 1024)
    got = b""
    for off in range(0, len(big), 16384):  # piece by piece, so neither side's buffers can fill up
        c.send(big[off:off + 16384])
        got += c.read_exactly(len(big[off:off + 16384]), 5)
    check(got == big, "200 KiB echoed exactly", "got %d bytes" % len(got))

    # meanwhile the other app and the daemon are fine
    r = request_once(port, get_req("/h/x"))
    check(r.status == 200 and body_pid(r.body) == h.pid, "the other app on the port still answers", repr(r))
    st = d.status()
    check_eq(st.get("pid"), d.pid, "status still answers")

    c.sock.shutdown(1)
    how, extra = c.wait_closed(3)
    check_eq((how, extra), ("eof", b""), "after the client's FIN, the worker ends the upgraded connection")
    c.close()

    # an Upgrade the worker declines: an ordinary response, and the connection goes on as HTTP/1.1
    c = s.conn(port)
    r = c.request(b"GET /ws/plain HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                  b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
    check(r.status == 200 and r.body == ("W pid=%d path=/ws/plain\n" % w.pid).encode(),
          "declined upgrade answered as a normal request", repr(r))
    r = c.request(get_req("/h/next"))
    check(r.status == 200 and body_pid(r.body) == h.pid, "the connection goes on as HTTP/1.1", repr(r))
