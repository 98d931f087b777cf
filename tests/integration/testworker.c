/* testworker.c: a libportshare worker with the test behaviours (--mode) the integration stories need. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "portshare.h"

#define MAX_URLS 16
#define RECEIVE_WAIT_MS 200
#define BODY_WAIT_MS 10000
#define ECHO_IDLE_MS 30000
#define URL_WHAT_MAX 1100

enum mode {
	MODE_SERVE,
	MODE_NORECEIVE,
	MODE_CLOSE,
	MODE_CLEAR_NONBLOCK,
	MODE_FDLIMIT,
	MODE_UPGRADE,
	MODE_UPLOAD_ECHO,
	MODE_EXIT_AFTER,
	MODE_DIE,
	MODE_DIE_MID_RESPONSE,
	MODE_HANG,
	MODE_STALL_AFTER,
	MODE_HANG_MID_RESPONSE,
	MODE_EXIT_MID_RESPONSE,
	MODE_DIE_AFTER_LAST,
	MODE_GIVE_BACK,
	MODE_YIELD
};

static const char *const mode_names[] = {"serve",
                                         "noreceive",
                                         "close",
                                         "clear-nonblock",
                                         "fdlimit",
                                         "upgrade",
                                         "upload-echo",
                                         "exit-after",
                                         "die",
                                         "die-mid-response",
                                         "hang",
                                         "stall-after",
                                         "hang-mid-response",
                                         "exit-mid-response",
                                         "die-after-last",
                                         "give-back",
                                         "yield"};

struct options {
	const char *socket_path;
	const char *urls[MAX_URLS];
	int url_count;
	const char *queue;
	bool open;
	bool persistent;
	uint32_t max_length;
	uint64_t max_body;
	uint32_t response_wait_ms;
	const char *text;
	enum mode mode;
	long count;
	/* die, die-mid-response, hang: only requests whose path contains this (NULL: all);
	 * the others are served as in serve mode */
	const char *trigger;
	long delay_ms; /* waited before handling a triggered request */
	long window;   /* ps_queue_set_receive_window (0: not called) */
	/* done on SIGUSR1, adds first, then prints "testworker: usr1 done N" on stdout */
	const char *usr1_add[MAX_URLS];
	int usr1_add_count;
	const char *usr1_remove[MAX_URLS];
	int usr1_remove_count;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t usr1_requested;

static void on_sigusr1(int sig)
{
	(void)sig;
	usr1_requested = 1;
}

static void on_sigterm(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: testworker --socket PATH [--url PREFIX]... [--queue NAME] [--open] [--persistent]\n"
	    "       [--max-length N] [--max-body N] [--response-wait MS] [--text T] [--mode MODE] [--count "
	    "N]\n"
	    "       [--trigger SUBSTR] [--delay-ms N] [--usr1-add PREFIX]... [--usr1-remove PREFIX]...\n"
	    "       [--window N]\n"
	    "modes: serve noreceive close clear-nonblock fdlimit upgrade upload-echo exit-after die\n"
	    "       die-mid-response hang hang-mid-response stall-after exit-mid-response die-after-last\n"
	    "       give-back yield\n"
	    "  hang: holds the request unanswered until SIGTERM (says so on stderr first)\n"
	    "  hang-mid-response: writes part of a response, then hangs as hang does\n"
	    "  stall-after: serves --count requests, then never calls ps_receive again (stays alive)\n"
	    "  exit-mid-response: writes part of a response, then exits with status 0\n"
	    "  die-after-last: answers with ps_respond_last, then dies by SIGKILL\n"
	    "  yield: calls ps_client_yield before answering a triggered request (after --delay-ms)\n"
	    "  --trigger: die, die-mid-response, die-after-last, exit-mid-response, the hang modes and\n"
	    "    --delay-ms act only on paths containing SUBSTR\n"
	    "  --delay-ms: waits N ms before handling a request\n"
	    "  --window: ps_queue_set_receive_window(N), then tries 0 and the maximum + 1\n"
	    "  --usr1-add/--usr1-remove: on SIGUSR1 add/remove these URLs, then print\n"
	    "    'testworker: usr1 done N' (N counts the signals handled) on stdout\n");
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
	    {"socket", required_argument, NULL, 's'},      {"url", required_argument, NULL, 'u'},
	    {"queue", required_argument, NULL, 'q'},       {"open", no_argument, NULL, 'o'},
	    {"persistent", no_argument, NULL, 'p'},        {"max-length", required_argument, NULL, 'm'},
	    {"max-body", required_argument, NULL, 'b'},    {"response-wait", required_argument, NULL, 'W'},
	    {"text", required_argument, NULL, 't'},        {"mode", required_argument, NULL, 'M'},
	    {"count", required_argument, NULL, 'c'},       {"trigger", required_argument, NULL, 'T'},
	    {"delay-ms", required_argument, NULL, 'D'},    {"usr1-add", required_argument, NULL, 'A'},
	    {"usr1-remove", required_argument, NULL, 'R'}, {"window", required_argument, NULL, 'w'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->text = "testworker";
	o->count = 1;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 's':
			o->socket_path = optarg;
			break;
		case 'u':
			if (o->url_count == MAX_URLS) {
				fprintf(stderr, "testworker: at most %d --url\n", MAX_URLS);
				exit(2);
			}
			o->urls[o->url_count++] = optarg;
			break;
		case 'q':
			o->queue = optarg;
			break;
		case 'o':
			o->open = true;
			break;
		case 'p':
			o->persistent = true;
			break;
		case 'm':
			o->max_length = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o->max_body = strtoull(optarg, NULL, 10);
			break;
		case 'W':
			o->response_wait_ms = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o->text = optarg;
			break;
		case 'M': {
			size_t i;
			for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == sizeof(mode_names) / sizeof(mode_names[0])) {
				fprintf(stderr, "testworker: unknown mode %s\n", optarg);
				usage();
			}
			o->mode = (enum mode)i;
			break;
		}
		case 'c':
			o->count = strtol(optarg, NULL, 10);
			break;
		case 'T':
			o->trigger = optarg;
			break;
		case 'w':
			o->window = strtol(optarg, NULL, 10);
			break;
		case 'D':
			o->delay_ms = strtol(optarg, NULL, 10);
			break;
		case 'A':
		case 'R': {
			const char **list = ch == 'A' ? o->usr1_add : o->usr1_remove;
			int *n = ch == 'A' ? &o->usr1_add_count : &o->usr1_remove_count;
			if (*n == MAX_URLS) {
				fprintf(stderr, "testworker: at most %d --usr1-add/--usr1-remove\n",
				        MAX_URLS);
				exit(2);
			}
			list[(*n)++] = optarg;
			break;
		}
		default:
			usage();
		}
	}
	if (optind != argc || (o->open && o->queue == NULL))
		usage();
}

static void fail_with(ps_client *c, const char *what, int rc)
{
	fprintf(stderr, "testworker: %s: %s%s%s\n", what, ps_strerror(rc),
	        c && *ps_client_message(c) ? ": " : "", c ? ps_client_message(c) : "");
	exit(1);
}

/* FNV-1a over the body, so a story can check the exact bytes the worker read. */
static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static int respond_text(ps_request *r, const struct options *o, const ps_header *extra, size_t nextra,
                        const char *suffix)
{
	char body[2048];
	ps_header h[7];
	size_t nh = 0;
	int len = snprintf(body, sizeof(body), "%s pid=%ld path=%s%s\n", o->text, (long)getpid(),
	                   ps_request_path(r), suffix);

	if (len < 0 || (size_t)len >= sizeof(body))
		len = (int)sizeof(body) - 1;
	h[nh++] = (ps_header){"Content-Type", "text/plain"};
	/* what the request says of its connection, for the TLS stories */
	h[nh++] = (ps_header){"X-Scheme", ps_request_scheme(r)};
	if (ps_request_tls_version(r)) {
		h[nh++] = (ps_header){"X-TLS-Version", ps_request_tls_version(r)};
		h[nh++] = (ps_header){"X-TLS-Server-Name", ps_request_tls_server_name(r)};
	}
	for (size_t i = 0; i < nextra && nh < 7; i++)
		h[nh++] = extra[i];
	return ps_respond(r, 200, h, nh, body, (size_t)len);
}

/* Reads the whole body; returns its length, or a negative code. */
static int64_t read_body(ps_request *r, uint32_t *hash)
{
	unsigned char buf[65536];
	int64_t total = 0;

	*hash = 2166136261u;
	for (long i = 0; i < 1000000000L; i++) {
		ssize_t n = ps_request_read(r, buf, sizeof(buf), BODY_WAIT_MS);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		*hash = fnv1a(*hash, buf, (size_t)n);
		total += n;
	}
	return total;
}

static void serve(ps_request *r, const struct options *o, const ps_header *extra, size_t nextra)
{
	int rc;

	if (ps_request_has_body(r)) {
		uint32_t hash;
		int64_t len = read_body(r, &hash);
		char suffix[64], hex[16];
		ps_header h[4];
		size_t nh = 0;

		if (len < 0) {
			fprintf(stderr, "testworker: reading body of %s: %s\n", ps_request_path(r),
			        ps_strerror((int)len));
			ps_respond(r, 400, NULL, 0, "bad body\n", 9);
			return;
		}
		snprintf(suffix, sizeof(suffix), " body=%lld", (long long)len);
		snprintf(hex, sizeof(hex), "%08x", hash);
		h[nh++] = (ps_header){"X-Body-FNV1a", hex};
		for (size_t i = 0; i < nextra && nh < 4; i++)
			h[nh++] = extra[i];
		rc = respond_text(r, o, h, nh, suffix);
	} else {
		rc = respond_text(r, o, extra, nextra, "");
	}
	if (rc < 0)
		fprintf(stderr, "testworker: respond to %s: %s\n", ps_request_path(r), ps_strerror(rc));
}

static bool same_peer(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a,
		                         *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a,
		                          *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

/* There is no API for the connection's fd (on purpose): find it by its peer address. */
static int find_connection_fd(const ps_request *r)
{
	socklen_t plen = 0;
	const struct sockaddr *peer = ps_request_peer(r, &plen);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;

	if (peer == NULL || d == NULL) {
		if (d)
			closedir(d);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct stat st;
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (*end != '\0' || fd == dirfd(d) || fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (getpeername((int)fd, (struct sockaddr *)&ss, &len) == 0 && same_peer(peer, &ss)) {
			found = (int)fd;
			break;
		}
	}
	closedir(d);
	return found;
}

static void clear_nonblock(ps_request *r, const struct options *o)
{
	int fd = find_connection_fd(r);

	if (fd < 0) {
		fprintf(stderr, "testworker: connection fd not found in /proc/self/fd\n");
	} else {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0)
			fprintf(stderr, "testworker: cleared O_NONBLOCK on fd %d (was %s)\n", fd,
			        (fl & O_NONBLOCK) ? "set" : "clear");
		else
			fprintf(stderr, "testworker: fcntl on fd %d: %s\n", fd, strerror(errno));
	}
	serve(r, o, NULL, 0);
}

/* The lowest free descriptor number becomes the limit: the next fd the kernel would
 * hand out (the one attached to the next DELIVER) does not fit, so recvmsg truncates. */
static void lower_fd_limit(void)
{
	int lowest = fcntl(0, F_DUPFD_CLOEXEC, 0);
	struct rlimit rl;

	if (lowest < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		fprintf(stderr, "testworker: fdlimit: %s\n", strerror(errno));
		exit(1);
	}
	close(lowest);
	rl.rlim_cur = (rlim_t)lowest;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		fprintf(stderr, "testworker: setrlimit: %s\n", strerror(errno));
		exit(1);
	}
	fprintf(stderr, "testworker: RLIMIT_NOFILE soft limit now %d\n", lowest);
}

static bool write_all(int fd, const char *p, size_t n)
{
	for (int spins = 0; n > 0 && spins < 100000; spins++) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			struct pollfd pf = {fd, POLLOUT, 0};
			poll(&pf, 1, 1000);
		} else {
			return false;
		}
	}
	return n == 0;
}

/* Echoes bytes on an upgraded connection until EOF, error, idleness or SIGTERM. */
static void echo_until_eof(int fd)
{
	char buf[16384];

	while (!stop_requested) {
		struct pollfd pf = {fd, POLLIN, 0};
		int pr = poll(&pf, 1, ECHO_IDLE_MS);
		ssize_t n;

		if (pr == 0)
			break;
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		if (!write_all(fd, buf, (size_t)n))
			break;
	}
	shutdown(fd, SHUT_WR);
	close(fd);
}

/* The upgraded connection as a stream (plain or TLS): echoes what comes, polling only
 * when nothing waits in the library. */
static void echo_stream(ps_stream *st)
{
	char buf[16384];

	while (!stop_requested) {
		if (!ps_stream_pending(st)) {
			struct pollfd pf = {ps_stream_fd(st), POLLIN, 0};
			int pr = poll(&pf, 1, ECHO_IDLE_MS);
			if (pr == 0)
				break;
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr < 0)
				break;
		}
		ssize_t n = ps_stream_read(st, buf, sizeof(buf), 0);
		if (n == PS_EAGAIN)
			continue;
		if (n <= 0 || ps_stream_write(st, buf, (size_t)n) < 0)
			break;
	}
	ps_stream_close(st);
}

static void upgrade(ps_request *r, const struct options *o)
{
	const char *up = ps_request_header(r, "Upgrade");
	ps_header h[2] = {{"Upgrade", "echo"}, {"Connection", "Upgrade"}};
	int fd = -1, rc;

	if (up == NULL || strcasecmp(up, "echo") != 0) {
		serve(r, o, NULL, 0);
		return;
	}
	rc = ps_respond(r, 101, h, 2, NULL, 0);
	if (rc == 0 && (!strcmp(ps_request_scheme(r), "https") || ps_request_header(r, "X-Stream"))) {
		/* TLS needs the stream; a plain request asks for it with X-Stream */
		ps_stream *st = NULL;
		rc = ps_request_upgrade_stream(r, &st);
		if (rc == 0) {
			fprintf(stderr, "testworker: upgraded, echoing on a stream\n");
			echo_stream(st);
			return;
		}
	} else if (rc == 0) {
		rc = ps_request_upgrade(r, &fd);
	}
	if (rc < 0) {
		fprintf(stderr, "testworker: upgrade: %s\n", ps_strerror(rc));
		return;
	}
	fprintf(stderr, "testworker: upgraded, echoing on fd %d\n", fd);
	echo_until_eof(fd);
}

static void upload_echo(ps_request *r)
{
	ps_header h = {"Content-Type", "application/octet-stream"};
	char buf[65536];
	int rc = ps_respond_begin(r, 200, &h, 1, -1);

	for (long i = 0; rc == 0 && i < 1000000000L; i++) {
		ssize_t n = ps_request_read(r, buf, sizeof(buf), BODY_WAIT_MS);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		rc = ps_respond_write(r, buf, (size_t)n);
	}
	if (rc == 0)
		rc = ps_respond_end(r);
	if (rc < 0)
		fprintf(stderr, "testworker: upload-echo %s: %s\n", ps_request_path(r), ps_strerror(rc));
}

/* Dies by SIGKILL holding the request: with nothing written, or after part of a response
 * (DESIGN §2a: the daemon re-delivers, answers 503, or aborts, by what was written). */
static void die_holding(ps_request *r, bool mid_response)
{
	char part[100];

	memset(part, 'x', sizeof(part));
	fprintf(stderr, "testworker: dying with %s %s\n", ps_request_method(r), ps_request_path(r));
	if (mid_response && ps_respond_begin(r, 200, NULL, 0, 1000) == 0)
		ps_respond_write(r, part, sizeof(part));
	kill(getpid(), SIGKILL);
}

/* Answers with one ps_respond_last (a chunked response: head, 100 bytes and the end in
 * one send), then dies by SIGKILL: the response is whole, so the connection must live on. */
static void die_after_last(ps_request *r)
{
	char part[100];

	memset(part, 'x', sizeof(part));
	if (ps_respond_begin(r, 200, NULL, 0, -1) == 0 && ps_respond_last(r, part, sizeof(part)) == 0)
		fprintf(stderr, "testworker: answered %s with ps_respond_last, dying\n", ps_request_path(r));
	kill(getpid(), SIGKILL);
}

/* Writes part of a response and exits normally (not killed) without finishing it or
 * freeing the request: the daemon must abort the connection, never answer again. */
static void exit_mid_response(ps_request *r)
{
	char part[100];

	memset(part, 'x', sizeof(part));
	fprintf(stderr, "testworker: exiting (status 0) in the middle of the answer to %s %s\n",
	        ps_request_method(r), ps_request_path(r));
	if (ps_respond_begin(r, 200, NULL, 0, 1000) == 0)
		ps_respond_write(r, part, sizeof(part));
	exit(0);
}

static void sleep_ms(long ms);

/* Holds the request without answering until SIGTERM: the library has read it (so the
 * daemon, if this process dies now, must not deliver it again). */
static void hang(ps_request *r, bool mid_response)
{
	char part[100];

	memset(part, 'x', sizeof(part));
	if (mid_response && ps_respond_begin(r, 200, NULL, 0, 1000) == 0)
		ps_respond_write(r, part, sizeof(part));
	fprintf(stderr, "testworker: hanging on %s %s\n", ps_request_method(r), ps_request_path(r));
	for (long i = 0; !stop_requested && i < 100L * 3600 * 24; i++)
		sleep_ms(10);
}

static bool triggered(ps_request *r, const struct options *o)
{
	return o->trigger == NULL || strstr(ps_request_path(r), o->trigger) != NULL;
}

/* give-back mode, for a triggered request: the calls that must be refused first (a body
 * read, an answer begun), then the give-back itself. Returns 1 when r went back (it is
 * freed then), -1 when it was answered here, 0 when it is to be served as usual. Prints
 * one line per call for the story. */
static int give_back(ps_client *c, ps_request *r)
{
	int rc = ps_request_give_back(NULL);
	printf("testworker: give-back NULL: %s\n", ps_strerror(rc));
	if (ps_request_has_body(r)) {
		char buf[16];
		ps_request_read(r, buf, sizeof(buf), BODY_WAIT_MS);
		rc = ps_request_give_back(r);
		printf("testworker: give-back after a body read: %s\n", ps_strerror(rc));
		fflush(stdout);
		return 0;
	}
	if (strstr(ps_request_path(r), "answered")) {
		ps_respond_begin(r, 200, NULL, 0, 3);
		rc = ps_request_give_back(r);
		printf("testworker: give-back after an answer begun: %s\n", ps_strerror(rc));
		ps_respond_last(r, "mine", 3);
		fflush(stdout);
		return -1;
	}
	rc = ps_request_give_back(r);
	printf("testworker: give-back: %s\n", rc == 0 ? "ok" : ps_strerror(rc));
	fflush(stdout);
	if (rc == 0) {
		/* as the call's contract says: or the daemon gives it to our next receive */
		ps_client_yield(c);
		sleep_ms(50); /* alone on its queue, it would get it back at once: not too often */
	}
	return rc == 0 ? 1 : 0;
}

static void handle(ps_request *r, const struct options *o)
{
	static const ps_header close_hdr = {"Connection", "close"};

	switch (o->mode) {
	case MODE_CLOSE:
		serve(r, o, &close_hdr, 1);
		break;
	case MODE_CLEAR_NONBLOCK:
		clear_nonblock(r, o);
		break;
	case MODE_UPGRADE:
		upgrade(r, o);
		break;
	case MODE_UPLOAD_ECHO:
		upload_echo(r);
		break;
	case MODE_DIE:
	case MODE_DIE_MID_RESPONSE:
		if (triggered(r, o))
			die_holding(r, o->mode == MODE_DIE_MID_RESPONSE);
		else
			serve(r, o, NULL, 0);
		break;
	case MODE_HANG:
	case MODE_HANG_MID_RESPONSE:
		if (triggered(r, o))
			hang(r, o->mode == MODE_HANG_MID_RESPONSE);
		else
			serve(r, o, NULL, 0);
		break;
	case MODE_DIE_AFTER_LAST:
		if (triggered(r, o))
			die_after_last(r);
		else
			serve(r, o, NULL, 0);
		break;
	case MODE_EXIT_MID_RESPONSE:
		if (triggered(r, o))
			exit_mid_response(r);
		else
			serve(r, o, NULL, 0);
		break;
	default:
		serve(r, o, NULL, 0);
		break;
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct options o;
	struct sigaction sa;
	ps_client *c = NULL;
	ps_queue *q = NULL;
	char name[64];
	long served = 0;
	int rc;

	parse_options(argc, argv, &o);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigterm;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_sigusr1;
	sigaction(SIGUSR1, &sa, NULL);

	rc = ps_connect(o.socket_path, &c);
	if (rc < 0)
		fail_with(NULL, "connect", rc);
	if (o.queue == NULL) {
		snprintf(name, sizeof(name), "tw-%ld", (long)getpid());
		o.queue = name;
	}
	if (o.open) {
		rc = ps_queue_open(c, o.queue, &q);
	} else {
		ps_queue_opts qo = {.persistent = o.persistent,
		                    .max_length = o.max_length,
		                    .max_body = o.max_body,
		                    .response_wait_ms = o.response_wait_ms};
		rc = ps_queue_create(c, o.queue, &qo, &q);
	}
	if (rc < 0)
		fail_with(c, o.open ? "open queue" : "create queue", rc);
	for (int i = 0; i < o.url_count; i++) {
		rc = ps_queue_add_url(q, o.urls[i]);
		if (rc < 0) {
			char what[URL_WHAT_MAX];
			snprintf(what, sizeof(what), "add url %s", o.urls[i]);
			fail_with(c, what, rc);
		}
	}
	if (o.window) {
		rc = ps_queue_set_receive_window(q, (unsigned)o.window);
		printf("testworker: window %ld: %s\n", o.window, rc == 0 ? "ok" : ps_strerror(rc));
		/* then the bounds: refused, and the window stays as it was */
		printf("testworker: window 0: %s\n", ps_strerror(ps_queue_set_receive_window(q, 0)));
		printf("testworker: window %d: %s\n", PS_RECEIVE_WINDOW_MAX + 1,
		       ps_strerror(ps_queue_set_receive_window(q, PS_RECEIVE_WINDOW_MAX + 1)));
	}
	if (o.mode == MODE_FDLIMIT)
		lower_fd_limit();
	printf("testworker: ready queue=%s\n", ps_queue_name(q));
	fflush(stdout);

	long usr1_done = 0;
	while (!stop_requested) {
		ps_request *r = NULL;

		if (usr1_requested) {
			usr1_requested = 0;
			for (int i = 0; i < o.usr1_add_count; i++) {
				rc = ps_queue_add_url(q, o.usr1_add[i]);
				fprintf(stderr, "testworker: usr1: add url %s: %s\n", o.usr1_add[i],
				        rc < 0 ? ps_strerror(rc) : "ok");
			}
			for (int i = 0; i < o.usr1_remove_count; i++) {
				rc = ps_queue_remove_url(q, o.usr1_remove[i]);
				fprintf(stderr, "testworker: usr1: remove url %s: %s\n", o.usr1_remove[i],
				        rc < 0 ? ps_strerror(rc) : "ok");
			}
			printf("testworker: usr1 done %ld\n", ++usr1_done);
			fflush(stdout);
		}
		if (o.mode == MODE_NORECEIVE || (o.mode == MODE_STALL_AFTER && served >= o.count)) {
			if (o.mode == MODE_STALL_AFTER && served == o.count) {
				fprintf(stderr,
				        "testworker: stalled after %ld requests: no more ps_receive\n",
				        served);
				served++; /* say it once */
			}
			sleep_ms(100);
			continue;
		}
		rc = ps_receive(q, &r, RECEIVE_WAIT_MS);
		if (rc == PS_ETIMEDOUT || rc == PS_EAGAIN)
			continue;
		if (rc < 0) {
			if (stop_requested)
				break;
			/* the library reconnects by itself (daemon restart); do not spin meanwhile */
			fprintf(stderr, "testworker: receive: %s\n", ps_strerror(rc));
			sleep_ms(50);
			continue;
		}
		if (o.delay_ms > 0 && triggered(r, &o))
			sleep_ms(o.delay_ms);
		if (o.mode == MODE_YIELD && triggered(r, &o)) {
			/* what this session holds and does not serve goes back, in the order it came */
			rc = ps_client_yield(c);
			printf("testworker: yield: %s\n", rc == 0 ? "ok" : ps_strerror(rc));
			fflush(stdout);
		}
		int given = o.mode == MODE_GIVE_BACK && triggered(r, &o) ? give_back(c, r) : 0;
		if (given > 0)
			continue; /* r went back to the daemon (and is freed) */
		if (given == 0)
			handle(r, &o);
		ps_request_free(r);
		served++;
		if (o.mode == MODE_EXIT_AFTER && served >= o.count)
			break;
	}
	ps_close(c);
	return 0;
}
