# 123-apps-status-who: `portsharectl status` (text and --json) lists portshare-apps' apps with backend, state and pids, and `who PORT|URL` (text and --json) the apps with a URL on that port (running, idle, proxy, stopped; both pids during an overlapped restart); when the apps socket cannot be reached (not running, or not root: it is 0600 root) status and who say so in one line and exit as before.
import json
import re
import sys
import threading
import time

from apps_help import pidserver, show, supervisor
from harness import Proc, Story, check, check_eq, wait_until

with Story() as s:
    d = s.daemon()
    port, port2 = s.free_port(), s.free_port()
    sup, ctl = supervisor(s, d)
    bport = s.free_port()
    Proc(s, [sys.executable, "-m", "http.server", str(bport), "--bind", "127.0.0.1", "--directory", s.dir], "http")
    wait_until(lambda: s.run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:%d/" % bport]).returncode == 0, 10)
    adds = [["web", "--url", "http://+:%d/web/" % port, "--strip-prefix", "--allow-root", "--always-running", "--"]
            + pidserver(s) + ["{port}"],
            ["be", "--url", "http://+:%d/be/" % port, "--backend", "http://127.0.0.1:%d" % bport],
            ["other", "--url", "http://+:%d/other/" % port2, "--allow-root", "--", "/bin/sleep", "1000"],
            ["halted", "--url", "http://+:%d/halted/" % port2, "--allow-root", "--", "/bin/sleep", "1000"]]
    for words in adds:
        r = s.run(ctl + ["app", "add"] + words)
        check_eq(r.returncode, 0, "app add %s: %s" % (words[0], r.stderr.strip()))
    check_eq(s.run(ctl + ["app", "stop", "halted"]).returncode, 0, "app stop halted")
    check(wait_until(lambda: show(s, ctl)["web"]["state"] == "running", 15), "web runs")
    apps = show(s, ctl)
    pid, wb = apps["web"]["pid"], apps["web"]["backend"]

    r = s.run(ctl + ["status"])
    check_eq(r.returncode, 0, "status")
    lines = r.stdout.splitlines()
    check("apps (portshare-apps):" in lines, "status (text) has the apps", r.stdout[-800:])
    want = ["  app web (queue app-web): running, backend %s, pid %d http://+:%d/web/" % (wb, pid, port),
            "  app be (queue app-be): proxy, backend 127.0.0.1:%d http://+:%d/be/" % (bport, port),
            "  app other (queue app-other): idle, backend %s http://+:%d/other/" % (apps["other"]["backend"], port2),
            "  app halted (queue app-halted): stopped, backend %s http://+:%d/halted/"
            % (apps["halted"]["backend"], port2)]
    for line in want:
        check(line in lines, "status: %s" % line.strip(), r.stdout[-800:])
    r = s.run(ctl + ["status", "--json"])
    st = json.loads(r.stdout)
    check(st.get("pid") == d.pid and any(q.get("name") == "app-web" for q in st.get("queues", [])),
          "status --json: still the daemon's object")
    got = {a["name"]: a for a in st.get("apps", [])}
    check(got.get("web", {}).get("pids") == [pid] and got["web"]["state"] == "running" and got["web"]["backend"] == wb
          and got["other"]["state"] == "idle" and got["other"]["pids"] == [] and got["be"]["state"] == "proxy"
          and got["halted"]["state"] == "stopped", "status --json: apps with state, backend and pids", repr(got))

    r = s.run(ctl + ["who", str(port)])
    check_eq(r.returncode, 0, "who %d" % port)
    check("  app web (queue app-web): running, backend %s, pid %d" % (wb, pid) in r.stdout.splitlines(),
          "who PORT: the running app with its backend and pid", r.stdout)
    check("  app be (queue app-be): proxy, backend 127.0.0.1:%d" % bport in r.stdout.splitlines()
          and "app other" not in r.stdout, "who PORT: the proxy queue, not the apps of another port", r.stdout)
    r = s.run(ctl + ["who", str(port2), "--json"])
    w = json.loads(r.stdout)
    check_eq(sorted((a["name"], a["state"]) for a in w["apps"]), [("halted", "stopped"), ("other", "idle")],
             "who PORT2 --json: the idle and the stopped app")
    r = s.run(ctl + ["who", "http://127.0.0.1:%d/web/x" % port, "--json"])
    w = json.loads(r.stdout)
    check(w["portshared"]["route"]["queue"] == "app-web" and sorted(a["name"] for a in w["apps"]) == ["be", "web"],
          "who URL --json: the route and the port's apps", repr(w))

    # during an overlapped restart: both pids
    slow = threading.Thread(target=lambda: s.get(s.url(port, "/web/slow?3")))
    slow.start()
    time.sleep(0.5)
    r = s.run(ctl + ["app", "restart", "web"])
    check_eq(r.returncode, 0, "app restart web")
    new = int(re.search(r"new pid (\d+)", r.stdout).group(1))
    check(wait_until(lambda: show(s, ctl)["web"]["pid"] == new, 10), "switched to the new pid")
    r = s.run(ctl + ["who", str(port)])
    check(re.search(r"app web \(queue app-web\): running, backend \S+, pids %d, %d\n" % (new, pid), r.stdout),
          "who while the old one drains: pids %d, %d" % (new, pid), r.stdout)
    slow.join(10)

    # the apps socket cannot be reached: one line, no error
    for why, argv, expect in (
            ("not running", [s.bin("portsharectl"), "--socket", d.sock, "--apps-socket", s.path("none.sock")],
             "No such file or directory"),
            ("not root", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + ctl, "Permission denied")):
        r = s.run(argv + ["status"])
        bad = [l for l in r.stdout.splitlines() if l.startswith("apps")]
        check(r.returncode == 0 and len(bad) == 1 and bad[0].startswith("apps: cannot reach portshare-apps at")
              and expect in bad[0], "status, apps socket %s: %r" % (why, bad), r.stderr)
        r = s.run(argv + ["status", "--json"])
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        check(st.get("apps", 0) is None and expect in st.get("apps_error", ""), "status --json: apps null, apps_error",
              repr(st.get("apps_error")))
        r = s.run(argv + ["who", str(port)])
        bad = [l for l in r.stdout.splitlines() if "apps:" in l]
        check(r.returncode == 0 and len(bad) == 1 and expect in bad[0], "who PORT: one line %r" % bad, r.stdout)
    check_eq(sup.stop(10), 0, "portshare-apps exits 0")
