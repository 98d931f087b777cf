# 132-apps-libportshare-fail-upgrade: a libportshare app whose command exits 3 at once (a shell line that runs portshare-hello only once a flag file exists): the first request starts it, the crashes are restarted with the backoff, rapid-fail protection (--rapid-fail-count 3) fails the app, and the request that was held all along gets 503, as does the next one at once; with the flag made, `app start` and the next request is served by portshare-hello. Then the daemon is upgraded (portshared --upgrade): the running app serves on through the new daemon without a restart, and once it idles out a request starts it again through the new daemon (the controller's demand wait went on across the upgrade). Needs root.
import threading
import time

from apps_help import hello_pid, pid_alive, show, supervisor
from harness import Story, check, check_eq, find_queue, wait_until


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    sup, ctl = supervisor(s, d)
    flag = s.path("healthy")
    script = "if [ -e %s ]; then exec %s --text hi; fi; exit 3" % (flag, s.bin("portshare-hello"))
    r = s.run(ctl + ["app", "add", "crashy", "--url", "http://+:%d/crashy/" % port, "--allow-root",
                     "--idle-timeout", "2", "--rapid-fail-count", "3", "--rapid-fail-interval", "60",
                     "--", "/bin/sh", "-c", script])
    check_eq(r.returncode, 0, "app add crashy -- sh -c '...; exit 3': %s" % r.stderr.strip())
    check_eq(show(s, ctl)["crashy"]["backend"], "libportshare", "no $PORT, {port} or {socket}: a libportshare app")

    # the first request starts it; it crashes 3 times (backoffs of 2 and 4 s) and fails
    held = {}
    t0 = time.monotonic()
    first = threading.Thread(target=lambda: held.update(r=s.get(s.url(port, "/crashy/first"), timeout=30)))
    first.start()
    check(wait_until(lambda: show(s, ctl)["crashy"]["state"] == "failed", 20), "after 3 crashes the app is failed")
    first.join(10)
    took = time.monotonic() - t0
    check(held.get("r") is not None and held["r"].status == 503,
          "the request held since the first start gets 503 once the app failed (%.1f s)" % took,
          repr(held.get("r")))
    a = show(s, ctl)["crashy"]
    check(a["crashes"] == 3 and a["last_exit_status"] == 3 and a["pids"] == [],
          "app show: 3 crashes, last exit status 3, no process", repr(a))
    check_eq(sup.stderr().count("crashy: started"), 3, "started 3 times")
    t0 = time.monotonic()
    r = s.get(s.url(port, "/crashy/next"), timeout=5)
    check(r.status == 503 and time.monotonic() - t0 < 1, "the next request: 503 at once")
    check_eq(sup.stderr().count("crashy: started"), 3, "a failed app is not started by a request")

    # fixed, app start: the next request is served
    with open(flag, "w") as f:
        f.write("")
    r = s.run(ctl + ["app", "start", "crashy"])
    check(r.returncode == 0 and "next request starts it" in r.stdout, "app start crashy: %s" % r.stdout.strip())
    check(wait_until(lambda: hello_pid(s.get(s.url(port, "/crashy/again"), timeout=10)) is not None, 10, 0.3),
          "after app start the next request is served by portshare-hello")
    pid = show(s, ctl)["crashy"]["pid"]
    check_eq(show(s, ctl)["crashy"]["crashes"], 0, "app start forgot the crashes")

    # the daemon is upgraded: the app serves on; idled out, it starts again on demand
    d.expected_exit = True
    du = s.daemon(sock=d.sock, state_dir=d.state_dir, limits={"ShutdownGrace": 1}, args=["--upgrade"],
                  name="portshared-up")
    check_eq(d.wait(15), 0, "the old daemon exits 0 after the upgrade")
    r = s.get(s.url(port, "/crashy/upgraded"), timeout=10)
    check_eq(hello_pid(r), pid, "served through the upgraded daemon by the same pid %d" % pid)
    check(wait_until(lambda: not pid_alive(pid), 10), "idle for 2 s: pid %d stopped" % pid)
    check(wait_until(lambda: any(w.get("demand_wait") for w in
                                 (find_queue(du.status(), "app-crashy") or {}).get("workers", [])), 5),
          "the supervisor's controller waits for demand on the upgraded daemon")
    r = s.get(s.url(port, "/crashy/later"), timeout=10)
    pid2 = hello_pid(r)
    check(pid2 is not None and pid2 != pid, "a request through the upgraded daemon starts it again: %r" % r.body[:60])
    r = s.run(ctl + ["app", "delete", "crashy"])
    check_eq(r.returncode, 0, "app delete crashy")
    sup.stop()
