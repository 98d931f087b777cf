# 53-port-in-use: a registration needing a port another program listens on fails, naming that program; free again, it works.
import socket
import os
from harness import Story, check, check_eq, listening, get_req, request_once, body_pid

with Story() as s:
    d = s.daemon(listen=("127.0.0.1", "::1"))
    port = s.free_port(("127.0.0.1", "::1"))
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", port))
    holder.listen(4)
    with open("/proc/self/comm") as f:
        comm = f.read().strip()

    app = s.hello(["http://+:%d/" % port], text="P", ready=False)
    rc = app.wait(10)
    err = app.stderr()
    check_eq(rc, 1, "hello on a port held by this python process: exit status")
    # without CAP_SYS_PTRACE the daemon cannot read a root process's /proc/PID/fd: it names
    # the holder's uid instead (DESIGN §8; `portsharectl who` finds the pid)
    check(str(os.getpid()) in err or comm in err or "uid %d" % os.getuid() in err,
          "the error names the holder (pid %d, program %s or uid %d)" % (os.getpid(), comm, os.getuid()), repr(err))
    check_eq(sorted(listening(port)), ["127.0.0.1"], "the daemon left nothing listening on port %d (not even ::1)" % port)

    holder.close()
    app = s.hello(["http://+:%d/" % port], text="P")
    check_eq(sorted(listening(port)), ["127.0.0.1", "::1"], "with the port free, the daemon listens on both addresses")
    for host in ("127.0.0.1", "::1"):
        r = request_once(port, get_req("/x"), host=host)
        check(r.status == 200 and body_pid(r.body) == app.pid, "served via %s" % host, repr(r))
