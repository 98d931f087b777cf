/* protocol.c: encodes and decodes the control messages of protocol.h, checking every
 * length and field exactly. */
#include <sys/socket.h>

#include <stdbool.h>
#include <string.h>

#include "portshare.h"
#include "protocol.h"

#define RECEIVE_COUNT_MAX 1024

/* Header flags each type may carry; the per-type structs hold their own flags. */
static uint16_t hdr_flags_allowed(unsigned type)
{
	switch (type) {
	case PS_MSG_STATUS:
		return PS_STATUS_JSON | PS_STATUS_METRICS;
	case PS_MSG_COMMAND:
		return PS_STATUS_JSON;
	case PS_MSG_STATUS_DATA:
		return PS_STATUS_MORE;
	case PS_MSG_HELLO:
		return PS_HELLO_DELEGATE | PS_HELLO_TAKEOVER | PS_HELLO_TLS;
	default:
		return 0;
	}
}

/* Size of the fixed part after the header, or 0 for an unknown type. */
static size_t fixed_size(unsigned type)
{
	switch (type) {
	case PS_MSG_HELLO:
		return sizeof(struct ps_hello);
	case PS_MSG_REPLY:
		return sizeof(struct ps_reply);
	case PS_MSG_QUEUE_CREATE:
		return sizeof(struct ps_queue_create);
	case PS_MSG_QUEUE_OPEN:
	case PS_MSG_QUEUE_DELETE:
	case PS_MSG_QUEUE_DRAIN:
		return sizeof(struct ps_queue_ref);
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL:
		return sizeof(struct ps_url);
	case PS_MSG_RECEIVE:
		return sizeof(struct ps_receive);
	case PS_MSG_DEMAND_WAIT:
	case PS_MSG_DEMAND:
		return sizeof(struct ps_demand);
	case PS_MSG_DELIVER:
		return sizeof(struct ps_deliver);
	case PS_MSG_NOFD:
	case PS_MSG_CONN_CLOSED:
		return sizeof(struct ps_conn_ref);
	case PS_MSG_RETURN:
		return sizeof(struct ps_return);
	case PS_MSG_RETURN_TLS:
		return sizeof(struct ps_return_tls);
	case PS_MSG_END:
		return sizeof(struct ps_end);
	case PS_MSG_SHM:
		return sizeof(struct ps_shm);
	case PS_MSG_LIMITS:
		return sizeof(struct ps_limits);
	case PS_MSG_TAKEOVER:
	case PS_MSG_TAKEOVER_READY:
	case PS_MSG_REATTACH:
		return sizeof(struct ps_takeover);
	case PS_MSG_TAKEOVER_SOCKET:
		return sizeof(struct ps_takeover_socket);
	case PS_MSG_TAKEOVER_QUEUE:
		return sizeof(struct ps_takeover_queue);
	case PS_MSG_TAKEOVER_URL:
		return sizeof(struct ps_url);
	case PS_MSG_CONN_HANDOVER:
		return sizeof(struct ps_conn_handover);
	case PS_MSG_CONN_HANDOVER_TLS:
		return sizeof(struct ps_conn_handover_tls);
	case PS_MSG_COMMAND:
		return sizeof(struct ps_command);
	case PS_MSG_LOG_DRAIN:
		return sizeof(struct ps_log_drain);
	default:
		return 0;
	}
}

static const char *const type_names[PS_MSG_TYPE_END] = {
    [PS_MSG_HELLO] = "HELLO",
    [PS_MSG_REPLY] = "REPLY",
    [PS_MSG_QUEUE_CREATE] = "QUEUE_CREATE",
    [PS_MSG_QUEUE_OPEN] = "QUEUE_OPEN",
    [PS_MSG_QUEUE_DELETE] = "QUEUE_DELETE",
    [PS_MSG_QUEUE_DRAIN] = "QUEUE_DRAIN",
    [PS_MSG_URL_ADD] = "URL_ADD",
    [PS_MSG_URL_DEL] = "URL_DEL",
    [PS_MSG_RECEIVE] = "RECEIVE",
    [PS_MSG_DELIVER] = "DELIVER",
    [PS_MSG_NOFD] = "NOFD",
    [PS_MSG_RETURN] = "RETURN",
    [PS_MSG_RETURN_TLS] = "RETURN_TLS",
    [PS_MSG_END] = "END",
    [PS_MSG_CONN_CLOSED] = "CONN_CLOSED",
    [PS_MSG_STATUS] = "STATUS",
    [PS_MSG_STATUS_DATA] = "STATUS_DATA",
    [PS_MSG_SHM] = "SHM",
    [PS_MSG_LIMITS] = "LIMITS",
    [PS_MSG_TAKEOVER] = "TAKEOVER",
    [PS_MSG_TAKEOVER_SOCKET] = "TAKEOVER_SOCKET",
    [PS_MSG_TAKEOVER_QUEUE] = "TAKEOVER_QUEUE",
    [PS_MSG_TAKEOVER_URL] = "TAKEOVER_URL",
    [PS_MSG_TAKEOVER_READY] = "TAKEOVER_READY",
    [PS_MSG_REATTACH] = "REATTACH",
    [PS_MSG_CONN_HANDOVER] = "CONN_HANDOVER",
    [PS_MSG_CONN_HANDOVER_TLS] = "CONN_HANDOVER_TLS",
    [PS_MSG_COMMAND] = "COMMAND",
    [PS_MSG_LOG_DRAIN] = "LOG_DRAIN",
    [PS_MSG_DEMAND_WAIT] = "DEMAND_WAIT",
    [PS_MSG_DEMAND] = "DEMAND",
};

const char *protocol_type_name(unsigned type)
{
	if (type < PS_MSG_TYPE_END && type_names[type] != NULL)
		return type_names[type];
	return "UNKNOWN";
}

bool protocol_carries_fd(const struct ps_msg *m)
{
	switch (m->hdr.type) {
	case PS_MSG_SHM:
	case PS_MSG_TAKEOVER_SOCKET:
	case PS_MSG_CONN_HANDOVER:
	case PS_MSG_CONN_HANDOVER_TLS:
		return true;
	case PS_MSG_DELIVER:
		return m->u.deliver.flags & PS_DELIVER_FD;
	default:
		return false;
	}
}

bool protocol_has_feature(const char *text, size_t len, const char *feature)
{
	size_t flen = strlen(feature);
	for (size_t i = 0; i < len;) {
		size_t n = 0;
		while (i + n < len && text[i + n] != ' ')
			n++;
		if (n == flen && memcmp(text + i, feature, flen) == 0)
			return true;
		i += n + 1;
	}
	return false;
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t k = 0; k < n; k++)
		if (c[k] != 0)
			return false;
	return true;
}

/* A NUL inside the array, so a receiver can use it as a C string, and only NULs after
 * it, as copy_string() writes it. */
static bool string_padded(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	return n < cap && all_zero(s + n, cap - n);
}

/* QUEUE_CREATE's padding after the name (4 bytes where uint64_t is 8-aligned). */
#define CREATE_PAD_OFF (offsetof(struct ps_queue_create, name) + PS_QUEUE_NAME_MAX + 1)
#define CREATE_PAD_LEN (sizeof(struct ps_queue_create) - CREATE_PAD_OFF)

/* Queue names end up in logs, status output and ACL files: keep them plain. */
bool protocol_queue_name_ok(const char *name)
{
	if (!*name || strlen(name) > PS_QUEUE_NAME_MAX)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static bool queue_name_valid(const char *name)
{
	return string_padded(name, PS_QUEUE_NAME_MAX + 1) && protocol_queue_name_ok(name);
}

static bool addr_valid(const struct ps_addr *a)
{
	return a->family == AF_INET || a->family == AF_INET6;
}

/* Checks the fixed part of a decoded message and sets the lengths of its variable
 * parts (in wire order); the caller checks that they add up exactly.
 * A fixed part is taken only as the encoder writes it, so that whatever is accepted
 * encodes back to the very same bytes: what the encoder zeroes (a string's bytes after
 * its NUL, reserved fields, padding) must arrive as zero. Otherwise two peers could read
 * one message differently, and a field reserved today could not be given a meaning. */
static const char *check_fixed(struct ps_msg *m, uint32_t parts[5], size_t *nparts)
{
	*nparts = 0;
	switch (m->hdr.type) {
	case PS_MSG_HELLO:
		if (!string_padded(m->u.hello.program, sizeof(m->u.hello.program)))
			return "HELLO program not terminated, or bytes after its NUL";
		return NULL;
	case PS_MSG_REPLY:
		if (m->u.reply.text_len > PS_TEXT_MAX)
			return "REPLY text too long";
		if (m->u.reply.reserved)
			return "REPLY reserved field not zero";
		parts[(*nparts)++] = m->u.reply.text_len;
		return NULL;
	case PS_MSG_QUEUE_CREATE:
		if (!queue_name_valid(m->u.create.name))
			return "QUEUE_CREATE bad queue name";
		if (m->u.create.opt_flags & ~PS_QUEUE_PERSISTENT)
			return "QUEUE_CREATE unknown option flags";
		if (!all_zero((const char *)&m->u.create + CREATE_PAD_OFF, CREATE_PAD_LEN))
			return "QUEUE_CREATE padding not zero";
		return NULL;
	case PS_MSG_QUEUE_OPEN:
		if (!queue_name_valid(m->u.queue.name))
			return "QUEUE_OPEN bad queue name";
		return NULL;
	case PS_MSG_QUEUE_DELETE:
	case PS_MSG_QUEUE_DRAIN:
		/* these name the queue by id; the name is only for logs */
		if (!string_padded(m->u.queue.name, sizeof(m->u.queue.name)))
			return "queue name not terminated, or bytes after its NUL";
		return NULL;
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL:
	case PS_MSG_TAKEOVER_URL:
		if (m->u.url.prefix_len == 0 || m->u.url.prefix_len > PS_PREFIX_MAX)
			return "URL prefix length out of range";
		parts[(*nparts)++] = m->u.url.prefix_len;
		return NULL;
	case PS_MSG_COMMAND:
		if (m->u.command.args_len == 0 || m->u.command.args_len > PS_COMMAND_MAX)
			return "COMMAND length out of range";
		if (m->u.command.reserved)
			return "COMMAND reserved field not zero";
		parts[(*nparts)++] = m->u.command.args_len;
		return NULL;
	case PS_MSG_RECEIVE:
		if (m->u.receive.count == 0 || m->u.receive.count > RECEIVE_COUNT_MAX)
			return "RECEIVE count out of range";
		return NULL;
	case PS_MSG_DEMAND_WAIT:
		return m->u.demand.status ? "DEMAND_WAIT status not zero" : NULL;
	case PS_MSG_DEMAND:
		if (m->u.demand.status != 0 && m->u.demand.status != PS_ENOTFOUND)
			return "DEMAND status neither 0 nor PS_ENOTFOUND";
		return NULL;
	case PS_MSG_DELIVER: {
		const struct ps_deliver *d = &m->u.deliver;
		if (d->flags & ~(PS_DELIVER_FD | PS_DELIVER_DELEGATE | PS_DELIVER_TLS))
			return "DELIVER unknown flags";
		if (d->head_len == 0)
			return "DELIVER without a head";
		if (!(d->flags & PS_DELIVER_TLS) != !d->tls_len)
			return "DELIVER TLS part and flag disagree";
		if (d->reserved)
			return "DELIVER reserved field not zero";
		if (!addr_valid(&d->local) || !addr_valid(&d->remote))
			return "DELIVER bad address family";
		parts[0] = d->head_len;
		parts[1] = d->path_len;
		parts[2] = d->host_len;
		parts[3] = d->tail_len;
		parts[4] = d->tls_len;
		*nparts = 5;
		return NULL;
	}
	case PS_MSG_NOFD:
	case PS_MSG_CONN_CLOSED:
		return NULL;
	case PS_MSG_LOG_DRAIN:
		return m->u.log_drain.reserved[0] || m->u.log_drain.reserved[1]
		           ? "LOG_DRAIN reserved field not zero"
		           : NULL;
	case PS_MSG_RETURN:
		if (m->u.ret.flags & ~PS_RETURN_EOF)
			return "RETURN unknown flags";
		parts[(*nparts)++] = m->u.ret.tail_len;
		return NULL;
	case PS_MSG_RETURN_TLS:
		if (m->u.ret_tls.flags & ~PS_RETURN_EOF)
			return "RETURN_TLS unknown flags";
		if (m->u.ret_tls.reserved)
			return "RETURN_TLS reserved field not zero";
		if (m->u.ret_tls.tls_len == 0)
			return "RETURN_TLS without its TLS part";
		parts[(*nparts)++] = m->u.ret_tls.tail_len;
		parts[(*nparts)++] = m->u.ret_tls.tls_len;
		return NULL;
	case PS_MSG_END:
		if (m->u.end.flags & ~(PS_END_SHUTDOWN | PS_END_ABORT | PS_END_UPGRADED))
			return "END unknown flags";
		if (m->u.end.reserved)
			return "END reserved field not zero";
		return NULL;
	case PS_MSG_STATUS:
		return NULL;
	case PS_MSG_SHM:
		if (m->u.shm.kind != PS_SHM_SESSION_PAGE && m->u.shm.kind != PS_SHM_ROUTES)
			return "SHM unknown kind";
		if (m->u.shm.size == 0 || m->u.shm.size > PS_SHM_SIZE_MAX)
			return "SHM size out of range";
		return NULL;
	case PS_MSG_LIMITS:
		if (!m->u.limits.entity_body_ms || !m->u.limits.drain_entity_body_ms ||
		    !m->u.limits.min_send_rate)
			return "LIMITS with a zero limit";
		if (m->u.limits.reserved)
			return "LIMITS reserved field not zero";
		return NULL;
	case PS_MSG_TAKEOVER:
	case PS_MSG_TAKEOVER_READY:
	case PS_MSG_REATTACH:
		return m->u.takeover.reserved ? "TAKEOVER message reserved field not zero" : NULL;
	case PS_MSG_TAKEOVER_SOCKET:
		if (m->u.usock.reserved)
			return "TAKEOVER_SOCKET reserved field not zero";
		if (m->u.usock.kind == PS_TAKEOVER_SOCKET_TCP)
			return addr_valid(&m->u.usock.addr) ? NULL : "TAKEOVER_SOCKET bad address family";
		if (m->u.usock.kind != PS_TAKEOVER_SOCKET_CONTROL &&
		    m->u.usock.kind != PS_TAKEOVER_SOCKET_LOCK)
			return "TAKEOVER_SOCKET unknown kind";
		return NULL;
	case PS_MSG_TAKEOVER_QUEUE:
		if (!queue_name_valid(m->u.uqueue.name))
			return "TAKEOVER_QUEUE bad queue name";
		if (m->u.uqueue.opt_flags & ~PS_QUEUE_PERSISTENT)
			return "TAKEOVER_QUEUE unknown option flags";
		if (m->u.uqueue.reserved)
			return "TAKEOVER_QUEUE reserved field not zero";
		if (!string_padded(m->u.uqueue.creator_user, sizeof(m->u.uqueue.creator_user)))
			return "TAKEOVER_QUEUE user name not terminated, or bytes after its NUL";
		return NULL;
	case PS_MSG_CONN_HANDOVER:
		if (m->u.handover.flags & ~PS_HANDOVER_EOF)
			return "CONN_HANDOVER unknown flags";
		if (!addr_valid(&m->u.handover.local) || !addr_valid(&m->u.handover.remote))
			return "CONN_HANDOVER bad address family";
		if (m->u.handover.bytes_len > PS_HANDOVER_BYTES_MAX)
			return "CONN_HANDOVER too many bytes";
		parts[(*nparts)++] = m->u.handover.bytes_len;
		return NULL;
	case PS_MSG_CONN_HANDOVER_TLS:
		if (m->u.handover_tls.flags & ~PS_HANDOVER_EOF)
			return "CONN_HANDOVER_TLS unknown flags";
		if (!addr_valid(&m->u.handover_tls.local) || !addr_valid(&m->u.handover_tls.remote))
			return "CONN_HANDOVER_TLS bad address family";
		if (m->u.handover_tls.bytes_len > PS_HANDOVER_BYTES_MAX)
			return "CONN_HANDOVER_TLS too many bytes";
		if (m->u.handover_tls.reserved)
			return "CONN_HANDOVER_TLS reserved field not zero";
		if (m->u.handover_tls.tls_len == 0)
			return "CONN_HANDOVER_TLS without its TLS part";
		parts[(*nparts)++] = m->u.handover_tls.bytes_len;
		parts[(*nparts)++] = m->u.handover_tls.tls_len;
		return NULL;
	default:
		return "unknown message type";
	}
}

/* The TLS part of DELIVER and RETURN_TLS: a struct ps_tls with a state the record layer
 * accepts, then exactly raw_len bytes of ciphertext. */
static int tls_part_decode(const char *p, uint32_t len, struct ps_msg *m, const char **why)
{
	const char *bad;
	if (len < sizeof(m->tls)) {
		*why = "TLS part shorter than its fixed part";
		return -1;
	}
	memcpy(&m->tls, p, sizeof(m->tls));
	if (m->tls.reserved || m->tls.raw_len > PS_TLS_RAW_MAX || m->tls.raw_len != len - sizeof(m->tls)) {
		*why = "TLS part: raw length wrong, or reserved field not zero";
		return -1;
	}
	if (tls_record_state_check(&m->tls.state, &bad) < 0) {
		*why = "TLS part: record state not usable";
		return -1;
	}
	if (!string_padded(m->tls.server_name, sizeof(m->tls.server_name))) {
		*why = "TLS part: server name not terminated, or bytes after its NUL";
		return -1;
	}
	m->tls_raw = (const uint8_t *)p + sizeof(m->tls);
	return 0;
}

int protocol_decode(const void *buf, size_t len, struct ps_msg *m, const char **why)
{
	const char *b = buf;
	uint32_t parts[5];
	size_t nparts;

	memset(m, 0, sizeof(*m));
	if (len < sizeof(m->hdr)) {
		*why = "message shorter than its header";
		return -1;
	}
	if (len > PS_MSG_MAX) {
		*why = "message too long";
		return -1;
	}
	/* the receive buffer may be unaligned: copy out, never cast */
	memcpy(&m->hdr, b, sizeof(m->hdr));
	if (m->hdr.len != len) {
		*why = "header length differs from the message length";
		return -1;
	}
	if (m->hdr.type == 0 || m->hdr.type >= PS_MSG_TYPE_END) {
		*why = "unknown message type";
		return -1;
	}
	if (m->hdr.flags & ~hdr_flags_allowed(m->hdr.type)) {
		*why = "unknown header flags";
		return -1;
	}
	if (m->hdr.reserved) {
		*why = "header reserved field not zero";
		return -1;
	}
	size_t off = sizeof(m->hdr);
	if (m->hdr.type == PS_MSG_STATUS_DATA) {
		m->text = b + off;
		m->text_len = len - off;
		return 0;
	}
	size_t fixed = fixed_size(m->hdr.type);
	if (len - off < fixed) {
		*why = "message shorter than its fixed part";
		return -1;
	}
	memcpy(&m->u, b + off, fixed); /* the union member starts at &m->u */
	off += fixed;
	*why = check_fixed(m, parts, &nparts);
	if (*why != NULL)
		return -1;
	uint64_t total = off;
	for (size_t k = 0; k < nparts; k++)
		total += parts[k];
	if (total != len) {
		*why = "part lengths do not add up to the message length";
		return -1;
	}
	const char **dest[4] = {&m->head, &m->path, &m->host, &m->tail};
	switch (m->hdr.type) {
	case PS_MSG_REPLY:
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL:
	case PS_MSG_TAKEOVER_URL:
		m->text = b + off;
		m->text_len = parts[0];
		break;
	case PS_MSG_COMMAND: {
		m->text = b + off;
		m->text_len = parts[0];
		size_t words = 0;
		for (size_t k = 0; k < m->text_len; k++)
			words += m->text[k] == '\0';
		if (m->text[m->text_len - 1] != '\0' || words > PS_COMMAND_WORDS) {
			*why = "COMMAND words not NUL-terminated, or too many";
			return -1;
		}
		break;
	}
	case PS_MSG_DELIVER:
		for (size_t k = 0; k < 4; k++) {
			*dest[k] = b + off;
			off += parts[k];
		}
		if (parts[4] && tls_part_decode(b + off, parts[4], m, why) < 0)
			return -1;
		break;
	case PS_MSG_RETURN:
	case PS_MSG_CONN_HANDOVER:
		m->tail = b + off;
		break;
	case PS_MSG_RETURN_TLS:
	case PS_MSG_CONN_HANDOVER_TLS:
		m->tail = b + off;
		if (tls_part_decode(b + off + parts[0], parts[1], m, why) < 0)
			return -1;
		break;
	default:
		break;
	}
	return 0;
}

/* Zeroes what follows the NUL so no stale bytes of the sender's memory go out (and the
 * decoder refuses anything else there: string_padded). */
static void copy_string(char *dst, const char *src, size_t cap)
{
	size_t n = strnlen(src, cap);

	memset(dst, 0, cap);
	memcpy(dst, src, n);
}

/* The TLS part of w (the wire copy of m) as its next two variable parts: struct ps_tls,
 * normalised, then its raw bytes. Returns the part's length (the tls_len field). */
static uint32_t tls_part_encode(struct ps_msg *w, const struct ps_msg *m, const char **parts, size_t *lens,
                                size_t *nparts)
{
	w->tls.reserved = 0;
	copy_string(w->tls.server_name, m->tls.server_name, sizeof(w->tls.server_name));
	parts[*nparts] = (const char *)&w->tls;
	lens[(*nparts)++] = sizeof(w->tls);
	parts[*nparts] = (const char *)w->tls_raw;
	lens[(*nparts)++] = w->tls.raw_len;
	return (uint32_t)(sizeof(w->tls) + w->tls.raw_len);
}

ssize_t protocol_encode(const struct ps_msg *m, void *buf, size_t cap)
{
	struct ps_msg w = *m; /* the wire copy: lengths and strings normalised here */
	const char *parts[6];
	size_t lens[6], nparts = 0;
	size_t fixed = fixed_size(w.hdr.type);

	switch (w.hdr.type) {
	case PS_MSG_HELLO:
		copy_string(w.u.hello.program, m->u.hello.program, sizeof(w.u.hello.program));
		break;
	case PS_MSG_QUEUE_CREATE:
		/* the only fixed part with padding: build it from zero, field by field */
		memset(&w.u, 0, sizeof(w.u));
		w.u.create.opt_flags = m->u.create.opt_flags;
		w.u.create.max_length = m->u.create.max_length;
		w.u.create.max_body = m->u.create.max_body;
		w.u.create.response_wait_ms = m->u.create.response_wait_ms;
		copy_string(w.u.create.name, m->u.create.name, sizeof(w.u.create.name));
		/* once more after the member stores, which may leave padding unspecified (C17 6.2.6.1) */
		memset((char *)&w.u.create + CREATE_PAD_OFF, 0, CREATE_PAD_LEN);
		break;
	case PS_MSG_QUEUE_OPEN:
	case PS_MSG_QUEUE_DELETE:
	case PS_MSG_QUEUE_DRAIN:
		copy_string(w.u.queue.name, m->u.queue.name, sizeof(w.u.queue.name));
		break;
	case PS_MSG_TAKEOVER_QUEUE:
		/* padding-free, but built from zero like QUEUE_CREATE: no stale bytes go out */
		memset(&w.u, 0, sizeof(w.u));
		w.u.uqueue = m->u.uqueue;
		w.u.uqueue.reserved = 0;
		copy_string(w.u.uqueue.name, m->u.uqueue.name, sizeof(w.u.uqueue.name));
		copy_string(w.u.uqueue.creator_user, m->u.uqueue.creator_user,
		            sizeof(w.u.uqueue.creator_user));
		break;
	case PS_MSG_TAKEOVER:
	case PS_MSG_TAKEOVER_READY:
	case PS_MSG_REATTACH:
		w.u.takeover.reserved = 0;
		break;
	case PS_MSG_TAKEOVER_SOCKET:
		w.u.usock.reserved = 0;
		break;
	case PS_MSG_LOG_DRAIN:
		memset(&w.u.log_drain, 0, sizeof(w.u.log_drain));
		break;
	case PS_MSG_CONN_HANDOVER:
		parts[nparts] = w.tail;
		lens[nparts++] = w.u.handover.bytes_len;
		break;
	case PS_MSG_REPLY:
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL:
	case PS_MSG_TAKEOVER_URL: {
		/* the text goes by m->text_len; a length also set in the struct must agree */
		uint32_t *field = w.hdr.type == PS_MSG_REPLY ? &w.u.reply.text_len : &w.u.url.prefix_len;
		if (w.text_len > PS_MSG_MAX || (*field != 0 && *field != w.text_len))
			return -1;
		*field = (uint32_t)w.text_len;
		if (w.hdr.type == PS_MSG_REPLY)
			w.u.reply.reserved = 0;
		parts[nparts] = w.text;
		lens[nparts++] = w.text_len;
		break;
	}
	case PS_MSG_DELIVER:
		w.u.deliver.reserved = 0;
		parts[0] = w.head;
		lens[0] = w.u.deliver.head_len;
		parts[1] = w.path;
		lens[1] = w.u.deliver.path_len;
		parts[2] = w.host;
		lens[2] = w.u.deliver.host_len;
		parts[3] = w.tail;
		lens[3] = w.u.deliver.tail_len;
		nparts = 4;
		w.u.deliver.tls_len =
		    w.u.deliver.flags & PS_DELIVER_TLS ? tls_part_encode(&w, m, parts, lens, &nparts) : 0;
		break;
	case PS_MSG_RETURN:
		parts[nparts] = w.tail;
		lens[nparts++] = w.u.ret.tail_len;
		break;
	case PS_MSG_CONN_HANDOVER_TLS:
		w.u.handover_tls.reserved = 0;
		parts[nparts] = w.tail;
		lens[nparts++] = w.u.handover_tls.bytes_len;
		w.u.handover_tls.tls_len = tls_part_encode(&w, m, parts, lens, &nparts);
		break;
	case PS_MSG_RETURN_TLS:
		w.u.ret_tls.reserved = 0;
		parts[nparts] = w.tail;
		lens[nparts++] = w.u.ret_tls.tail_len;
		w.u.ret_tls.tls_len = tls_part_encode(&w, m, parts, lens, &nparts);
		break;
	case PS_MSG_END:
		w.u.end.reserved = 0;
		break;
	case PS_MSG_LIMITS:
		w.u.limits.reserved = 0;
		break;
	case PS_MSG_STATUS_DATA:
		parts[nparts] = w.text;
		lens[nparts++] = w.text_len;
		break;
	case PS_MSG_COMMAND:
		if (w.text_len > PS_COMMAND_MAX)
			return -1;
		w.u.command.args_len = (uint32_t)w.text_len;
		w.u.command.reserved = 0;
		parts[nparts] = w.text;
		lens[nparts++] = w.text_len;
		break;
	default:
		break;
	}
	size_t total = sizeof(w.hdr) + fixed;
	for (size_t k = 0; k < nparts; k++) {
		if (lens[k] > PS_MSG_MAX || (lens[k] != 0 && parts[k] == NULL))
			return -1;
		total += lens[k];
	}
	if (total > PS_MSG_MAX || total > cap)
		return -1;
	w.hdr.len = (uint32_t)total;
	w.hdr.reserved = 0;

	char *out = buf;
	memcpy(out, &w.hdr, sizeof(w.hdr));
	memcpy(out + sizeof(w.hdr), &w.u, fixed);
	size_t off = sizeof(w.hdr) + fixed;
	for (size_t k = 0; k < nparts; k++) {
		if (lens[k] != 0)
			memcpy(out + off, parts[k], lens[k]);
		off += lens[k];
	}
	/* One set of rules: what the decoder would refuse is never sent. */
	struct ps_msg check;
	const char *why;
	if (protocol_decode(buf, total, &check, &why) != 0)
		return -1;
	return (ssize_t)total;
}
