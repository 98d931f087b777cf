/* log.h: the daemon's log on stderr, one line per event, with a level: errors, warnings,
 * information (the default threshold) and debugging. Each line starts "portshared: "
 * followed by "error: ", "warning: " or "debug: " (information has no tag). */
#ifndef PS_DAEMON_LOG_H
#define PS_DAEMON_LOG_H

#include "conn-t.h"

enum log_level { LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/* Lines above this level are not written (default LOG_INFO). */
void log_level_set(enum log_level level);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The error log: one line per answer the daemon gives itself, with HTTP.sys's reason
 * names (Timer_HeaderWait, QueueFull, AppOffline, BadRequest, ...), at info level. */
void log_error_answer(const struct conn *c, int status, const char *reason);

#endif
