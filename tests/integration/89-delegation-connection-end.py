# 89-delegation-connection-end: delegated connections ended every way (client FIN, client reset, Connection: close, HTTP/1.0, half-close after a request) close cleanly and leak no fd in the daemon or the worker.
import os
import socket
import struct
import time
from harness import Story, check, check_eq, get_req, body_pid, wait_until

NCONN = 30

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    w = s.testworker(["http://+:%d/w/" % port], text="W")

    def counts():
        st = d.status()
        return d.fds(), w_fds(), st.get("connections"), st.get("connections_in_workers")

    def w_fds():
        return len(os.listdir("/proc/%d/fd" % w.pid))

    # one request first, so that everything the daemon and the worker keep for good (the
    # route snapshot published 20 ms after a change, the worker's mappings) exists already
    c = s.conn(port)
    check_eq(c.request(get_req("/w/warm-up")).status, 200, "warm-up request")
    c.close()
    time.sleep(0.3)
    base_d, base_w = d.fds(), w_fds()
    print("  fds before: daemon %d, worker %d" % (base_d, base_w))

    def settled(what):
        ok = wait_until(lambda: counts() == (base_d, base_w, 0, 0), 3, 0.05)
        check(ok, "%s: daemon fds %d, worker fds %d, no connection left (daemon sees %r in workers %r)"
              % (what, base_d, base_w, counts()[2], counts()[3]), "now (daemon fds, worker fds, connections, "
              "in workers) = %r" % (counts(),))

    def delegated_conn(tag, n=3):
        c = s.conn(port)
        for i in range(n):
            r = c.request(get_req("/w/%s-%d" % (tag, i)))
            if r.status != 200 or body_pid(r.body) != w.pid:
                check(False, "%s: request %d answered by W" % (tag, i), repr(r))
        return c

    # many connections, each a few requests, then the client closes (FIN) while W holds it
    conns = [delegated_conn("fin%d" % i) for i in range(NCONN)]
    check_eq(d.status().get("connections_in_workers"), NCONN, "%d connections held by the worker" % NCONN)
    for c in conns:
        c.close()
    settled("%d delegated connections closed by their clients (FIN)" % NCONN)

    # the client resets (SO_LINGER 0) idle delegated connections
    conns = [delegated_conn("rst%d" % i) for i in range(10)]
    for c in conns:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    settled("10 delegated connections reset by their clients")

    # Connection: close on a delegated request: the response, then EOF
    c = delegated_conn("close")
    c.send(get_req("/w/close-last", extra="Connection: close\r\n"))
    r = c.read_response()
    check(r.status == 200 and body_pid(r.body) == w.pid, "Connection: close request on a delegated connection answered",
          repr(r))
    how, rest = c.wait_closed(3)
    check(how == "eof" and rest == b"", "then the connection is closed with a FIN", "%s %r" % (how, rest))
    c.close()
    settled("Connection: close")

    # HTTP/1.0 without keep-alive, after keep-alive requests on the same connection
    c = delegated_conn("h10")
    c.send(b"GET /w/h10-last HTTP/1.0\r\n\r\n")
    data, how = c.read_all(3)
    check(how == "eof" and data.startswith(b"HTTP/1.1 200") and (b"path=/w/h10-last") in data,
          "HTTP/1.0 request on a delegated connection: answered, then FIN", "%s %r" % (how, data[:200]))
    c.close()
    settled("HTTP/1.0 without keep-alive")

    # a request then the client's half-close: the answer still comes, then the close
    c = delegated_conn("half")
    c.send(get_req("/w/half-last"))
    c.sock.shutdown(socket.SHUT_WR)
    r = c.read_response()
    check(r.status == 200 and b"path=/w/half-last" in r.body, "request followed by the client's FIN: still answered",
          repr(r))
    how, rest = c.wait_closed(3)
    check(how == "eof" and rest == b"", "then the server closes too", "%s %r" % (how, rest))
    c.close()
    settled("client half-close after a request")

    # half a request, then the client goes: nothing answered, nothing leaked
    c = delegated_conn("partial")
    c.send(b"GET /w/partial-last HTTP/1.1\r\nHo")
    time.sleep(0.1)
    c.close()
    settled("client gone in the middle of a head")
    check(w.alive() and d.alive(), "worker and daemon still running")
