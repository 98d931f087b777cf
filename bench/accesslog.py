"""accesslog.py: what the access log and the metrics cost (issue 20), measured side by side in one run:
keep-alive 13 B requests/s and server-core µs per request with AccessLog off and on (nginx serving the
same body with its access log off and on, for reference), the daemon's syscalls per delegated request
with the log and MetricsListen on (strace -c on every thread, a scrape each second), and the worker's
instructions per request with the log off and on (callgrind). Run through bench/accesslog.sh."""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

BODY = "Hello, World!"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu0_busy():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu0 "):
                v = [int(x) for x in line.split()[1:]]
                return v[0] + v[1] + v[2] + v[5] + v[6]
    return 0


class Procs:
    """Every process this run started, stopped by PID at the end."""

    def __init__(self, run):
        self.run, self.procs = run, []

    def start(self, name, argv, env=None, cpu="0"):
        out = open(os.path.join(self.run, name + ".log"), "w")
        p = subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=out, stderr=subprocess.STDOUT,
                             env=dict(os.environ, **(env or {})))
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def wait_file(path, pattern, seconds=20):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with open(path) as f:
                if re.search(pattern, f.read()):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("accesslog.py: no %r in %s" % (pattern, path))


def check_body(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/13" % port, timeout=5) as r:
        body = r.read().decode()
    if body != BODY:
        raise SystemExit("accesslog.py: port %d answers %r, not the 13-byte body" % (port, body))


def wrk(port, seconds, conns=50):
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds,
                          "http://127.0.0.1:%d/13" % port], capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"(\d+) requests in", out.stdout)
    if not m or "Socket errors" in out.stdout or "Non-2xx" in out.stdout:
        raise SystemExit("accesslog.py: wrk on port %d:\n%s" % (port, out.stdout))
    return int(m.group(1))


def measure(port, seconds):
    """requests/s and server-core µs per request (CPU 0's busy time / requests)."""
    wrk(port, 2)  # warm-up
    c0, t0 = cpu0_busy(), time.monotonic()
    n = wrk(port, seconds)
    c1, t1 = cpu0_busy(), time.monotonic()
    hz = os.sysconf("SC_CLK_TCK")
    return n / (t1 - t0), (c1 - c0) / hz * 1e6 / n


def portshare(procs, run, name, port, extra):
    state = os.path.join(run, name + "-state")
    os.makedirs(state, exist_ok=True)
    conf = os.path.join(run, name + ".conf")
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1\n" + "".join(x + "\n" for x in extra))
    sock = os.path.join(run, name + ".sock")
    d = procs.start(name, [os.path.join(run, "bin", "portshared"), "--socket", sock, "--state-dir", state,
                           "--config", conf, "--threads", "1"])
    wait_file(os.path.join(run, name + ".log"), "ready")
    return d, sock


def worker(procs, run, name, port, sock, under=()):
    w = procs.start(name, list(under) + [os.path.join(run, "bin", "worker"), "--portshare",
                                         "http://+:%d/" % port, "--socket", sock])
    wait_file(os.path.join(run, name + ".log"), "ready", 60)
    time.sleep(0.2)  # the route snapshot: delegation from the first request
    return w


def nginx(procs, run, name, port, access_log):
    conf = os.path.join(run, name + ".conf")
    with open(conf, "w") as f:
        f.write("""daemon off; master_process on; worker_processes 1; pid %(run)s/%(name)s.pid;
error_log %(run)s/%(name)s-error.log warn;
events { worker_connections 4096; }
http {
    %(log)s
    client_body_temp_path %(run)s/nginx-tmp/body; proxy_temp_path %(run)s/nginx-tmp/proxy;
    fastcgi_temp_path %(run)s/nginx-tmp/fastcgi; uwsgi_temp_path %(run)s/nginx-tmp/uwsgi;
    scgi_temp_path %(run)s/nginx-tmp/scgi;
    keepalive_timeout 300s; keepalive_requests 1000000;
    server { listen 127.0.0.1:%(port)d backlog=4096;
             location = /13 { default_type text/plain; return 200 "%(body)s"; } }
}
""" % {"run": run, "name": name, "port": port, "body": BODY,
       "log": ("access_log %s/%s-access.log combined;" % (run, name)) if access_log else "access_log off;"})
    os.makedirs(os.path.join(run, "nginx-tmp"), exist_ok=True)
    p = procs.start(name, ["nginx", "-p", run, "-c", conf, "-e", os.path.join(run, name + "-error.log")])
    time.sleep(0.5)
    return p


def served(metrics_port):
    """Requests answered so far, by the daemon's own metrics (a scrape)."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=5) as r:
        text = r.read().decode()
    return sum(int(float(v)) for v in re.findall(r'^portshare_requests_total\{queue="[^"(]*",code="\w+"\} (\S+)$',
                                                  text, re.M))


def syscalls(run, daemon, port, metrics_port, seconds):
    """The daemon's syscalls per request in the steady state: wrk's connections made first, then every
    thread traced for `seconds`, /metrics scraped at its start, middle and end (the requests counted
    by the first and last scrape; all three are traced, a busier rate than Prometheus's 15 s)."""
    w = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", "-c50", "-d%ds" % (seconds + 5),
                          "http://127.0.0.1:%d/13" % port], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    tids = ",".join(os.listdir("/proc/%d/task" % daemon.pid))
    out = os.path.join(run, "strace.out")
    st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", tids], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    n0 = served(metrics_port)
    time.sleep(seconds / 2)
    served(metrics_port)
    time.sleep(seconds / 2)
    n1 = served(metrics_port)
    scrapes = 3
    st.send_signal(signal.SIGINT)
    st.wait(10)
    w.communicate(timeout=seconds + 30)
    with open(out) as f:
        table = f.read()
    m = re.search(r"^-+.*\n\s*100\.00\s+\S+\s+\S+\s+(\d+)", table, re.M)
    total = int(m.group(1)) if m else None
    return n1 - n0, total, scrapes, table


def instructions(run, procs, sock, port, name, n_warm=500, n=2000):
    """The worker's instructions per request (callgrind, counters zeroed after a warm-up)."""
    cg = os.path.join(run, "cg.%s" % name)
    w = worker(procs, run, name, port, sock,
               under=("valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg + ".%p"))
    client = os.path.join(run, "bin", "client")
    subprocess.run([client, "--port", str(port), "--path", "/13", "--count", str(n_warm), "--expect", "13"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(["callgrind_control", "-z", str(w.pid)], check=True, capture_output=True, timeout=60)
    subprocess.run([client, "--port", str(port), "--path", "/13", "--count", str(n), "--expect", "13"],
                   check=True, capture_output=True, timeout=300)
    subprocess.run(["callgrind_control", "-d", str(w.pid)], check=True, capture_output=True, timeout=60)
    procs.stop(w)
    total = 0
    for f in os.listdir(run):
        if f.startswith("cg.%s." % name) and "." in f[len("cg.%s." % name):]:
            with open(os.path.join(run, f)) as fh:
                m = re.search(r"^summary:\s+(\d+)", fh.read(), re.M)
            if m:
                total = int(m.group(1))
    return total / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--port-base", type=int, default=18400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    run, pb = a.run, a.port_base
    procs = Procs(run)
    try:
        d_off, s_off = portshare(procs, run, "ps-off", pb + 1, [])
        d_on, s_on = portshare(procs, run, "ps-on", pb + 2,
                               ["AccessLog %s/access.log" % run, "MetricsListen 127.0.0.1:%d" % (pb + 9)])
        worker(procs, run, "w-off", pb + 1, s_off)
        worker(procs, run, "w-on", pb + 2, s_on)
        nginx(procs, run, "nginx-off", pb + 3, False)
        nginx(procs, run, "nginx-on", pb + 4, True)
        cases = [("portshare, log off", pb + 1), ("portshare, AccessLog on", pb + 2),
                 ("nginx static, access_log off", pb + 3), ("nginx static, access_log on", pb + 4)]
        for _, port in cases:
            check_body(port)
        res = {c: [] for c, _ in cases}
        for rnd in range(a.rounds):
            order = cases[rnd % len(cases):] + cases[:rnd % len(cases)]
            for c, port in order:
                rps, us = measure(port, a.seconds)
                res[c].append((rps, us))
                log("round %d: %-30s %9.0f req/s %6.2f µs/request" % (rnd + 1, c, rps, us))
        med = {c: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for c, v in res.items()}
        lines = subprocess.run(["wc", "-l", os.path.join(run, "access.log")], capture_output=True,
                               text=True).stdout.split()[0]
        n, total, scrapes, table = syscalls(run, d_on, pb + 2, pb + 9, a.seconds)
        log(table)
        procs.stop(procs.procs[2])  # the plain workers go: callgrind's take their queues' place
        procs.stop(procs.procs[3])
        i_off = instructions(run, procs, s_off, pb + 1, "cg-off")
        i_on = instructions(run, procs, s_on, pb + 2, "cg-on")
    finally:
        procs.stop_all()

    off, on = med["portshare, log off"], med["portshare, AccessLog on"]
    noff, non = med["nginx static, access_log off"], med["nginx static, access_log on"]
    print("| keep-alive, 50 connections, 13 B (medians of %d rounds of %d s) | requests/s | server-core µs/request |"
          % (a.rounds, a.seconds))
    print("|---|---|---|")
    for c in res:
        print("| %s | %.0f | %.2f |" % (c, med[c][0], med[c][1]))
    print("| **portshare log on / off** | **%.2f×** | %.2f× |" % (on[0] / off[0], on[1] / off[1]))
    print("| nginx log on / off | %.2f× | %.2f× |" % (non[0] / noff[0], non[1] / noff[1]))
    print()
    print("Daemon syscalls with AccessLog and MetricsListen on (strace -c -f, every thread, wrk -c50 %d s, "
          "/metrics scraped %d times in it): %s syscalls for %d requests = **%.5f per request**" %
          (a.seconds, scrapes, total, n, (total or 0) / n))
    print("Access-log lines written in the run: %s" % lines)
    print()
    print("Worker instructions per delegated request (callgrind, 2,000 requests on one connection after 500): "
          "log off %.0f, log on %.0f (**%+.1f %%**)" % (i_off, i_on, (i_on / i_off - 1) * 100))


if __name__ == "__main__":
    main()
