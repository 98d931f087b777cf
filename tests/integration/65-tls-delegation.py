# 65-tls-delegation: delegation over TLS (DESIGN §6, §11): a KeyUpdate the daemon reads before the handoff; 1,000 requests on one TLS connection with every 10th for another queue (given back mid-pipeline with the record state, delivered again), requests split across records and several in one record; KeyUpdate from the client (openssl's K) while a worker holds the connection; the worker SIGKILLed while idle after it, and the daemon takes the connection back at the position the slot recorded and serves it on over TLS; a worker killed with a request read gets an encrypted 503; one killed mid-response is aborted. Also with PORTSHARE_DEFAULTS=1.
import os
import re
import socket
import ssl
import subprocess
import threading
import time

from harness import Incomplete, Story, check, check_eq, get_req, parse_response, url_host, wait_until


def make_cert(s):
    key, cert, tmpl = s.path("k.pem"), s.path("c.pem"), s.path("t.tmpl")
    check_eq(s.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1", "--outfile", key]).returncode,
             0, "certtool key")
    with open(tmpl, "w") as f:
        f.write("cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\nip_address = ::1\n"
                "expiration_days = 30\ntls_www_server\nsigning_key\ncert_signing_key\nca\n")
    check_eq(s.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                    "--outfile", cert]).returncode, 0, "certtool certificate")
    return cert, key


class TLSConn:
    def __init__(self, host, port, cafile):
        ctx = ssl.create_default_context(cafile=cafile)
        self.t = ctx.wrap_socket(socket.create_connection((host, port), timeout=10), server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.t.sendall(data)

    def response(self, method="GET"):
        while True:
            try:
                r, used = parse_response(self.buf, method)
                self.buf = self.buf[used:]
                return r
            except Incomplete:
                pass
            try:
                chunk = self.t.recv(65536)
            except (ConnectionResetError, ssl.SSLError) as e:
                return "reset: %s" % e
            if not chunk:
                return None
            self.buf += chunk

    def close(self):
        self.t.close()


class SClient:
    """openssl s_client with its command letters on (K: KeyUpdate), read as it comes."""

    def __init__(self, host, port, cafile):
        self.p = subprocess.Popen(["openssl", "s_client", "-connect", "%s:%d" % (url_host(host), port),
                                   "-servername", "localhost", "-CAfile", cafile, "-tls1_3"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            chunk = self.p.stdout.read1(65536)
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def text(self):
        with self.lock:
            return self.out.decode(errors="replace")

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def wait_for(self, pattern, timeout=5.0):
        found = [None]

        def look():
            with self.lock:
                found[0] = re.search(pattern, self.out)
            return found[0]
        wait_until(look, timeout)
        return found[0]

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def pid_of(r):
    m = re.search(rb"pid=(\d+)", r.body)
    return int(m.group(1)) if m else None


with Story(time_limit=120) as s:
    d = s.daemon()
    port = s.free_port()
    cert, key = make_cert(s)
    for ep in ("0.0.0.0:%d" % port, "[::]:%d" % port):
        check_eq(d.ctl("sslcert", "add", "--ipport", ep, "--cert", cert, "--key", key).returncode, 0,
                 "sslcert add --ipport %s" % ep)
    a = s.hello(["https://+:%d/a/" % port], queue="qa", text="A")
    a2 = s.hello(queue="qa", text="A")
    b = s.hello(["https://+:%d/b/" % port], queue="qb", text="B")
    host = s.hosts[-1]

    # 1,000 requests on one connection, every 10th for queue qb; batches of 10 in one
    # record, one request split across two records, one per record
    c = TLSConn(host, port, cert)
    wrong = []
    n = 0
    for batch in range(100):
        reqs = [get_req("/%s/%d" % ("b" if i == 9 else "a", batch * 10 + i), host="localhost") for i in range(10)]
        if batch % 3 == 0:
            c.send(b"".join(reqs))
        elif batch % 3 == 1:
            for q in reqs:
                c.send(q)
        else:
            whole = b"".join(reqs)
            for cut in range(0, len(whole), 37):
                c.send(whole[cut:cut + 37])
        for i in range(10):
            r = c.response()
            n += 1
            want = b"%s pid=" % (b"B" if i == 9 else b"A")
            path = b"path=/%s/%d" % (b"b" if i == 9 else b"a", batch * 10 + i)
            if not (r is not None and not isinstance(r, str) and r.status == 200 and r.body.startswith(want)
                    and path in r.body):
                wrong.append((batch * 10 + i, r))
    check(not wrong and n == 1000, "1,000 requests on one TLS connection, every 10th to another queue",
          "%d wrong, first %r" % (len(wrong), wrong[:2]))
    st = d.status()
    c.close()

    # the worker holding a kept connection dies idle: the daemon takes it back and the
    # other worker of the queue serves it, over the same TLS session
    c = TLSConn(host, port, cert)
    c.send(get_req("/a/first", host="localhost"))
    r = c.response()
    check(r.status == 200, "first request served", repr(r))
    holder = a if pid_of(r) == a.pid else a2
    other = a2 if holder is a else a
    time.sleep(0.2)
    holder.kill9()
    time.sleep(0.3)
    c.send(get_req("/a/after-kill", host="localhost"))
    r = c.response()
    check(not isinstance(r, str) and r is not None and r.status == 200 and pid_of(r) == other.pid,
          "after the holder's SIGKILL the connection goes on over TLS, served by the other worker", repr(r))
    c.close()

    # KeyUpdate (openssl s_client's K: update, and ask for one back) while a worker holds
    # the connection, then that worker dies idle: the daemon derives the keys from the
    # state it handed over and the slot's counts, and the connection goes on
    a3 = s.hello(queue="qa", text="A3")
    sc = SClient(host, port, cert)
    sc.write(get_req("/a/k1", host="localhost"))
    check(sc.wait_for(rb"pid=\d+ path=/a/k1"), "s_client: first request served", sc.text()[-300:])
    sc.write(b"K\n")
    check(sc.wait_for(rb"KEYUPDATE"), "s_client sent a KeyUpdate (update_requested)", sc.text()[-300:])
    sc.write(get_req("/a/k2", host="localhost"))
    m = sc.wait_for(rb"pid=(\d+) path=/a/k2")
    check(m is not None, "after the KeyUpdate the worker still reads and answers", sc.text()[-600:])
    holder = next((w for w in (other, a3) if m and w.pid == int(m.group(1))), None)
    check(holder is not None, "the holder is one of the queue's workers", sc.text()[-300:])
    rest = next(w for w in (other, a3) if w is not holder)
    holder.kill9()
    time.sleep(0.3)
    sc.write(get_req("/a/k3", host="localhost"))
    m = sc.wait_for(rb"pid=(\d+) path=/a/k3")
    check(m is not None and int(m.group(1)) == rest.pid,
          "after a KeyUpdate and the holder's SIGKILL the same TLS session is served on", sc.text()[-600:])
    sc.write(b"K\n")
    # s_client takes a whole read of its stdin as the command: the request goes after it
    check(sc.wait_for(rb"KEYUPDATE[\s\S]*path=/a/k3[\s\S]*KEYUPDATE"), "s_client sent a second KeyUpdate",
          sc.text()[-300:])
    sc.write(get_req("/a/k4", host="localhost"))
    check(sc.wait_for(rb"path=/a/k4") is not None, "and a second KeyUpdate after the takeback works", sc.text()[-400:])
    sc.close()

    # a KeyUpdate before the handoff: the daemon follows it while it reads the first head,
    # owes one back, and the record state it hands over says so: the worker pays it first
    sc = SClient(host, port, cert)
    check(sc.wait_for(rb"Verify return code: 0"), "s_client connected", sc.text()[-300:])
    sc.write(b"K\n")
    check(sc.wait_for(rb"KEYUPDATE"), "s_client sent a KeyUpdate before any request", sc.text()[-300:])
    time.sleep(0.2)
    sc.write(get_req("/a/after-early-ku", host="localhost"))
    check(sc.wait_for(rb"path=/a/after-early-ku") is not None,
          "a request after a KeyUpdate the daemon read is served by the worker", sc.text()[-400:])
    sc.close()

    # a worker killed with a request read: an encrypted 503; killed mid-response: aborted
    hang = s.testworker(["https://+:%d/hang/" % port], mode="hang", trigger="/hang/read")
    mid = s.testworker(["https://+:%d/mid/" % port], mode="hang-mid-response", trigger="/mid/x")
    for path, w, what in (("/hang/read", hang, "read"), ("/mid/x", mid, "mid-response")):
        c = TLSConn(host, port, cert)
        c.send(get_req(path, host="localhost"))
        check(wait_until(lambda: "hanging on GET %s" % path in w.stderr(), 3), "the worker holds %s" % path,
              w.stderr()[-300:])
        w.kill9()
        r = c.response()
        if what == "read":
            check(not isinstance(r, str) and r is not None and r.status == 503,
                  "worker killed with the request read: 503 over TLS", repr(r))
        else:
            check(r is None or isinstance(r, str) or r.status != 200 or len(r.body) < 1000,
                  "worker killed mid-response: the response is cut, never completed", repr(r))
        c.close()
    r = s.get("https://localhost:%d/a/end" % port, extra=["--cacert", cert],
              resolve="localhost:%d:%s" % (port, host))
    check_eq(r.status, 200, "the daemon serves on after the kills")
