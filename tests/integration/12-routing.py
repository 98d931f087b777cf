# 12-routing: host classes (+ > host name > IP literal > *), whole-segment longest prefix, case rules, absolute-form, 400/404, duplicates.
import re
from harness import Story, check, check_eq, request_once, same_path

with Story() as s:
    d = s.daemon(listen=("127.0.0.1", "127.0.0.2"))
    P = s.free_port(("127.0.0.1", "127.0.0.2"))
    Q = s.free_port(("127.0.0.1", "127.0.0.2"))
    apps = {
        "strong": ["http://+:%d/strong/" % P],
        "host": ["http://example.test:%d/" % P],
        "host-strong": ["http://example.test:%d/strong/" % P],
        "ip2": ["http://127.0.0.2:%d/" % P],
        "weak": ["http://*:%d/" % P],
        "blog": ["http://*:%d/blog/" % P],
        "only": ["http://only.test:%d/app/" % Q],
    }
    procs = {name: s.hello(urls, text=name) for name, urls in apps.items()}

    def route(target, host="other.test", local="127.0.0.1", port=P, raw_host_line=None):
        head = "GET %s HTTP/1.1\r\n%s\r\n\r\n" % (target, raw_host_line or "Host: " + host)
        return request_once(port, head.encode(), host=local)

    def expect(want, target, path=None, **kw):
        r = route(target, **kw)
        m = re.match(r"^(\S+) pid=(\d+) path=(\S*)\n$", r.text())
        got = m.group(1) if r.status == 200 and m else "status %d %r" % (r.status, r.body[:60])
        where = "%s via %s Host %s" % (target, kw.get("local", "127.0.0.1"), kw.get("host", kw.get("raw_host_line", "other.test")))
        check_eq(got, want, "%s -> %s" % (where, want))
        if path is not None:
            check(same_path(m.group(3), path), "%s: worker sees canonical path %s" % (where, path), "got %r" % m.group(3))

    say_classes = [
        ("host", "/x", dict(host="example.test")),
        ("host", "/x", dict(host="EXAMPLE.Test:%d" % P)),
        ("weak", "/x", dict(host="other.test")),
        ("ip2", "/x", dict(host="other.test", local="127.0.0.2")),
        ("host", "/x", dict(host="example.test", local="127.0.0.2")),
        ("strong", "/strong/x", dict(host="example.test")),
        ("strong", "/strong/x", dict(host="other.test", local="127.0.0.2")),
        ("strong", "/strong", dict(host="other.test")),
    ]
    for want, target, kw in say_classes:
        expect(want, target, **kw)

    # whole segments, longest prefix, case-sensitive paths
    for target, want in (("/blog", "blog"), ("/blog/", "blog"), ("/blog/x/y", "blog"), ("/blogger", "weak"),
                         ("/blog.x", "weak"), ("/Blog/x", "weak"), ("/BLOG", "weak")):
        expect(want, target)

    # canonical path: decode unreserved, collapse //, remove dot segments; other escapes stay literal
    expect("strong", "/blog/..//strong/z", path="/strong/z")
    expect("blog", "/%62log/x", path="/blog/x")
    expect("blog", "/x/.././blog/./y", path="/blog/y")
    expect("weak", "/%252e%252e/blog/", path="/%252e%252e/blog/")
    expect("blog", "/blog/%c0%ae%c0%ae/x", path="/blog/%c0%ae%c0%ae/x")

    # absolute-form target: its authority is the host, whatever Host says
    expect("host", "http://example.test:%d/abs" % P, host="other.test")
    expect("weak", "http://other.test:%d/abs" % P, host="example.test")

    # a port whose only prefix is a host name
    expect("only", "/app/x", port=Q, host="only.test")
    expect("only", "/app/x", port=Q, host="ONLY.TEST:%d" % Q)
    mark = d.mark()
    r = route("/other", port=Q, host="only.test")
    check_eq(r.status, 404, "only.test /other (host matches, path does not): status")
    r = route("/app/x", port=Q, host="nope.test")
    check_eq(r.status, 400, "nope.test /app/x (no prefix for this host at all): status")
    d.wait_error_log(400, "InvalidHostname", since=mark)
    check(True, "error-log names InvalidHostname")

    # duplicate registration: refused, the holder named
    dup = s.hello(["http://only.test:%d/app/" % Q], text="dup", ready=False)
    rc = dup.wait(10)
    err = dup.stderr()
    check_eq(rc, 1, "duplicate registration: hello exit status")
    check("already registered by queue %s" % procs["only"].queue in err,
          "error names the holding queue %s" % procs["only"].queue, "stderr %r" % err)
    check("pid %d" % procs["only"].pid in err, "error names the holder's pid %d" % procs["only"].pid, "stderr %r" % err)
    expect("only", "/app/y", port=Q, host="only.test")
