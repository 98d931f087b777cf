# rawsession.py: the control protocol from Python (protocol.h, encoded with struct) for stories that play a worker by hand.
"""A raw SOCK_SEQPACKET session on the daemon's control socket, and encoders for the
messages stories send. Host byte order, as protocol.h says (both ends on one machine).
Only what stories need; src/common/protocol.h is the definition."""

import array
import os
import socket
import struct
import time

from harness import fail

HDR = struct.Struct("=HHIII")  # type, flags, len, seq, reserved
(HELLO, REPLY, QUEUE_CREATE, QUEUE_OPEN, URL_ADD, RECEIVE, DELIVER, NOFD, RETURN, END, CONN_CLOSED, STATUS,
 STATUS_DATA) = (1, 2, 3, 4, 7, 9, 10, 11, 12, 13, 14, 15, 16)
LIMITS = 18
PS_MSG_MAX = 98304  # src/common/protocol.h
PS_HELLO_DELEGATE = 0x1
PS_STATUS_MORE = 0x1
PS_END_ABORT = 0x2
PS_EVERSION, PS_ELIMIT = -14, -15
DELIVER_FIXED = struct.Struct("=QQII")  # conn_id, req_id, queue_id, flags (then addresses, lengths)


def msg(mtype, body=b"", flags=0, seq=1, length=None):
    """One message; `length` overrides the header's len (a lie)."""
    n = HDR.size + len(body)
    return HDR.pack(mtype, flags, n if length is None else length, seq, 0) + body


def hello(version=1, flags=0, program=b"rawsession"):
    return msg(HELLO, struct.pack("=II64s", version, os.getpid(), program), flags=flags)


def queue_create(name, seq=1):
    # opt_flags, max_length, max_body, response_wait_ms, name[64], 4 bytes of padding
    return msg(QUEUE_CREATE, struct.pack("=IIQI64s4x", 0, 0, 0, 0, name.encode()), seq=seq)


def queue_open(name, seq=1):
    return msg(QUEUE_OPEN, struct.pack("=I64s", 0, name.encode()), seq=seq)


def url_add(queue_id, prefix, seq=1):
    p = prefix.encode()
    return msg(URL_ADD, struct.pack("=II", queue_id, len(p)) + p, seq=seq)


def receive(queue_id, count):
    return msg(RECEIVE, struct.pack("=II", queue_id, count))


def conn_ref(mtype, conn_id, req_id):
    return msg(mtype, struct.pack("=QQ", conn_id, req_id))


def ret(conn_id, req_id, tail=b""):
    return msg(RETURN, struct.pack("=QQQQII", conn_id, req_id, 0, 0, 0, len(tail)) + tail)


def end(conn_id, req_id, flags):
    return msg(END, struct.pack("=QQII", conn_id, req_id, flags, 0))


class Session:
    """One session: send messages (with fds), read messages (taking fds)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.settimeout(5)
        self.sock.connect(path)

    def send(self, data, fds=()):
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        try:
            return self.sock.sendmsg([data], anc)
        except (BrokenPipeError, ConnectionResetError):
            return None  # the daemon ended the session already

    def recv(self, timeout=3.0, want_fds=False):
        """(type, header flags, body[, fds]) of the next message, or None once the daemon
        closed the session. Fds are dropped by the kernel unless want_fds. LIMITS, which
        the daemon sends unasked after HELLO and on reload, is skipped."""
        for _ in range(16):
            m = self._recv_one(timeout, want_fds)
            if m is None or m[0] != LIMITS:
                return m
        fail("more than 16 LIMITS messages in a row")

    def _recv_one(self, timeout, want_fds):
        self.sock.settimeout(timeout)
        if want_fds:
            data, anc, _, _ = self.sock.recvmsg(PS_MSG_MAX, socket.CMSG_SPACE(8 * 4))
            fds = array.array("i")
            for level, kind, raw in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(raw[:len(raw) - len(raw) % 4])
        else:
            data, fds = self.sock.recv(PS_MSG_MAX), []
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        mtype, flags, _, _, _ = HDR.unpack_from(data)
        return (mtype, flags, data[HDR.size:], list(fds)) if want_fds else (mtype, flags, data[HDR.size:])

    def call(self, data):
        """Sends a request and returns (status, id, text) of its REPLY, skipping other messages
        (SHM, STATUS_DATA, ...) on the way."""
        self.send(data)
        for _ in range(100):
            m = self.recv()
            if m is None:
                fail("the daemon ended the session instead of replying")
            if m[0] == REPLY:
                status, qid, text_len, _ = struct.unpack_from("=iIII", m[2])
                return status, qid, m[2][16:16 + text_len].decode("latin-1")
        fail("no REPLY among 100 messages")

    def closed_by_daemon(self, timeout=3.0, drain_max=200000):
        """True once the daemon ended the session (EOF), reading and dropping what it
        still sent; False if it is still open after timeout."""
        deadline = time.monotonic() + timeout
        for _ in range(drain_max):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if self.recv(left) is None:
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        return False

    def close(self):
        self.sock.close()
