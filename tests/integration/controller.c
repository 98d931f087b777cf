/* controller.c: a process manager on demand start, for the stories: holds a queue open,
 * waits with ps_queue_wait_demand, starts a worker command with PORTSHARE_QUEUE and
 * PORTSHARE_SOCKET set, and prints each step on stdout. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "portshare.h"

struct options {
	const char *socket_path;
	const char *queue;
	bool remove;     /* delete the queue (an admin's) instead, and say how that went */
	int probe;       /* ms of a wait before the first --hold (-1: none): it leaves a registration */
	bool hold;       /* wait for SIGUSR1 before the first wait (a demand already there) */
	int rounds;      /* demand, start, wait for the worker's exit: this many times */
	int timeout;     /* ms of each demand wait (-1: forever); on a timeout it exits 4 */
	int second_wait; /* ms of a wait while the worker runs (-1: none) */
	char **command;  /* after "--" */
};

static volatile sig_atomic_t go;
static volatile pid_t child = -1;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void on_term(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGTERM);
	_exit(0);
}

static void usage(void)
{
	fprintf(stderr, "usage: controller --socket PATH --queue NAME [--delete] [--probe MS] [--hold] "
	                "[--rounds N] [--timeout MS] [--second-wait MS] -- COMMAND [ARG]...\n");
	exit(2);
}

static void parse(struct options *o, int argc, char **argv)
{
	*o = (struct options){.rounds = 1, .timeout = -1, .second_wait = -1, .probe = -1};
	int i;
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		bool more = i + 1 < argc;
		if (!strcmp(argv[i], "--hold"))
			o->hold = true;
		else if (!strcmp(argv[i], "--delete"))
			o->remove = true;
		else if (!strcmp(argv[i], "--socket") && more)
			o->socket_path = argv[++i];
		else if (!strcmp(argv[i], "--queue") && more)
			o->queue = argv[++i];
		else if (!strcmp(argv[i], "--rounds") && more)
			o->rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--probe") && more)
			o->probe = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--timeout") && more)
			o->timeout = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--second-wait") && more)
			o->second_wait = atoi(argv[++i]);
		else
			usage();
	}
	if ((!o->remove && i + 1 >= argc) || !o->socket_path || !o->queue || o->rounds < 1)
		usage();
	o->command = i < argc ? argv + i + 1 : NULL;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ps_queue_wait_demand, printed as "controller: WHAT round=N rc=CODE (TEXT) ms=T". */
static int wait_demand(ps_client *c, ps_queue *q, const char *what, int round, int timeout_ms)
{
	long long t0 = now_ms();
	int rc = ps_queue_wait_demand(q, timeout_ms);
	printf("controller: %s round=%d rc=%d (%s) ms=%lld%s%s\n", what, round, rc, ps_strerror(rc),
	       now_ms() - t0, *ps_client_message(c) ? ": " : "", ps_client_message(c));
	fflush(stdout);
	return rc;
}

static pid_t start(const struct options *o)
{
	pid_t pid = fork();
	if (pid == 0) {
		setenv(PS_QUEUE_ENV, o->queue, 1);
		setenv(PS_SOCKET_ENV, o->socket_path, 1);
		execvp(o->command[0], o->command);
		fprintf(stderr, "controller: cannot run %s: %s\n", o->command[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Opens the queue and runs o's rounds (or deletes it). The exit status: 0, 1 on a
 * failure, 3 when the queue cannot be opened, 4 when a demand wait timed out. */
static int run(const struct options *o, ps_client *c)
{
	ps_queue *q;
	int rc = ps_queue_open(c, o->queue, &q);
	if (rc < 0) {
		printf("controller: opening queue %s: rc=%d (%s): %s\n", o->queue, rc, ps_strerror(rc),
		       ps_client_message(c));
		return 3;
	}
	if (o->remove) {
		rc = ps_queue_delete(q);
		printf("controller: deleted queue=%s rc=%d (%s)\n", o->queue, rc, ps_strerror(rc));
		return rc ? 1 : 0;
	}
	printf("controller: attached queue=%s pid=%d\n", o->queue, (int)getpid());
	fflush(stdout);
	if (o->probe >= 0)
		wait_demand(c, q, "probe", 0, o->probe);
	for (int i = 0; o->hold && !go && i < 600; i++) /* a minute at most */
		usleep(100000);
	for (int round = 1; round <= o->rounds; round++) {
		printf("controller: waiting round=%d\n", round);
		fflush(stdout);
		rc = wait_demand(c, q, "demand", round, o->timeout);
		if (rc != 0)
			return rc == PS_ETIMEDOUT ? 4 : 1;
		child = start(o);
		printf("controller: started round=%d pid=%d\n", round, (int)child);
		fflush(stdout);
		if (o->second_wait >= 0)
			wait_demand(c, q, "while-running", round, o->second_wait);
		int status;
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		child = -1;
		printf("controller: exited round=%d status=%d\n", round, status);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	parse(&o, argc, argv);
	signal(SIGUSR1, on_usr1);
	signal(SIGTERM, on_term);
	ps_client *c;
	int rc = ps_connect(o.socket_path, &c);
	if (rc < 0) {
		fprintf(stderr, "controller: connecting to %s: %s\n", o.socket_path, ps_strerror(rc));
		return 1;
	}
	rc = run(&o, c);
	ps_close(c);
	return rc;
}
