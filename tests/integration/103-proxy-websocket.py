# 103-proxy-websocket: a WebSocket echo backend through portshare-proxy, plain and over TLS (wss: the proxy's client side is a libportshare stream): the handshake's 101 with the backend's Sec-WebSocket-Accept, text and binary frames (one of 200 KiB) echoed, bytes sent with the handshake passed on, a close answered and the connection ended; an upgrade the backend declines goes on as HTTP/1.1; several sockets at once.
import os
import socket
import ssl
import struct
import threading
from harness import Story, check, check_eq, get_req
from proxy_help import backend, frame, handshake, proxy, read_frame

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    proxy(s, ["http://+:%d/" % port], "http://127.0.0.1:%s" % bport)

    # the first frame goes with the handshake, in the same segment
    c, r, want = handshake(s, port, first=frame(1, b"early"))
    check_eq(r.status, 101, "the handshake: 101 Switching Protocols")
    check(r.header("Sec-WebSocket-Accept") == want and (r.header("Upgrade") or "").lower() == "websocket"
          and "upgrade" in (r.header("Connection") or "").lower(),
          "with the backend's Sec-WebSocket-Accept, Upgrade and Connection", repr(r.headers))
    check_eq(read_frame(c), (1, b"early"), "a frame sent with the handshake is echoed")
    c.send(frame(1, b"hello"))
    check_eq(read_frame(c), (1, b"hello"), "a text frame is echoed")
    big = os.urandom(200 * 1024)
    c.send(frame(2, big))
    op, data = read_frame(c)
    check(op == 2 and data == big, "a 200 KiB binary frame is echoed whole", "op %r, %d bytes" % (op, len(data)))
    c.send(frame(8, struct.pack("!H", 1000)))
    check_eq(read_frame(c)[0], 8, "a close frame is answered")
    how, extra = c.wait_closed(5)
    check(how in ("eof", "reset") and extra == b"", "and the connection ends", how)

    # several at once
    results = []

    def one(i):
        cc, rr, _ = handshake(s, port)
        ok = rr.status == 101
        for k in range(20):
            msg = ("socket %d message %d" % (i, k)).encode()
            cc.send(frame(1, msg))
            ok = ok and read_frame(cc) == (1, msg)
        results.append(ok)
        cc.close()

    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    check(results == [True] * 5, "5 WebSockets at once, 20 messages each, all echoed", repr(results))

    # an upgrade the backend declines: an ordinary answer, and the connection goes on
    c = s.conn(port)
    r = c.request(get_req("/headers", extra="Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                          "HTTP2-Settings: AAMAAABkAAQAAP__\r\n"))
    check(r.status == 200 and b'"Upgrade", "h2c"' in r.body and b"HTTP2-Settings" not in r.body,
          "a declined upgrade: 200, the backend saw Upgrade (and not the hop-by-hop HTTP2-Settings)", repr(r))
    r = c.request(get_req("/headers?next"))
    check_eq(r.status, 200, "the connection goes on as HTTP/1.1")
    c.close()

    # wss: the same backend behind an https:// prefix; the daemon does the handshake, the
    # proxy's library seals and opens the records on both sides of the 101
    tport = s.free_port()
    cert, key = s.tls_certificate()
    check_eq(d.ctl("sslcert", "add", "--ipport", "0.0.0.0:%d" % tport, "--cert", cert, "--key", key).returncode, 0,
             "sslcert add")
    proxy(s, ["https://+:%d/" % tport], "http://127.0.0.1:%s" % bport)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    c, r, want = handshake(s, tport, first=frame(1, b"early-tls"), tls=ctx)
    check(r.status == 101 and r.header("Sec-WebSocket-Accept") == want, "wss: the handshake over TLS", repr(r))
    check_eq(read_frame(c), (1, b"early-tls"), "wss: a frame sent with the handshake is echoed")
    c.send(frame(2, big))
    op, data = read_frame(c)
    check(op == 2 and data == big, "wss: a 200 KiB binary frame is echoed whole", "op %r, %d bytes" % (op, len(data)))
    c.send(frame(8, struct.pack("!H", 1000)))
    check_eq(read_frame(c)[0], 8, "wss: a close frame is answered")
    how, extra = c.wait_closed(5)
    check(how in ("eof", "reset") and extra == b"", "wss: and the connection ends", how)
