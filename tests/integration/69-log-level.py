# 69-log-level: LogLevel decides what the daemon logs (info: the error log's line per own answer; warning: none of those), a reload changes it, a bad value is refused naming the four; a flood of 400 bad requests writes at most 100 error-log lines a second and counts the rest in one line. Also with PORTSHARE_DEFAULTS=1.
import re
import time

from harness import Story, check, check_eq, get_req, request_once

with Story() as s:
    d = s.daemon(extra=["LogLevel info"])
    port = s.free_port()
    s.hello(["http://+:%d/app/" % port], text="app")
    host = s.hosts[0]

    mark = d.mark()
    check_eq(request_once(port, get_req("/nothere"), host=host).status, 404, "a 404 of the daemon's own")
    d.wait_error_log(404, "NotFound", since=mark)
    check(True, "LogLevel info: the error log has the 404")

    # warning: the error log's info lines are gone, a reload applies it
    lines = ["listen %s" % a for a in (() if s.defaults else ("127.0.0.1",))] + ["ShutdownGrace 2", "LogLevel warning"]
    d.write_config(lines)
    mark = d.mark()
    d.reload()
    time.sleep(0.5)
    check_eq(request_once(port, get_req("/nothere-either"), host=host).status, 404, "another 404")
    time.sleep(0.3)
    check("error-log" not in d.log()[mark:], "LogLevel warning: no error-log line", d.log()[mark:][-300:])

    # a bad value: the reload is refused, naming the levels
    d.write_config(lines[:-1] + ["LogLevel loud"])
    mark = d.mark()
    d.reload()
    d.wait_log(r"reload refused[^\n]*LogLevel is error, warning, info or debug, not 'loud'", since=mark)
    check(True, "LogLevel loud is refused with the four levels named")

    # back to info; a flood of bad requests (400, each on its own connection) in about a second
    d.write_config(lines[:-1] + ["LogLevel info"])
    mark = d.mark()
    d.reload()
    d.wait_log(r"reloaded", since=mark)
    mark = d.mark()
    t0 = time.monotonic()
    answered = 0
    for i in range(400):
        r = request_once(port, b"GET /x HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", host=host)
        answered += r.status == 400
    took = time.monotonic() - t0
    check_eq(answered, 400, "400 bad requests answered 400")
    time.sleep(1.2)
    check_eq(request_once(port, get_req("/nothere-after"), host=host).status, 404, "a 404 after the flood")
    time.sleep(0.3)
    log = d.log()[mark:]
    n400 = log.count(" 400 BadRequest")
    missed = sum(int(m) for m in re.findall(r"error-log: (\d+) more answers in the last \d+ s not logged", log))
    check(n400 + missed == 400 and missed > 0 and n400 <= 100 * (int(took) + 2),
          "the flood (%.1f s): %d lines written, %d counted in summary lines, 400 in all" % (took, n400, missed),
          log[-600:])
    check(d.alive(), "the daemon is still running")
