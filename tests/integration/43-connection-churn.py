# 43-connection-churn: clients opening and dropping connections as fast as they can (FIN or RST, nothing sent, half a head, a whole request) leave the daemon serving, its fds back at the start and its log quiet.
import socket
import struct
import time
from harness import Story, check, check_eq, fd_count, get_req, say, wait_until

SOURCES = ["127.0.0.%d" % i for i in range(2, 42)]  # spreads the TIME_WAITs of closed connections
SECONDS = 1.0   # per kind of churn
MAX_PER_KIND = 20000
PARTIAL = b"GET /c/x HTTP/1.1\r\nHost: x\r\nUser-Ag"
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # <linux/in.h>


def churn(port, send, rst):
    """Opens, uses and drops connections for SECONDS; returns (count, errors)."""
    n = errors = 0
    t0 = time.monotonic()
    for i in range(MAX_PER_KIND):
        if time.monotonic() - t0 > SECONDS:
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)  # the port is picked at connect
            sock.bind((SOURCES[i % len(SOURCES)], 0))
            sock.settimeout(2)
            sock.connect(("127.0.0.1", port))
            if send:
                sock.sendall(send)
            if rst:  # SO_LINGER 0: close sends RST, not FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            n += 1
        except OSError:
            errors += 1
        finally:
            sock.close()
    return n, errors


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    app = s.hello(["http://+:%d/c/" % port], text="c")
    url = "http://127.0.0.1:%d/c/x" % port
    check_eq(s.get(url).status, 200, "the app answers before the churn")
    time.sleep(0.2)
    fds0, app_fds0 = d.fds(), fd_count(app.pid)
    say("  at the start: daemon %d fds, app %d fds" % (fds0, app_fds0))

    kinds = [
        ("connect, close (FIN)", None, False),
        ("connect, reset (RST)", None, True),
        ("half a head, close", PARTIAL, False),
        ("half a head, reset", PARTIAL, True),
        ("whole request, close without reading", get_req("/c/churn"), False),
        ("whole request, reset without reading", get_req("/c/churn"), True),
    ]
    for what, send, rst in kinds:
        mark = d.mark()
        n, errors = churn(port, send, rst)
        check(app.alive(), "%s: the app is still running" % what, "exit status %s" % app.p.returncode)
        churn_log = d.log()[mark:]
        t0 = time.monotonic()
        check_eq(s.get("http://127.0.0.1:%d/nothing" % port).status, 404, "%s: the daemon answers at once "
                 "(404 for a path no app has)" % what)
        check(time.monotonic() - t0 < 2, "%s: in %.2f s" % (what, time.monotonic() - t0))
        # the app may still be busy with requests of clients that are gone (answered into
        # closed connections): give it time
        served = wait_until(lambda: s.get(url).status == 200, 20, 0.2)
        check(served, "%s: the app answers again (%.1f s after the churn)" % (what, time.monotonic() - t0))
        check("session ended" not in d.log()[mark:], "%s: the app's session was not ended" % what,
              d.log()[mark:][-1500:])
        log = churn_log.splitlines()
        # requests faster than the app serves them fill its queue: each one refused gets
        # 503 QueueFull and its error-log line, as it should (the sanitizer build's app is slow)
        full = sum(1 for line in log if "503 QueueFull" in line)
        other = [line for line in log if "503 QueueFull" not in line]
        say("  %s: %d connections in %.1f s (%d failed to connect); daemon log: %d lines (+%d QueueFull)"
            % (what, n, SECONDS, errors, len(other), full))
        check(n >= 200 and errors <= n // 100, "%s: the daemon took them all (%d, %d failed)" % (what, n, errors))
        # a storm would be a line per dropped connection
        check(len(other) <= 10, "%s: no error storm in the daemon log (%d lines)" % (what, len(other)),
              "\n".join(other[-20:]))

    back = wait_until(lambda: d.fds() <= fds0, 10, 0.1)
    check(back, "daemon fds back to %d after the churn (now %d)" % (fds0, d.fds()))
    check(wait_until(lambda: fd_count(app.pid) <= app_fds0, 10, 0.1),
          "app fds back to %d after the churn (now %d)" % (app_fds0, fd_count(app.pid)))
    check_eq(s.get(url).status, 200, "the app still answers")
    check(d.alive() and app.alive(), "daemon and app still running")
