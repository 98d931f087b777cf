# 128-proxy-no-wait-behind-long: portshare-proxy with its defaults keeps keep-alive connections itself (delegation and prefetch on: status counts requests served by the proxy alone), yet while server-sent event streams, and then slow backend replies, start one after another on its threads, no keep-alive request and no new client waits 100 ms or more: a thread whose request turns long gives back the connections it keeps and the request given to it meanwhile (ps_client_yield), and the streams still flow as written; a request the daemon gave a thread that then turned busy goes to another (REQUEUE). Also with PORTSHARE_DEFAULTS=1.
from harness import Story, check
from proxy_help import backend, given_to_busy_thread, no_wait_behind_long, proxy

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    start = lambda: proxy(s, ["http://+:%d/" % port], "http://127.0.0.1:%s" % bport)
    connect = lambda: s.conn(port, timeout=10)
    given_to_busy_thread(start, connect, "x")
    px = start()
    no_wait_behind_long(d, connect, "px")
    check(px.alive(), "the proxy is still running")
