# 66-testssl: testssl.sh (Debian's package) against a TLS port of the daemon with the seccomp filter loaded: no finding above INFO but its own local RC4 note, only TLS 1.2 and 1.3 offered, only the six AEAD suites of the record layer, no heartbeat, no compression, client renegotiation refused.
import json
import shutil

from harness import Story, check, check_eq

ALLOWED_SUITES = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                  "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                  "ECDHE-ECDSA-CHACHA20-POLY1305"}

with Story(time_limit=180) as s:
    check(shutil.which("testssl") is not None, "testssl is installed (Debian package testssl.sh; scripts/deps.sh)")
    d = s.daemon()
    port = s.free_port()
    cert, key = s.tls_certificate()
    check_eq(d.ctl("sslcert", "add", "--ipport", "0.0.0.0:%d" % port, "--cert", cert, "--key", key).returncode, 0,
             "sslcert add")
    s.hello(["https://+:%d/" % port], text="audited")
    out = s.path("testssl.json")
    # protocols, cipher categories, vulnerabilities, every cipher one by one
    r = s.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "--fast", "-p", "-s", "-U", "-e",
               "--jsonfile-pretty", out, "127.0.0.1:%d" % port], timeout=170)
    check(r.returncode in (0, 1, 2, 3) or r.returncode < 50, "testssl ran (exit %d)" % r.returncode, r.stdout[-600:])
    with open(out) as f:
        scan = json.load(f)["scanResult"][0]
    findings = [f for sect in scan.values() if isinstance(sect, list) for f in sect]
    check(len(findings) > 30, "testssl reported %d findings" % len(findings))
    bad = [f for f in findings if f.get("severity") not in ("OK", "INFO")
           and not (f["id"] == "RC4" and "local" in f["finding"].lower())]
    check(not bad, "no finding above INFO (RC4's 'not supported by local OpenSSL' aside)",
          "; ".join("%s %s: %s" % (f["id"], f["severity"], f["finding"]) for f in bad))
    protos = {f["id"]: f["finding"] for f in scan["protocols"]}
    for p in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        check(protos.get(p, "").startswith("not offered"), "%s not offered" % p, repr(protos.get(p)))
    for p in ("TLS1_2", "TLS1_3"):
        check(protos.get(p, "").startswith("offered"), "%s offered" % p, repr(protos.get(p)))
    suites = {f["finding"].split()[1] for f in scan.get("cipherTests", []) if f["id"].startswith("cipher_x")}
    check(suites and suites <= ALLOWED_SUITES, "only the record layer's AEAD suites are offered", repr(sorted(suites)))
    vulns = {f["id"]: f for f in scan["vulnerabilities"]}
    for v in ("heartbleed", "CCS", "ticketbleed", "secure_client_renego", "CRIME_TLS", "BREACH", "POODLE_SSL",
              "SWEET32", "FREAK", "LOGJAM", "BEAST", "LUCKY13"):
        check(v in vulns and vulns[v]["severity"] in ("OK", "INFO"), "%s: %s" % (v, vulns.get(v, {}).get("finding")))
    check(d.alive(), "the daemon (seccomp filter loaded) is still running after the audit")
