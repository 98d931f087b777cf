# 63-tls: https:// prefixes on a shared port with real clients (curl, openssl s_client, gnutls-cli, Python's ssl): the handshake in the daemon (TLS 1.3 and 1.2, each AEAD cipher, ECDSA and RSA certificates chosen by SNI, ALPN, resumption by ticket), the worker serving the records (keep-alive, a 100 MiB download and a 100 MiB chunked upload intact, 5 MiB uploads), the daemon's own answers encrypted, 400 in clear for plain HTTP, 421, renegotiation and TLS 1.1 refused, no binding, a stalled handshake, a port that is TLS or plain, --upgrade under a kept TLS connection and a handshake half done. Also with PORTSHARE_DEFAULTS=1.
import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time

from harness import (Incomplete, Story, body_pid, check, check_eq, get_req, hello_body_re, parse_response, url_host,
                     wait_until)


def make_cert(s, name, key_type, names):
    """A self-signed certificate for names (certtool, from gnutls-bin); returns (cert, key)."""
    key, cert, tmpl = s.path(name + ".key"), s.path(name + ".pem"), s.path(name + ".tmpl")
    args = ["--key-type=ecdsa", "--curve=secp256r1"] if key_type == "ecdsa" else ["--key-type=rsa", "--bits=2048"]
    r = s.run(["certtool", "--generate-privkey", "--outfile", key] + args)
    check_eq(r.returncode, 0, "certtool makes the %s key" % name)
    with open(tmpl, "w") as f:
        f.write("cn = %s\n" % names[0])
        for n in names:
            f.write(("ip_address = %s\n" if n[0].isdigit() or ":" in n else "dns_name = %s\n") % n)
        f.write("expiration_days = 30\ntls_www_server\nsigning_key\ncert_signing_key\nca\n")
    r = s.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl, "--outfile", cert])
    check_eq(r.returncode, 0, "certtool makes the %s certificate" % name)
    return cert, key


def https(port, path, host):
    return "https://%s:%d%s" % (url_host(host), port, path)


def tls_conn(host, port, cafile, server_name, **kw):
    ctx = ssl.create_default_context(cafile=cafile)
    for k, v in kw.items():
        setattr(ctx, k, v)
    raw = socket.create_connection((host, port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=server_name)


def read_response(t, method="GET", timeout=5.0):
    t.settimeout(timeout)
    buf = b""
    while True:
        try:
            return parse_response(buf, method)[0]
        except Incomplete:
            pass
        chunk = t.recv(65536)
        if not chunk:
            return parse_response(buf, method, eof=True)[0]
        buf += chunk


def interactive(argv, send, wait=0.7):
    """Runs a TLS command-line client, writes send (bytes, or a float: a pause), waits
    wait seconds before its stdin closes; its output (stdout and stderr) as text."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()), daemon=True)
    reader.start()
    for piece in send:
        if isinstance(piece, float):
            time.sleep(piece)
        else:
            p.stdin.write(piece)
            p.stdin.flush()
    time.sleep(wait)
    p.stdin.close()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    reader.join(5)
    return b"".join(chunks).decode(errors="replace")


def openssl(s, args, send, wait=0.7, commands=False):
    """s_client; with commands its command letters work (R: renegotiate), which -ign_eof
    turns off: stdin then stays open for wait seconds after the last piece."""
    return interactive(["openssl", "s_client"] + ([] if commands else ["-ign_eof"]) + args, send, wait)


with Story(time_limit=200) as s:
    d = s.daemon(limits={"HeaderWait": 2})
    port = s.free_port()
    ec_cert, ec_key = make_cert(s, "ecdsa", "ecdsa", ["localhost", "127.0.0.1", "::1"])
    rsa_cert, rsa_key = make_cert(s, "rsa", "rsa", ["rsa.test"])
    other_cert, other_key = make_cert(s, "other", "ecdsa", ["other.test"])

    # the bindings: every address of the port (ECDSA), and two names by SNI
    for ep in ("0.0.0.0:%d" % port, "[::]:%d" % port):
        r = d.ctl("sslcert", "add", "--ipport", ep, "--cert", ec_cert, "--key", ec_key)
        check_eq(r.returncode, 0, "sslcert add --ipport %s" % ep)
    for name, cert, key in (("rsa.test", rsa_cert, rsa_key), ("other.test", other_cert, other_key)):
        r = d.ctl("sslcert", "add", "--hostport", "%s:%d" % (name, port), "--cert", cert, "--key", key)
        check_eq(r.returncode, 0, "sslcert add --hostport %s:%d" % (name, port))

    app = s.hello(["https://+:%d/app/" % port], text="tls-app")
    www = s.path("www")
    os.makedirs(www)
    big = os.urandom(100 * 1024 * 1024)
    with open(os.path.join(www, "big"), "wb") as f:
        f.write(big)
    with open(os.path.join(www, "small"), "wb") as f:
        f.write(b"a" * 3000)
    s.static(www, "https://+:%d/static/" % port)
    s.upload_echo("https://+:%d/echo/" % port)
    ca = ["--cacert", ec_cert]

    for host in s.hosts:
        # each version and cipher; the worker says the scheme is https
        for name, extra in (("TLS 1.3 AES-128-GCM", ["--tls13-ciphers", "TLS_AES_128_GCM_SHA256"]),
                            ("TLS 1.3 AES-256-GCM", ["--tls13-ciphers", "TLS_AES_256_GCM_SHA384"]),
                            ("TLS 1.3 ChaCha20-Poly1305", ["--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"]),
                            ("TLS 1.2 ECDHE-ECDSA-AES128-GCM", ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"]),
                            ("TLS 1.2 ECDHE-ECDSA-AES256-GCM", ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384"]),
                            ("TLS 1.2 ECDHE-ECDSA-CHACHA20", ["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305"])):
            r = s.get(https(port, "/app/x", host), extra=ca + extra)
            check_eq(r.status, 200, "%s to %s: status" % (name, host))
            check(hello_body_re("tls-app", "/app/x").match(r.text()) is not None and body_pid(r.body) == app.pid,
                  "%s to %s: answered by the worker" % (name, host), repr(r.body))

        # keep-alive: three requests on one connection, each RETURN_TLS'd and DELIVERed again
        p = [s.path("ka%d" % i) for i in range(3)]
        r = s.curl(ca + ["-o", p[0], "-o", p[1], "-o", p[2], "-w", "%{http_code} %{num_connects}\\n",
                         https(port, "/app/1", host), https(port, "/static/small", host), https(port, "/nothere", host)])
        check_eq(r.stdout.split(), ["200", "1", "200", "0", "404", "0"],
                 "keep-alive over TLS to %s: app, static, the daemon's own 404 on one connection" % host)

        # a 100 MiB file (sendfile's path: read and sealed in the library) and 5 MiB uploads,
        # both framings
        out = s.path("big.out")
        r = s.curl(ca + ["-o", out, https(port, "/static/big", host)], timeout=90)
        with open(out, "rb") as f:
            got = f.read()
        check(r.returncode == 0 and hashlib.sha256(got).digest() == hashlib.sha256(big).digest(),
              "100 MiB file over TLS from %s is intact" % host, "rc %d, %d bytes" % (r.returncode, len(got)))
        up = s.path("up")
        with open(up, "wb") as f:
            f.write(big[:5 * 1024 * 1024])
        for framing in ([], ["-H", "Transfer-Encoding: chunked"]):
            r = s.curl(ca + framing + ["--data-binary", "@" + up, "-o", out, https(port, "/echo/", host)], timeout=60)
            with open(out, "rb") as f:
                got = f.read()
            check(r.returncode == 0 and got == big[:5 * 1024 * 1024],
                  "5 MiB upload echoed over TLS to %s (%s)" % (host, "chunked" if framing else "Content-Length"),
                  "rc %d, %d bytes" % (r.returncode, len(got)))

    host = s.hosts[0]
    # who and status name the TLS port and its bindings
    r = d.ctl("who", str(port))
    check("port %d is TLS" % port in r.stdout and "certificate ipport 0.0.0.0:%d" % port in r.stdout
          and "certificate hostport rsa.test:%d: CN=rsa.test" % port in r.stdout,
          "who names the TLS port and its certificate bindings", r.stdout)
    check(", TLS" in d.status_text(), "status marks the endpoint TLS", d.status_text()[:400])

    # a 100 MiB chunked upload, streamed through the records both ways (the echo app)
    up = s.path("up100")
    with open(up, "wb") as f:
        f.write(big)
    out = s.path("up100.out")
    r = s.curl(ca + ["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + up, "-o", out,
                     https(port, "/echo/", host)], timeout=120)
    with open(out, "rb") as f:
        got = f.read()
    check(r.returncode == 0 and hashlib.sha256(got).digest() == hashlib.sha256(big).digest(),
          "a 100 MiB chunked upload over TLS echoed intact", "rc %d, %d bytes" % (r.returncode, len(got)))
    del got
    os.unlink(up)
    os.unlink(out)

    # SNI picks the RSA certificate; a client that trusts only it verifies it
    r = s.get("https://rsa.test:%d/app/r" % port, extra=["--cacert", rsa_cert], resolve="rsa.test:%d:%s" % (port, host))
    check_eq(r.status, 200, "SNI rsa.test: the RSA certificate verifies and the worker answers")
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "rsa.test"], [], wait=0.3)
    check("Server public key is 2048 bit" in out, "SNI rsa.test gets the RSA key", out[-600:])
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "localhost"], [], wait=0.3)
    check("Server public key is 256 bit" in out, "SNI localhost (no hostport binding) gets the ipport ECDSA key", out[-600:])

    # ALPN: http/1.1 is offered, h2 is not
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-alpn", "h2,http/1.1"], [], wait=0.3)
    check("ALPN protocol: http/1.1" in out, "ALPN: http/1.1 chosen over h2", out[-600:])

    # resumption by session ticket
    sess = s.path("sess")
    req = get_req("/app/t", host="localhost", extra="Connection: close\r\n")
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "localhost", "-sess_out", sess], [req])
    check("path=/app/t" in out and os.path.exists(sess), "first handshake served and a ticket kept", out[-400:])
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "localhost", "-sess_in", sess], [req])
    check("Reused, TLSv1.3" in out and "path=/app/t" in out, "the ticket resumes the session", out[-600:])

    # the client's record size limit: 512-byte records for a 3000-byte body (TLS 1.3 and 1.2)
    for prio in ("NORMAL", "NORMAL:-VERS-TLS1.3"):
        out = interactive(["gnutls-cli", "--x509cafile", ec_cert, "-p", str(port), "--recordsize=512", "--priority",
                           prio, "--sni-hostname", "localhost", "--verify-hostname", "localhost", host],
                          [get_req("/static/small", host="localhost", extra="Connection: close\r\n")], wait=1.0)
        check("a" * 3000 in out, "gnutls-cli --recordsize=512 (%s) reads the whole body" % prio, out[-400:])

    # renegotiation after a handoff: refused, the connection closed, the daemon fine
    mark = d.mark()
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "localhost", "-tls1_2"],
                  [get_req("/app/reneg", host="localhost"), 0.5, b"R\n"], wait=1.0, commands=True)
    check("path=/app/reneg" in out and "RENEGOTIATING" in out, "openssl renegotiates after a response", out[-600:])
    check("pid=" not in out.split("RENEGOTIATING", 1)[1], "nothing is served after the renegotiation", out[-400:])
    r = s.get(https(port, "/app/after", host), extra=ca)
    check_eq(r.status, 200, "after the refused renegotiation the daemon serves")

    # TLS 1.1 and below are refused
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], [], wait=0.3)
    check("Cipher is (NONE)" in out or "alert" in out or "no protocols available" in out,
          "a TLS 1.1 handshake is refused", out[-400:])

    # plain HTTP to the TLS port: 400 in clear, then the close
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(get_req("/app/x", host="localhost"))
    data = b""
    while True:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    c.close()
    check(data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data,
          "plain HTTP on the TLS port gets 400 in clear text and a close", repr(data[:200]))
    d.wait_error_log(400, "plain HTTP sent to a TLS port", since=mark)

    # 421: SNI other.test, Host localhost, which other.test's certificate does not cover
    t = tls_conn(host, port, other_cert, "other.test")
    t.sendall(get_req("/app/m", host="localhost"))
    resp = read_response(t)
    check_eq(resp.status, 421, "Host not covered by the SNI name's certificate: 421")
    t.sendall(get_req("/app/m", host="other.test"))
    resp = read_response(t)
    check_eq(resp.status, 200, "the same connection, Host = SNI name: served")
    t.close()

    # a port that is TLS cannot take http:// prefixes, and the refusal says why
    w = s.testworker(["http://+:%d/plain/" % port], ready=False)
    w.wait()
    check("TLS or plain" in w.stderr() + w.stdout(), "http:// on a TLS port is refused, naming the rule",
          (w.stderr() + w.stdout())[-400:])

    # a port with an https:// prefix and no binding: an alert and an error-log reason
    port2 = s.free_port()
    s.hello(["https://+:%d/" % port2], text="nobinding")
    mark = d.mark()
    r = s.get(https(port2, "/", host), extra=["-k"])
    check_eq(r.status, 0, "a handshake without a binding fails")
    d.wait_error_log(0, "TLS handshake", since=mark)

    # a handshake that stalls costs a timer: closed after HeaderWait (2 s)
    c = socket.create_connection((host, port), timeout=10)
    c.sendall(b"\x16\x03\x01")
    t0 = time.monotonic()
    try:
        left = c.recv(100)
    except ConnectionResetError:
        left = b""
    took = time.monotonic() - t0
    check(left == b"" and 1.5 < took < 6, "a stalled handshake is closed after HeaderWait",
          "%r after %.1f s" % (left, took))
    c.close()

    # --upgrade under a kept TLS connection: the record state goes to the new daemon; and
    # a handshake begun before it (half a ClientHello sent) finishes in the old daemon,
    # whose connection is then handed over with its records
    # (HeaderWait 10 from here: the half-done handshake must outlast a slow start of the new
    # daemon on a loaded machine)
    with open(d.config) as f:
        lines = [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#") and "HeaderWait" not in l]
    mark = d.mark()
    d.write_config(lines + ["HeaderWait 10"])
    d.reload()
    d.wait_log(r"reloaded", since=mark)
    t = tls_conn(host, port, ec_cert, "localhost")
    t.sendall(get_req("/app/before", host="localhost"))
    check_eq(read_response(t).status, 200, "kept connection: before the upgrade")
    hctx = ssl.create_default_context(cafile=ec_cert)
    inbio, outbio = ssl.MemoryBIO(), ssl.MemoryBIO()
    hs = hctx.wrap_bio(inbio, outbio, server_hostname="localhost")
    raw = socket.create_connection((host, port), timeout=5)
    try:
        hs.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outbio.read()
    raw.sendall(hello[:len(hello) // 2])
    d.expected_exit = True
    d2 = s.daemon(args=("--upgrade",), state_dir=d.state_dir, sock=d.sock, limits={"HeaderWait": 10})
    raw.sendall(hello[len(hello) // 2:])

    def pump(until):
        for _ in range(100):
            try:
                return until()
            except ssl.SSLWantReadError:
                pass
            out = outbio.read()
            if out:
                raw.sendall(out)
            data = raw.recv(65536)
            if not data:
                return None
            inbio.write(data)
    pump(hs.do_handshake)
    raw.sendall(outbio.read())
    hs.write(get_req("/app/mid-handshake", host="localhost", extra="Connection: close\r\n"))
    raw.sendall(outbio.read())
    got = pump(lambda: hs.read(65536))
    check(got is not None and got.startswith(b"HTTP/1.1 200 ") and b"path=/app/mid-handshake" in got,
          "a handshake begun before --upgrade finishes, and its request is served", repr(got)[:300])
    raw.close()
    d.wait(timeout=15)
    for i in range(3):
        t.sendall(get_req("/app/after%d" % i, host="localhost"))
        resp = read_response(t)
        check(resp.status == 200 and b"path=/app/after%d" % i in resp.body,
              "kept TLS connection after the upgrade: request %d served" % i, repr(resp))
    t.close()
    r = s.get(https(port, "/app/new", host), extra=ca)
    check_eq(r.status, 200, "a new TLS connection after the upgrade")

    # the session-ticket key is the daemon's and kept in its state directory: a session
    # from before the upgrade resumes after it, and after a restart
    req = get_req("/app/resumed", host="localhost", extra="Connection: close\r\n")
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "localhost", "-sess_in", sess], [req])
    check("Reused, TLSv1.3" in out and "path=/app/resumed" in out, "a ticket from before --upgrade resumes after it",
          out[-400:])
    d2.stop()
    d3 = s.daemon(state_dir=d.state_dir, sock=d.sock, limits={"HeaderWait": 2})
    # the app re-registers by itself (the library reconnects)
    check(wait_until(lambda: s.get(https(port, "/app/back", host), extra=ca).status == 200, 10),
          "after the restart the app is back on its https prefix")
    out = openssl(s, ["-connect", "%s:%d" % (url_host(host), port), "-servername", "localhost", "-sess_in", sess], [req])
    check("Reused, TLSv1.3" in out and "path=/app/resumed" in out, "a ticket from before a restart resumes after it",
          out[-400:])
