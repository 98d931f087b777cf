# 26-worker-failures: workers failing in ways 20/21/23/24/83 do not cover: killed while requests wait (they go to the worker left), session closed mid-DELIVER burst, exit (status 0) half-way through an answer.
import os
import signal
import socket
import time
from harness import Story, Proc, check, check_eq, body_pid, find_queue, get_req, say, wait_until
from rawsession import Session, hello, queue_create, url_add, receive, DELIVER

# Not here because covered: a worker that stops receiving (queue full: 503 QueueFull, 23;
# queue wait: 503 Timer_QueueWait, 21); killed holding a request alone (24) or delegated
# connections (83); the last worker of a queue killed (20).


def testworker(s, *args):
    """testworker with options harness's helper does not pass (--delay-ms, --trigger)."""
    return Proc(s, [s.bin("testworker"), "--socket", s.daemons[-1].sock] + list(args), "testworker").ready()


with Story() as s:
    d = s.daemon(limits={"RequestQueue": 20})
    port = s.free_port()
    fds0 = d.fds()

    # (a) two workers on a queue, both busy, requests waiting. A library posts its next
    # receive while the application handles a request, so each worker holds one request
    # in its application and one more in its library; the rest wait in the daemon. The
    # first worker is killed: the two GETs it held untouched and those waiting in the
    # queue all go to the worker left, none is lost or answered 503.
    def receives(q="qa"):
        return {w["pid"]: w["receives"] for w in (find_queue(d.status(), q) or {}).get("workers", [])}

    w1 = testworker(s, "--url", "http://+:%d/a/" % port, "--queue", "qa", "--mode", "hang", "--text", "W1")
    conns = []

    def send(path):
        c = s.conn(port)
        c.send(get_req(path))
        conns.append((path, c))

    send("/a/held")
    w1.wait_for(r"hanging on GET /a/held", "stderr", 5)
    send("/a/prefetched")
    check(wait_until(lambda: receives() == {w1.pid: 0}, 3), "(a) W1 hangs on /a/held, its library took "
          "/a/prefetched, no receive outstanding", repr(receives()))
    w2 = testworker(s, "--queue", "qa", "--open", "--text", "W2", "--delay-ms", "1500", "--trigger", "slow")
    send("/a/slow")
    time.sleep(0.3)  # W2 takes it (its only receive), then posts the next
    send("/a/wait0")
    check(wait_until(lambda: receives() == {w1.pid: 0, w2.pid: 0}, 3), "(a) W2 is busy with /a/slow and holds "
          "/a/wait0: no receive outstanding", repr(receives()))
    for i in range(1, 4):
        send("/a/wait%d" % i)
    check(wait_until(lambda: (find_queue(d.status(), "qa") or {}).get("depth") == 3, 3),
          "(a) 3 more requests wait in the queue", repr(find_queue(d.status(), "qa")))
    w1.kill9()
    t0 = time.monotonic()
    for path, c in conns:
        r = c.read_response(timeout=8)
        check(r.status == 200 and body_pid(r.body) == w2.pid, "(a) %s answered 200 by W2 (pid %d)" % (path, w2.pid),
              repr(r))
        c.close()
    say("  (a) all %d answered by W2 within %.1f s of W1's death" % (len(conns), time.monotonic() - t0))

    # (b) a session that posted many receives closes its control socket while the daemon
    # is still sending it DELIVERs (hundreds: more than the socket holds, so some wait
    # in the daemon with a dup of their fd). Every GET it held goes to the other worker;
    # each POST (not idempotent) gets 503 and close; no fd stays behind.
    raw = Session(d.sock)
    raw.call(hello())
    status, qid, text = raw.call(queue_create("qb"))
    check_eq(status, 0, "(b) the raw session created queue qb")
    status, _, text = raw.call(url_add(qid, "http://+:%d/b/" % port))
    check_eq(status, 0, "(b) and registered /b/" + (": " + text if text else ""))
    n = 600
    raw.send(receive(qid, n))
    fds_before_burst = d.fds()
    clients = []
    for i in range(n):
        c = s.conn(port)
        if i % 100 == 99:
            c.send(b"POST /b/post%d HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" % i)
        else:
            c.send(get_req("/b/get%d" % i))
        clients.append(c)
    taken = 0
    for _ in range(5):
        m = raw.recv(5, want_fds=True)
        check(m is not None and m[0] == DELIVER, "(b) a DELIVER arrives", repr(m)[:200])
        for fd in m[3]:
            os.close(fd)  # dropped without END, RETURN or a byte written
        taken += 1
    other = s.hello(queue="qb", text="other")
    # the daemon's fds: one per connection, one more per DELIVER waiting in its queue for
    # the session (the dup it keeps of the connection's fd), one for the other worker
    wait_until(lambda: d.fds() - fds_before_burst - n - 1 > 0, 3)
    waiting = d.fds() - fds_before_burst - n - 1
    check(waiting > 0, "(b) %d DELIVERs wait in the daemon for the full session socket" % waiting)
    mark = d.mark()
    raw.close()  # DELIVERs still unread in the socket, more waiting in the daemon
    say("  (b) %d requests delivered to the raw session, %d read, then its socket closed" % (n, taken))
    statuses = {}
    for i, c in enumerate(clients):
        r = c.read_response(timeout=10)
        if i % 100 == 99:
            check_eq(r.status, 503, "(b) POST %d (not idempotent, held by the closed session): status" % i)
            how, _ = c.wait_closed(3)
            check(how in ("eof", "reset"), "(b) and its connection is closed", how)
        elif r.status != 200 or body_pid(r.body) != other.pid:
            check(False, "(b) GET %d answered 200 by the other worker (pid %d)" % (i, other.pid), repr(r))
        statuses[r.status] = statuses.get(r.status, 0) + 1
        c.close()
    say("  (b) answers: %r" % statuses)
    check_eq(statuses, {200: n - n // 100, 503: n // 100}, "(b) every GET served by the other worker, every POST 503")
    d.wait_error_log(503, "WorkerDied", since=mark)
    check(True, "(b) error-log lines name WorkerDied for the POSTs")
    back = wait_until(lambda: d.fds() <= fds_before_burst + 1, 5)  # +1: the other worker's session
    check(back, "(b) daemon fds back to %d (+1 session) after the burst (now %d)" % (fds_before_burst, d.fds()))

    # (c) a worker that writes part of an answer and then exits normally (status 0, not
    # killed, no END): the connection is aborted, never completed nor answered again,
    # though another worker is attached and the request is a GET
    keeper = s.testworker(["http://+:%d/c/" % port], queue="qc", mode="noreceive")
    quitter = s.testworker(queue="qc", open_=True, mode="exit-mid-response")
    c = s.conn(port)
    mark = d.mark()
    c.send(get_req("/c/half"))
    check_eq(quitter.wait(5), 0, "(c) the worker exited with status 0 half-way through its answer")
    data, how = c.read_all(5)
    check_eq(how, "reset", "(c) the half-answered connection is aborted (reset)")
    check(data.count(b"HTTP/1.1 ") == 1 and len(data) < 1000,
          "(c) exactly one response head and no whole body (%d bytes)" % len(data), repr(data[:200]))
    d.wait_log(r"WorkerDied: response half written, connection aborted", 3, since=mark)
    check(True, "(c) error-log line: WorkerDied, response half written, connection aborted")
    check(keeper.alive() and "/c/half" not in keeper.stderr(), "(c) the request was not delivered again")
    c.close()

    # (d) the client's FIN is no byte of the request: the kernel counts it in
    # tcpi_bytes_received, and a daemon that took it for a consumed byte would judge an
    # untouched request read (503 instead of another worker) and an idle connection busy
    # (a 503 and an error-log line for a client that has gone)
    holder = testworker(s, "--url", "http://+:%d/d/" % port, "--queue", "qd", "--mode", "hang", "--text", "D1")
    c = s.conn(port)
    c.send(get_req("/d/half-closed"))
    holder.wait_for(r"hanging on GET /d/half-closed", "stderr", 5)
    c.sock.shutdown(socket.SHUT_WR)  # the client has said all it will; it waits for the answer
    spare = testworker(s, "--queue", "qd", "--open", "--text", "D2")
    holder.kill9()
    r = c.read_response(timeout=5)
    check(r.status == 200 and body_pid(r.body) == spare.pid, "(d) a GET held untouched when its client half-closed: "
          "answered 200 by the other worker (pid %d) when its worker is killed" % spare.pid, repr(r))
    c.close()
    echo = s.upload_echo("http://+:%d/echo/" % port)
    c = s.conn(port)
    r = c.request(b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", method="POST")
    check(r.status == 200 and r.body == b"hello", "(d) the echo app answers and keeps the connection", repr(r))
    fds_kept = d.fds()
    echo.signal(signal.SIGSTOP)  # it cannot see the client go, nor send END
    mark = d.mark()
    c.close()
    time.sleep(0.2)
    echo.kill9()
    check(wait_until(lambda: d.fds() <= fds_kept - 2, 3), "(d) the daemon closes the connection and the "
          "session of the echo app, stopped, client gone, then killed (fds %d -> %d)" % (fds_kept, d.fds()))
    check_eq(d.error_log_lines(since=mark), [], "(d) and logs no error: nothing was asked of it")

    # (e) a worker that answered without reading the request's body is killed while its
    # library drains that body: the client has the whole response, so the connection
    # ends with a FIN, never a reset (which would throw away a response not yet read);
    # where the next request would begin is unknown, so nothing more is read from it.
    # Both for a request the daemon delivered and for one read on a kept connection.
    for how, first in (("delivered by the daemon", None), ("read by the library (delegated)", "/e/first")):
        drained = s.hello(["http://+:%d/e/" % port], text="E")  # answers without reading bodies
        c = s.conn(port)
        if first:
            r = c.request(get_req(first))
            check_eq(r.status, 200, "(e) %s: the request before" % how)
        mark = d.mark()
        c.send(b"POST /e/big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"b" * 10)
        r = c.read_response(timeout=5)
        check(r.status == 200 and body_pid(r.body) == drained.pid, "(e) %s: answered before the body came" % how,
              repr(r))
        drained.kill9()
        how_closed, _ = c.wait_closed(3)
        check_eq(how_closed, "eof", "(e) %s: killed draining the body, the connection is closed (FIN)" % how)
        d.wait_log(r"WorkerDied: response complete, request body not all read, connection closed", 3, since=mark)
        c.close()

    check(d.alive() and other.alive(), "daemon and the other worker still running")
