# 126-status-watch: portsharectl status --watch 1 --count 3, piped, under a paced load of known rates: a hello queue (200s on keep-alive), a proxy queue whose backend is down (502s from the worker), a persistent queue with no worker (503 AppOffline from the daemon) and 404s: each view's requests/s, errors/s, depth and workers per queue and for the daemon's own answers are within a sane range of what the clients did; three blocks, no escape codes off a terminal, the screen redrawn on one; SIGINT ends it with status 0; bad arguments are usage errors. Also with PORTSHARE_DEFAULTS=1.
import re
import signal
import subprocess
import threading
import time

from harness import (Proc, Story, check, check_eq, find_queue, get_req, request_once, say, wait_until)

LOAD_SECONDS = 5.0
VIEWS = 3
ROW = re.compile(r"^  (\S+)\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+|-)\s+(\d+|-)$")


class Paced(threading.Thread):
    """Requests at a fixed period for LOAD_SECONDS; records when each one was answered and with what."""

    def __init__(self, s, port, host, path, period, keep_alive):
        threading.Thread.__init__(self, daemon=True)
        self.s, self.port, self.host, self.path, self.period, self.keep_alive = s, port, host, path, period, keep_alive
        self.done = []  # (monotonic time, status)
        self.errors = 0

    def run(self):
        conn = None
        t0 = time.monotonic()
        due = t0
        for i in range(int(LOAD_SECONDS / self.period)):
            time.sleep(max(0.0, due - time.monotonic()))
            due += self.period
            req = get_req("%s%d" % (self.path, i))
            try:
                if self.keep_alive:
                    conn = conn or self.s.conn(self.port, self.host)
                    r = conn.request(req)
                else:
                    r = request_once(self.port, req, host=self.host)
                self.done.append((time.monotonic(), r.status))
            except Exception:  # counted, and the story fails on it below
                self.errors += 1
                conn = None

    def rate(self, start, end, status):
        n = sum(1 for t, st in self.done if start <= t <= end and st == status)
        return n / (end - start)


def views(text):
    """The blocks of the view: a list of {queue: (req/s, err/s, depth, workers)}."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        check(lines and re.match(r"portshared pid \d+, \d\d:\d\d:\d\d, over the last \d+\.\d s:$", lines[0]),
              "a view starts with its header line", repr(lines[:1]))
        rows = {}
        for line in lines[2:]:
            m = ROW.match(line)
            check(m is not None, "a row of the view parses", repr(line))
            rows[m.group(1)] = (float(m.group(2)), float(m.group(3)), m.group(4), m.group(5))
        out.append(rows)
    return out


def near(got, want, what):
    """A rate within 35 % (and 3/s) of what the clients did."""
    check(abs(got - want) <= max(3.0, 0.35 * want), "%s: %.1f/s, the clients did %.1f/s" % (what, got, want))


with Story(time_limit=100) as s:
    d = s.daemon()
    port = s.free_port()
    host = s.hosts[-1]
    down = s.free_port()  # nothing listens there: the proxy answers 502
    s.hello(["http://+:%d/w/" % port], queue="hw", text="watch")
    px = Proc(s, [s.bin("portshare-proxy"), "--socket", d.sock, "--queue", "px", "--url", "http://+:%d/p/" % port,
                  "--backend", "http://127.0.0.1:%d" % down], "proxy")
    check(wait_until(lambda: find_queue(d.status(), "px") is not None and find_queue(d.status(), "px")["urls"], 10),
          "the proxy registered its queue")
    off = s.testworker(["http://+:%d/o/" % port], queue="off", persistent=True, mode="noreceive")
    off.stop()
    wait_until(lambda: not (find_queue(d.status(), "off") or {}).get("workers"), 5)

    loads = {
        "hw": Paced(s, port, host, "/w/", 0.01, True),     # 100/s, 200
        "px": Paced(s, port, host, "/p/", 0.05, True),     # 20/s, 502
        "off": Paced(s, port, host, "/o/", 0.1, False),    # 10/s, 503 AppOffline
        "none": Paced(s, port, host, "/none/", 0.1, False),  # 10/s, 404 from the daemon
    }
    for l in loads.values():
        l.start()
    time.sleep(0.6)
    start = time.monotonic()
    r = d.ctl("status", "--watch", "1", "--count", str(VIEWS), timeout=20)
    end = time.monotonic()
    for l in loads.values():
        l.join(LOAD_SECONDS + 10)
    check_eq(r.returncode, 0, "status --watch 1 --count 3 exit status")
    say("  the view:\n" + "\n".join("    " + line for line in r.stdout.splitlines()))
    check("\033" not in r.stdout, "no escape codes when stdout is not a terminal")
    for name, l in loads.items():
        check_eq(l.errors, 0, "%s: client errors" % name)
    v = views(r.stdout)
    check_eq(len(v), VIEWS, "views printed")
    check(end - start >= VIEWS - 0.1, "three views took three seconds (%.2f s)" % (end - start))

    # the clients' rates over the watch's time (the first snapshot is taken at its start)
    want = {
        "hw": loads["hw"].rate(start, end, 200),
        "px": loads["px"].rate(start, end, 502),
        "off": loads["off"].rate(start, end, 503),
        "none": loads["none"].rate(start, end, 404),
    }
    say("  client rates over the watch: %s" % ", ".join("%s %.1f/s" % kv for kv in want.items()))
    check(want["hw"] > 50 and want["px"] > 10 and want["off"] > 5 and want["none"] > 5,
          "the load ran at about its pace", repr(want))
    for k, rows in enumerate(v, 1):
        for q in ("hw", "px", "off", "(daemon)"):
            check(q in rows, "view %d has a row for %s" % (k, q), repr(rows))
        near(rows["hw"][0], want["hw"], "view %d, hw requests" % k)
        check_eq(rows["hw"][1], 0.0, "view %d, hw errors/s" % k)
        check_eq(rows["hw"][3], "1", "view %d, hw workers" % k)
        near(rows["px"][0], want["px"], "view %d, px requests (502s)" % k)
        near(rows["px"][1], want["px"], "view %d, px errors (its worker's 5xx)" % k)
        near(rows["off"][0], want["off"], "view %d, off requests (refused)" % k)
        near(rows["off"][1], want["off"], "view %d, off errors (the daemon's 503s)" % k)
        check_eq(rows["off"][2:], ("0", "0"), "view %d, off depth and workers" % k)
        near(rows["(daemon)"][0], want["none"], "view %d, the daemon's own answers (404s, no queue)" % k)
        near(rows["(daemon)"][1], want["none"], "view %d, the daemon's own errors" % k)
        for q in ("hw", "px", "off"):
            check_eq(rows[q][2], "0", "view %d, %s depth" % (k, q))

    # on a terminal: the screen is cleared and the view drawn at the top, each time
    r = s.run(["script", "-qec", "%s --socket %s status --watch 0.2 --count 2" % (s.bin("portsharectl"), d.sock),
               "/dev/null"], timeout=20)
    check_eq(r.returncode, 0, "status --watch on a terminal (script) exit status")
    check_eq(r.stdout.count("\033[H\033[2J"), 2, "on a terminal each view clears the screen first")

    # SIGINT ends an endless view, status 0
    w = Proc(s, [s.bin("portsharectl"), "--socket", d.sock, "status", "--watch", "0.2"], "watch")
    w.wait_for(r"QUEUE", timeout=5)
    w.signal(signal.SIGINT)
    check_eq(w.wait(3), 0, "status --watch after SIGINT: exit status")

    for args, what in ((["--watch", "0"], "a zero interval"), (["--watch", "x"], "a word for the interval"),
                       (["--watch", "--json"], "--json with it"), (["--count", "2"], "--count without --watch"),
                       (["--watch", "--count", "1.5"], "a count that is not whole")):
        r = d.ctl("status", *args)
        check(r.returncode == 2 and "portsharectl: status" in r.stderr, "status %s: a usage error (%s)"
              % (" ".join(args), what), "exit %d, stderr %r" % (r.returncode, r.stderr))
