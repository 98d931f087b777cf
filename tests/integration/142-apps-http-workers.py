# 142-apps-http-workers: `portsharectl app add … --workers 3 -- python3 pidserver.py {port}` (an unmodified HTTP server) is a web garden too: three processes of the command as a throwaway user, each on a loopback port of its own, all started by the first request, behind the app's one proxy, which sends each request to the process with the fewest in progress (none goes to one busy with a slow request; requests in a row take turns); one SIGKILLed gets no request while it is down (every request in the second after it exited answered by the others) and is started again on its own port; an overlapped `app restart` under a bounded load loop (keep-alive and not) starts a new set of three on new ports and switches once all three accept, with 0 failed requests; the idle timeout stops all three; a request that comes while every process is down (the one that accepted killed, the other still starting) waits for the other instead of a 502; gunicorn on {socket} with --workers 2 runs two on sockets of their own; --workers 17 of a command is refused, a --backend queue's --workers still bounds its requests in progress. Needs root. Also with PORTSHARE_DEFAULTS=1.
import http.client
import os
import re
import shutil
import signal
import tempfile
import threading
import time

from apps_help import PIDSERVER, loads, loads_end, pid_alive, show, supervised_user
from harness import Story, check, check_eq, wait_until
from proxy_help import gunicorn

N = 3
DEBIAN_PYTHON = "/usr/bin/python3"  # one the throwaway user may run


def get_pid(port, path, timeout=10):
    """One request on a new connection: (status, the pid that answered or None)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, int(body) if r.status == 200 and body.isdigit() else None
    finally:
        c.close()


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


def zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def ports_of(app):
    return [int(x.rsplit(":", 1)[1]) for x in app["backend"].split(", ")]


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    # what the apps run, readable by the throwaway user
    pub = tempfile.mkdtemp(prefix="ps142-")
    os.chmod(pub, 0o755)
    for name, text in (("pidserver.py", PIDSERVER),
                       ("wsgipid.py", "import os\n"
                                      "def app(environ, start_response):\n"
                                      "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                                      "    return [str(os.getpid()).encode()]\n")):
        with open(os.path.join(pub, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(pub, name), 0o644)
    server = [DEBIAN_PYTHON, os.path.join(pub, "pidserver.py"), "{port}"]
    with supervised_user(s, d, "ps142u") as (user, uid, sup, ctl):
        r = s.run(ctl + ["app", "add", "pw", "--url", "http://+:%d/pw/" % port, "--strip-prefix", "--user", user,
                         "--workers", str(N), "--idle-timeout", "4", "--"] + server)
        check_eq(r.returncode, 0, "app add pw --workers %d -- python3 pidserver.py {port}: %s" % (N, r.stderr.strip()))
        a = show(s, ctl)["pw"]
        check(a["state"] == "idle" and not a["pids"] and a["processes"] == N,
              "before the first request: idle, no process, %d to run" % N, repr(a))
        ports = ports_of(a)
        check(len(set(ports)) == N, "a loopback port of its own for each: %s" % a["backend"])

        # the first request starts all three
        check_eq(get_pid(port, "/pw/first")[0], 200, "the first request is answered")
        check(wait_until(lambda: len(show(s, ctl)["pw"]["pids"]) == N, 10), "all %d started" % N)
        pids = sorted(show(s, ctl)["pw"]["pids"])
        check(all(uid_of(p) == uid for p in pids), "all run as %s: %s" % (user, pids))
        check(wait_until(lambda: {get_pid(port, "/pw/warm")[1] for _ in range(3 * N)} == set(pids), 10, 0.2),
              "requests in a row reach each of the %d once it accepts" % N)

        # the fewest requests in progress: none goes to the process busy with a slow one
        # (turns alone would give it one in three)
        got = []
        slow = threading.Thread(target=lambda: got.append(get_pid(port, "/pw/slow?1.5")[1]))
        slow.start()
        time.sleep(0.3)
        beside = [get_pid(port, "/pw/beside")[1] for _ in range(4 * N)]
        slow.join(10)
        check(len(got) == 1 and got[0] in pids and got[0] not in beside and set(beside) == set(pids) - set(got),
              "while one process serves a slow request, the %d others answer: slow %s, beside %s"
              % (N - 1, got, beside))
        seq = [get_pid(port, "/pw/turn")[1] for _ in range(2 * N)]
        check_eq(set(seq), set(pids), "requests in a row take turns: %s" % seq)

        # one killed: the others answer meanwhile; it is started again alone
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        # its listening socket is closed once it has exited (a zombie, or reaped already)
        check(wait_until(lambda: not pid_alive(victim) or zombie(victim), 5, 0.002), "pid %d exited" % victim)
        t0 = time.monotonic()
        statuses = []
        while time.monotonic() - t0 < 1.0:
            st, pid = get_pid(port, "/pw/meanwhile")
            statuses.append((st, pid))
        check(all(st == 200 and pid in pids and pid != victim for st, pid in statuses),
              "while it is down, %d requests answered by the other two" % len(statuses),
              repr([x for x in statuses if x[0] != 200 or x[1] == victim][:5]))
        check(wait_until(lambda: len(show(s, ctl)["pw"]["pids"]) == N and victim not in show(s, ctl)["pw"]["pids"],
                         10), "started again on its own: %s" % show(s, ctl)["pw"]["pids"])
        again = sorted(show(s, ctl)["pw"]["pids"])
        check_eq(show(s, ctl)["pw"]["crashes"], 1, "the kill counts as a crash")
        check_eq(ports_of(show(s, ctl)["pw"]), ports, "on the same ports")
        check(wait_until(lambda: {get_pid(port, "/pw/back")[1] for _ in range(3 * N)} == set(again), 10, 0.2),
              "the new one takes requests once it accepts")

        # overlapped restart under load
        stop, loops, results = loads(port, "/pw/load", 4)
        time.sleep(0.5)
        r = s.run(ctl + ["app", "restart", "pw"])
        check(r.returncode == 0 and "restarting" in r.stdout, "app restart pw: %s" % r.stdout.strip())
        new = sorted(int(x) for x in re.search(r"new pid ([\d, ]+) on", r.stdout).group(1).split(", "))
        check(len(new) == N and not set(new) & set(again), "a new set of %d: %s" % (N, new))
        check(wait_until(lambda: sorted(show(s, ctl)["pw"]["pids"]) == new, 15) and
              wait_until(lambda: not any(pid_alive(p) for p in again), 10),
              "the new set serves, the old set is gone")
        new_ports = ports_of(show(s, ctl)["pw"])
        check(len(set(new_ports)) == N and not set(new_ports) & set(ports), "on new ports: %s" % new_ports)
        check("the new pid %s accepts on" % ", ".join(str(p) for p in show(s, ctl)["pw"]["pids"]) in sup.stderr(),
              "the supervisor switched to the whole new set")
        time.sleep(1)
        seen = loads_end(stop, loops, results, "overlapped restart under 4 clients (keep-alive and not)")
        check(seen <= set(again) | set(new) and set(new) <= seen, "answered by the old set, then by all the new")

        # the idle timeout stops them all
        check(wait_until(lambda: show(s, ctl)["pw"]["state"] == "idle" and not any(pid_alive(p) for p in new), 15),
              "idle stop: all %d stopped" % N)
        check_eq(get_pid(port, "/pw/wake")[0], 200, "the next request starts the app again")
        check(wait_until(lambda: len(show(s, ctl)["pw"]["pids"]) == N, 10), "all %d again" % N)

        # {socket}: gunicorn, two of it on sockets of their own
        r = s.run(ctl + ["app", "add", "gw", "--url", "http://+:%d/gw/" % port, "--strip-prefix", "--user", user,
                         "--workers", "2", "--", gunicorn(s), "--bind", "unix:{socket}", "--chdir", pub,
                         "wsgipid:app"])
        check_eq(r.returncode, 0, "app add gw --workers 2 -- gunicorn --bind unix:{socket}: %s" % r.stderr.strip())
        socks = show(s, ctl)["gw"]["backend"].split(", ")
        check(len(socks) == 2 and all(x.startswith("unix:") for x in socks) and socks[0] != socks[1],
              "two sockets: %s" % socks)
        check_eq(get_pid(port, "/gw/first")[0], 200, "gunicorn's first request")
        check(wait_until(lambda: len({get_pid(port, "/gw/x")[1] for _ in range(6)}) == 2, 15, 0.3),
              "two gunicorns answer (their workers' pids differ)")

        # every process down while the app runs (the one that accepted died, the other is
        # still starting): a request waits as during a start, then the other answers it
        marks = os.path.join(pub, "marks")
        os.mkdir(marks)
        os.chown(marks, uid, -1)
        slow_second = ["/bin/sh", "-c", 'mkdir "$2/first" 2>/dev/null || sleep 2; exec "$3" "$4" "$1"', "sh",
                       "{port}", marks, DEBIAN_PYTHON, os.path.join(pub, "pidserver.py")]
        r = s.run(ctl + ["app", "add", "dn", "--url", "http://+:%d/dn/" % port, "--strip-prefix", "--user", user,
                         "--workers", "2", "--"] + slow_second)
        check_eq(r.returncode, 0, "app add dn --workers 2 (the second waits 2 s before it listens): %s"
                 % r.stderr.strip())
        st, first = get_pid(port, "/dn/first")
        check(st == 200 and first, "the first of dn answers at once (%s)" % st)
        os.kill(first, signal.SIGKILL)
        check(wait_until(lambda: not pid_alive(first), 5, 0.005), "dn's only accepting process is gone")
        t0 = time.monotonic()
        st, other = get_pid(port, "/dn/held", timeout=15)
        check(st == 200 and other not in (None, first), "a request meanwhile waits for the other process (%s, "
              "pid %s, %.1f s), no 502" % (st, other, time.monotonic() - t0))

        # the bounds
        r = s.run(ctl + ["app", "add", "big", "--url", "http://+:%d/big/" % port, "--user", user, "--workers", "17",
                         "--"] + server)
        check(r.returncode != 0 and "1-16" in r.stderr, "--workers 17 of a command is refused: %s" % r.stderr.strip())
        r = s.run(ctl + ["app", "add", "bq", "--url", "http://+:%d/bq/" % port, "--workers", "100", "--backend",
                         "http://127.0.0.1:%d" % ports[0]])
        check_eq(r.returncode, 0, "--workers 100 of a --backend queue (its requests in progress) is accepted: %s"
                 % r.stderr.strip())
        for name in ("bq", "dn", "gw", "pw"):
            check_eq(s.run(ctl + ["app", "delete", name]).returncode, 0, "app delete %s" % name)
    shutil.rmtree(pub)
