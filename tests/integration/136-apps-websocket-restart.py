# 136-apps-websocket-restart: an upgraded connection (WebSocket) to an HTTP app of portshare-apps counts as a request that lasts: with --idle-timeout 1 the app is not stopped while a WebSocket is open (and echoes 2.5 s later); an overlapped `app restart` switches new requests to the new process but keeps the old one until its WebSocket ends (it echoes through the old process meanwhile), and stops it once the client closes it; the new process's idle clock is its own. Needs root (the app runs with --allow-root).
import os
import struct
import sys
import time

from apps_help import pid_alive, show, supervisor
from harness import HERE, Story, check, check_eq, wait_until
from proxy_help import frame, handshake, read_frame

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    sup, ctl = supervisor(s, d)
    r = s.run(ctl + ["app", "add", "ws", "--url", "http://+:%d/" % port, "--allow-root", "--idle-timeout", "1", "--",
                     sys.executable, os.path.join(HERE, "backend.py"), "{port}"])
    check_eq(r.returncode, 0, "app add ws (backend.py's WebSocket echo at /ws): %s" % r.stderr.strip())

    def echo(c, text):
        c.send(frame(1, text))
        op, data = read_frame(c)
        return op == 1 and data == text

    c, r, want = handshake(s, port)
    check(r.status == 101 and r.header("Sec-WebSocket-Accept") == want, "the WebSocket handshake (the app started)",
          repr(r))
    check(echo(c, b"one"), "a frame echoed")
    pid0 = show(s, ctl)["ws"]["pid"]
    time.sleep(2.5)
    check(show(s, ctl)["ws"]["state"] == "running" and pid_alive(pid0),
          "--idle-timeout 1, yet 2.5 s later the app runs: its WebSocket is open")
    check(echo(c, b"two"), "and echoes")

    r = s.run(ctl + ["app", "restart", "ws"])
    check_eq(r.returncode, 0, "app restart ws: %s" % r.stdout.strip())
    check(wait_until(lambda: show(s, ctl)["ws"]["pid"] != pid0, 15), "new requests go to the new process")
    time.sleep(1.5)
    check(pid_alive(pid0) and "stopping the old pid" not in sup.stderr(),
          "1.5 s after the switch the old process still runs: its WebSocket is open")
    check(echo(c, b"three"), "the WebSocket still echoes, through the old process")
    c.send(frame(8, struct.pack("!H", 1000)))
    op, _ = read_frame(c)
    check_eq(op, 8, "the close is answered")
    c.close()
    check(wait_until(lambda: not pid_alive(pid0), 5), "once the WebSocket is closed the old process is stopped")
    check("ws: no request uses it any more: stopping the old pid %d" % pid0 in sup.stderr(),
          "the supervisor's log says why")
    check(wait_until(lambda: show(s, ctl)["ws"]["state"] == "idle", 10),
          "the new process, with no request and no WebSocket of its own, idles out (the old one's did not count "
          "for it)")
    r = s.run(ctl + ["app", "delete", "ws"])
    check_eq(r.returncode, 0, "app delete ws")
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
