/* log_record.h: the access log's records as the daemon reads them from a session page's
 * ring (shared.h), and its lines as they are written (combined format, then queue, pid,
 * duration). No I/O, no daemon state: the fuzz target drives both. */
#ifndef PS_LOG_RECORD_H
#define PS_LOG_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "shared.h"

/* A clock in µs (CLOCK_REALTIME for a record's time, CLOCK_MONOTONIC for durations). */
static inline uint64_t log_clock_us(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A line at most: the fields' longest escaped forms (JSON's \u00XX: 6 bytes a byte) and
 * the rest */
#define LOG_LINE_MAX (6 * (SHARED_LOG_REQUEST_MAX + 2 * SHARED_LOG_FIELD_MAX) + 512)
/* Room for a record's strings */
#define LOG_STRINGS_MAX (SHARED_LOG_REQUEST_MAX + 2 * SHARED_LOG_FIELD_MAX)

/* The record at tail (head: the library's, both counting bytes for ever): its header
 * copied to rec and its strings to strings (LOG_STRINGS_MAX), each byte of the page read
 * once (the application can change the page under us). 0 a record, 1 a pad to the
 * ring's end (rec->size set), -1 malformed. */
int log_record_read(const struct shared_log *lg, uint64_t tail, uint64_t head, struct shared_log_record *rec,
                    char *strings);

struct log_line {
	uint64_t time_us, duration_us, body_bytes;
	unsigned status;
	const struct ps_addr *remote;
	const char *strings; /* the request line, Referer, User-Agent, back to back */
	uint16_t request_len, referer_len, agent_len;
	const char *queue; /* NULL or "": "-" */
	pid_t pid;         /* 0: "-" (the daemon answered) */
};

/* Formats l into buf (room for LOG_LINE_MAX): its length, the newline included. */
size_t log_line_format(char *buf, const struct log_line *l);
/* The same as one JSON object on a line (AccessLogFormat json): time (UTC, ISO 8601 with
 * µs), remote_addr, request, status, body_bytes, referer, user_agent (strings; "" when
 * absent), queue and pid (null for the daemon's own answers), duration_us. A byte
 * outside printable ASCII is written \u00XX, so each line is valid JSON whatever a client
 * sent. */
size_t log_line_format_json(char *buf, const struct log_line *l);

#endif
