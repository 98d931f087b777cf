/* log_record.c: the access log's records read from a session page's ring, and its lines
 * formatted (see log_record.h). */
#include "log_record.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int log_record_read(const struct shared_log *lg, uint64_t tail, uint64_t head, struct shared_log_record *rec,
                    char *strings)
{
	size_t off = (size_t)(tail % SHARED_LOG_SIZE);
	uint32_t size;
	memcpy(&size, &lg->data[off], sizeof(size));
	if (size < 8 || size % 8 || size > SHARED_LOG_SIZE - off || size > head - tail)
		return -1;
	if (lg->data[off + 4] == SHARED_LOG_PAD) {
		rec->size = size;
		return off + size == SHARED_LOG_SIZE ? 1 : -1;
	}
	if (size < sizeof(*rec))
		return -1;
	memcpy(rec, &lg->data[off], sizeof(*rec));
	rec->size = size;
	size_t n = (size_t)rec->request_len + rec->referer_len + rec->agent_len;
	if (rec->request_len > SHARED_LOG_REQUEST_MAX || rec->referer_len > SHARED_LOG_FIELD_MAX ||
	    rec->agent_len > SHARED_LOG_FIELD_MAX || sizeof(*rec) + n > size || rec->kind > SHARED_LOG_END)
		return -1;
	memcpy(strings, &lg->data[off + sizeof(*rec)], n);
	return 0;
}

struct out {
	char *p, *end;
};

static void out_bytes(struct out *o, const char *s, size_t n)
{
	if ((size_t)(o->end - o->p) < n)
		n = (size_t)(o->end - o->p);
	memcpy(o->p, s, n);
	o->p += n;
}

static void out_str(struct out *o, const char *s)
{
	out_bytes(o, s, strlen(s));
}

static void out_u64(struct out *o, uint64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof(d), "%llu", (unsigned long long)v);
	out_bytes(o, d, (size_t)n);
}

/* A request's bytes inside quotes, as nginx escapes them: '"', '\' and bytes outside
 * printable ASCII as \xHH, so no client can end a field or a line. Empty: "-". */
static void out_quoted(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	out_bytes(o, "\"", 1);
	if (n == 0)
		out_bytes(o, "-", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
			if (o->p < o->end)
				*o->p++ = (char)ch;
		} else {
			char e[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
			out_bytes(o, e, 4);
		}
	}
	out_bytes(o, "\"", 1);
}

/* A JSON string of the bytes: '"', '\\' and bytes outside printable ASCII escaped
 * (\u00XX: a byte is read as the code point of the same number, as json_write_string
 * does), so the line is valid JSON and valid UTF-8 whatever the bytes were. */
static void out_json(struct out *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	out_bytes(o, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
			if (o->p < o->end)
				*o->p++ = (char)ch;
		} else if (ch == '"' || ch == '\\') {
			char e[2] = {'\\', (char)ch};
			out_bytes(o, e, 2);
		} else {
			char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
			out_bytes(o, e, 6);
		}
	}
	out_bytes(o, "\"", 1);
}

static void out_addr(struct out *o, const struct ps_addr *a)
{
	char text[INET6_ADDRSTRLEN];
	if ((a->family != AF_INET && a->family != AF_INET6) ||
	    !inet_ntop(a->family, a->addr, text, sizeof(text)))
		snprintf(text, sizeof(text), "-");
	out_str(o, text);
}

/* [10/Oct/2000:13:55:36 -0700]: local time, as combined has it; the text of the current
 * second is kept (per thread) */
static void out_time(struct out *o, uint64_t us)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	static _Thread_local time_t cached = -1;
	static _Thread_local char text[64];
	time_t t = (time_t)(us / 1000000u);
	if (t != cached) {
		struct tm tm;
		if (!localtime_r(&t, &tm)) { /* a time no calendar holds (a record can say any) */
			t = 0;
			gmtime_r(&t, &tm);
		}
		int off = (int)(tm.tm_gmtoff / 60) % (24 * 60);
		char sign = off < 0 ? '-' : '+';
		if (off < 0)
			off = -off;
		snprintf(text, sizeof(text), "[%02d/%s/%04d:%02d:%02d:%02d %c%02d%02d]", tm.tm_mday,
		         months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
		         off / 60, off % 60);
		cached = t;
	}
	out_str(o, text);
}

size_t log_line_format(char *buf, const struct log_line *l)
{
	struct out o = {buf, buf + LOG_LINE_MAX};
	out_addr(&o, l->remote);
	out_str(&o, " - - ");
	out_time(&o, l->time_us);
	out_bytes(&o, " ", 1);
	out_quoted(&o, l->strings, l->request_len);
	char status[8];
	snprintf(status, sizeof(status), " %03u ", l->status % 1000);
	out_str(&o, status);
	out_u64(&o, l->body_bytes);
	out_bytes(&o, " ", 1);
	out_quoted(&o, l->strings + l->request_len, l->referer_len);
	out_bytes(&o, " ", 1);
	out_quoted(&o, l->strings + l->request_len + l->referer_len, l->agent_len);
	out_bytes(&o, " ", 1);
	out_str(&o, l->queue && l->queue[0] ? l->queue : "-");
	out_bytes(&o, " ", 1);
	if (l->pid)
		out_u64(&o, (uint64_t)l->pid);
	else
		out_bytes(&o, "-", 1);
	out_bytes(&o, " ", 1);
	out_u64(&o, l->duration_us);
	out_bytes(&o, "\n", 1);
	return (size_t)(o.p - buf);
}

size_t log_line_format_json(char *buf, const struct log_line *l)
{
	struct out o = {buf, buf + LOG_LINE_MAX};
	time_t t = (time_t)(l->time_us / 1000000u);
	struct tm tm;
	if (!gmtime_r(&t, &tm)) { /* a time no calendar holds (a record can say any) */
		t = 0;
		gmtime_r(&t, &tm);
	}
	char text[96];
	snprintf(text, sizeof(text), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06uZ\",\"remote_addr\":\"",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (unsigned)(l->time_us % 1000000u));
	out_str(&o, text);
	out_addr(&o, l->remote);
	out_str(&o, "\",\"request\":");
	out_json(&o, l->strings, l->request_len);
	snprintf(text, sizeof(text), ",\"status\":%u,\"body_bytes\":", l->status % 1000);
	out_str(&o, text);
	out_u64(&o, l->body_bytes);
	out_str(&o, ",\"referer\":");
	out_json(&o, l->strings + l->request_len, l->referer_len);
	out_str(&o, ",\"user_agent\":");
	out_json(&o, l->strings + l->request_len + l->referer_len, l->agent_len);
	out_str(&o, ",\"queue\":");
	if (l->queue && l->queue[0])
		out_json(&o, l->queue, strlen(l->queue));
	else
		out_str(&o, "null");
	out_str(&o, ",\"pid\":");
	if (l->pid)
		out_u64(&o, (uint64_t)l->pid);
	else
		out_str(&o, "null");
	out_str(&o, ",\"duration_us\":");
	out_u64(&o, l->duration_us);
	out_str(&o, "}\n");
	return (size_t)(o.p - buf);
}
