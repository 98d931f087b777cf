# 15-default-config: portshared with no config file (wildcard v4+v6 listeners, seccomp filter) serves on 127.0.0.1 and ::1, survives SIGHUP, and rebinds a port when the listen list changes (wildcard -> 127.0.0.1 -> wildcard) under a connect loop. Always in the default configuration, in a network namespace of its own.
"""The story sets the default-configuration mode itself (harness.py), so tests/run.sh runs it
once, and by hand it enters a network namespace of its own the same way."""
import os
import time
from harness import ConnectLoop, Daemon, Proc, Story, check, check_eq, listening, say, wait_until, write_config, PS_SOCKET_ENV

os.environ["PORTSHARE_DEFAULTS"] = "1"


with Story() as s:
    # (a) the README's default run: no --config at all
    sock, state = s.path("c.sock"), s.path("state")
    os.makedirs(state)
    d = Daemon(s, sock, state, None)
    s.daemons.append(d)
    d.wait_log(r"portshared: ready", timeout=15)
    check("seccomp allow list loaded" in d.log() or s.sanitizer, "the seccomp filter is loaded (plain build)", d.log())
    port = s.free_port()
    env = dict(s.env, **{PS_SOCKET_ENV: sock})
    hi = Proc(s, [s.bin("portshare-hello"), "--url", "http://+:%d/" % port, "--text", "hi"], "hello", env).ready()
    check_eq(sorted(listening(port)), ["0.0.0.0", "::"], "port %d bound on both wildcards" % port)
    for host in s.hosts:
        r = s.get(s.url(port, "/", host))
        check(r.status == 200 and r.text().startswith("hi pid=%d " % hi.pid),
              "curl %s: answered by the app" % s.url(port, "/", host), repr(r))
    check(d.alive() and "error:" not in d.log(), "the daemon runs on, nothing in its error log", d.log())

    # (b) SIGHUP with no config file: the defaults again, the port stays
    mark = d.mark()
    d.reload()
    d.wait_log(r"reloaded \(defaults\)", since=mark)
    for host in s.hosts:
        check_eq(s.get(s.url(port, "/after-hup", host)).status, 200, "after SIGHUP: %s still served" % host)
    check_eq(sorted(listening(port)), ["0.0.0.0", "::"], "after SIGHUP: still bound on both wildcards")
    hi.stop()
    d.stop(8.0)

    # (c) the listen list changes on reload: wildcard -> 127.0.0.1 -> wildcard. A specific
    # address cannot be bound while the wildcard of its port is, so the daemon closes
    # first (after accepting its backlog), then binds.
    conf = s.path("listen.conf")
    write_config(conf, ["ShutdownGrace 2"])
    d = Daemon(s, s.path("c2.sock"), state, conf, name="portshared-listen")
    s.daemons.append(d)
    d.wait_log(r"portshared: ready", timeout=15)
    port = s.free_port()
    app = s.hello(["http://+:%d/" % port], text="L", sock=d.sock)
    check_eq(sorted(listening(port)), ["0.0.0.0", "::"], "listen list empty: both wildcards")
    loop4 = ConnectLoop(port, "/x", "127.0.0.1", interval=0.001)
    time.sleep(0.5)

    for lines, want, name in ((["listen 127.0.0.1"], ["127.0.0.1"], "wildcards -> 127.0.0.1"),
                              ([], ["0.0.0.0", "::"], "127.0.0.1 -> wildcards"),
                              (["listen 127.0.0.1", "listen ::1"], ["127.0.0.1", "::1"], "wildcards -> 127.0.0.1 and ::1"),
                              ([], ["0.0.0.0", "::"], "back to the wildcards")):
        write_config(conf, lines + ["ShutdownGrace 2"])
        mark = d.mark()
        t0 = time.monotonic()
        d.reload()
        d.wait_log(r"portshared: reloaded", since=mark)
        got = wait_until(lambda: sorted(listening(port)) == sorted(want), 3, 0.02)
        check(got, "%s: port %d bound on %s" % (name, port, " and ".join(want)), repr(listening(port)))
        check("in use" not in d.log()[mark:], "%s: no 'in use' (the daemon never fights itself)" % name, d.log()[mark:])
        time.sleep(0.5)
        failed = loop4.failures_since(t0)
        refused, reset = failed.count("refused"), failed.count("reset")
        other = [f for f in failed if f not in ("refused", "reset")]
        say("  %s: connects to 127.0.0.1 meanwhile: %d refused, %d reset, %d other" % (name, refused, reset, len(other)))
        check(refused + reset <= 10 and not other,
              "%s: at most 10 refused or reset connects in the change (one connect a millisecond: a window of milliseconds at most)" % name,
              "refused %d, reset %d, other %r" % (refused, reset, other[:3]))
        for host in ("127.0.0.1", "::1"):
            r = s.get(s.url(port, "/x", host), timeout=5)
            bound = any(a in want for a in ((host, "0.0.0.0") if host == "127.0.0.1" else (host, "::")))
            if bound:
                check(r.status == 200 and r.text().startswith("L pid=%d " % app.pid),
                      "%s: %s served by the app" % (name, host), repr(r))
            else:
                check_eq(r.status, 0, "%s: %s is not bound, refused" % (name, host))
    loop4.finish()
    say("  connect loop: %d answered, %d refused, %d reset in all"
        % (loop4.ok, loop4.failures_since(0).count("refused"), loop4.failures_since(0).count("reset")))
    check(loop4.ok > 500, "the connect loop was served throughout (%d answers)" % loop4.ok)
    check(d.alive(), "the daemon runs on")
