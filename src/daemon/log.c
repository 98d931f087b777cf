/* log.c: the daemon's log on stderr: events with a level, and the error log (one line
 * per answer the daemon gives itself, with HTTP.sys's reason names). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "addr.h"

static _Atomic int threshold = LOG_INFO;

void log_level_set(enum log_level level)
{
	atomic_store_explicit(&threshold, level, memory_order_relaxed);
}

/* One line, written whole with one call (stderr is unbuffered: fprintf formats the
 * whole line before its single write). */
static void log_line(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const tags[] = {"error: ", "warning: ", "", "debug: "};
	if ((int)level > atomic_load_explicit(&threshold, memory_order_relaxed))
		return;
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "portshared: %s%s\n", tags[level], line);
}

#define LOG_FUNCTION(name, level)                                                                            \
	void name(const char *fmt, ...)                                                                      \
	{                                                                                                    \
		va_list ap;                                                                                  \
		va_start(ap, fmt);                                                                           \
		log_line(level, fmt, ap);                                                                    \
		va_end(ap);                                                                                  \
	}
LOG_FUNCTION(log_error, LOG_ERROR)
LOG_FUNCTION(log_warning, LOG_WARNING)
LOG_FUNCTION(log_info, LOG_INFO)
LOG_FUNCTION(log_debug, LOG_DEBUG)

void log_error_answer(const struct conn *c, int status, const char *reason)
{
	char remote[PS_ADDR_TEXT_MAX], local[PS_ADDR_TEXT_MAX];
	addr_format(&c->remote, remote, sizeof(remote));
	addr_format(&c->local, local, sizeof(local));
	if (status)
		log_info("error-log %s %s %d %s", remote, local, status, reason);
	else
		log_info("error-log %s %s - %s", remote, local, reason);
}
