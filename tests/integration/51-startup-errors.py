# 51-startup-errors: a bad config line (FILE:LINE), a busy socket path and an unusable state dir each make portshared exit non-zero.
import os
from harness import Story, check, check_eq, write_config

with Story() as s:
    exe = s.bin("portshared")

    def start(sock, state, config=None):
        argv = [exe, "--socket", sock, "--state-dir", state] + (["--config", config] if config else [])
        return s.run(argv, timeout=6)

    state = s.path("state")
    os.makedirs(state)
    # write_config puts a comment on line 1, so the listed lines start at line 2
    bad = [
        ("unknown directive", ["listen 127.0.0.1", "", "# fine", "NoSuchDirective 3"], 5),
        ("bad number", ["listen 127.0.0.1", "HeaderWait soon"], 3),
        ("missing value", ["MaxRequestBytes"], 2),
        ("bad address", ["listen 127.0.0.1", "listen not-an-address"], 3),
        ("negative limit", ["RequestQueue -4"], 2),
    ]
    for name, lines, lineno in bad:
        conf = s.path("bad-%s.conf" % name.replace(" ", "-"))
        write_config(conf, lines)
        r = start(s.path("bad.sock"), state, conf)
        where = "%s:%d" % (conf, lineno)
        check(r.returncode != 0, "%s: exit status non-zero (%d)" % (name, r.returncode))
        check(where in r.stderr, "%s: the message names %s" % (name, where), repr(r.stderr[-300:]))
        check("portshared: ready" not in r.stderr, "%s: never ready" % name)

    d = s.daemon()
    r = start(d.sock, s.path("state2"))
    check(r.returncode != 0, "second daemon on a busy socket: exit status non-zero (%d)" % r.returncode)
    check(d.sock in r.stderr, "second daemon's message names the socket path", repr(r.stderr[-300:]))
    st = d.status()
    check_eq(st.get("pid"), d.pid, "the first daemon still answers on its socket")

    blocker = s.path("plain-file")
    with open(blocker, "w") as f:
        f.write("not a directory\n")
    bad_state = os.path.join(blocker, "state")
    r = start(s.path("other.sock"), bad_state)
    check(r.returncode != 0, "state dir under a regular file: exit status non-zero (%d)" % r.returncode)
    check(blocker in r.stderr, "the message names the state dir", repr(r.stderr[-300:]))
