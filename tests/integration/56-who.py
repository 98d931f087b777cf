# 56-who: portsharectl who names what holds a port (pid, program, user), portshared's prefixes with queues and workers, the app a URL goes to, a free port (and whether portshared would bind it); works with the daemon stopped, tells a non-root caller what it cannot see, refuses bad arguments with exit 2. Also with PORTSHARE_DEFAULTS=1.
import json
import os
import shutil
import sys

from harness import Proc, Story, check, check_eq, fail, say

# a socket held by a process the story starts (not portshared, not the story itself)
HOLDER = ("import socket, sys, time\n"
          "s = socket.socket()\n"
          "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
          "s.listen(4)\n"
          "print('ready queue=none', flush=True)\n"
          "time.sleep(300)\n")
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def who(s, sock, *args, nobody=False):
    argv = [s.bin("portsharectl"), "--socket", sock, "who"] + list(args)
    return s.run(NOBODY + argv if nobody else argv)


def who_json(s, sock, *args, nobody=False):
    """Exit status and the parsed object of `who ARGS --json`."""
    r = who(s, sock, *args, "--json", nobody=nobody)
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError as e:
        fail("who %s --json printed invalid JSON (%s): %r; stderr %r" % (" ".join(args), e, r.stdout[:500], r.stderr))


def pids_of(js):
    return sorted(p["pid"] for so in js.get("sockets", []) for p in so.get("processes", []))


with Story() as s:
    sock = s.path("control.sock")  # the daemon's, once it runs

    # a port another program holds, portshared not running
    hport = s.free_port()
    holder = Proc(s, [sys.executable, "-c", HOLDER, str(hport)], "holder").ready()
    with open("/proc/%d/comm" % holder.pid) as f:
        comm = f.read().strip()
    r = who(s, sock, str(hport))
    check_eq(r.returncode, 0, "who on a held port: exit status")
    check("127.0.0.1:%d" % hport in r.stdout and "pid %d %s" % (holder.pid, comm) in r.stdout,
          "who names the socket, the holder's pid %d and program %s" % (holder.pid, comm), repr(r.stdout))
    check_eq(len(r.stdout.splitlines()), 1, "one line for one socket (a foreign port: nothing of portshared)")
    rc, js = who_json(s, sock, str(hport))
    check(rc == 0 and js.get("held") is True and pids_of(js) == [holder.pid],
          "--json: held, and the holder's pid", repr(js))
    check_eq(js["sockets"][0].get("address"), "127.0.0.1", "--json: the socket's address")
    check_eq(js["portshared"].get("running"), False, "--json: portshared is not running")
    r = who(s, sock, "127.0.0.1:%d" % hport)
    check(r.returncode == 0 and "pid %d" % holder.pid in r.stdout, "who 127.0.0.1:%d names the holder" % hport,
          repr(r.stdout))
    r = who(s, sock, "127.0.0.2:%d" % hport)
    check(r.returncode == 1 and "is free" in r.stdout and "1 other socket" in r.stdout,
          "who 127.0.0.2:%d: free, exit 1, and it mentions the other address's socket" % hport, repr(r.stdout))

    # a free port, portshared not running
    fport = s.free_port()
    r = who(s, sock, str(fport))
    check(r.returncode == 1 and "port %d is free" % fport in r.stdout and "portshared is not running" in r.stdout,
          "who on a free port: exit 1, free, portshared is not running", "%d %r" % (r.returncode, r.stdout))

    # bad arguments: exit 2, and what to type instead
    for args, hint in (((), "which port?"), (("70000",), "1 to 65535"), (("80", "81"), "takes one"),
                       (("80", "--bogus"), "unknown option"), (("ftp://x/",), "http://"),
                       (("localhost:80",), "IP address"), (("::1:80",), "in brackets"),
                       (("http://[::1:80/",), "IPv6")):
        r = who(s, sock, *args)
        check(r.returncode == 2 and hint in r.stderr and ("try:" in r.stderr or "as in" in r.stderr)
              and not r.stdout, "who %s: exit 2, %r and what to type" % (" ".join(args), hint),
              "%d %r %r" % (r.returncode, r.stdout, r.stderr))

    # portshared with two apps on a port
    d = s.daemon()
    port = s.free_port()
    a = s.hello(["http://+:%d/a/" % port], text="A")
    b = s.hello(["http://+:%d/b/" % port], text="B")
    r = d.ctl("who", str(port))
    check(r.returncode == 0 and "pid %d portshared" % d.pid in r.stdout,
          "who on portshared's port names the daemon (pid %d)" % d.pid, "%d %r %r" % (r.returncode, r.stdout, r.stderr))
    rc, js = who_json(s, d.sock, str(port))
    check(rc == 0 and js["sockets"] and all(so.get("portshared") for so in js["sockets"]),
          "--json: every socket on port %d is portshared's" % port, repr(js))
    check(set(pids_of(js)) == {d.pid}, "--json: portshared's pid holds them", repr(pids_of(js)))
    check_eq(sorted(so["address"] for so in js["sockets"]), sorted(s.bound), "--json: the addresses it bound")
    w = js["portshared"].get("who") or {}
    check_eq(w.get("daemon_pid"), d.pid, "the daemon's answer: its pid")
    prefixes = {p.get("url"): p for p in w.get("prefixes", [])}
    for app, path in ((a, "/a/"), (b, "/b/")):
        url = "http://+:%d%s" % (port, path)
        p = prefixes.get(url) or {}
        check(p.get("queue") == app.queue and [k.get("pid") for k in p.get("workers", [])] == [app.pid],
              "the daemon's answer: %s -> queue %s, worker %d" % (url, app.queue, app.pid), repr(w))
        line = [l for l in r.stdout.splitlines() if url in l]
        check(line and app.queue in line[0] and "pid %d" % app.pid in line[0],
              "text: %s with its queue and worker on one line" % url, repr(r.stdout))

    # a URL: which queue and worker get it, and why
    url = "http://127.0.0.1:%d/a/x" % port
    r = d.ctl("who", url)
    check_eq(r.returncode, 0, "who %s: exit status" % url)
    rc, js = who_json(s, d.sock, url)
    check(rc == 0 and d.pid in pids_of(js), "who %s --json names portshared" % url, repr(js))
    route = js["portshared"].get("route") or {}
    check(route.get("status") == 0 and route.get("queue") == a.queue and route.get("class") == "+"
          and route.get("prefix") == "http://+:%d/a/" % port
          and [k.get("pid") for k in route.get("workers", [])] == [a.pid],
          "the daemon's answer: %s goes to queue %s (prefix /a/, class +), worker %d" % (url, a.queue, a.pid),
          repr(js["portshared"]))
    check("-> queue %s" % a.queue in r.stdout and "http://+:%d/a/" % port in r.stdout
          and "pid %d" % a.pid in r.stdout, "text: the URL's queue, prefix and worker", repr(r.stdout))
    r = d.ctl("who", "http://127.0.0.1:%d/zzz" % port)
    check(r.returncode == 0 and "answers 404 itself" in r.stdout,
          "who on a URL no prefix matches: portshared answers 404 itself", repr(r.stdout))

    # a free port with portshared running: free, and would portshared bind it?
    r = d.ctl("who", str(fport))
    check(r.returncode == 1 and "port %d is free" % fport in r.stdout, "who on a free port: exit 1, free",
          "%d %r" % (r.returncode, r.stdout))
    rc, js = who_json(s, d.sock, str(fport))
    eps = js["portshared"]["who"].get("endpoints", [])
    check(sorted(e.get("address", "").strip("[]") for e in eps) == sorted(s.bound)
          and not any(e.get("bound") for e in eps),
          "the daemon's answer: it would bind %s, nothing bound yet" % (s.bound,), repr(eps))
    check("portshared (pid %d)" % d.pid in r.stdout and "bound as soon as an app registers a prefix" in r.stdout,
          "text: portshared would bind the free port when an app asks", repr(r.stdout))
    r = d.ctl("who", str(hport))
    check_eq(len(r.stdout.splitlines()), 1, "a foreign port, portshared running but with no prefix on it: one line")

    # not root: what it cannot see it says so, without guessing
    if os.geteuid() == 0 and shutil.which("setpriv"):
        r = who(s, d.sock, str(hport), nobody=True)
        check(r.returncode == 0 and "owned by uid 0" in r.stdout and "run as root to see the process" in r.stdout
              and str(holder.pid) not in r.stdout,
              "as uid 65534: the root holder is 'owned by uid 0; run as root to see the process'",
              "%d %r %r" % (r.returncode, r.stdout, r.stderr))
        rc, js = who_json(s, d.sock, str(hport), nobody=True)
        check(rc == 0 and pids_of(js) == [] and "run as root" in js["sockets"][0].get("unseen", ""),
              "as uid 65534, --json: no process, and why", repr(js))
    else:
        say("  skip the non-root check (needs root and setpriv)")

    # the daemon stopped: the sockets part alone
    d.stop()
    r = who(s, sock, str(hport))
    check(r.returncode == 0 and "pid %d" % holder.pid in r.stdout,
          "daemon stopped: who on the held port still names the holder", repr(r.stdout))
    r = who(s, sock, str(port))
    check(r.returncode == 1 and "is free" in r.stdout and "portshared is not running" in r.stdout,
          "daemon stopped: its port is free and portshared is not running", repr(r.stdout))
