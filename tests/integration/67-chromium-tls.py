# 67-chromium-tls: headless Chromium (Debian's package) loads a page over one TLS port that two apps assemble: the page from one static app, its script from another; the script ran (the DOM says so) over https. Chromium trusts only this certificate (its SPKI pinned on the command line): without the pin the same page does not load. Also with PORTSHARE_DEFAULTS=1.
import base64
import hashlib
import os
import shutil
import subprocess

from harness import Story, check, check_eq


def chromium_dom(s, url, extra):
    """Chromium's DOM after the page (and its scripts) loaded, or its error text."""
    profile = s.path("chromium-profile-%d" % len(os.listdir(s.dir)))
    r = s.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--user-data-dir=" + profile, "--dump-dom"] + extra + [url], timeout=60)
    return r.stdout


with Story(time_limit=120) as s:
    check(shutil.which("chromium") is not None, "chromium is installed (Debian package chromium; scripts/deps.sh)")
    d = s.daemon()
    port = s.free_port()
    cert, key = s.tls_certificate()
    for ep in ("0.0.0.0:%d" % port, "[::]:%d" % port):
        check_eq(d.ctl("sslcert", "add", "--ipport", ep, "--cert", cert, "--key", key).returncode, 0,
                 "sslcert add --ipport %s" % ep)
    site, js = s.path("site"), s.path("js")
    os.makedirs(site)
    os.makedirs(js)
    with open(os.path.join(site, "index.html"), "w") as f:
        f.write('<!doctype html><html><head><title>two apps</title></head><body>'
                '<p id="a">from the site app</p><p id="b">script not run</p>'
                '<script src="/js/b.js"></script></body></html>\n')
    with open(os.path.join(js, "b.js"), "w") as f:
        f.write('document.getElementById("b").textContent = "from the js app over " + location.protocol;\n')
    s.static(site, "https://+:%d/site/" % port)
    s.static(js, "https://+:%d/js/" % port)

    # the certificate's public key, pinned: Chromium accepts this certificate and no other
    der = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der, capture_output=True,
                         check=True).stdout
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    for host in ("localhost",) + (("[::1]",) if "::1" in s.hosts else ()):
        url = "https://%s:%d/site/index.html" % (host, port)
        dom = chromium_dom(s, url, ["--ignore-certificate-errors-spki-list=" + spki])
        check("from the site app" in dom and "from the js app over https:" in dom,
              "Chromium assembles the page from two apps over TLS (%s)" % host, dom[-400:])
    dom = chromium_dom(s, "https://localhost:%d/site/index.html" % port, [])
    check("from the site app" not in dom, "without the pin Chromium refuses the self-signed certificate", dom[-300:])
    check(d.alive(), "the daemon is still running")
