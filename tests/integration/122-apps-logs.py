# 122-apps-logs: each started app's stdout and stderr go to its own log file, DIR/NAME.log (portshare-apps --log-dir DIR, made 0755 root with its parents): owned by the app's user (a throwaway user the story creates), 0640, readable by that user, appended across starts (an idle stop and a restart); the app's own request log (python http.server writes it to stderr) is in it. A log file that is a hard link is not used (nor chowned), a log directory others may write, or below a directory another user owns, is refused. The unit (contrib/portshare-apps.service) has systemd make the default directory. Needs root.
import os
import re

from apps_help import show, supervisor, user_add, user_del
from harness import HERE, Proc, Story, check, check_eq, wait_until


with Story() as s:
    user, uid, gid = user_add(s, "ps122u")
    sup = None
    try:
        d = s.daemon()
        port = s.free_port()
        log_dir = s.path("log/portshare/apps")
        sup, ctl = supervisor(s, d, log_dir=log_dir)
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

        # a log file that is a link to another file is not used (nor chowned), and a log
        # directory others may write is not used at all: the output goes to the supervisor's
        secret = s.path("secret")
        with open(secret, "w") as f:
            f.write("root's\n")
        os.link(secret, os.path.join(log_dir, "linked.log"))
        r = s.run(ctl + ["app", "add", "linked", "--url", "http://+:%d/linked/" % port, "--strip-prefix", "--user", user, "--",
                         "/bin/sh", "-c", script])
        check_eq(r.returncode, 0, "app add linked (its log file is a hard link to a root file)")
        check_eq(s.get(s.url(port, "/linked/")).status, 200, "it starts and serves")
        st = os.stat(secret)
        check(st.st_uid == 0 and open(secret).read() == "root's\n", "the linked file is neither chowned nor written")
        check("linked: cannot use %s/linked.log for its output: not a plain file of its own" % log_dir in sup.stderr()
              and "to stderr %s" % user in sup.stderr(), "the supervisor says why, and has the app's output")
        open_dir = s.path("open-logs")
        os.makedirs(open_dir)
        os.chmod(open_dir, 0o777)
        other = Proc(s, [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", s.path("apps2"), "--apps-socket",
                         s.path("apps2.sock"), "--log-dir", open_dir], "portshare-apps-open")
        other.wait_for(r"ready apps-socket=", timeout=10)
        check("cannot use %s for the apps' output: it, or a directory above it, is not root's or others may write it"
              % open_dir in other.stderr(), "a log directory others may write is refused", other.stderr())
        check_eq(other.stop(10), 0, "that supervisor exits 0")
        users_dir = s.path("users")
        os.makedirs(users_dir)
        os.chown(users_dir, uid, gid)
        other = Proc(s, [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", s.path("apps2"), "--apps-socket",
                         s.path("apps2.sock"), "--log-dir", os.path.join(users_dir, "apps")], "portshare-apps-users")
        other.wait_for(r"ready apps-socket=", timeout=10)
        check("is not root's or others may write it" in other.stderr() and os.stat(os.path.join(users_dir, "apps")).st_uid == 0,
              "a log directory in a directory another user owns is refused (that user could swap it)", other.stderr())
        check_eq(other.stop(10), 0, "that supervisor exits 0")

        with open(os.path.join(HERE, "..", "..", "contrib", "portshare-apps.service")) as f:
            unit = f.read()
        check("LogsDirectory=portshare-apps" in unit, "the unit has systemd make /var/log/portshare-apps")
        check_eq(sup.stop(10), 0, "portshare-apps exits 0")
    finally:
        if sup is not None:
            sup.stop(10)
        user_del(user)
