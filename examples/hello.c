/* hello.c: portshare-hello, the smallest worker: answers every request with one line
 * naming its own pid and the path it was asked for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portshare.h"
#include "serve.h"

static void usage(void)
{
	fprintf(stderr,
	        "usage: portshare-hello [--socket PATH] [--url PREFIX]... [--queue NAME] [--text TEXT]\n"
	        "  with --url: creates the queue (--queue, or hello-PID) and registers each prefix\n"
	        "  with --queue and no --url: joins that existing queue as another worker\n"
	        "  with neither: joins the queue $" PS_QUEUE_ENV " names (a worker started on demand)\n");
	exit(2);
}

static void hello_handle(ps_request *r, void *arg)
{
	const char *text = arg;
	static const ps_header type = {"Content-Type", "text/plain"};
	char *body = NULL;
	int n = asprintf(&body, "%s pid=%d path=%s\n", text, (int)getpid(), ps_request_path(r));
	if (n < 0)
		return; /* the library answers 500 when the request is freed */
	ps_respond(r, 200, &type, 1, body, (size_t)n);
	free(body);
}

int main(int argc, char **argv)
{
	struct serve_opts o = {.prog = "portshare-hello", .kind = "hello"};
	const char *text = "hello";
	if (!serve_parse(&o, argc, argv, "--text", &text))
		usage();
	/* started by a controller on demand (ps_queue_wait_demand, portshare-apps): the queue
	 * to join comes in the environment, the socket too ($PORTSHARE_SOCKET, serve_setup) */
	if (o.nurls == 0 && !o.queue)
		o.queue = getenv(PS_QUEUE_ENV);
	if (o.nurls == 0 && (!o.queue || !*o.queue)) {
		fprintf(stderr, "portshare-hello: nothing to serve: give --url PREFIX (a queue of its own), "
		                "--queue NAME (join it), or set $" PS_QUEUE_ENV "\n");
		usage();
	}
	ps_client *c;
	ps_queue *q = serve_setup(&o, &c);
	serve_forever(&o, c, q, hello_handle, (void *)text);
	return 0;
}
