# 139-request-give-back: ps_request_give_back hands a request a worker took but did not touch back to the daemon, which gives it to another worker of the queue as if the first had never had it: a request the daemon delivered, and one the worker read itself on a connection it kept (delegation); a request whose body was read or whose answer was begun is refused (PS_ESTATE) and stays the worker's to answer; NULL is PS_EINVAL. Also with PORTSHARE_DEFAULTS=1.
from harness import Story, check, check_eq, get_req, body_pid, wait_until

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.testworker(["http://+:%d/g/" % port], queue="gq", mode="give-back", trigger="/give", text="A")

    # alone on the queue, A answers what it must keep
    c = s.conn(port)
    r = c.request(b"POST /g/give/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    check(r.status == 200 and body_pid(r.body) == a.pid, "a request whose body was read stays with its worker",
          repr(r))
    r = c.request(get_req("/g/give/answered"))
    check_eq((r.status, r.body), (200, b"min"), "a request whose answer was begun is answered by its worker")
    out = a.stdout()
    check("give-back after a body read: not allowed" in out,
          "A was refused the give-back after reading the body:\n%s" % out)
    check("give-back after an answer begun: not allowed" in out, "and after beginning the answer")
    check("give-back NULL: invalid argument" in out, "NULL is PS_EINVAL")

    # a kept connection: A answered on it, so A reads its next request itself; that one
    # goes back with the connection, to B
    kept = s.conn(port)
    r = kept.request(get_req("/g/plain"))
    check(r.status == 200 and body_pid(r.body) == a.pid, "A answered on the connection it now keeps", repr(r))
    b = s.testworker(queue="gq", open_=True, text="B")
    r = kept.request(get_req("/g/give/kept"))
    check(r.status == 200 and body_pid(r.body) == b.pid, "B answered the request A read on its kept connection "
          "and gave back", repr(r))
    check_eq(a.stdout().count("give-back: ok"), 1, "A gave it back (once)")
    r = kept.request(get_req("/g/plain"))
    check_eq(r.status, 200, "the connection goes on")
    b.stop()

    # a request the daemon delivered to A, alone on the queue again: back each time A takes
    # it, answered once B is there
    fresh = s.conn(port)
    fresh.send(get_req("/g/give/delivered"))
    check(wait_until(lambda: a.stdout().count("give-back: ok") >= 2, 5), "A gave the delivered request back")
    check(not fresh.readable_within(0.3), "while A is alone, nobody answers it (A takes it and gives it back)")
    b2 = s.testworker(queue="gq", open_=True, text="B2")
    r = fresh.read_response(timeout=5)
    check(r.status == 200 and body_pid(r.body) == b2.pid, "B2 answered the request A gave back", repr(r))
    q = [x for x in d.status()["queues"] if x["name"] == "gq"][0]
    print("  status: served %r, refused %r" % (q.get("served"), q.get("refused")))
    check(a.alive() and b2.alive(), "the workers still run")
