# 116-access-log-load: 20 worker processes logging at full speed (wrk, 10 s) through one AccessLog: every line whole and its own (path, queue and worker pid agree: nothing torn or interleaved), and the log rotated by logrotate with contrib/portshare.logrotate's rules (renamed, then SIGUSR1 from its postrotate) in the middle of the load loses nothing: the lines of both files are exactly the requests the queues served. The daemon runs with its seccomp filter. Also with PORTSHARE_DEFAULTS=1.
import os
import re
import signal
import subprocess
import time

from harness import REPO, Story, check, check_eq, fail, find_queue, say, url_host, wait_until

WORKERS = 20
SECONDS = 10
LINE = re.compile(r'^(\S+) - - \[([^\]]+)\] "GET /w(\d+)/(\d+) HTTP/1.1" 200 (\d+) "-" "-" (q\d+) (\d+) (\d+)$')

WRK_SCRIPT = """
local n = 0
local workers = %d
function request()
  n = n + 1
  return wrk.format("GET", "/w" .. (n %% workers) .. "/" .. n)
end
""" % WORKERS


def parse(path, pids):
    """Every line of path checked; returns {queue: count}."""
    counts = {}
    with open(path, "rb") as f:
        data = f.read()
    check(data.endswith(b"\n") or not data, "%s ends with a whole line" % os.path.basename(path))
    bad = []
    for raw in data.split(b"\n")[:-1]:
        m = LINE.match(raw.decode("ascii", "replace"))
        if not m or "q" + m.group(3) != m.group(6) or int(m.group(7)) != pids[int(m.group(3))]:
            bad.append(raw)
            continue
        counts[m.group(6)] = counts.get(m.group(6), 0) + 1
    check_eq(bad[:3], [], "%s: every line whole, and its path, queue and worker pid its own" % os.path.basename(path))
    return counts, data.count(b"\n")


with Story() as s:
    log = s.path("access.log")
    d = s.daemon(extra=["AccessLog %s" % log])
    port = s.free_port()
    workers = [s.hello(["http://+:%d/w%d/" % (port, i)], queue="q%d" % i, text="W%d" % i) for i in range(WORKERS)]
    pids = {i: w.pid for i, w in enumerate(workers)}
    time.sleep(0.3)  # the route snapshot: delegation from the first request on

    script = s.path("load.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    host = "::1" if s.defaults else "127.0.0.1"
    out = open(s.path("wrk.out"), "w+")
    wrk = subprocess.Popen(["wrk", "-t2", "-c40", "-d%ds" % SECONDS, "-s", script,
                            "http://%s:%d" % (url_host(host), port)],
                           stdout=out, stderr=subprocess.STDOUT, env=s.env, cwd=s.dir)
    # logrotate (Debian's) with the packaged rules, for this directory and this daemon: the
    # same file but the path, compress off (the test reads the old file) and the signal sent
    # to our pid rather than through systemd
    with open(os.path.join(REPO, "contrib", "portshare.logrotate")) as f:
        rules = f.read()
    rules = rules[:rules.index("}\n") + 2]  # the access log's stanza (the apps' logs are another's)
    rules = rules.replace("/var/log/portshare/*.log", s.path("*.log")).replace("\tcompress\n", "\tnocompress\n")
    rules = re.sub(r"create 0640 \S+ \S+", "create 0640 root root", rules)
    rules = re.sub(r"systemctl kill [^\n]*", "kill -USR1 %d" % d.pid, rules)
    with open(s.path("logrotate.conf"), "w") as f:
        f.write(rules)
    r = s.run(["logrotate", "-d", "-s", s.path("logrotate.state"), s.path("logrotate.conf")], timeout=30)
    check(r.returncode == 0 and "error:" not in r.stderr, "logrotate -d reads the rules", r.stderr[-500:])
    time.sleep(SECONDS / 2)
    mark = d.mark()
    r = s.run(["logrotate", "-f", "-s", s.path("logrotate.state"), s.path("logrotate.conf")], timeout=30)
    check_eq(r.returncode, 0, "logrotate -f (%s)" % r.stderr[-300:])
    d.wait_log(r"access log .* reopened", since=mark)
    try:
        wrk.wait(SECONDS + 20)
    except subprocess.TimeoutExpired:
        wrk.kill()
        fail("wrk did not finish")
    out.seek(0)
    text = out.read()
    say("  wrk:\n" + "\n".join("    | " + ln for ln in text.splitlines()))
    m = re.search(r"(\d+) requests in", text)
    check(m and int(m.group(1)) > 5000, "wrk made requests at full speed", text)
    check("Socket errors" not in text and "Non-2xx" not in text, "no socket error, no error answer")

    def served():
        st = d.status()
        return {"q%d" % i: find_queue(st, "q%d" % i)["served"] for i in range(WORKERS)}

    # the requests are counted when they end; their lines are written within a second or so
    time.sleep(0.5)
    want = served()
    check(wait_until(lambda: os.path.exists(log) and
                     parse(log, pids)[1] + parse(log + ".1", pids)[1] >= sum(want.values()), 5),
          "every line is written within a few seconds")
    old, n_old = parse(log + ".1", pids)
    new, n_new = parse(log, pids)
    say("  %d lines before the reopen, %d after; %d requests served" % (n_old, n_new, sum(want.values())))
    check(n_old > 0 and n_new > 0, "lines on both sides of the reopen")
    got = {q: old.get(q, 0) + new.get(q, 0) for q in want}
    check_eq(got, want, "each queue: lines in both files == requests it served (nothing lost, none twice)")
    check(all(n > 0 for n in want.values()), "all 20 workers served")
    check(d.alive(), "the daemon (seccomp filter loaded) lives")
