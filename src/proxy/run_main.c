/* run_main.c: portshare-run, which runs an unmodified HTTP app on a free loopback port
 * (or a private unix socket), waits until it accepts connections, then serves the
 * given URL prefixes by forwarding to it (portshare-proxy in-process), passes signals
 * on, and exits with the app's status when it ends. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "portshare.h"

#include "launch.h"
#include "proxy.h"

#define RUN_READY_TIMEOUT_DEFAULT 60 /* seconds for the app to accept a connection */
#define RUN_PROBE_MS 50

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
	        "usage: portshare-run [--socket PATH] --url PREFIX [--url PREFIX]... [--queue NAME]\n"
	        "                     [--strip-prefix] [--backend-timeout SECONDS] [--threads N]\n"
	        "                     [--ready-timeout SECONDS] -- COMMAND [ARG]...\n"
	        "  Runs COMMAND with {port} in its arguments (and $PORT) set to a free loopback port,\n"
	        "  or {socket} set to a private unix socket path, and forwards PREFIX to it.\n"
	        "  --socket PATH          the daemon's control socket ($PORTSHARE_SOCKET, else %s)\n"
	        "  --url PREFIX           a URL prefix to serve (repeatable)\n"
	        "  --queue NAME           the queue's name (default run-PID)\n"
	        "  --strip-prefix         remove the matched prefix's path before forwarding\n"
	        "  --backend-timeout S    wait for a reply head, and between reply bytes (default %d)\n"
	        "  --threads N            proxy threads at most (default %d)\n"
	        "  --ready-timeout S      wait for the app to accept connections (default %d)\n"
	        "  --help                 this text\n",
	        PS_DEFAULT_SOCKET, PROXY_BACKEND_TIMEOUT_DEFAULT, PROXY_THREADS_DEFAULT,
	        RUN_READY_TIMEOUT_DEFAULT);
	exit(status);
}

static char run_dir[64]; /* the private directory of {socket}, removed at exit */
static char run_sock[128];

static void run_cleanup(void)
{
	if (run_sock[0])
		unlink(run_sock);
	if (run_dir[0])
		rmdir(run_dir);
}

static void run_fail(const char *fmt, const char *arg)
{
	fprintf(stderr, "portshare-run: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	run_cleanup();
	exit(1);
}

static void run_free_argv(char **argv)
{
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* The exit status that reports how the child ended. */
static int run_status(int ws)
{
	if (WIFEXITED(ws))
		return WEXITSTATUS(ws);
	if (WIFSIGNALED(ws))
		return 128 + WTERMSIG(ws);
	return 1;
}

/* Drains the proxy's threads: until none is left, PROXY_DRAIN_MS, a second SIGINT (^C
 * twice; a repeated SIGTERM changes nothing) or the app's exit (its SIGCHLD stays pending
 * for the caller). */
static void run_drain(struct proxy_config *cfg, const sigset_t *set, pid_t child)
{
	proxy_drain(cfg);
	struct timespec tick = {0, 10 * 1000000L};
	for (int waited = 0; waited < PROXY_DRAIN_MS && proxy_threads(cfg) > 0; waited += 10) {
		int sig = sigtimedwait(set, NULL, &tick);
		if (sig == SIGCHLD) {
			raise(SIGCHLD); /* blocked: pending again, for the caller's wait */
			return;
		}
		if (sig == SIGINT)
			return;
		if (sig == SIGHUP)
			kill(child, SIGHUP);
	}
}

int main(int argc, char **argv)
{
	struct proxy_config cfg;
	proxy_config_init(&cfg, "portshare-run");
	long ready_timeout = RUN_READY_TIMEOUT_DEFAULT;
	int cmd = -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			cmd = i + 1;
			break;
		}
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(0);
		if (strcmp(argv[i], "--ready-timeout") == 0 && i + 1 < argc) {
			char *end;
			ready_timeout = strtol(argv[++i], &end, 10);
			if (*end || ready_timeout < 1 || ready_timeout > 86400)
				run_fail("--ready-timeout takes seconds, 1-86400 (not %s)", argv[i]);
			continue;
		}
		if (strcmp(argv[i], "--backend") == 0)
			run_fail("%s",
			         "--backend is portshare-proxy's: portshare-run chooses the app's address");
		const char *why = NULL;
		int rc = proxy_option(&cfg, argc, argv, &i, &why);
		if (rc < 0) {
			fprintf(stderr, "portshare-run: %s: %s\n", argv[i], why);
			return 2;
		}
		if (rc == 0) {
			fprintf(stderr, "portshare-run: unknown argument %s\n", argv[i]);
			usage(2);
		}
	}
	if (cmd < 0 || cmd >= argc || cfg.nurls == 0) {
		fprintf(stderr, "portshare-run: --url and a command after -- are required\n");
		usage(2);
	}
	char queue[64];
	if (!cfg.queue) {
		snprintf(queue, sizeof(queue), "run-%d", (int)getpid());
		cfg.queue = queue;
	}

	/* {socket}: a unix socket in a directory only we can enter; else a loopback port */
	bool use_socket = false;
	for (int i = cmd; i < argc; i++)
		use_socket |= strstr(argv[i], "{socket}") != NULL;
	char port[12] = "", spec[160];
	if (use_socket) {
		const char *tmp = getenv("TMPDIR");
		snprintf(run_dir, sizeof(run_dir), "%s/portshare-run.XXXXXX",
		         tmp && strlen(tmp) < 32 ? tmp : "/tmp");
		if (!mkdtemp(run_dir)) {
			run_dir[0] = '\0';
			run_fail("cannot make a private directory for the app's socket: %s", strerror(errno));
		}
		snprintf(run_sock, sizeof(run_sock), "%s/app.sock", run_dir);
		snprintf(spec, sizeof(spec), "unix:%s", run_sock);
	} else {
		int free_port = launch_free_port();
		if (free_port < 0)
			run_fail("cannot find a free loopback port: %s", strerror(errno));
		snprintf(port, sizeof(port), "%d", free_port);
		snprintf(spec, sizeof(spec), "http://127.0.0.1:%s", port);
	}
	const char *why;
	if (!backend_addr_parse(spec, &cfg.backend, &why))
		run_fail("%s", why);
	cfg.backend_spec = spec;

	char **child_argv = calloc((size_t)(argc - cmd + 1), sizeof(char *));
	if (!child_argv)
		run_fail("%s", "out of memory");
	for (int i = cmd; i < argc; i++)
		if (!(child_argv[i - cmd] = launch_substitute(argv[i], port, run_sock)))
			run_fail("%s", "out of memory");

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	fflush(NULL);
	pid_t child = fork();
	if (child < 0)
		run_fail("fork: %s", strerror(errno));
	if (child == 0) {
		/* its own process group: a terminal's ^C reaches it once, through us */
		setpgid(0, 0);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (port[0])
			setenv("PORT", port, 1);
		execvp(child_argv[0], child_argv);
		fprintf(stderr, "portshare-run: cannot run %s: %s\n", child_argv[0], strerror(errno));
		_exit(127);
	}

	/* wait until the app accepts connections (or ends, or a signal comes) */
	int64_t deadline = backend_now_ms() + ready_timeout * 1000;
	for (;;) {
		int ws;
		if (waitpid(child, &ws, WNOHANG) == child) {
			fprintf(stderr, "portshare-run: %s exited before accepting connections (status %d)\n",
			        child_argv[0], run_status(ws));
			run_cleanup();
			run_free_argv(child_argv);
			return run_status(ws);
		}
		if (launch_accepts(&cfg.backend))
			break;
		if (backend_now_ms() > deadline) {
			fprintf(
			    stderr,
			    "portshare-run: %s did not accept connections on %s within %ld s: stopping it\n",
			    child_argv[0], cfg.backend.name, ready_timeout);
			kill(child, SIGTERM);
			waitpid(child, &ws, 0);
			run_cleanup();
			run_free_argv(child_argv);
			return 1;
		}
		struct timespec ts = {0, RUN_PROBE_MS * 1000000L};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			kill(child, sig);
	}
	if (proxy_start(&cfg) < 0) {
		kill(child, SIGTERM);
		int ws;
		waitpid(child, &ws, 0);
		run_cleanup();
		run_free_argv(child_argv);
		return 1;
	}
	bool drained = false;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if ((sig == SIGTERM || sig == SIGINT) && !drained) {
			/* a clean stop, as portshare-proxy's: the proxy drains first (no new
			 * requests; kept connections back to the daemon, for another worker of
			 * the queue), the requests in flight finish while the app still runs,
			 * then the app gets the signal */
			drained = true;
			run_drain(&cfg, &set, child);
		}
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			kill(child, sig);
			continue;
		}
		if (sig != SIGCHLD)
			continue;
		int ws;
		if (waitpid(child, &ws, WNOHANG) != child)
			continue;
		/* the sessions end with the process: the daemon removes the queue and its URLs */
		fprintf(stderr, "portshare-run: %s exited (status %d): removing %s\n", child_argv[0],
		        run_status(ws), cfg.queue);
		run_cleanup();
		fflush(NULL);
		_exit(run_status(ws));
	}
}
