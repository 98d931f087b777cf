# 121-apps-restart-overlapped: `portsharectl app restart` as IIS recycles an app pool: under a bounded load loop (4 keep-alive clients) the new process (a python http.server app that answers its pid) is started on a new port and accepting before the proxy switches to it; a slow request in flight to the old one finishes with the old one's answer; then the old one is stopped; 0 failed requests, the old pid gone, the new pid serving. A second restart while one is in progress is refused. A gunicorn app on {socket} restarts onto a new socket path and the old one's file goes. `app stop` / `app start` of a running app (SIGTERM to its group; 503 while stopped).
import http.client
import os
import re
import threading
import time

from apps_help import add_wsgi, pid_alive, pidserver, show, supervisor
from harness import Story, check, check_eq, wait_until

def load(port, path, stop, out, max_requests=20000, max_seconds=30):
    """Requests on one keep-alive connection (a new one after any failure) until stop, at
    most max_requests or max_seconds; out gets (ok, failed, pids seen in order)."""
    ok = failed = 0
    pids = []
    conn = None
    end = time.monotonic() + max_seconds
    while not stop.is_set() and ok + failed < max_requests and time.monotonic() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                ok += 1
                if not pids or pids[-1] != int(body):
                    pids.append(int(body))
            else:
                failed += 1
                out.setdefault("bad", []).append((resp.status, body[:100]))
        except Exception as e:  # a failed request: counted, and a new connection
            failed += 1
            out.setdefault("bad", []).append(repr(e))
            conn = None
    out.update(ok=ok, failed=failed, pids=pids)


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    sup, ctl = supervisor(s, d)
    r = s.run(ctl + ["app", "add", "web", "--url", "http://+:%d/web/" % port, "--strip-prefix", "--allow-root",
                     "--always-running", "--"] + pidserver(s) + ["{port}"])
    check_eq(r.returncode, 0, "app add web -- python3 pidserver.py {port}: %s" % r.stderr.strip())
    check(wait_until(lambda: show(s, ctl)["web"]["state"] == "running", 15), "the app runs")
    a = show(s, ctl)["web"]
    pid0, backend0 = a["pid"], a["backend"]

    stop = threading.Event()
    results = [{} for _ in range(4)]
    loaders = [threading.Thread(target=load, args=(port, "/web/", stop, results[i])) for i in range(4)]
    for t in loaders:
        t.start()
    slow = {}
    slow_t = threading.Thread(target=lambda: slow.update(r=s.get(s.url(port, "/web/slow?1.5"))))
    time.sleep(0.5)
    slow_t.start()
    time.sleep(0.3)  # the slow request is in the old process now
    r = s.run(ctl + ["app", "restart", "web"])
    check(r.returncode == 0 and "restarting: new pid" in r.stdout, "app restart web: %s" % r.stdout.strip())
    new_pid = int(re.search(r"new pid (\d+)", r.stdout).group(1))
    r = s.run(ctl + ["app", "restart", "web"])
    check(r.returncode == 1 and "restarting already" in r.stderr, "a second restart meanwhile is refused: %s"
          % r.stderr.strip())
    check(wait_until(lambda: show(s, ctl)["web"]["pid"] == new_pid, 15), "the proxy switched to pid %d" % new_pid)
    check(pid_alive(pid0) and slow_t.is_alive(), "the old pid %d still runs while its slow request is in flight" % pid0)
    slow_t.join(10)
    check(slow.get("r") is not None and slow["r"].status == 200 and slow["r"].body == str(pid0).encode(),
          "the slow request in flight finished with the old pid's answer", repr(slow.get("r")))
    check(wait_until(lambda: not pid_alive(pid0), 10), "then the old pid %d is gone" % pid0)
    time.sleep(1)
    stop.set()
    for t in loaders:
        t.join(40)
    total_ok = sum(x.get("ok", 0) for x in results)
    total_failed = sum(x.get("failed", 0) for x in results)
    check(total_failed == 0 and total_ok > 100, "under load: %d requests, %d failed" % (total_ok, total_failed),
          repr([x.get("bad", [])[:3] for x in results]))
    check(all(x["pids"][0] == pid0 and x["pids"][-1] == new_pid for x in results),
          "each client saw the old pid, then the new one", repr([x["pids"] for x in results]))
    a = show(s, ctl)["web"]
    check(a["state"] == "running" and a["pids"] == [new_pid] and a["backend"] != backend0,
          "app show: running, pid %d only, a new backend (%s, was %s)" % (new_pid, a["backend"], backend0), repr(a))
    err = sup.stderr()
    check("web: the new pid %d accepts on" % new_pid in err and "stopping the old pid %d" % pid0 in err,
          "the supervisor's log tells the switch and the old pid's stop")
    r = s.get(s.url(port, "/web/"))
    check(r.status == 200 and r.body == str(new_pid).encode(), "the new pid serves", repr(r))

    # app stop and app start of a running app
    r = s.run(ctl + ["app", "stop", "web"])
    check(r.returncode == 0 and "stopping pid %d" % new_pid in r.stdout, "app stop web: %s" % r.stdout.strip())
    check(wait_until(lambda: not pid_alive(new_pid), 10), "its process is gone")
    check_eq(show(s, ctl)["web"]["state"], "stopped", "state stopped")
    check_eq(s.get(s.url(port, "/web/")).status, 503, "stopped: 503")
    r = s.run(ctl + ["app", "restart", "web"])
    check(r.returncode == 0 and "started" in r.stdout, "app restart of a stopped app starts it: %s" % r.stdout.strip())
    check(wait_until(lambda: show(s, ctl)["web"]["state"] == "running", 15), "it runs again (always running)")
    check_eq(s.get(s.url(port, "/web/")).status, 200, "and serves")

    # gunicorn on {socket}: the new process gets a new socket path; the old one's file goes
    add_wsgi(s, ctl, port, "str(os.getppid()).encode()")
    r = s.get(s.url(port, "/wsgi/"))
    check_eq(r.status, 200, "gunicorn started by the first request")
    a = show(s, ctl)["wsgi"]
    g0, sock0 = a["pid"], a["backend"][len("unix:"):]
    check(r.body == str(g0).encode(), "its master is the app's pid %d" % g0, repr(r.body))
    r = s.run(ctl + ["app", "restart", "wsgi"])
    check_eq(r.returncode, 0, "app restart wsgi: %s" % r.stdout.strip())
    check(wait_until(lambda: show(s, ctl)["wsgi"]["pid"] not in (0, g0), 20) and
          wait_until(lambda: not pid_alive(g0), 15), "the new gunicorn serves, the old one is gone")
    a = show(s, ctl)["wsgi"]
    sock1 = a["backend"][len("unix:"):]
    check(sock1 != sock0 and os.path.dirname(sock1) == os.path.dirname(sock0) and os.path.exists(sock1)
          and not os.path.exists(sock0), "a new socket %s beside the old one, which is gone" % sock1)
    r = s.get(s.url(port, "/wsgi/"))
    check(r.status == 200 and r.body == str(a["pid"]).encode(), "the new gunicorn answers", repr(r))
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    check(not os.path.exists(os.path.dirname(sock1)), "the socket directory is removed at exit")
