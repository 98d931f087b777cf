# harness.py: shared helpers for the integration stories: real daemon, apps and clients; cleans up only what it started.
"""Helpers for the numbered integration stories (tests/integration/NN-name.py).

A story is a plain Python script:

    from harness import Story, check
    with Story() as s:
        d = s.daemon()
        port = s.free_port()
        app = s.hello([f"http://+:{port}/a/"])
        r = s.get(f"http://127.0.0.1:{port}/a/x")
        check(r.status == 200, "GET /a/x answered 200")

With PORTSHARE_DEFAULTS=1 in the environment the story runs in the default configuration:
the story first moves into a network namespace of its own (loopback up), the daemon gets no
`listen` line (so it binds the wildcards 0.0.0.0 and ::, as `portshared` alone does), and
`s.hosts` is both loopbacks, 127.0.0.1 and ::1, for clients to use. Stories that support it
say "PORTSHARE_DEFAULTS=1" in their first line; tests/run.sh runs those a second time so.

Leaving the `with` block kills (SIGTERM, then SIGKILL) only the processes the story
started, fails the story if any of them printed sanitizer reports, if the daemon
died on its own, or if an exception escaped, removes the temp dir, prints PASS/FAIL
and exits 0/1. Python standard library only.
"""

import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
READY_RE = r"ready queue=(\S+)"
PS_SOCKET_ENV = "PORTSHARE_SOCKET"
DEFAULTS_ENV = "PORTSHARE_DEFAULTS"
CLONE_NEWNET = 0x40000000


class StoryFailure(Exception):
    """A check did not hold; the message says what was expected and what happened."""


def fail(msg):
    raise StoryFailure(msg)


def say(msg):
    print(msg, flush=True)


def check(cond, what, detail=""):
    """Asserts `cond`; prints 'ok   what' or raises with what + detail."""
    if cond:
        say("  ok   " + what)
        return
    fail(what + (": " + detail if detail else ""))


def check_eq(got, want, what):
    check(got == want, what, "expected %r, got %r" % (want, got))


def check_between(value, low, high, what):
    check(low <= value <= high, "%s: %s" % (what, value), "expected %s..%s" % (low, high))


# expect(): a check the story goes on past, so that one run shows every disagreement;
# all_held() at the end fails the story naming each that did not hold.
not_held = []


def expect(cond, what, detail=""):
    if cond:
        say("  ok   " + what)
        return True
    say("  FAIL " + what + (": " + detail if detail else ""))
    not_held.append(what)
    return False


def all_held():
    check(not not_held, "every check held", "%d did not:\n    %s" % (len(not_held), "\n    ".join(not_held)))


def wait_until(fn, timeout, interval=0.05):
    """Calls fn until it returns a true value or timeout seconds pass; returns the last value."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


def build_dir():
    b = os.environ.get("PORTSHARE_BUILD") or os.path.join(REPO, "build")
    return os.path.abspath(b)


def defaults_mode():
    """True when the story is to run in the default configuration (module docstring)."""
    return os.environ.get(DEFAULTS_ENV) == "1"


def netns_enter():
    """Moves this process, and every process it starts from now on, into a new network
    namespace with its loopback up: wildcard listeners there reach nothing else. Returns
    None, or why it could not (the story then fails: it must not pass silently)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        return ("unshare(CLONE_NEWNET) failed: %s; the default-configuration stories need a network "
                "namespace of their own (run them as root)" % os.strerror(ctypes.get_errno()))
    r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        return "ip link set lo up in the new network namespace failed: %s" % r.stderr.strip()
    return None


def url_host(host):
    """host as it goes into a URL: IPv6 literals in brackets."""
    return "[%s]" % host if ":" in host else host


def is_sanitizer_build(build=None):
    return "asan" in os.path.basename(build or build_dir())


def child_env(extra=None, sanitizer=False):
    env = dict(os.environ)
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
        env.pop(k, None)
    env.pop(PS_SOCKET_ENV, None)
    if sanitizer:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    if extra:
        env.update(extra)
    return env



# ---------------------------------------------------------------- /proc, ss


def fd_count(pid):
    """Number of open file descriptors of pid (entries in /proc/PID/fd)."""
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_ticks(pid):
    """utime + stime of pid in clock ticks, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # after "pid (comm) ": field 3 is state (index 0); utime is field 14, stime 15
    return int(fields[11]) + int(fields[12])


def rss_kib(pid):
    """Resident set size of pid in KiB (VmRSS in /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def listening(port):
    """Local addresses ('127.0.0.1', '::1', ...) with a TCP listener on port, per `ss -ltnH`."""
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, timeout=10).stdout
    addrs = []
    for line in out.splitlines():
        cols = line.split()
        if len(cols) < 4:
            continue
        addr, _, p = cols[3].rpartition(":")
        if p != str(port):
            continue
        addr = addr.strip("[]")
        addrs.append(addr.split("%")[0])
    return addrs


def free_low_port():
    """A port in 1000..1023 that 127.0.0.1 can bind now (stories that use it run as root)."""
    for port in range(1000, 1024):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            probe.close()
        if not listening(port):
            return port
    fail("no free port in 1000..1023 on 127.0.0.1")


def free_port(addrs=("127.0.0.1",)):
    """A TCP port nothing listens on for every address in addrs (loopback only)."""
    for _ in range(100):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        ok = True
        for a in addrs:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            t = socket.socket(fam, socket.SOCK_STREAM)
            try:
                t.bind((a, port))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok and not listening(port):
            return port
    fail("could not find a free port on %s" % (addrs,))


# ---------------------------------------------------------------- HTTP parsing


class Message:
    """What responses from the raw client and from curl share: headers and a body."""

    headers = ()
    body = b""

    def header(self, name):
        """The first header of that name (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def text(self):
        return self.body.decode("latin-1")


class Response(Message):
    def __init__(self, version, status, reason, headers, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) in order
        self.body = body
        self.raw = raw

    def __repr__(self):
        return "<%s %d %r body=%r>" % (self.version, self.status, self.reason, self.body[:120])


class Incomplete(Exception):
    pass


class BadResponse(Exception):
    pass


def _parse_chunked(buf, pos):
    """Returns (body, end) of a chunked body starting at pos, or raises Incomplete."""
    body = bytearray()
    for _ in range(1_000_000):
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            raise Incomplete()
        size_s = buf[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            raise BadResponse("bad chunk size line %r" % buf[pos:eol][:80])
        pos = eol + 2
        if size == 0:
            # trailers until an empty line
            for _ in range(1000):
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    raise Incomplete()
                line = buf[pos:eol]
                pos = eol + 2
                if not line:
                    return bytes(body), pos
            raise BadResponse("too many trailer lines")
        if len(buf) < pos + size + 2:
            raise Incomplete()
        body += buf[pos:pos + size]
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise BadResponse("chunk data not followed by CRLF")
        pos += size + 2
    raise BadResponse("too many chunks")


def parse_response(buf, method="GET", eof=False):
    """Parses one response at the start of buf. Returns (Response, bytes consumed);
    raises Incomplete when more bytes are needed, BadResponse when buf is not HTTP."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) >= 5 and not buf.startswith(b"HTTP/"):
            raise BadResponse("not an HTTP response: %r" % buf[:80])
        raise Incomplete()
    head = buf[:end].decode("latin-1")
    lines = head.split("\r\n")
    m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise BadResponse("bad status line %r" % lines[0])
    version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
    headers = []
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep:
            raise BadResponse("bad header line %r" % line)
        headers.append((k.strip(), v.strip()))
    pos = end + 4
    r = Response(version, status, reason, headers, b"", None)
    te = (r.header("Transfer-Encoding") or "").lower()
    cl = r.header("Content-Length")
    if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
        body, stop = b"", pos
    elif "chunked" in te:
        body, stop = _parse_chunked(buf, pos)
    elif cl is not None:
        n = int(cl)
        if len(buf) < pos + n:
            raise Incomplete()
        body, stop = bytes(buf[pos:pos + n]), pos + n
    else:
        if not eof:
            raise Incomplete()
        body, stop = bytes(buf[pos:]), len(buf)
    r.body = body
    r.raw = bytes(buf[:stop])
    return r, stop


def parse_responses(data, methods, eof=True):
    """Parses len(methods) responses from data (all bytes of a connection)."""
    out, pos = [], 0
    buf = bytes(data)
    for m in methods:
        r, used = parse_response(buf[pos:], m, eof)
        out.append(r)
        pos += used
    return out, buf[pos:]


# ---------------------------------------------------------------- raw client


class Conn:
    """One raw TCP connection to the daemon, with a read buffer that keeps what a
    response did not use (pipelining)."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, story=None, rcvbuf=None, sndbuf=None, tls=None,
                 server_name=None):
        """tls: an ssl.SSLContext: the connection is TLS (server_name for SNI and checking);
        each send is then one TLS record or more (one per byte with per_byte)."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:  # before connect, so the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.tls = tls is not None
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=server_name)
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.port = port
        if story is not None:
            story.conns.append(self)

    def send(self, data, split_at=None, pause=0.0, per_byte=False):
        """Sends data; split_at sends it in two writes with `pause` seconds between;
        per_byte sends one byte per write with `pause` between them."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        if per_byte:
            for i in range(len(data)):
                self.sock.sendall(data[i:i + 1])
                if pause:
                    time.sleep(pause)
        elif split_at is not None:
            self.sock.sendall(data[:split_at])
            if pause:
                time.sleep(pause)
            self.sock.sendall(data[split_at:])
        else:
            self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads once into buf; returns False on timeout, sets eof/reset."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ssl.SSLZeroReturnError:  # the peer's close_notify
            chunk = b""
        except (ConnectionResetError, ssl.SSLError):
            self.reset = True
            self.eof = True
            return True
        if not chunk:
            self.eof = True
        self.buf += chunk
        return True

    def read_response(self, method="GET", timeout=5.0):
        """Reads one whole response (1xx responses are returned on their own)."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            try:
                r, used = parse_response(self.buf, method, self.eof)
                del self.buf[:used]
                return r
            except Incomplete:
                pass
            except BadResponse as e:
                fail("bad response on port %d: %s" % (self.port, e))
            if self.eof:
                fail("connection %s after %d bytes before a whole response: %r"
                     % ("reset" if self.reset else "closed", len(self.buf), bytes(self.buf[:300])))
            if not self._fill(deadline):
                fail("no whole response within %.1fs; got %d bytes: %r"
                     % (timeout, len(self.buf), bytes(self.buf[:300])))
        fail("read_response loop bound hit")

    def request(self, data, method="GET", timeout=5.0):
        self.send(data)
        return self.read_response(method, timeout)

    def read_all(self, timeout=5.0):
        """Reads until EOF/reset or timeout; returns (bytes, how) with how in eof/reset/timeout."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            if self.eof:
                break
            if not self._fill(deadline):
                data = bytes(self.buf)
                self.buf.clear()
                return data, "timeout"
        data = bytes(self.buf)
        self.buf.clear()
        return data, ("reset" if self.reset else "eof")

    def wait_closed(self, timeout=3.0):
        """'eof' or 'reset' once the peer closed, 'timeout' if it did not; extra bytes returned too."""
        data, how = self.read_all(timeout)
        return how, data

    def read_exactly(self, n, timeout=5.0):
        """Reads exactly n raw bytes (less only on EOF/timeout; the caller compares)."""
        deadline = time.monotonic() + timeout
        for _ in range(1_000_000):
            if len(self.buf) >= n or self.eof or not self._fill(deadline):
                break
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def answered_now(self):
        """Without waiting: whether the peer sent something (kept in buf) or closed. On TLS
        a readable socket may hold only session tickets, which say nothing."""
        if self.buf or self.eof:
            return True
        if not select.select([self.sock], [], [], 0)[0]:
            return False
        if not self.tls:
            return True
        self.sock.setblocking(False)
        try:
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
            self.buf += chunk
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except (ssl.SSLError, ConnectionResetError):
            self.reset = self.eof = True
        finally:
            self.sock.setblocking(True)
        return bool(self.buf) or self.eof

    def half_close(self):
        """The client's end of sending: a FIN, or on TLS a close_notify (the peer then
        answers what it still owes and closes; the socket stays readable)."""
        if not self.tls:
            self.sock.shutdown(socket.SHUT_WR)
            return
        self.sock.setblocking(False)
        try:
            self.sock._sslobj.shutdown()  # sends close_notify; the peer's comes later
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        finally:
            self.sock.setblocking(True)

    def readable_within(self, timeout):
        """True if any byte (or EOF) arrives within timeout."""
        if self.buf or self.eof:
            return True
        deadline = time.monotonic() + timeout
        return self._fill(deadline) and (len(self.buf) > 0 or self.eof)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def request_once(port, data, method="GET", host="127.0.0.1", timeout=5.0):
    """New connection, one request, one response, close."""
    c = Conn(port, host, timeout)
    try:
        return c.request(data, method, timeout)
    finally:
        c.close()


class ConnectLoop:
    """A raw client in a thread of its own that connects anew every `interval` seconds,
    one request per connection (Connection: close), until finish() or `limit` connects:
    counts the 200s and records every refused connect, reset and other answer with its
    time, so a story can tell what happened while the daemon changed."""

    def __init__(self, port, path="/", host="127.0.0.1", interval=0.01, limit=20000):
        self.port, self.path, self.host, self.interval, self.limit = port, path, host, interval, limit
        self.ok, self.failures = 0, []  # failures: (monotonic time, "refused" | "reset" | what)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def once(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        c = socket.socket(fam, socket.SOCK_STREAM)
        c.settimeout(3)
        try:
            c.connect((self.host, self.port))
            c.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % self.path).encode())
            data = b""
            for _ in range(1000):
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data.startswith(b"HTTP/1.1 200 "):
                self.ok += 1
            else:
                self.failures.append((time.monotonic(), "answer %r" % data[:80]))
        except ConnectionRefusedError:
            self.failures.append((time.monotonic(), "refused"))
        except ConnectionResetError:
            self.failures.append((time.monotonic(), "reset"))
        except OSError as e:
            self.failures.append((time.monotonic(), "%s" % e))
        finally:
            c.close()

    def run(self):
        for _ in range(self.limit):
            if self.stop.is_set():
                return
            self.once()
            time.sleep(self.interval)

    def finish(self):
        self.stop.set()
        self.t.join(10)

    def failures_since(self, t0):
        return [what for t, what in self.failures if t >= t0]


def get_req(path, host="x", extra="", version="1.1", method="GET"):
    return ("%s %s HTTP/%s\r\nHost: %s\r\n%s\r\n" % (method, path, version, host, extra)).encode()


# ---------------------------------------------------------------- processes


class Proc:
    """A process the story started; stdout and stderr go to files in the story dir."""

    def __init__(self, story, argv, name, env=None):
        self.story = story
        self.name = name
        self.argv = argv
        n = len(story.procs)
        self.out_path = os.path.join(story.dir, "%02d-%s.out" % (n, name))
        self.err_path = os.path.join(story.dir, "%02d-%s.err" % (n, name))
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                      env=env or story.env, cwd=story.dir)
        self.pid = self.p.pid
        self.queue = None
        self.expected_exit = False
        story.procs.append(self)

    def _read(self, path):
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        return self._read(self.out_path)

    def stderr(self):
        return self._read(self.err_path)

    def alive(self):
        return self.p.poll() is None

    def wait_for(self, pattern, stream="stdout", timeout=10.0, since=0):
        """Waits for regex pattern in stdout/stderr (from character `since`); returns the match.
        Fails if the process exits without printing it."""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            text = (self.stdout() if stream == "stdout" else self.stderr())[since:]
            m = re.search(pattern, text)
            if m:
                return m
            if not self.alive():
                text = (self.stdout() if stream == "stdout" else self.stderr())[since:]
                m = re.search(pattern, text)
                if m:
                    return m
                fail("%s (pid %d) exited with status %s before printing %r; stderr:\n%s"
                     % (self.name, self.pid, self.p.returncode, pattern, indent(tail(self.stderr()))))
            if time.monotonic() > deadline:
                fail("%s (pid %d) did not print %r within %.1fs; stdout:\n%s\nstderr:\n%s"
                     % (self.name, self.pid, pattern, timeout, indent(tail(self.stdout())),
                        indent(tail(self.stderr()))))
            time.sleep(0.02)
        fail("wait_for loop bound hit")

    def ready(self, timeout=10.0):
        m = self.wait_for(READY_RE, "stdout", timeout)
        self.queue = m.group(1)
        return self

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def kill9(self):
        """SIGKILL and reap."""
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        self.p.wait(10)

    def wait(self, timeout=10.0):
        """Exit status, or None if still running after timeout."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=5.0):
        """SIGTERM, wait; SIGKILL if needed. Returns the exit status (None if it had to be killed)."""
        self.expected_exit = True
        if not self.alive():
            return self.p.returncode
        self.signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.signal(signal.SIGKILL)
            self.p.wait(10)
            return None
        return rc


class Daemon(Proc):
    def __init__(self, story, sock, state_dir, config, env=None, name="portshared", args=()):
        self.sock = sock
        self.state_dir = state_dir
        self.config = config
        # two event-loop threads unless told otherwise: the whole suite proves the
        # hand-over from a front thread to the main thread
        threads = os.environ.get("PORTSHARE_TEST_THREADS", "2")
        argv = [story.bin("portshared"), "--socket", sock, "--state-dir", state_dir, "--threads", threads]
        if config:
            argv += ["--config", config]
        argv += list(args)  # more options, e.g. ["--user", NAME]
        Proc.__init__(self, story, argv, name, env)

    def log(self):
        return self.stderr()

    def mark(self):
        """Position in the log; pass as `since` to look only at later lines."""
        return len(self.log())

    def wait_log(self, pattern, timeout=5.0, since=0):
        return self.wait_for(pattern, "stderr", timeout, since)

    def write_config(self, lines):
        write_config(self.config, lines)

    def error_log_lines(self, since=0):
        return [l for l in self.log()[since:].splitlines() if "error-log" in l]

    def wait_error_log(self, status, reason=None, since=0, timeout=3.0):
        """Waits for a stderr line with 'error-log', the status and (if given) the reason name."""
        def find():
            for line in self.error_log_lines(since):
                if re.search(r"\b%d\b" % status, line) and (reason is None or reason in line):
                    return line
            return None
        line = wait_until(find, timeout)
        if not line:
            fail("no error-log line with %d%s in the daemon log; error-log lines seen:\n%s"
                 % (status, " and " + reason if reason else "", indent("\n".join(self.error_log_lines(since)[-10:]))))
        return line

    def reload(self):
        self.signal(signal.SIGHUP)

    def fds(self):
        return fd_count(self.pid)

    def ticks(self):
        return cpu_ticks(self.pid)

    def ctl(self, *args, env_socket=False, timeout=10):
        """Runs portsharectl with --socket (or with $PORTSHARE_SOCKET if env_socket)."""
        argv = [self.story.bin("portsharectl")]
        extra = None
        if env_socket:
            extra = {PS_SOCKET_ENV: self.sock}
        else:
            argv += ["--socket", self.sock]
        return self.story.run(argv + list(args), timeout=timeout, env_extra=extra)

    def status(self, env_socket=False):
        """portsharectl status --json, parsed."""
        r = self.ctl("status", "--json", env_socket=env_socket)
        if r.returncode != 0:
            fail("portsharectl status --json exited %d: %s" % (r.returncode, r.stderr.strip()))
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            fail("portsharectl status --json printed invalid JSON (%s): %r" % (e, r.stdout[:500]))

    def status_text(self):
        r = self.ctl("status")
        if r.returncode != 0:
            fail("portsharectl status exited %d: %s" % (r.returncode, r.stderr.strip()))
        return r.stdout


def write_config(path, lines):
    with open(path, "w") as f:
        f.write("# portshare integration test config\n")
        for line in lines:
            f.write(line + "\n")


def find_queue(status, name):
    for q in status.get("queues", []):
        if q.get("name") == name:
            return q
    return None


def indent(text, pre="    "):
    return "\n".join(pre + line for line in text.splitlines())


def tail(text, n=40):
    lines = text.splitlines()
    return "\n".join(lines[-n:])


class Completed:
    def __init__(self, argv, returncode, stdout, stderr):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class CurlResult(Message):
    def __init__(self, status, body, headers, rc, err, num_connects=None):
        self.status = status
        self.body = body
        self.headers = headers
        self.rc = rc
        self.err = err
        self.num_connects = num_connects

    def __repr__(self):
        return "<curl rc=%d status=%s body=%r err=%r>" % (self.rc, self.status, self.body[:120], self.err[:200])


# ---------------------------------------------------------------- the story


class Story:
    def __init__(self, name=None, time_limit=100):
        self.name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
        self.build = build_dir()
        self.sanitizer = is_sanitizer_build(self.build)
        self.env = child_env(sanitizer=self.sanitizer)
        self.dir = tempfile.mkdtemp(prefix="ps-%s-" % self.name[:2])
        os.chmod(self.dir, 0o755)
        self.procs = []
        self.conns = []
        self.daemons = []
        self.started = time.monotonic()
        self.time_limit = time_limit
        self.runs = 0
        self.defaults = defaults_mode()
        # the addresses clients use, and those the daemon binds for a port
        self.hosts = ("127.0.0.1", "::1") if self.defaults else ("127.0.0.1",)
        self.bound = ["0.0.0.0", "::"] if self.defaults else ["127.0.0.1"]

    # context manager: cleanup, verdict, exit status
    def __enter__(self):
        def on_signal(signum, frame):
            raise StoryFailure("story interrupted by signal %d (time limit?)" % signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGALRM, on_signal)
        signal.alarm(self.time_limit)
        say("story %s (build %s%s)" % (self.name, self.build,
                                       ", default configuration in a network namespace" if self.defaults else ""))
        if not os.path.exists(self.bin("portshared")):
            self._cleanup_dir()
            say("FAIL %s: %s is not built" % (self.name, self.bin("portshared")))
            sys.exit(1)
        why = netns_enter() if self.defaults else None
        if why:
            self._cleanup_dir()
            say("FAIL %s: %s" % (self.name, why))
            sys.exit(1)
        return self

    def __exit__(self, etype, evalue, tb):
        ok = True
        if evalue is not None:
            ok = False
            if isinstance(evalue, StoryFailure):
                say("FAILED CHECK: %s" % evalue)
                frames = [f for f in traceback.extract_tb(tb) if f.filename == os.path.abspath(sys.argv[0])
                          or f.filename == sys.argv[0]]
                if frames:
                    say("  at %s line %d: %s" % (os.path.basename(frames[-1].filename), frames[-1].lineno,
                                                 frames[-1].line))
            else:
                say("UNEXPECTED ERROR:")
                say(indent("".join(traceback.format_exception(etype, evalue, tb))))
        signal.alarm(0)
        try:
            problems = self._cleanup()
        except BaseException as e:  # cleanup must still report
            problems = ["cleanup raised %r" % e]
        if problems:
            ok = False
            for p in problems:
                say("FAILED CHECK: " + p)
        if not ok:
            for p in self.procs:
                if p not in self.daemons and p.stderr().strip():
                    say("--- stderr of %s (pid %d), last lines:" % (p.name, p.pid))
                    say(indent(tail(p.stderr(), 10)))
            for d in self.daemons:
                say("--- daemon log (%s, pid %d), last lines:" % (d.name, d.pid))
                say(indent(tail(d.log(), 40)))
        self._cleanup_dir()
        say("%s %s (%.1fs)" % ("PASS" if ok else "FAIL", self.name, time.monotonic() - self.started))
        sys.stdout.flush()
        os._exit(0 if ok else 1)

    def _cleanup(self):
        problems = []
        for c in self.conns:
            c.close()
        for d in self.daemons:
            if not d.expected_exit and not d.alive():
                problems.append("%s (pid %d) exited on its own with status %s"
                                % (d.name, d.pid, d.p.returncode))
        # apps first, so the daemon has nothing in flight when it is told to stop
        for p in self.procs:
            if p not in self.daemons:
                p.stop(3.0)
        for d in self.daemons:
            d.stop(8.0)
        for p in self.procs:
            text = p.stderr()
            for mark in SANITIZER_MARKS:
                if mark in text:
                    problems.append("%s (pid %d) printed %r:\n%s" % (p.name, p.pid, mark, indent(tail(text, 60))))
                    break
        return problems

    def _cleanup_dir(self):
        if os.environ.get("PORTSHARE_KEEP"):
            say("kept %s" % self.dir)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # paths and ports
    def bin(self, name):
        if name == "testworker":
            return os.path.join(self.build, "tests", "testworker")
        return os.path.join(self.build, "bin", name)

    def path(self, name):
        return os.path.join(self.dir, name)

    def url(self, port, path="/", host="127.0.0.1"):
        return "http://%s:%d%s" % (url_host(host), port, path)

    def free_port(self, addrs=("127.0.0.1",)):
        return free_port(addrs)

    # the daemon
    def daemon(self, listen=None, limits=None, extra=(), sock=None, state_dir=None,
               wait_ready=True, config_lines=None, name="portshared", args=()):
        """Starts portshared with a config listing `listen` addresses (default: 127.0.0.1,
        or none in the default configuration) and `limits` ({"RequestQueue": 1, ...}) and
        any further command-line `args`; waits for 'portshared: ready'."""
        if listen is None:
            listen = () if self.defaults else ("127.0.0.1",)
        n = len(self.daemons)
        sock = sock or self.path("control.sock")
        state_dir = state_dir or self.path("state")
        os.makedirs(state_dir, exist_ok=True)
        config = self.path("portshared-%d.conf" % n)
        if config_lines is None:
            config_lines = ["listen %s" % a for a in listen]
            lim = {"ShutdownGrace": 2}
            lim.update(limits or {})
            config_lines += ["%s %s" % (k, v) for k, v in lim.items()]
            config_lines += list(extra)
        write_config(config, config_lines)
        d = Daemon(self, sock, state_dir, config, name=name, args=args)
        self.daemons.append(d)
        if wait_ready:
            d.wait_log(r"portshared: ready", timeout=15)
        return d

    # apps
    def hello(self, urls=(), queue=None, text=None, sock=None, ready=True, env_socket=False, env_extra=None):
        argv = [self.bin("portshare-hello")]
        env = dict(self.env, **env_extra) if env_extra else None
        if env_socket:
            env = env or dict(self.env)
            env[PS_SOCKET_ENV] = sock or self._sock()
        else:
            argv += ["--socket", sock or self._sock()]
        for u in urls:
            argv += ["--url", u]
        if queue:
            argv += ["--queue", queue]
        if text is not None:
            argv += ["--text", text]
        p = Proc(self, argv, "hello", env)
        if ready:
            p.ready()
        return p

    def testworker(self, urls=(), queue=None, mode=None, open_=False, persistent=False,
                   max_length=None, text=None, count=None, sock=None, ready=True, max_body=None,
                   trigger=None, response_wait_ms=None, env_extra=None, window=None, delay_ms=None):
        argv = [self.bin("testworker"), "--socket", sock or self._sock()]
        if window is not None:
            argv += ["--window", str(window)]
        if delay_ms is not None:
            argv += ["--delay-ms", str(delay_ms)]
        for u in urls:
            argv += ["--url", u]
        if queue:
            argv += ["--queue", queue]
        if open_:
            argv.append("--open")
        if persistent:
            argv.append("--persistent")
        if max_length is not None:
            argv += ["--max-length", str(max_length)]
        if max_body is not None:
            argv += ["--max-body", str(max_body)]
        if response_wait_ms is not None:
            argv += ["--response-wait", str(response_wait_ms)]
        if trigger is not None:
            argv += ["--trigger", trigger]
        if text is not None:
            argv += ["--text", text]
        if mode:
            argv += ["--mode", mode]
        if count is not None:
            argv += ["--count", str(count)]
        p = Proc(self, argv, "testworker-" + (mode or "serve"), dict(self.env, **env_extra) if env_extra else None)
        if ready:
            p.ready()
        return p

    def static(self, root, url, sock=None):
        p = Proc(self, [self.bin("portshare-static"), "--socket", sock or self._sock(), "--root", root,
                        "--url", url], "static")
        return p.ready()

    def upload_echo(self, url, sock=None):
        p = Proc(self, [self.bin("portshare-upload-echo"), "--socket", sock or self._sock(), "--url", url],
                 "upload-echo")
        return p.ready()

    def _sock(self):
        if not self.daemons:
            fail("no daemon started")
        return self.daemons[-1].sock

    def run(self, argv, timeout=10, env_extra=None, input_bytes=None):
        """Runs a command to completion (killed after timeout); stderr is kept for the
        sanitizer scan. Returns Completed with text stdout/stderr."""
        self.runs += 1
        err_path = self.path("run-%03d.err" % self.runs)
        env = dict(self.env)
        if env_extra:
            env.update(env_extra)
        with open(err_path, "wb") as err:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=err, env=env, cwd=self.dir)
            try:
                out, _ = p.communicate(input_bytes, timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
                fail("%s did not finish within %ss" % (" ".join(argv), timeout))
        with open(err_path, "rb") as f:
            errtext = f.read().decode("utf-8", "replace")
        for mark in SANITIZER_MARKS:
            if mark in errtext:
                fail("%s printed %r:\n%s" % (argv[0], mark, indent(tail(errtext, 60))))
        return Completed(argv, p.returncode, out.decode("utf-8", "replace"), errtext)

    # clients
    def conn(self, port, host="127.0.0.1", timeout=5.0, rcvbuf=None, sndbuf=None, tls=None, server_name=None):
        return Conn(port, host, timeout, story=self, rcvbuf=rcvbuf, sndbuf=sndbuf, tls=tls, server_name=server_name)

    def tls_certificate(self, name="tls", names=("localhost", "127.0.0.1", "::1")):
        """A self-signed ECDSA P-256 certificate for names, made now with certtool (gnutls-bin):
        (certificate file, key file)."""
        key, cert, tmpl = self.path(name + ".key"), self.path(name + ".pem"), self.path(name + ".tmpl")
        r = self.run(["certtool", "--generate-privkey", "--key-type=ecdsa", "--curve=secp256r1", "--outfile", key])
        check_eq(r.returncode, 0, "certtool makes a key")
        with open(tmpl, "w") as f:
            f.write("cn = %s\n" % names[0])
            for n in names:
                f.write(("ip_address = %s\n" if n[0].isdigit() or ":" in n else "dns_name = %s\n") % n)
            f.write("expiration_days = 30\ntls_www_server\nsigning_key\ncert_signing_key\nca\n")
        r = self.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                      "--outfile", cert])
        check_eq(r.returncode, 0, "certtool makes a certificate")
        return cert, key

    def curl(self, args, timeout=20, input_bytes=None):
        argv = ["curl", "-sS", "--noproxy", "*", "--max-time", str(timeout - 2)] + list(args)
        return self.run(argv, timeout=timeout, input_bytes=input_bytes)

    def get(self, url, headers=(), method=None, data_file=None, extra=(), timeout=20, resolve=None):
        """One curl request; returns CurlResult(status, body, headers). status 0 if curl failed."""
        self.runs += 1
        body_path = self.path("curl-%03d.body" % self.runs)
        head_path = self.path("curl-%03d.head" % self.runs)
        args = ["-o", body_path, "-D", head_path, "-w", "%{http_code} %{num_connects}"]
        for h in headers:
            args += ["-H", h]
        if method:
            args += ["-X", method]
        if data_file:
            args += ["--data-binary", "@" + data_file]
        if resolve:
            args += ["--resolve", resolve]
        r = self.curl(args + list(extra) + [url], timeout)
        body = b""
        if os.path.exists(body_path):
            with open(body_path, "rb") as f:
                body = f.read()
            os.unlink(body_path)
        hdrs = []
        if os.path.exists(head_path):
            with open(head_path, "rb") as f:
                raw = f.read().decode("latin-1")
            os.unlink(head_path)
            block = [b for b in raw.split("\r\n\r\n") if b.strip()]
            if block:
                for line in block[-1].split("\r\n")[1:]:
                    k, sep, v = line.partition(":")
                    if sep:
                        hdrs.append((k.strip(), v.strip()))
        parts = r.stdout.split()
        status = int(parts[0]) if parts and parts[0].isdigit() else 0
        nconn = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if r.returncode != 0:
            status = 0
        return CurlResult(status, body, hdrs, r.returncode, r.stderr, nconn)


def hello_body_re(text, path):
    """Regex for portshare-hello's body: 'TEXT pid=PID path=PATH\\n'."""
    return re.compile(r"^%s pid=(\d+) path=%s\n$" % (re.escape(text), re.escape(path)))


def same_path(a, b):
    """Equal paths, up to the case of percent-escape hex digits (RFC 3986 6.2.2.1: %c0 is %C0)."""
    up = lambda p: re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), p)
    return a is not None and b is not None and up(a) == up(b)


def fnv1a(data):
    """FNV-1a 32-bit, as testworker's X-Body-FNV1a header (8 hex digits)."""
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return "%08x" % h


def body_pid(body):
    m = re.search(rb"pid=(\d+)", body)
    return int(m.group(1)) if m else None
