# 28-slow-clients: EntityBody (a client that stops sending its body has the request ended) and MinSendRate (a client that reads nothing has its response aborted, and the worker serves on), enforced by the library with the daemon's limits.
import os
import socket
import time
from harness import Story, check, check_eq, check_between

with Story() as s:
    d = s.daemon(limits={"EntityBody": 1, "MinSendRate": 4000000})
    port = s.free_port()
    s.upload_echo("http://+:%d/up/" % port)
    root = s.path("files")
    os.makedirs(root)
    with open(os.path.join(root, "big"), "wb") as f:
        f.truncate(64 << 20)
    with open(os.path.join(root, "small"), "wb") as f:
        f.write(b"small file\n")
    s.static(root, "http://+:%d/files/" % port)

    # the echo app answers while it reads: a body that stops (Content-Length, then
    # chunked) ends its begun response with an abort after about EntityBody
    for name, req in (("Content-Length body stopped after 10 of 100 bytes",
                       b"POST /up/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 10),
                      ("chunked body stopped after one chunk",
                       b"POST /up/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")):
        c = s.conn(port)
        c.send(req)
        t0 = time.monotonic()
        how, got = c.wait_closed(6)
        check(how in ("eof", "reset"), name + ": the connection ends", how)
        check_between(round(time.monotonic() - t0, 1), 0.8, 3.0, name + ": after EntityBody of 1 s (s)")
        check(not got.endswith(b"0\r\n\r\n"), name + ": the echo was cut, not completed", repr(got[-20:]))

    # a body that trickles but never pauses for EntityBody is read to the end
    c = s.conn(port)
    body = b"0123456"
    c.send(b"POST /up/ HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    for i in range(len(body)):
        time.sleep(0.3)
        c.send(body[i:i + 1])
    r = c.read_response(timeout=5)
    check_eq(r.status, 200, "a body sent one byte every 0.3 s: status")
    check(body in r.body, "and echoed whole", repr(r.body[:60]))

    # a client that reads none of a 64 MiB response: aborted, and the worker serves on
    c = s.conn(port, rcvbuf=4096)
    c.send(b"GET /files/big HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    t0 = time.monotonic()
    gone = None
    while time.monotonic() - t0 < 15 and gone is None:
        r = s.get("http://127.0.0.1:%d/files/small" % port, timeout=20)
        if r.status == 200 and r.body == b"small file\n":
            gone = time.monotonic() - t0
    check(gone is not None, "the worker served another request after the stalled response")
    check_between(round(gone, 1), 0.0, 10.0, "within MinSendRate's wait (s)")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    how, got = c.wait_closed(10)
    check(how in ("eof", "reset"), "the stalled response's connection was ended", how)
    check(len(got) < (64 << 20), "the stalled client never got the whole file (%d bytes)" % len(got))
