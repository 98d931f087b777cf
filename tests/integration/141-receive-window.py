# 141-receive-window: ps_queue_set_receive_window(q, n) keeps n receives posted on the queue, topped up once half are consumed: the daemon's status shows them, and the requests that come one after another go to that worker while its window lasts, though another worker of the queue waits (receives are served oldest first); with the default window of one they alternate; 0 and 65 are refused (PS_EINVAL) and change nothing. Also with PORTSHARE_DEFAULTS=1.
from harness import Story, check, check_eq, get_req, body_pid, wait_until


def receives(d, queue):
    """pid -> receives posted, from portsharectl status --json."""
    for q in d.status()["queues"]:
        if q["name"] == queue:
            return {w["pid"]: w["receives"] for w in q.get("workers", [])}
    return {}


def answered_by(s, port, path):
    """One request on a new connection (Connection: close, so the daemon routes each one)."""
    c = s.conn(port)
    r = c.request(get_req(path, extra="Connection: close\r\n"))
    check_eq(r.status, 200, "%s answered" % path)
    return body_pid(r.body)


with Story() as s:
    d = s.daemon()
    port = s.free_port()

    # 1. a window of four
    a = s.testworker(["http://+:%d/w/" % port], queue="wq", text="A", window=4)
    out = a.stdout()
    check("window 0: invalid argument" in out and "window 65: invalid argument" in out,
          "a window of 0 or 65 is refused:\n%s" % out)
    check("window 4: ok" in out, "a window of 4 is taken")
    check(wait_until(lambda: receives(d, "wq").get(a.pid) == 4, 5),
          "the daemon holds A's four receives (the refused 0 and 65 after 4 changed nothing): %r"
          % receives(d, "wq"))
    check_eq(answered_by(s, port, "/w/0"), a.pid, "alone, A answers")
    check(wait_until(lambda: receives(d, "wq").get(a.pid) == 3, 5),
          "one consumed, three left (no top-up before half): %r" % receives(d, "wq"))

    b = s.testworker(queue="wq", open_=True, text="B")
    check(wait_until(lambda: receives(d, "wq").get(b.pid) == 1, 5),
          "B (the default window) posts one receive: %r" % receives(d, "wq"))
    # posted: A A A B. A tops up to four after its second request (two left): A A B A A
    got = [answered_by(s, port, "/w/%d" % i) for i in range(1, 5)]
    names = ["A" if p == a.pid else "B" if p == b.pid else p for p in got]
    print("  four requests after B joined went to %s" % " ".join(map(str, names)))
    check_eq(names, ["A", "A", "A", "B"], "A's posted receives come before B's, B's before A's top-up")
    check(wait_until(lambda: receives(d, "wq").get(a.pid) == 4 and receives(d, "wq").get(b.pid) == 1, 5),
          "windows full again: %r" % receives(d, "wq"))
    a.stop()
    b.stop()

    # 2. the default window of one: workers take turns
    c1 = s.testworker(["http://+:%d/o/" % port], queue="oq", text="C1")
    check(wait_until(lambda: receives(d, "oq").get(c1.pid) == 1, 5), "C1 posts one receive")
    c2 = s.testworker(queue="oq", open_=True, text="C2")
    check(wait_until(lambda: receives(d, "oq").get(c2.pid) == 1, 5), "C2 posts one receive")
    got = [answered_by(s, port, "/o/%d" % i) for i in range(4)]
    names = ["C1" if p == c1.pid else "C2" if p == c2.pid else p for p in got]
    print("  with one receive each: %s" % " ".join(map(str, names)))
    check_eq(names, ["C1", "C2", "C1", "C2"], "one receive each: they take turns")
    check(c1.alive() and c2.alive(), "the workers still run")
