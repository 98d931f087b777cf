# 130-apps-libportshare: `portsharectl app add hi --url … --user U -- portshare-hello --text hi` (no {port}, {socket} or --port-env) is a libportshare app: app show says backend libportshare and no process runs before the first request; the daemon's grant lets U join queue app-hi; the first request starts portshare-hello as U (uid in /proc) with PORTSHARE_QUEUE and PORTSHARE_SOCKET in its environment, and gets its answer, not a 503; status and who show it with backend libportshare and its pid; requests it serves by delegation keep it from idling out; it stops after --idle-timeout and the next request starts it again; a command reading $PORT in a shell line, or given --port-env, stays an HTTP app; --strip-prefix is refused for a libportshare app; app delete removes the grant, the queue and the process. Needs root.
import http.client
import time

from apps_help import hello_pid, pid_alive, show, supervised_user
from harness import Story, check, check_eq, wait_until


def proc_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split()[1]
    return None


def environ(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(e.split("=", 1) for e in f.read().decode(errors="replace").split("\0") if "=" in e)


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    with supervised_user(s, d, "ps130u") as (user, uid, sup, ctl):
        url = "http://+:%d/hi/" % port
        r = s.run(ctl + ["app", "add", "hi", "--url", url, "--user", user, "--idle-timeout", "3", "--",
                         s.bin("portshare-hello"), "--text", "hi"])
        check_eq(r.returncode, 0, "app add hi --user %s -- portshare-hello --text hi: %s" % (user, r.stderr.strip()))
        a = show(s, ctl)["hi"]
        check(a["backend"] == "libportshare" and a["state"] == "idle" and a["pids"] == [],
              "app show: backend libportshare, idle, no process before the first request", repr(a))
        r = d.ctl("grant", "show", "--json")
        check('"app-hi"' in r.stdout and user in r.stdout, "the daemon's grant lets %s join queue app-hi" % user,
              r.stdout.strip())

        # the first request starts the app, as the user, and gets its answer
        t0 = time.monotonic()
        r = s.get(s.url(port, "/hi/first"))
        took = time.monotonic() - t0
        pid = hello_pid(r)
        check(pid is not None, "the first request is answered by portshare-hello (%.2f s): %d %r"
              % (took, r.status, r.body[:80]))
        check_eq(proc_field(pid, "Uid"), str(uid), "portshare-hello (pid %d) runs as %s" % (pid, user))
        env = environ(pid)
        check(env.get("PORTSHARE_QUEUE") == "app-hi" and env.get("PORTSHARE_SOCKET") == d.sock
              and "PORT" not in env, "its environment: PORTSHARE_QUEUE=app-hi, PORTSHARE_SOCKET, no PORT",
              repr({k: v for k, v in env.items() if "PORT" in k}))
        check(wait_until(lambda: show(s, ctl)["hi"]["state"] == "running", 5), "app show: running")
        check_eq(show(s, ctl)["hi"]["pid"], pid, "app show: its pid")
        line = "  app hi (queue app-hi): running, backend libportshare, pid %d %s" % (pid, url)
        r = s.run(ctl + ["status"])
        check(line in r.stdout.splitlines(), "portsharectl status: %s" % line.strip(), r.stdout[-600:])
        r = s.run(ctl + ["who", str(port)])
        check("  app hi (queue app-hi): running, backend libportshare, pid %d" % pid in r.stdout.splitlines(),
              "portsharectl who PORT: the app, backend libportshare, its pid", r.stdout)
        q = [x for x in d.status()["queues"] if x["name"] == "app-hi"][0]
        check(any(w["pid"] == pid for w in q["workers"]), "the daemon's status: pid %d is a worker of app-hi" % pid)

        # served by delegation on one keep-alive connection for longer than the idle
        # timeout: the daemon's served count keeps the app in use
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        end, n, same = time.monotonic() + 5, 0, True
        while time.monotonic() < end and n < 500:
            conn.request("GET", "/hi/keep")
            resp = conn.getresponse()
            same &= resp.status == 200 and resp.read().startswith(b"hi pid=%d " % pid)
            n += 1
            time.sleep(0.05)
        conn.close()
        check(same and pid_alive(pid), "%d requests over 5 s on one connection: all served by pid %d, which is "
              "not idled out (idle timeout 3 s)" % (n, pid))

        # idle stop, and the next request starts it again
        check(wait_until(lambda: not pid_alive(pid), 10), "idle for 3 s: pid %d stopped" % pid)
        check(wait_until(lambda: show(s, ctl)["hi"]["state"] == "idle", 5), "app show: idle again")
        r = s.get(s.url(port, "/hi/again"))
        pid2 = hello_pid(r)
        check(pid2 is not None and pid2 != pid, "the next request starts a new portshare-hello: %r" % r.body[:80])

        # what is an HTTP app, and what is refused
        r = s.run(ctl + ["app", "add", "shell", "--url", "http://+:%d/sh/" % port, "--user", user, "--strip-prefix", "--",
                         "/bin/sh", "-c", 'exec python3 -m http.server "$PORT" --bind 127.0.0.1'])
        check_eq(r.returncode, 0, "app add shell -- sh -c '... $PORT': %s" % r.stderr.strip())
        r = s.run(ctl + ["app", "add", "env", "--url", "http://+:%d/env/" % port, "--user", user, "--port-env",
                         "--", "python3", "-c", "import os; print(os.environ['PORT'])"])
        check_eq(r.returncode, 0, "app add env --port-env: %s" % r.stderr.strip())
        apps = show(s, ctl)
        check(apps["shell"]["backend"].startswith("127.0.0.1:") and apps["env"]["backend"].startswith("127.0.0.1:"),
              "both are HTTP apps behind a proxy: %s, %s" % (apps["shell"]["backend"], apps["env"]["backend"]))
        r = s.get(s.url(port, "/sh/"))
        check_eq(r.status, 200, "the $PORT shell app answers through its proxy")
        r = s.run(ctl + ["app", "add", "bad", "--url", "http://+:%d/bad/" % port, "--user", user, "--strip-prefix",
                         "--", s.bin("portshare-hello")])
        check(r.returncode == 1 and "libportshare app" in r.stderr, "--strip-prefix for a libportshare app is "
              "refused: %s" % r.stderr.strip())

        # app delete: the process, the queue and the grant go
        r = s.run(ctl + ["app", "delete", "hi"])
        check_eq(r.returncode, 0, "app delete hi: %s" % r.stderr.strip())
        check(wait_until(lambda: not pid_alive(pid2), 10), "its process is stopped")
        check(not any(x["name"] == "app-hi" for x in d.status()["queues"]), "its queue is gone")
        r = d.ctl("grant", "show", "--json")
        check('"app-hi"' not in r.stdout, "its grant is gone", r.stdout.strip())
        r = s.get(s.url(port, "/hi/gone"))
        check_eq(r.status, 404, "its URL answers 404")
        for name in ("shell", "env"):
            s.run(ctl + ["app", "delete", name])
