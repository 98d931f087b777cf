# 120-apps-rapid-fail: portshare-apps' rapid-fail protection (IIS/WAS's): an app whose command crashes (exit 3) 3 times within 60 s (--rapid-fail-count 3 --rapid-fail-interval 60) becomes `failed`, is not started again, and its URL answers 503 (no Retry-After) saying it is stopped after repeated failures, with the reason in the supervisor's log; `app show` has the crashes and the last exit status; `app start` makes it serve again. With --rapid-fail-count 1, neither an idle stop nor `app stop` counts as a crash (the app never fails), a SIGKILL does (status 137). Old definitions without the new options load with the defaults (5 in 300 s).
import os
import signal
import sys
import time

from apps_help import pid_alive, show, supervisor
from harness import Story, check, check_eq, wait_until


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    apps_dir = s.path("apps")
    sup, ctl = supervisor(s, d)

    # a command that crashes until a flag file exists, then serves
    flag = s.path("healthy")
    script = ('if [ -e %s ]; then exec %s -m http.server "$PORT" --bind 127.0.0.1 --directory %s; fi; exit 3'
              % (flag, sys.executable, s.dir))
    r = s.run(ctl + ["app", "add", "crashy", "--url", "http://+:%d/crashy/" % port, "--strip-prefix", "--allow-root",
                     "--always-running", "--rapid-fail-count", "3", "--rapid-fail-interval", "60",
                     "--", "/bin/sh", "-c", script])
    check_eq(r.returncode, 0, "app add crashy --rapid-fail-count 3 --rapid-fail-interval 60: %s" % r.stderr.strip())
    t0 = time.monotonic()
    check(wait_until(lambda: show(s, ctl)["crashy"]["state"] == "failed", 20), "after 3 crashes the app is failed")
    took = time.monotonic() - t0
    a = show(s, ctl)["crashy"]
    check(a["crashes"] == 3 and a["last_exit_status"] == 3 and a["pid"] == 0 and a["pids"] == [],
          "app show: 3 crashes in the window, last exit status 3, no process", repr(a))
    check(a["rapid_fail_count"] == 3 and a["rapid_fail_interval"] == 60, "app show: the app's rapid-fail settings",
          repr(a))
    check_eq(sup.stderr().count("crashy: started"), 3, "started 3 times (then backoffs of 2 and 4 s: %.1f s)" % took)
    check("rapid-fail protection stops the app; its URLs answer 503 until `portsharectl app start crashy`"
          in sup.stderr(), "the supervisor's log says why the app is stopped")
    r = s.get(s.url(port, "/crashy/"))
    check(r.status == 503 and b"stopped after repeated failures" in r.body, "its URL answers 503: %r" % r.body)
    check(not any(k.lower() == "retry-after" for k, _ in r.headers), "without Retry-After", repr(r.headers))
    r = s.run(ctl + ["app", "show"])
    check("crashy  queue app-crashy  backend 127.0.0.1:" in r.stdout and " failed\n" in r.stdout
          and "crashes 3 in the last 60 s (rapid-fail protection: failed at 3), last exit status 3" in r.stdout,
          "app show (text): failed, its crashes", r.stdout)
    time.sleep(3)
    check_eq(sup.stderr().count("crashy: started"), 3, "a failed app is not started again (3 s later)")
    check_eq(s.get(s.url(port, "/crashy/")).status, 503, "nor by a request")

    with open(flag, "w") as f:
        f.write("")
    r = s.run(ctl + ["app", "start", "crashy"])
    check(r.returncode == 0 and "app crashy started" in r.stdout, "app start crashy: %s" % r.stdout.strip())
    check(wait_until(lambda: show(s, ctl)["crashy"]["state"] == "running", 15), "it runs again (always running)")
    r = s.get(s.url(port, "/crashy/"))
    check(r.status == 200 and b"Directory listing" in r.body, "its URL serves again", repr(r)[:200])
    check_eq(show(s, ctl)["crashy"]["crashes"], 0, "app start forgot the crashes")

    # --rapid-fail-count 1: one crash fails the app, so any stop counted as one would show
    r = s.run(ctl + ["app", "add", "calm", "--url", "http://+:%d/calm/" % port, "--strip-prefix", "--allow-root",
                     "--idle-timeout", "1", "--rapid-fail-count", "1", "--",
                     sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", s.dir])
    check_eq(r.returncode, 0, "app add calm --rapid-fail-count 1: %s" % r.stderr.strip())
    check_eq(s.get(s.url(port, "/calm/")).status, 200, "calm: the first request starts it")
    pid1 = show(s, ctl)["calm"]["pid"]
    check(wait_until(lambda: show(s, ctl)["calm"]["state"] == "idle", 10), "the idle timeout stops it")
    a = show(s, ctl)["calm"]
    check(a["crashes"] == 0 and not pid_alive(pid1), "an idle stop is no crash (SIGTERM: status %r)"
          % a["last_exit_status"], repr(a))
    check_eq(s.get(s.url(port, "/calm/")).status, 200, "the next request starts it again")
    r = s.run(ctl + ["app", "stop", "calm"])
    check_eq(r.returncode, 0, "app stop calm: %s" % r.stderr.strip())
    check(wait_until(lambda: show(s, ctl)["calm"]["state"] == "stopped", 10), "app stop: stopped")
    check_eq(show(s, ctl)["calm"]["crashes"], 0, "an admin stop is no crash")
    r = s.get(s.url(port, "/calm/"))
    check(r.status == 503 and r.body == b"503 Service Unavailable: the app is stopped\n",
          "a stopped app's URL answers 503: %r" % r.body)
    r = s.run(ctl + ["app", "start", "calm"])
    check_eq(r.returncode, 0, "app start calm")
    check_eq(s.get(s.url(port, "/calm/")).status, 200, "started: the next request starts it")
    pid2 = show(s, ctl)["calm"]["pid"]
    os.kill(pid2, signal.SIGKILL)
    check(wait_until(lambda: show(s, ctl)["calm"]["state"] == "failed", 10), "one SIGKILL fails it (count 1)")
    a = show(s, ctl)["calm"]
    check(a["crashes"] == 1 and a["last_exit_status"] == 128 + 9, "one crash, status 137", repr(a))
    check_eq(s.get(s.url(port, "/calm/")).status, 503, "its URL answers 503")

    # an old definition (written before these options) loads with the defaults
    with open(os.path.join(apps_dir, "crashy"), "rb") as f:
        words = f.read()
    check(b"--rapid-fail-count\0003\0" in words, "the definition keeps the options as words")
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    old = b"\0".join([b"old", b"--url", ("http://+:%d/old/" % port).encode(), b"--allow-root", b"--",
                      b"/bin/true"]) + b"\0"
    fd = os.open(os.path.join(apps_dir, "old"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, old)
    os.close(fd)
    sup, ctl = supervisor(s, d, "portshare-apps-2")
    apps = show(s, ctl)
    check(apps["old"]["rapid_fail_count"] == 5 and apps["old"]["rapid_fail_interval"] == 300,
          "an old definition: 5 crashes in 300 s", repr(apps["old"]))
    check(apps["crashy"]["rapid_fail_count"] == 3 and apps["calm"]["state"] == "idle",
          "the others are loaded again (a failed app starts over as idle)", repr(apps))
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
