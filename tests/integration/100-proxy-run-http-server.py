# 100-proxy-run-http-server: portshare-run puts an unmodified `python3 -m http.server` under a prefix on a free loopback port ({port} and $PORT), serves files (a 100 MiB download with the proxy's RSS bounded), on SIGTERM drains (a download in flight finishes) then passes it on and exits with the app's status (128+signal), and its URLs are gone once the app exits; an app that exits on its own gives its status; one that never listens is stopped after --ready-timeout. Also with PORTSHARE_DEFAULTS=1.
import filecmp
import os
import signal
import sys
import threading
import time
from harness import Story, check, check_eq, find_queue, wait_until
from proxy_help import RssPeak, run

MIB = 1024 * 1024

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    root = s.path("www")
    os.makedirs(root)
    with open(os.path.join(root, "a.txt"), "w") as f:
        f.write("file a\n")
    big = os.path.join(root, "big.bin")
    with open(big, "wb") as f:
        block = os.urandom(MIB)
        for _ in range(100):
            f.write(block)

    app = run(s, ["http://+:%d/files/" % port],
              [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", root],
              extra=["--strip-prefix"])
    queue = app.wait_for(r"ready queue=(\S+)").group(1)
    check_eq(queue, "run-%d" % app.pid, "the queue is named after portshare-run's pid")
    st = d.status()
    q = find_queue(st, queue)
    check(q is not None and "http://+:%d/files/" % port in q.get("urls", []), "status lists the queue and its URL",
          repr(st.get("queues")))

    for host in s.hosts:
        r = s.get(s.url(port, "/files/a.txt", host))
        check(r.status == 200 and r.body == b"file a\n", "GET /files/a.txt on %s through http.server" % host, repr(r))
        r = s.get(s.url(port, "/files/missing", host))
        check_eq(r.status, 404, "a missing file: http.server's own 404 (%s)" % host)
        r = s.get(s.url(port, "/files/", host))
        check(r.status == 200 and b"a.txt" in r.body, "the directory listing (%s)" % host, repr(r))

    # 100 MiB through the proxy, its RSS sampled meanwhile
    rss = RssPeak(app.pid)
    out = s.path("big.out")
    r = s.curl(["-o", out, "-w", "%{http_code} %{size_download}", s.url(port, "/files/big.bin")], timeout=60)
    grew = rss.stop()
    check_eq(r.stdout, "200 %d" % (100 * MIB), "100 MiB download: status and size")
    with open(out, "rb") as f1, open(big, "rb") as f2:
        same = all(f1.read(MIB) == f2.read(MIB) for _ in range(100))
    os.unlink(out)
    check(same, "the 100 MiB arrived intact")
    check(grew < 8 * 1024, "portshare-run's RSS grew by less than 8 MiB during it (%d -> %d KiB)"
          % (rss.base, rss.peak))

    # SIGTERM: the proxy drains first, so a download in flight finishes while the app
    # still runs; then the app gets it; portshare-run exits with its status; the URLs go
    child = [int(p) for p in open("/proc/%d/task/%d/children" % (app.pid, app.pid)).read().split()]
    check_eq(len(child), 1, "portshare-run has one child, the app")
    got = {}
    dl = threading.Thread(target=lambda: got.update(r=s.curl(
        ["-o", out, "-w", "%{http_code} %{size_download}", "--limit-rate", "50M",
         s.url(port, "/files/big.bin")], timeout=60)))
    dl.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    app.signal(signal.SIGTERM)
    rc = app.wait(15)
    took = time.monotonic() - t0
    app.expected_exit = True
    dl.join(60)
    check_eq(got["r"].stdout, "200 %d" % (100 * MIB),
             "a 100 MiB download (at 50 MB/s) in flight when SIGTERM came finished whole (%.1f s to the exit)" % took)
    check(filecmp.cmp(out, big, shallow=False), "and arrived intact")
    os.unlink(out)
    check_eq(rc, 128 + signal.SIGTERM, "portshare-run exits with 128+SIGTERM, as the app was killed by it")
    check(not os.path.exists("/proc/%d" % child[0]) or open("/proc/%d/stat" % child[0]).read().split()[2] == "Z",
          "the app is gone")
    check(wait_until(lambda: find_queue(d.status(), queue) is None, 5, 0.1), "its queue is removed from the daemon")
    r = s.get(s.url(port, "/files/a.txt"))
    check(r.status in (0, 404), "/files/ is no longer served", repr(r))

    # $PORT, and an app that exits on its own: its status
    script = s.path("once.py")
    with open(script, "w") as f:
        f.write("import http.server, os, sys\n"
                "class H(http.server.BaseHTTPRequestHandler):\n"
                "    def do_GET(self):\n"
                "        self.send_response(200); self.send_header('Content-Length', '5'); self.end_headers()\n"
                "        self.wfile.write(b'once\\n')\n"
                "        self.server.served = True\n"
                "srv = http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H)\n"
                "srv.served = False\n"
                "for _ in range(100):  # the readiness probe is a connection without a request\n"
                "    srv.handle_request()\n"
                "    if srv.served:\n"
                "        sys.exit(7)\n")
    app2 = run(s, ["http://+:%d/once/" % port], [sys.executable, script])
    q2 = app2.wait_for(r"ready queue=(\S+)").group(1)
    r = s.get(s.url(port, "/once/x"))
    check(r.status == 200 and r.body == b"once\n", "an app listening on $PORT is served", repr(r))
    rc = app2.wait(10)
    app2.expected_exit = True
    check_eq(rc, 7, "the app exited with 7: so does portshare-run")
    check(wait_until(lambda: find_queue(d.status(), q2) is None, 5, 0.1), "and its queue is removed")

    # an app that never accepts: stopped after --ready-timeout
    t0 = time.monotonic()
    r = s.run([s.bin("portshare-run"), "--socket", d.sock, "--url", "http://+:%d/never/" % port,
               "--ready-timeout", "1", "--", "sleep", "30"], timeout=15)
    check(r.returncode == 1 and "did not accept connections" in r.stderr and time.monotonic() - t0 < 5,
          "an app that never listens: exit 1 after --ready-timeout, saying why", r.stderr)
