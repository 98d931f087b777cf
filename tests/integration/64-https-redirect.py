# 64-https-redirect: portsharectl redirect http://+:P/ https:Q makes the daemon answer 308 to https on port Q for what no app takes on plain port P (host, path and query kept, HEAD, keep-alive and pipelining); an app's own prefix there (an ACME challenge) comes first whatever its host class; the port is listened on for the redirect alone; admins only; kept across a restart and --upgrade; delete frees the port. Also with PORTSHARE_DEFAULTS=1.
import subprocess

from harness import Story, check, check_eq, get_req, listening, url_host, wait_until

with Story() as s:
    d = s.daemon()
    plain, tls = s.free_port(), s.free_port()

    r = d.ctl("redirect", "add", "http://+:%d/" % plain, "https:%d" % tls)
    check_eq(r.returncode, 0, "redirect add (as root)")
    check(wait_until(lambda: sorted(listening(plain)) == sorted(s.bound), 3),
          "port %d is listened on for the redirect alone" % plain, repr(listening(plain)))
    r = d.ctl("who", str(plain))
    check("an admin's redirect to https" in r.stdout, "who says the port answers a redirect", r.stdout)
    r = d.ctl("redirect", "show", "--json")
    check('"from":"http://+:%d/"' % plain in r.stdout and '"to_port":%d' % tls in r.stdout,
          "redirect show --json lists it", r.stdout)

    def expect_redirect(host, path, what, via=None):
        r = s.get(s.url(plain, path, host), headers=["Host: %s" % via] if via else ())
        want = "https://%s:%d%s" % (via or url_host(host), tls, path)
        check(r.status == 308 and r.header("Location") == want, what,
              "status %s, Location %r, want %r" % (r.status, r.header("Location"), want))

    for host in s.hosts:
        expect_redirect(host, "/a/b?x=1&y=%20", "308 to https with path and query kept (%s)" % host)
        expect_redirect(host, "/", "308 for / (%s)" % host, via="www.example.test")

    # an ACME client's challenge app, with a weak (*) prefix: apps come before the redirect
    acme = s.hello(["http://*:%d/.well-known/acme-challenge/" % plain], text="acme")
    for host in s.hosts:
        r = s.get(s.url(plain, "/.well-known/acme-challenge/tok", host))
        check(r.status == 200 and b"acme pid=" in r.body, "the challenge app answers on %s" % host, repr(r.body))
        expect_redirect(host, "/.well-known/other", "beside the app: still redirected (%s)" % host)

    # HEAD, keep-alive and a pipelined pair on one connection
    c = s.conn(plain, s.hosts[0])
    c.send(get_req("/p1", host="h.test") + get_req("/.well-known/acme-challenge/t2", host="h.test") +
           get_req("/p3", host="h.test", method="HEAD"))
    r1 = c.read_response()
    r2 = c.read_response()
    r3 = c.read_response(method="HEAD")
    check(r1.status == 308 and r1.header("Location") == "https://h.test:%d/p1" % tls and
          r2.status == 200 and r3.status == 308 and not r3.body,
          "pipelined: redirect, app, HEAD redirect on one connection", "%r %r %r" % (r1, r2, r3))
    c.close()

    # admins only
    r = s.run(["runuser", "-u", "nobody", "--", s.bin("portsharectl"), "--socket", d.sock, "redirect", "add",
               "http://+:%d/x/" % plain, "https"])
    check(r.returncode == 1 and "is for admins" in r.stderr, "a non-admin's redirect add is refused",
          r.stdout + r.stderr)
    for bad, why in ((["https://+:%d/" % plain, "https"], "an https:// source"),
                     (["http://+:%d/" % plain, "ftp"], "a target other than https"),
                     (["http://+:%d/y/" % plain, "https:%d" % plain], "the target port the source's own")):
        r = d.ctl("redirect", "add", *bad)
        check(r.returncode != 0, "redirect add refuses %s" % why, r.stdout + r.stderr)
    r = d.ctl("redirect", "add", "http://+:%d/" % plain, "https")
    check(r.returncode == 1 and "already" in r.stderr, "the same prefix twice is refused", r.stderr)

    # kept across a restart and an upgrade
    acme.stop()
    d.stop()
    d = s.daemon()
    check(wait_until(lambda: sorted(listening(plain)) == sorted(s.bound), 3),
          "after a restart the redirect's port is listened on again", repr(listening(plain)))
    expect_redirect(s.hosts[0], "/after-restart", "after a restart: 308")
    d.expected_exit = True
    d = s.daemon(args=("--upgrade",), sock=d.sock, state_dir=d.state_dir)
    expect_redirect(s.hosts[0], "/after-upgrade", "after --upgrade: 308")

    # delete: the port is free again
    r = d.ctl("redirect", "delete", "http://+:%d/" % plain)
    check_eq(r.returncode, 0, "redirect delete")
    check(wait_until(lambda: not listening(plain), 3), "the port is released with the redirect",
          repr(listening(plain)))
