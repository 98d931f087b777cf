# 133-apps-libportshare-workers: `portsharectl app add … --workers 3 -- portshare-hello …` as a throwaway user is a web garden (IIS's maxProcesses): no process before the first request; after it three pids, all the user's, all workers of queue app-hw in `portsharectl status --json` and listed by app show, status and who; requests on many connections are answered by more than one of them; one SIGKILLed is started again on its own (a crash counted for rapid-fail protection) while the others serve every request begun after the kill (a keep-alive connection the killed one held by delegation goes with it, DESIGN §2a: so the clients open a connection per request); an overlapped `app restart` under a bounded load loop (keep-alive and not) starts a new set of three that all join before the old three get SIGTERM, with 0 failed requests; the idle timeout stops all three; two of another app's three killed fail it by rapid-fail protection (--rapid-fail-count 2), which stops the third, answers 503 until app start, after which the next request starts all three; --workers above the bound is refused (an HTTP app's web garden: story 142). Needs root.
import os
import re
import signal
import time

from apps_help import loads, loads_end, pid_alive, show, supervised_user
from harness import Story, check, check_eq, find_queue, wait_until

N = 3


def pid_of(body):
    return int(re.match(rb"hi pid=(\d+) ", body).group(1))


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


def procs_of(uid):
    """The pids of the processes running as uid (read from /proc)."""
    found = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                if uid_of(int(e)) == uid:
                    found.append(int(e))
            except (OSError, StopIteration):
                pass
    return found


def workers_of(d, sup):
    """The pids of queue app-hw's workers in portsharectl status --json (not the controller)."""
    q = find_queue(d.status(), "app-hw") or {}
    return sorted(w["pid"] for w in q.get("workers", []) if w["pid"] != sup.pid)


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    with supervised_user(s, d, "ps133u") as (user, uid, sup, ctl):
        url = "http://+:%d/hw/" % port
        r = s.run(ctl + ["app", "add", "hw", "--url", url, "--user", user, "--workers", str(N), "--idle-timeout",
                         "4", "--", s.bin("portshare-hello"), "--text", "hi"])
        check_eq(r.returncode, 0, "app add hw --workers %d -- portshare-hello: %s" % (N, r.stderr.strip()))
        a = show(s, ctl)["hw"]
        check(a["state"] == "idle" and a["pids"] == [] and a["processes"] == N and not procs_of(uid),
              "before the first request: idle, no process of %s" % user, repr(a))

        r = s.get(s.url(port, "/hw/first"))
        check(r.status == 200 and r.body.startswith(b"hi pid="), "the first request is answered: %d %r"
              % (r.status, r.body[:60]))
        check(wait_until(lambda: show(s, ctl)["hw"]["state"] == "running", 10), "app show: running")
        pids = sorted(show(s, ctl)["hw"]["pids"])
        check(len(pids) == N and all(uid_of(p) == uid for p in pids),
              "app show: %d pids %s, all running as %s (uid %d)" % (N, pids, user, uid))
        check(wait_until(lambda: workers_of(d, sup) == pids, 5),
              "portsharectl status --json: the %d pids are queue app-hw's workers" % N, repr(workers_of(d, sup)))
        r = s.run(ctl + ["status", "--json"])
        check('"pids":[%s]' % ",".join(str(p) for p in show(s, ctl)["hw"]["pids"]) in r.stdout,
              "portsharectl status --json: the app with its %d pids" % N)
        r = s.run(ctl + ["who", str(port)])
        check(re.search(r"app hw \(queue app-hw\): running, backend libportshare, pids \d+, \d+, \d+\n", r.stdout),
              "portsharectl who PORT: the app with its three pids", r.stdout)

        # many connections, answered by more than one process
        stop, threads, results = loads(port, "/hw/load", 6, pid_of, False)
        time.sleep(1.5)
        seen = loads_end(stop, threads, results, "6 clients, a connection per request")
        check(len(seen) > 1 and seen <= set(pids), "the requests were answered by %d of the pids: %s"
              % (len(seen), sorted(seen)))

        # one killed: started again on its own; the others serve what begins after the kill
        victim = pids[1]
        os.kill(victim, signal.SIGKILL)
        check(wait_until(lambda: not pid_alive(victim), 5), "pid %d SIGKILLed" % victim)
        stop, threads, results = loads(port, "/hw/load", 4, pid_of, False)
        check(wait_until(lambda: len(show(s, ctl)["hw"]["pids"]) == N and victim not in show(s, ctl)["hw"]["pids"],
                         10), "the killed pid's place is taken by a new process (after its backoff)")
        time.sleep(0.5)
        seen = loads_end(stop, threads, results, "4 clients while pid %d was dead and started again" % victim)
        a = show(s, ctl)["hw"]
        others = [p for p in pids if p != victim]
        check(all(p in a["pids"] and pid_alive(p) for p in others), "the other pids %s ran on" % others)
        check(a["crashes"] == 1 and a["state"] == "running",
              "the crash counts toward rapid-fail protection (1), the app runs on", repr(a))
        check(f"pid {victim} died (status 137): starting it again in" in sup.stderr(),
              "the supervisor's log: the pid died and is started again, the others serve on")
        check(victim not in seen, "no request begun after the kill went to the killed pid")
        pids = sorted(a["pids"])
        check(wait_until(lambda: workers_of(d, sup) == pids, 5), "the daemon lists the %d workers again %s"
              % (N, pids), repr(workers_of(d, sup)))

        # overlapped restart of the set under load
        stop, threads, results = loads(port, "/hw/load", 4, pid_of)
        time.sleep(0.5)
        r = s.run(ctl + ["app", "restart", "hw"])
        check(r.returncode == 0 and "joins queue app-hw" in r.stdout, "app restart hw: %s" % r.stdout.strip())
        new = sorted(int(x) for x in re.search(r"new pid ([\d, ]+) joins", r.stdout).group(1).split(", "))
        check(len(new) == N and not set(new) & set(pids), "a new set of %d: %s" % (N, new))
        check(wait_until(lambda: sorted(show(s, ctl)["hw"]["pids"]) == new, 15) and
              wait_until(lambda: not any(pid_alive(p) for p in pids), 10),
              "the new set serves, the old set %s is gone" % pids)
        log = sup.stderr()
        joined = "the new pid %s joined app-hw" % ", ".join(str(p) for p in show(s, ctl)["hw"]["pids"])
        stopping = "stopping the old pid %s" % ", ".join(str(p) for p in a["pids"])
        check(joined in log and stopping in log and log.index(joined) < log.index(stopping),
              "the old set got SIGTERM once all of the new set had joined: %s; %s" % (joined, stopping))
        time.sleep(1)
        seen = loads_end(stop, threads, results, "overlapped restart under 4 clients (keep-alive and not)")
        check(seen <= set(pids) | set(new) and seen & set(new), "answered by the old set, then the new")
        check(wait_until(lambda: workers_of(d, sup) == new, 5), "the daemon lists the new set only")

        # the idle timeout stops them all
        t0 = time.monotonic()
        check(wait_until(lambda: show(s, ctl)["hw"]["state"] == "idle" and not any(pid_alive(p) for p in new), 15),
              "idle stop: all %d stopped after %.1f s without a request" % (N, time.monotonic() - t0))
        check(not procs_of(uid), "no process of %s is left" % user)

        # a crash of any of them counts toward rapid-fail protection, which stops them all
        r = s.run(ctl + ["app", "add", "rf", "--url", "http://+:%d/rf/" % port, "--user", user, "--workers",
                         str(N), "--rapid-fail-count", "2", "--", s.bin("portshare-hello"), "--text", "hi"])
        check_eq(r.returncode, 0, "app add rf --workers %d --rapid-fail-count 2: %s" % (N, r.stderr.strip()))
        check_eq(s.get(s.url(port, "/rf/first")).status, 200, "rf's first request")
        check(wait_until(lambda: show(s, ctl)["rf"]["state"] == "running" and len(show(s, ctl)["rf"]["pids"]) == N,
                         10), "rf runs %d processes, all joined" % N)
        rf = show(s, ctl)["rf"]["pids"]
        os.kill(rf[0], signal.SIGKILL)
        check(wait_until(lambda: show(s, ctl)["rf"]["crashes"] == 1, 5) and show(s, ctl)["rf"]["state"] == "running",
              "one killed: 1 crash, the app runs on")
        os.kill(rf[2], signal.SIGKILL)
        check(wait_until(lambda: show(s, ctl)["rf"]["state"] == "failed" and not any(pid_alive(p) for p in rf), 10),
              "a second killed: rapid-fail protection stops all %d (state failed)" % N, repr(show(s, ctl)["rf"]))
        check_eq(s.get(s.url(port, "/rf/failed"), timeout=5).status, 503, "a failed app's request: 503")
        r = s.run(ctl + ["app", "start", "rf"])
        check_eq(r.returncode, 0, "app start rf")
        check(wait_until(lambda: s.get(s.url(port, "/rf/again"), timeout=5).status == 200, 10, 0.3) and
              wait_until(lambda: len(show(s, ctl)["rf"]["pids"]) == N, 10),
              "after app start the next request starts all %d again" % N)
        s.run(ctl + ["app", "delete", "rf"])
        check(wait_until(lambda: not procs_of(uid), 10), "app delete stopped them all")

        # the bound (an HTTP app's --workers: story 142)
        r = s.run(ctl + ["app", "add", "big", "--url", "http://+:%d/big/" % port, "--user", user, "--workers",
                         "17", "--", s.bin("portshare-hello")])
        check(r.returncode != 0 and "1-16" in r.stderr, "--workers 17 of a libportshare app is refused: %s"
              % r.stderr.strip())
        r = s.run(ctl + ["app", "delete", "hw"])
        check_eq(r.returncode, 0, "app delete hw")
