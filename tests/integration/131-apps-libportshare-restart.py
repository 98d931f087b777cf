# 131-apps-libportshare-restart: a libportshare app (portshare-hello as a throwaway user) under portshare-apps: `app restart` overlapped under a bounded load loop (4 clients, keep-alive and a new connection per request): the new process has joined the queue (a worker in the daemon's status) before the old one gets SIGTERM, 0 failed requests, the old pid gone and the new one serving; a second restart meanwhile is refused; `app stop` answers 503 at once (no controller left on the queue) until `app start`, after which the next request starts it again; --always-running starts it before any request and the idle timeout never stops it. Needs root.
import re
import threading
import time

from apps_help import load, load_end, pid_alive, restart, show, supervised_user
from harness import Story, check, check_eq, find_queue, wait_until


def pid_of(body):
    return int(re.match(rb"hi pid=(\d+) ", body).group(1))


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    with supervised_user(s, d, "ps131u") as (user, uid, sup, ctl):
        r = s.run(ctl + ["app", "add", "hi", "--url", "http://+:%d/hi/" % port, "--user", user, "--",
                         s.bin("portshare-hello"), "--text", "hi"])
        check_eq(r.returncode, 0, "app add hi -- portshare-hello --text hi: %s" % r.stderr.strip())
        r = s.get(s.url(port, "/hi/first"))
        check_eq(r.status, 200, "the first request starts the app")
        check(wait_until(lambda: show(s, ctl)["hi"]["state"] == "running", 5), "app show: running")
        pid0 = show(s, ctl)["hi"]["pid"]

        stop = threading.Event()
        results = [{} for _ in range(4)]
        loaders = [threading.Thread(target=load, args=(port, "/hi/load", stop, results[i], pid_of, i % 2 == 0))
                   for i in range(4)]
        for t in loaders:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        new_pid = restart(s, ctl, "hi", "joins queue app-hi")
        took = time.monotonic() - t0
        check(wait_until(lambda: not pid_alive(pid0), 10), "the old pid %d is gone (%.2f s to the switch)"
              % (pid0, took))
        check(("the new pid %d joined app-hi" % new_pid) in sup.stderr(),
              "the supervisor switched once the new pid had joined the queue")
        load_end(stop, loaders, results, pid0, new_pid)
        q = find_queue(d.status(), "app-hi")
        check([w["pid"] for w in q["workers"] if w["pid"] != sup.pid] == [new_pid],
              "the daemon's status: the new pid is the queue's one worker (besides the controller)", repr(q))

        # app stop: 503 at once, no controller and no worker on the queue; app start
        r = s.run(ctl + ["app", "stop", "hi"])
        check_eq(r.returncode, 0, "app stop hi: %s" % r.stdout.strip())
        check(wait_until(lambda: not pid_alive(new_pid), 10), "its process is stopped")
        check(wait_until(lambda: not (find_queue(d.status(), "app-hi") or {}).get("workers"), 5),
              "no session is attached to queue app-hi")
        t0 = time.monotonic()
        r = s.get(s.url(port, "/hi/stopped"), timeout=5)
        took = time.monotonic() - t0
        check(r.status == 503 and took < 1, "a request while stopped: %d in %.2f s" % (r.status, took))
        r = s.run(ctl + ["app", "start", "hi"])
        check(r.returncode == 0 and "next request starts it" in r.stdout, "app start hi: %s" % r.stdout.strip())
        check(wait_until(lambda: s.get(s.url(port, "/hi/again"), timeout=5).status == 200, 10, 0.3),
              "after app start the next request starts the app and gets its answer")
        r = s.run(ctl + ["app", "delete", "hi"])
        check_eq(r.returncode, 0, "app delete hi")

        # --always-running: started before any request, never idled out
        r = s.run(ctl + ["app", "add", "always", "--url", "http://+:%d/always/" % port, "--user", user,
                         "--always-running", "--idle-timeout", "1", "--", s.bin("portshare-hello"), "--text", "hi"])
        check_eq(r.returncode, 0, "app add always --always-running: %s" % r.stderr.strip())
        check(wait_until(lambda: show(s, ctl)["always"]["state"] == "running", 10), "it runs before any request")
        pid = show(s, ctl)["always"]["pid"]
        time.sleep(2.5)
        check(pid_alive(pid) and show(s, ctl)["always"]["pid"] == pid, "idle 2.5 s with --idle-timeout 1: "
              "pid %d runs on" % pid)
        r = s.get(s.url(port, "/always/x"))
        check(r.status == 200 and r.body.startswith(b"hi pid=%d " % pid), "it answers: %r" % r.body[:60])
        s.run(ctl + ["app", "delete", "always"])
