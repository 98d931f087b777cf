# 68-sslcert-reload-load: a certificate renewed under a stream of TLS handshakes: the files are replaced, `portsharectl sslcert reload` (and SIGHUP) runs while two clients connect and fetch without a pause; no handshake fails, connections already established go on, and new handshakes get the renewed certificate. Also with PORTSHARE_DEFAULTS=1.
import hashlib
import os
import shutil
import socket
import ssl
import threading
import time

from harness import Story, check, check_eq, get_req, url_host


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()


class Loop:
    """Handshakes and one request each, back to back, until stopped (bounded: 20 s)."""

    def __init__(self, host, port, cafile):
        self.host, self.port = host, port
        self.ctx = ssl.create_default_context(cafile=cafile)
        self.ctx.check_hostname = False
        self.ok, self.failures, self.seen = 0, [], {}
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def once(self):
        raw = socket.create_connection((self.host, self.port), timeout=5)
        with self.ctx.wrap_socket(raw) as t:
            fp = fingerprint(t.getpeercert(binary_form=True))
            t.sendall(get_req("/x", host="localhost", extra="Connection: close\r\n"))
            data = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError("answer %r" % data[:60])
        self.seen[fp] = self.seen.get(fp, 0) + 1

    def run(self):
        deadline = time.monotonic() + 20
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.once()
                self.ok += 1
            except Exception as e:  # noqa: BLE001 (every failure is the finding)
                self.failures.append(repr(e))

    def finish(self):
        self.stop.set()
        self.t.join(10)


with Story() as s:
    d = s.daemon()
    port = s.free_port()
    live = s.path("live")  # the paths given at add, as certbot's live/ directory
    os.makedirs(live)
    # distinct subjects: a client that trusts both tells them apart by name
    old_cert, old_key = s.tls_certificate("old", ("old.localhost", "127.0.0.1", "::1"))
    new_cert, new_key = s.tls_certificate("new", ("new.localhost", "127.0.0.1", "::1"))
    shutil.copy(old_cert, os.path.join(live, "fullchain.pem"))
    shutil.copy(old_key, os.path.join(live, "privkey.pem"))
    for ep in ("0.0.0.0:%d" % port, "[::]:%d" % port):
        check_eq(d.ctl("sslcert", "add", "--ipport", ep, "--cert", os.path.join(live, "fullchain.pem"), "--key",
                       os.path.join(live, "privkey.pem")).returncode, 0, "sslcert add --ipport %s" % ep)
    s.hello(["https://+:%d/" % port], text="renewed")

    def der(path):
        with open(path) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())
    old_fp, new_fp = fingerprint(der(old_cert)), fingerprint(der(new_cert))

    host = s.hosts[-1]
    # a connection established before the renewal, kept open across it
    ctx = ssl.create_default_context(cafile=old_cert)
    ctx.check_hostname = False
    kept = ctx.wrap_socket(socket.create_connection((host, port), timeout=5))
    kept.sendall(get_req("/kept1", host="localhost"))
    check(kept.recv(65536).startswith(b"HTTP/1.1 200 "), "a kept connection before the renewal")

    # both certificates are trusted by the loop's clients: only the handshakes' success counts
    both = s.path("both.pem")
    with open(both, "w") as f:
        f.write(open(old_cert).read() + open(new_cert).read())
    loops = [Loop(h, port, both) for h in (s.hosts * 2)[:2]]
    time.sleep(1.0)
    shutil.copy(new_cert, os.path.join(live, "fullchain.pem"))
    shutil.copy(new_key, os.path.join(live, "privkey.pem"))
    r = d.ctl("sslcert", "reload")
    check_eq(r.returncode, 0, "sslcert reload during the handshakes")
    time.sleep(1.0)
    d.reload()  # SIGHUP: the daemon re-reads its own copies, also under load
    time.sleep(1.0)
    for lp in loops:
        lp.finish()
    total = sum(lp.ok for lp in loops)
    fails = [f for lp in loops for f in lp.failures]
    check(total > 20 and not fails, "%d handshakes and requests during the renewal, none failed" % total,
          "; ".join(fails[:3]))
    seen = {}
    for lp in loops:
        for fp, n in lp.seen.items():
            seen[fp] = seen.get(fp, 0) + n
    check(seen.get(old_fp, 0) > 0 and seen.get(new_fp, 0) > 0 and set(seen) <= {old_fp, new_fp},
          "the old certificate served before the reload, the renewed one after",
          "old %d, new %d, other %d" % (seen.get(old_fp, 0), seen.get(new_fp, 0),
                                        sum(n for fp, n in seen.items() if fp not in (old_fp, new_fp))))
    ctx_new = ssl.create_default_context(cafile=new_cert)
    ctx_new.check_hostname = False
    with ctx_new.wrap_socket(socket.create_connection((host, port), timeout=5)) as t:
        check_eq(fingerprint(t.getpeercert(binary_form=True)), new_fp, "a new handshake gets the renewed certificate")
    kept.sendall(get_req("/kept2", host="localhost"))
    check(kept.recv(65536).startswith(b"HTTP/1.1 200 "), "the connection from before the renewal goes on")
    kept.close()
