# 37-response-last-one-send: a body that arrived whole is read in one ps_request_read and echoed
# with ps_respond_last: head, data and end leave in one send (counted with strace), so a worker
# killed around it has written none of it or all of it, never a cut response; a worker
# SIGKILLed right after ps_respond_last leaves a whole response and a live connection.
import os
import re
from harness import Proc, Story, check, check_eq, fail, wait_until

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    trace = s.path("echo.strace")
    # LeakSanitizer stops the world with ptrace, which it cannot do under strace: the traced
    # worker runs without leak checking (ASan and UBSan stay on)
    env = dict(s.env, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0") if s.sanitizer else None
    p = Proc(s, ["strace", "-f", "-qq", "-yy", "-o", trace, "-e", "trace=sendmsg,sendto,writev,write,sendfile",
                 s.bin("portshare-upload-echo"), "--socket", d.sock, "--url", "http://+:%d/e/" % port],
             "strace-upload-echo", env=env)
    p.ready()
    # the traced worker is strace's child: stop it by its pid, strace then ends by itself
    children = []
    wait_until(lambda: children.extend(
        int(x) for x in open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()) or children, 5)
    echo_pid = children[0]

    cases = [  # (what, request bytes, expected echo)
        ("Content-Length 354, first request (the daemon delivers it with its body)", 354, False),
        ("Content-Length 12444 on the kept connection (the library reads it)", 12444, False),
        ("chunked 3000 in 3 chunks", 3000, True),
        ("Content-Length 40000 (three socket reads, one ps_request_read)", 40000, False),
        ("no body", 0, False),
    ]
    c = s.conn(port)
    local_port = c.sock.getsockname()[1]
    for what, n, chunked in cases:
        body = os.urandom(n)
        if chunked:
            third = n // 3
            parts = [body[:third], body[third:2 * third], body[2 * third:]]
            framed = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in parts) + b"0\r\n\r\n"
            head = b"POST /e/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        else:
            framed = body
            head = b"POST /e/x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % n
        r = c.request(head + framed, method="POST")
        check(r.status == 200 and r.body == body, "%s: echoed exactly" % what, repr(r)[:200])

    c.close()
    os.kill(echo_pid, 15)
    check(p.wait(10) is not None, "strace ended with its worker")
    p.expected_exit = True

    # every send to this client's connection: one line each in the trace
    conn_re = re.compile(r"^\d+ +(sendmsg|sendto|writev|write|sendfile)\(\d+<TCP(?:v6)?:\[[^\]]*:%d\]>" % local_port)
    with open(trace) as f:
        lines = f.read().splitlines()
    sends = [ln for ln in lines if conn_re.match(ln)]
    if not lines:
        fail("strace wrote nothing; trace file empty")
    check_eq(len(sends), len(cases), "sends on the client's connection, one per response (strace -yy)")
    check(all('"HTTP/1.1 200 ' in ln for ln in sends), "and each of them begins with its response's head",
          "\n".join(ln[:160] for ln in sends))

    # SIGKILL right after ps_respond_last: the client has the whole response, and its
    # connection lives on (the next request on it goes to the echo app), both for a
    # request the daemon delivered and for one the library read on a kept connection
    s.upload_echo("http://+:%d/e2/" % port)
    for how, first in (("delivered by the daemon", None), ("read by the library (delegated)", "/d/ok")):
        w = s.testworker(["http://+:%d/d/" % port], mode="die-after-last", trigger="die")
        c = s.conn(port)
        if first:
            r = c.request(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % first.encode())
            check_eq(r.status, 200, "%s: the request before: status" % how)
        r = c.request(b"GET /d/die HTTP/1.1\r\nHost: x\r\n\r\n")
        check(r.status == 200 and r.body == b"x" * 100, "%s: the response sent by ps_respond_last, then "
              "SIGKILL: whole" % how, repr(r)[:200])
        check(w.wait(5) is not None, "%s: the worker is dead" % how)
        w.expected_exit = True
        r = c.request(b"POST /e2/after HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nafter", method="POST")
        check(r.status == 200 and r.body == b"after", "%s: the connection lives on: the next request on it "
              "is answered" % how, repr(r)[:200])
        c.close()
