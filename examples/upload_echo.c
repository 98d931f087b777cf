/* upload_echo.c: portshare-upload-echo, a worker that streams each request's body back
 * as it reads it (chunked on HTTP/1.1), to show body reading and streamed responses;
 * the last bytes go with the response's end, so a small body's echo is one send. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portshare.h"
#include "serve.h"

/* How long to wait for the next body bytes (HTTP.sys's EntityBody default). */
#define ECHO_BODY_WAIT_MS 120000

static void usage(void)
{
	fprintf(stderr, "usage: portshare-upload-echo --url PREFIX [--socket PATH] [--queue NAME]\n");
	exit(2);
}

static void echo_handle(ps_request *r, void *arg)
{
	(void)arg;
	const char *type = ps_request_header(r, "Content-Type");
	ps_header h = {"Content-Type", type ? type : "application/octet-stream"};
	if (ps_respond_begin(r, 200, &h, 1, -1) < 0)
		return;
	static char buf[65536];
	for (;;) {
		ssize_t n = ps_request_read(r, buf, sizeof(buf), ECHO_BODY_WAIT_MS);
		/* a broken body or client: the response cannot be completed, and freeing
		 * the request resets the connection */
		if (n < 0)
			return;
		/* the body's last bytes and the response's end leave in one send: a body
		 * that came in one piece is echoed whole or not at all */
		if (ps_request_body_complete(r)) {
			ps_respond_last(r, buf, (size_t)n);
			return;
		}
		if (ps_respond_write(r, buf, (size_t)n) < 0)
			return;
	}
}

int main(int argc, char **argv)
{
	struct serve_opts o = {.prog = "portshare-upload-echo", .kind = "upload-echo"};
	if (!serve_parse(&o, argc, argv, NULL, NULL) || o.nurls == 0)
		usage();
	ps_client *c;
	ps_queue *q = serve_setup(&o, &c);
	serve_forever(&o, c, q, echo_handle, NULL);
	return 0;
}
