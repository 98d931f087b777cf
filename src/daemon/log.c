/* log.c: the daemon's log on stderr: events with a level, and the error log (one line
 * per answer the daemon gives itself, with HTTP.sys's reason names). */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

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

/* The error log's flood limit: at most this many lines a second (every thread together);
 * the rest are counted and said in one line when the next second's first one is written. */
#define ERROR_LOG_PER_SECOND 100

static _Atomic int64_t window;  /* the second of the current window (CLOCK_MONOTONIC) */
static _Atomic uint32_t written, suppressed;

/* Whether this answer's line may be written now. */
static bool log_error_answer_allowed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	int64_t now = ts.tv_sec, w = atomic_load_explicit(&window, memory_order_relaxed);
	if (now != w && atomic_compare_exchange_strong(&window, &w, now)) {
		uint32_t missed = atomic_exchange(&suppressed, 0);
		atomic_store(&written, 0);
		if (missed)
			log_info("error-log: %u more answers in the last %lld s not logged (at most %d lines a second)",
			         missed, (long long)(now - w), ERROR_LOG_PER_SECOND);
	}
	if (atomic_fetch_add(&written, 1) < ERROR_LOG_PER_SECOND)
		return true;
	atomic_fetch_add(&suppressed, 1);
	return false;
}

void log_error_answer(const struct conn *c, int status, const char *reason)
{
	if (LOG_INFO > atomic_load_explicit(&threshold, memory_order_relaxed) || !log_error_answer_allowed())
		return;
	char remote[PS_ADDR_TEXT_MAX], local[PS_ADDR_TEXT_MAX];
	addr_format(&c->remote, remote, sizeof(remote));
	addr_format(&c->local, local, sizeof(local));
	if (status)
		log_info("error-log %s %s %d %s", remote, local, status, reason);
	else
		log_info("error-log %s %s - %s", remote, local, reason);
}
