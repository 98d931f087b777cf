# 25-worker-protocol-abuse: a "worker" speaking the control protocol badly (garbage, lying lengths, fds, floods, ...) loses its own session only: the daemon logs why, keeps serving, leaks no fd.
import os
import random
import select
import struct
import time
from harness import Story, check, check_eq, fail, get_req, say, wait_until, rss_kib
from rawsession import (Session, msg, hello, queue_create, queue_open, conn_ref, ret, end, HDR, HELLO, REPLY, NOFD,
                        CONN_CLOSED, STATUS, STATUS_DATA, PS_MSG_MAX, PS_HELLO_DELEGATE, PS_STATUS_MORE, PS_END_ABORT,
                        PS_EVERSION, PS_ELIMIT)

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    app = s.hello(["http://+:%d/app/" % port], text="app")
    url = "http://127.0.0.1:%d/app/x" % port
    # what the daemon opens once and keeps (the route snapshot it publishes ~20 ms after a
    # route change) is open before any case counts fds: one request, then a moment
    check_eq(s.get(url).status, 200, "the app answers before the cases")
    time.sleep(0.3)
    check_eq(s.get(url).status, 200, "the hello app answers before any abuse")
    # the curl's connection may still be closing in the daemon: wait for the count to settle
    wait_until(lambda: d.fds() <= 15, 2)
    fds0 = d.fds()
    say("  daemon fds at the start: %d" % fds0)
    rng = random.Random(25)

    def case(name, reason_re, act, ends=True):
        """Runs one misbehaving session; checks the daemon ended it (or not) with a log
        line matching reason_re, still serves the app and holds no more fds than before."""
        mark = d.mark()
        before = d.fds()
        sess = Session(d.sock)
        t0 = time.monotonic()
        try:
            act(sess)
            if ends:
                check(sess.closed_by_daemon(5), "%s: the daemon ended the session (%.2f s)"
                      % (name, time.monotonic() - t0))
        finally:
            sess.close()
        if reason_re:
            m = d.wait_log(reason_re, 3, since=mark)
            check(True, "%s: log line: %s" % (name, m.group(0).strip()))
        check_eq(s.get(url).status, 200, "%s: the hello app still answers" % name)
        back = wait_until(lambda: d.fds() <= before, 3)
        check(back, "%s: daemon fds back to %d (now %d)" % (name, before, d.fds()))
        check(d.alive() and app.alive(), "%s: daemon and app still running" % name)

    # --- malformed messages
    case("random garbage", r"session \d+ \(pid \d+, no HELLO yet\): [^\n]*session ended",
         lambda x: x.send(bytes(rng.getrandbits(8) for _ in range(300))))
    case("garbage after HELLO", r"session \d+ \(pid \d+, rawsession\): [^\n]*session ended",
         lambda x: (x.call(hello()), x.send(bytes(rng.getrandbits(8) for _ in range(1000)))))
    case("length longer than the packet", r"header length differs from the message length; session ended",
         lambda x: x.send(msg(HELLO, struct.pack("=II64s", 1, 1, b"x"), length=HDR.size + 72 + 10)))
    case("length shorter than the packet", r"header length differs from the message length; session ended",
         lambda x: x.send(msg(HELLO, struct.pack("=II64s", 1, 1, b"x"), length=20)))
    case("truncated header", r"message shorter than its header; session ended", lambda x: x.send(hello()[:10]))
    case("truncated fixed part", r"message shorter than its fixed part; session ended",
         lambda x: x.send(msg(HELLO, struct.pack("=II", 1, 1))))
    case("oversized message (%d bytes)" % (PS_MSG_MAX + 4096), r"message too large; session ended",
         lambda x: x.send(msg(STATUS, b"\0" * (PS_MSG_MAX + 4096 - HDR.size))))
    case("unknown message type 99", r"unknown message type; session ended",
         lambda x: (x.call(hello()), x.send(msg(99, b"\0" * 16))))
    case("a daemon-only message (CONN_CLOSED)", r"unexpected message type",
         lambda x: (x.call(hello()), x.send(conn_ref(CONN_CLOSED, 1, 1))))
    case("a REPLY sent to the daemon", r"unexpected message type",
         lambda x: (x.call(hello()), x.send(msg(REPLY, struct.pack("=iIII", 0, 0, 0, 0)))))
    case("unknown header flags", r"unknown header flags; session ended",
         lambda x: (x.call(hello()), x.send(msg(STATUS, flags=0x8000))))

    # --- order and version
    case("STATUS before HELLO", r"no HELLO first", lambda x: x.send(msg(STATUS)))
    case("QUEUE_CREATE before HELLO", r"no HELLO first", lambda x: x.send(queue_create("early")))

    def wrong_version(x):
        status, _, text = x.call(hello(version=7))
        check(status == PS_EVERSION and "7" in text and "1" in text,
              "wrong version: HELLO answered PS_EVERSION naming both versions (%r)" % text, repr((status, text)))
    case("protocol version 7", r"protocol version 7 is not supported", wrong_version)

    def session_pages():
        with open("/proc/%d/maps" % d.pid) as f:
            return sum(1 for line in f if "portshare-session" in line)
    pages0 = session_pages()

    def hello_twice(x):
        x.call(hello(flags=PS_HELLO_DELEGATE))
        for _ in range(50):
            x.send(hello(flags=PS_HELLO_DELEGATE))
    case("HELLO again (asking for delegation each time)", r"second HELLO", hello_twice)
    check(wait_until(lambda: session_pages() == pages0, 3),
          "no shared session page left mapped in the daemon (%d, before %d)" % (session_pages(), pages0))

    # --- file descriptors: none may stay in the daemon
    def send_fds(x, n, after_hello, mtype=STATUS):
        pipes = [os.pipe() for _ in range(n)]
        try:
            if after_hello:
                x.call(hello())
            x.send(msg(mtype) if mtype == STATUS else hello(), fds=[w for _, w in pipes])
            for _, w in pipes:
                os.close(w)
            # the daemon's copies closed: every read end sees EOF
            for r, _ in pipes:
                ready, _, _ = select.select([r], [], [], 3)
                check(ready and os.read(r, 1) == b"", "the write end passed as fd is closed by the daemon")
        finally:
            for r, w in pipes:
                os.close(r)
                try:
                    os.close(w)
                except OSError:
                    pass
    case("a pipe fd on HELLO", r"sent a file descriptor", lambda x: send_fds(x, 1, False, HELLO))
    case("a pipe fd on STATUS", r"sent a file descriptor", lambda x: send_fds(x, 1, True))
    case("3 fds on one STATUS", r"sent a file descriptor", lambda x: send_fds(x, 3, True))
    case("40 fds on one STATUS (more than the daemon makes room for)", r"sent a file descriptor",
         lambda x: send_fds(x, 40, True))

    # --- messages about connections it never had: ignored, the session goes on
    def stray(x):
        x.call(hello())
        # a keep-alive connection the app holds meanwhile must not be touched by them
        c = s.conn(port)
        r = c.request(get_req("/app/held"))
        check_eq(r.status, 200, "stray: a keep-alive connection to the app is open")
        n = 0
        for conn_id in range(1, 41):
            for req_id in range(1, 41):
                x.send(ret(conn_id, req_id, b"GET /x HTTP/1.1\r\n"))
                x.send(end(conn_id, req_id, PS_END_ABORT))
                x.send(conn_ref(NOFD, conn_id, req_id))
                n += 3
        x.send(msg(STATUS, seq=77))
        m = x.recv(5)
        check(m is not None and m[0] == STATUS_DATA, "stray: after %d RETURN/END/NOFD for connections it never "
              "had, the session still answers STATUS" % n, repr(m)[:200])
        r = c.request(get_req("/app/held-again"))
        check_eq(r.status, 200, "stray: the app's keep-alive connection was not aborted by them")
        c.close()
    case("RETURN/END/NOFD for connections never received", None, stray, ends=False)

    # --- floods
    def flood(x, message, count, stop_when_cut):
        """Sends up to count messages without reading a reply (at most 20 s); returns
        (sent, cut off by the daemon, peak daemon RSS in KiB)."""
        x.sock.setblocking(False)
        sent, cut, peak, t0 = 0, False, rss_kib(d.pid), time.monotonic()
        for _ in range(count * 10):
            if sent >= count or time.monotonic() - t0 > 20:
                break
            try:
                x.sock.send(message)
                sent += 1
            except BlockingIOError:
                select.select([], [x.sock], [], 0.1)
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if sent % 2000 == 0:
                peak = max(peak, rss_kib(d.pid))
                if stop_when_cut and "does not read its messages" in d.log()[mark[0]:]:
                    cut = True
                    break
        x.sock.setblocking(True)
        return sent, cut, peak

    def status_flood(x):
        x.call(hello())
        rss0 = rss_kib(d.pid)
        t0 = time.monotonic()
        n = 3000
        sent, _, peak = flood(x, msg(STATUS, seq=5), n, False)
        check_eq(sent, n, "STATUS flood: %d STATUS requests written without reading a reply (%.1f s)"
                 % (n, time.monotonic() - t0))
        check_eq(s.get(url).status, 200, "STATUS flood: the app answers while the replies pile up")
        # nothing was dropped for a full socket: every STATUS gets its whole answer
        last_pieces = 0
        for _ in range(n * 20):
            m = x.recv(5)
            if m is None or m[0] != STATUS_DATA:
                fail("STATUS flood: expected STATUS_DATA, got %r after %d answers" % (m, last_pieces))
            if not m[1] & PS_STATUS_MORE:  # the last piece of one answer
                last_pieces += 1
                if last_pieces == n:
                    break
        check_eq(last_pieces, n, "STATUS flood: then every one of the %d answers is read back" % n)
        say("  STATUS flood: daemon RSS %d KiB before, %d KiB at most during, %d KiB after"
            % (rss0, peak, rss_kib(d.pid)))
    case("STATUS flood, replies read late", None, status_flood, ends=False)

    def never_reads(x):
        x.call(hello())
        rss0 = rss_kib(d.pid)
        t0 = time.monotonic()
        # a cheap request with an answer (REPLY "no queue named ..."), never read
        sent, cut, peak = flood(x, queue_open("no-such-queue-" + "x" * 49), 400000, True)
        say("  flood without reading: %d QUEUE_OPEN sent in %.1f s; daemon RSS %d KiB before, %d KiB at most "
            "during, %d KiB after" % (sent, time.monotonic() - t0, rss0, peak, rss_kib(d.pid)))
        check(cut or "does not read its messages" in d.log()[mark[0]:],
              "flood without reading: the daemon cut the session off after %d messages" % sent)
    mark = [d.mark()]
    case("flood of requests, replies never read", r"does not read its messages", never_reads)

    def create_flood(x):
        x.call(hello())
        t0 = time.monotonic()
        made, refused, last = 0, 0, ""
        for i in range(5000):
            status, _, text = x.call(queue_create("abuse-%d" % i, seq=i + 2))
            if status == 0:
                made += 1
            else:
                refused += 1
                last = "%d %s" % (status, text)
        took = time.monotonic() - t0
        say("  QUEUE_CREATE flood: %d created, %d refused (%s) in %.1f s" % (made, refused, last, took))
        check(refused > 0 and last.startswith(str(PS_ELIMIT)), "QUEUE_CREATE flood: refused with PS_ELIMIT after %d queues"
              % made, last)
        st = d.status()
        check(len(st.get("queues", [])) >= made, "status lists the %d queues" % made)
        check_eq(s.get(url).status, 200, "QUEUE_CREATE flood: the app answers while the queues exist")
    case("thousands of QUEUE_CREATE", r"queue abuse-\d+ removed", create_flood, ends=False)
    check(wait_until(lambda: not any(q.get("name", "").startswith("abuse-") for q in d.status().get("queues", [])), 5),
          "the flood's queues are gone with its session")

    # all cases done: the same fds as at the start
    check(wait_until(lambda: d.fds() <= fds0, 3), "daemon fds at the end: %d (start %d)" % (d.fds(), fds0))
