# 82-delegation-route-change: on a connection A holds (delegated), a route change takes effect at the very next request: B's longer prefix, A's own new and removed prefixes, B leaving.
import re
from harness import Story, Proc, check, check_eq, find_queue, get_req, hello_body_re, body_pid, wait_until


def worker(s, urls, text, extra=()):
    argv = [s.bin("testworker"), "--socket", s.daemons[-1].sock, "--text", text] + list(extra)
    for u in urls:
        argv += ["--url", u]
    return Proc(s, argv, "testworker-" + text).ready()


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    X, XY, Z = ("http://+:%d%s" % (port, p) for p in ("/x/", "/x/y/", "/z/"))
    # A adds /z/ and removes /x/ when told (SIGUSR1), printing "usr1 done" once the daemon confirmed both
    a = worker(s, [X], "A", ["--usr1-add", Z, "--usr1-remove", X])

    def answered_by(r, app, text, path):
        return r.status == 200 and hello_body_re(text, path).match(r.text()) is not None and body_pid(r.body) == app.pid

    c = s.conn(port)
    for i in range(3):  # the first is delivered by the daemon, the next ones A may read itself
        r = c.request(get_req("/x/y/%d" % i))
        check(answered_by(r, a, "A", "/x/y/%d" % i), "before B: /x/y/%d answered by A (prefix /x/)" % i, repr(r))
    check_eq(d.status().get("connections_in_workers"), 1, "the connection is held by A (delegated)")

    # B registers the longer prefix /x/y/; its ready line comes after the daemon's REPLY
    b = worker(s, [XY], "B")
    r = c.request(get_req("/x/y/after-b"))
    check(answered_by(r, b, "B", "/x/y/after-b"),
          "the very next request on A's connection, /x/y/after-b, is answered by B (longer prefix)", repr(r))
    r = c.request(get_req("/x/other"))
    check(answered_by(r, a, "A", "/x/other"), "then /x/other on the same connection: A again", repr(r))
    # A holds it again; several more, so the new snapshot is what A routes with
    for i in range(3):
        r = c.request(get_req("/x/y/again%d" % i))
        check(answered_by(r, b, "B", "/x/y/again%d" % i), "/x/y/again%d: B (A does not serve the longer prefix)" % i,
              repr(r))
        r = c.request(get_req("/x/a%d" % i))
        check(answered_by(r, a, "A", "/x/a%d" % i), "/x/a%d: A" % i, repr(r))

    # B leaves: once the daemon has dropped its queue, /x/y/ is A's again
    b.stop()
    gone = wait_until(lambda: find_queue(d.status(), b.queue) is None, 3, 0.05)
    check(gone, "B's queue is gone from the daemon")
    r = c.request(get_req("/x/y/after-b-left"))
    check(answered_by(r, a, "A", "/x/y/after-b-left"), "after B left, /x/y/after-b-left on the same connection: A", repr(r))
    check_eq(d.status().get("connections_in_workers"), 1, "A holds the connection again")

    # A's own change, made by A's process while it holds the connection: add /z/, remove /x/
    a.signal(10)  # SIGUSR1
    a.wait_for(r"testworker: usr1 done 1", "stdout", 5)
    check(re.search(r"add url .*/z/: ok", a.stderr()) and re.search(r"remove url .*/x/: ok", a.stderr()),
          "A added /z/ and removed /x/ (daemon confirmed)", a.stderr()[-400:])
    r = c.request(get_req("/z/1"))
    check(answered_by(r, a, "A", "/z/1"), "the next request, /z/1 (A's new prefix): answered by A", repr(r))
    r = c.request(get_req("/x/gone"))
    check_eq(r.status, 404, "then /x/gone (A removed /x/; A's old snapshot must not be used): 404 from the daemon")
    r = c.request(get_req("/z/2"))
    check(answered_by(r, a, "A", "/z/2"), "the connection goes on: /z/2 answered by A", repr(r))

    # the same change seen from a connection A holds when B re-registers: another process's
    # registration of /x/ while A's connection is delegated
    b2 = worker(s, [X], "B2")
    r = c.request(get_req("/x/back"))
    check(answered_by(r, b2, "B2", "/x/back"), "B2 registered /x/: the next request on A's connection goes to B2", repr(r))
    c.close()
