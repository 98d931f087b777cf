# 35-clear-nonblock: a worker clears O_NONBLOCK on a connection (shared with the daemon's copy); the daemon must not block on it.
import select
import time
from harness import Story, StoryFailure, check, get_req, body_pid, say

OPTIONS = b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"


def flood(c, seconds=5.0):
    """Pipelines OPTIONS * (answered by the daemon itself) without reading, until the
    connection stops taking bytes for 0.3 s: the daemon's output to it is then stuck.
    Returns the bytes sent."""
    chunk = OPTIONS * 2000
    sent, t0 = 0, time.monotonic()
    last = t0
    c.sock.settimeout(0.05)
    while time.monotonic() - t0 < seconds and time.monotonic() - last < 0.3:
        try:
            sent += c.sock.send(chunk[sent % len(chunk):])
            last = time.monotonic()
        except (BlockingIOError, TimeoutError):
            pass
    return sent


def drain(c, sent, timeout=15.0):
    """Finishes the last request, reads the daemon's answers to all of them; returns (count, all 200)."""
    want = -(-sent // len(OPTIONS))
    rest = OPTIONS[sent % len(OPTIONS):] if sent % len(OPTIONS) else b""
    buf, pos, count, all_ok = bytearray(), 0, 0, True
    deadline = time.monotonic() + timeout
    c.sock.setblocking(False)
    while count < want and time.monotonic() < deadline:
        if rest:  # the peer may still be busy: finish the request as it takes bytes
            try:
                rest = rest[c.sock.send(rest):]
            except BlockingIOError:
                pass
        select.select([c.sock], [], [], 0.05)
        try:
            data = c.sock.recv(262144)
        except BlockingIOError:
            continue
        if not data:
            break
        buf += data
        for _ in range(len(data)):
            end = buf.find(b"\r\n\r\n", pos)
            if end < 0 or count == want:
                break
            all_ok = all_ok and buf.startswith(b"HTTP/1.1 200", pos)
            count += 1
            pos = end + 4
    c.buf = bytearray(buf[pos:])
    c.sock.settimeout(5)
    return want, count, all_ok

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = s.testworker(["http://+:%d/n/" % port], mode="clear-nonblock", text="N")
    h = s.hello(["http://+:%d/h/" % port], text="H")

    c1 = s.conn(port, rcvbuf=4096, sndbuf=4096)  # small buffers: a flood below fills them quickly
    r = c1.request(get_req("/n/1"))
    check(r.status == 200 and body_pid(r.body) == w.pid, "request to the clear-nonblock worker answered", repr(r))
    m = w.wait_for(r"cleared O_NONBLOCK on fd \d+ \(was (set|clear)\)", "stderr", 3)
    check(True, "the worker cleared O_NONBLOCK on the connection (it was %s)" % m.group(1))

    # c1 now idle (blocking file status flag, daemon or worker holding it); a slow client too
    slow = s.conn(port)
    slow.send(b"GET /h/slow HTTP/1.1\r\nHo")
    for i in range(8):
        t0 = time.monotonic()
        c = s.conn(port)
        r = c.request(get_req("/h/%d" % i), timeout=3)
        c.close()
        took = time.monotonic() - t0
        check(r.status == 200 and body_pid(r.body) == h.pid and took < 1.0,
              "other connection %d answered in %.3f s while the blocking one idles" % (i, took), repr(r))

    # the blocking connection still works, to both apps
    r = c1.request(get_req("/h/on-c1"), timeout=3)
    check(r.status == 200 and body_pid(r.body) == h.pid, "next request on the blocking connection (other app)", repr(r))
    r = c1.request(get_req("/n/2"), timeout=3)
    check(r.status == 200 and body_pid(r.body) == w.pid, "next request on the blocking connection (same app)", repr(r))
    t0 = time.monotonic()
    c = s.conn(port)
    r = c.request(get_req("/h/last"), timeout=3)
    check(r.status == 200 and time.monotonic() - t0 < 1.0, "others still answered promptly afterwards", repr(r))

    # the daemon writing its own answers to the blocking connection: a client that does not read them
    # must cost the daemon nothing (every send with MSG_DONTWAIT), not block its loop
    sent = flood(c1)
    say("  pipelined %d bytes (%.0f OPTIONS requests) without reading" % (sent, sent / len(OPTIONS)))
    for i in range(6):
        t0 = time.monotonic()
        c = s.conn(port)
        try:
            r = c.request(get_req("/h/flood%d" % i), timeout=3)
        except StoryFailure as e:
            check(False, "while the daemon's output to the blocking connection is stuck, connection %d answered" % i,
                  str(e))
        c.close()
        took = time.monotonic() - t0
        check(r.status == 200 and took < 1.0,
              "while the daemon's output to the blocking connection is stuck, connection %d answered in %.3f s"
              % (i, took), repr(r))
    t0 = time.monotonic()
    want, count, all_ok = drain(c1, sent)
    say("  drained in %.1f s" % (time.monotonic() - t0))
    check(count == want and all_ok, "the flooded connection then gets all %d answers, each 200 with no body" % want,
          "got %d, all 200: %s" % (count, all_ok))
    r = c1.request(get_req("/h/after-flood"), timeout=3)
    check(r.status == 200 and body_pid(r.body) == h.pid, "and then serves the next request", repr(r))

    slow.send(b"st: x\r\n\r\n")
    r = slow.read_response(timeout=3)
    check(r.status == 200 and body_pid(r.body) == h.pid, "the slow client's request completes", repr(r))
