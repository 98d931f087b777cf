# 61-upgrade: a worker answers 101 and takes the connection to echo bytes: as its fd (ps_request_upgrade), as a stream (ps_request_upgrade_stream), and as a stream over TLS (the library seals and opens the records after the 101); a declined Upgrade stays HTTP/1.1.
import os
import re
import ssl

from harness import Story, check, check_eq, get_req, body_pid, request_once

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = s.testworker(["http://+:%d/ws/" % port], mode="upgrade", text="W")
    h = s.hello(["http://+:%d/h/" % port], text="H")

    def echo_checks(c, how, extra=b""):
        r = c.request(b"GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n" + extra +
                      b"\r\n")
        check_eq(r.status, 101, "%s: upgrade request: status" % how)
        check_eq((r.header("Upgrade") or "").lower(), "echo", "%s: 101 names Upgrade: echo" % how)
        check(True, "the worker took the connection (%s)" % how)
        c.send(b"ping-1")
        check_eq(c.read_exactly(6, 3), b"ping-1", "%s: bytes echoed on the upgraded connection" % how)
        big = os.urandom(200 * 1024)
        got = b""
        for off in range(0, len(big), 16384):  # piece by piece, so neither side's buffers can fill up
            c.send(big[off:off + 16384])
            got += c.read_exactly(len(big[off:off + 16384]), 5)
        check(got == big, "%s: 200 KiB echoed exactly" % how, "got %d bytes" % len(got))

        # meanwhile the other app and the daemon are fine
        r = request_once(port, get_req("/h/x"))
        check(r.status == 200 and body_pid(r.body) == h.pid, "the other app on the port still answers", repr(r))
        st = d.status()
        check_eq(st.get("pid"), d.pid, "status still answers")
        # counted at its 101, while the worker still holds the upgraded connection
        m = d.ctl("metrics").stdout
        n101 = sum(int(float(x)) for x in re.findall(r'^portshare_requests_total\{queue="[^"]*",code="1xx"\} (\S+)$', m, re.M))
        check(n101 >= 1, "%s: the upgraded request is counted in portshare_requests_total, code 1xx (%d)" % (how, n101))

        c.half_close()
        how_closed, rest = c.wait_closed(3)
        check_eq((how_closed, rest), ("eof", b""), "%s: after the client's end, the worker ends the upgraded "
                                                   "connection" % how)
        c.close()

    echo_checks(s.conn(port), "ps_request_upgrade's fd")
    w.wait_for(r"upgraded, echoing on fd", "stderr", 3)
    echo_checks(s.conn(port), "ps_request_upgrade_stream, plain", b"X-Stream: 1\r\n")
    w.wait_for(r"upgraded, echoing on a stream", "stderr", 3)

    # over TLS: the library keeps sealing and opening records after the 101
    tport = s.free_port()
    cert, key = s.tls_certificate()
    check_eq(d.ctl("sslcert", "add", "--ipport", "0.0.0.0:%d" % tport, "--cert", cert, "--key", key).returncode, 0,
             "sslcert add")
    wt = s.testworker(["https://+:%d/ws/" % tport], mode="upgrade", text="WT")
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False  # no SNI: the request's Host (x) is not the certificate's name
    echo_checks(s.conn(tport, tls=ctx), "ps_request_upgrade_stream over TLS")
    wt.wait_for(r"upgraded, echoing on a stream", "stderr", 3)

    # an Upgrade the worker declines: an ordinary response, and the connection goes on as HTTP/1.1
    c = s.conn(port)
    r = c.request(b"GET /ws/plain HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                  b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
    check(r.status == 200 and r.body == ("W pid=%d path=/ws/plain\n" % w.pid).encode(),
          "declined upgrade answered as a normal request", repr(r))
    r = c.request(get_req("/h/next"))
    check(r.status == 200 and body_pid(r.body) == h.pid, "the connection goes on as HTTP/1.1", repr(r))
