# 90-smuggling: every case of tests/corpus/smuggling.txt, sent in one write and one byte per write, gets exactly its expected outcome. Also with PORTSHARE_DEFAULTS=1 (over 127.0.0.1 and ::1).
"""The corpus names apps root (http://+:PORT/), blog (/blog/) and admin (/admin/); each is a
testworker, whose answer "TEXT pid=PID path=PATH[ body=N]" says which app served the request
and which canonical path it saw. A case that does not hold is listed at the end; the story
goes on with the other cases so one run shows every disagreement."""
import os
import re
import select
import socket
import ssl
import struct
import sys
import time
from harness import REPO, Story, StoryFailure, check, check_eq, fail, fnv1a, say

sys.path.insert(0, os.path.join(REPO, "tests", "corpus"))
import corpus_format  # noqa: E402

CORPUS = os.path.join(REPO, "tests", "corpus", "smuggling.txt")
APPS = ("root", "blog", "admin")
BYTE_PAUSE = 0.001  # between single-byte writes, so each byte arrives on its own
ANSWER_WAIT = 3.0  # seconds for an answer, or for the close after one
ANSWER_RE = re.compile(r"^(\S+) pid=(\d+) path=(\S*)(?: body=(\d+))?\n$")
GOAWAY, HTTP_1_1_REQUIRED = 0x7, 0xD


class Case:
    def __init__(self, line, name, request, kind, args, rule):
        self.line = line
        self.name = name
        self.request = request
        self.kind = kind  # status, route, drop, goaway
        self.args = args  # status: (code, keep); route: (app, path); else ()
        self.rule = rule


def unescape(text, where):
    try:
        return corpus_format.unescape(text)
    except ValueError as e:
        fail("%s: %s" % (where, e))


def parse_expected(text, where):
    words = text.split(" ")
    if words[0] == "status" and len(words) in (2, 3) and re.fullmatch(r"[1-5]\d\d", words[1]) \
            and (len(words) == 2 or words[2] == "keep"):
        return "status", (int(words[1]), len(words) == 3)
    if words[0] == "route" and len(words) == 3 and words[1] in APPS and words[2].startswith("/"):
        return "route", (words[1], words[2])
    if words in (["drop"], ["goaway"]):
        return words[0], ()
    fail("%s: expected %r is none of: status NNN [keep], route APP PATH, drop, goaway" % (where, text))


def load_corpus(path):
    cases, names = [], set()
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        if line == "" or line.startswith("#"):
            continue
        where = "%s line %d" % (os.path.basename(path), n)
        fields = line.split("\t")
        if len(fields) != 4 or "" in fields:
            fail("%s: want 4 non-empty TAB-separated fields, got %d" % (where, len(fields)))
        name, request, expected, rule = fields
        if not re.fullmatch(r"[a-z0-9.-]+", name) or name in names:
            fail("%s: name %r is not [a-z0-9.-]+ or not unique" % (where, name))
        names.add(name)
        kind, args = parse_expected(expected, where)
        cases.append(Case(n, name, unescape(request, where), kind, args, rule))
    return cases


def dechunk(data):
    """The content of a chunked body (the corpus's route cases are well formed)."""
    body, pos = b"", 0
    for _ in range(1000):
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol].split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            return body
        body += data[pos:pos + size]
        pos += size + 2
    fail("chunked body with more than 1000 chunks")


def framed_body(request):
    """(has_body, content) that the request's framing declares: what the worker must read."""
    start = 0
    while request.startswith(b"\r\n", start):
        start += 2
    end = request.index(b"\r\n\r\n", start)
    fields = {}
    for line in request[start:end].decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    rest = request[end + 4:]
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return True, dechunk(rest)
    length = int(fields.get("content-length", "0"))
    return length > 0, rest[:length]


def send_case(c, data, per_byte, whole):
    """Writes data, in one write or one byte per write. Unless `whole` is set, stops once
    the peer answered or closed: the rest of a refused request is not needed, and writing
    it could only turn the close into a reset. A routed request is always sent whole, so
    that a second request hidden in its tail would be answered, and seen."""
    try:
        if not per_byte:
            c.sock.sendall(data)
            return
        for i in range(len(data)):
            c.sock.sendall(data[i:i + 1])
            time.sleep(BYTE_PAUSE)
            if not whole and c.answered_now():
                return
    except (BrokenPipeError, ConnectionResetError):
        pass


def read_final(c):
    """The first final (non-1xx) response: a worker's library may send 100 Continue first."""
    for _ in range(5):
        r = c.read_response(timeout=ANSWER_WAIT)
        if r.status >= 200:
            return r
    fail("five 1xx responses in a row")


def closed_after(c, what):
    """Fails unless the peer closes with no further bytes."""
    how, extra = c.wait_closed(ANSWER_WAIT)
    if how == "timeout" or extra:
        fail("%s: expected the connection closed with nothing more, got %s after %r" % (what, how, extra[:80]))


def h2_frames(data):
    frames, pos = [], 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos:pos + 3], "big")
        stream = struct.unpack(">I", data[pos + 5:pos + 9])[0] & 0x7FFFFFFF
        frames.append((data[pos + 3], stream, data[pos + 9:pos + 9 + length]))
        pos += 9 + length
    if pos != len(data):
        fail("not a sequence of HTTP/2 frames: %r" % data[:80])
    return frames


def expect_status(c, case, workers):
    code, keep = case.args
    r = read_final(c)
    if r.status != code:
        fail("expected status %d, got %d %r" % (code, r.status, r.body[:80]))
    if code == 200 and not (r.header("Allow") and r.body == b""):
        fail("200 from the daemon has no Allow or a body: %r" % r)
    if not keep:
        closed_after(c, "after %d" % code)
        return
    c.sock.sendall(b"GET /blog/after-keep HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_final(c)
    m = ANSWER_RE.match(r.text())
    if not (r.status == 200 and m and int(m.group(2)) == workers["blog"].pid):
        fail("the connection was not usable after %d: next request got %r" % (code, r))


def expect_route(c, case, workers):
    app, path = case.args
    r = read_final(c)
    m = ANSWER_RE.match(r.text())
    if r.status != 200 or not m:
        fail("expected %s to answer, got %d %r" % (app, r.status, r.body[:120]))
    got_app = next((a for a, w in workers.items() if w.pid == int(m.group(2))), "pid " + m.group(2))
    if (got_app, m.group(1)) != (app, app) or m.group(3) != path:
        fail("expected %s path %s, got %s path %s" % (app, path, got_app, m.group(3)))
    has_body, content = framed_body(case.request)
    if has_body:
        if m.group(4) is None or int(m.group(4)) != len(content) or r.header("X-Body-FNV1a") != fnv1a(content):
            fail("expected a body of %d bytes (fnv1a %s), the worker read %s bytes (fnv1a %s)"
                 % (len(content), fnv1a(content), m.group(4), r.header("X-Body-FNV1a")))
    elif m.group(4) is not None:
        fail("the worker saw a body of %s bytes where the request has none" % m.group(4))
    # nothing of this request may be answered as a second one (a smuggled request)
    c.half_close()
    closed_after(c, "after the answer and the client's FIN (close_notify on TLS)")


def expect_drop(c, case, workers):
    data, how = c.read_all(ANSWER_WAIT)
    if how == "timeout" or data:
        fail("expected a close without an answer, got %s after %r" % (how, data[:80]))


def expect_goaway(c, case, workers):
    data, how = c.read_all(ANSWER_WAIT)
    if how == "timeout":
        fail("expected GOAWAY and a close, the connection stayed open after %r" % data[:80])
    frames = h2_frames(data)
    away = [f for f in frames if f[0] == GOAWAY]
    if len(away) != 1 or away[0][1] != 0 or len(away[0][2]) < 8 \
            or struct.unpack(">I", away[0][2][4:8])[0] != HTTP_1_1_REQUIRED:
        fail("expected one GOAWAY(HTTP_1_1_REQUIRED) on stream 0, got %r" % frames)


EXPECT = {"status": expect_status, "route": expect_route, "drop": expect_drop, "goaway": expect_goaway}


def run_case(s, port, case, workers, per_byte, host):
    """None if the case held, else what went wrong."""
    c = s.conn(port, host, timeout=ANSWER_WAIT, tls=TLS_CONTEXT)
    try:
        send_case(c, case.request, per_byte, case.kind == "route")
        EXPECT[case.kind](c, case, workers)
        return None
    except StoryFailure as e:
        return str(e)
    except OSError as e:
        return "socket error: %r" % e
    finally:
        c.close()


# 91-smuggling-tls runs this file with SMUGGLING_TLS set: the same corpus over TLS
TLS = globals().get("SMUGGLING_TLS", False)
TLS_CONTEXT = None

with Story(name="91-smuggling-tls" if TLS else None, time_limit=240 if TLS else 100) as s:
    cases = load_corpus(CORPUS)
    check(len(cases) >= 90, "corpus has %d cases" % len(cases))
    d = s.daemon()
    port = s.free_port()
    scheme = "https" if TLS else "http"
    if TLS:
        cert, key = s.tls_certificate()
        for ep in ("0.0.0.0:%d" % port, "[::]:%d" % port):
            check_eq(d.ctl("sslcert", "add", "--ipport", ep, "--cert", cert, "--key", key).returncode, 0,
                     "sslcert add --ipport %s" % ep)
        # no SNI: the corpus's Host headers name other hosts, which the certificate's names
        # need not cover (with SNI those would get 421, a story of their own: 63)
        TLS_CONTEXT = ssl.create_default_context(cafile=cert)
        TLS_CONTEXT.check_hostname = False
    workers = {
        "root": s.testworker(["%s://+:%d/" % (scheme, port)], text="root"),
        "blog": s.testworker(["%s://+:%d/blog/" % (scheme, port)], text="blog"),
        "admin": s.testworker(["%s://+:%d/admin/" % (scheme, port)], text="admin"),
    }
    failed = []
    for case in cases:
        problems = []
        for host in s.hosts:
            for mode, per_byte in (("one write", False), ("one byte per write", True)):
                why = run_case(s, port, case, workers, per_byte, host)
                if why:
                    problems.append("%s to %s: %s" % (mode, host, why))
        if problems:
            failed.append("%s (line %d, %s): %s" % (case.name, case.line, case.rule, "; ".join(problems)))
            say("  FAIL %s: %s" % (case.name, "; ".join(problems)))
        else:
            say("  ok   %s: %s" % (case.name, " ".join(map(str, (case.kind,) + case.args))))
    if failed:
        fail("%d of %d corpus cases did not hold:\n%s" % (len(failed), len(cases), "\n".join(failed)))

    for host in s.hosts:
        r = s.get(s.url(port, "/blog/after-corpus", host).replace("http:", scheme + ":"),
                  extra=["--cacert", cert] if TLS else [])
        check(r.status == 200 and r.body.startswith(b"blog pid=%d " % workers["blog"].pid),
              "after the corpus the daemon still serves a normal request on %s" % host, repr(r))
    check(d.alive(), "the daemon is still running")
