# apps_help.py: what the stories of portshare-apps (108, 120-123) share: starting the supervisor on a story's own directories, `app show --json`, a throwaway user, and an app that answers its pid.
import json
import os
import secrets
import subprocess
import sys

from harness import Proc, check_eq, fail, say
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
