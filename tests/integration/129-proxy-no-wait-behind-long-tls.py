# 129-proxy-no-wait-behind-long-tls: story 128 over TLS: keep-alive TLS connections kept by portshare-proxy's threads go back to the daemon with their record state when a thread's request turns long (RETURN_TLS), a request the daemon delivered and the thread had not taken goes to another thread (REQUEUE), and every response still decrypts: no keep-alive or new client waits 100 ms or more behind event streams and slow replies.
import ssl
from harness import Story, check, check_eq
from proxy_help import backend, given_to_busy_thread, no_wait_behind_long, proxy

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    b, bport = backend(s)
    cert, key = s.tls_certificate()
    check_eq(d.ctl("sslcert", "add", "--ipport", "0.0.0.0:%d" % port, "--cert", cert, "--key", key).returncode, 0,
             "sslcert add")
    start = lambda: proxy(s, ["https://+:%d/" % port], "http://127.0.0.1:%s" % bport)
    ctx = ssl.create_default_context(cafile=cert)
    connect = lambda: s.conn(port, timeout=10, tls=ctx, server_name="localhost")
    given_to_busy_thread(start, connect, "localhost")
    px = start()
    no_wait_behind_long(d, connect, "px", host="localhost")
    check(px.alive(), "the proxy is still running")
