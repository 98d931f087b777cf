# 95-least-privilege: `portshared --user` drops to a throwaway system user with only CAP_NET_BIND_SERVICE and a seccomp filter (none in the ASan build), still binds a port below 1024 later, reloads, answers status, exits 0; --check-sandbox sees execve refused and the log names it. Needs root. Also with PORTSHARE_DEFAULTS=1.
import os
import secrets
import subprocess
from harness import Story, check, check_eq, fail, free_low_port, say, listening, hello_body_re

ONLY_NET_BIND_SERVICE = "0000000000000400"  # 1 << CAP_NET_BIND_SERVICE (10)
SYS_EXECVE = {"x86_64": 59, "aarch64": 221}[os.uname().machine]


def proc_status(pid):
    """The lines of /proc/PID/status as a dict (key without the colon -> value)."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)




def run_as(uid, gid, argv, env, cwd, timeout=10):
    """Runs argv as uid/gid with no supplementary groups; returns CompletedProcess (text)."""
    def drop():
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    return subprocess.run(argv, preexec_fn=drop, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def plain_user_can_bind(uid, gid, port):
    """Whether a process of uid without capabilities may bind 127.0.0.1:port (the control
    that shows the daemon's bind below 1024 is the capability's doing)."""
    code = ("import socket\ns = socket.socket()\ntry:\n    s.bind(('127.0.0.1', %d))\nexcept PermissionError:\n"
            "    raise SystemExit(3)\n" % port)
    r = run_as(uid, gid, ["python3", "-c", code], None, "/")
    return r.returncode != 3


with Story() as s:
    if os.geteuid() != 0:
        fail("this story needs root: it creates a system user with useradd and starts portshared as root "
             "so that it drops to that user (run the suite as root)")
    name = "ps95" + secrets.token_hex(4)
    created = False
    d = None
    try:
        r = s.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        check_eq(r.returncode, 0, "useradd --system %s" % name)
        created = True
        out = s.run(["id", "-u", name]).stdout.strip(), s.run(["id", "-g", name]).stdout.strip()
        uid, gid = int(out[0]), int(out[1])
        say("  throwaway user %s: uid %d, gid %d" % (name, uid, gid))

        exe = s.bin("portshared")
        r = s.run([exe, "--user", name + "-nobody", "--socket", s.path("x.sock"), "--state-dir", s.path("x")])
        check(r.returncode != 0 and "portshared: error: no such user '%s-nobody'" % name in r.stderr,
              "an unknown user: exit non-zero, 'no such user'", "exit %d, %r" % (r.returncode, r.stderr))
        r = run_as(uid, gid, [exe, "--user", "root", "--socket", s.path("y.sock"), "--state-dir", s.path("y")],
                   s.env, s.dir)
        check(r.returncode != 0 and "needs root" in r.stderr,
              "--user root started as %s: exit non-zero, says it needs root" % name,
              "exit %d, %r" % (r.returncode, r.stderr))

        # the socket's directory belongs to the user, so the daemon can remove the socket at exit
        run = s.path("run")
        os.mkdir(run)
        os.chown(run, uid, gid)
        d = s.daemon(sock=os.path.join(run, "control.sock"), args=["--user", name])
        d.wait_log(r"running as user %s \(uid %d, gid %d\)" % (name, uid, gid))
        st = proc_status(d.pid)
        check_eq(st["Uid"].split(), [str(uid)] * 4, "daemon Uid (real, effective, saved, fs)")
        check_eq(st["Gid"].split(), [str(gid)] * 4, "daemon Gid (real, effective, saved, fs)")
        check_eq(st["Groups"].split(), [str(gid)], "daemon supplementary groups: the user's own")
        check_eq((st["CapEff"], st["CapPrm"]), (ONLY_NET_BIND_SERVICE,) * 2,
                 "CapEff and CapPrm: CAP_NET_BIND_SERVICE only")
        check_eq((st["CapInh"], st["CapAmb"]), ("0" * 16,) * 2, "CapInh and CapAmb empty")
        check_eq(st["CapBnd"], ONLY_NET_BIND_SERVICE, "bounding set: CAP_NET_BIND_SERVICE only")
        check_eq(st["NoNewPrivs"], "1", "no_new_privs set")
        want_seccomp = "0" if s.sanitizer else "2"
        check_eq(st["Seccomp"], want_seccomp, "Seccomp mode (%s build)" % ("ASan: no filter" if s.sanitizer
                                                                         else "filter"))
        check_eq(os.stat(d.state_dir).st_uid, uid, "the state dir was given to %s" % name)
        check_eq(os.stat(d.sock).st_uid, uid, "the control socket was given to %s" % name)

        # ports are bound lazily: the one below 1024 only now, long after the drop
        low, high = free_low_port(), s.free_port()
        if int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start").read()) > low:
            check(not plain_user_can_bind(uid, gid, low),
                  "control: a plain process of %s may not bind 127.0.0.1:%d" % (name, low))
        else:
            say("  note: net.ipv4.ip_unprivileged_port_start <= %d here, the capability is not what "
                "lets the bind below work" % low)
        a = s.hello(["http://+:%d/low/" % low], text="LOW")
        b = s.hello(["http://+:%d/high/" % high], text="HIGH")
        check_eq(sorted(listening(low)), sorted(s.bound),
                 "the daemon listens on %s port %d (below 1024)" % (" and ".join(s.bound), low))

        def both_serve(when):
            for host in s.hosts:
                for port, text, app in ((low, "LOW", a), (high, "HIGH", b)):
                    path = "/%s/x" % text.lower()
                    r = s.get(s.url(port, path, host))
                    check(r.status == 200 and hello_body_re(text, path).match(r.text())
                          and ("pid=%d " % app.pid) in r.text(),
                          "%s: curl %s port %d%s answered by its worker" % (when, host, port, path), repr(r))

        both_serve("after the drop")

        mark = d.mark()
        d.write_config(["listen %s" % a for a in s.bound if not s.defaults] + ["ShutdownGrace 2", "HeaderWait 30"])
        d.reload()
        d.wait_log(r"portshared: reloaded", since=mark)
        check(d.alive(), "SIGHUP: the config was re-read as %s, the daemon runs on" % name)
        both_serve("after SIGHUP")

        st = d.status()
        check_eq(st.get("pid"), d.pid, "portsharectl status reaches the daemon")
        bound = sorted(e.get("port") for e in st.get("endpoints", []) if e.get("bound"))
        check_eq(bound, sorted([low, high] * len(s.bound)), "status: both ports bound on %s" % " and ".join(s.bound))
        check(str(low) in d.status_text(), "text status mentions port %d" % low)

        a.stop()
        b.stop()
        check_eq(d.stop(8.0), 0, "SIGTERM: exit status 0")
        check(not os.path.exists(d.sock), "the daemon removed its control socket at exit")

        r = s.run([exe, "--check-sandbox", "--user", name])
        say("  --check-sandbox said:\n" + "\n".join("    " + l for l in r.stdout.splitlines()))
        check("Uid:\t%d\t%d\t%d\t%d" % ((uid,) * 4) in r.stdout, "--check-sandbox: ended as uid %d" % uid)
        check("CapEff:\t" + ONLY_NET_BIND_SERVICE in r.stdout and "cap_net_bind_service only" in r.stdout,
              "--check-sandbox: CAP_NET_BIND_SERVICE only")
        check(r.stdout.count("(below 1024): allowed") == 1, "--check-sandbox: the kept capability binds below 1024")
        if s.sanitizer:
            check(r.returncode != 0 and "ALLOWED" in r.stdout and "sanitizer" in r.stdout,
                  "--check-sandbox (ASan build, no filter): execve allowed, exit non-zero (%d)" % r.returncode)
        else:
            check(r.returncode == 0 and "execve: refused" in r.stdout,
                  "--check-sandbox: execve refused, exit 0 (%d)" % r.returncode)
            line = "portshared: error: seccomp: system call %d (execve) is not in the allow list" % SYS_EXECVE
            check(line in r.stderr, "--check-sandbox: the error log names the refused call: %r" % line, r.stderr)
    finally:
        if d is not None:
            d.stop(8.0)  # userdel refuses while a process of the user runs
        if created:
            r = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                fail("userdel %s exited %d: %s" % (name, r.returncode, r.stderr.strip()))
            say("  ok   userdel %s" % name)
