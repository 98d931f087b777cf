# apps_help.py: what the stories of portshare-apps (108, 120-123, 130-132) share: starting the supervisor on a story's own directories, `app show --json`, a throwaway user, an app that answers its pid, portshare-hello's answer, and load loops.
import contextlib
import http.client
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time

from harness import Proc, check, check_eq, fail, say, wait_until
from proxy_help import gunicorn

# a python http.server app that answers its pid; /slow?SECONDS waits first (a request in flight)
PIDSERVER = r'''
import os, sys, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the proxy pools its connections
    disable_nagle_algorithm = True  # the head and the body are two writes
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/slow"):
            time.sleep(float(url.query or "1"))
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

ThreadingHTTPServer.request_queue_size = 128  # socketserver's 5 drops a burst of connects
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def pidserver(s):
    """The pid-answering app's script in the story dir; its command takes {port} after it."""
    path = s.path("pidserver.py")
    with open(path, "w") as f:
        f.write(PIDSERVER)
    return [sys.executable, path]


def add_wsgi(s, ctl, port, answer):
    """app add wsgi: gunicorn on {socket} (a unix socket in a private directory) under
    http://+:PORT/wsgi/, with a WSGI app that answers the Python expression answer (of
    environ; os is imported)."""
    with open(s.path("wsgiapp.py"), "w") as f:
        f.write("import os\n"
                "def app(environ, start_response):\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [%s]\n" % answer)
    r = s.run(ctl + ["app", "add", "wsgi", "--url", "http://+:%d/wsgi/" % port, "--strip-prefix", "--allow-root",
                     "--", gunicorn(s), "--bind", "unix:{socket}", "--chdir", s.dir, "wsgiapp:app"])
    check_eq(r.returncode, 0, "app add wsgi -- gunicorn --bind unix:{socket}: %s" % r.stderr.strip())


def supervisor(s, d, name="portshare-apps", log_dir=None):
    """portshare-apps on the story's apps directory, socket and log directory (or log_dir),
    ready; returns (Proc, the portsharectl argv that reaches it and the daemon)."""
    argv = [s.bin("portshare-apps"), "--socket", d.sock, "--apps-dir", s.path("apps"), "--apps-socket",
            s.path("apps.sock"), "--log-dir", log_dir or s.path("logs")]
    sup = Proc(s, argv, name)
    sup.wait_for(r"ready apps-socket=", timeout=10)
    return sup, [s.bin("portsharectl"), "--socket", d.sock, "--apps-socket", s.path("apps.sock")]


def show(s, ctl):
    """app show --json, by app name."""
    r = s.run(ctl + ["app", "show", "--json"])
    if r.returncode != 0:
        fail("app show --json exited %d: %s" % (r.returncode, r.stderr.strip()))
    return {a["name"]: a for a in json.loads(r.stdout)["apps"]}


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def user_add(s, prefix):
    """A system user made for the story (useradd): (name, uid, gid). Needs root. The story
    removes it with user_del in a finally, after stopping what runs as it."""
    if os.geteuid() != 0:
        fail("this story needs root: portshare-apps runs apps as a throwaway user (useradd)")
    name = prefix + secrets.token_hex(4)
    r = s.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], timeout=30)
    check_eq(r.returncode, 0, "useradd --system %s" % name)
    return name, int(s.run(["id", "-u", name]).stdout), int(s.run(["id", "-g", name]).stdout)


def user_del(name):
    r = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        say("  userdel %s exited %d: %s" % (name, r.returncode, r.stderr.strip()))
    else:
        say("  ok   userdel %s" % name)


@contextlib.contextmanager
def supervised_user(s, d, prefix):
    """A throwaway user and portshare-apps on the story's directories: yields (user, uid,
    supervisor Proc, portsharectl argv); after, stops the supervisor (and its apps), then
    removes the user."""
    user, uid, _ = user_add(s, prefix)
    sup = None
    try:
        sup, ctl = supervisor(s, d)
        yield user, uid, sup, ctl
    finally:
        if sup:
            sup.stop()
        user_del(user)


def hello_pid(r, text="hi"):
    """The pid in portshare-hello's answer ("TEXT pid=N path=..."), or None."""
    m = re.match(r"%s pid=(\d+) " % text, r.body.decode(errors="replace")) if r and r.status == 200 else None
    return int(m.group(1)) if m else None


def load(port, path, stop, out, pid_of=int, keepalive=True, max_requests=20000, max_seconds=30):
    """Requests until stop (at most max_requests or max_seconds) on one keep-alive
    connection (a new one after any failure), or a new connection each; pid_of(body) is
    the pid that answered (an exception: a failed request). out gets (ok, failed, pids seen
    in order, and "bad": what failed)."""
    ok = failed = 0
    pids = []
    conn = None
    end = time.monotonic() + max_seconds
    while not stop.is_set() and ok + failed < max_requests and time.monotonic() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                pid = pid_of(body)
                ok += 1
                if not pids or pids[-1] != pid:
                    pids.append(pid)
            else:
                failed += 1
                out.setdefault("bad", []).append((resp.status, body[:100]))
            if not keepalive:
                conn.close()
                conn = None
        except Exception as e:  # a failed request: counted, and a new connection
            failed += 1
            out.setdefault("bad", []).append(repr(e))
            conn = None
    out.update(ok=ok, failed=failed, pids=pids)


def loads(port, path, n, pid_of=int, keepalive=True):
    """n load loops started (every other one keep-alive when keepalive): (stop, threads, results)."""
    stop = threading.Event()
    results = [{} for _ in range(n)]
    threads = [threading.Thread(target=load, args=(port, path, stop, results[i], pid_of, keepalive and i % 2 == 0))
               for i in range(n)]
    for t in threads:
        t.start()
    return stop, threads, results


def loads_end(stop, threads, results, what):
    """Ends the loops: 0 failed requests, over 100 done; returns every pid that answered."""
    stop.set()
    for t in threads:
        t.join(40)
    ok = sum(x.get("ok", 0) for x in results)
    failed = sum(x.get("failed", 0) for x in results)
    check(failed == 0 and ok > 100, "%s: %d requests, %d failed" % (what, ok, failed),
          repr([x.get("bad", [])[:3] for x in results]))
    return set(p for x in results for p in x.get("pids", []))


def load_end(stop, loaders, results, pid0, new_pid):
    """Ends the load loops of a restart (after a second more of load) and checks them: no
    failed request, and every client went from pid0 to new_pid."""
    time.sleep(1)
    stop.set()
    for t in loaders:
        t.join(40)
    total_ok = sum(x.get("ok", 0) for x in results)
    total_failed = sum(x.get("failed", 0) for x in results)
    check(total_failed == 0 and total_ok > 100, "under load: %d requests, %d failed" % (total_ok, total_failed),
          repr([x.get("bad", [])[:3] for x in results]))
    check(all(x["pids"][0] == pid0 and x["pids"][-1] == new_pid for x in results),
          "every client went from pid %d to pid %d" % (pid0, new_pid), repr([x["pids"] for x in results]))


def restart(s, ctl, name, says):
    """app restart NAME (its answer has says), a second one refused meanwhile, and the
    app's pid becoming the new one's: returns the new pid."""
    r = s.run(ctl + ["app", "restart", name])
    check(r.returncode == 0 and says in r.stdout, "app restart %s: %s" % (name, r.stdout.strip()))
    new_pid = int(re.search(r"new pid (\d+)", r.stdout).group(1))
    r = s.run(ctl + ["app", "restart", name])
    check(r.returncode == 1 and "restarting already" in r.stderr, "a second restart meanwhile is refused: %s"
          % r.stderr.strip())
    check(wait_until(lambda: show(s, ctl)[name]["pid"] == new_pid, 15), "app %s's pid is now %d" % (name, new_pid))
    return new_pid
