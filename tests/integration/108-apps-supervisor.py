# 108-apps-supervisor: portshare-apps with a temporary apps directory and socket: `portsharectl app add` of a backend (a proxy queue in front of `python3 -m http.server` someone else runs) and of a command (`python3 -m http.server {port}` as a throwaway user); the first request starts the command (activation) and gets its answer; the app runs as that user (/proc/PID/status); the idle timeout stops it and the next requests (six at once) start it again, once; a killed app is started again; definitions are 0600 in a 0700 directory and survive a supervisor restart; a non-root user cannot add apps; `app delete` stops the app and removes its URLs, and removes a proxy queue; `app show` as text. Needs root.
import os
import signal
import sys
import threading

from apps_help import pid_alive, show, user_add, user_del
from harness import Proc, Story, check, check_eq, find_queue, say, wait_until


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return None


with Story() as s:
    user, uid, gid = user_add(s, "ps108u")
    sup = None
    try:
        say("  throwaway user %s: uid %d" % (user, uid))
        d = s.daemon()
        port = s.free_port()
        apps_dir, apps_sock = s.path("apps"), s.path("apps.sock")
        sup_argv = [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", apps_dir, "--apps-socket", apps_sock,
                    "--log-dir", s.path("logs")]
        ctl = [s.bin("portsharectl"), "--socket", d.sock, "--apps-socket", apps_sock]

        sup = Proc(s, sup_argv, "portshare-apps")
        sup.wait_for(r"ready apps-socket=", timeout=10)
        check_eq(os.stat(apps_dir).st_mode & 0o777, 0o700, "the apps directory is 0700")
        check_eq(os.stat(apps_sock).st_mode & 0o777, 0o600, "the apps socket is 0600")

        # a proxy queue in front of an app someone else runs
        www = s.path("www")
        os.makedirs(www)
        with open(os.path.join(www, "b.txt"), "w") as f:
            f.write("backend b\n")
        bport = s.free_port()
        Proc(s, [sys.executable, "-m", "http.server", str(bport), "--bind", "127.0.0.1", "--directory", www],
             "http-server")
        wait_until(lambda: s.run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:%d/" % bport]).returncode == 0,
                   10)
        r = s.run(ctl + ["app", "add", "be", "--url", "http://+:%d/be/" % port, "--strip-prefix",
                         "--backend", "http://127.0.0.1:%d" % bport])
        check_eq(r.returncode, 0, "app add be --backend: %s" % r.stderr.strip())
        r = s.get(s.url(port, "/be/b.txt"))
        check(r.status == 200 and r.body == b"backend b\n", "GET /be/b.txt through the proxy queue", repr(r))

        # an app started on demand, as the throwaway user (Debian's python3: it cannot enter root's home)
        r = s.run(ctl + ["app", "add", "web", "--url", "http://+:%d/web/" % port, "--strip-prefix", "--user", user,
                         "--idle-timeout", "2", "--", "/usr/bin/python3", "-m", "http.server", "{port}",
                         "--bind", "127.0.0.1", "--directory", "/usr/share"])
        check_eq(r.returncode, 0, "app add web -- python3 -m http.server {port}: %s" % r.stderr.strip())
        path = os.path.join(apps_dir, "web")
        check_eq(os.stat(path).st_mode & 0o777, 0o600, "the definition is 0600")
        with open(path, "rb") as f:
            words = f.read().split(b"\0")
        check(b"{port}" in words and b"--user" in words, "the definition keeps the argv as words", repr(words))
        apps = show(s, ctl)
        check(apps["web"]["state"] == "idle" and apps["web"]["pid"] == 0, "before a request the app is not running",
              repr(apps["web"]))
        check_eq(apps["be"]["state"], "proxy", "a --backend app is a proxy queue")

        r = s.get(s.url(port, "/web/"))
        check(r.status == 200 and b"Directory listing" in r.body, "the first request started the app and got its answer",
              repr(r)[:300])
        apps = show(s, ctl)
        pid1 = apps["web"]["pid"]
        check(apps["web"]["state"] == "running" and pid1 > 0, "app show: running with a pid", repr(apps["web"]))
        ids = uid_of(pid1)
        check(ids is not None and all(x == uid for x in ids), "the app runs as %s (uid %d): Uid %r" % (user, uid, ids))

        # idle stop, then the next request starts it again
        check(wait_until(lambda: show(s, ctl)["web"]["state"] == "idle", 10), "the idle timeout stopped the app (idle)")
        check(wait_until(lambda: not pid_alive(pid1), 5), "the app's process is gone (pid %d)" % pid1)
        results = []
        clients = [threading.Thread(target=lambda: results.append(s.get(s.url(port, "/web/")).status))
                   for _ in range(6)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(30)
        check_eq(results, [200] * 6, "six requests at once started it again and all got its answer")
        check_eq(sup.stderr().count("web: started"), 2, "one start for the six (two in all)")
        pid2 = show(s, ctl)["web"]["pid"]
        check(pid2 > 0 and pid2 != pid1, "a new process (pid %d)" % pid2)

        # killed: started again (after a backoff of 2 s)
        os.kill(pid2, signal.SIGKILL)
        check(wait_until(lambda: show(s, ctl)["web"]["pid"] not in (0, pid2), 10)
              and wait_until(lambda: show(s, ctl)["web"]["state"] == "running", 10),
              "the killed app was started again")
        check("died" in sup.stderr(), "the supervisor's log says the app died")

        # a non-root user cannot add apps
        r = s.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups"] + ctl +
                  ["app", "add", "evil", "--url", "http://+:%d/evil/" % port, "--", "/bin/true"])
        check(r.returncode == 1 and "only root" in r.stderr, "a non-root user cannot add apps: %s" % r.stderr.strip())
        check(not os.path.exists(os.path.join(apps_dir, "evil")), "no definition was written")

        # definitions survive a supervisor restart; its apps stop with it
        pid3 = show(s, ctl)["web"]["pid"]
        check_eq(sup.stop(10), 0, "portshare-apps exits 0 on SIGTERM")
        check(wait_until(lambda: not pid_alive(pid3), 5), "its app stopped with it")
        sup = Proc(s, sup_argv, "portshare-apps-2")
        sup.wait_for(r"ready apps-socket=", timeout=10)
        apps = show(s, ctl)
        check(set(apps) == {"be", "web"}, "both definitions were loaded again", repr(sorted(apps)))
        r = s.get(s.url(port, "/web/"))
        check_eq(r.status, 200, "the reloaded app is started by a request")
        r = s.get(s.url(port, "/be/b.txt"))
        check_eq(r.status, 200, "the reloaded proxy queue serves")

        # delete: the process stops, the URLs and the definition go
        pid4 = show(s, ctl)["web"]["pid"]
        r = s.run(ctl + ["app", "delete", "web"])
        check_eq(r.returncode, 0, "app delete web: %s" % r.stderr.strip())
        check(wait_until(lambda: not pid_alive(pid4), 8), "the deleted app's process stopped")
        check(not os.path.exists(path), "the definition is gone")
        check(wait_until(lambda: find_queue(d.status(), "app-web") is None, 5), "the daemon has no queue app-web")
        r = s.get(s.url(port, "/web/"))
        check_eq(r.status, 404, "its URL is gone")
        check_eq(set(show(s, ctl)), {"be"}, "app show lists the rest")
        r = s.get(s.url(port, "/be/b.txt"))
        check_eq(r.status, 200, "the other app still serves")
        r = s.run(ctl + ["app", "show"])
        check(r.returncode == 0 and r.stdout.startswith("be  queue app-be  backend 127.0.0.1:%d  proxy" % bport)
              and "url http://+:%d/be/" % port in r.stdout, "app show (text)", r.stdout)
        r = s.run(ctl + ["app", "delete", "be"])
        check_eq(r.returncode, 0, "app delete be (a proxy queue): %s" % r.stderr.strip())
        check(wait_until(lambda: find_queue(d.status(), "app-be") is None, 5), "the daemon has no queue app-be")
        r = s.run(ctl + ["app", "delete", "be"])
        check(r.returncode == 1 and "no app be" in r.stderr, "deleting it again: %s" % r.stderr.strip())
        check_eq(os.listdir(apps_dir), [], "the apps directory is empty")
        check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    finally:
        if sup is not None:
            sup.stop(10)
        user_del(user)
