# 97-install: make install DESTDIR=tmp puts every file in place with a portshare.pc of installed paths, a systemd unit naming the installed daemon and config, and the config file (an existing one is kept); examples/hello.c builds against it with pkg-config alone and serves through the installed daemon; make uninstall leaves nothing (a changed config file stays, and is said to).
import os
import subprocess
from harness import REPO, Proc, Story, check, check_eq, say

PREFIX = "/usr/local"
FILES = ["sbin/portshared", "sbin/portshare-apps", "share/man/man8/portshare-apps.8",
         "lib/systemd/system/portshare-apps.service", "bin/portsharectl", "bin/portshare-hello", "bin/portshare-static",
         "bin/portshare-upload-echo", "bin/portshare-proxy", "bin/portshare-run", "lib/libportshare.so.1", "lib/libportshare.so", "lib/libportshare.a",
         "lib/pkgconfig/portshare.pc", "include/portshare.h", "share/man/man8/portshared.8",
         "share/man/man8/portsharectl.8", "share/man/man5/portshare.conf.5", "share/man/man3/libportshare.3",
         "share/man/man1/portshare-hello.1", "share/man/man1/portshare-static.1",
         "share/man/man1/portshare-upload-echo.1", "share/man/man1/portshare-proxy.1",
         "share/man/man1/portshare-run.1", "lib/systemd/system/portshared.service",
         "etc/portshare/portshare.conf", "etc/logrotate.d/portshare"]

with Story() as s:
    dest = s.path("dest")
    make = ["make", "-s", "--no-print-directory", "BUILD=" + s.build, "DESTDIR=" + dest, "PREFIX=" + PREFIX]
    if s.sanitizer:
        make.append("SAN=1")  # the same flags as the build being tested, so nothing is rebuilt
    r = subprocess.run(make + ["install"], cwd=REPO, capture_output=True, text=True, timeout=300)
    check_eq(r.returncode, 0, "make install DESTDIR=... exit status (%s)" % r.stderr.strip()[-300:])
    root = dest + PREFIX
    installed = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(dest) for f in fs)
    check_eq(installed, sorted(FILES), "make install put exactly its files under %s" % PREFIX)
    check(os.readlink(os.path.join(root, "lib/libportshare.so")) == "libportshare.so.1",
          "libportshare.so is a link to libportshare.so.1")
    with open(os.path.join(root, "lib/pkgconfig/portshare.pc")) as f:
        pc = f.read()
    check("prefix=%s\n" % PREFIX in pc and "includedir=%s/include" % PREFIX in pc,
          "portshare.pc names the installed paths, not the build tree", pc)

    with open(os.path.join(root, "lib/systemd/system/portshared.service")) as f:
        unit = f.read()
    conf = "%s/etc/portshare/portshare.conf" % PREFIX
    check("\nExecStart=%s/sbin/portshared --config %s\n" % (PREFIX, conf) in unit
          and "\nExecReload=%s/sbin/portshared --config %s --upgrade --detach\n" % (PREFIX, conf) in unit,
          "the unit starts and upgrades the installed daemon with the installed config", unit)
    conf_path = os.path.join(root, "etc/portshare/portshare.conf")
    with open(conf_path, "a") as f:
        f.write("listen 127.0.0.1\n")
    r = subprocess.run(make + ["install"], cwd=REPO, capture_output=True, text=True, timeout=300)
    with open(conf_path) as f:
        check(r.returncode == 0 and f.read().endswith("listen 127.0.0.1\n"),
              "make install again keeps a config file that is there")

    # an app built with pkg-config alone
    env = dict(s.env, PKG_CONFIG_PATH=os.path.join(root, "lib/pkgconfig"), PKG_CONFIG_SYSROOT_DIR=dest)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "portshare"], env=env, capture_output=True,
                           text=True, timeout=30)
    check_eq(flags.returncode, 0, "pkg-config --cflags --libs portshare")
    say("  pkg-config: %s" % flags.stdout.strip())
    app_bin = s.path("hello-installed")
    cc = ["cc", "-std=c17", "-D_GNU_SOURCE", "-o", app_bin, os.path.join(REPO, "examples", "hello.c")]
    cc += flags.stdout.split()
    if s.sanitizer:
        cc += ["-fsanitize=address,undefined"]
    r = subprocess.run(cc, capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, "examples/hello.c builds against the installed tree (%s)" % r.stderr.strip()[-300:])

    # the installed daemon and the app built against the installed library
    sock, state = s.path("c.sock"), s.path("state")
    os.makedirs(state)
    with open(s.path("c.conf"), "w") as f:
        f.write("listen 127.0.0.1\nShutdownGrace 2\n")
    d = Proc(s, [os.path.join(root, "sbin/portshared"), "--socket", sock, "--state-dir", state,
                 "--config", s.path("c.conf")], "portshared-installed")
    d.wait_for(r"portshared: ready", "stderr", timeout=15)
    port = s.free_port()
    app = Proc(s, [app_bin, "--socket", sock, "--url", "http://+:%d/" % port, "--text", "installed"], "hello",
               dict(s.env, LD_LIBRARY_PATH=os.path.join(root, "lib"))).ready()
    r = s.get("http://127.0.0.1:%d/x" % port)
    check(r.status == 200 and r.text().startswith("installed pid=%d " % app.pid),
          "the app built against the installed tree serves through the installed daemon", repr(r))
    app.stop()
    check_eq(d.stop(8.0), 0, "the installed daemon stops with status 0")

    r = subprocess.run(make + ["uninstall"], cwd=REPO, capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, "make uninstall exit status")
    check(os.path.exists(conf_path) and "%s was changed; it stays" % conf_path in r.stdout,
          "make uninstall keeps the changed config file and says so", r.stdout)
    os.unlink(conf_path)
    r = subprocess.run(make + ["uninstall"], cwd=REPO, capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, "make uninstall again (the config file removed by hand)")
    left = [os.path.join(dp, f) for dp, ds, fs in os.walk(dest) for f in fs + ds] if os.path.exists(dest) else []
    check_eq(left, [], "make uninstall left nothing under DESTDIR")
