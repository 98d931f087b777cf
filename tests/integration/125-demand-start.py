# 125-demand-start: a controller (tests/integration/controller.c, on the real libportshare) holds a persistent queue with URLs and no worker and waits with ps_queue_wait_demand: a request already waiting returns the wait at once, the controller starts portshare-hello with only PORTSHARE_QUEUE and PORTSHARE_SOCKET set, and that request gets the hello's answer (not a 503); a wait while the worker is there times out although requests flow; the worker's exit and a new request start another (the wait returns on the arrival); a demand that comes between two calls is kept for the next; a wait goes on across portshared --upgrade; a queue deleted under a wait ends it with PS_ENOTFOUND; portshare-hello given no queue says so; a user who does not own the queue cannot open it to wait on it, and can with a grant. Needs root. Also with PORTSHARE_DEFAULTS=1.
import os
import re
import secrets
import signal
import subprocess
import threading
import time

from harness import (Proc, Story, check, check_eq, check_between, fail, find_queue, hello_body_re, say,
                     wait_until)

TEXT = "demand"


def controller(s, sock, queue, *args, user=None, name="controller"):
    argv = [os.path.join(s.build, "tests", "controller"), "--socket", sock, "--queue", queue] + list(args)
    argv += ["--", s.bin("portshare-hello"), "--text", TEXT]
    if user:
        argv = ["setpriv", "--reuid=%d" % user[1], "--regid=%d" % user[2], "--clear-groups"] + argv
    return Proc(s, argv, name)


def step(p, pattern, timeout=10.0):
    """The controller's line matching pattern (a regex with named groups)."""
    return p.wait_for(pattern, "stdout", timeout)


def served_by(r, path):
    m = hello_body_re(TEXT, path).match(r.body.decode("utf-8", "replace"))
    return int(m.group(1)) if r and r.status == 200 and m else None


def get_in_background(s, port, host, path):
    """A request sent from a thread (it waits in the queue): the thread and where its answer goes."""
    result = {}
    t = threading.Thread(target=lambda: result.update(r=s.get(s.url(port, path, host), timeout=25)))
    t.start()
    return t, result


def demand_at_once(c, t, result, path, what):
    """The held controller c is let go: its wait returns a demand at once, it starts a hello,
    and the waiting request (thread t) is answered by that hello. Returns the hello's pid."""
    c.signal(signal.SIGUSR1)
    m = step(c, r"demand round=1 rc=(?P<rc>-?\d+) \([^)]*\) ms=(?P<ms>\d+)")
    check_eq(int(m.group("rc")), 0, "%s: the wait's status" % what)
    check_between(int(m.group("ms")), 0, 400, "%s: the wait returned at once (ms)" % what)
    pid = int(step(c, r"started round=1 pid=(\d+)").group(1))
    t.join(25)
    check(not t.is_alive(), "%s: the waiting request was answered" % what)
    check_eq(served_by(result.get("r"), path), pid, "%s: the request is served by the hello it started" % what)
    return pid


with Story(time_limit=110) as s:
    if os.geteuid() != 0:
        fail("this story needs root: it makes a throwaway user (useradd) and runs the controller as it")
    d = s.daemon(limits={"RequestQueue": 30})
    port = s.free_port()
    host = s.hosts[-1]
    prefix = "http://+:%d/d/" % port

    # 1. a persistent queue with its URL and no worker: 503 AppOffline at once
    w = s.testworker([prefix], queue="dq", persistent=True, mode="noreceive")
    w.stop()
    wait_until(lambda: not (find_queue(d.status(), "dq") or {}).get("workers"), 5)
    r = s.get(s.url(port, "/d/none", host))
    check_eq(r.status, 503, "the queue with no process attached answers at once")

    # 2. the controller holds it open: a request is held, not refused
    c = controller(s, d.sock, "dq", "--hold", "--rounds", "2", "--second-wait", "800")
    step(c, r"attached queue=dq")
    t, first = get_in_background(s, port, host, "/d/first")
    held = wait_until(lambda: (find_queue(d.status(), "dq") or {}).get("depth") == 1, 10)
    check(held, "the request waits in the queue while only the controller is attached")
    q = find_queue(d.status(), "dq")
    check([x["receives"] for x in q["workers"]] == [0], "the controller posts no receive", repr(q["workers"]))

    # 3. a demand already there: the wait returns at once; the started hello gets the request
    pid1 = demand_at_once(c, t, first, "/d/first", "a request waited, no worker")

    # 4. with the worker there, a wait times out although requests keep coming
    for i in range(5):
        r = s.get(s.url(port, "/d/during%d" % i, host))
        check_eq(served_by(r, "/d/during%d" % i), pid1, "request %d while the worker runs: served by it" % i)
    m = step(c, r"while-running round=1 rc=(?P<rc>-?\d+) \([^)]*\) ms=(?P<ms>\d+)")
    check_eq(int(m.group("rc")), -7, "a wait while the worker is there: PS_ETIMEDOUT")
    check_between(int(m.group("ms")), 750, 3000, "it waited its whole timeout (ms)")

    # 5. the worker goes; the next request to arrive is a demand again, and starts another
    os.kill(pid1, signal.SIGTERM)
    step(c, r"exited round=1")
    step(c, r"waiting round=2")
    time.sleep(0.5)  # the controller is waiting when the request comes
    r = s.get(s.url(port, "/d/second", host), timeout=25)
    m = step(c, r"demand round=2 rc=(?P<rc>-?\d+) \([^)]*\) ms=(?P<ms>\d+)")
    check_eq(int(m.group("rc")), 0, "second demand's status")
    check(int(m.group("ms")) >= 400, "the second wait waited for the request (%s ms)" % m.group("ms"))
    pid2 = int(step(c, r"started round=2 pid=(\d+)").group(1))
    check(pid2 != pid1, "a new worker was started (pid %d, the first was %d)" % (pid2, pid1))
    check_eq(served_by(r, "/d/second"), pid2, "the request that made the demand is served by the new hello")
    m = step(c, r"while-running round=2 rc=(?P<rc>-?\d+)")
    check_eq(int(m.group("rc")), -7, "second while-running wait: PS_ETIMEDOUT")
    q = find_queue(d.status(), "dq")
    check(q["served"] >= 7 and q["refused"] == 1, "status: 7 served, 1 refused (AppOffline)", repr(q))

    # 6. portshare-hello with no --url, no --queue and no $PORTSHARE_QUEUE: a clear error
    env = dict(s.env)
    env.pop("PORTSHARE_QUEUE", None)
    r = subprocess.run([s.bin("portshare-hello"), "--socket", d.sock], env=env, capture_output=True, text=True,
                       timeout=10)
    check(r.returncode == 2 and "PORTSHARE_QUEUE" in r.stderr, "hello with nothing to serve: exit 2, names "
          "$PORTSHARE_QUEUE", "exit %d, stderr %r" % (r.returncode, r.stderr))

    # 7. another user: refused, then allowed by a grant
    name = "psdm" + secrets.token_hex(4)
    rc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                        capture_output=True, text=True, timeout=30)
    check_eq(rc.returncode, 0, "useradd --system %s" % name)
    try:
        uid = int(s.run(["id", "-u", name]).stdout)
        gid = int(s.run(["id", "-g", name]).stdout)
        other = controller(s, d.sock, "dq", "--timeout", "300", user=(name, uid, gid), name="controller-other")
        check_eq(other.wait(10), 3, "a non-owner's controller exit status (it could not open the queue)")
        out = other.stdout()
        check("rc=-4" in out and "belongs to user root" in out, "the refusal is PS_EDENIED and names the owner",
              out)
        r = d.ctl("grant", "add", "dq", "--user", name)
        check_eq(r.returncode, 0, "portsharectl grant add dq --user %s" % name)
        other = controller(s, d.sock, "dq", "--timeout", "300", user=(name, uid, gid), name="controller-granted")
        check_eq(other.wait(10), 4, "a granted user's controller waits (and times out: a worker is there)")
        check(re.search(r"demand round=1 rc=-7 ", other.stdout()), "its wait timed out", other.stdout())
    finally:
        rd = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30)
        say("  %s userdel %s" % ("ok  " if rd.returncode == 0 else "FAILED", name))
    r = s.get(s.url(port, "/d/last", host))
    check_eq(served_by(r, "/d/last"), pid2, "the queue still serves after all that")

    # 8. a demand that comes while the controller is not waiting is kept for its next call
    os.kill(pid2, signal.SIGTERM)
    check_eq(c.wait(10), 0, "the controller's two rounds are over")

    def waiting():
        return any(x.get("demand_wait") for x in (find_queue(d.status(), "dq") or {}).get("workers", []))

    c5 = controller(s, d.sock, "dq", "--probe", "300", "--hold", name="controller-kept")
    m = step(c5, r"probe round=0 rc=(-?\d+)")
    check_eq(int(m.group(1)), -7, "a first wait with nothing waiting times out")
    check(waiting(), "its registration stays in the daemon after the timeout")
    t, kept = get_in_background(s, port, host, "/d/kept")
    check(wait_until(lambda: not waiting(), 10), "the daemon sent the demand while no call waited")
    pid5 = demand_at_once(c5, t, kept, "/d/kept", "the next call returns the kept demand")
    os.kill(pid5, signal.SIGTERM)
    check_eq(c5.wait(10), 0, "that controller's round is over")

    # 9. a wait goes on across portshared --upgrade: made again in the new daemon
    c4 = controller(s, d.sock, "dq", "--timeout", "30000", name="controller-upgrade")
    step(c4, r"waiting round=1")

    check(wait_until(waiting, 5), "the controller's wait is registered")
    d.expected_exit = True
    d2 = s.daemon(sock=d.sock, state_dir=d.state_dir, args=["--upgrade"], name="portshared-new")
    d2.wait_log(r"upgrade complete", timeout=15)
    check(wait_until(lambda: d.wait(0.1) is not None, 10, 0.1), "the old daemon exited")
    d = d2
    check(wait_until(waiting, 10), "the wait is registered again in the new daemon")
    r = s.get(s.url(port, "/d/after", host), timeout=25)
    m = step(c4, r"demand round=1 rc=(?P<rc>-?\d+)")
    check_eq(int(m.group("rc")), 0, "the demand after the upgrade")
    pid3 = int(step(c4, r"started round=1 pid=(\d+)").group(1))
    check_eq(served_by(r, "/d/after"), pid3, "the request after the upgrade is served by the hello it started")

    # 10. the queue deleted under a waiting controller: its wait ends with PS_ENOTFOUND
    c3 = controller(s, d.sock, "dq", "--timeout", "20000", name="controller-deleted")
    step(c3, r"waiting round=1")
    wait_until(lambda: any(x.get("demand_wait") for x in (find_queue(d.status(), "dq") or {}).get("workers", [])), 5)
    r = s.run([os.path.join(s.build, "tests", "controller"), "--socket", d.sock, "--queue", "dq", "--delete"])
    check(r.returncode == 0 and "rc=0" in r.stdout, "an admin deletes the queue", r.stdout + r.stderr)
    m = step(c3, r"demand round=1 rc=(?P<rc>-?\d+) \([^)]*\) ms=(?P<ms>\d+): (?P<why>.*)")
    check_eq(int(m.group("rc")), -3, "the waiting controller's status once the queue is deleted (PS_ENOTFOUND)")
    check("deleted" in m.group("why"), "its message says the queue was deleted", m.group("why"))
    check(int(m.group("ms")) < 5000, "it did not wait for its timeout (%s ms)" % m.group("ms"))
