# 40-bad-requests: malformed or refused request heads get the exact daemon answer of DESIGN §5 (status, close, drop, GOAWAY).
import struct
import re
from harness import Story, check, check_eq, fail, body_pid, same_path

H = "Host: x\r\n"


def cases(port):
    """(name, bytes, expected) with expected ('status', code, must_close), ('drop',), ('goaway',), ('ok', path)."""
    long_name = "X-" + "h" * 20000
    many = "".join("X-H%d: %s\r\n" % (i, "v" * 200) for i in range(100))
    lots = "".join("X-L%d: v\r\n" % i for i in range(200))
    return [
        ("bare LF everywhere", b"GET / HTTP/1.1\nHost: x\n\n", ("status", 400, True)),
        ("bare LF in a header line", b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", ("status", 400, True)),
        ("bare LF as the final empty line", b"GET / HTTP/1.1\r\nHost: x\r\n\n", ("status", 400, True)),
        ("lone CR", b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", ("status", 400, True)),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", ("status", 400, True)),
        ("obs-fold hiding Content-Length",
         b"POST / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n Content-Length: 5\r\n\r\nhello", ("status", 400, True)),
        ("duplicate Host", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", ("status", 400, True)),
        ("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", ("status", 400, True)),
        ("Content-Length and Transfer-Encoding",
         b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         ("status", 400, True)),
        ("duplicate Content-Length, same value",
         b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", ("status", 400, True)),
        ("Content-Length not a number", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello",
         ("status", 400, True)),
        ("space in a header name", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", ("status", 400, True)),
        ("garbage method", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("garbage version", b"GET / HTTX/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", ("status", 405, True)),
        ("HTTP/0.9 request line", b"GET /\r\n", ("drop",)),
        ("HTTP/2 prior-knowledge preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ("goaway",)),
        ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", ("options",)),
        ("request line too long", ("GET /%s HTTP/1.1\r\n%s\r\n" % ("a" * 17000, H)).encode(), ("status", 414, True)),
        ("URL segment over 260 bytes", ("GET /%s HTTP/1.1\r\n%s\r\n" % ("s" * 300, H)).encode(), ("status", 414, True)),
        ("one header too large", ("GET / HTTP/1.1\r\n%s%s: v\r\n\r\n" % (H, long_name)).encode(), ("status", 431, True)),
        ("headers too large in total", ("GET / HTTP/1.1\r\n%s%s\r\n" % (H, many)).encode(), ("status", 431, True)),
        ("too many header lines", ("GET / HTTP/1.1\r\n%s%s\r\n" % (H, lots)).encode(), ("status", 431, True)),
        ("unknown method token FOO", b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 501, True)),
        ("Transfer-Encoding: xchunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
         ("status", 501, True)),
        ("Transfer-Encoding: chunked, identity",
         b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", ("status", 400, True)),
        ("Transfer-Encoding: identity, chunked",
         b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", ("status", 400, True)),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", ("status", 505, False)),
        ("HTTP/2.0 as a version", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", ("status", 505, False)),
        ("HTTP/0.9 as a version", b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", ("status", 505, False)),
        ("/%2e%2e/ climbs above /", b"GET /%2e%2e/etc HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("/a/../../ climbs above /", b"GET /a/../../b HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("encoded NUL", b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("invalid escape %zz", b"GET /a%zzb HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("truncated escape", b"GET /a%2 HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("%2F that changes the route", b"GET /x%2Fy HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("%5C that changes the route", b"GET /x%5Cy HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        ("control character in the target", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400, True)),
        # not errors: the escapes stay literal, no route changes
        ("%2F that changes nothing", b"GET /y%2Fz HTTP/1.1\r\nHost: x\r\n\r\n", ("ok", "root", "/y%2Fz")),
        ("%252e%252e stays literal", b"GET /%252e%252e/x HTTP/1.1\r\nHost: x\r\n\r\n", ("ok", "root", "/%252e%252e/x")),
        ("%c0%ae stays literal", b"GET /%c0%ae%c0%ae/x HTTP/1.1\r\nHost: x\r\n\r\n", ("ok", "root", "/%c0%ae%c0%ae/x")),
    ]


def parse_frames(data):
    frames, pos = [], 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos:pos + 3], "big")
        ftype, flags = data[pos + 3], data[pos + 4]
        stream = struct.unpack(">I", data[pos + 5:pos + 9])[0] & 0x7FFFFFFF
        payload = data[pos + 9:pos + 9 + length]
        if len(payload) != length:
            fail("truncated HTTP/2 frame: %r" % data[pos:pos + 40])
        frames.append((ftype, flags, stream, payload))
        pos += 9 + length
    if pos != len(data):
        fail("trailing bytes after HTTP/2 frames: %r" % data[pos:pos + 40])
    return frames


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    root = s.hello(["http://+:%d/" % port], text="root")
    xapp = s.hello(["http://+:%d/x/" % port], text="xapp")

    for name, data, want in cases(port):
        mark = d.mark()
        c = s.conn(port)
        c.send(data)
        kind = want[0]
        if kind == "drop":
            got, how = c.read_all(3)
            check(how in ("eof", "reset") and got == b"", "%s: closed with no response bytes" % name,
                  "%s, got %r" % (how, got[:100]))
        elif kind == "goaway":
            got, how = c.read_all(3)
            check(how in ("eof", "reset"), "%s: connection closed after the frames" % name, how)
            check(not got.startswith(b"HTTP/"), "%s: no HTTP/1.1 response" % name, repr(got[:80]))
            frames = parse_frames(got)
            goaway = [f for f in frames if f[0] == 0x7]
            check(len(goaway) == 1 and goaway[0][2] == 0 and len(goaway[0][3]) >= 8
                  and struct.unpack(">I", goaway[0][3][4:8])[0] == 0xD,
                  "%s: one GOAWAY frame on stream 0 with error HTTP_1_1_REQUIRED (0xd)" % name, repr(frames))
        elif kind == "options":
            r = c.read_response(timeout=3)
            check(r.status == 200 and r.body == b"" and (r.header("Allow") or "").strip() != "",
                  "%s: 200, empty body, Allow: %s" % (name, r.header("Allow")), repr(r))
            check("GET" in (r.header("Allow") or ""), "%s: Allow lists GET" % name, repr(r.headers))
        elif kind == "ok":
            r = c.read_response(timeout=3)
            m = re.match(r"^(\S+) pid=(\d+) path=(\S*)\n$", r.text())
            check(r.status == 200 and m is not None and m.group(1) == want[1] and int(m.group(2)) == root.pid
                  and same_path(m.group(3), want[2]),
                  "%s: routed to %s as %s" % (name, want[1], want[2]), repr(r))
        else:
            status, must_close = want[1], want[2]
            r = c.read_response(timeout=3)
            check_eq(r.status, status, "%s: status" % name)
            ctype = r.header("Content-Type") or ""
            check(ctype.startswith("text/plain") and 0 < len(r.body) < 1024,
                  "%s: short text/plain body %r" % (name, r.body[:40]), repr(r))
            if must_close:
                how, extra = c.wait_closed(3)
                check(how in ("eof", "reset") and extra == b"", "%s: connection closed after the answer" % name,
                      "%s, then %r" % (how, extra[:80]))
            d.wait_error_log(status, since=mark)
        c.close()

    r = s.get("http://127.0.0.1:%d/x/ok" % port)
    check(r.status == 200 and body_pid(r.body) == xapp.pid, "after all of them, a normal request is served", repr(r))
    check(d.alive(), "the daemon is still running")
