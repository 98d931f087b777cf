# driver.py: the measuring half of bench/run.sh (starts the servers, runs wrk in rotated rounds, samples /proc, prints the markdown table); run.sh calls it.
# Over TLS (scenarios t1, t3, t4b) every system serves https with run.sh's certificate in RUN/tls.
import argparse
import hashlib
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

CLK = os.sysconf("SC_CLK_TCK")
PROXIES = ("nginx", "haproxy", "h2o", "nginx-tls", "haproxy-tls", "h2o-tls", "ps-proxy")  # in front of the plain direct server
BODY = {"/13": 13, "/16k": 16 * 1024, "/1m": 1024 * 1024}
IDLE_CONNS = 10000
EXTRA_PREFIXES_SMALL = 10
EXTRA_PREFIXES_BIG = 10000
# the systems over TLS: the direct worker with GnuTLS, portshare, and proxies terminating TLS
# in front of the plain direct worker
TLS_SYSTEMS = ["direct-tls", "portshare-tls", "nginx-tls", "haproxy-tls", "h2o-tls"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc sampling

def cpu_busy_ticks():
    """Busy ticks per CPU: user+nice+system+irq+softirq (idle, iowait and steal excluded)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                out[int(m.group(1))] = v[0] + v[1] + v[2] + v[5] + v[6]
    return out


def tree(pid):
    """pid and all its descendants (nginx: master and worker)."""
    pids, todo = [], [pid]
    while todo and len(pids) < 64:
        p = todo.pop()
        pids.append(p)
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return pids


def proc_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError):
            pass
    return total


def rss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def foreign_ticks(mine):
    """CPU ticks of every process on the machine but ours (the driver and its descendants) and
    kernel threads: utime+stime+cutime+cstime, so that a process that exits between two samples
    still counts, through the parent that reaps it."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rindex(")") + 2:].split()
        if int(fields[6]) & 0x00200000:  # PF_KTHREAD
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total


# ---------------------------------------------------------------- processes

class Procs:
    """Every process the benchmark starts, stopped by its PID (never by name)."""

    def __init__(self, run):
        self.run = run
        self.p = {}  # name -> (Popen, log path)

    def start(self, name, argv, cpu=None, ready=None, timeout=30.0, env=None):
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        path = os.path.join(self.run, f"{name}.log")
        logf = open(path, "ab")
        logf.write(f"---- start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
        logf.flush()
        pr = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                              start_new_session=True, env=env)
        logf.close()
        self.p[name] = (pr, path)
        if ready:
            self.wait_for(name, ready, timeout)
        return pr.pid

    def wait_for(self, name, pattern, timeout):
        pr, path = self.p[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(path, errors="replace") as f:
                text = f.read().split("---- start")[-1]
            if callable(pattern):
                if pattern():
                    return
            elif re.search(pattern, text):
                return
            if pr.poll() is not None:
                raise RuntimeError(f"{name} exited with {pr.returncode}: {self.tail(name)}")
            time.sleep(0.05)
        raise RuntimeError(f"{name} not ready after {timeout} s: {self.tail(name)}")

    def pid(self, name):
        return self.p[name][0].pid

    def alive(self, name):
        return name in self.p and self.p[name][0].poll() is None

    def tail(self, name, n=12):
        try:
            with open(self.p[name][1], errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, name, grace=5.0):
        if name not in self.p:
            return None
        pr, _ = self.p.pop(name)
        if pr.poll() is None:
            try:
                os.kill(pr.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                pr.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(pr.pid, signal.SIGKILL)
                pr.wait(5)
        return pr.returncode

    def stop_all(self):
        for name in list(self.p)[::-1]:
            self.stop(name)


# ---------------------------------------------------------------- wrk

def to_us(v, unit):
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]


def parse_wrk(out):
    r = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not m:
        return None
    r["requests"] = int(m.group(1))
    r["duration"] = to_us(m.group(2), m.group(3)) / 1e6
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else r["requests"] / r["duration"]
    for q in ("50", "99"):
        m = re.search(q + r"%\s+([\d.]+)(us|ms|s|m)\b", out)
        r["p" + q] = to_us(m.group(1), m.group(2)) if m else None
    errs = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
        r["socket_errors"] = m.group(0)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errs += int(m.group(1))
        r["non2xx"] = int(m.group(1))
    r["errors"] = errs
    return r


# ---------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, a):
        self.a = a
        self.run = a.run
        self.procs = Procs(a.run)
        self.raw = open(os.path.join(a.run, "raw.jsonl"), "a")
        self.cells = []      # every measured cell
        self.incidents = []  # what went wrong, in order
        self.restarts = {}
        self.noisy = []      # cells where CPU 0 was busy with something else
        b = a.port_base
        self.port = {"direct": b + 1, "portshare": b + 2, "nginx": b + 3, "haproxy": b + 4,
                     "ps-10k": b + 5, "direct-unpinned": b + 6, "ps-2w-unpinned": b + 7,
                     "direct-tls": b + 8, "portshare-tls": b + 9, "nginx-tls": b + 10, "haproxy-tls": b + 11,
                     "h2o-tls": b + 12, "ps-proxy": b + 13, "h2o": b + 14}
        self.tls_seen = {}  # system -> what openssl s_client negotiated
        self.nofile = a.nofile
        self.deadline = time.monotonic() + a.time_limit

    # -- stacks: the processes behind each system

    def start_direct(self, name, pinned=True):
        tls = ["--tls-cert", f"{self.run}/tls/cert.pem", "--tls-key", f"{self.run}/tls/key.pem"] \
            if name in TLS_SYSTEMS else []
        self.procs.start(name, [f"{self.run}/bin/worker", "--direct", str(self.port[name])] + tls,
                         cpu=0 if pinned else None, ready=r"ready direct")

    def start_ps(self, sysname, extra, pinned=True, joiners=0):
        d, sock = f"{sysname}-daemon", f"{self.run}/{sysname}.sock"
        state = f"{self.run}/state-{sysname}"
        os.makedirs(state, exist_ok=True)
        if os.path.exists(sock):
            os.unlink(sock)
        self.procs.start(d, [f"{self.run}/bin/portshared", "--socket", sock, "--state-dir", state,
                             "--config", f"{self.run}/portshared.conf"],
                         cpu=0 if pinned else None, ready=lambda: os.path.exists(sock), timeout=15)
        scheme = "http"
        if sysname in TLS_SYSTEMS:
            scheme = "https"
            bind = subprocess.run([f"{self.run}/bin/portsharectl", "--socket", sock, "sslcert", "add", "--ipport",
                                   f"0.0.0.0:{self.port[sysname]}", "--cert", f"{self.run}/tls/cert.pem",
                                   "--key", f"{self.run}/tls/key.pem"], capture_output=True, text=True, timeout=30)
            if bind.returncode != 0:
                raise RuntimeError(f"portsharectl sslcert add: {bind.stderr.strip() or bind.stdout.strip()}")
        t0 = time.monotonic()
        self.procs.start(f"{sysname}-worker", [f"{self.run}/bin/worker", "--portshare",
                                               f"{scheme}://+:{self.port[sysname]}/", "--socket", sock,
                                               "--queue", "bench", "--prefixes", str(extra)],
                         cpu=0 if pinned else None, ready=r"ready portshare", timeout=120)
        if extra >= 1000:
            log(f"  {sysname}: {extra} prefixes registered in {time.monotonic() - t0:.1f} s")
        for j in range(joiners):
            self.procs.start(f"{sysname}-worker{j + 2}", [f"{self.run}/bin/worker", "--join", "bench",
                                                          "--socket", sock],
                             cpu=0 if pinned else None, ready=r"ready portshare")

    def start_ps_proxy(self, sysname):
        """portshared + portshare-proxy (its defaults) forwarding to the direct server, as nginx does."""
        d, sock = f"{sysname}-daemon", f"{self.run}/{sysname}.sock"
        state = f"{self.run}/state-{sysname}"
        os.makedirs(state, exist_ok=True)
        if os.path.exists(sock):
            os.unlink(sock)
        self.procs.start(d, [f"{self.run}/bin/portshared", "--socket", sock, "--state-dir", state,
                             "--config", f"{self.run}/portshared.conf"],
                         cpu=0, ready=lambda: os.path.exists(sock), timeout=15)
        argv = [f"{self.run}/bin/portshare-proxy", "--socket", sock, "--queue", "bench", "--url",
                f"http://+:{self.port[sysname]}/", "--backend", f"http://127.0.0.1:{self.port['direct']}"]
        self.procs.start(f"{sysname}-proxy", argv, cpu=0, ready=r"ready queue=")

    def start_nginx(self, name="nginx"):
        os.makedirs(f"{self.run}/nginx-tmp", exist_ok=True)
        self.procs.start(name, ["nginx", "-p", self.run, "-c", f"{self.run}/{name}.conf",
                                "-e", f"{self.run}/{name}-error.log"],
                         cpu=0, ready=lambda: self.port_open(self.port[name]))

    def start_haproxy(self, name="haproxy"):
        self.procs.start(name, ["haproxy", "-db", "-f", f"{self.run}/{name}.cfg"],
                         cpu=0, ready=lambda: self.port_open(self.port[name]))

    def start_h2o(self, name="h2o-tls"):
        # h2o forks a helper that does its private-key operations (neverbleed): it is in
        # the process tree sampled, like nginx's master and worker
        env = dict(os.environ, OPENSSL_CONF=f"{self.run}/tls/openssl.cnf")
        self.procs.start(name, ["h2o", "-c", f"{self.run}/{name}.conf"], cpu=0, env=env,
                         ready=lambda: self.port_open(self.port[name]))

    def stack(self, system):
        """(front process names, daemon name or None, app names) of a system."""
        return {
            "direct": (["direct"], None, ["direct"]),
            "portshare": (["portshare-daemon", "portshare-worker"], "portshare-daemon", ["portshare-worker"]),
            "nginx": (["nginx", "direct"], "nginx", ["direct"]),
            "haproxy": (["haproxy", "direct"], "haproxy", ["direct"]),
            "h2o": (["h2o", "direct"], "h2o", ["direct"]),
            "ps-10k": (["ps-10k-daemon", "ps-10k-worker"], "ps-10k-daemon", ["ps-10k-worker"]),
            "direct-unpinned": (["direct-unpinned"], None, ["direct-unpinned"]),
            "ps-2w-unpinned": (["ps-2w-unpinned-daemon", "ps-2w-unpinned-worker", "ps-2w-unpinned-worker2"],
                               "ps-2w-unpinned-daemon", ["ps-2w-unpinned-worker", "ps-2w-unpinned-worker2"]),
            # the proxy and the direct server behind it are the app, as the direct server is nginx's
            "ps-proxy": (["ps-proxy-daemon", "ps-proxy-proxy", "direct"], "ps-proxy-daemon",
                         ["ps-proxy-proxy", "direct"]),
            "direct-tls": (["direct-tls"], None, ["direct-tls"]),
            "portshare-tls": (["portshare-tls-daemon", "portshare-tls-worker"], "portshare-tls-daemon",
                              ["portshare-tls-worker"]),
            "nginx-tls": (["nginx-tls", "direct"], "nginx-tls", ["direct"]),
            "haproxy-tls": (["haproxy-tls", "direct"], "haproxy-tls", ["direct"]),
            "h2o-tls": (["h2o-tls", "direct"], "h2o-tls", ["direct"]),
        }[system]

    def restart(self, system):
        names = self.stack(system)[0]
        for n in names[::-1]:
            if system in PROXIES and n == "direct":
                continue
            self.procs.stop(n)
        if system in ("direct", "direct-tls"):
            self.start_direct(system)
        elif system == "direct-unpinned":
            self.start_direct("direct-unpinned", pinned=False)
        elif system == "portshare-tls":
            self.start_ps("portshare-tls", EXTRA_PREFIXES_SMALL)
        elif system in ("nginx-tls", "haproxy-tls"):
            (self.start_nginx if system == "nginx-tls" else self.start_haproxy)(system)
        elif system in ("h2o", "h2o-tls"):
            self.start_h2o(system)
        elif system == "portshare":
            self.start_ps("portshare", EXTRA_PREFIXES_SMALL)
        elif system == "ps-10k":
            self.start_ps("ps-10k", EXTRA_PREFIXES_BIG)
        elif system == "ps-2w-unpinned":
            self.start_ps("ps-2w-unpinned", 0, pinned=False, joiners=1)
        elif system == "ps-proxy":
            self.start_ps_proxy(system)
        elif system == "nginx":
            self.start_nginx()
        elif system == "haproxy":
            self.start_haproxy()

    def ensure_alive(self, system):
        dead = [n for n in self.stack(system)[0] if not self.procs.alive(n)]
        if not dead:
            return True
        for n in dead:
            if n in self.procs.p:
                pr = self.procs.p[n][0]
                self.incident(f"{n} (pid {pr.pid}) exited with status {pr.returncode} before a {system} cell; "
                              f"last log lines: {self.procs.tail(n)}")
        key = system
        self.restarts[key] = self.restarts.get(key, 0) + 1
        if self.restarts[key] > 3:
            return False
        if "direct" in dead and system in PROXIES:
            self.restart("direct")
        self.restart(system)
        return True

    def port_open(self, port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def tls_check(self, system):
        """What an OpenSSL client (wrk's library) negotiates with a TLS system: version, cipher,
        key exchange, and whether the server asked for another key share (HelloRetryRequest)."""
        argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{self.port[system]}", "-servername", "localhost",
                "-CAfile", f"{self.run}/tls/cert.pem", "-msg", "-brief"]
        try:
            out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
            text = out.stdout + out.stderr
        except subprocess.TimeoutExpired:
            text = ""
        field = lambda name: (re.search(rf"^{name}: (.*)$", text, re.M) or [None, "?"])[1].strip()
        hellos = len(re.findall(r"^>>> .*ClientHello", text, re.M))
        seen = (f"{field('Protocol version')} {field('Ciphersuite')}, {field('Server Temp Key')}, "
                f"{field('Signature type')}" + (", HelloRetryRequest" if hellos > 1 else ""))
        self.tls_seen[system] = seen
        if not seen.startswith("TLSv1.3 TLS_AES_128_GCM_SHA256"):
            self.incident(f"{system}: openssl s_client negotiated {seen} (expected TLSv1.3 TLS_AES_128_GCM_SHA256)")
        log(f"  {system}: {seen}")

    def incident(self, text):
        log("  !! " + text)
        self.incidents.append(f"{time.strftime('%H:%M:%S')} {text}")

    # -- one cell

    def url(self, system, path):
        return f"{'https' if system in TLS_SYSTEMS else 'http'}://127.0.0.1:{self.port[system]}{path}"

    def check(self, system, path, close):
        """curl: status 200 and exactly the expected body length."""
        url = self.url(system, path)
        argv = ["curl", "-s", "-o", "/dev/null", "--max-time", "10", "-w", "%{http_code} %{size_download}", url]
        if system in TLS_SYSTEMS:
            argv[1:1] = ["--cacert", f"{self.run}/tls/cert.pem"]
        if close:
            argv[1:1] = ["-H", "Connection: close"]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except subprocess.TimeoutExpired:
            out = "timeout"
        ok = out == f"200 {BODY[path]}"
        if not ok:
            self.incident(f"check failed: {system} {path}{' (Connection: close)' if close else ''}: "
                          f"curl got '{out}', expected '200 {BODY[path]}'")
        return ok

    def wrk(self, system, scn, seconds):
        argv = ["taskset", "-c", "1", "wrk", "-t1", f"-c{scn['conns']}", f"-d{seconds}s", "--latency"]
        if scn.get("close"):
            argv += ["-H", "Connection: close"]
        argv.append(self.url(system, scn["path"]))
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30).stdout
        except subprocess.TimeoutExpired:
            return None, "wrk timed out"
        return parse_wrk(out), out

    def sample(self, system):
        _, daemon, apps = self.stack(system)
        dp = tree(self.procs.pid(daemon)) if daemon and self.procs.alive(daemon) else []
        ap = [p for n in apps if self.procs.alive(n) for p in tree(self.procs.pid(n))]
        return {"t": time.monotonic(), "cpu": cpu_busy_ticks(), "d": proc_ticks(dp), "a": proc_ticks(ap),
                "drss": rss_kib(dp) if dp else None, "arss": rss_kib(ap),
                "f": foreign_ticks(set(tree(os.getpid())))}

    def cell(self, scn, system, rnd):
        if not self.ensure_alive(system):
            self.incident(f"{system}: gave up restarting it")
            return None
        if not self.check(system, scn["path"], scn.get("close")):
            return None
        self.wrk(system, scn, self.a.warmup)
        s0 = self.sample(system)
        r, out = self.wrk(system, scn, self.a.duration)
        s1 = self.sample(system)
        if not r:
            self.incident(f"{system} {scn['id']}: wrk gave no result: {out[-300:] if out else ''}")
            return None
        req = max(r["requests"], 1)
        busy0 = (s1["cpu"][0] - s0["cpu"][0]) / CLK
        busy_all = sum(s1["cpu"][c] - s0["cpu"][c] for c in s1["cpu"]) / CLK
        _, daemon, _ = self.stack(system)
        c = dict(scenario=scn["id"], system=system, round=rnd, **r,
                 srv_us=busy0 * 1e6 / req, all_us=busy_all * 1e6 / req,
                 cpu0_busy_pct=100 * busy0 / (s1["t"] - s0["t"]),
                 daemon_cpu_s=(s1["d"] - s0["d"]) / CLK if daemon else None,
                 daemon_us=(s1["d"] - s0["d"]) / CLK * 1e6 / req if daemon else None,
                 app_cpu_s=(s1["a"] - s0["a"]) / CLK,
                 daemon_rss_kib=s1["drss"], app_rss_kib=s1["arss"])
        # CPU time of the system's own processes (utime+stime) per request: unlike srv_us, it does
        # not grow with what other processes take of CPU 0 on a loaded machine
        c["proc_us"] = ((c["daemon_cpu_s"] or 0) + c["app_cpu_s"]) * 1e6 / req
        # CPU 0 time not accounted to this system's processes (softirq work, or another load)
        c["cpu0_unaccounted_pct"] = 100 * (busy0 - (c["daemon_cpu_s"] or 0) - c["app_cpu_s"]) / (s1["t"] - s0["t"])
        # CPU used meanwhile by processes that are not the benchmark's: another load on the machine
        c["foreign_cpu_pct"] = 100 * (s1["f"] - s0["f"]) / CLK / (s1["t"] - s0["t"])
        if c["foreign_cpu_pct"] > 5:
            self.noisy.append(f"{system} {scn['id']} r{rnd + 1} {c['foreign_cpu_pct']:.0f} %")
        if r["errors"]:
            self.incident(f"{system} {scn['id']} round {rnd + 1}: wrk reported {r['errors']} errors "
                          f"({r.get('socket_errors', '')}; non-2xx {r.get('non2xx', 0)}) over {r['requests']} requests")
        for n in self.stack(system)[0]:
            if not self.procs.alive(n):
                self.incident(f"{n} died during {system} {scn['id']} round {rnd + 1}: {self.procs.tail(n)}")
        self.cells.append(c)
        self.raw.write(json.dumps(c) + "\n")
        self.raw.flush()
        log(f"  r{rnd + 1} {scn['id']:>3} {system:<16} {c['rps']:>10.0f} req/s  p50 {c['p50'] or 0:7.0f} us  "
            f"p99 {c['p99'] or 0:7.0f} us  cpu0 {c['srv_us']:6.1f} us/req  err {c['errors']}")
        return c

    # -- scenario (5): idle connections

    def idle_cell(self, system, rnd):
        """Fresh processes, warm them, RSS, open IDLE_CONNS idle keep-alive connections, RSS,
        load with wrk (scenario (1)), RSS, close them."""
        if self.procs.alive("idle"):
            self.procs.stop("idle")
        self.restart(system)
        scn = {"id": "5", "path": "/13", "conns": 50}
        if not self.check(system, "/13", False):
            return None
        self.wrk(system, scn, self.a.warmup)
        time.sleep(0.5)
        front, daemon, apps = self.stack(system)
        holder = daemon or apps[0]
        hp = tree(self.procs.pid(holder))
        ap = [p for n in apps for p in tree(self.procs.pid(n))] if daemon else []
        rss0, arss0 = rss_kib(hp), rss_kib(ap)
        try:
            self.procs.start("idle", [f"{self.run}/bin/client", "--port", str(self.port[system]), "--path", "/13",
                                      "--idle", str(IDLE_CONNS), "--hold", "300"],
                             cpu=1, ready=r"ready \d+ idle", timeout=150)
        except RuntimeError as e:
            self.incident(f"{system} (5): idle holder failed: {e}")
            return None
        text = open(self.procs.p["idle"][1]).read().split("---- start")[-1]
        m = re.search(r"ready (\d+) idle connections \((\d+) failed\) in ([\d.]+) s", text)
        opened, failed, setup_s = int(m.group(1)), int(m.group(2)), float(m.group(3))
        if failed:
            self.incident(f"{system} (5): {failed} of {IDLE_CONNS} idle connections failed to open")
        time.sleep(1.0)
        rss1, arss1 = rss_kib(hp), rss_kib(ap)
        c = self.cell(scn, system, rnd) if self.ensure_alive(system) else None
        rss2, arss2 = rss_kib(hp), rss_kib(ap)
        self.procs.stop("idle")
        text = open(f"{self.run}/idle.log").read().split("---- start")[-1]
        m = re.search(r"(\d+) of (\d+) closed by the server", text)
        closed = int(m.group(1)) if m else None
        if closed:
            self.incident(f"{system} (5): the server closed {closed} of the {opened} idle connections while held")
        if c is None:
            return None
        n = max(opened, 1)
        c.update(idle_opened=opened, idle_setup_s=setup_s, idle_closed=closed,
                 rss0_kib=rss0, rss1_kib=rss1, rss2_kib=rss2,
                 grow_b=(rss1 - rss0) * 1024 / n, grow_load_b=(rss2 - rss0) * 1024 / n,
                 app_grow_b=(arss1 - arss0) * 1024 / n if daemon else None,
                 app_grow_load_b=(arss2 - arss0) * 1024 / n if daemon else None)
        self.raw.write(json.dumps(c) + "\n")
        self.raw.flush()
        log(f"     idle: {opened} open in {setup_s:.1f} s, front RSS {rss0} -> {rss1} -> {rss2} KiB "
            f"({c['grow_b']:.0f} B/conn)" + (f", worker RSS {arss0} -> {arss1} -> {arss2} KiB" if daemon else ""))
        return c

    # -- the whole run

    def main(self):
        a = self.a
        t_start = time.monotonic()
        bg = self.background()
        waited = 0
        while max(bg.values()) > 10 and waited < a.quiet_wait:
            log(f"background CPU busy: cpu0 {bg[0]:.0f}%, cpu1 {bg[1]:.0f}%: waiting for a quieter machine")
            time.sleep(4)
            waited += 5
            bg = self.background()
        log(f"background CPU busy before start: cpu0 {bg[0]:.0f}%, cpu1 {bg[1]:.0f}%")
        for name, port in self.port.items():
            if self.port_open(port):
                raise SystemExit(f"port {port} ({name}) is already in use: set BENCH_PORT_BASE")
        main_sys = ["direct", "portshare", "nginx", "haproxy"]
        proxy_sys = ["direct", "ps-proxy", "nginx", "haproxy", "h2o"]
        log("starting servers")
        self.start_direct("direct")
        self.start_ps("portshare", EXTRA_PREFIXES_SMALL)
        self.start_nginx()
        self.start_haproxy()
        if any(x.startswith("p") for x in a.scenarios):
            self.start_ps_proxy("ps-proxy")
            self.start_h2o("h2o")
        scenarios = [
            dict(id="1", path="/13", conns=50, systems=main_sys, rounds=a.rounds),
            dict(id="2", path="/13", conns=1, systems=main_sys, rounds=a.lat_rounds),
            dict(id="3", path="/13", conns=50, close=True, systems=main_sys, rounds=a.rounds),
            dict(id="4a", path="/16k", conns=50, systems=main_sys, rounds=a.rounds),
            dict(id="4b", path="/1m", conns=50, systems=main_sys, rounds=a.rounds),
            dict(id="6", path="/13", conns=50, systems=["portshare", "ps-10k"], rounds=a.rounds),
            dict(id="1u", path="/13", conns=50, systems=["direct-unpinned", "ps-2w-unpinned"], rounds=a.rounds),
            # the proxy for unmodified apps (docs/ADAPTERS.md) against nginx, HAProxy and h2o in front of
            # the same server
            dict(id="p1", path="/13", conns=50, systems=proxy_sys, rounds=a.rounds),
            dict(id="p3", path="/13", conns=50, close=True, systems=proxy_sys, rounds=a.rounds),
            dict(id="p4b", path="/1m", conns=50, systems=proxy_sys, rounds=a.rounds),
            dict(id="t1", path="/13", conns=50, systems=TLS_SYSTEMS, rounds=a.rounds),
            dict(id="t3", path="/13", conns=50, close=True, systems=TLS_SYSTEMS, rounds=a.rounds),
            dict(id="t4b", path="/1m", conns=50, systems=TLS_SYSTEMS, rounds=a.rounds),
        ]
        scenarios = [s for s in scenarios if s["id"] in a.scenarios]
        if any(s["id"] == "6" for s in scenarios):
            self.start_ps("ps-10k", EXTRA_PREFIXES_BIG)
        if any(s["id"] == "1u" for s in scenarios):
            self.start_direct("direct-unpinned", pinned=False)
            self.start_ps("ps-2w-unpinned", 0, pinned=False, joiners=1)
        if any(s["systems"] == TLS_SYSTEMS for s in scenarios):
            self.start_direct("direct-tls")
            self.start_ps("portshare-tls", EXTRA_PREFIXES_SMALL)
            self.start_nginx("nginx-tls")
            self.start_haproxy("haproxy-tls")
            self.start_h2o()
            for system in TLS_SYSTEMS:
                self.tls_check(system)
        self.scenarios = scenarios
        log(f"servers up after {time.monotonic() - t_start:.1f} s")
        max_rounds = max([s["rounds"] for s in scenarios] + [0])
        stopped_early = None
        for rnd in range(max_rounds):
            todo = [s for s in scenarios if s["rounds"] > rnd]
            k = rnd % len(todo)
            for scn in todo[k:] + todo[:k]:
                systems = scn["systems"]
                j = rnd % len(systems)
                for system in systems[j:] + systems[:j]:
                    if time.monotonic() > self.deadline:
                        stopped_early = f"time limit reached in round {rnd + 1}"
                        break
                    self.cell(scn, system, rnd)
        if "5" in a.scenarios and not stopped_early:
            for rnd in range(a.idle_rounds):
                j = rnd % len(main_sys)
                for system in main_sys[j:] + main_sys[:j]:
                    if time.monotonic() > self.deadline:
                        stopped_early = "time limit reached in scenario (5)"
                        break
                    self.idle_cell(system, rnd)
        if stopped_early:
            self.incident(stopped_early)
        elapsed = time.monotonic() - t_start
        md = self.report(bg, elapsed)
        with open(os.path.join(self.run, "results.md"), "w") as f:
            f.write(md)
        print(md)
        log(f"results: {self.run}/results.md ({elapsed:.0f} s)")

    def background(self):
        c0, t0 = cpu_busy_ticks(), time.monotonic()
        time.sleep(1.0)
        c1, t1 = cpu_busy_ticks(), time.monotonic()
        return {c: 100 * (c1[c] - c0[c]) / CLK / (t1 - t0) for c in c1}

    # ------------------------------------------------------------ the report

    def report(self, bg, elapsed):
        a = self.a
        L = []
        sha = hashlib.sha256(open(f"{self.run}/bin/portshared", "rb").read()).hexdigest()[:12]
        cpu = ""
        try:
            cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
        except StopIteration:
            pass
        L.append(f"## portshare benchmark, {a.mode} run, {time.strftime('%Y-%m-%d %H:%M %Z')}")
        L.append("")
        L.append(f"Machine: {os.cpu_count()} vCPU ({cpu}), kernel {platform.release()}; {a.versions}. "
                 f"portshared sha256 {sha}… (built {a.built}). Runs of {a.duration} s after a {a.warmup} s warm-up; "
                 f"{a.rounds} rounds ({a.lat_rounds} for latency, {a.idle_rounds} for idle connections), "
                 f"systems rotated each round; medians, (min–max) across rounds. "
                 f"Servers on CPU 0, `wrk -t1` on CPU 1. Background CPU before start: "
                 f"cpu0 {bg.get(0, 0):.0f} %, cpu1 {bg.get(1, 0):.0f} %. Took {elapsed / 60:.1f} min.")
        L.append("")
        L.append("Columns: **srv µs/req** = CPU 0 busy time (user+nice+system+irq+softirq, steal excluded, from "
                 "/proc/stat) / requests completed; **daemon** = portshared, nginx (master+worker) or HAProxy "
                 "(utime+stime from /proc/PID/stat over the timed run, RSS at its end); **app** = the worker "
                 "process(es) behind it (the direct server for direct, nginx and HAProxy); **proc µs/req** = "
                 "(daemon + app CPU) / requests, which other load on the machine does not inflate.")
        L.append("")
        titles = {
            "1": "(1) keep-alive, 13 B body, 50 connections",
            "2": "(2) keep-alive, 13 B body, 1 connection (latency)",
            "3": "(3) a new connection per request (`Connection: close`), 13 B, 50 connections "
                 "(rps is client-bound for everyone: compare srv µs/req)",
            "4a": "(4) 16 KiB body, keep-alive, 50 connections",
            "4b": "(4) 1 MiB body, keep-alive, 50 connections",
            "6": f"(6) scenario (1) with {EXTRA_PREFIXES_SMALL} vs {EXTRA_PREFIXES_BIG:,} extra prefixes "
                 f"registered (portshare = {EXTRA_PREFIXES_SMALL}, ps-10k = {EXTRA_PREFIXES_BIG:,})",
            "1u": "(1u) scenario (1) unpinned: servers on any CPU (wrk still on CPU 1), portshare with two "
                  "worker processes on the queue (the second joined with ps_queue_open); "
                  "µs/req here is busy time of all CPUs, wrk included",
            "5": f"(5) {IDLE_CONNS:,} idle keep-alive connections held open while wrk loads 50 more (13 B); "
                 "fresh processes each round",
            "p1": "(p1) proxy: keep-alive, 13 B body, 50 connections; ps-proxy = portshared + portshare-proxy "
                  "(its defaults) to the direct server; nginx `proxy_pass`, HAProxy and h2o "
                  "`proxy.reverse.url` to it",
            "p3": "(p3) proxy: a new connection per request (`Connection: close`), 13 B, 50 connections "
                  "(compare srv µs/req)",
            "p4b": "(p4b) proxy: 1 MiB body, keep-alive, 50 connections",
            "t1": "(t1) TLS 1.3, keep-alive, 13 B body, 50 connections",
            "t3": "(t3) TLS 1.3, a new connection per request (`Connection: close`; wrk resumes the session "
                  "from a ticket: PSK with X25519), 13 B, 50 connections (compare srv µs/req: server-core µs "
                  "per connection)",
            "t4b": "(t4b) TLS 1.3, 1 MiB body, keep-alive, 50 connections (req/s ratio = throughput ratio)",
        }
        order = [s["id"] for s in self.scenarios] + (["5"] if "5" in a.scenarios else [])
        first_tls = next((sid for sid in order if sid.startswith("t")), None)
        for sid in order:
            cells = [c for c in self.cells if c["scenario"] == sid]
            if not cells:
                L.append(f"### {titles[sid]}\n\nno measurement (see incidents)\n")
                continue
            systems = []
            for c in cells:
                if c["system"] not in systems:
                    systems.append(c["system"])
            pref = ["direct", "portshare", "ps-proxy", "nginx", "haproxy", "h2o", "ps-10k",
                    "direct-unpinned", "ps-2w-unpinned"] + TLS_SYSTEMS
            systems.sort(key=pref.index)
            L.append(f"### {titles[sid]}")
            L.append("")
            if sid == first_tls:
                L.append("TLS as an OpenSSL client (`openssl s_client`, the library wrk uses) negotiated it: " +
                         "; ".join(f"{x}: {self.tls_seen.get(x, 'not checked')}" for x in TLS_SYSTEMS) + ". "
                         "Certificate: ECDSA P-256, made by certtool for the run. The proxies talk plain HTTP/1.1 "
                         "to the plain direct server (keep-alive upstream).")
                L.append("")
            us_key = "all_us" if sid == "1u" else "srv_us"
            head = ["system", "req/s", "p50 µs", "p99 µs", "all-CPU µs/req" if sid == "1u" else "srv µs/req",
                    "proc µs/req", "daemon CPU s", "daemon µs/req", "app CPU s", "daemon RSS MiB", "errors"]
            if sid == "5":
                head += ["front RSS growth B/conn", "worker RSS growth B/conn"]
            L.append("| " + " | ".join(head) + " |")
            L.append("|" + "---|" * len(head))
            for s in systems:
                cs = [c for c in cells if c["system"] == s]
                row = [f"{s} (n={len(cs)})", med_rng(cs, "rps", fmt_rps), med(cs, "p50", "{:.0f}"),
                       med(cs, "p99", "{:.0f}"), med_rng(cs, us_key, lambda v: f"{v:.1f}"),
                       med_rng(cs, "proc_us", lambda v: f"{v:.1f}"), med(cs, "daemon_cpu_s", "{:.2f}"), med(cs, "daemon_us", "{:.2f}"),
                       med(cs, "app_cpu_s", "{:.2f}"),
                       med(cs, "daemon_rss_kib", "{:.1f}", scale=1 / 1024),
                       str(sum(c["errors"] for c in cs))]
                if sid == "5":
                    row += [med_rng(cs, "grow_load_b", lambda v: f"{v:.0f}"),
                            med_rng(cs, "app_grow_load_b", lambda v: f"{v:.0f}") if s == "portshare" else "—"]
                L.append("| " + " | ".join(row) + " |")
            # ratios, taken per round between cells of the same round
            proxy_pairs = [("ps-proxy", "direct"), ("nginx", "direct"), ("ps-proxy", "nginx"),
                           ("ps-proxy", "haproxy"), ("ps-proxy", "h2o")]
            pairs = {"6": [("ps-10k", "portshare")], "1u": [("ps-2w-unpinned", "direct-unpinned")],
                     "p1": proxy_pairs, "p3": proxy_pairs, "p4b": proxy_pairs}.get(
                sid, [("portshare", "direct"), ("portshare", "nginx"), ("portshare", "haproxy")])
            if sid.startswith("t"):
                pairs = [("portshare-tls", y) for y in TLS_SYSTEMS if y != "portshare-tls"]
            for x, y in pairs:
                rr = {k: ratios(cells, x, y, k) for k in ("rps", "p50", "p99", us_key, "proc_us")}
                if all(not v for v in rr.values()):
                    continue
                row = [f"**{x} / {y}**", fmt_ratio(rr["rps"]), fmt_ratio(rr["p50"]), fmt_ratio(rr["p99"]),
                       fmt_ratio(rr[us_key]), fmt_ratio(rr["proc_us"])] + [""] * (len(head) - 6)
                L.append("| " + " | ".join(row) + " |")
            if sid == "5":
                L.append("")
                for s in systems:
                    for c in [c for c in cells if c["system"] == s]:
                        L.append(f"- {s} round {c['round'] + 1}: {c.get('idle_opened', 0):,} idle connections opened "
                                 f"in {c.get('idle_setup_s', 0):.1f} s; front RSS {c.get('rss0_kib')} → "
                                 f"{c.get('rss1_kib')} (held 1 s) → {c.get('rss2_kib')} KiB (after the load) "
                                 f"= {c.get('grow_b', 0):.0f} / {c.get('grow_load_b', 0):.0f} B per connection"
                                 + (f"; worker {c.get('app_grow_b', 0):.0f} / {c.get('app_grow_load_b', 0):.0f} B "
                                    f"per connection" if s.startswith(("portshare", "ps-")) else "")
                                 + (f"; {c['idle_closed']} closed by the server while held" if c.get("idle_closed") else ""))
            L.append("")
        L += self.targets()
        L.append("### Incidents")
        L.append("")
        if self.noisy:
            L.append(f"- other processes on the machine used more than 5 % of a CPU during these cells "
                     f"(utime+stime+cutime+cstime of every process but the benchmark's; those cells are less "
                     f"reliable): {', '.join(self.noisy)}")
        L += [f"- {i}" for i in self.incidents] or ["- no failed check, no wrk error, no process died"]
        L.append("")
        return "\n".join(L)

    def targets(self):
        """The Targets tables of the Speed issues, for the scenarios measured in this run."""
        L = ["### Targets (issue 10), this run", "",
             "| scenario | target | measured | met |", "|---|---|---|---|"]
        kinds = {c["scenario"][0] if c["scenario"][0] in "tp" else "" for c in self.cells}

        def line(name, target, r, ok):
            if not r:
                L.append(f"| {name} | {target} | not measured | — |")
            else:
                L.append(f"| {name} | {target} | {fmt_ratio(r)} | {'yes' if ok(statistics.median(r)) else '**no**'} |")

        cells = self.cells
        sc = lambda sid: [c for c in cells if c["scenario"] == sid]
        line("(1) requests/s portshare/direct", "≥ 0.90", ratios(sc("1"), "portshare", "direct", "rps"),
             lambda v: v >= 0.90)
        line("(1) srv µs/req portshare/direct", "≤ 1.15", ratios(sc("1"), "portshare", "direct", "srv_us"),
             lambda v: v <= 1.15)
        line("(2) p50 latency portshare/direct", "≤ 1.15", ratios(sc("2"), "portshare", "direct", "p50"),
             lambda v: v <= 1.15)
        line("(3) srv µs per connection portshare/direct", "≤ 1.30",
             ratios(sc("3"), "portshare", "direct", "srv_us"), lambda v: v <= 1.30)
        line("(4) 1 MiB requests/s portshare/direct", "≥ 0.95", ratios(sc("4b"), "portshare", "direct", "rps"),
             lambda v: v >= 0.95)
        d16 = [c["daemon_us"] for c in sc("4a") if c["system"] == "portshare"]
        d1m = [c["daemon_us"] for c in sc("4b") if c["system"] == "portshare"]
        if d16 and d1m:
            L.append(f"| (4) daemon CPU per request, 16 KiB → 1 MiB | flat | "
                     f"{statistics.median(d16):.2f} → {statistics.median(d1m):.2f} µs | "
                     f"{'yes' if statistics.median(d1m) <= 1.2 * statistics.median(d16) + 0.5 else '**no**'} |")
        g = [c["grow_load_b"] for c in sc("5") if c["system"] == "portshare" and "grow_load_b" in c]
        if g:
            L.append(f"| (5) daemon RSS growth per idle connection | ≤ 2048 B | {statistics.median(g):.0f} B "
                     f"({min(g):.0f}–{max(g):.0f}) | {'yes' if statistics.median(g) <= 2048 else '**no**'} |")
        else:
            L.append("| (5) daemon RSS growth per idle connection | ≤ 2048 B | not measured | — |")
        line("(6) requests/s 10,000 vs 10 prefixes", "≥ 0.93", ratios(sc("6"), "ps-10k", "portshare", "rps"),
             lambda v: v >= 0.93)
        L.append("| daemon syscalls per delegated keep-alive request | ≤ 0.001 | see `sh bench/syscalls.sh` | |")
        L.append("")
        if "" not in kinds:
            L = []  # a run of proxy or TLS scenarios only: issue 10's table would say "not measured" throughout
        if "p" in kinds:
            L += ["### Targets of the proxy for unmodified apps (issue 19), this run", "",
                  "| scenario | target | measured | met |", "|---|---|---|---|"]
            for sid, what in (("p1", "keep-alive 13 B"), ("p4b", "keep-alive 1 MiB")):
                line(f"({sid}) {what} requests/s ps-proxy/nginx", "≥ 1.0",
                     ratios(sc(sid), "ps-proxy", "nginx", "rps"), lambda v: v >= 1.0)
                line(f"({sid}) {what} srv µs/req ps-proxy/nginx", "≤ 1.0",
                     ratios(sc(sid), "ps-proxy", "nginx", "srv_us"), lambda v: v <= 1.0)
                line(f"({sid}) {what} proc µs/req ps-proxy/nginx", "≤ 1.0",
                     ratios(sc(sid), "ps-proxy", "nginx", "proc_us"), lambda v: v <= 1.0)
            line("(p3) new connection per request srv µs/req ps-proxy/nginx", "≤ 1.3",
                 ratios(sc("p3"), "ps-proxy", "nginx", "srv_us"), lambda v: v <= 1.3)
            line("(p3) new connection per request proc µs/req ps-proxy/nginx", "≤ 1.3",
                 ratios(sc("p3"), "ps-proxy", "nginx", "proc_us"), lambda v: v <= 1.3)
            L.append("")
        if "t" not in kinds:
            return L
        L += ["### Targets over TLS (issue 18), this run", "",
              "| scenario | target | measured | met |", "|---|---|---|---|"]
        line("(t1) keep-alive requests/s portshare/direct TLS", "≥ 0.90",
             ratios(sc("t1"), "portshare-tls", "direct-tls", "rps"), lambda v: v >= 0.90)
        line("(t1) keep-alive requests/s portshare/nginx", "≥ 2.5",
             ratios(sc("t1"), "portshare-tls", "nginx-tls", "rps"), lambda v: v >= 2.5)
        line("(t4b) 1 MiB requests/s portshare/direct TLS", "≥ 0.90",
             ratios(sc("t4b"), "portshare-tls", "direct-tls", "rps"), lambda v: v >= 0.90)
        line("(t3) srv µs per new connection portshare/direct TLS", "≤ 1.15",
             ratios(sc("t3"), "portshare-tls", "direct-tls", "srv_us"), lambda v: v <= 1.15)
        # the same goals in CPU time of the server processes: where the server's CPU is what
        # limits, requests/s ≥ R× is CPU per request ≤ 1/R×; this holds on a loaded machine too
        line("(t1) proc µs/req portshare/direct TLS", "≤ 1.11 (= 1/0.90)",
             ratios(sc("t1"), "portshare-tls", "direct-tls", "proc_us"), lambda v: v <= 1 / 0.90)
        line("(t1) proc µs/req portshare/nginx", "≤ 0.40 (= 1/2.5)",
             ratios(sc("t1"), "portshare-tls", "nginx-tls", "proc_us"), lambda v: v <= 1 / 2.5)
        line("(t4b) proc µs/req portshare/direct TLS", "≤ 1.11 (= 1/0.90)",
             ratios(sc("t4b"), "portshare-tls", "direct-tls", "proc_us"), lambda v: v <= 1 / 0.90)
        line("(t3) proc µs per new connection portshare/direct TLS", "≤ 1.15",
             ratios(sc("t3"), "portshare-tls", "direct-tls", "proc_us"), lambda v: v <= 1.15)
        L.append("")
        return L


# ---------------------------------------------------------------- formatting

def values(cells, key):
    return [c[key] for c in cells if c.get(key) is not None]


def fmt_rps(v):
    return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"


def med(cells, key, fmt, scale=1.0):
    v = values(cells, key)
    return fmt.format(statistics.median(v) * scale) if v else "—"


def med_rng(cells, key, f):
    v = values(cells, key)
    if not v:
        return "—"
    if len(v) == 1:
        return f(v[0])
    return f"{f(statistics.median(v))} ({f(min(v))}–{f(max(v))})"


def ratios(cells, x, y, key):
    out = []
    for rnd in sorted({c["round"] for c in cells}):
        cx = [c for c in cells if c["round"] == rnd and c["system"] == x and c.get(key)]
        cy = [c for c in cells if c["round"] == rnd and c["system"] == y and c.get(key)]
        if cx and cy:
            out.append(cx[0][key] / cy[0][key])
    return out


def fmt_ratio(r):
    if not r:
        return "—"
    m = statistics.median(r)
    if len(r) == 1:
        return f"{m:.2f}×"
    return f"{m:.2f}× ({min(r):.2f}–{max(r):.2f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["quick", "full"], required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--port-base", type=int, default=18300)
    ap.add_argument("--nofile", type=int, default=20000)
    ap.add_argument("--versions", default="")
    ap.add_argument("--built", default="")
    ap.add_argument("--scenarios", default="")
    a = ap.parse_args()
    if a.mode == "quick":
        a.duration, a.warmup, a.rounds, a.lat_rounds, a.idle_rounds = 2, 1, 3, 3, 1
        a.time_limit = 300
        a.quiet_wait = 15
        default = "1,2,3,4b"
    else:
        a.duration, a.warmup, a.rounds, a.lat_rounds, a.idle_rounds = 10, 2, 3, 5, 3
        a.time_limit = 1620
        a.quiet_wait = 60
        default = "1,2,3,4a,4b,5,6,1u"
    a.scenarios = (a.scenarios or default).split(",")
    b = Bench(a)

    def on_signal(sig, frame):
        raise SystemExit(f"stopped by signal {sig}")

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        b.main()
    finally:
        b.procs.stop_all()


if __name__ == "__main__":
    main()
