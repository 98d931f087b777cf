# 96-man-pages: the man pages in man/ render without a groff warning, name every command, verb and option the binaries' --help lists (portshare-proxy, portshare-run and portshare-apps too), every config setting and every public function, and libportshare(3)'s example compiles and serves.
import os
import re
import shutil
import signal
import subprocess
import textwrap

from harness import (REPO, Proc, Story, all_held, check, expect, find_queue, get_req, is_sanitizer_build,
                     request_once, wait_until, write_config)

MAN = os.path.join(REPO, "man")
PAGES = {
    "portshared": "portshared.8",
    "portsharectl": "portsharectl.8",
    "conf": "portshare.conf.5",
    "lib": "libportshare.3",
    "proxy": "portshare-proxy.1",
    "run": "portshare-run.1",
    "apps": "portshare-apps.8",
}


def groff(args, path):
    return subprocess.run(["groff"] + args + [path], capture_output=True, text=True, timeout=30)


def plain(path):
    """The page as text, as wide as needed, unhyphenated, whitespace collapsed: for finding words."""
    r = groff(["-man", "-Tutf8", "-P-c", "-rLL=250n", "-rHY=0"], path)
    text = re.sub(".\b", "", r.stdout)  # overstriking (bold, underline)
    for dash in "\u2010\u2011\u2212":
        text = text.replace(dash, "-")
    return re.sub(r"\s+", " ", text)


def has_word(text, word):
    return re.search(r"(?<![\w-])%s(?![\w])" % re.escape(word), text) is not None


def section(text, name, following):
    """The text of section `name` (an upper-case heading) up to the next heading in `following`."""
    start = text.find(" %s " % name)
    if start < 0:
        return ""
    ends = [text.find(" %s " % f, start + 1) for f in following]
    ends = [e for e in ends if e > 0]
    return text[start:min(ends) if ends else len(text)]


with Story() as s:
    check(shutil.which("groff") is not None, "groff is installed (Debian package groff-base)")
    paths = {k: os.path.join(MAN, v) for k, v in PAGES.items()}
    for k, p in paths.items():
        check(os.path.isfile(p), "man/%s exists" % PAGES[k])

    # 1. No warning, in troff mode and as man(1) shows it on an 80-column terminal; and
    #    nothing wider than that terminal.
    for k, p in paths.items():
        page = PAGES[k]
        for mode, args in (("troff", ["-ww", "-z", "-man"]),
                           ("80 columns", ["-ww", "-z", "-man", "-Tutf8", "-rLL=80n"])):
            r = groff(args, p)
            expect(r.returncode == 0 and not r.stderr.strip(), "%s: groff %s prints no warning (%s)"
                   % (page, " ".join(args), mode), r.stderr.strip()[:800])
        r = groff(["-man", "-Tutf8", "-P-c", "-rLL=80n"], p)
        wide = [line for line in re.sub(".\b", "", r.stdout).splitlines() if len(line) > 80]
        expect(not wide, "%s: no line wider than 80 columns" % page, "\n".join(wide[:5]))
        name, sect = os.path.splitext(page)
        head = r.stdout.splitlines()[0] if r.stdout else ""
        expect(head.startswith("%s(%s)" % (name.upper(), sect[1:])), "%s: its title is %s(%s)"
               % (page, name.upper(), sect[1:]), head)

    text = {k: plain(p) for k, p in paths.items()}

    # 2. portsharectl(8): every command, verb and option its --help texts list.
    ctl = s.bin("portsharectl")
    r = s.run([ctl, "--help"])
    check(r.returncode == 0, "portsharectl --help exits 0")
    commands = []
    for line in r.stdout.splitlines():
        m = re.match(r"^  ([a-z]+) ", line)
        if m and m.group(1) not in commands:
            commands.append(m.group(1))
    expect(set(commands) >= {"status", "who", "urlacl", "iplisten", "exclude", "grant"},
           "portsharectl --help lists status, who, urlacl, iplisten, exclude, grant (found %s)"
           % " ".join(commands))
    options = set(re.findall(r"--[a-z][a-z-]*", r.stdout))
    t = text["portsharectl"]
    verbs_seen = set()
    for cmd in commands:
        h = s.run([ctl, cmd, "--help"])
        expect(h.returncode == 0 and h.stdout.startswith("usage: portsharectl %s" % cmd),
               "portsharectl %s --help prints its usage" % cmd, h.stdout[:200] + h.stderr[:200])
        options |= set(re.findall(r"--[a-z][a-z-]*", h.stdout))
        # the usage lines: "usage: portsharectl CMD VERB ..." and "       portsharectl CMD VERB ..."
        verbs = sorted(set(re.findall(r"^(?:usage:)? +portsharectl %s ([a-z]+)" % cmd, h.stdout, re.M)))
        verbs_seen |= set(verbs)
        expect(has_word(t, cmd), "portsharectl.8 names the command %s" % cmd)
        for v in verbs:
            expect("%s %s" % (cmd, v) in t, "portsharectl.8 names '%s %s'" % (cmd, v))
    expect(verbs_seen >= {"add", "delete", "show"}, "the command helps list the verbs add, delete, show (found %s)"
           % " ".join(sorted(verbs_seen)))
    expect(options >= {"--socket", "--help", "--json", "--user", "--group", "--owner"},
           "the portsharectl helps list --socket --help --json --user --group --owner (found %s)"
           % " ".join(sorted(options)))
    for o in sorted(options):
        expect(has_word(t, o), "portsharectl.8 names the option %s" % o)
    for what in ("EXIT STATUS", "EXAMPLES", "PORTSHARE_SOCKET", "/run/portshare/control.sock"):
        expect(what in t, "portsharectl.8 has %s" % what)

    # 3. portshared(8): every option of portshared --help, the signals, the notify messages,
    #    the files and the exit statuses.
    r = s.run([s.bin("portshared"), "--help"])
    check(r.returncode == 0, "portshared --help exits 0")
    options = sorted(set(re.findall(r"--[a-z][a-z-]*", r.stdout)))
    want = {"--socket", "--state-dir", "--config", "--threads", "--user", "--no-seccomp", "--upgrade",
            "--check-sandbox"}
    expect(set(options) >= want, "portshared --help lists %s (found %s)" % (" ".join(sorted(want)), " ".join(options)))
    t = text["portshared"]
    opts_section = section(t, "OPTIONS", ["SIGNALS", "SYSTEMD NOTIFY PROTOCOL", "UPGRADE"])
    for o in options:
        expect(has_word(opts_section, o), "portshared.8 describes the option %s under OPTIONS" % o)
    for what in ("SIGTERM", "SIGHUP", "READY=1", "RELOADING=1", "STOPPING=1", "MAINPID=", "EXIT STATUS",
                 "/run/portshare/control.sock", "/var/lib/portshare/settings", "/var/lib/portshare/lock",
                 "NOTIFY_SOCKET", "CAP_NET_BIND_SERVICE", "seccomp"):
        expect(what in t, "portshared.8 has %s" % what)

    # 4. portshare.conf(5): every setting of docs/CONFIG.md's table with its default, and every
    #    name the daemon itself knows (its "unknown setting" message lists them).
    with open(os.path.join(REPO, "docs", "CONFIG.md")) as f:
        rows = re.findall(r"^\| `([A-Za-z]+)[^`]*` \| ([^|]+?) \|", f.read(), re.M)
    documented = [name for name, _ in rows]
    check(len(documented) >= 15, "docs/CONFIG.md's table has the settings (%d)" % len(documented))
    bad = s.path("unknown.conf")
    write_config(bad, ["NoSuchSetting 1"])
    r = s.run([s.bin("portshared"), "--config", bad, "--socket", s.path("never.sock"),
               "--state-dir", s.path("never-state")])
    m = re.search(r"known: ([^)]*)\)", r.stderr)
    check(r.returncode == 1 and m, "portshared names the settings it knows when one is unknown", r.stderr[-400:])
    known = [w.strip() for w in m.group(1).split(",")]
    expect(sorted(known) == sorted(documented), "the daemon knows exactly the settings docs/CONFIG.md lists",
           "daemon only: %s; CONFIG.md only: %s" % (sorted(set(known) - set(documented)),
                                                     sorted(set(documented) - set(known))))
    t = text["conf"]
    settings_section = section(t, "SETTINGS", ["EXAMPLES", "SEE ALSO"])
    for name, default in rows:
        m = re.search(r"(?<![\w-])%s (\S+) (.*?)Default: ([^ ]+?)\." % re.escape(name), settings_section)
        expect(m is not None, "portshare.conf.5 describes %s under SETTINGS, with its default" % name)
        if m:
            expect(m.group(3) == default.strip(), "portshare.conf.5: %s defaults to %s as in docs/CONFIG.md"
                   % (name, default.strip()), "the page says %s" % m.group(3))
    for name in known:
        expect(has_word(t, name), "portshare.conf.5 names %s" % name)

    # 5. libportshare(3): every function and error code of include/portshare.h.
    with open(os.path.join(REPO, "include", "portshare.h")) as f:
        header = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    functions = sorted(set(re.findall(r"\b(ps_[a-z_]+)\s*\(", header)))
    codes = sorted(set(re.findall(r"\b(PS_E[A-Z]+)\s*=", header)))
    check(len(functions) >= 35 and len(codes) >= 16, "include/portshare.h declares %d functions and %d error codes"
          % (len(functions), len(codes)))
    t = text["lib"]
    synopsis = section(t, "SYNOPSIS", ["DESCRIPTION"])
    description = section(t, "DESCRIPTION", ["RETURN VALUE"])
    for fn in functions:
        expect(fn + "(" in synopsis and fn + "()" in description,
               "libportshare.3 declares %s in SYNOPSIS and describes it under DESCRIPTION" % fn)
    errors = section(t, "ERRORS", ["ENVIRONMENT", "EXAMPLES"])
    for code in codes:
        expect(has_word(errors, code), "libportshare.3 lists %s under ERRORS" % code)
    for what in ("ps_strerror", "ps_client_message", "PORTSHARE_SOCKET", "PORTSHARE_DELEGATION", "RETURN VALUE"):
        expect(what in t, "libportshare.3 has %s" % what)
    # 5b. portshare-proxy(1) and portshare-run(1): every option of their --help under OPTIONS.
    for key, prog in (("proxy", "portshare-proxy"), ("run", "portshare-run")):
        r = s.run([s.bin(prog), "--help"])
        check(r.returncode == 0, "%s --help exits 0" % prog)
        options = sorted(set(re.findall(r"--[a-z][a-z-]*", r.stdout)))
        expect(len(options) >= 8, "%s --help lists its options (found %s)" % (prog, " ".join(options)))
        opts_section = section(text[key], "OPTIONS", ["SIGNALS", "EXIT STATUS"])
        for o in options:
            expect(has_word(opts_section, o), "%s describes the option %s under OPTIONS" % (PAGES[key], o))
        for what in ("EXIT STATUS", "EXAMPLES", "PORTSHARE_SOCKET", "SEE ALSO"):
            expect(what in text[key], "%s has %s" % (PAGES[key], what))
    # 5c. portshare-apps(8): every option of its --help under OPTIONS, its files.
    r = s.run([s.bin("portshare-apps"), "--help"])
    check(r.returncode == 0, "portshare-apps --help exits 0")
    options = sorted(set(re.findall(r"--[a-z][a-z-]*", r.stdout)))
    expect(len(options) >= 4, "portshare-apps --help lists its options (found %s)" % " ".join(options))
    opts_section = section(text["apps"], "OPTIONS", ["EXIT STATUS"])
    for o in options:
        expect(has_word(opts_section, o), "portshare-apps.8 describes the option %s under OPTIONS" % o)
    for what in ("EXIT STATUS", "EXAMPLES", "PORTSHARE_SOCKET", "SEE ALSO", "/etc/portshare/apps/",
                 "/run/portshare-apps/apps.sock"):
        expect(what in text["apps"], "portshare-apps.8 has %s" % what)
    all_held()

    # 6. The example of libportshare(3), copied from the page as man(1) shows it, compiles
    #    without a warning and does what the page says.
    shown = groff(["-man", "-Tutf8", "-P-c", "-rLL=80n"], paths["lib"]).stdout
    lines = re.sub(".\b", "", shown).splitlines()
    first = [i for i, line in enumerate(lines) if "/* count.c:" in line]
    check(len(first) == 1, "libportshare.3 shows one example program (/* count.c: ...)")
    last = [i for i, line in enumerate(lines) if i > first[0] and line.strip() == "Build and run it:"]
    check(last, "the example program is followed by 'Build and run it:'")
    source = textwrap.dedent("\n".join(lines[first[0]:last[0]])).strip() + "\n"
    check(all(ord(ch) < 128 for ch in source), "the example renders as plain ASCII (copy and paste works)",
          repr([ch for ch in source if ord(ch) >= 128][:10]))
    src = s.path("count.c")
    with open(src, "w") as f:
        f.write(source)
    lib = os.path.join(s.build, "lib")
    exe = s.path("count")
    cc = [os.environ.get("CC", "cc"), "-Wall", "-Wextra", "-Werror", "-I", os.path.join(REPO, "include"),
          "-o", exe, src, "-L", lib, "-lportshare", "-Wl,-rpath," + lib]
    if is_sanitizer_build(s.build):
        cc[1:1] = ["-fsanitize=address,undefined"]
    r = s.run(cc, timeout=60)
    check(r.returncode == 0, "the example compiles with -Wall -Wextra -Werror and links libportshare",
          r.stderr[-1500:])

    d = s.daemon()
    port = s.free_port()
    env = dict(s.env, PORTSHARE_SOCKET=d.sock)  # ps_connect(NULL, ...) takes $PORTSHARE_SOCKET
    app = Proc(s, [exe, "http://+:%d/count/" % port], "count", env)
    app.wait_for(r"count: serving http://\+:%d/count/" % port, "stderr", timeout=10)
    resp = request_once(port, get_req("/count/x"))
    check(resp.status == 200 and resp.text() == "GET /count/x: 0 bytes\n", "GET /count/x: 0 bytes",
          repr(resp))
    resp = request_once(port, get_req("/count/y", method="POST", extra="Content-Length: 5\r\n") + b"hello")
    check(resp.status == 200 and resp.text() == "POST /count/y: 5 bytes\n", "POST /count/y: 5 bytes", repr(resp))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in [b"x" * 600000, b"y" * 600000]) + b"0\r\n\r\n"
    resp = request_once(port, get_req("/count/z", method="POST", extra="Transfer-Encoding: chunked\r\n") + chunks,
                        timeout=10)
    check(resp.status == 413, "a chunked body over the queue's max_body (1 MiB) gets the example's 413",
          repr(resp))
    app.signal(signal.SIGTERM)
    rc = app.wait(10)
    app.expected_exit = True
    check(rc == 0, "the example exits 0 on SIGTERM (drains, then closes)", "status %r" % rc)
    check(wait_until(lambda: find_queue(d.status(), "count") is None, 5, 0.1),
          "its queue 'count' is gone from the daemon")
