# 59-systemd-notify: the daemon speaks systemd's notify protocol on $NOTIFY_SOCKET (a datagram socket the story listens on): READY=1 once it accepts, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on a real stop; after --upgrade the new daemon sends MAINPID=its pid with READY=1 and the old one sends nothing more (a STOPPING=1 from it would make systemd stop the unit). Also with PORTSHARE_DEFAULTS=1.
import os
import signal
import socket
import time
from harness import Story, check, check_eq, say


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
    port = s.free_port()
    app = s.hello(["http://+:%d/" % port], text="N")
    check_eq(s.get(s.url(port, "/x", s.hosts[0])).status, 200, "it serves")

    ns.drain(0.1)
    d.reload()
    m1 = ns.wait_for("RELOADING=1")
    m2 = ns.wait_for("READY=1")
    check(m1 is not None and m2 is not None, "SIGHUP: RELOADING=1, then READY=1", repr(ns.got[-4:]))

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

    app.stop()
    ns.drain(0.1)
    d2.expected_exit = True
    d2.signal(signal.SIGTERM)
    m = ns.wait_for("STOPPING=1")
    check(m is not None, "SIGTERM: STOPPING=1 (a real stop)")
    check_eq(d2.wait(10), 0, "the daemon exits 0")
    say("  notify messages seen: %r" % ns.got)
