# 122-apps-logs: each started app's stdout and stderr go to its own log file, DIR/NAME.log (portshare-apps --log-dir DIR, made 0755 root with its parents): owned by the app's user (a throwaway user the story creates), 0640, readable by that user, appended across starts (an idle stop and a restart); the app's own request log (python http.server writes it to stderr) is in it. The unit (contrib/portshare-apps.service) has systemd make the default directory. Needs root.
import json
import os
import re
import secrets
import subprocess

from harness import HERE, Proc, Story, check, check_eq, fail, say, wait_until


def show(s, ctl):
    r = s.run(ctl + ["app", "show", "--json"])
    if r.returncode != 0:
        fail("app show --json exited %d: %s" % (r.returncode, r.stderr.strip()))
    return {a["name"]: a for a in json.loads(r.stdout)["apps"]}


with Story() as s:
    if os.geteuid() != 0:
        fail("this story needs root: portshare-apps runs apps as a throwaway user (useradd)")
    user = "ps122u" + secrets.token_hex(4)
    r = s.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user], timeout=30)
    check_eq(r.returncode, 0, "useradd --system %s" % user)
    sup = None
    try:
        uid = int(s.run(["id", "-u", user]).stdout)
        gid = int(s.run(["id", "-g", user]).stdout)
        d = s.daemon()
        port = s.free_port()
        apps_dir, apps_sock, log_dir = s.path("apps"), s.path("apps.sock"), s.path("log/portshare/apps")
        sup = Proc(s, [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", apps_dir, "--apps-socket",
                       apps_sock, "--log-dir", log_dir], "portshare-apps")
        sup.wait_for(r"ready apps-socket=", timeout=10)
        ctl = [s.bin("portsharectl"), "--socket", d.sock, "--apps-socket", apps_sock]
        st = os.stat(log_dir)
        check(st.st_uid == 0 and st.st_mode & 0o777 == 0o755, "the log directory (and its parents) made 0755 root: %o"
              % (st.st_mode & 0o777))

        script = ('echo "to stdout $PORT"; echo "to stderr $USER" >&2; '
                  'exec /usr/bin/python3 -m http.server "$PORT" --bind 127.0.0.1 --directory /usr/share')
        r = s.run(ctl + ["app", "add", "talk", "--url", "http://+:%d/talk/" % port, "--strip-prefix", "--user", user,
                         "--idle-timeout", "1", "--", "/bin/sh", "-c", script])
        check_eq(r.returncode, 0, "app add talk --user %s: %s" % (user, r.stderr.strip()))
        log = os.path.join(log_dir, "talk.log")
        check_eq(show(s, ctl)["talk"]["log"], log, "app show names the log file")
        r = s.get(s.url(port, "/talk/?first"))
        check_eq(r.status, 200, "the first request starts the app")
        pid = show(s, ctl)["talk"]["pid"]
        check(wait_until(lambda: os.path.exists(log) and "GET /?first" in open(log).read(), 5),
              "the app's request log (its stderr) is in the file")
        st = os.stat(log)
        check(st.st_uid == uid and st.st_gid == gid and st.st_mode & 0o777 == 0o640,
              "talk.log is owned by %s (uid %d), 0640: uid %d gid %d mode %o"
              % (user, uid, st.st_uid, st.st_gid, st.st_mode & 0o777))
        text = open(log).read()
        check("to stdout " in text and "to stderr %s" % user in text, "stdout and stderr both went to it", text)
        r = s.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "cat", log])
        check(r.returncode == 0 and "to stderr %s" % user in r.stdout, "the app's user can read it: %s"
              % r.stderr.strip())
        check("to stdout" not in sup.stderr() and "to stdout" not in sup.stdout(), "nothing of it in the supervisor's log")

        # appended: the idle timeout stops it, the next request starts it again; then a restart
        check(wait_until(lambda: show(s, ctl)["talk"]["state"] == "idle", 10), "idle stop")
        check_eq(s.get(s.url(port, "/talk/?second")).status, 200, "started again")
        check(wait_until(lambda: show(s, ctl)["talk"]["state"] == "running", 5), "running")
        r = s.run(ctl + ["app", "restart", "talk"])
        check_eq(r.returncode, 0, "app restart talk: %s" % r.stderr.strip())
        new_pid = int(re.search(r"new pid (\d+)", r.stdout).group(1))
        check(wait_until(lambda: show(s, ctl)["talk"]["pid"] == new_pid, 10), "restarted")
        check_eq(s.get(s.url(port, "/talk/?third")).status, 200, "the restarted app serves")
        check(wait_until(lambda: "GET /?third" in open(log).read(), 5), "its output goes to the same file")
        text = open(log).read()
        check(text.count("to stdout ") == 3 and text.index("GET /?first") < text.index("GET /?second")
              < text.index("GET /?third"), "appended across three starts, in order", text)
        check_eq(os.stat(log).st_mode & 0o777, 0o640, "still 0640")

        with open(os.path.join(HERE, "..", "..", "contrib", "portshare-apps.service")) as f:
            unit = f.read()
        check("LogsDirectory=portshare/apps" in unit, "the unit has systemd make /var/log/portshare/apps")
        check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    finally:
        if sup is not None:
            sup.stop(10)
        r = subprocess.run(["userdel", user], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            say("  userdel %s exited %d: %s" % (user, r.returncode, r.stderr.strip()))
        else:
            say("  ok   userdel %s" % user)
