# 57-listen-list-exclusions: portsharectl iplisten changes the addresses the daemon binds at once (moving off 127.0.0.1 frees it for another server; the config's list is copied on the first change, its lines ignored from then on; a change whose endpoint another program holds is reported); exclusions refuse a registration naming the rule and release a bound endpoint at once; status and who say why an endpoint is not bound; restart and --upgrade keep every setting; --upgrade with another --state-dir is refused and the old daemon carries on. Also with PORTSHARE_DEFAULTS=1.
import json
import os
import socket
import time

from harness import Story, all_held, body_pid, check, check_eq, expect, fail, listening, say, wait_until



def hold(addr, port):
    """A plain listening socket of the story's own on addr:port (another server)."""
    h = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    h.bind((addr, port))
    h.listen(8)
    return h


def reaches_holder(h, addr, port):
    """True if a connect to addr:port is accepted by the story's own socket h. The client
    closes first, so the TIME_WAIT is the client's: one on the server side (addr:port)
    would keep the daemon from binding addr:port again afterwards."""
    c = socket.create_connection((addr, port), timeout=3)
    try:
        h.settimeout(3)
        a, _ = h.accept()
    except OSError:
        c.close()
        return False
    c.close()
    a.settimeout(3)
    try:
        a.recv(1)  # the client's FIN
    except OSError:
        pass
    a.close()
    return True


def listed(port):
    """The addresses of the TCP listeners on port, in /proc/net/tcp's order."""
    out = []
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            cols = line.split()
            ip, _, p = cols[1].partition(":")
            if cols[3] == "0A" and int(p, 16) == port:
                out.append(socket.inet_ntoa(bytes.fromhex(ip)[::-1]))
    return out


def main_port(s):
    """A free port for which /proc/net/tcp lists a listener on 127.0.0.2 before one on
    127.0.0.1 (the kernel's listening hash decides, per address and port): there the
    daemon's own 127.0.0.2 listener comes first when it looks for whoever holds
    127.0.0.1, so the story sees whether it names the right one."""
    for _ in range(50):
        port = s.free_port()
        probes = [hold(a, port) for a in ("127.0.0.1", "127.0.0.2")]
        order = listed(port)
        for p in probes:
            p.close()
        if order == ["127.0.0.2", "127.0.0.1"]:
            return port
    say("  note: no port had 127.0.0.2 listed first in /proc/net/tcp; the owner check may not bite")
    return s.free_port()


with Story() as s:
    d = s.daemon()  # loopback mode: "listen 127.0.0.1" in its config; default mode: no listen line
    port = main_port(s)
    port2, port3, port4 = s.free_port(), s.free_port(), s.free_port()
    hosts = s.hosts

    def ctl(*args, daemon=None, ok=True):
        r = (daemon or d).ctl(*args)
        if ok and r.returncode != 0:
            fail("portsharectl %s exited %d: %s" % (" ".join(args), r.returncode, r.stderr.strip()))
        return r

    def show(what, daemon=None):
        r = ctl(what, "show", "--json", daemon=daemon)
        try:
            js = json.loads(r.stdout)
        except ValueError as e:
            fail("portsharectl %s show --json printed invalid JSON (%s): %r" % (what, e, r.stdout))
        if what == "iplisten":  # IPv6 addresses come in brackets there ("[::]"), not in status
            js["addresses"] = [a.strip("[]") for a in js.get("addresses", [])]
        return js

    def endpoint(st, addr, p):
        for e in st.get("endpoints", []):
            if e.get("address") == addr and e.get("port") == p:
                return e
        return None

    def served(p, host, pid, what, path="/x"):
        r = s.get(s.url(p, path, host))
        check(r.status == 200 and body_pid(r.body) == pid, "%s (curl %s)" % (what, s.url(p, path, host)), repr(r))

    def bound_now(p, want, what, timeout=2.0):
        got = wait_until(lambda: sorted(listening(p)) == sorted(want), timeout, 0.05)
        check(got, "%s: ss -ltn shows %s on port %d" % (what, " and ".join(want) or "nothing", p),
              "got %r" % listening(p))

    # ------------------------------------------------------------ the listen list
    root = s.hello(["http://+:%d/" % port], text="ROOT", sock=d.sock)
    bound_now(port, s.bound, "one app on port %d" % port)
    js = show("iplisten")
    if s.defaults:
        check_eq(js, {"source": "default", "addresses": ["0.0.0.0", "::"]},
                 "iplisten show --json with no listen line: the wildcards, source default")
    else:
        check_eq(js, {"source": "config", "addresses": ["127.0.0.1"]},
                 "iplisten show --json with 'listen 127.0.0.1' in the config: source config")
    check_eq(d.status().get("listen_source"), js["source"], "status --json: listen_source")

    say("iplisten add 127.0.0.2: off 127.0.0.1, so another server can have 127.0.0.1:%d" % port)
    r = ctl("iplisten", "add", "127.0.0.2")
    if s.defaults:
        check("ignored from now on" not in r.stdout, "no config lines to ignore: the output says nothing of them",
              r.stdout)
        check_eq(show("iplisten"), {"source": "state", "addresses": ["127.0.0.2"]},
                 "iplisten show --json: 127.0.0.2 alone, source state")
    else:
        check("%s's listen lines, which are ignored from now on" % d.config in r.stdout,
              "the first iplisten add says the config's listen lines are ignored from now on", r.stdout)
        check_eq(show("iplisten"), {"source": "state", "addresses": ["127.0.0.1", "127.0.0.2"]},
                 "iplisten show --json: the config's 127.0.0.1 was copied, 127.0.0.2 added, source state")
        bound_now(port, ["127.0.0.1", "127.0.0.2"], "both")
        ctl("iplisten", "delete", "127.0.0.1")
        check_eq(show("iplisten"), {"source": "state", "addresses": ["127.0.0.2"]},
                 "iplisten delete 127.0.0.1: 127.0.0.2 alone")
    bound_now(port, ["127.0.0.2"], "at once, without a restart")
    check(root.alive(), "the app was not disturbed")
    served(port, "127.0.0.2", root.pid, "the app answers on 127.0.0.2")
    h = hold("127.0.0.1", port)
    check(True, "the story itself binds and listens on 127.0.0.1:%d (the port freed for another server)" % port)
    check(reaches_holder(h, "127.0.0.1", port), "a connect to 127.0.0.1:%d reaches the story's socket" % port)
    served(port, "127.0.0.2", root.pid, "the app still answers on 127.0.0.2 meanwhile")

    say("back to %s while the story's socket holds 127.0.0.1:%d" % ("the wildcards" if s.defaults else "127.0.0.1",
                                                                 port))
    mark = d.mark()
    blocked = "0.0.0.0" if s.defaults else "127.0.0.1"
    r = ctl("iplisten", "delete" if s.defaults else "add", "127.0.0.2" if s.defaults else "127.0.0.1", ok=False)
    say("       portsharectl iplisten %s: exit %d, stdout %r, stderr %r"
        % ("delete 127.0.0.2" if s.defaults else "add 127.0.0.1", r.returncode, r.stdout, r.stderr))
    time.sleep(0.2)
    log = d.log()[mark:]
    say("       daemon log: %r" % [l for l in log.splitlines() if str(port) in l])
    say("       ss -ltn on port %d: %r" % (port, sorted(listening(port))))
    said = [l for l in log.splitlines() if "%s:%d is in use by another program" % (blocked, port) in l]
    check(said, "the daemon's log says %s:%d is in use by another program" % (blocked, port), log)
    expect("portshared (pid %d" % d.pid not in said[0],
           "and does not name itself (pid %d, holding %s) as that program"
           % (d.pid, "nothing else of IPv4" if s.defaults else "127.0.0.2:%d" % port),
           "%r; /proc/net/tcp lists port %d's listeners as %r" % (said[0], port, listed(port)))
    out = r.stdout + r.stderr
    # a listen list the port in use cannot be bound on is refused, and the old one stays:
    # no app is left without its listener
    check(r.returncode == 1 and "not made" in out and "%s:%d" % (blocked, port) in out and "in use" in out,
          "portsharectl refuses the change (exit 1) saying %s:%d is in use" % (blocked, port),
          "exit %d, %r" % (r.returncode, out))
    check_eq(show("iplisten")["addresses"], ["127.0.0.2"], "iplisten show: the listen list stays 127.0.0.2")
    check_eq(sorted(a for a in listening(port) if a != "127.0.0.1"), ["127.0.0.2"],
             "the daemon still listens on 127.0.0.2:%d only (ss -ltn, the story's own 127.0.0.1 aside)" % port)
    served(port, "127.0.0.2", root.pid, "the app still answers on 127.0.0.2")
    h.close()
    check(True, "the story closed its socket on 127.0.0.1:%d" % port)
    if s.defaults:
        say("127.0.0.1:%d free again: iplisten delete 127.0.0.2" % port)
        ctl("iplisten", "delete", "127.0.0.2")
        bound_now(port, ["0.0.0.0", "::"], "iplisten delete 127.0.0.2: back to the wildcards")
        check_eq(show("iplisten"), {"source": "state", "addresses": ["0.0.0.0", "::"]},
                 "iplisten show --json: an empty list (the wildcards), still source state")
    else:
        say("127.0.0.1:%d free again: iplisten add 127.0.0.1, delete 127.0.0.2" % port)
        ctl("iplisten", "add", "127.0.0.1")
        ctl("iplisten", "delete", "127.0.0.2")
        bound_now(port, ["127.0.0.1"], "iplisten delete 127.0.0.2: back to 127.0.0.1")
        check_eq(show("iplisten"), {"source": "state", "addresses": ["127.0.0.1"]}, "iplisten show --json")
    check(root.alive(), "the app was never restarted")
    for host in hosts:
        served(port, host, root.pid, "the app answers on %s" % host)

    # ------------------------------------------------------------ a listen list from the config
    say("a daemon whose config says 'listen 127.0.0.1', before and after the first change")
    dc = s.daemon(listen=("127.0.0.1",), sock=s.path("config.sock"), state_dir=s.path("state-config"),
                  name="portshared-config")
    check_eq(show("iplisten", dc), {"source": "config", "addresses": ["127.0.0.1"]},
             "iplisten show --json: source config, 127.0.0.1")
    r = ctl("iplisten", "show", daemon=dc)
    check("from the config file" in r.stdout, "iplisten show (text) says the list comes from the config file",
          r.stdout)
    pc = s.free_port()
    app_c = s.hello(["http://+:%d/" % pc], text="C", sock=dc.sock)
    bound_now(pc, ["127.0.0.1"], "its app")
    r = ctl("iplisten", "add", "127.0.0.2", daemon=dc)
    check("it started as %s's listen lines, which are ignored from now on" % dc.config in r.stdout,
          "the first iplisten add says the config's lines are ignored from now on", r.stdout)
    check_eq(show("iplisten", dc), {"source": "state", "addresses": ["127.0.0.1", "127.0.0.2"]},
             "the config's 127.0.0.1 was kept (copied), 127.0.0.2 added, source state")
    bound_now(pc, ["127.0.0.1", "127.0.0.2"], "at once")
    r = ctl("iplisten", "add", "127.0.0.1", daemon=dc, ok=False)
    check(r.returncode == 1 and "127.0.0.1 is on the listen list already" in r.stderr,
          "iplisten add 127.0.0.1 again: exit 1, on the list already", r.stderr)
    mark = dc.mark()
    dc.write_config(["listen 127.0.0.3", "ShutdownGrace 2"])
    dc.reload()
    dc.wait_log(r"portshared: reloaded", since=mark)
    check("the listen lines of %s are ignored" % dc.config in dc.log()[mark:],
          "SIGHUP with 'listen 127.0.0.3' in the config: the log says its listen lines are ignored")
    check_eq(show("iplisten", dc)["addresses"], ["127.0.0.1", "127.0.0.2"], "the listen list did not change")
    bound_now(pc, ["127.0.0.1", "127.0.0.2"], "nothing rebound")
    app_c.stop()
    check_eq(dc.stop(8.0), 0, "that daemon stops: exit status")

    # ------------------------------------------------------------ exclusions
    say("exclude add 127.0.0.1:%d" % port2)
    r = ctl("exclude", "add", "127.0.0.1:%d" % port2)
    check("127.0.0.1:%d" % port2 in r.stdout, "exclude add: exit 0, the exclusion listed", r.stdout)
    check_eq(show("exclude"), {"exclusions": ["127.0.0.1:%d" % port2]}, "exclude show --json")
    if s.defaults:
        app2 = s.hello(["http://+:%d/" % port2], text="TWO", sock=d.sock)
        bound_now(port2, ["::"], "with the wildcards, 0.0.0.0:%d is ruled out by 127.0.0.1:%d; [::]:%d is bound"
                  % (port2, port2, port2))
        served(port2, "::1", app2.pid, "the app answers on ::1")
        e = endpoint(d.status(), "0.0.0.0", port2) or {}
        check(e.get("bound") is False and "excluded by 127.0.0.1:%d" % port2 in e.get("why", ""),
              "status --json: 0.0.0.0:%d not bound, why: %r" % (port2, e.get("why")), repr(e))
        app2.stop()
        bound_now(port2, [], "the app gone")
        ctl("iplisten", "add", "127.0.0.1")
        check_eq(show("iplisten"), {"source": "state", "addresses": ["127.0.0.1"]},
                 "iplisten add 127.0.0.1: a listen list of only 127.0.0.1")
        bound_now(port, ["127.0.0.1"], "rebound at once")
    refusedapp = s.hello(["http://+:%d/" % port2], text="TWO", ready=False, sock=d.sock)
    rc = refusedapp.wait(10)
    err = refusedapp.stderr()
    check(rc == 1 and "port %d cannot be bound: excluded by 127.0.0.1:%d" % (port2, port2) in err,
          "with a listen list of only 127.0.0.1, an app registering http://+:%d/ is refused, the rule named"
          % port2, "exit %r, %r" % (rc, err))
    say("       (it said: %s)" % err.strip().splitlines()[-1])
    check_eq(listening(port2), [], "nothing listens on port %d" % port2)
    if s.defaults:
        ctl("iplisten", "delete", "127.0.0.1")
        bound_now(port, ["0.0.0.0", "::"], "iplisten delete 127.0.0.1: the wildcards again")

    rule3 = "%s:%d" % ("0.0.0.0" if s.defaults else "127.0.0.1", port3)
    say("exclude add %s, a port in use" % rule3)
    app3 = s.hello(["http://+:%d/" % port3], text="THREE", sock=d.sock)
    bound_now(port3, s.bound, "an app on port %d" % port3)
    ctl("exclude", "add", rule3)
    bound_now(port3, [b for b in s.bound if b != rule3.rpartition(":")[0]], "released at once", timeout=1.0)
    h3 = hold("127.0.0.1", port3)
    check(reaches_holder(h3, "127.0.0.1", port3), "the story binds 127.0.0.1:%d itself now, and connects reach it"
          % port3)
    h3.close()
    if s.defaults:
        served(port3, "::1", app3.pid, "the app still answers on ::1")
    st = d.status()
    e = endpoint(st, rule3.rpartition(":")[0], port3) or {}
    check(e.get("bound") is False and "excluded by %s" % rule3 in e.get("why", ""),
          "status --json says why %s is not bound: %r" % (rule3, e.get("why")), repr(st.get("endpoints")))
    check_eq(st.get("exclusions"), ["127.0.0.1:%d" % port2, rule3], "status --json lists the exclusions")
    text = d.status_text()
    line = [l for l in text.splitlines() if rule3 in l and "not bound" in l]
    check(line and "excluded by %s" % rule3 in line[0], "status (text): %r" % (line[0].strip() if line else None),
          text)
    r = ctl("who", str(port3), "--json", ok=False)
    check_eq(r.returncode, 1 if not s.defaults else 0, "who %d: exit status (0 held, 1 free)" % port3)
    w = json.loads(r.stdout)["portshared"]["who"]
    we = [x for x in w.get("endpoints", []) if x.get("address") == rule3.rpartition(":")[0]]
    check(we and we[0].get("bound") is False and "excluded by %s" % rule3 in we[0].get("why", ""),
          "who %d --json says the same" % port3, repr(w.get("endpoints")))
    r = ctl("exclude", "delete", rule3)
    bound_now(port3, s.bound, "exclude delete %s: bound again at once" % rule3)
    for host in hosts:
        served(port3, host, app3.pid, "the app answers on %s again" % host)
    ctl("exclude", "add", rule3)
    bound_now(port3, [b for b in s.bound if b != rule3.rpartition(":")[0]], "excluded again (kept for the restart)")

    # ------------------------------------------------------------ restart and --upgrade keep it all
    def settings(daemon):
        return {w: show(w, daemon) for w in ("iplisten", "exclude", "urlacl", "grant")}

    before = settings(d)
    say("settings before the restart: %s" % json.dumps(before, sort_keys=True))
    check_eq(d.stop(8.0), 0, "the daemon stops (SIGTERM): exit status")
    # a config with another listen line: the state directory's list must win
    d2 = s.daemon(sock=d.sock, state_dir=d.state_dir, listen=("127.0.0.3",), name="portshared-2")
    check("the listen lines of %s are ignored" % d2.config in d2.log(),
          "the restarted daemon's log says its config's listen line (127.0.0.3) is ignored")
    check_eq(settings(d2), before, "after the restart every show --json is what it was")
    apps = [root, app3]

    def attached(daemon):
        pids = {w.get("pid") for q in daemon.status().get("queues", []) for w in q.get("workers", [])}
        return all(a.pid in pids for a in apps)

    check(wait_until(lambda: attached(d2), 10, 0.1), "the apps re-attached to the restarted daemon")
    want_port = ["0.0.0.0", "::"] if s.defaults else ["127.0.0.1"]
    bound_now(port, want_port, "after the restart, port %d" % port)
    bound_now(port3, [b for b in s.bound if b != rule3.rpartition(":")[0]], "and port %d (the exclusion kept)" % port3)
    served(port, hosts[0], root.pid, "the app answers after the restart")
    url3 = "http://+:%d/" % port3

    def kept_url3(daemon, when):
        q3 = next((q for q in daemon.status().get("queues", []) if q.get("name") == app3.queue), {})
        return expect(q3.get("urls") == [url3],
               "%s, %s is still registered: as before, a registration whose endpoints are all excluded stays "
               "(so that exclude delete binds it again)" % (when, url3),
               "urls %r, url_refused %r" % (q3.get("urls"), q3.get("url_refused")))

    # across a restart the library's replay is a new registration: with its port wholly
    # excluded (loopback mode) it is refused, naming the rule, and its app hears it from
    # ps_receive; across --upgrade (below) it stays. In the default configuration [::]
    # is still free, so it stays either way.
    q3 = next((q for q in d2.status().get("queues", []) if q.get("name") == app3.queue), {})
    if s.defaults:
        check_eq(q3.get("urls"), [url3], "after the restart, %s ([::] still free) is registered again" % url3)
    else:
        check(q3.get("urls") == [] and "excluded by %s" % rule3 in (q3.get("url_refused") or ""),
              "after the restart, %s (its port wholly excluded) is refused when replayed, naming the rule" % url3,
              "urls %r, url_refused %r" % (q3.get("urls"), q3.get("url_refused")))
    say("       registering %s anew for the upgrade (exclude delete, a new app, exclude add)" % url3)
    ctl("exclude", "delete", rule3, daemon=d2)
    app3.stop()
    app3 = s.hello([url3], text="THREE", sock=d2.sock)
    apps[1] = app3
    bound_now(port3, s.bound, "the new app on port %d" % port3)
    ctl("exclude", "add", rule3, daemon=d2)
    bound_now(port3, [b for b in s.bound if b != rule3.rpartition(":")[0]], "excluded again")

    say("portshared --upgrade on the same state directory")
    d2.expected_exit = True
    d3 = s.daemon(sock=d2.sock, state_dir=d2.state_dir, listen=("127.0.0.3",), args=["--upgrade"],
                  name="portshared-3")
    check_eq(d2.wait(10), 0, "the old daemon exits after the upgrade: exit status")
    check_eq(settings(d3), before, "after the upgrade every show --json is what it was")
    check(wait_until(lambda: attached(d3), 10, 0.1), "the apps re-attached to the new daemon")
    bound_now(port, want_port, "after the upgrade, port %d" % port)
    bound_now(port3, [b for b in s.bound if b != rule3.rpartition(":")[0]], "and port %d" % port3)
    kept_url3(d3, "after the upgrade")
    for host in hosts:
        served(port, host, root.pid, "the app answers on %s after the upgrade" % host)

    say("portshared --upgrade with another --state-dir")
    other = s.path("state-other")
    os.makedirs(other)
    r = s.run([s.bin("portshared"), "--upgrade", "--socket", d3.sock, "--state-dir", other, "--config", d3.config],
              timeout=30)
    check(r.returncode != 0 and "--state-dir %s is not the running portshared's state directory" % other
          in r.stderr, "refused: exit %d, the clear message" % r.returncode, r.stderr)
    say("       (it said: %s)" % [l for l in r.stderr.splitlines() if "state directory" in l][:1])
    time.sleep(0.5)
    check(d3.alive(), "the running daemon carries on")
    check_eq(d3.status().get("pid"), d3.pid, "status still comes from it")
    check_eq(settings(d3), before, "its settings are unchanged")
    bound_now(port, want_port, "its listeners on port %d are unchanged" % port)
    for host in hosts:
        served(port, host, root.pid, "the app answers on %s" % host)
    check(attached(d3), "the apps are still attached to it")
    app4 = s.hello(["http://+:%d/" % port4], text="FOUR", sock=d3.sock)
    bound_now(port4, s.bound, "it binds a new port for a new app")
    served(port4, hosts[0], app4.pid, "and routes to it")
    rule4 = "%s:%d" % ("0.0.0.0" if s.defaults else "127.0.0.1", port4)
    ctl("exclude", "add", rule4, daemon=d3)
    bound_now(port4, [b for b in s.bound if b != rule4.rpartition(":")[0]],
              "and still changes settings at once (exclude add %s)" % rule4, timeout=1.0)
    ctl("exclude", "delete", rule4, daemon=d3)
    bound_now(port4, s.bound, "exclude delete %s" % rule4, timeout=1.0)
    served(port4, hosts[0], app4.pid, "the app answers again")

    all_held()
