# 55-url-reservations: URL reservations (portsharectl urlacl) with real throwaway users and groups: without one a non-admin registers nothing (the refusal names the command to add one); a reservation lets its user (or a member of its group, by SO_PEERGROUPS) register at and below it, a port below 1024 included, host classes respected; only admins (root, AdminGroup) change reservations, listen list, exclusions; joining another user's queue needs a grant; deleting a reservation leaves registrations (status marks them); reservations and grants survive a restart, and a library's replay is checked against them. Needs root. Also with PORTSHARE_DEFAULTS=1.
import json
import os
import secrets
import subprocess

from harness import (Proc, Story, all_held, body_pid, check, check_eq, expect, fail, find_queue, free_low_port, listening,
                     say, wait_until)

SHELL = "/usr/sbin/nologin"


# ---------------------------------------------------------------- throwaway users


class Accounts:
    """System users and groups made for this story only; remove() deletes them all."""

    def __init__(self, s, tag):
        self.s = s
        self.tag = tag
        self.users = []   # names, in creation order
        self.groups = []

    def _name(self, kind):
        return "ps%s%s%s" % (self.tag, kind, secrets.token_hex(4))

    def group(self, kind):
        name = self._name(kind)
        r = self.s.run(["groupadd", "--system", name], timeout=30)
        check_eq(r.returncode, 0, "groupadd --system %s" % name)
        self.groups.append(name)
        gid = int(self.s.run(["getent", "group", name]).stdout.split(":")[2])
        say("  throwaway group %s: gid %d" % (name, gid))
        return name, gid

    def user(self, kind, groups=()):
        name = self._name(kind)
        argv = ["useradd", "--system", "--no-create-home", "--shell", SHELL]
        if groups:
            argv += ["-G", ",".join(groups)]
        r = self.s.run(argv + [name], timeout=30)
        check_eq(r.returncode, 0, "useradd --system %s%s" % (name, " -G " + ",".join(groups) if groups else ""))
        self.users.append(name)
        uid = int(self.s.run(["id", "-u", name]).stdout.strip())
        gid = int(self.s.run(["id", "-g", name]).stdout.strip())
        say("  throwaway user %s: uid %d, gid %d%s" % (name, uid, gid,
                                                      ", member of " + ",".join(groups) if groups else ""))
        return User(name, uid, gid)

    def remove(self):
        """userdel every user, then groupdel every group; returns what failed."""
        problems = []
        for tool, names in (("userdel", self.users), ("groupdel", self.groups)):
            for name in reversed(names):
                r = subprocess.run([tool, name], capture_output=True, text=True, timeout=30)
                if r.returncode != 0:
                    problems.append("%s %s exited %d: %s" % (tool, name, r.returncode, r.stderr.strip()))
                else:
                    say("  ok   %s %s" % (tool, name))
        return problems


class User:
    def __init__(self, name, uid, gid):
        self.name, self.uid, self.gid = name, uid, gid

    def setpriv(self, groups=True):
        """argv prefix running a command as this user: its supplementary groups from the
        group database (--init-groups), or none at all (--clear-groups)."""
        return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
                "--init-groups" if groups else "--clear-groups"]


# ---------------------------------------------------------------- soft checks





with Story() as s:
    if os.geteuid() != 0:
        fail("this story needs root: it creates throwaway users and groups (useradd, groupadd) and runs "
             "workers as them with setpriv (run the suite as root)")
    acct = Accounts(s, "55")
    failed = None
    try:
        ctl_bin, hello_bin, tw_bin = s.bin("portsharectl"), s.bin("portshare-hello"), s.bin("testworker")
        G, g_gid = acct.group("g")
        G2, g2_gid = acct.group("m")
        A = acct.user("a")
        B = acct.user("b")
        C = acct.user("c", groups=[G])
        D = acct.user("d", groups=[G2])

        d = s.daemon()
        sock = d.sock
        st = os.stat(os.path.dirname(sock))
        check(st.st_mode & 0o755 == 0o755, "the control socket's directory is 0755 (other users reach the socket)",
              oct(st.st_mode))
        check_eq(os.stat(sock).st_mode & 0o777, 0o666, "the control socket is 0666: any user connects, "
                 "SO_PEERCRED decides what it may do")
        port = s.free_port()
        hosts = s.hosts

        def ctl(user, *args, groups=True, sock=sock):
            argv = [ctl_bin, "--socket", sock] + list(args)
            return s.run((user.setpriv(groups) if user else []) + argv)

        def app(user, urls, text, groups=True, sock=sock, name=None):
            """portshare-hello as user (None: root), registering urls; not yet waited for."""
            argv = [hello_bin, "--socket", sock, "--text", text]
            for u in urls:
                argv += ["--url", u]
            return Proc(s, (user.setpriv(groups) if user else []) + argv, name or "hello-" + text)

        def worker(user, text, queue, urls=(), open_=False):
            argv = [tw_bin, "--socket", sock, "--queue", queue, "--text", text]
            for u in urls:
                argv += ["--url", u]
            if open_:
                argv.append("--open")
            return Proc(s, user.setpriv() + argv, "testworker-" + text)

        def refused(p, what, *needles):
            """p exits 1 and its stderr holds every needle."""
            rc = p.wait(10)
            err = p.stderr()
            check(rc == 1 and all(n in err for n in needles), what, "exit %r, stderr %r" % (rc, err))
            if err.strip():
                say("       (it said: %s)" % err.strip().splitlines()[-1])

        def served_by(path, pid, what, host_header=None, port=port):
            for h in hosts:
                r = s.get(s.url(port, path, h), headers=["Host: " + host_header] if host_header else ())
                check(r.status == 200 and body_pid(r.body) == pid, "%s (curl %s%s)" % (
                    what, s.url(port, path, h), ", Host: " + host_header if host_header else ""), repr(r))

        def not_found(path, what, port=port):
            for h in hosts:
                r = s.get(s.url(port, path, h))
                check(r.status == 404, "%s (curl %s: %d)" % (what, s.url(port, path, h), r.status), repr(r))

        U = lambda path, host="+", p=port: "http://%s:%d%s" % (host, p, path)

        # ------------------------------------------------------------ before any reservation
        say("no reservation: a non-admin registers nothing")
        root_app = app(None, [U("/hello/")], "ROOT").ready()
        r = ctl(B, "urlacl", "show")
        check(r.returncode == 0 and "no URL reservations" in r.stdout,
              "urlacl show as %s (not an admin): exit 0, no URL reservations" % B.name, repr(r.stdout + r.stderr))
        refused(app(B, [U("/hello/secret/")], "B"),
                "%s's portshare-hello --url %s: exit 1, no reservation covers it, and the command to add one"
                % (B.name, U("/hello/secret/")),
                "no URL reservation covers it", "user %s (uid %d) is not an admin" % (B.name, B.uid),
                "portsharectl urlacl add %s --user %s" % (U("/hello/secret/"), B.name))
        served_by("/hello/secret/x", root_app.pid, "/hello/secret/x is still root's app's")
        other = s.free_port()
        refused(app(B, [U("/", p=other)], "B"), "%s on a port nothing uses (%d): refused too" % (B.name, other),
                "no URL reservation covers it")
        check_eq(listening(other), [], "the refused registration left port %d unbound" % other)

        # ------------------------------------------------------------ a user reservation
        say("urlacl add %s --user %s" % (U("/a/"), A.name))
        r = ctl(None, "urlacl", "add", U("/a/"), "--user", A.name)
        check(r.returncode == 0 and "reserved %s" % U("/a/") in r.stdout, "urlacl add as root: exit 0, 'reserved'",
              repr(r.stdout + r.stderr))
        a_app = app(A, [U("/a/"), U("/a/deeper/")], "A").ready()
        served_by("/a/x", a_app.pid, "%s registered %s: /a/x is its" % (A.name, U("/a/")))
        served_by("/a/deeper/y", a_app.pid, "and %s below it: /a/deeper/y is its" % U("/a/deeper/"))
        q = find_queue(d.status(), a_app.queue) or {}
        ws = q.get("workers", [])
        check(len(ws) == 1 and ws[0].get("uid") == A.uid and ws[0].get("user") == A.name,
              "status: queue %s's worker is uid %d (%s)" % (a_app.queue, A.uid, A.name), repr(ws))
        refused(app(B, [U("/a/b/")], "B"),
                "%s under /a/: exit 1, the message names the reservation and whom it allows" % B.name,
                "%s: the URL reservation %s allows only user %s, not user %s (uid %d)"
                % (U("/a/b/"), U("/a/"), A.name, B.name, B.uid))
        q = find_queue(d.status(), a_app.queue) or {}
        cover = dict(zip(q.get("urls", []), q.get("url_allowed_by", [])))
        expect(cover == {U("/a/"): "reservation " + U("/a/"), U("/a/deeper/"): "reservation " + U("/a/")},
               "status --json: both URLs are allowed by reservation %s" % U("/a/"), repr(cover))
        refused(app(A, [U("/ab/")], "A"), "%s at /ab/ (not below /a/: whole segments only): refused" % A.name,
                "no URL reservation covers it")
        a_named = app(A, [U("/a/named/", "x.test"), U("/a/weak/", "*")], "A-NAMED").ready()
        check(True, "a + reservation covers every host on its port: %s registered %s and %s"
              % (A.name, U("/a/named/", "x.test"), U("/a/weak/", "*")))
        served_by("/a/named/z", a_app.pid, "Host x.test /a/named/z still goes to the + registration %s "
                  "(the + class is tried before host names)" % U("/a/"), "x.test")
        r = ctl(B, "urlacl", "show", "--json")
        js = json.loads(r.stdout) if r.returncode == 0 else {}
        rs = js.get("reservations", [])
        check(r.returncode == 0 and len(rs) == 1 and rs[0].get("prefix") == U("/a/")
              and rs[0].get("users") == [{"uid": A.uid, "name": A.name}] and rs[0].get("groups") == [],
              "urlacl show --json as %s: the reservation with uid and name" % B.name, repr(r.stdout + r.stderr))

        # ------------------------------------------------------------ a group reservation
        say("urlacl add %s --group %s (%s is a supplementary member)" % (U("/g/"), G, C.name))
        r = ctl(None, "urlacl", "add", U("/g/"), "--group", G)
        check_eq(r.returncode, 0, "urlacl add --group %s: exit status" % G)
        refused(app(C, [U("/g/")], "C", groups=False),
                "%s without its supplementary groups (setpriv --clear-groups): refused, the group is named"
                % C.name, "allows only group %s, not user %s" % (G, C.name))
        c_app = app(C, [U("/g/")], "C").ready()
        check(True, "%s with its supplementary groups (setpriv --init-groups) registered %s: SO_PEERGROUPS"
              % (C.name, U("/g/")))
        served_by("/g/x", c_app.pid, "/g/x is %s's" % C.name)
        refused(app(B, [U("/g/")], "B"), "%s (not in %s) under /g/: refused" % (B.name, G),
                "allows only group %s, not user %s" % (G, B.name))

        # ------------------------------------------------------------ a port below 1024
        low = free_low_port()
        say("a reservation opens port %d (below 1024) to %s" % (low, A.name))
        refused(app(A, [U("/low/", p=low)], "A"), "%s on port %d without a reservation: refused" % (A.name, low),
                "no URL reservation covers it")
        unpriv = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read())
        if unpriv > low:
            code = ("import socket\ns = socket.socket()\ntry:\n    s.bind(('127.0.0.1', %d))\n"
                    "except PermissionError:\n    raise SystemExit(3)\n" % low)
            r = s.run(A.setpriv() + ["python3", "-c", code])
            check_eq(r.returncode, 3, "control: a plain process of %s may not bind 127.0.0.1:%d itself" % (A.name, low))
        r = ctl(None, "urlacl", "add", U("/low/", p=low), "--user", A.name)
        check_eq(r.returncode, 0, "urlacl add %s --user %s: exit status" % (U("/low/", p=low), A.name))
        a_low = app(A, [U("/low/", p=low)], "A-LOW").ready()
        check_eq(sorted(listening(low)), sorted(s.bound), "the daemon bound %s port %d for %s"
                 % (" and ".join(s.bound), low, A.name))
        served_by("/low/x", a_low.pid, "/low/x on port %d is %s's" % (low, A.name), port=low)

        # ------------------------------------------------------------ host classes
        say("host classes: a reservation for http://a.test:%d/h/" % port)
        r = ctl(None, "urlacl", "add", U("/h/", "a.test"), "--user", A.name)
        check_eq(r.returncode, 0, "urlacl add %s --user %s: exit status" % (U("/h/", "a.test"), A.name))
        refused(app(A, [U("/h/")], "A"),
                "%s at %s: refused (a + registration outranks explicit hosts: not covered)" % (A.name, U("/h/")),
                "%s: no URL reservation covers it" % U("/h/"))
        refused(app(A, [U("/h/", "b.test")], "A"), "%s at %s: refused" % (A.name, U("/h/", "b.test")),
                "%s: no URL reservation covers it" % U("/h/", "b.test"))
        refused(app(B, [U("/h/", "a.test")], "B"), "%s at %s: refused, the reservation named" % (B.name, U("/h/", "a.test")),
                "the URL reservation %s allows only user %s" % (U("/h/", "a.test"), A.name))
        a_host = app(A, [U("/h/", "a.test"), U("/h/in/", "A.TEST")], "A-HOST").ready()
        check(True, "%s registered %s and %s (host names compare case-insensitively)"
              % (A.name, U("/h/", "a.test"), U("/h/in/", "A.TEST")))
        served_by("/h/x", a_host.pid, "Host a.test:%d /h/x goes to %s's app" % (port, A.name), "a.test:%d" % port)
        for h in hosts:
            r = s.get(s.url(port, "/h/x", h), headers=["Host: b.test"])
            check_eq(r.status, 404, "Host b.test /h/x: 404 (curl %s)" % h)

        # ------------------------------------------------------------ only admins change settings
        say("a non-admin (%s) changes nothing" % B.name)
        before = ctl(None, "urlacl", "show", "--json").stdout
        for args in (("urlacl", "add", U("/b2/"), "--user", B.name), ("urlacl", "delete", U("/a/")),
                     ("iplisten", "add", "127.0.0.2"), ("iplisten", "delete", "127.0.0.1"),
                     ("exclude", "add", "127.0.0.1:%d" % port), ("exclude", "delete", "127.0.0.1:%d" % port)):
            r = ctl(B, *args)
            check(r.returncode == 1 and "%s %s is for admins" % args[:2] in r.stderr
                  and "you are user %s (uid %d)" % (B.name, B.uid) in r.stderr,
                  "portsharectl %s as %s: exit 1, 'is for admins', names the caller" % (" ".join(args), B.name),
                  "exit %d, %r" % (r.returncode, r.stderr))
        check_eq(ctl(None, "urlacl", "show", "--json").stdout, before, "the reservations are unchanged")
        r = ctl(None, "iplisten", "show", "--json")
        check(r.returncode == 0 and json.loads(r.stdout).get("source") != "state",
              "the listen list is unchanged (not managed)", r.stdout)
        for args in (("urlacl", "show"), ("iplisten", "show"), ("exclude", "show"), ("grant", "show"),
                     ("urlacl", "show", "--json")):
            r = ctl(B, *args)
            check(r.returncode == 0 and r.stdout.strip(), "portsharectl %s as %s: exit 0" % (" ".join(args), B.name),
                  "exit %d, %r" % (r.returncode, r.stderr))
        r = ctl(D, "urlacl", "add", U("/d/"), "--user", D.name)
        check(r.returncode == 1 and "is for admins" in r.stderr,
              "%s (member of %s) at a daemon without AdminGroup: refused" % (D.name, G2), r.stderr)

        # ------------------------------------------------------------ AdminGroup
        say("a daemon with AdminGroup %s" % G2)
        d2 = s.daemon(sock=s.path("admin.sock"), state_dir=s.path("state-admin"), extra=["AdminGroup " + G2],
                      name="portshared-admingroup")
        r = ctl(D, "urlacl", "add", U("/d/"), "--user", D.name, sock=d2.sock)
        check(r.returncode == 0 and "reserved %s" % U("/d/") in r.stdout,
              "%s (member of AdminGroup %s) adds a reservation: exit 0" % (D.name, G2), repr(r.stdout + r.stderr))
        r = ctl(D, "exclude", "add", "127.0.0.1:%d" % other, sock=d2.sock)
        check_eq(r.returncode, 0, "and an exclusion: exit status")
        r = ctl(D, "urlacl", "delete", U("/d/"), groups=False, sock=d2.sock)
        check(r.returncode == 1 and "is for admins (root, portshared's own user, or members of its AdminGroup %s)"
              % G2 in r.stderr, "%s without its supplementary groups: refused, the message names AdminGroup %s"
              % (D.name, G2), r.stderr)
        r = ctl(B, "urlacl", "delete", U("/d/"), sock=d2.sock)
        check_eq(r.returncode, 1, "%s (not in %s): refused there" % (B.name, G2))
        js = json.loads(ctl(None, "urlacl", "show", "--json", sock=d2.sock).stdout)
        check_eq([x.get("prefix") for x in js.get("reservations", [])], [U("/d/")],
                 "that daemon holds %s's reservation" % D.name)
        check_eq(d2.stop(8.0), 0, "the AdminGroup daemon stops: exit status")

        # ------------------------------------------------------------ grants
        qa = "qa%s" % secrets.token_hex(3)
        say("queue %s of %s, joined by %s" % (qa, A.name, B.name))
        a_q = worker(A, "QA", qa, urls=[U("/a/q/")]).ready()
        refused(worker(B, "QB", qa, open_=True),
                "%s opening %s's queue %s: exit 1, says whose it is and how to grant it" % (B.name, A.name, qa),
                "queue %s belongs to user %s" % (qa, A.name), "portsharectl grant add %s --user %s" % (qa, B.name))
        r = ctl(B, "grant", "add", qa, "--user", B.name)
        check(r.returncode == 1 and "is for admins" in r.stderr, "%s cannot grant itself: exit 1" % B.name,
              repr(r.stderr))
        r = ctl(None, "grant", "add", qa, "--user", B.name)
        check(r.returncode == 0 and qa in r.stdout and B.name in r.stdout, "grant add %s --user %s as root: exit 0"
              % (qa, B.name), repr(r.stdout + r.stderr))
        b_q = worker(B, "QB", qa, open_=True).ready()
        check(True, "%s joined queue %s after the grant" % (B.name, qa))
        seen = set()
        for i in range(40):
            r = s.get(s.url(port, "/a/q/%d" % i, hosts[i % len(hosts)]))
            check(r.status == 200, "request /a/q/%d answered" % i, repr(r))
            seen.add(body_pid(r.body))
            if b_q.pid in seen:
                break
        check(b_q.pid in seen, "%s's worker (pid %d) serves requests of queue %s (within %d requests)"
              % (B.name, b_q.pid, qa, i + 1), repr(seen))
        js = json.loads(ctl(B, "grant", "show", "--json").stdout)
        g = [x for x in js.get("grants", []) if x.get("queue") == qa]
        check(len(g) == 1 and g[0].get("owner") == {"uid": A.uid, "name": A.name} and g[0].get("by") == "admin"
              and g[0].get("users") == [{"uid": B.uid, "name": B.name}],
              "grant show --json: queue %s, owner %s, by admin, user %s" % (qa, A.name, B.name), repr(js))
        refused(worker(C, "QC", qa, open_=True), "%s (not granted) still cannot join %s" % (C.name, qa),
                "queue %s belongs to user %s" % (qa, A.name))

        # ------------------------------------------------------------ deleting a reservation
        say("urlacl delete %s: registrations made under it stay" % U("/a/"))
        r = ctl(None, "urlacl", "delete", U("/a/"))
        check(r.returncode == 0 and "deleted the reservation for %s" % U("/a/") in r.stdout
              and "registrations already made under it stay" in r.stdout,
              "urlacl delete: exit 0, says registrations stay", repr(r.stdout + r.stderr))
        served_by("/a/x", a_app.pid, "%s's app still serves /a/x" % A.name)
        refused(app(A, [U("/a/new/")], "A"), "a new registration of %s under /a/ is refused now" % A.name,
                "no URL reservation covers it")
        q = find_queue(d.status(), a_app.queue) or {}
        cover = dict(zip(q.get("urls", []), q.get("url_allowed_by", [])))
        expect(set(cover) == {U("/a/"), U("/a/deeper/")} and all(
               "reservation" in v and not v.startswith("reservation ") and A.name in v for v in cover.values()),
               "status --json marks %s and %s: no reservation allows %s any more" % (U("/a/"), U("/a/deeper/"), A.name),
               repr(cover))
        text = d.status_text()
        line = [l for l in text.splitlines() if "url" in l and U("/a/") + " " in l]
        expect(line and "reservation" in line[0] and A.name in line[0],
               "status (text) marks it too: %r" % (line[0].strip() if line else None), text)

        # ------------------------------------------------------------ a replay refused after a restart
        say("%s registers under a reservation that is then deleted" % B.name)
        r = ctl(None, "urlacl", "add", U("/b/"), "--user", B.name)
        check_eq(r.returncode, 0, "urlacl add %s --user %s: exit status" % (U("/b/"), B.name))
        b_app = app(B, [U("/b/")], "B").ready()
        served_by("/b/x", b_app.pid, "%s's app serves /b/x" % B.name)
        r = ctl(None, "urlacl", "delete", U("/b/"))
        check_eq(r.returncode, 0, "urlacl delete %s: exit status" % U("/b/"))
        served_by("/b/x", b_app.pid, "after the delete %s's app still serves /b/x" % B.name)

        # ------------------------------------------------------------ restart
        acl_before = ctl(None, "urlacl", "show", "--json").stdout
        grants_before = ctl(None, "grant", "show", "--json").stdout
        say("restart on the same --state-dir")
        check_eq(d.stop(8.0), 0, "the daemon stops (SIGTERM): exit status")
        mark_b = len(b_app.stderr())
        d3 = s.daemon(sock=sock, state_dir=d.state_dir, name="portshared-2")
        check_eq(ctl(None, "urlacl", "show", "--json").stdout, acl_before,
                 "urlacl show --json after the restart equals what it was")
        check_eq(ctl(None, "grant", "show", "--json").stdout, grants_before,
                 "grant show --json after the restart equals what it was")
        say("       (%s)" % acl_before.strip())

        apps = (root_app, a_app, a_named, c_app, a_low, a_host, a_q, b_q, b_app)

        def attached():
            st = d3.status()
            pids = {w.get("pid") for q in st.get("queues", []) for w in q.get("workers", [])}
            return all(p.pid in pids for p in apps)

        check(wait_until(attached, 10, 0.1), "every app's library reconnected to the new daemon within 10 s",
              repr(d3.status().get("queues")))
        served_by("/hello/x", root_app.pid, "root's app serves again")
        served_by("/g/x", c_app.pid, "%s's /g/ replay was allowed by the group reservation kept" % C.name)
        served_by("/low/x", a_low.pid, "%s's port-%d replay was allowed by the reservation kept" % (A.name, low),
                  port=low)
        served_by("/h/x", a_host.pid, "%s's a.test replay was allowed" % A.name, "a.test")
        not_found("/b/x", "%s's replay of %s was refused (no reservation now): /b/x is 404, not %s's"
                  % (B.name, U("/b/"), B.name))
        not_found("/a/x", "%s's replay of %s was refused likewise" % (A.name, U("/a/")))
        not_found("/a/q/1", "and queue %s's %s" % (qa, U("/a/q/")))
        q = find_queue(d3.status(), qa) or {}
        check_eq(sorted(w.get("pid") for w in q.get("workers", [])), sorted([a_q.pid, b_q.pid]),
                 "queue %s is back with %s's and %s's workers (the grant kept)" % (qa, A.name, B.name))
        q = find_queue(d3.status(), b_app.queue) or {}
        expect(q.get("urls") == [] and U("/b/") in q.get("url_refused", "")
               and "no URL reservation covers it" in q.get("url_refused", ""),
               "status --json: %s's queue has no URL, and url_refused says %s was refused and why"
               % (B.name, U("/b/")), repr(q))
        text = d3.status_text()
        shown = [l.strip() for l in text.splitlines() if "refused" in l and U("/b/") in l]
        expect(shown, "status (text) shows the refusal: %r" % (shown[0] if shown else None), text)
        err_b = wait_until(lambda: U("/b/") in b_app.stderr()[mark_b:] and b_app.stderr()[mark_b:], 3)
        expect(err_b and "refused" in err_b,
               "%s's app says on stderr that %s was refused after the reconnect: %r"
               % (B.name, U("/b/"), (err_b or "").strip()), repr(b_app.stderr()[mark_b:]))
        expect(any("URL refused" in l and U("/b/") in l for l in d3.log().splitlines()),
               "the daemon's log names the refused replay")

        # bad names are refused with the daemon's reason, and the settings stay loadable
        r = d3.ctl("grant", "add", "a b", "--user", "root", "--owner", "root")
        check(r.returncode == 1 and "not a queue name" in r.stderr,
              "grant add 'a b' is refused: %r" % r.stderr.strip(), "exit %d" % r.returncode)
        r = d3.ctl("urlacl", "add", "http://+:%d/a b/" % port, "--user", "root")
        check(r.returncode == 1 and r.stderr.strip().startswith("portsharectl: "),
              "urlacl add of a bad prefix: exit 1 with the daemon's reason %r" % r.stderr.strip())
        r = d3.ctl("urlacl", "add", "http://+:%d/ok/" % port, "--user", "root")
        check_eq(r.returncode, 0, "and a good change after them still works")

        for p in apps:
            check(p.alive(), "%s (pid %d) is still running" % (p.name, p.pid))
        all_held()
    except BaseException as e:
        failed = e
        raise
    finally:
        # userdel refuses while a process of the user runs: the workers go first
        for p in s.procs:
            if p not in s.daemons:
                p.stop(3.0)
        problems = acct.remove()
        if problems and failed is None:
            fail("; ".join(problems))
        for p in problems:
            say("  " + p)
