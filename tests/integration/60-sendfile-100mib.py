# 60-sendfile-100mib: portshare-static sends a 100 MiB file with sendfile; the daemon spends no more CPU on it than on 1 KiB.
import os
from harness import Story, check, check_eq, say

MIB = 1024 * 1024

with Story() as s:
    d = s.daemon()
    port = s.free_port()
    root = s.path("www")
    os.makedirs(root)
    small = os.urandom(1024)
    with open(os.path.join(root, "small.bin"), "wb") as f:
        f.write(small)
    big_head, big_tail = os.urandom(MIB), os.urandom(MIB)
    with open(os.path.join(root, "big.bin"), "wb") as f:  # sparse in the middle
        f.write(big_head)
        f.seek(100 * MIB - MIB)
        f.write(big_tail)
    check_eq(os.path.getsize(os.path.join(root, "big.bin")), 100 * MIB, "big.bin is 100 MiB")
    st = s.static(root, "http://+:%d/" % port)

    def fetch(name, out):
        t0 = d.ticks()
        r = s.curl(["-o", out, "-w", "%{http_code} %{size_download}", "http://127.0.0.1:%d/%s" % (port, name)], timeout=60)
        return r, d.ticks() - t0

    r, small_ticks = fetch("small.bin", s.path("small.out"))
    check_eq(r.stdout, "200 1024", "small.bin: status and size")
    with open(s.path("small.out"), "rb") as f:
        check(f.read() == small, "small.bin content exact")

    r, big_ticks = fetch("big.bin", "/dev/null")
    check_eq(r.stdout, "200 %d" % (100 * MIB), "big.bin: status and size (curl to /dev/null)")
    say("  daemon CPU ticks: 1 KiB download %d, 100 MiB download %d" % (small_ticks, big_ticks))
    check(big_ticks <= small_ticks + 2, "the daemon's CPU for 100 MiB <= its CPU for 1 KiB + 2 ticks",
          "%d > %d + 2" % (big_ticks, small_ticks))

    # the bytes themselves: download again to a file, compare the first and last MiB and the size
    out = s.path("big.out")
    r, _ = fetch("big.bin", out)
    check_eq(r.stdout, "200 %d" % (100 * MIB), "big.bin to a file: status and size")
    with open(out, "rb") as f:
        head = f.read(MIB)
        f.seek(100 * MIB - MIB)
        tail_bytes = f.read()
        f.seek(50 * MIB)
        middle = f.read(4096)
    os.unlink(out)
    check(head == big_head and tail_bytes == big_tail and middle == bytes(4096), "big.bin content exact (head, middle, tail)")
