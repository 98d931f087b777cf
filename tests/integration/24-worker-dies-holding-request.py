# 24-worker-dies-holding-request: a worker killed holding a request: GET goes to another worker, POST gets 503 + close, half an answer is aborted.
from harness import Story, check, check_eq, get_req, body_pid

with Story() as s:
    d = s.daemon(limits={"RequestQueue": 5})
    port = s.free_port()
    # the queue's creator never receives: it only keeps the queue alive between the dying workers
    keeper = s.testworker(["http://+:%d/d/" % port], queue="dq", mode="noreceive")

    # idempotent, nothing written, nothing read past the head: delivered again, to the next worker
    die1 = s.testworker(queue="dq", open_=True, mode="die")
    c = s.conn(port)
    c.send(get_req("/d/get"))
    check_eq(die1.wait(5), -9, "the first worker was killed holding GET /d/get")
    check(not c.readable_within(0.3), "the GET is not answered while no worker receives")
    good = s.testworker(queue="dq", open_=True, text="good")
    r = c.read_response(timeout=5)
    check(r.status == 200 and body_pid(r.body) == good.pid, "the GET is delivered again and served by the next worker",
          repr(r))
    c.close()
    good.stop()

    # not idempotent, nothing written: 503, then the connection is closed
    die2 = s.testworker(queue="dq", open_=True, mode="die")
    c = s.conn(port)
    mark = d.mark()
    c.send(b"POST /d/post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    check_eq(die2.wait(5), -9, "the second worker was killed holding POST /d/post")
    r = c.read_response(timeout=5)
    check_eq(r.status, 503, "the POST whose worker died before writing: status")
    how, extra = c.wait_closed(3)
    check(how in ("eof", "reset") and extra == b"", "and the connection is closed", how)
    d.wait_error_log(503, since=mark)
    check(True, "error-log line for the 503")

    # part of a response written: the connection is aborted (reset), never completed or answered twice
    die3 = s.testworker(queue="dq", open_=True, mode="die-mid-response")
    c = s.conn(port)
    c.send(get_req("/d/half"))
    check_eq(die3.wait(5), -9, "the third worker was killed half-way through its answer")
    data, how = c.read_all(5)
    check_eq(how, "reset", "the half-answered connection is aborted (reset)")
    check(data.count(b"HTTP/1.1") <= 1 and len(data) < 1000, "no complete or second answer on it (%d bytes)" % len(data))
    check(d.alive() and keeper.alive(), "daemon and queue keeper still running")
