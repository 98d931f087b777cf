/* client.c: the benchmark's own HTTP client: holds N idle keep-alive connections (--idle) or sends an exact number of requests (--count) for syscall counting. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX (2 * 1024 * 1024)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_in addr_of(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	return a;
}

/* The length of a whole response at the start of buf[0..len): head + Content-Length,
 * 0 when incomplete, -1 when it has no Content-Length. *status gets the status. */
static long response_len(const char *buf, size_t len, int *status)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	if (!end)
		return 0;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	*status = atoi(buf + 9);
	long head = end - buf + 4, body = -1;
	for (const char *l = memchr(buf, '\n', (size_t)(end - buf)); l && l < end; l = memchr(l + 1, '\n', (size_t)(end - l))) {
		if (strncasecmp(l + 1, "content-length:", 15) == 0)
			body = strtol(l + 16, NULL, 10);
	}
	if (body < 0)
		return -1;
	return (size_t)(head + body) <= len ? head + body : 0;
}

/* ---- --idle: open N connections, one request on each, then hold them ---- */

struct idle {
	int fd;
	int state; /* 0 connecting, 1 sent (reading), 2 idle, 3 failed */
	size_t got;
};

static int run_idle(int port, const char *path, long n, double hold, double setup_limit)
{
	/* one descriptor per connection: raise the soft limit (the hard one only if allowed) */
	rlim_t need = (rlim_t)n + 64;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < need) {
		rl.rlim_cur = need;
		if (rl.rlim_max < need)
			rl.rlim_max = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			perror("client: setrlimit RLIMIT_NOFILE");
			return 1;
		}
	}
	char req[512];
	int reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path, port);
	struct idle *c = calloc((size_t)n, sizeof(*c));
	static char buf[65536];
	int ep = epoll_create1(0);
	if (!c || ep < 0) {
		perror("setup");
		return 1;
	}
	struct sockaddr_in a = addr_of(port);
	long opened = 0, done = 0, failed = 0, inflight = 0;
	double t0 = now_s();
	struct epoll_event evs[512];
	while (done + failed < n && !stop) {
		if (now_s() - t0 > setup_limit) {
			fprintf(stderr, "client: setup time limit reached\n");
			break;
		}
		/* at most 256 connections being set up at once */
		while (opened < n && inflight < 256) {
			struct idle *k = &c[opened++];
			k->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (k->fd < 0) {
				perror("socket");
				k->state = 3;
				failed++;
				continue;
			}
			if (connect(k->fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
				k->state = 3;
				failed++;
				close(k->fd);
				continue;
			}
			struct epoll_event e = {.events = EPOLLOUT | EPOLLIN, .data.ptr = k};
			epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &e);
			inflight++;
		}
		int m = epoll_wait(ep, evs, 512, 1000);
		for (int i = 0; i < m; i++) {
			struct idle *k = evs[i].data.ptr;
			if (k->state == 0 && (evs[i].events & EPOLLOUT)) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err || write(k->fd, req, (size_t)reqlen) != reqlen) {
					k->state = 3;
				} else {
					k->state = 1;
					struct epoll_event e = {.events = EPOLLIN, .data.ptr = k};
					epoll_ctl(ep, EPOLL_CTL_MOD, k->fd, &e);
					continue;
				}
			} else if (k->state == 1) {
				ssize_t r = read(k->fd, buf, sizeof(buf));
				if (r > 0) {
					/* responses here are small: the first read holds the head, and
					 * whatever read follows completes the body */
					bool first = k->got == 0;
					k->got += (size_t)r;
					int st = 0;
					long want = first ? response_len(buf, (size_t)r, &st) : 1;
					if (first && (want < 0 || (want > 0 && st != 200))) {
						k->state = 3;
					} else if (want > 0) {
						k->state = 2;
						epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
						inflight--;
						done++;
						continue;
					} else {
						continue;
					}
				} else if (r < 0 && errno == EAGAIN) {
					continue;
				} else {
					k->state = 3;
				}
			} else {
				continue;
			}
			/* failed */
			epoll_ctl(ep, EPOLL_CTL_DEL, k->fd, NULL);
			close(k->fd);
			inflight--;
			failed++;
		}
	}
	printf("ready %ld idle connections (%ld failed) in %.2f s\n", done, failed, now_s() - t0);
	fflush(stdout);
	/* hold: watch for connections the server closes */
	int ep2 = epoll_create1(0);
	for (long i = 0; i < opened; i++)
		if (c[i].state == 2) {
			struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &c[i]};
			epoll_ctl(ep2, EPOLL_CTL_ADD, c[i].fd, &e);
		}
	long closed = 0;
	double t1 = now_s();
	while (!stop && now_s() - t1 < hold) {
		int m = epoll_wait(ep2, evs, 512, 200);
		for (int i = 0; i < m; i++) {
			struct idle *k = evs[i].data.ptr;
			epoll_ctl(ep2, EPOLL_CTL_DEL, k->fd, NULL);
			k->state = 3;
			closed++;
		}
	}
	printf("held %.1f s, %ld of %ld closed by the server meanwhile\n", now_s() - t1, closed, done);
	fflush(stdout);
	return 0;
}

/* ---- --count: exactly N requests, keep-alive on one connection or one per connection ---- */

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = addr_of(port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int run_count(int port, const char *path, long n, bool close_each, long expect)
{
	char req[512];
	int reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", path, port,
	                      close_each ? "Connection: close\r\n" : "");
	char *buf = malloc(RESP_MAX);
	if (!buf)
		return 1;
	int fd = -1;
	long bad = 0;
	double t0 = now_s();
	for (long i = 0; i < n && !stop; i++) {
		if (fd < 0)
			fd = connect_to(port);
		if (write(fd, req, (size_t)reqlen) != reqlen) {
			perror("write");
			return 1;
		}
		size_t got = 0;
		long want = 0;
		int st = 0;
		while (want == 0) {
			ssize_t r = read(fd, buf + got, RESP_MAX - got);
			if (r <= 0) {
				fprintf(stderr, "client: request %ld: connection ended after %zu bytes\n", i, got);
				return 1;
			}
			got += (size_t)r;
			want = response_len(buf, got, &st);
			if (want < 0) {
				fprintf(stderr, "client: request %ld: no Content-Length\n", i);
				return 1;
			}
		}
		const char *end = memmem(buf, got, "\r\n\r\n", 4);
		long body = want - (end - buf + 4);
		if (st != 200 || (expect >= 0 && body != expect))
			bad++;
		if (close_each) {
			/* the server closes: wait for its FIN, then close */
			char x[64];
			while (read(fd, x, sizeof(x)) > 0)
				;
			close(fd);
			fd = -1;
		}
	}
	double dt = now_s() - t0;
	if (fd >= 0)
		close(fd);
	printf("done %ld requests (%ld bad) in %.3f s\n", n, bad, dt);
	return bad ? 1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: client --port P [--path /13] --idle N [--hold SECONDS]\n"
	                "       client --port P [--path /13] --count N [--close] [--expect BODYLEN]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	long port = 0, idle = 0, count = 0, expect = -1;
	double hold = 600;
	bool close_each = false;
	const char *path = "/13";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--close") == 0) {
			close_each = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (strcmp(a, "--port") == 0)
			port = strtol(v, NULL, 10);
		else if (strcmp(a, "--path") == 0)
			path = v;
		else if (strcmp(a, "--idle") == 0)
			idle = strtol(v, NULL, 10);
		else if (strcmp(a, "--count") == 0)
			count = strtol(v, NULL, 10);
		else if (strcmp(a, "--hold") == 0)
			hold = strtod(v, NULL);
		else if (strcmp(a, "--expect") == 0)
			expect = strtol(v, NULL, 10);
		else
			usage();
	}
	if (port <= 0 || port > 65535 || (idle > 0) == (count > 0) || idle > 1000000 || count > 100000000)
		usage();
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	if (idle > 0)
		return run_idle((int)port, path, idle, hold, 120);
	return run_count((int)port, path, count, close_each, expect);
}
