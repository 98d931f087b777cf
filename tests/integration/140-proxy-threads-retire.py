# 140-proxy-threads-retire: portshare-proxy adds threads while requests last long (slow backend replies at once), and once they have had no request for 5 s the threads beyond the CPUs' count drain their sessions and end (the first never does); requests on kept connections and new ones are answered throughout and afterwards, and the proxy can grow again. Also with PORTSHARE_DEFAULTS=1.
import os
import threading
import time

from harness import Proc, Story, check, check_eq, wait_until
from proxy_help import PROXY_READY, backend

SLOW = 6


def req(path):
    return ("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode()


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    # one CPU: one serving thread when idle (plus the main thread and the watcher)
    px = Proc(s, ["taskset", "-c", "0", s.bin("portshare-proxy"), "--socket", d.sock, "--queue", "px",
                  "--url", "http://+:%d/" % port, "--backend", "http://127.0.0.1:%s" % bport], "proxy")
    px.wait_for(PROXY_READY, timeout=10)
    tasks = lambda: len(os.listdir("/proc/%d/task" % px.pid))
    keep = s.conn(port, timeout=10)
    check_eq(keep.request(req("/headers?warm")).status, 200, "a first request")
    base = tasks()
    print("  threads at rest: %d" % base)

    def grow(rnd):
        results = []

        def slow(i):
            c = s.conn(port, timeout=10)
            r = c.request(req("/slow?s=1&r=%d&i=%d" % (rnd, i)), timeout=10)
            results.append((r.status, r.body))
            c.close()

        ts = [threading.Thread(target=slow, args=(i,)) for i in range(SLOW)]
        for t in ts:
            t.start()
        peak = base
        for _ in range(100):
            peak = max(peak, tasks())
            if all(not t.is_alive() for t in ts):
                break
            time.sleep(0.02)
        for t in ts:
            t.join(10)
        check_eq(results, [(200, b"late\n")] * SLOW, "round %d: the %d slow replies were answered" % (rnd, SLOW))
        check(peak >= base + 3, "round %d: threads were added for them (%d at rest, %d at most)" % (rnd, base, peak))
        return peak

    for rnd in range(2):
        peak = grow(rnd)
        # while they wait to retire, and while they retire, requests are answered
        t0 = time.monotonic()
        for i in range(40):
            r = keep.request(req("/headers?between=%d" % i))
            check_eq(r.status, 200, "round %d: keep-alive request %d answered" % (rnd, i))
            c = s.conn(port, timeout=10)
            check_eq(c.request(req("/headers?new=%d" % i)).status, 200, "round %d: new client %d answered" % (rnd, i))
            c.close()
            time.sleep(0.02)
        # 5 s without a request, then the extra threads end (some are still busy above: give it 12 s)
        check(wait_until(lambda: tasks() <= base, 12, 0.1),
              "round %d: the added threads ended once idle (%d at most, %d now, %d at rest)"
              % (rnd, peak, tasks(), base))
        print("  round %d: %d threads at most, back to %d after %.1f s" % (rnd, peak, tasks(), time.monotonic() - t0))
        r = keep.request(req("/headers?after=%d" % rnd))
        check_eq(r.status, 200, "round %d: the kept connection is still served" % rnd)

    q = [x for x in d.status()["queues"] if x["name"] == "px"][0]
    check_eq(q.get("refused"), 0, "nothing was refused")
    check(px.alive(), "the proxy is still running")
    check("error" not in px.stderr(), "the proxy logged no error:\n%s" % px.stderr()[-2000:])
