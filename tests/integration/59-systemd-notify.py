# 59-systemd-notify: the daemon speaks systemd's notify protocol on $NOTIFY_SOCKET (a datagram socket the story listens on): READY=1 once it accepts, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on a real stop, each with a one-line STATUS=; after --upgrade the new daemon sends MAINPID=its pid with READY=1 and the old one sends nothing more (a STOPPING=1 from it would make systemd stop the unit); --upgrade --detach (ExecReload=) exits 0 once the takeover is done, after the new daemon's MAINPID= and READY=1, and leaves it serving in the background; refused (another state directory) or with no daemon running it exits 1 and the running daemon, if any, serves on. Also with PORTSHARE_DEFAULTS=1.
import os
import signal
import socket
import subprocess
import time
from harness import SANITIZER_MARKS, Story, check, check_eq, listening, say, wait_until


class NotifySocket:
    """The story's own $NOTIFY_SOCKET: every datagram with the time it came."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # the daemon may run as another user
        self.sock.settimeout(0.05)
        self.got = []
        self.seen = 0  # wait_for looks at messages from here on

    def drain(self, seconds=0.3):
        """Reads what comes within seconds; returns the messages read now (wait_for will not
        look at them)."""
        new, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                new.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
        self.got += new
        self.seen = len(self.got)
        return new

    def pending(self):
        """The messages already queued on the socket, read without waiting."""
        new = []
        self.sock.setblocking(False)
        try:
            while True:
                new.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(0.05)
        self.got += new
        self.seen = len(self.got)
        return new

    def wait_for(self, text, seconds=5.0):
        """The next message not looked at yet that has the line text, or None."""
        deadline = time.monotonic() + seconds
        while True:
            while self.seen < len(self.got):
                m = self.got[self.seen]
                self.seen += 1
                if text in m.split("\n"):
                    return m
            if time.monotonic() >= deadline:
                return None
            try:
                self.got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass


with Story() as s:
    ns = NotifySocket(s.path("notify"))
    s.env["NOTIFY_SOCKET"] = ns.path
    d = s.daemon()
    m = ns.wait_for("READY=1")
    check(m is not None, "READY=1 once the daemon accepts (%r)" % m)
    check("MAINPID" not in m, "no MAINPID on a normal start (systemd knows the pid it started)")
    check(any(l.startswith("STATUS=accepting") for l in m.split("\n")), "with a one-line STATUS=", repr(m))
    port = s.free_port()
    app = s.hello(["http://+:%d/" % port], text="N")
    check_eq(s.get(s.url(port, "/x", s.hosts[0])).status, 200, "it serves")

    ns.drain(0.1)
    d.reload()
    m1 = ns.wait_for("RELOADING=1")
    m2 = ns.wait_for("READY=1")
    check(m1 is not None and m2 is not None, "SIGHUP: RELOADING=1, then READY=1", repr(ns.got[-4:]))
    check("STATUS=accepting; reloaded %s" % d.config in m2.split("\n"), "with STATUS= naming the file", repr(m2))

    # --upgrade: the new daemon names itself the main process; the old one is silent
    ns.drain(0.1)
    d.expected_exit = True
    d2 = s.daemon(sock=d.sock, state_dir=d.state_dir, args=["--upgrade"], name="portshared-new")
    m = ns.wait_for("READY=1")
    check(m is not None and "MAINPID=%d" % d2.pid in m.split("\n"),
          "after --upgrade: READY=1 with MAINPID=%d (the new daemon)" % d2.pid, repr(m))
    check_eq(d.wait(10), 0, "the old daemon exits by itself after the handover")
    later = ns.drain(0.5)
    check(not any("STOPPING=1" in x for x in later), "the old daemon sent no STOPPING=1", repr(later))
    check_eq(s.get(s.url(port, "/y", s.hosts[0])).status, 200, "the new daemon serves")

    # a refused --upgrade --detach (another state directory): exit 1 with the reason, nothing
    # told to systemd, and the running daemon serves on
    ns.drain(0.1)
    r = s.run([s.bin("portshared"), "--socket", d2.sock, "--state-dir", s.path("other-state"), "--config",
               d2.config, "--upgrade", "--detach"], timeout=30)
    check(r.returncode == 1 and "is not the running portshared's state directory" in r.stderr,
          "--upgrade --detach refused (another --state-dir): exit %d and the reason" % r.returncode, r.stderr)
    check_eq(ns.pending(), [], "the refused upgrade sent nothing to NOTIFY_SOCKET")
    check(d2.alive() and s.get(s.url(port, "/r", s.hosts[0])).status == 200, "the running daemon serves on")

    # --upgrade --detach, as systemd's ExecReload= runs it: the command returns once the
    # takeover is done, its exit status says so, and the new daemon runs on in the background
    ns.drain(0.1)
    d2.expected_exit = True
    argv = [s.bin("portshared"), "--socket", d2.sock, "--state-dir", d2.state_dir, "--threads", "2",
            "--config", d2.config, "--upgrade", "--detach"]
    detached_log = s.path("detached.err")
    with open(detached_log, "wb") as log:  # the daemon keeps it: no pipe the story would wait on
        cmd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=s.env, cwd=s.dir)
        rc = cmd.wait(30)
    check_eq(rc, 0, "--upgrade --detach exits 0 once the takeover is done")
    queued = ns.pending()
    ready = [m for m in queued if "READY=1" in m.split("\n")]
    check(len(ready) == 1, "READY=1 was sent before the command returned", repr(queued))
    mainpid = [int(l[8:]) for l in ready[0].split("\n") if l.startswith("MAINPID=")]
    check(len(mainpid) == 1 and mainpid[0] != cmd.pid,
          "with MAINPID= of the detached daemon (%r), not of the command (%d)" % (mainpid, cmd.pid), ready[0])
    d3 = mainpid[0]
    try:
        check(os.path.exists("/proc/%d" % d3), "the detached daemon (pid %d) runs after the command exited" % d3)
        with open(detached_log) as f:
            text = f.read()
        check("portshared: ready (socket %s" % d2.sock in text and "pid %d," % d3 in text,
              "its log (the command's stderr) says it is ready with that pid", text)
        check(s.bound[0] in listening(port), "port %d is bound when READY=1 has come" % port)
        check_eq(d2.wait(10), 0, "the old daemon exits by itself after the handover")
        later = ns.drain(0.5)
        check(not any("STOPPING=1" in x for x in later), "the old daemon sent no STOPPING=1", repr(later))
        r = s.get(s.url(port, "/z", s.hosts[0]))
        check(r.status == 200 and r.text().startswith("N pid=%d " % app.pid),
              "the detached daemon serves the app (re-attached)", repr(r))
        st = s.run([s.bin("portsharectl"), "--socket", d2.sock, "status"])
        check("portshared pid %d," % d3 in st.stdout, "portsharectl status names the detached daemon", st.stdout)

        app.stop()
        ns.drain(0.1)
        os.kill(d3, signal.SIGTERM)
        m = ns.wait_for("STOPPING=1")
        check(m is not None and "STATUS=stopping: in-flight requests have 2000 ms to finish" in m.split("\n"),
              "SIGTERM: STOPPING=1 (a real stop) with STATUS=", repr(m))

        def gone():
            try:
                with open("/proc/%d/stat" % d3) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except FileNotFoundError:
                return True
        check(wait_until(gone, 10), "the detached daemon exits after SIGTERM")
        with open(detached_log) as f:
            text = f.read()
        # the harness scans the logs of the processes it started; this one it did not
        check(not any(mark in text for mark in SANITIZER_MARKS) and "portshared: stopped" in text,
              "the detached daemon's log ends with 'stopped' and has no sanitizer report", text[-2000:])
    finally:
        try:
            os.kill(d3, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # no daemon to take over from: the command fails at once and says why
    r = s.run([s.bin("portshared"), "--socket", s.path("nobody.sock"), "--state-dir", s.path("st-none"),
               "--upgrade", "--detach"], timeout=30)
    check(r.returncode == 1 and "no portshared is running on %s" % s.path("nobody.sock") in r.stderr,
          "--upgrade --detach with no daemon running: exit %d and the reason" % r.returncode, r.stderr)
    say("  notify messages seen: %r" % ns.got)
