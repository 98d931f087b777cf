# 121-apps-restart-overlapped: `portsharectl app restart` as IIS recycles an app pool: under a bounded load loop (4 keep-alive clients) the new process (a python http.server app that answers its pid) is started on a new port and accepting before the proxy switches to it; a slow request in flight to the old one finishes with the old one's answer; then the old one is stopped; 0 failed requests, the old pid gone, the new pid serving. A second restart while one is in progress is refused. A gunicorn app on {socket} restarts onto a new socket path and the old one's file goes. `app stop` / `app start` of a running app (SIGTERM to its group; 503 while stopped).
import os
import threading
import time

from apps_help import add_wsgi, load, load_end, pid_alive, pidserver, restart, show, supervisor
from harness import Story, check, check_eq, wait_until

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
    new_pid = restart(s, ctl, "web", "restarting: new pid")
    check(pid_alive(pid0) and slow_t.is_alive(), "the old pid %d still runs while its slow request is in flight" % pid0)
    slow_t.join(10)
    check(slow.get("r") is not None and slow["r"].status == 200 and slow["r"].body == str(pid0).encode(),
          "the slow request in flight finished with the old pid's answer", repr(slow.get("r")))
    check(wait_until(lambda: not pid_alive(pid0), 10), "then the old pid %d is gone" % pid0)
    load_end(stop, loaders, results, pid0, new_pid)
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
