/* fuzz_protocol.c: libFuzzer target for what a peer sends on the control socket, as the
 * daemon and the library decode it: protocol_decode for every message type, the URL
 * prefix of URL_ADD/URL_DEL (url_prefix_parse, then route_add as queue.c does), and the
 * route snapshot a library maps (snapshot_read, for an input that starts with its
 * magic). A decoded message is encoded again and must come back as the same bytes.
 *
 * Input: one message exactly as received (one SEQPACKET packet), or a snapshot file. */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "protocol.h"
#include "route.h"
#include "shared.h"
#include "url_prefix.h"

#include "fuzz_check.h"

static bool part_inside(const char *p, size_t n, const uint8_t *buf, size_t len)
{
	const char *b = (const char *)buf;
	return p != NULL && p >= b && p <= b + len && n <= (size_t)(b + len - p);
}

/* A TLS part at p, tls_len bytes, ending the message: a state the record layer takes, then
 * the raw bytes. */
static void check_tls_part(const struct ps_msg *m, const char *p, uint32_t tls_len, const uint8_t *buf,
                           size_t len)
{
	const char *why;
	FUZZ_CHECK(part_inside(p, tls_len, buf, len) && p + tls_len == (const char *)buf + len);
	FUZZ_CHECK(tls_len == sizeof(m->tls) + m->tls.raw_len && m->tls.raw_len <= PS_TLS_RAW_MAX);
	FUZZ_CHECK((const char *)m->tls_raw == p + sizeof(m->tls));
	FUZZ_CHECK(tls_record_state_check(&m->tls.state, &why) == 0);
}

/* The variable parts of m, in wire order, each inside buf and adding up to its length. */
static void check_parts(const struct ps_msg *m, const uint8_t *buf, size_t len)
{
	switch (m->hdr.type) {
	case PS_MSG_REPLY:
	case PS_MSG_URL_ADD:
	case PS_MSG_URL_DEL:
	case PS_MSG_STATUS_DATA:
		FUZZ_CHECK(part_inside(m->text, m->text_len, buf, len));
		FUZZ_CHECK(m->text + m->text_len == (const char *)buf + len);
		if (m->hdr.type == PS_MSG_REPLY)
			FUZZ_CHECK(m->text_len == m->u.reply.text_len && m->text_len <= PS_TEXT_MAX);
		if (m->hdr.type == PS_MSG_URL_ADD || m->hdr.type == PS_MSG_URL_DEL)
			FUZZ_CHECK(m->text_len == m->u.url.prefix_len && m->text_len >= 1 &&
			           m->text_len <= PS_PREFIX_MAX);
		break;
	case PS_MSG_DELIVER: {
		const struct ps_deliver *d = &m->u.deliver;
		FUZZ_CHECK(d->head_len > 0 && part_inside(m->head, d->head_len, buf, len));
		FUZZ_CHECK(m->path == m->head + d->head_len && part_inside(m->path, d->path_len, buf, len));
		FUZZ_CHECK(m->host == m->path + d->path_len && part_inside(m->host, d->host_len, buf, len));
		FUZZ_CHECK(m->tail == m->host + d->host_len && part_inside(m->tail, d->tail_len, buf, len));
		if (d->flags & PS_DELIVER_TLS)
			check_tls_part(m, m->tail + d->tail_len, d->tls_len, buf, len);
		else
			FUZZ_CHECK(m->tail + d->tail_len == (const char *)buf + len && !m->tls_raw);
		break;
	}
	case PS_MSG_RETURN:
		FUZZ_CHECK(part_inside(m->tail, m->u.ret.tail_len, buf, len));
		FUZZ_CHECK(m->tail + m->u.ret.tail_len == (const char *)buf + len);
		break;
	case PS_MSG_RETURN_TLS:
		FUZZ_CHECK(part_inside(m->tail, m->u.ret_tls.tail_len, buf, len));
		check_tls_part(m, m->tail + m->u.ret_tls.tail_len, m->u.ret_tls.tls_len, buf, len);
		break;
	case PS_MSG_CONN_HANDOVER_TLS:
		FUZZ_CHECK(part_inside(m->tail, m->u.handover_tls.bytes_len, buf, len));
		check_tls_part(m, m->tail + m->u.handover_tls.bytes_len, m->u.handover_tls.tls_len, buf, len);
		break;
	case PS_MSG_HELLO:
		FUZZ_CHECK(memchr(m->u.hello.program, '\0', sizeof(m->u.hello.program)) != NULL);
		break;
	case PS_MSG_QUEUE_CREATE:
		FUZZ_CHECK(m->u.create.name[0] != '\0');
		FUZZ_CHECK(memchr(m->u.create.name, '\0', sizeof(m->u.create.name)) != NULL);
		break;
	case PS_MSG_QUEUE_OPEN:
	case PS_MSG_QUEUE_DELETE:
	case PS_MSG_QUEUE_DRAIN:
		FUZZ_CHECK(memchr(m->u.queue.name, '\0', sizeof(m->u.queue.name)) != NULL);
		break;
	default:
		break;
	}
}

/* Encoding a decoded message gives back the very bytes received: the decoder takes a
 * fixed part only as the encoder writes it (string tails, reserved fields and padding
 * zero), so nothing it accepts changes on the way through. */
static void check_round_trip(const struct ps_msg *m, const uint8_t *data, size_t len)
{
	static uint8_t wire[PS_MSG_MAX];

	ssize_t n = protocol_encode(m, wire, sizeof(wire));
	FUZZ_CHECK(n == (ssize_t)len && memcmp(wire, data, len) == 0);
}

static bool same_prefix(const struct url_prefix *a, const struct url_prefix *b)
{
	return a->https == b->https && a->cls == b->cls && a->port == b->port &&
	       strcmp(a->host, b->host) == 0 && strcmp(a->path, b->path) == 0 &&
	       (a->cls != HOST_IP || memcmp(&a->ip, &b->ip, sizeof(a->ip)) == 0);
}

/* The daemon's next step for URL_ADD/URL_DEL (src/daemon/queue.c): the text as a C
 * string, parsed; a parsed prefix prints and parses back to itself and is routable. */
static void check_url_prefix(const char *text, size_t len)
{
	char s[PS_PREFIX_MAX + 1], printed[2 * PS_PREFIX_MAX], err[256];
	struct url_prefix p, back;

	memcpy(s, text, len);
	s[len] = '\0';
	if (url_prefix_parse(s, &p, err, sizeof(err)) != 0) {
		FUZZ_CHECK(err[0] != '\0');
		return;
	}
	FUZZ_CHECK(p.path[0] == '/' && p.path[strlen(p.path) - 1] == '/');
	int n = url_prefix_format(&p, printed, sizeof(printed));
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(printed));
	FUZZ_CHECK(url_prefix_parse(printed, &back, err, sizeof(err)) == 0 && same_prefix(&p, &back));

	struct route_table *t = route_new();
	void *holder = NULL;
	FUZZ_CHECK(t != NULL);
	FUZZ_CHECK(route_add(t, &p, (void *)1, &holder) == 0);
	FUZZ_CHECK(route_add(t, &back, (void *)2, &holder) == -2 && holder == (void *)1);
	FUZZ_CHECK(route_count(t) == 1 && route_port_count(t, p.port) == 1);
	FUZZ_CHECK(route_del(t, &p) == 0 && route_count(t) == 0 && route_port_count(t, p.port) == 0);
	route_free(t);
}

/* A library maps the snapshot from a sealed memfd (src/lib/delegate.c): do the same. */
static void check_snapshot(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	FUZZ_CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0);
	struct snapshot s;
	if (snapshot_read(fd, size, &s) == 0) {
		struct snapshot_header hd;
		memcpy(&hd, data, sizeof(hd));
		FUZZ_CHECK(s.routes != NULL && route_count(s.routes) == hd.nprefixes);
		FUZZ_CHECK(s.nqueues == hd.nqueues && s.generation == hd.generation);
		if (s.nqueues > 0)
			FUZZ_CHECK(snapshot_max_body(&s, s.queues[0].id) == s.queues[0].max_body);
		/* a lookup on the table built from it, as a delegated connection makes */
		struct ps_addr local = {.family = AF_INET, .port = 80, .addr = {127, 0, 0, 1}};
		struct route_query q = {.host = "example.com", .port = 80, .local = &local, .path = "/a/b"};
		void *owner;
		route_lookup(s.routes, &q, &owner, NULL);
	} else {
		FUZZ_CHECK(s.routes == NULL && s.queues == NULL);
	}
	snapshot_clear(&s);
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t magic;
	struct ps_msg m, shifted_m;
	const char *why = NULL, *why2 = NULL;

	if (size >= sizeof(magic)) {
		memcpy(&magic, data, sizeof(magic));
		if (magic == SNAPSHOT_MAGIC) {
			check_snapshot(data, size);
			return 0;
		}
	}
	/* once more one byte off alignment: UBSan sees any misaligned access */
	uint8_t *shifted = malloc(size + 1);
	FUZZ_CHECK(shifted != NULL);
	memcpy(shifted + 1, data, size);
	int r = protocol_decode(data, size, &m, &why);
	FUZZ_CHECK(protocol_decode(shifted + 1, size, &shifted_m, &why2) == r);
	free(shifted);
	if (r != 0) {
		FUZZ_CHECK(r == -1 && why != NULL);
		return 0;
	}
	FUZZ_CHECK(m.hdr.len == size && size <= PS_MSG_MAX);
	FUZZ_CHECK(strcmp(protocol_type_name(m.hdr.type), "UNKNOWN") != 0);
	check_parts(&m, data, size);
	check_round_trip(&m, data, size);
	if (m.hdr.type == PS_MSG_URL_ADD || m.hdr.type == PS_MSG_URL_DEL)
		check_url_prefix(m.text, m.text_len);
	return 0;
}
