/* systemd_socket.c: which .socket unit a socket of systemd's (pid 1) belongs to, read from
 * `systemctl list-sockets --all --full --no-legend`: one line per listening address,
 * "LISTEN UNIT ACTIVATES" ("[::]:80  nginx.socket  nginx.service"; "-" when it starts
 * nothing; more services on lines of their own with the first two columns blank). */
#include "systemd_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"

#define SYSTEMCTL_OUTPUT_MAX (1 << 20)
#define SYSTEMCTL_TIMEOUT_MS 5000

extern char **environ;

static char *list;         /* systemctl's output, once read */
static char list_why[160]; /* why it could not be read */

static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (deadline->tv_sec - now.tv_sec) * 1000LL + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : (int)ms;
}

/* Runs systemctl list-sockets and keeps what it prints in list; why in list_why if not. */
static void systemctl_list_sockets(void)
{
	static char *const argv[] = {"systemctl",   "list-sockets", "--all", "--full",
	                             "--no-legend", "--no-pager",   NULL};
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(list_why, sizeof(list_why), "cannot run systemctl: %s", strerror(errno));
		return;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	/* in a process group of its own, so that a timeout ends whatever it started too */
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, "systemctl", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[1]);
	if (rc) {
		close(pipefd[0]);
		snprintf(list_why, sizeof(list_why), "cannot run systemctl: %s", strerror(rc));
		return;
	}
	char *out = malloc(SYSTEMCTL_OUTPUT_MAX + 1);
	size_t len = 0;
	bool late = false;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += SYSTEMCTL_TIMEOUT_MS / 1000;
	while (out && len < SYSTEMCTL_OUTPUT_MAX) {
		struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
		int ready = poll(&p, 1, ms_left(&deadline));
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0) {
			late = true;
			break;
		}
		ssize_t got = read(pipefd[0], out + len, SYSTEMCTL_OUTPUT_MAX - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	close(pipefd[0]);
	if (late || !out)
		kill(-pid, SIGKILL); /* the group of our own child, which has not finished */
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!out || late || !WIFEXITED(status) || WEXITSTATUS(status)) {
		snprintf(list_why, sizeof(list_why), "systemctl list-sockets %s",
		         !out   ? "ran out of memory"
		         : late ? "did not answer within 5 s"
		                : "failed (is systemd running?)");
		free(out);
		return;
	}
	out[len] = 0;
	list = out;
}

/* Copies the next white-space separated word of *p into buf (empty at the line's end). */
static void next_word(const char **p, char *buf, size_t len)
{
	*p += strspn(*p, " \t");
	size_t n = strcspn(*p, " \t\n");
	snprintf(buf, len, "%.*s", (int)n, *p);
	*p += n;
}

/* Appends the services named on the rest of a line to s->activates. */
static void add_services(struct systemd_socket *s, const char *p)
{
	char word[256];
	for (next_word(&p, word, sizeof(word)); word[0]; next_word(&p, word, sizeof(word))) {
		word[strcspn(word, ",")] = 0;
		if (!word[0] || !strcmp(word, "-"))
			continue;
		size_t used = strlen(s->activates);
		snprintf(s->activates + used, sizeof(s->activates) - used, "%s%s", used ? ", " : "", word);
	}
}

/* Fills s from the line at p (past LISTEN and UNIT) and the lines under it that name
 * more services. */
static void take_line(struct systemd_socket *s, const char *unit, const char *p)
{
	snprintf(s->unit, sizeof(s->unit), "%s", unit);
	add_services(s, p);
	for (const char *more = strchr(p, '\n'); more && (more[1] == ' ' || more[1] == '\t');
	     more = strchr(more + 1, '\n')) {
		const char *q = more + 1;
		char word[256];
		next_word(&q, word, sizeof(word));
		if (strstr(word, ".socket") || strchr(word, ':') || strchr(word, '/'))
			break;
		add_services(s, more + 1);
	}
}

/* Finds want ("[::]:80") in text, or else the one unit listening on its port (":80") on
 * other addresses. 0 or -1. */
static int systemd_socket_parse(const char *text, const char *want, struct systemd_socket *s)
{
	const char *port = strrchr(want, ':');
	struct systemd_socket by_port;
	bool several = false;
	memset(s, 0, sizeof(*s));
	memset(&by_port, 0, sizeof(by_port));
	for (const char *line = text; line && *line;
	     line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *p = line;
		char listen[128], unit[256];
		next_word(&p, listen, sizeof(listen));
		next_word(&p, unit, sizeof(unit));
		size_t ul = strlen(unit), ll = strlen(listen), pl = strlen(port);
		if (ul < 8 || strcmp(unit + ul - 7, ".socket") || ll < pl || strcmp(listen + ll - pl, port))
			continue;
		if (!strcmp(listen, want)) {
			take_line(s, unit, p);
			return 0;
		}
		if (!by_port.unit[0])
			take_line(&by_port, unit, p);
		else if (strcmp(by_port.unit, unit))
			several = true;
	}
	if (!by_port.unit[0] || several)
		return -1;
	*s = by_port;
	return 0;
}

int systemd_socket_find(const struct ps_addr *a, struct systemd_socket *s, char *why, size_t whylen)
{
	char want[PS_ADDR_TEXT_MAX];
	addr_format(a, want, sizeof(want));
	if (!list && !list_why[0])
		systemctl_list_sockets();
	if (!list) {
		snprintf(why, whylen, "%s", list_why);
		return -1;
	}
	if (systemd_socket_parse(list, want, s) < 0) {
		snprintf(why, whylen, "systemctl list-sockets names no single unit for %s", want);
		return -1;
	}
	return 0;
}
