/* proxy_main.c: portshare-proxy, a libportshare worker that serves a queue by
 * forwarding each request to an HTTP backend (an unmodified app) over a keep-alive pool. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portshare.h"

#include "proxy.h"

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	        "usage: portshare-proxy [--socket PATH] --queue NAME [--url PREFIX]... --backend BACKEND\n"
	        "                       [--strip-prefix] [--backend-timeout SECONDS] [--threads N]\n"
	        "  BACKEND: http://127.0.0.1:PORT, http://[::1]:PORT or unix:/PATH\n"
	        "  --socket PATH          the daemon's control socket ($PORTSHARE_SOCKET, else %s)\n"
	        "  --queue NAME           the queue to create, or to join when it exists\n"
	        "  --url PREFIX           a URL prefix to add to the queue (repeatable)\n"
	        "  --backend BACKEND      where requests go\n"
	        "  --strip-prefix         remove the matched prefix's path before forwarding\n"
	        "  --backend-timeout S    wait for a reply head, and between reply bytes (default %d)\n"
	        "  --threads N            threads at most, each a session of its own (default %d)\n"
	        "  --help                 this text\n",
	        PS_DEFAULT_SOCKET, PROXY_BACKEND_TIMEOUT_DEFAULT, PROXY_THREADS_DEFAULT);
	exit(status);
}

int main(int argc, char **argv)
{
	struct proxy_config cfg;
	proxy_config_init(&cfg, "portshare-proxy");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(0);
		const char *why = NULL;
		int rc = proxy_option(&cfg, argc, argv, &i, &why);
		if (rc < 0) {
			fprintf(stderr, "portshare-proxy: %s: %s\n", argv[i], why);
			return 2;
		}
		if (rc == 0) {
			fprintf(stderr, "portshare-proxy: unknown argument %s\n", argv[i]);
			usage(2);
		}
	}
	if (!cfg.queue || !cfg.backend_spec) {
		fprintf(stderr, "portshare-proxy: --queue and --backend are required\n");
		usage(2);
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (proxy_start(&cfg) < 0)
		return 1;
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP)
			continue; /* nothing to reload: the options are the whole configuration */
		break;
	}
	/* SIGTERM/SIGINT: drain, so that a client's next request on a connection a thread
	 * keeps is not lost; requests in progress get PROXY_DRAIN_MS to finish (a stream may
	 * never end), a second SIGINT (^C twice) ends them at once; a repeated SIGTERM (a
	 * supervisor's and a service manager's) changes nothing */
	proxy_drain(&cfg);
	struct timespec tick = {0, 10 * 1000000L};
	for (int waited = 0; waited < PROXY_DRAIN_MS && proxy_threads(&cfg) > 0; waited += 10) {
		if (sigtimedwait(&set, NULL, &tick) == SIGINT)
			break;
	}
	fflush(NULL);
	_exit(0);
}
