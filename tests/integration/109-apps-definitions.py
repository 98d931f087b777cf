# 109-apps-definitions: what portshare-apps refuses (a command that would run as root without --allow-root, a name taken, a bad name, both --backend and a command, no --url, an unknown user) without writing a definition; --always-running starts the app before any request and an idle timeout never stops it; a command with {socket} (gunicorn) gets a unix socket in a private 0700 directory, removed with the app; the supervisor's apps keep serving across a daemon upgrade (--upgrade) and a daemon restart (its sessions reconnect and register the queues again); a supervisor started while the daemon is down registers its apps once the daemon is up.
import json
import os
import signal
import sys
import time

from apps_help import add_wsgi
from harness import Proc, Story, check, check_eq, find_queue, wait_until


def show(s, ctl):
    r = s.run(ctl + ["app", "show", "--json"])
    check_eq(r.returncode, 0, "app show --json")
    return {a["name"]: a for a in json.loads(r.stdout)["apps"]}


with Story() as s:
    d = s.daemon(limits={"ShutdownGrace": 1})
    port = s.free_port()
    apps_dir, apps_sock = s.path("apps"), s.path("apps.sock")
    sup = Proc(s, [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", apps_dir, "--apps-socket", apps_sock,
                "--log-dir", s.path("logs")],
               "portshare-apps")
    sup.wait_for(r"ready apps-socket=", timeout=10)
    ctl = [s.bin("portsharectl"), "--socket", d.sock, "--apps-socket", apps_sock]
    url = "http://+:%d/on/" % port
    server = [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", s.dir]

    refusals = [
        (["on", "--url", url, "--"] + server, "would run as root"),
        (["../x", "--url", url, "--"] + server, "an app name is"),
        (["both", "--url", url, "--backend", "http://127.0.0.1:1", "--allow-root", "--"] + server, "either --backend"),
        (["nourl", "--allow-root", "--"] + server, "--url"),
        (["nouser", "--url", url, "--user", "ps109-no-such-user", "--"] + server, "no such user"),
        (["bad", "--url", url, "--workers", "0", "--allow-root", "--"] + server, "--workers"),
    ]
    for words, why in refusals:
        r = s.run(ctl + ["app", "add"] + words)
        check(r.returncode == 1 and why in r.stderr, "app add %s is refused: %s" % (" ".join(words[:3]), r.stderr.strip()))
    check_eq(os.listdir(apps_dir), [], "no definition was written")

    r = s.run(ctl + ["app", "add", "on", "--url", url, "--strip-prefix", "--allow-root", "--always-running",
                     "--idle-timeout", "1", "--"] + server)
    check_eq(r.returncode, 0, "app add on --always-running --allow-root: %s" % r.stderr.strip())
    check(wait_until(lambda: show(s, ctl)["on"]["state"] == "running", 10),
          "an --always-running app is started before any request")
    pid = show(s, ctl)["on"]["pid"]
    r = s.run(ctl + ["app", "add", "on", "--url", "http://+:%d/other/" % port, "--allow-root", "--"] + server)
    check(r.returncode == 1 and "exists" in r.stderr, "a name taken is refused: %s" % r.stderr.strip())
    time.sleep(2.5)
    a = show(s, ctl)["on"]
    check(a["state"] == "running" and a["pid"] == pid, "an idle timeout does not stop an --always-running app",
          repr(a))
    r = s.get(s.url(port, "/on/"))
    check_eq(r.status, 200, "it serves")

    # the daemon is upgraded (portshared --upgrade): the app serves on, through the new one
    d.expected_exit = True
    du = s.daemon(sock=d.sock, state_dir=d.state_dir, limits={"ShutdownGrace": 1}, args=["--upgrade"],
                  name="portshared-up")
    check_eq(d.wait(15), 0, "the old daemon exits 0 after the upgrade")
    check(wait_until(lambda: s.get(s.url(port, "/on/"), timeout=4).status == 200, 15, 0.2),
          "the app answers through the upgraded daemon")
    q = find_queue(du.status(), "app-on")
    check(q is not None and url in q.get("urls", []), "the upgraded daemon has queue app-on with its URL", repr(q))
    check_eq(show(s, ctl)["on"]["pid"], pid, "the app itself was not restarted by the upgrade")
    d = du

    # the daemon restarts: the supervisor's sessions come back with the queue and its URL
    d.expected_exit = True
    d.signal(signal.SIGTERM)
    check_eq(d.wait(10), 0, "the daemon exits 0")
    d2 = s.daemon(sock=d.sock, state_dir=d.state_dir, name="portshared-2")
    check(wait_until(lambda: s.get(s.url(port, "/on/"), timeout=4).status == 200, 15, 0.2),
          "the app answers again through the new daemon")
    q = find_queue(d2.status(), "app-on")
    check(q is not None and url in q.get("urls", []), "the new daemon has queue app-on with its URL", repr(q))
    check_eq(show(s, ctl)["on"]["pid"], pid, "the app itself was not restarted")
    r = s.run(ctl + ["app", "delete", "on"])
    check_eq(r.returncode, 0, "app delete on (through the new daemon): %s" % r.stderr.strip())
    check(wait_until(lambda: find_queue(d2.status(), "app-on") is None, 5), "its queue and URL are gone")
    check(s.get(s.url(port, "/on/")).status in (0, 404), "nothing answers there (the port is not even listened on)")

    # {socket}: gunicorn on a unix socket in a private directory
    add_wsgi(s, ctl, port, "b'wsgi ' + environ['PATH_INFO'].encode()")
    r = s.get(s.url(port, "/wsgi/x"))
    check(r.status == 200 and r.body == b"wsgi /x", "the first request started gunicorn on its socket", repr(r))
    a = show(s, ctl)["wsgi"]
    check(a["backend"].startswith("unix:") or "/app.sock" in a["backend"], "its backend is the unix socket", repr(a))
    sock_dir = os.path.dirname(a["backend"].split("unix:")[-1])
    check_eq(os.stat(sock_dir).st_mode & 0o777, 0o700, "the socket's directory is 0700")
    r = s.run(ctl + ["app", "delete", "wsgi"])
    check_eq(r.returncode, 0, "app delete wsgi")
    check(not os.path.exists(sock_dir), "the socket's directory is removed with the app")

    # the supervisor starts while the daemon is down: it registers its apps once it is up
    r = s.run(ctl + ["app", "add", "late", "--url", "http://+:%d/late/" % port, "--strip-prefix", "--allow-root",
                     "--"] + server)
    check_eq(r.returncode, 0, "app add late: %s" % r.stderr.strip())
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    d2.expected_exit = True
    d2.signal(signal.SIGTERM)
    check_eq(d2.wait(10), 0, "the daemon exits 0")
    sup = Proc(s, [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", apps_dir, "--apps-socket", apps_sock,
                "--log-dir", s.path("logs")],
               "portshare-apps-2")
    sup.wait_for(r"late: its URLs could not be registered: trying again", stream="stderr", timeout=10)
    check_eq(show(s, ctl)["late"]["state"], "unregistered", "app show: the app is not registered yet")
    s.daemon(sock=d.sock, state_dir=d.state_dir, name="portshared-3")
    check(wait_until(lambda: s.get(s.url(port, "/late/"), timeout=4).status == 200, 15, 0.2),
          "once the daemon is up the app is registered, started and answers")
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
