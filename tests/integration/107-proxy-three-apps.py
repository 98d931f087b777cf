# 107-proxy-three-apps: three unmodified servers share one port under /a/, /b/ and /: python3 -m http.server and gunicorn through portshare-run, the scripted backend through portshare-proxy; each prefix reaches its own app, whole segments only, the three at once from many clients.
import json
import os
import sys
import threading
from harness import Story, check, check_eq
from proxy_help import backend, gunicorn, proxy, run

APP = '''
def app(environ, start_response):
    body = ("gunicorn %s\\n" % environ["PATH_INFO"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    root = s.path("www")
    os.makedirs(root)
    with open(os.path.join(root, "x.txt"), "w") as f:
        f.write("static x\n")
    with open(s.path("threeapp.py"), "w") as f:
        f.write(APP)
    run(s, ["http://+:%d/a/" % port], [sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1",
                                      "--directory", root], extra=["--strip-prefix", "--queue", "a"])
    run(s, ["http://+:%d/b/" % port], [gunicorn(s), "--bind", "unix:{socket}", "--chdir", s.dir, "threeapp:app"],
        extra=["--strip-prefix", "--queue", "b"], timeout=30)
    b, bport = backend(s)
    proxy(s, ["http://+:%d/" % port], "http://127.0.0.1:%s" % bport, queue="root")

    def who(path):
        r = s.get(s.url(port, path))
        if r.status != 200:
            return "status %d" % r.status
        if r.body == b"static x\n":
            return "http.server"
        if r.body.startswith(b"gunicorn "):
            return r.body.decode().strip()
        if r.body.startswith(b"{"):
            return "backend %s" % json.loads(r.body)["target"]
        return repr(r.body[:60])

    check_eq(who("/a/x.txt"), "http.server", "/a/x.txt goes to http.server")
    check_eq(who("/b/hello"), "gunicorn /hello", "/b/hello goes to gunicorn as /hello")
    check_eq(who("/c/d"), "backend /c/d", "/c/d goes to the app under /")
    check_eq(who("/ax.txt"), "backend /ax.txt", "/ax.txt is not under /a/ (whole segments): the app under /")
    check_eq(who("/bb"), "backend /bb", "/bb is not under /b/")

    bad = []

    def client(i):
        for k in range(10):
            for path, want in (("/a/x.txt", "http.server"), ("/b/k%d" % k, "gunicorn /k%d" % k),
                               ("/r/%d/%d" % (i, k), "backend /r/%d/%d" % (i, k))):
                got = who(path)
                if got != want:
                    bad.append((path, got))

    ts = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not bad, "4 clients x 30 requests across the three apps at once: each answered by its app", repr(bad[:5]))
    st = d.status()
    check_eq(sorted(q["name"] for q in st.get("queues", [])), ["a", "b", "root"], "status lists the three queues")
