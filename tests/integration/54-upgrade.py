# 54-upgrade: portshared --upgrade replaces the daemon under wrk load with no refused, reset or wrong answer; apps, queues, URLs and a persistent queue carry over, limits come from the new config, held requests are served on re-attach, ReattachGrace ends. Also with PORTSHARE_DEFAULTS=1 (raw connects on both loopbacks, the second wrk over ::1).
import os
import re
import shutil
import signal
import subprocess
import time
from harness import ConnectLoop, Story, check, check_eq, fail, find_queue, body_pid, wait_until, say, url_host

# Requests alternate over the paths given after "--"; an answer that is not a 200 from one
# of the apps ("TEXT pid=N path=...") counts as wrong.
WRK_SCRIPT = """
local paths = {}
local n = 0
wrong = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) for i, p in ipairs(args) do paths[i] = p end end
function request()
  n = n + 1
  return wrk.format("GET", paths[n % #paths + 1])
end
function response(status, headers, body)
  if status ~= 200 or not body:match("^%u+ pid=%d+ path=/") then wrong = wrong + 1 end
end
function done(summary, latency, requests)
  local w = 0
  for _, t in ipairs(threads) do w = w + t:get("wrong") end
  io.write(string.format("wrong answers: %d\\n", w))
end
"""


def wrk_start(s, port, paths, seconds, host="127.0.0.1"):
    script = s.path("upgrade.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    out = open(s.path("wrk-%d.out" % port), "w+")
    argv = ["wrk", "-t2", "-c20", "-d%ds" % seconds, "-s", script, "http://%s:%d" % (url_host(host), port), "--"] + paths
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=s.env, cwd=s.dir)
    return p, out


def wrk_result(p, out, seconds):
    try:
        p.wait(seconds + 15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)
        fail("wrk did not finish")
    out.seek(0)
    text = out.read()
    out.close()
    say("  wrk output:\n" + "\n".join("    | " + line for line in text.splitlines()))
    check_eq(p.returncode, 0, "wrk exit status")
    m = re.search(r"(\d+) requests in", text)
    check(m and int(m.group(1)) > 1000, "wrk made requests", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    check(errors is None, "wrk saw no socket error (connect, read, write, timeout)", errors and errors.group(0))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    check(non2xx is None, "wrk saw no non-2xx answer", non2xx and non2xx.group(0))
    wrong = re.search(r"wrong answers: (\d+)", text)
    check(wrong is not None and wrong.group(1) == "0", "every answer came from one of the apps",
          wrong and wrong.group(0))


def probes_check(probes):
    """Every raw connect during the upgrade answered 200: none refused, reset or wrong."""
    for p in probes:
        p.finish()
        check(p.ok > 50 and not p.failures,
              "raw connects to %s during the upgrade: %d answered 200, none refused, reset or wrong"
              % (p.host, p.ok), repr(p.failures[:5]))


def upgrade(s, old, name, limits):
    """Starts portshared --upgrade against `old`; returns the new daemon."""
    old.expected_exit = True
    t0 = time.monotonic()
    new = s.daemon(sock=old.sock, state_dir=old.state_dir, limits=limits, args=["--upgrade"], name=name)
    say("  (%s ready %.2f s after it started)" % (name, time.monotonic() - t0))
    return new


def worker_pids(st, queue):
    return sorted(w["pid"] for w in (find_queue(st, queue) or {}).get("workers", []))


with Story(time_limit=110) as s:
    check(shutil.which("wrk") is not None, "wrk is installed (Debian package wrk; scripts/deps.sh installs it)")

    # (d) nothing running: a clear error
    r = s.run([s.bin("portshared"), "--upgrade", "--socket", s.path("nobody.sock"), "--state-dir", s.path("st0")])
    check(r.returncode != 0 and "no portshared is running on %s; start it without --upgrade" % s.path("nobody.sock")
          in r.stderr, "--upgrade with no daemon running: exit %d and the clear error" % r.returncode, r.stderr)

    old_limits = {"ShutdownGrace": 8, "MaxRequestBytes": 8192}
    new_limits = {"ShutdownGrace": 8, "MaxRequestBytes": 2048, "ReattachGrace": 3}
    d1 = s.daemon(limits=old_limits)
    port = s.free_port()
    base = "http://127.0.0.1:%d" % port
    a = s.hello(["http://+:%d/a/" % port], queue="qa", text="A")
    b = s.testworker(["http://+:%d/b/" % port], queue="qb", text="B")
    w = s.testworker(["http://+:%d/w/" % port], queue="qw", text="W")
    pq = s.testworker(["http://+:%d/p/" % port], queue="pq", persistent=True, mode="exit-after", count=1, text="P")
    check(s.get(base + "/p/1").status == 200 and pq.wait(5) == 0, "persistent queue pq served once, its worker left")
    # x will be stopped through the upgrade and miss ReattachGrace
    x = s.testworker(["http://+:%d/x/" % port], queue="qx", text="X")
    check_eq(s.get(base + "/x/1").status, 200, "x serves before the upgrade")
    big = "X-Big: %s" % ("y" * 3000)
    check_eq(s.get(base + "/a/big", headers=[big]).status, 200, "a 3 KB header is fine for the old daemon's limits")

    # (d') a refusal from the running daemon names its reason: only root or its own user
    if os.geteuid() == 0 and shutil.which("setpriv"):
        st = s.path("st-nobody")
        os.makedirs(st)
        os.chmod(st, 0o777)
        r = s.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", s.bin("portshared"), "--upgrade",
                   "--socket", d1.sock, "--state-dir", st])
        check(r.returncode != 0 and "refused the upgrade: only root or portshared's own user" in r.stderr,
              "--upgrade by uid 65534 is refused with the reason", r.stderr)
        check(d1.alive(), "and the running daemon carries on")

    # (a) under load: wrk on both apps, raw connects, and a request in flight in w
    wrk, wrk_out = wrk_start(s, port, ["/a/w", "/b/w"], 6)
    probes = [ConnectLoop(port, "/a/probe", host) for host in s.hosts]
    slow = s.conn(port, timeout=10)
    slow.send(b"POST /w/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    x.signal(signal.SIGSTOP)
    time.sleep(2)

    d2 = upgrade(s, d1, "portshared-new", new_limits)
    t_upgrade = time.monotonic()

    # (c) w still owes the old daemon a response, so it has not re-attached: a request for
    # w reaches the new daemon, which holds it instead of answering 503
    held = s.conn(port, timeout=10)
    held.send(b"GET /w/held HTTP/1.1\r\nHost: x\r\n\r\n")
    check(not held.readable_within(1.0), "a request for w's queue is held while w has not re-attached")
    qw = find_queue(d2.status(), "qw") or {}
    check(qw.get("reattach_wait") is True and not qw.get("workers") and qw.get("depth") == 1,
          "status: qw waits for its worker and holds 1 request", repr(qw))
    check(d1.alive(), "the old daemon waits for w's response")
    slow.send(b"67890")
    r = slow.read_response(timeout=5)
    check(r.status == 200 and r.text() == "W pid=%d path=/w/slow body=10\n" % w.pid,
          "the request in flight during the upgrade completes", repr(r))
    r = held.read_response(timeout=5)
    check(r.status == 200 and body_pid(r.body) == w.pid, "the held request is served by w once it re-attaches", repr(r))
    r = slow.request(b"GET /w/again HTTP/1.1\r\nHost: x\r\n\r\n")
    check(r.status == 200 and body_pid(r.body) == w.pid, "the keep-alive connection of the slow request goes on")

    check_eq(d1.wait(8), 0, "the old daemon exits by itself, status 0")
    d2.wait_log(r"upgrade complete: the old portshared \(pid %d\)" % d1.pid, timeout=5)
    check(True, "the new daemon logs that the upgrade is complete")
    wrk_result(wrk, wrk_out, 6)
    probes_check(probes)

    # what carried over
    check(a.alive() and b.alive() and w.alive(), "the apps kept running (pids %d, %d, %d)" % (a.pid, b.pid, w.pid))
    st = d2.status()
    check_eq(st.get("pid"), d2.pid, "status answers from the new daemon")
    for q, app, url in (("qa", a, "/a/"), ("qb", b, "/b/"), ("qw", w, "/w/")):
        got = find_queue(st, q) or {}
        check("http://+:%d%s" % (port, url) in got.get("urls", []) and worker_pids(st, q) == [app.pid],
              "queue %s keeps its URL and its worker pid %d" % (q, app.pid), repr(got))
        r = s.get(base + url + "after")
        check(r.status == 200 and body_pid(r.body) == app.pid, "%s answered by the same app" % url, repr(r))
    # (b) the persistent queue carried over (no worker: AppOffline at once), and the
    # limits are the new config's
    got = find_queue(st, "pq") or {}
    check(got.get("persistent") is True and "http://+:%d/p/" % port in got.get("urls", []),
          "persistent queue pq and its URL carried over", repr(got))
    t0 = time.monotonic()
    check_eq(s.get(base + "/p/2").status, 503, "pq without a worker: 503 (AppOffline)")
    check(time.monotonic() - t0 < 2, "at once, not after a re-attach wait")
    pq2 = s.testworker(queue="pq", open_=True, text="P2")
    r = s.get(base + "/p/3")
    check(r.status == 200 and body_pid(r.body) == pq2.pid, "a new worker opens pq and serves it", repr(r))
    check_eq(s.get(base + "/a/big", headers=[big]).status, 431, "the new config's MaxRequestBytes 2048 applies")

    # (e) x was stopped through ReattachGrace (3 s): its queue went as if x had left;
    # once x runs again it reconnects and serves again, same pid
    time.sleep(max(0, t_upgrade + 3.5 - time.monotonic()))
    check(find_queue(d2.status(), "qx") is None, "qx was removed when ReattachGrace ended without its worker")
    check_eq(s.get(base + "/x/2").status, 404, "/x/ without its queue: 404")
    x.signal(signal.SIGCONT)
    back = wait_until(lambda: body_pid(s.get(base + "/x/3", timeout=4).body) == x.pid, 10, 0.2)
    check(back, "x re-attached by itself once it ran again (pid %d)" % x.pid)

    # once more, with workers that send every connection back to the daemon after each
    # response (no delegation), and a second upgrade on top of the first
    env = {"PORTSHARE_DELEGATION": "0"}
    c_app = s.hello(["http://+:%d/c/" % port], queue="qc", text="C", env_extra=env)
    d_app = s.testworker(["http://+:%d/d/" % port], queue="qd", text="D", env_extra=env)
    wrk, wrk_out = wrk_start(s, port, ["/c/w", "/d/w"], 5, s.hosts[-1])
    probes = [ConnectLoop(port, "/c/probe", host) for host in s.hosts]
    time.sleep(2)
    d3 = upgrade(s, d2, "portshared-third", new_limits)
    check_eq(d2.wait(8), 0, "the second old daemon exits by itself, status 0")
    wrk_result(wrk, wrk_out, 5)
    probes_check(probes)
    st = d3.status()
    for q, app in (("qa", a), ("qb", b), ("qc", c_app), ("qd", d_app), ("qx", x)):
        check_eq(worker_pids(st, q), [app.pid], "after the second upgrade queue %s has its worker" % q)
