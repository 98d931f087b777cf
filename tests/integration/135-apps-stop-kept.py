# 135-apps-stop-kept: `app stop` is kept across a restart of portshare-apps, as IIS Manager keeps a stopped application pool stopped: an HTTP app (python http.server), a libportshare app (portshare-hello) and an --always-running one are stopped, the supervisor restarts, and all three are still `stopped` (the log says so), answer 503 and start no process; `app start` makes one serve again and that too is kept across the next restart; `app delete` removes the mark. A stop of the supervisor drains its proxies first: a request in flight gets the app's answer. Needs root (apps run with --allow-root).
import os
import threading
import time

from apps_help import pidserver, show, supervisor
from harness import Story, check, check_eq, wait_until

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    sup, ctl = supervisor(s, d)
    hello = [s.bin("portshare-hello"), "--text", "hi"]
    apps = {"web": pidserver(s) + ["{port}"], "hi": hello, "always": hello}
    for name, argv in apps.items():
        extra = {"always": ["--always-running"], "web": ["--strip-prefix"]}.get(name, [])
        r = s.run(ctl + ["app", "add", name, "--url", "http://+:%d/%s/" % (port, name), "--allow-root"] + extra
                  + ["--"] + argv)
        check_eq(r.returncode, 0, "app add %s: %s" % (name, r.stderr.strip()))

    def status(name):
        return s.get(s.url(port, "/%s/x" % name), timeout=10).status

    for name in apps:
        check(wait_until(lambda: status(name) == 200, 15, 0.2), "app %s answers" % name)
        r = s.run(ctl + ["app", "stop", name])
        check(r.returncode == 0 and "(not kept" not in r.stdout, "app stop %s: %s" % (name, r.stdout.strip()))
    check(wait_until(lambda: all(show(s, ctl)[n]["state"] == "stopped" for n in apps), 10), "all three are stopped")
    check_eq(sorted(f for f in os.listdir(s.path("apps")) if f.endswith(".stopped")),
             sorted(".%s.stopped" % n for n in apps), "a mark for each beside the definitions")

    # a new supervisor: still stopped, nothing started, 503
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    sup, ctl = supervisor(s, d, "portshare-apps-2")
    for name in apps:
        check(("%s: loaded, stopped (by app stop)" % name) in sup.stderr(), "the new supervisor's log: %s stopped" % name)
    st = show(s, ctl)
    check_eq({n: st[n]["state"] for n in apps}, {n: "stopped" for n in apps}, "app show after the restart")
    for name in apps:
        check_eq(status(name), 503, "a request to stopped app %s: 503" % name)
    time.sleep(1)
    st = show(s, ctl)
    check_eq({n: st[n].get("pid") or None for n in apps}, {n: None for n in apps},
             "no process was started (not even the --always-running one)")

    # app restart of a stopped app is a start, and kept so
    r = s.run(ctl + ["app", "restart", "always"])
    check(r.returncode == 0 and "started" in r.stdout, "app restart always (stopped): %s" % r.stdout.strip())
    check(not os.path.exists(s.path("apps/.always.stopped")), "its mark is gone")
    check(wait_until(lambda: show(s, ctl)["always"]["state"] == "running", 10), "always runs again")
    r = s.run(ctl + ["app", "stop", "always"])
    check(r.returncode == 0 and os.path.exists(s.path("apps/.always.stopped")), "app stop always: marked again")

    # app start is kept too
    r = s.run(ctl + ["app", "start", "web"])
    check_eq(r.returncode, 0, "app start web: %s" % r.stdout.strip())
    check(wait_until(lambda: status("web") == 200, 15, 0.2), "web answers again")
    check(not os.path.exists(s.path("apps/.web.stopped")), "its mark is gone")
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    sup, ctl = supervisor(s, d, "portshare-apps-3")
    st = show(s, ctl)
    check(st["web"]["state"] != "stopped" and st["hi"]["state"] == "stopped",
          "after another restart: web %s, hi %s" % (st["web"]["state"], st["hi"]["state"]))
    check(wait_until(lambda: status("web") == 200, 15, 0.2), "web answers (started on demand)")

    # the supervisor's own stop drains its proxies first: a request in flight finishes
    got = {}
    slow = threading.Thread(target=lambda: got.update(r=s.get(s.url(port, "/web/slow?1.5"), timeout=20)))
    slow.start()
    time.sleep(0.4)
    t0 = time.monotonic()
    check_eq(sup.stop(20), 0, "portshare-apps exits 0 on SIGTERM with a request in flight")
    took = time.monotonic() - t0
    slow.join(20)
    check(got["r"].status == 200 and got["r"].body.isdigit(),
          "the request in flight (1.5 s) got the app's answer (%.1f s to the exit)" % took, repr(got["r"]))
    sup, ctl = supervisor(s, d, "portshare-apps-4")

    for name in apps:
        r = s.run(ctl + ["app", "delete", name])
        check_eq(r.returncode, 0, "app delete %s" % name)
    check_eq([f for f in os.listdir(s.path("apps"))], [], "app delete leaves nothing in the apps directory")
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
