/* fuzz_log_record.c: libFuzzer target for what the daemon reads from a session page's
 * access-log ring (log_record_read, src/common/log_record.c: the application can write
 * anything there) and for the lines it makes of it (log_line_format). The input is the
 * ring's bytes, placed so that they may wrap at its end; every record read is checked
 * against its bounds, and every line formatted from it must be one line of printable
 * ASCII with exactly three quoted fields: no request can end a field or a line.
 *
 * Input: 4 control bytes (where the bytes start in the ring, low bits; a pid), then the
 * ring's bytes from there on. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log_record.h"

#include "fuzz_check.h"

static void check_line(const char *line, size_t n)
{
	FUZZ_CHECK(n > 0 && n <= LOG_LINE_MAX);
	FUZZ_CHECK(line[n - 1] == '\n');
	size_t quotes = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		FUZZ_CHECK(ch >= 0x20 && ch < 0x7f);
		if (ch == '"')
			quotes++;
		if (ch == '\\') /* only as \xHH */
			FUZZ_CHECK(i + 3 < n && line[i + 1] == 'x');
	}
	FUZZ_CHECK(quotes == 6);
}

/* A JSON line (AccessLogFormat json): one object, printable ASCII, a backslash only as
 * an escape of a quote, a backslash or a byte (u00XX), and the quotes of the 10 keys and
 * of the 5 or 6 string values (queue is null for the daemon's own answers) and no
 * other, whatever the record held. */
static void check_json_line(const char *line, size_t n)
{
	FUZZ_CHECK(n > 2 && n <= LOG_LINE_MAX);
	FUZZ_CHECK(line[0] == '{' && line[n - 2] == '}' && line[n - 1] == '\n');
	size_t quotes = 0;
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char ch = (unsigned char)line[i];
		FUZZ_CHECK(ch >= 0x20 && ch < 0x7f);
		if (ch == '\\') {
			FUZZ_CHECK(i + 2 < n);
			char e = line[i + 1];
			FUZZ_CHECK(e == '"' || e == '\\' || (e == 'u' && i + 6 < n && line[i + 2] == '0' && line[i + 3] == '0'));
			i += e == 'u' ? 5 : 1;
		} else if (ch == '"') {
			quotes++;
		}
	}
	FUZZ_CHECK(quotes == 2 * 10 + 2 * 5 || quotes == 2 * 10 + 2 * 6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct shared_log *lg;
	static char strings[LOG_STRINGS_MAX];
	static char line[LOG_LINE_MAX];
	if (!lg && !(lg = calloc(1, sizeof(*lg))))
		abort();
	if (size < 4)
		return 0;
	uint32_t start = ((uint32_t)data[0] | (uint32_t)data[1] << 8) * 8 % SHARED_LOG_SIZE;
	/* near the end most of the time, so that records wrap */
	if (data[2] & 1)
		start = SHARED_LOG_SIZE - (start % 4096);
	start &= ~7u;
	pid_t pid = data[3];
	data += 4;
	size -= 4;
	if (size > SHARED_LOG_SIZE)
		size = SHARED_LOG_SIZE;
	for (size_t i = 0; i < size; i++)
		lg->data[(start + i) % SHARED_LOG_SIZE] = data[i];
	uint64_t tail = (uint64_t)SHARED_LOG_SIZE * 3 + start, head = tail + size;
	struct ps_addr remote = {.family = AF_INET6, .addr = {0x20, 0x01, 0x0d, 0xb8}};
	while (tail < head) {
		struct shared_log_record rec;
		int rc = log_record_read(lg, tail, head, &rec, strings);
		if (rc < 0)
			break;
		FUZZ_CHECK(rec.size >= 8 && rec.size % 8 == 0 && rec.size <= head - tail);
		FUZZ_CHECK((tail % SHARED_LOG_SIZE) + rec.size <= SHARED_LOG_SIZE);
		if (rc == 0) {
			FUZZ_CHECK(rec.size >= sizeof(rec));
			FUZZ_CHECK(sizeof(rec) + rec.request_len + rec.referer_len + rec.agent_len <=
			           rec.size);
			struct log_line l = {
			    .time_us = rec.time_us,
			    .duration_us = rec.duration_us,
			    .body_bytes = rec.body_bytes,
			    .status = rec.status,
			    .remote = rec.queue_id & 1 ? &rec.remote : &remote,
			    .strings = strings,
			    .request_len = rec.request_len,
			    .referer_len = rec.referer_len,
			    .agent_len = rec.agent_len,
			    .queue = rec.queue_id & 2 ? "queue-1" : NULL,
			    .pid = pid,
			};
			check_line(line, log_line_format(line, &l));
			check_json_line(line, log_line_format_json(line, &l));
		}
		tail += rec.size;
	}
	return 0;
}
