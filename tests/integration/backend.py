# backend.py: a scripted HTTP/1.1 backend for the proxy stories (python3 backend.py PORT), standard library only.
"""An origin server that misbehaves on request, for tests/integration/1NN-proxy-*.py.

Runs on 127.0.0.1:PORT (or a unix socket with `unix:/path`), one thread per connection,
keep-alive. Prints "backend: ready" once it listens, and one line per connection it
accepts ("backend: connection N") so a story can tell whether the proxy reused one.
Paths (any other path is answered as /headers is):

  /headers          200, the request line and headers it got, as JSON
  /upload           reads the body (Content-Length or chunked) as it comes; 200 with
                    {"length": N, "sha256": ...}
  /expect-reject    417 at once when the request has Expect: 100-continue, body unread
  /expect-continue  sends 100 Continue itself, then reads the body like /upload
  /download?n=N     N bytes (a repeating pattern), Content-Length
  /sse?n=N&gap=S    N events S seconds apart, chunked; each event carries the
                    CLOCK_MONOTONIC time it was written (data: I T)
  /slow?s=S         answers after S seconds
  /abort            a head with Content-Length 1000000, 1000 bytes, then a reset
  /close-early      a head with Content-Length 1000000, 1000 bytes, then a FIN
  /hop              a reply full of hop-by-hop headers (Connection names X-Hop)
  /late-extra       200 "on time", then 50 ms later a whole second reply on the same
                    connection, which no request asked for (a pooled connection the proxy
                    must not use again)
  /smuggle/KIND     bad framing: cl-twice, cl-te, te-identity, bad-chunk, obs-fold,
                    bare-lf, two-replies (a whole second reply right after the first)
  /ws               WebSocket (RFC 6455) echo: text and binary frames back, close
                    answered
"""
import base64
import hashlib
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
count_lock = threading.Lock()
connections = 0


def read_head(f):
    lines = []
    for _ in range(200):
        line = f.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.rstrip(b"\r\n").decode("latin-1"))
    else:
        return None
    if not lines:
        return None
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers.append((k.strip(), v.strip()))
    return method, target, version, headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name.lower():
            return v
    return None


def body_chunks(f, headers):
    """Yields the request body as it arrives (Content-Length or chunked)."""
    te = header(headers, "Transfer-Encoding")
    if te and te.lower() == "chunked":
        for _ in range(10 ** 8):
            size = int(f.readline(1024).split(b";")[0].strip(), 16)
            if size == 0:
                while f.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return
            left = size
            while left:
                b = f.read(min(left, 1 << 16))
                if not b:
                    raise EOFError
                left -= len(b)
                yield b
            f.readline(8)
    else:
        left = int(header(headers, "Content-Length") or 0)
        while left:
            b = f.read(min(left, 1 << 16))
            if not b:
                raise EOFError
            left -= len(b)
            yield b


def reply(w, status, body=b"", headers=(), reason="OK"):
    head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n" % (status, reason, len(body))
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    w.write(head.encode() + b"\r\n" + body)
    w.flush()


def query(target):
    q = {}
    if "?" in target:
        for part in target.split("?", 1)[1].split("&"):
            k, _, v = part.partition("=")
            q[k] = v
    return q


SMUGGLE = {
    "cl-twice": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te-identity": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "bad-chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n Content-Length: 5\r\nContent-Length: 3\r\n\r\nhello",
    "bare-lf": b"HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
    "two-replies": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                   b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Smuggled: yes\r\n\r\nsecond",
}


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        global connections
        with count_lock:
            connections += 1
            n = connections
        self.number = n
        if self.request.family != socket.AF_UNIX:  # each write its own segment, as real servers send them
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        print("backend: connection %d" % n, flush=True)
        for _ in range(100000):
            req = read_head(self.rfile)
            if req is None:
                return
            if not self.serve(*req):
                return

    def serve(self, method, target, version, headers):
        path = target.split("?", 1)[0]
        q = query(target)
        w = self.wfile
        if path in ("/headers", "/nothing-else") or not self.known(path):
            body = json.dumps({"method": method, "target": target, "version": version,
                               "headers": headers, "connection": self.number}).encode()
            for _ in body_chunks(self.rfile, headers):
                pass
            reply(w, 200, body, [("Content-Type", "application/json")])
        elif path in ("/upload", "/expect-continue"):
            if path == "/expect-continue":
                w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                w.flush()
            h, total = hashlib.sha256(), 0
            for b in body_chunks(self.rfile, headers):
                h.update(b)
                total += len(b)
            reply(w, 200, json.dumps({"length": total, "sha256": h.hexdigest(),
                                      "te": header(headers, "Transfer-Encoding"),
                                      "cl": header(headers, "Content-Length")}).encode())
        elif path == "/expect-reject":
            reply(w, 417, b"no\n", [("Connection", "close")], "Expectation Failed")
            return False
        elif path == "/download":
            n, block = int(q.get("n", "0")), bytes(range(256)) * 256
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
            while n > 0:
                w.write(block[:min(n, len(block))])
                n -= min(n, len(block))
            w.flush()
        elif path == "/sse":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            w.flush()
            for i in range(int(q.get("n", "5"))):
                ev = ("data: %d %.6f\n\n" % (i, time.monotonic())).encode()
                w.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                w.flush()
                time.sleep(float(q.get("gap", "0.5")))
            w.write(b"0\r\n\r\n")
            w.flush()
        elif path == "/slow":
            time.sleep(float(q.get("s", "5")))
            reply(w, 200, b"late\n")
        elif path in ("/abort", "/close-early"):
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + b"x" * 1000)
            w.flush()
            time.sleep(0.2)
            if path == "/abort":
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.request.close()
            return False
        elif path == "/hop":
            reply(w, 200, b"hop\n", [("Connection", "X-Hop, keep-alive"), ("X-Hop", "secret"),
                                     ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                                     ("TE", "trailers"), ("Trailer", "X-T"), ("Upgrade", "h2c"),
                                     ("X-End-To-End", "kept")])
        elif path == "/late-extra":
            reply(w, 200, b"on time\n")
            time.sleep(0.05)
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED")
            w.flush()
        elif path.startswith("/smuggle/"):
            w.write(SMUGGLE[path[len("/smuggle/"):]])
            w.flush()
        elif path == "/ws":
            return self.websocket(headers)
        return True

    @staticmethod
    def known(path):
        return path in ("/upload", "/expect-continue", "/expect-reject", "/download", "/sse", "/slow", "/abort",
                        "/close-early", "/hop", "/ws", "/late-extra") or path.startswith("/smuggle/")

    def websocket(self, headers):
        key = header(headers, "Sec-WebSocket-Key")
        if not key or (header(headers, "Upgrade") or "").lower() != "websocket":
            reply(self.wfile, 400, b"not a websocket request\n")
            return True
        accept = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()
        self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        self.wfile.flush()
        for _ in range(100000):
            hdr = self.rfile.read(2)
            if len(hdr) < 2:
                return False
            op, ln = hdr[0] & 0x0F, hdr[1] & 0x7F
            if ln == 126:
                ln = struct.unpack("!H", self.rfile.read(2))[0]
            elif ln == 127:
                ln = struct.unpack("!Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if hdr[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(ln)))
            if len(data) < 126:
                frame = bytes([0x80 | op, len(data)]) + data
            elif len(data) < 65536:
                frame = bytes([0x80 | op, 126]) + struct.pack("!H", len(data)) + data
            else:
                frame = bytes([0x80 | op, 127]) + struct.pack("!Q", len(data)) + data
            self.wfile.write(frame)
            self.wfile.flush()
            if op == 8:
                return False
        return False


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # a listen backlog as servers have (socketserver's 5 drops a burst of connects)


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    where = sys.argv[1]
    if where.startswith("unix:"):
        srv = UnixServer(where[5:], Handler)
    else:
        srv = Server(("127.0.0.1", int(where)), Handler)
    print("backend: ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
