# 101-proxy-gunicorn-bodies: a WSGI app under gunicorn on a private unix socket ({socket}) behind portshare-run: a Content-Length upload and a 200 MiB chunked upload reach it intact and streamed (the proxy's RSS grows by less than 8 MiB), Expect: 100-continue is passed on (gunicorn's 100 reaches the client at once; a backend that refuses gets its 417 to the client before any body), SCRIPT_NAME-free paths with --strip-prefix.
import hashlib
import json
import os
import time
from harness import Story, check, check_eq
from proxy_help import RssPeak, backend, gunicorn, proxy, run

MIB = 1024 * 1024
APP = '''
import hashlib, json

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/upload":
        h, n, inp = hashlib.sha256(), 0, environ["wsgi.input"]
        for _ in range(10 ** 7):
            b = inp.read(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        out = {"length": n, "sha256": h.hexdigest(), "cl": environ.get("CONTENT_LENGTH"),
               "te": environ.get("HTTP_TRANSFER_ENCODING")}
    else:
        out = {"path": path, "query": environ.get("QUERY_STRING"),
               "xff": environ.get("HTTP_X_FORWARDED_FOR")}
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
'''

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    with open(s.path("wsgiapp.py"), "w") as f:
        f.write(APP)
    app = run(s, ["http://+:%d/py/" % port],
              [gunicorn(s), "--bind", "unix:{socket}", "--workers", "2", "--chdir", s.dir, "wsgiapp:app"],
              extra=["--strip-prefix"], timeout=30)
    check("backend=unix:" in app.stdout(), "portshare-run gave gunicorn a unix socket ({socket})", app.stdout())

    r = s.get(s.url(port, "/py/hello?x=1"))
    got = json.loads(r.body) if r.status == 200 else {}
    check(got.get("path") == "/hello" and got.get("query") == "x=1" and got.get("xff") == "127.0.0.1",
          "GET /py/hello?x=1 reaches the app as /hello?x=1 with X-Forwarded-For", repr(r))

    # Content-Length upload, 20 MiB
    data = os.urandom(MIB) * 20
    path = s.path("cl.bin")
    with open(path, "wb") as f:
        f.write(data)
    r = s.get(s.url(port, "/py/upload"), data_file=path, timeout=60)
    got = json.loads(r.body) if r.status == 200 else {}
    check(got.get("length") == len(data) and got.get("sha256") == hashlib.sha256(data).hexdigest()
          and got.get("cl") == str(len(data)), "a 20 MiB Content-Length upload arrives whole, with its length",
          repr(r)[:300])
    os.unlink(path)

    # chunked upload, 200 MiB, sampled RSS
    block = os.urandom(MIB)
    path = s.path("big.bin")
    h = hashlib.sha256()
    with open(path, "wb") as f:
        for i in range(200):
            b = block[i:] + block[:i]
            f.write(b)
            h.update(b)
    rss = RssPeak(app.pid)
    t0 = time.monotonic()
    r = s.curl(["-T", path, "-H", "Transfer-Encoding: chunked", "-w", "\n%{http_code}", s.url(port, "/py/upload")],
               timeout=110)
    took = time.monotonic() - t0
    grew = rss.stop()
    os.unlink(path)
    body, _, code = r.stdout.rpartition("\n")
    got = json.loads(body) if code == "200" else {}
    check(got.get("length") == 200 * MIB and got.get("sha256") == h.hexdigest() and got.get("te") == "chunked",
          "a 200 MiB chunked upload arrives whole, chunked (%.1f s)" % took, r.stdout[:300] + r.stderr[:300])
    check(grew < 8 * 1024, "the proxy's RSS grew by less than 8 MiB during it (%d -> %d KiB)"
          % (rss.base, rss.peak))

    # Expect: 100-continue passed on: gunicorn answers 100 at once, the client gets it
    c = s.conn(port)
    t0 = time.monotonic()
    c.send(b"POST /py/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    took = time.monotonic() - t0
    check(r.status == 100 and took < 0.8, "gunicorn's 100 Continue reaches the client before the body (%.2f s)" % took,
          repr(r))
    c.send(b"hello")
    r = c.read_response(timeout=5)
    check(r.status == 200 and json.loads(r.body).get("length") == 5, "then the body and the answer", repr(r))
    c.close()

    # a backend that refuses the body: its final answer, no 100, the body never sent
    b, bport = backend(s)
    proxy(s, ["http://+:%d/raw/" % port], "http://127.0.0.1:%s" % bport, queue="raw", extra=["--strip-prefix"])
    c = s.conn(port)
    c.send(b"POST /raw/expect-reject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    check_eq(r.status, 417, "a backend that refuses the body: its 417 comes first, no 100")
    c.close()
    # a backend that sends no 100 and just reads: the proxy sends the body after waiting 1 s
    c = s.conn(port)
    t0 = time.monotonic()
    c.send(b"POST /raw/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=4)
    check(r.status == 100 and 0.8 < time.monotonic() - t0 < 2.5,
          "a backend silent about Expect: the client gets 100 after the proxy's 1 s wait", repr(r))
    c.send(b"hello")
    r = c.read_response(timeout=5)
    got = json.loads(r.body) if r.status == 200 else {}
    check(got.get("length") == 5 and got.get("cl") == "5", "and the body reaches it", repr(r))
    # the backend's own 100 Continue is passed on at once
    t0 = time.monotonic()
    c.send(b"POST /raw/expect-continue HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    r = c.read_response(timeout=3)
    check(r.status == 100 and time.monotonic() - t0 < 0.8, "a backend's own 100 Continue reaches the client at once",
          repr(r))
    c.send(b"abc")
    r = c.read_response(timeout=5)
    check(r.status == 200 and json.loads(r.body).get("length") == 3, "then its answer", repr(r))
    c.close()
