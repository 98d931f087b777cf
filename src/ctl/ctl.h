/* ctl.h: what portsharectl's commands share: the session with the daemon, and sending
 * it a command. */
#ifndef PS_CTL_H
#define PS_CTL_H

#include <stdbool.h>
#include <stddef.h>

struct ctl {
	const char *socket_path;
	int fd;     /* the session, or -1 before ctl_open */
	bool quiet; /* ctl_open does not print why it failed (who: the daemon may be down) */
	unsigned seq;
};

/* Connects to the daemon and says HELLO. 0, or -1 after printing why (unless quiet). */
int ctl_open(struct ctl *c);
void ctl_close(struct ctl *c);

/* ctl_command's answer when the session itself fails (the daemon's own statuses are 0
 * and the negative PS_E* codes). */
#define CTL_FAILED 1

/* Sends a COMMAND of argc words (JSON output when json) and collects its output, a
 * malloc'd NUL-terminated text in *out (may be empty). Returns the daemon's status: 0, or
 * a negative PS_E* code with its reason in *out instead. CTL_FAILED (nothing in *out)
 * when the session fails, after printing why. */
int ctl_command(struct ctl *c, bool json, int argc, const char *const *argv, char **out);

/* STATUS: the status text (JSON when json) in *out, malloc'd. 0, or -1 after printing why. */
int ctl_status(struct ctl *c, bool json, char **out);
/* The daemon's metrics, in the Prometheus text format. 0 or -1 (reported). */
int ctl_metrics(struct ctl *c, char **out);

/* Prints "portsharectl: CMD: " and the message to stderr, returns 2: a usage error. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
