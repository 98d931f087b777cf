# 52-sighup-reload: SIGHUP re-reads the config: an added listen address serves at once, a changed limit applies, a removed address closes.
import time
from harness import Story, check, check_eq, check_between, listening, wait_until, get_req, request_once, body_pid

with Story() as s:
    d = s.daemon(listen=("127.0.0.1",))
    port = s.free_port(("127.0.0.1", "127.0.0.2"))
    app = s.hello(["http://*:%d/" % port], text="R")
    r = request_once(port, get_req("/one"))
    check(r.status == 200 and body_pid(r.body) == app.pid, "served on 127.0.0.1", repr(r))
    check_eq(sorted(listening(port)), ["127.0.0.1"], "listening only on 127.0.0.1 before the reload")

    d.write_config(["listen 127.0.0.1", "listen 127.0.0.2", "HeaderWait 1", "ShutdownGrace 2"])
    d.reload()
    up = wait_until(lambda: sorted(listening(port)) == ["127.0.0.1", "127.0.0.2"], 5)
    check(up, "after SIGHUP, listening on 127.0.0.1 and 127.0.0.2", repr(listening(port)))
    r = request_once(port, get_req("/two"), host="127.0.0.2")
    check(r.status == 200 and body_pid(r.body) == app.pid, "served on the added address 127.0.0.2", repr(r))
    r = request_once(port, get_req("/three"))
    check(r.status == 200, "still served on 127.0.0.1", repr(r))
    st = d.status()
    eps = {(e.get("address"), e.get("port")): e.get("bound") for e in st.get("endpoints", [])}
    check(eps.get(("127.0.0.2", port)) is True and eps.get(("127.0.0.1", port)) is True,
          "status lists both endpoints bound", repr(st.get("endpoints")))

    c = s.conn(port)
    t0 = time.monotonic()
    c.send(b"GET / HTTP/1.1\r\n")
    r = c.read_response(timeout=5)
    check_eq(r.status, 408, "the reloaded HeaderWait 1 applies: partial head status")
    check_between(round(time.monotonic() - t0, 2), 0.8, 3.0, "408 after about 1 s (s)")

    d.write_config(["listen 127.0.0.1", "ShutdownGrace 2"])
    d.reload()
    down = wait_until(lambda: sorted(listening(port)) == ["127.0.0.1"], 5)
    check(down, "after removing 127.0.0.2 and SIGHUP, it is no longer listening there", repr(listening(port)))
    r = request_once(port, get_req("/four"))
    check(r.status == 200 and body_pid(r.body) == app.pid, "still served on 127.0.0.1", repr(r))
    check(d.alive() and app.alive(), "daemon and app still running")
