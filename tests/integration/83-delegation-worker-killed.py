# 83-delegation-worker-killed: a worker killed (-9) holding delegated connections: idle ones go on with another worker (no reset), a request read and not answered gets 503 + close, a half-written response is aborted.
import signal
import time
from harness import (Story, Proc, check, check_eq, find_queue, get_req, hello_body_re, body_pid, wait_until,
                     parse_responses, Incomplete, BadResponse)


def worker(s, queue, text, mode=None, open_=False, urls=(), trigger=None):
    argv = [s.bin("testworker"), "--socket", s.daemons[-1].sock, "--text", text, "--queue", queue]
    if open_:
        argv.append("--open")
    for u in urls:
        argv += ["--url", u]
    if mode:
        argv += ["--mode", mode]
    if trigger:
        argv += ["--trigger", trigger]
    return Proc(s, argv, "testworker-" + text).ready()


def answered(r, path, *apps):
    return (r.status == 200 and any(hello_body_re(t, path).match(r.text()) is not None and body_pid(r.body) == w.pid
                                    for t, w in apps))


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    # another app on the port all along: the port stays bound and its host known, so a
    # request for a prefix that is gone gets 404 (not 400 Invalid Hostname)
    keeper = s.hello(["http://+:%d/keep/" % port], text="K")

    # (a) idle between requests: the daemon takes the connection back, the client never notices
    for rounds in (1, 3):
        q = "qa%d" % rounds
        w1 = worker(s, q, "W1", urls=["http://+:%d/%s/" % (port, q)])
        w2 = worker(s, q, "W2", open_=True)
        apps = {w1.pid: ("W1", w1), w2.pid: ("W2", w2)}
        # the route snapshot is published after 20 ms without changes; until a library has
        # it, it gives each connection back after its response (story 80 waits the same)
        time.sleep(0.2)
        c = s.conn(port)
        holder = None
        for i in range(rounds):
            path = "/%s/%d" % (q, i)
            r = c.request(get_req(path))
            check(answered(r, path, apps.get(w1.pid), apps.get(w2.pid)), "(a%d) %s answered by W1 or W2" % (rounds, path),
                  repr(r))
            pid = body_pid(r.body)
            if holder is None:
                holder = pid
            check_eq(pid, holder, "(a%d) %s answered by the worker that holds the connection" % (rounds, path))
        check_eq(d.status().get("connections_in_workers"), 1,
                 "(a%d) after %d response(s) the connection is held (delegated) by pid %d" % (rounds, rounds, holder))
        name, victim = apps.pop(holder)
        _, other = list(apps.values())[0]
        victim.kill9()
        check(not c.readable_within(0.3), "(a%d) killing %s -9 does not close or reset the idle connection" % (rounds, name),
              "eof %s reset %s bytes %r" % (c.eof, c.reset, bytes(c.buf[:200])))
        path = "/%s/after-kill" % q
        c.send(get_req(path))
        r = c.read_response(timeout=5)
        check(r.status == 200 and body_pid(r.body) == other.pid,
              "(a%d) the next request on the same connection is answered 200 by the other worker (pid %d)"
              % (rounds, other.pid), repr(r))
        r = c.request(get_req(path + "2"))
        check(r.status == 200 and body_pid(r.body) == other.pid, "(a%d) and the connection keeps working" % rounds, repr(r))
        c.close()
        other.stop()

    # (a') the same, but the killed worker was the queue's only one: the connection goes on,
    # and its next request gets 404 (queue and prefix gone with the worker)
    solo = worker(s, "qsolo", "SOLO", urls=["http://+:%d/solo/" % port])
    c = s.conn(port)
    r = c.request(get_req("/solo/1"))
    check(r.status == 200 and body_pid(r.body) == solo.pid, "(a') /solo/1 answered by the only worker", repr(r))
    check_eq(d.status().get("connections_in_workers"), 1, "(a') the connection is held by it")
    solo.kill9()
    check(wait_until(lambda: find_queue(d.status(), "qsolo") is None, 3, 0.05), "(a') its queue is gone")
    r = c.request(get_req("/solo/2"))
    check_eq(r.status, 404, "(a') the next request on the same connection: 404 from the daemon (no reset)")
    c.close()

    # (b) a request read by the library (the second on the connection, so delegated) and not
    # answered: 503, then close
    h = worker(s, "qb", "H", mode="hang", trigger="/hang", urls=["http://+:%d/b/" % port])
    c = s.conn(port)
    r = c.request(get_req("/b/1"))
    check(r.status == 200 and body_pid(r.body) == h.pid, "(b) /b/1 answered by the worker", repr(r))
    check_eq(d.status().get("connections_in_workers"), 1, "(b) the connection is held by it (delegated)")
    mark = d.mark()
    c.send(get_req("/b/hang"))
    h.wait_for(r"hanging on GET /b/hang", "stderr", 5)
    check(True, "(b) the worker read /b/hang itself and holds it unanswered")
    h.kill9()
    r = c.read_response(timeout=5)
    check_eq(r.status, 503, "(b) the worker died holding a request it had read: status")
    how, rest = c.wait_closed(3)
    check(how in ("eof", "reset") and rest == b"", "(b) then the connection is closed, nothing more", "%s %r" % (how, rest))
    d.wait_error_log(503, since=mark)
    check(True, "(b) error-log line for the 503")
    c.close()

    # (b') the same with a second worker on the queue: a request already read is never sent again
    h1 = worker(s, "qb2", "H1", mode="hang", trigger="/hang", urls=["http://+:%d/b2/" % port])
    h2 = worker(s, "qb2", "H2", mode="hang", trigger="/hang", open_=True)
    hs = {h1.pid: h1, h2.pid: h2}
    c = s.conn(port)
    r = c.request(get_req("/b2/1"))
    check(r.status == 200 and body_pid(r.body) in hs, "(b') /b2/1 answered by one of the two workers", repr(r))
    holder = hs.pop(body_pid(r.body))
    other = list(hs.values())[0]
    c.send(get_req("/b2/hang"))
    reader = wait_until(lambda: [w for w in (holder, other) if "hanging on GET /b2/hang" in w.stderr()], 5, 0.02)
    check(reader == [holder], "(b') the worker holding the connection (pid %d) read /b2/hang itself" % holder.pid,
          "read by %r" % [w.pid for w in reader or []])
    holder.kill9()
    r = c.read_response(timeout=5)
    check_eq(r.status, 503, "(b') read, not answered, another worker attached: still 503 (never delivered twice)")
    how, rest = c.wait_closed(3)
    check(how in ("eof", "reset") and rest == b"", "(b') then close", "%s %r" % (how, rest))
    check("hanging on" not in other.stderr(), "(b') the other worker never got /b2/hang", other.stderr()[-300:])
    c.close()

    # (c) a response half written (second request on the connection): abort, never a
    # complete or a second response
    m = worker(s, "qc", "M", mode="die-mid-response", trigger="/die", urls=["http://+:%d/c/" % port])
    c = s.conn(port)
    r = c.request(get_req("/c/1"))
    check(r.status == 200 and body_pid(r.body) == m.pid, "(c) /c/1 answered by the worker", repr(r))
    check_eq(d.status().get("connections_in_workers"), 1, "(c) the connection is held by it (delegated)")
    c.send(get_req("/c/die"))
    check_eq(m.wait(5), -signal.SIGKILL, "(c) the worker killed itself half-way through its answer to /c/die")
    data, how = c.read_all(5)
    complete = True
    try:
        parse_responses(data, ["GET"], eof=False)
    except Incomplete:
        complete = False
    except BadResponse:
        complete = False
    check(not complete, "(c) no complete response to /c/die (%d bytes arrived)" % len(data), repr(data[:300]))
    check(data.count(b"HTTP/1.1 ") <= 1, "(c) never a second response", repr(data[:300]))
    check_eq(how, "reset", "(c) the half-answered connection is aborted (reset)")
    check(d.alive() and keeper.alive(), "daemon and the other app still running")
