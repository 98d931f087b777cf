# 62-sslcert: certificate bindings (portsharectl sslcert) with a daemon running as a throwaway user: root's portsharectl reads a 0600 root-owned key the daemon cannot and sends it; add by --hostport and --ipport (ECDSA, and RSA with its CA in the chain), show (text and JSON: subject, names, expiry, fingerprint, source files), the state directory's certs/ 0700 and its files 0600, the daemon's user's; a non-admin may show but not add or delete; an expired certificate is bound with a warning; a missing file, a key that is not the certificate's, garbage and a second add leave the old binding; `sslcert reload` picks up a renewed certificate (show reports the new expiry) and keeps the old one when the file is bad; SIGHUP; the bindings and the session-ticket key survive a restart and --upgrade; delete removes the files; paths with spaces and non-ASCII are found again by reload; a ~40 KB chain goes through one command, one that does not fit is refused naming the file; 30 SIGKILLs during add/delete leave the state before or after, never a mix; a state directory written by a daemon running as root is given to the daemon's user. Needs root. Also with PORTSHARE_DEFAULTS=1.
import calendar
import hashlib
import json
import os
import random
import secrets
import shutil
import ssl
import subprocess
import time

from harness import Story, check, check_eq, fail, say

SHELL = "/usr/sbin/nologin"


def certtool(s, args, template=None):
    argv = ["certtool"] + args
    if template is not None:
        path = s.path("tmpl-%s" % secrets.token_hex(4))
        with open(path, "w") as f:
            f.write(template)
        argv += ["--template", path]
    r = s.run(argv, timeout=60)
    check_eq(r.returncode, 0, "certtool %s" % " ".join(args[:1]))


def make_key(s, path, kind):
    certtool(s, ["--generate-privkey", "--key-type", kind, "--outfile", path])
    os.chmod(path, 0o600)


def self_signed(s, key, cert, cn, days):
    certtool(s, ["--generate-self-signed", "--load-privkey", key, "--outfile", cert],
             "cn = %s\ndns_name = %s\nexpiration_days = %d\ntls_www_server\n" % (cn, cn, days))


def pem_sha256(path):
    with open(path) as f:
        text = f.read()
    first = text[:text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def not_after(s, path):
    """The certificate's notAfter as show prints it (2027-01-03T21:09:25Z)."""
    r = s.run(["openssl", "x509", "-in", path, "-noout", "-enddate"])
    check_eq(r.returncode, 0, "openssl x509 -enddate %s" % path)
    t = time.strptime(r.stdout.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y GMT")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(calendar.timegm(t)))


class Users:
    """Throwaway system users for this story; remove() deletes them."""

    def __init__(self, s):
        self.s, self.names = s, []

    def add(self, kind):
        name = "ps62%s%s" % (kind, secrets.token_hex(4))
        r = self.s.run(["useradd", "--system", "--no-create-home", "--shell", SHELL, name], timeout=30)
        check_eq(r.returncode, 0, "useradd --system %s" % name)
        self.names.append(name)
        uid = int(self.s.run(["id", "-u", name]).stdout)
        gid = int(self.s.run(["id", "-g", name]).stdout)
        say("  throwaway user %s: uid %d, gid %d" % (name, uid, gid))
        return name, uid, gid

    def remove(self):
        problems = []
        for name in reversed(self.names):
            r = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30)
            if r.returncode:
                problems.append("userdel %s exited %d: %s" % (name, r.returncode, r.stderr.strip()))
            else:
                say("  ok   userdel %s" % name)
        return problems


with Story() as s:
    if os.geteuid() != 0:
        fail("this story needs root: it creates throwaway users (useradd), runs the daemon as one and "
             "reads root-only keys with portsharectl")
    users = Users(s)
    failed = None
    try:
        dname, duid, dgid = users.add("d")
        uname, uuid_, ugid = users.add("u")
        as_user = ["setpriv", "--reuid=%d" % uuid_, "--regid=%d" % ugid, "--clear-groups"]
        as_daemon = ["setpriv", "--reuid=%d" % duid, "--regid=%d" % dgid, "--clear-groups"]

        # root's keys, as certbot keeps them: 0600 root, in a 0700 directory
        keys = s.path("keys")
        os.mkdir(keys, 0o700)
        k = lambda name: os.path.join(keys, name)
        make_key(s, k("a.key"), "ecdsa")
        self_signed(s, k("a.key"), k("a.pem"), "a.test", 30)
        make_key(s, k("ca.key"), "ecdsa")
        certtool(s, ["--generate-self-signed", "--load-privkey", k("ca.key"), "--outfile", k("ca.pem")],
                 "cn = portshare test CA\nca\ncert_signing_key\nexpiration_days = 90\n")
        make_key(s, k("b.key"), "rsa")
        certtool(s, ["--generate-certificate", "--load-privkey", k("b.key"), "--load-ca-certificate", k("ca.pem"),
                     "--load-ca-privkey", k("ca.key"), "--outfile", k("b-leaf.pem")],
                 "cn = b.test\ndns_name = b.test\ndns_name = www.b.test\nexpiration_days = 20\ntls_www_server\n")
        with open(k("b.pem"), "w") as f:
            f.write(open(k("b-leaf.pem")).read() + open(k("ca.pem")).read())
        # the renewal of a.test, made now, put in place later
        make_key(s, k("a2.key"), "ecdsa")
        self_signed(s, k("a2.key"), k("a2.pem"), "a.test", 60)
        with open(k("garbage.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")

        run = s.path("run")
        os.mkdir(run)
        os.chown(run, duid, dgid)
        d = s.daemon(sock=os.path.join(run, "control.sock"), args=["--user", dname])
        d.wait_log(r"running as user %s \(uid %d" % (dname, duid))
        r = s.run(as_daemon + ["cat", k("a.key")])
        check(r.returncode != 0, "the daemon's user cannot read root's key %s" % k("a.key"), r.stdout[:80])
        port = s.free_port()

        def ctl(*args, user=False):
            argv = (as_user if user else []) + [s.bin("portsharectl"), "--socket", d.sock] + list(args)
            r = s.run(argv, timeout=20)
            say("  $ %sportsharectl %s -> %d%s" % ("(%s) " % uname if user else "", " ".join(args), r.returncode,
                                                    (": " + r.stderr.strip()) if r.returncode else ""))
            return r

        def show():
            r = ctl("sslcert", "show", "--json")
            check_eq(r.returncode, 0, "sslcert show --json exit status")
            try:
                j = json.loads(r.stdout)
            except ValueError as e:
                fail("sslcert show --json printed invalid JSON (%s): %r" % (e, r.stdout[:300]))
            return {(b["kind"], b["endpoint"]): b for b in j["bindings"]}

        def state_files():
            certs = os.path.join(d.state_dir, "certs")
            return sorted(os.listdir(certs)), certs

        # ------------------------------------------------------------ add, show
        r = ctl("sslcert", "add", "--hostport", "A.Test:%d" % port, "--cert", k("a.pem"), "--key", k("a.key"))
        check_eq(r.returncode, 0, "sslcert add --hostport (ECDSA, root-only key) exit status")
        r = ctl("sslcert", "add", "--ipport", "127.0.0.1:%d" % port, "--cert", k("b.pem"), "--key", k("b.key"))
        check_eq(r.returncode, 0, "sslcert add --ipport (RSA, chain with its CA) exit status")
        r = ctl("sslcert", "add", "--ipport", "[::]:%d" % port, "--cert", k("b.pem"), "--key", k("b.key"))
        check_eq(r.returncode, 0, "sslcert add --ipport [::] exit status")
        b = show()
        check_eq(sorted(b), sorted([("hostport", "a.test:%d" % port), ("ipport", "127.0.0.1:%d" % port),
                                    ("ipport", "[::]:%d" % port)]), "the bindings show lists (names in lower case)")
        a = b[("hostport", "a.test:%d" % port)]
        check_eq((a["subject"], a["names"], a["not_after"], a["sha256"], a["cert_file"], a["key_file"], a["expired"]),
                 ("CN=a.test", ["a.test"], not_after(s, k("a.pem")), pem_sha256(k("a.pem")), k("a.pem"), k("a.key"),
                  False), "show --json: a.test's subject, names, expiry, fingerprint, files")
        ip = b[("ipport", "127.0.0.1:%d" % port)]
        check_eq((ip["names"], ip["not_after"], ip["sha256"]),
                 (["b.test", "www.b.test"], not_after(s, k("b.pem")), pem_sha256(k("b.pem"))),
                 "show --json: the ipport binding's names, expiry and the leaf's fingerprint")
        # an expired certificate is taken, with a warning (replacing it stays the admin's call)
        make_key(s, k("old.key"), "ecdsa")
        certtool(s, ["--generate-self-signed", "--load-privkey", k("old.key"), "--outfile", k("old.pem")],
                 "cn = old.test\ndns_name = old.test\nactivation_date = \"2020-01-01 00:00:00\"\n"
                 "expiration_date = \"2021-01-01 00:00:00\"\n")
        r = ctl("sslcert", "add", "--hostport", "old.test:%d" % port, "--cert", k("old.pem"), "--key", k("old.key"))
        check(r.returncode == 0 and "warning" in r.stdout and "expired" in r.stdout,
              "an expired certificate is bound, with a warning", "exit %d, %r" % (r.returncode, r.stdout))
        o = show()[("hostport", "old.test:%d" % port)]
        check_eq((o["expired"], o["not_after"]), (True, "2021-01-01T00:00:00Z"), "show: expired, and when")
        check("EXPIRED" in ctl("sslcert", "show").stdout, "show (text) marks it EXPIRED")
        check_eq(ctl("sslcert", "delete", "--hostport", "old.test:%d" % port).returncode, 0, "delete old.test")
        r = ctl("sslcert", "show")
        check("hostport a.test:%d" % port in r.stdout and "a.test" in r.stdout and not_after(s, k("a.pem")) in r.stdout,
              "sslcert show (text) names the binding, its names and expiry", r.stdout)

        # ------------------------------------------------------------ the state directory
        files, certs = state_files()
        st = os.stat(certs)
        check_eq((oct(st.st_mode & 0o777), st.st_uid), (oct(0o700), duid), "certs/: mode 0700, the daemon's user's")
        check_eq(len([f for f in files if f.endswith(".key")]), 3, "a key file per binding in certs/")
        check_eq(len([f for f in files if f.endswith(".pem")]), 3, "a chain file per binding in certs/")
        for f in files:
            st = os.stat(os.path.join(certs, f))
            check((st.st_mode & 0o777, st.st_uid) == (0o600, duid), "certs/%s: 0600, the daemon's user's" % f,
                  "%o uid %d" % (st.st_mode & 0o777, st.st_uid))
        keys_kept = [open(os.path.join(certs, f), "rb").read() for f in files if f.endswith(".key")]
        check(open(k("a.key"), "rb").read() in keys_kept, "the daemon keeps a copy of a.key in certs/")
        ticket = open(os.path.join(certs, "ticket-key"), "rb").read()
        check_eq(len(ticket), 64, "certs/ticket-key: a 64-byte session-ticket key")

        # ------------------------------------------------------------ a non-admin
        pub = s.path("pub")
        os.mkdir(pub, 0o755)
        for name in ("a.pem", "a.key"):
            shutil.copy(k(name), os.path.join(pub, name))
            os.chmod(os.path.join(pub, name), 0o644)
        r = ctl("sslcert", "show", user=True)
        check(r.returncode == 0 and "a.test" in r.stdout, "a non-admin may show the bindings", r.stderr)
        r = ctl("sslcert", "add", "--hostport", "c.test:%d" % port, "--cert", os.path.join(pub, "a.pem"),
                "--key", os.path.join(pub, "a.key"), user=True)
        check(r.returncode == 1 and "is for admins" in r.stderr, "a non-admin's sslcert add is refused (admins only)",
              "exit %d, %r" % (r.returncode, r.stderr))
        r = ctl("sslcert", "delete", "--hostport", "a.test:%d" % port, user=True)
        check(r.returncode == 1 and "is for admins" in r.stderr, "a non-admin's sslcert delete is refused",
              "exit %d, %r" % (r.returncode, r.stderr))
        r = ctl("sslcert", "add", "--hostport", "c.test:%d" % port, "--cert", k("a.pem"), "--key", k("a.key"),
                user=True)
        check(r.returncode == 1 and k("a.pem") in r.stderr, "a non-admin's portsharectl cannot read root's files",
              r.stderr)

        # ------------------------------------------------------------ bad input changes nothing
        before = show()
        files_before = state_files()[0]
        bad = [
            ("a missing certificate file", ["--cert", k("none.pem"), "--key", k("a.key")], k("none.pem")),
            ("a missing key file", ["--cert", k("a.pem"), "--key", k("none.key")], k("none.key")),
            ("a key that is not the certificate's", ["--cert", k("a.pem"), "--key", k("b.key")], "do not match"),
            ("garbage for a certificate", ["--cert", k("garbage.pem"), "--key", k("a.key")], k("garbage.pem")),
            ("a key given as the certificate", ["--cert", k("a.key"), "--key", k("a.key")], "No certificate was found"),
        ]
        for what, args, said in bad:
            r = ctl("sslcert", "add", "--hostport", "a.test:%d" % port, *args)
            check(r.returncode == 1 and said in r.stderr, "%s: refused, saying %r" % (what, said), r.stderr)
            r = ctl("sslcert", "add", "--hostport", "new.test:%d" % port, *args)
            check(r.returncode == 1 and said in r.stderr, "%s for a new name: refused" % what, r.stderr)
        r = ctl("sslcert", "add", "--hostport", "a.test:%d" % port, "--cert", k("a2.pem"), "--key", k("a2.key"))
        check(r.returncode == 1 and "already" in r.stderr, "a second add on a bound endpoint is refused", r.stderr)
        r = ctl("sslcert", "add", "--ipport", "a.test:%d" % port, "--cert", k("a.pem"), "--key", k("a.key"))
        check(r.returncode == 1 and "ADDR:PORT" in r.stderr, "--ipport with a name is refused", r.stderr)
        r = ctl("sslcert", "add", "--hostport", "a.test:%d" % port, "--cert", k("a.pem"))
        check_eq(r.returncode, 2, "add without --key: a usage error")
        check_eq(show(), before, "after the refusals, show lists the same bindings")
        check_eq(state_files()[0], files_before, "after the refusals, certs/ holds the same files")

        # ------------------------------------------------------------ renewal: sslcert reload
        shutil.copy(k("a2.pem"), k("a.pem"))
        shutil.copy(k("a2.key"), k("a.key"))
        r = ctl("sslcert", "reload")
        check_eq(r.returncode, 0, "sslcert reload exit status")
        after = show()
        a = after[("hostport", "a.test:%d" % port)]
        check_eq((a["not_after"], a["sha256"]), (not_after(s, k("a2.pem")), pem_sha256(k("a2.pem"))),
                 "after sslcert reload, show reports the renewed certificate's expiry and fingerprint")
        check(a["not_after"] != before[("hostport", "a.test:%d" % port)]["not_after"], "the expiry changed")
        check_eq(after[("ipport", "127.0.0.1:%d" % port)], before[("ipport", "127.0.0.1:%d" % port)],
                 "the other bindings are the same")
        check_eq(len(state_files()[0]), len(files_before), "certs/: the old copies replaced, none left over")
        with open(k("a.pem"), "w") as f:
            f.write("garbage\n")
        r = ctl("sslcert", "reload")
        check(r.returncode == 1 and k("a.pem") in r.stderr, "sslcert reload with a bad file: exit 1, names it",
              r.stderr)
        check_eq(show(), after, "the bad file changed no binding (the others were sent again, unchanged)")
        shutil.copy(k("a2.pem"), k("a.pem"))

        # ------------------------------------------------------------ SIGHUP: the daemon's own copies
        mark = d.mark()
        d.reload()
        d.wait_log(r"portshared: reloaded", since=mark)
        check("not reloaded" not in d.log()[mark:], "SIGHUP reloaded the bindings", d.log()[mark:])
        check_eq(show(), after, "after SIGHUP, the same bindings")

        # ------------------------------------------------------------ a restart, then --upgrade
        check_eq(d.stop(), 0, "the daemon stops, exit 0")
        d = s.daemon(sock=d.sock, state_dir=d.state_dir, args=["--user", dname])
        d.wait_log(r"3 certificate bindings loaded")
        check_eq(show(), after, "after a restart, the same bindings")
        check_eq(open(os.path.join(certs, "ticket-key"), "rb").read(), ticket, "after a restart, the same ticket key")
        old = d
        old.expected_exit = True
        d = s.daemon(sock=old.sock, state_dir=old.state_dir, args=["--user", dname, "--upgrade"], name="new")
        d.wait_log(r"upgrade complete", timeout=10)
        check_eq(old.wait(10), 0, "the old daemon exits after the upgrade, exit 0")
        check("3 certificate bindings loaded" in d.log(), "the new daemon loaded the bindings", d.log())
        check_eq(show(), after, "after --upgrade, the same bindings")
        check_eq(open(os.path.join(certs, "ticket-key"), "rb").read(), ticket, "after --upgrade, the same ticket key")

        # ------------------------------------------------------------ delete
        r = ctl("sslcert", "delete", "--ipport", "[::]:%d" % port)
        check_eq(r.returncode, 0, "sslcert delete --ipport [::] exit status")
        r = ctl("sslcert", "delete", "--ipport", "[::]:%d" % port)
        check(r.returncode == 1 and "no binding" in r.stderr, "deleting it again: no binding", r.stderr)
        check_eq(sorted(show()), sorted([("hostport", "a.test:%d" % port), ("ipport", "127.0.0.1:%d" % port)]),
                 "show after delete")
        files = state_files()[0]
        check_eq(len([f for f in files if f.endswith(".key") or f.endswith(".pem")]), 4,
                 "certs/: the deleted binding's files are gone")
        check("not in the allow list" not in d.log() + old.log(), "no system call outside the seccomp allow list")

        # ------------------------------------------------------------ the size limit
        # text outside the PEM blocks pads the chain: ~40 KB goes through one COMMAND,
        # ~61 KB with the key and the names does not fit (PS_COMMAND_MAX, 61,440 bytes)
        for size, fits in ((40000, True), (61200, False)):
            big = k("big-%d.pem" % size)
            with open(big, "w") as f:
                f.write(open(k("a2.pem")).read())
                while f.tell() < size:
                    f.write("padding outside the PEM block, ignored by the parser\n")
            r = ctl("sslcert", "add", "--hostport", "big%d.test:%d" % (size, port), "--cert", big, "--key", k("a2.key"))
            if fits:
                check_eq(r.returncode, 0, "a %d-byte chain file is sent in one command and bound" % size)
            else:
                check(r.returncode == 1 and "do not fit in one command" in r.stderr and big in r.stderr,
                      "a %d-byte chain and its key do not fit: the error names the file and the limit" % size,
                      r.stderr)
        check_eq(len(show()), 3, "show: the big chain's binding added, the too big one not")

        # ------------------------------------------------------------ paths with spaces, non-ASCII
        odd = os.path.join(keys, "d\u00e9j\u00e0 vu 100%")
        os.mkdir(odd, 0o700)
        for name in ("a2.pem", "a2.key"):
            shutil.copy(k(name), os.path.join(odd, "my " + name))
        r = ctl("sslcert", "add", "--hostport", "odd.test:%d" % port, "--cert", os.path.join(odd, "my a2.pem"),
                "--key", os.path.join(odd, "my a2.key"))
        check_eq(r.returncode, 0, "sslcert add with files whose paths hold spaces, %% and non-ASCII")
        r = ctl("sslcert", "reload")
        check_eq(r.returncode, 0, "sslcert reload finds those files again")
        o = show()[("hostport", "odd.test:%d" % port)]
        # the daemon's JSON gives each byte past ASCII as \u00XX (json_write_string)
        check_eq(tuple(o[f].encode("latin-1").decode("utf-8") for f in ("cert_file", "key_file")),
                 (os.path.join(odd, "my a2.pem"), os.path.join(odd, "my a2.key")),
                 "show --json gives those paths, byte for byte")
        check_eq(ctl("sslcert", "delete", "--hostport", "odd.test:%d" % port).returncode, 0, "delete odd.test")

        # ------------------------------------------------------------ SIGKILL at any instant
        # one change in flight (add or delete), the daemon killed 0-40 ms after it is sent:
        # the next daemon shows the bindings before it or after it, never a mix, and certs/
        # holds exactly each binding's two files
        rnd = random.Random(62)
        kstate, ksock = s.path("kstate"), s.path("k.sock")
        kd = s.daemon(sock=ksock, state_dir=kstate, name="killed-000")
        names = []

        def kshow():
            r = s.run([s.bin("portsharectl"), "--socket", ksock, "sslcert", "show", "--json"])
            check_eq(r.returncode, 0, "sslcert show --json exit status")
            return {b["endpoint"]: b["sha256"] for b in json.loads(r.stdout)["bindings"]}

        state = kshow()
        mixes = 0
        outcomes = {"before": 0, "after": 0}
        for n in range(1, 31):
            if names and rnd.random() < 0.4:
                victim = names.pop(rnd.randrange(len(names)))
                args = ["delete", "--hostport", victim]
                after = {e: h for e, h in state.items() if e != victim}
            else:
                name = "k%d.test:%d" % (n, port)
                names.append(name)
                args = ["add", "--hostport", name, "--cert", k("a2.pem"), "--key", k("a2.key")]
                after = dict(state)
                after[name] = pem_sha256(k("a2.pem"))
            p = subprocess.Popen([s.bin("portsharectl"), "--socket", ksock, "sslcert"] + args,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rnd.uniform(0, 0.04))
            kd.kill9()
            rc = p.wait(10)
            kd = s.daemon(sock=ksock, state_dir=kstate, name="killed-%03d" % n)
            now = kshow()
            if now == after:
                outcomes["after"] += 1
            elif now == state and rc != 0:
                outcomes["before"] += 1
                if args[0] == "add":
                    names.pop()
                else:
                    names.append(victim)
            else:
                mixes += 1
                say("  round %d (%s): exit %d; before %r, after %r, now %r" % (n, " ".join(args), rc, state, after, now))
            state = now
            kfiles = os.listdir(os.path.join(kstate, "certs"))
            pems = len([f for f in kfiles if f.endswith(".pem")])
            kkeys = len([f for f in kfiles if f.endswith(".key")])
            if (pems, kkeys) != (len(now), len(now)) or any(f.endswith(".tmp") for f in kfiles):
                mixes += 1
                say("  round %d: certs/ holds %r for %d bindings" % (n, sorted(kfiles), len(now)))
        check_eq(mixes, 0, "30 kills during sslcert add/delete: every state is the one before or after "
                           "(a change portsharectl saw made is kept), certs/ holds exactly its files "
                           "(%d before, %d after)" % (outcomes["before"], outcomes["after"]))

        # ------------------------------------------------------------ from root to the daemon's user
        # kstate was written by daemons running as root: a daemon started with --user is
        # given certs/ and its files, and can change them
        check_eq(kd.stop(), 0, "the last root daemon stops, exit 0")
        krun = s.path("krun")
        os.mkdir(krun)
        os.chown(krun, duid, dgid)
        kd = s.daemon(sock=os.path.join(krun, "k.sock"), state_dir=kstate, args=["--user", dname], name="kuser")
        ksock = kd.sock
        kcerts = os.path.join(kstate, "certs")
        owners = {f: os.stat(os.path.join(kcerts, f)).st_uid for f in os.listdir(kcerts) + ["."]}
        check(set(owners.values()) == {duid}, "certs/ and its files left by root now belong to the daemon's user",
              repr(owners))
        check_eq(kshow(), state, "the daemon's user loads the bindings root's daemon made")
        r = s.run([s.bin("portsharectl"), "--socket", ksock, "sslcert", "add", "--hostport", "last.test:%d" % port,
                   "--cert", k("a2.pem"), "--key", k("a2.key")])
        check_eq(r.returncode, 0, "and adds one (exit status)")
    except BaseException as e:
        failed = e
        raise
    finally:
        # userdel refuses while a process of the user runs: the daemons go first
        for p in s.procs:
            p.stop(5.0)
        problems = users.remove()
        if problems and failed is None:
            fail("; ".join(problems))
        for p in problems:
            say("  " + p)
