# 70-status: portsharectl status (text and --json) shows endpoints, queues, URLs, workers and served counts; $PORTSHARE_SOCKET works.
from harness import Story, check, check_eq, find_queue, wait_until, get_req, request_once

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port, "http://+:%d/a2/" % port], text="A")
    b = s.hello(["http://+:%d/b/" % port], text="B", env_socket=True)  # $PORTSHARE_SOCKET instead of --socket

    st = d.status()
    check_eq(st.get("version"), 1, "status version")
    check_eq(st.get("pid"), d.pid, "status pid is the daemon's")
    eps = [e for e in st.get("endpoints", []) if e.get("port") == port]
    check(any(e.get("address") == "127.0.0.1" and e.get("bound") is True for e in eps),
          "endpoint 127.0.0.1:%d bound" % port, repr(st.get("endpoints")))
    qa, qb = find_queue(st, a.queue), find_queue(st, b.queue)
    check(qa is not None and qb is not None, "both queues listed (%s, %s)" % (a.queue, b.queue), repr(st.get("queues")))
    check_eq(sorted(qa.get("urls", [])), sorted(["http://+:%d/a/" % port, "http://+:%d/a2/" % port]), "queue A urls")
    check_eq(qb.get("urls"), ["http://+:%d/b/" % port], "queue B urls (registered via $PORTSHARE_SOCKET)")
    check_eq((qa.get("persistent"), qa.get("max_length"), qa.get("depth")), (False, 1000, 0),
             "queue A persistent/max_length/depth")
    wa = qa.get("workers", [])
    check(len(wa) == 1 and wa[0].get("pid") == a.pid and wa[0].get("uid") == 0 and wa[0].get("user") == "root"
          and wa[0].get("program") == "portshare-hello", "queue A worker: pid, uid 0, root, portshare-hello", repr(wa))

    served0 = qa.get("served")
    check(isinstance(served0, int), "queue A has a served count (%r)" % served0)
    for i in range(3):
        check_eq(request_once(port, get_req("/a/%d" % i)).status, 200, "request %d to /a/" % i)
    c = s.conn(port)  # two more on one keep-alive connection
    for i in range(2):
        check_eq(c.request(get_req("/a2/k%d" % i)).status, 200, "keep-alive request %d to /a2/" % i)
    c.close()
    counted = wait_until(lambda: find_queue(d.status(), a.queue).get("served") == served0 + 5, 3, 0.1)
    check(counted, "queue A served count went from %d to %d" % (served0, served0 + 5),
          "now %r" % find_queue(d.status(), a.queue).get("served"))
    check_eq(find_queue(d.status(), b.queue).get("served"), qb.get("served"), "queue B served count unchanged")

    text = d.status_text()
    for fact in (str(port), a.queue, b.queue, str(a.pid), str(b.pid), "http://+:%d/a2/" % port, "127.0.0.1"):
        check(fact in text, "text status mentions %s" % fact, text[:600])

    st2 = d.status(env_socket=True)
    check_eq(st2.get("pid"), d.pid, "portsharectl with only $PORTSHARE_SOCKET reaches the daemon")

    a.stop()
    gone = wait_until(lambda: find_queue(d.status(), a.queue) is None, 3, 0.1)
    check(gone, "queue A gone from status after its worker stopped")
    b.stop()
    unbound = wait_until(lambda: not any(e.get("port") == port and e.get("bound") for e in d.status().get("endpoints", [])),
                         3, 0.1)
    check(unbound, "endpoint %d no longer bound after the last app stopped" % port)
