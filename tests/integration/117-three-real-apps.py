# 117-three-real-apps: an admin puts three unmodified servers from Debian's packages under /a/, /b/ and / of one port with three `portsharectl app add` commands, each run as a throwaway user and started on its first request: nginx serving static files (a 1 MiB file intact), a WebSocket echo server on python3-websockets (a real WebSocket client: text and a 64 KiB binary message), and a Flask app under gunicorn on a private unix socket (it sees X-Forwarded-Proto and the client's address); the access log has each request under its app's queue.
import json
import os
import shutil
import subprocess
import tempfile
import time

from apps_help import show, supervisor, user_add, user_del
from harness import Story, check, check_eq, wait_until
from proxy_help import gunicorn

DEBIAN_PYTHON = "/usr/bin/python3"  # the interpreter python3-websockets and python3-flask are for

NGINX_CONF = """daemon off;
pid @RUN@/nginx.pid;
error_log @RUN@/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path @RUN@/body; proxy_temp_path @RUN@/proxy; fastcgi_temp_path @RUN@/fastcgi;
    uwsgi_temp_path @RUN@/uwsgi; scgi_temp_path @RUN@/scgi;
    server { listen 127.0.0.1:PORT; root @PUB@/www; }
}
"""

FLASK_APP = """from flask import Flask, jsonify, request
app = Flask(__name__)

@app.route("/", defaults={"p": ""})
@app.route("/<path:p>")
def any_path(p):
    return jsonify(app="flask", path=request.path, proto=request.headers.get("X-Forwarded-Proto"),
                   forwarded_for=request.headers.get("X-Forwarded-For"))
"""

WS_ECHO = """import asyncio, sys
import websockets

async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)

async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=1 << 20):
        await asyncio.Future()

asyncio.run(main())
"""

WS_CLIENT = """import asyncio, os, sys
import websockets

async def main():
    async with websockets.connect(sys.argv[1], max_size=1 << 20) as ws:
        await ws.send("hello over portshare")
        print("text", await ws.recv() == "hello over portshare")
        blob = os.urandom(65536)
        await ws.send(blob)
        print("binary", await ws.recv() == blob)

asyncio.run(main())
"""


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


with Story(time_limit=120) as s:
    for tool in ("nginx", DEBIAN_PYTHON):
        check(shutil.which(tool) is not None, "%s is installed (scripts/deps.sh)" % tool)
    r = s.run([DEBIAN_PYTHON, "-c", "import flask, websockets"])
    check_eq(r.returncode, 0, "python3-flask and python3-websockets are installed (scripts/deps.sh)")
    log = s.path("access.log")
    d = s.daemon(extra=["AccessLog %s" % log])
    port = s.free_port()
    sup, ctl = supervisor(s, d)
    user, uid, gid = user_add(s, "ps117")
    pub = tempfile.mkdtemp(prefix="ps117-")
    try:
        # what the apps read (world-readable) and where nginx writes (the user's own)
        os.chmod(pub, 0o755)
        os.makedirs(os.path.join(pub, "www"))
        with open(os.path.join(pub, "www", "index.html"), "w") as f:
            f.write("<h1>static by nginx</h1>\n")
        big = os.urandom(1 << 20)
        with open(os.path.join(pub, "www", "big.bin"), "wb") as f:
            f.write(big)
        run = os.path.join(pub, "run")
        os.makedirs(run)
        os.chown(run, uid, gid)
        with open(os.path.join(pub, "nginx.conf.in"), "w") as f:
            f.write(NGINX_CONF.replace("@RUN@", run).replace("@PUB@", pub))
        for name, text in (("flaskapp.py", FLASK_APP), ("wsecho.py", WS_ECHO)):
            with open(os.path.join(pub, name), "w") as f:
                f.write(text)
        for dirpath, dirs, files in os.walk(pub):
            for fn in files:
                os.chmod(os.path.join(dirpath, fn), 0o644)

        # the admin's three commands
        nginx_cmd = ["/bin/sh", "-c", 'sed "s/PORT/$1/" %s/nginx.conf.in > %s/nginx.conf && '
                     'exec nginx -c %s/nginx.conf -e %s/error.log' % (pub, run, run, run), "nginx-wrapper", "{port}"]
        adds = [
            ["static", "--url", "http://+:%d/a/" % port, "--strip-prefix", "--user", user, "--"] + nginx_cmd,
            ["chat", "--url", "http://+:%d/b/" % port, "--strip-prefix", "--user", user, "--",
             DEBIAN_PYTHON, os.path.join(pub, "wsecho.py"), "{port}"],
            ["site", "--url", "http://+:%d/" % port, "--user", user, "--",
             gunicorn(s), "--bind", "unix:{socket}", "--chdir", pub, "flaskapp:app"],
        ]
        for words in adds:
            r = s.run(ctl + ["app", "add"] + words)
            check_eq(r.returncode, 0, "portsharectl app add %s: %s" % (words[0], (r.stdout + r.stderr).strip()))
        apps = show(s, ctl)
        check(all(apps[n]["state"] == "idle" and not apps[n].get("pid") for n in ("static", "chat", "site")),
              "nothing runs before the first request", json.dumps(apps))

        # nginx, started by its first request
        r = s.get(s.url(port, "/a/index.html"))
        check(r.status == 200 and r.body == b"<h1>static by nginx</h1>\n", "/a/index.html from nginx, started on demand",
              repr(r.status))
        r = s.curl(["-o", s.path("big.out"), "-w", "%{http_code}", s.url(port, "/a/big.bin")])
        with open(s.path("big.out"), "rb") as f:
            check(r.stdout == "200" and f.read() == big, "a 1 MiB file from nginx, intact")

        # the WebSocket echo server, by a real WebSocket client
        with open(s.path("wsclient.py"), "w") as f:
            f.write(WS_CLIENT)
        r = s.run([DEBIAN_PYTHON, s.path("wsclient.py"), "ws://127.0.0.1:%d/b/" % port], timeout=60)
        check_eq(r.stdout.split(), ["text", "True", "binary", "True"],
                 "python3-websockets: text and a 64 KiB binary message echoed (%s)" % r.stderr.strip()[-300:])

        # Flask under gunicorn on its private unix socket, under /
        r = s.get(s.url(port, "/shop/cart?x=1"), headers=["X-Forwarded-For: 6.6.6.6"])
        check_eq(r.status, 200, "/shop/cart from Flask")
        j = json.loads(r.body)
        check(j["app"] == "flask" and j["path"] == "/shop/cart" and j["proto"] == "http",
              "Flask sees its path and X-Forwarded-Proto", repr(j))
        check(j["forwarded_for"] and "6.6.6.6" not in j["forwarded_for"],
              "a client's X-Forwarded-For never reaches the app (%r)" % j["forwarded_for"])

        apps = show(s, ctl)
        for n in ("static", "chat", "site"):
            check(apps[n]["state"] == "running" and apps[n].get("pid"), "%s runs now" % n, json.dumps(apps[n]))
            check_eq(uid_of(apps[n]["pid"]), uid, "%s runs as the user its definition names" % n)

        # the access log: each request under its app's queue
        def logged():
            with open(log) as f:
                return f.read()
        check(wait_until(lambda: '"GET /shop/cart?x=1 HTTP/1.1" 200' in logged(), 5), "the access log has them",
              logged()[-2000:])
        text = logged()
        for req, queue in (('"GET /a/index.html HTTP/1.1" 200', "app-static"), ('"GET /b/ HTTP/1.1" 101', "app-chat"),
                           ('"GET /shop/cart?x=1 HTTP/1.1" 200', "app-site")):
            line = [ln for ln in text.splitlines() if req in ln]
            check(len(line) == 1 and (" %s " % queue) in line[0], "logged once under %s: %s" % (queue, req), line)
    finally:
        sup.stop(timeout=15)  # its apps stop with it
        user_del(user)
        shutil.rmtree(pub, ignore_errors=True)
