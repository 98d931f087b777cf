/* test_protocol.c: unit tests of the control message encoders and decoders (src/common/protocol.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "portshare.h"
#include "protocol.h"

static char wire[PS_MSG_MAX];

#define SAMPLES_MAX 48 /* room for sample_messages() */

/* Decodes a private copy of exactly len bytes, so AddressSanitizer sees any read
 * outside it, and another copy one byte past an aligned address, so UBSan sees any
 * misaligned access; both must agree. m's parts are made to point into buf. */
static int decode_copy(const void *buf, size_t len, struct ps_msg *m, const char **why)
{
	char *exact = malloc(len ? len : 1);
	char *shifted = malloc(len + 1);
	struct ps_msg m2;
	const char *why2 = NULL;

	assert_non_null(exact);
	assert_non_null(shifted);
	memcpy(exact, buf, len);
	memcpy(shifted + 1, buf, len);
	int r = protocol_decode(exact, len, m, why);
	assert_int_equal(protocol_decode(shifted + 1, len, &m2, &why2), r);
	if (r == 0) {
		const char **parts[] = {&m->text, &m->head, &m->path, &m->host, &m->tail};
		for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
			if (*parts[k] != NULL)
				*parts[k] = (const char *)buf + (*parts[k] - exact);
		if (m->tls_raw)
			m->tls_raw = (const uint8_t *)buf + ((const char *)m->tls_raw - exact);
	}
	free(exact);
	free(shifted);
	return r;
}

static struct ps_addr addr4(uint16_t port)
{
	struct ps_addr a;

	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	a.port = port;
	a.addr[0] = 127;
	a.addr[3] = 1;
	return a;
}

/* One valid message of every type, variable parts included. */
/* A record state tls_record_state_check accepts: TLS 1.3, AES-128-GCM, keys of bytes. */
static struct tls_record_state tls_state(void)
{
	struct tls_record_state s;
	memset(&s, 0, sizeof(s));
	s.version = TLS_RECORD_TLS13;
	s.cipher = TLS_RECORD_AES_128_GCM;
	s.hash = TLS_RECORD_SHA256;
	s.max_plaintext = 16384;
	for (int d = 0; d < 2; d++) {
		s.dir[d].seq = 5u + (unsigned)d;
		s.dir[d].key_len = 16;
		s.dir[d].iv_len = 12;
		s.dir[d].secret_len = 32;
		memset(s.dir[d].key, 0x11 + d, 16);
		memset(s.dir[d].iv, 0x22 + d, 12);
		memset(s.dir[d].secret, 0x33 + d, 32);
	}
	return s;
}

static const uint8_t tls_raw[] = {0x17, 0x03, 0x03, 0x00, 0x20, 1, 2, 3};

static size_t sample_messages(struct ps_msg *out)
{
	static const char head[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t n = 0;
	struct ps_msg *m;

	memset(out, 0, sizeof(*out) * SAMPLES_MAX);
	m = &out[n++];
	m->hdr.type = PS_MSG_HELLO;
	m->hdr.seq = 1;
	m->u.hello.version = PS_PROTO_VERSION;
	m->u.hello.pid = 4242;
	strcpy(m->u.hello.program, "worker");

	m = &out[n++];
	m->hdr.type = PS_MSG_REPLY;
	m->hdr.seq = 1;
	m->u.reply.status = -3;
	m->u.reply.id = 9;
	m->text = "already registered";
	m->text_len = strlen(m->text);

	m = &out[n++];
	m->hdr.type = PS_MSG_QUEUE_CREATE;
	m->u.create.opt_flags = PS_QUEUE_PERSISTENT;
	m->u.create.max_length = 1000;
	m->u.create.max_body = 1u << 20;
	m->u.create.response_wait_ms = 5000;
	strcpy(m->u.create.name, "Blog-app_1.x");

	m = &out[n++];
	m->hdr.type = PS_MSG_QUEUE_OPEN;
	strcpy(m->u.queue.name, "blog");

	m = &out[n++];
	m->hdr.type = PS_MSG_QUEUE_DELETE;
	m->u.queue.queue_id = 3;

	m = &out[n++];
	m->hdr.type = PS_MSG_QUEUE_DRAIN;
	m->u.queue.queue_id = 4;

	m = &out[n++];
	m->hdr.type = PS_MSG_RECEIVE_CANCEL;
	m->u.queue.queue_id = 5;

	m = &out[n++];
	m->hdr.type = PS_MSG_URL_ADD;
	m->u.url.queue_id = 3;
	m->text = "http://+:8080/blog/";
	m->text_len = strlen(m->text);

	m = &out[n++];
	m->hdr.type = PS_MSG_URL_DEL;
	m->u.url.queue_id = 3;
	m->text = "http://*:80/";
	m->text_len = strlen(m->text);
	m->u.url.prefix_len = (uint32_t)m->text_len; /* setting both, equal, is fine */

	m = &out[n++];
	m->hdr.type = PS_MSG_RECEIVE;
	m->u.receive.queue_id = 3;
	m->u.receive.count = 1024;

	m = &out[n++];
	m->hdr.type = PS_MSG_DEMAND_WAIT;
	m->hdr.seq = 41;
	m->u.demand.queue_id = 3;

	m = &out[n++];
	m->hdr.type = PS_MSG_DEMAND;
	m->hdr.seq = 41;
	m->u.demand.queue_id = 3;
	m->u.demand.status = PS_ENOTFOUND;

	m = &out[n++];
	m->hdr.type = PS_MSG_DELIVER;
	m->u.deliver.conn_id = 77;
	m->u.deliver.req_id = 78;
	m->u.deliver.queue_id = 3;
	m->u.deliver.flags = PS_DELIVER_FD;
	m->u.deliver.local = addr4(8080);
	m->u.deliver.remote = addr4(50000);
	m->u.deliver.remote.family = AF_INET6;
	m->head = head;
	m->u.deliver.head_len = sizeof(head) - 1;
	m->path = "/a";
	m->u.deliver.path_len = 2;
	m->host = "x";
	m->u.deliver.host_len = 1;
	m->tail = "GET /b HTTP/1.1\r\n";
	m->u.deliver.tail_len = 17;

	/* the same request on a TLS connection: the record state and unopened ciphertext */
	out[n] = out[n - 1];
	m = &out[n++];
	m->u.deliver.flags = PS_DELIVER_TLS;
	m->tls.state = tls_state();
	m->tls.raw_len = sizeof(tls_raw);
	m->tls_raw = tls_raw;

	m = &out[n++];
	m->hdr.type = PS_MSG_RETURN_TLS;
	m->u.ret_tls.conn_id = 77;
	m->u.ret_tls.req_id = 78;
	m->u.ret_tls.written = 1000;
	m->u.ret_tls.consumed = 2000;
	m->tail = "GET /d";
	m->u.ret_tls.tail_len = 6;
	m->tls.state = tls_state();
	m->tls.raw_len = 3;
	m->tls_raw = tls_raw;

	m = &out[n++];
	m->hdr.type = PS_MSG_CONN_HANDOVER_TLS;
	m->u.handover_tls.conn_id = 9;
	m->u.handover_tls.local = addr4(443);
	m->u.handover_tls.remote = addr4(50001);
	m->u.handover_tls.flags = PS_HANDOVER_EOF;
	m->tail = "GET /e";
	m->u.handover_tls.bytes_len = 6;
	m->tls.state = tls_state();

	m = &out[n++];
	m->hdr.type = PS_MSG_NOFD;
	m->u.conn.conn_id = 77;
	m->u.conn.req_id = 78;

	m = &out[n++];
	m->hdr.type = PS_MSG_REQUEUE;
	m->u.conn.conn_id = 79;
	m->u.conn.req_id = 80;

	m = &out[n++];
	m->hdr.type = PS_MSG_RETURN;
	m->u.ret.conn_id = 77;
	m->u.ret.req_id = 78;
	m->u.ret.flags = PS_RETURN_EOF;
	m->tail = "GET /c";
	m->u.ret.tail_len = 6;

	m = &out[n++];
	m->hdr.type = PS_MSG_END;
	m->u.end.conn_id = 77;
	m->u.end.req_id = 78;
	m->u.end.flags = PS_END_SHUTDOWN | PS_END_UPGRADED;

	m = &out[n++];
	m->hdr.type = PS_MSG_CONN_CLOSED;
	m->u.conn.conn_id = 77;

	m = &out[n++];
	m->hdr.type = PS_MSG_STATUS;
	m->hdr.flags = PS_STATUS_JSON;

	m = &out[n++];
	m->hdr.type = PS_MSG_STATUS_DATA;
	m->hdr.flags = PS_STATUS_MORE;
	m->text = "{\"queues\":[]}";
	m->text_len = strlen(m->text);

	m = &out[n++];
	m->hdr.type = PS_MSG_SHM;
	m->u.shm.kind = PS_SHM_ROUTES;
	m->u.shm.generation = 9;
	m->u.shm.size = 4096;

	m = &out[n++];
	m->hdr.type = PS_MSG_LIMITS;
	m->u.limits.entity_body_ms = 1500;
	m->u.limits.drain_entity_body_ms = 2500;
	m->u.limits.min_send_rate = 150;

	m = &out[n++];
	m->hdr.type = PS_MSG_HELLO;
	m->hdr.flags = PS_HELLO_TAKEOVER;
	m->u.hello.version = PS_PROTO_VERSION;
	m->u.hello.pid = 4242;
	strcpy(m->u.hello.program, "worker");

	m = &out[n++];
	m->hdr.type = PS_MSG_TAKEOVER;
	m->u.takeover.pid = 31;

	m = &out[n++];
	m->hdr.type = PS_MSG_TAKEOVER_SOCKET;
	m->u.usock.kind = PS_TAKEOVER_SOCKET_TCP;
	m->u.usock.addr = addr4(8080);

	m = &out[n++];
	m->hdr.type = PS_MSG_TAKEOVER_SOCKET;
	m->u.usock.kind = PS_TAKEOVER_SOCKET_CONTROL;

	m = &out[n++];
	m->hdr.type = PS_MSG_TAKEOVER_QUEUE;
	m->u.uqueue.queue_id = 5;
	m->u.uqueue.opt_flags = PS_QUEUE_PERSISTENT;
	m->u.uqueue.max_length = 10;
	m->u.uqueue.response_wait_ms = 700;
	m->u.uqueue.max_body = 1u << 30;
	m->u.uqueue.uid = 1000;
	m->u.uqueue.creator_pid = 99;
	m->u.uqueue.sessions = 2;
	strcpy(m->u.uqueue.name, "blog");
	strcpy(m->u.uqueue.creator_user, "www-data");

	m = &out[n++];
	m->hdr.type = PS_MSG_TAKEOVER_URL;
	m->u.url.queue_id = 5;
	m->text = "http://+:8080/blog/";
	m->text_len = strlen(m->text);

	m = &out[n++];
	m->hdr.type = PS_MSG_TAKEOVER_READY;
	m->u.takeover.pid = 31;

	m = &out[n++];
	m->hdr.type = PS_MSG_REATTACH;
	m->u.takeover.pid = 32;

	m = &out[n++];
	m->hdr.type = PS_MSG_CONN_HANDOVER;
	m->u.handover.conn_id = 77;
	m->u.handover.local = addr4(8080);
	m->u.handover.remote = addr4(50001);
	m->u.handover.flags = PS_HANDOVER_EOF;
	m->tail = "GET /next HTTP/1.1\r\nHo";
	m->u.handover.bytes_len = (uint32_t)strlen(m->tail);

	m = &out[n++];
	m->hdr.type = PS_MSG_COMMAND;
	m->hdr.flags = PS_STATUS_JSON;
	m->text = "urlacl\0add\0http://+:8080/a/\0u:1000:alice\0";
	m->text_len = 41;

	m = &out[n++];
	m->hdr.type = PS_MSG_LOG_DRAIN;

	/* variants with empty variable parts */
	m = &out[n++];
	m->hdr.type = PS_MSG_REPLY;
	m = &out[n++];
	m->hdr.type = PS_MSG_RETURN;
	m = &out[n++];
	m->hdr.type = PS_MSG_STATUS_DATA;
	m = &out[n++];
	m->hdr.type = PS_MSG_CONN_HANDOVER;
	m->u.handover.local = addr4(80);
	m->u.handover.remote = addr4(81);
	assert_true(n <= SAMPLES_MAX);
	return n;
}

static void assert_part(const char *got, size_t got_len, const char *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	if (want_len)
		assert_memory_equal(got, want, want_len);
}

static void assert_tls_part(const struct ps_msg *out, const struct ps_msg *in)
{
	assert_memory_equal(&out->tls.state, &in->tls.state, sizeof(in->tls.state));
	assert_part((const char *)out->tls_raw, out->tls.raw_len, (const char *)in->tls_raw, in->tls.raw_len);
}

static void test_round_trip_every_type(void **state)
{
	struct ps_msg in[SAMPLES_MAX], out;
	size_t n = sample_messages(in);
	bool seen[PS_MSG_TYPE_END] = {false};
	const char *why = NULL;

	for (size_t k = 0; k < n; k++) {
		ssize_t len = protocol_encode(&in[k], wire, sizeof(wire));
		if (len < 0)
			fail_msg("encode %s", protocol_type_name(in[k].hdr.type));
		assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), 0);
		seen[in[k].hdr.type] = true;
		assert_int_equal(out.hdr.type, in[k].hdr.type);
		assert_int_equal(out.hdr.flags, in[k].hdr.flags);
		assert_int_equal(out.hdr.seq, in[k].hdr.seq);
		assert_int_equal(out.hdr.len, (uint32_t)len);
		switch (in[k].hdr.type) {
		case PS_MSG_HELLO:
			assert_int_equal(out.hdr.flags, in[k].hdr.flags);
			assert_int_equal(out.u.hello.pid, 4242);
			assert_int_equal(out.u.hello.version, PS_PROTO_VERSION);
			assert_string_equal(out.u.hello.program, "worker");
			break;
		case PS_MSG_REPLY:
			assert_int_equal(out.u.reply.status, in[k].u.reply.status);
			assert_int_equal(out.u.reply.id, in[k].u.reply.id);
			assert_int_equal(out.u.reply.text_len, in[k].text_len);
			assert_part(out.text, out.text_len, in[k].text, in[k].text_len);
			break;
		case PS_MSG_QUEUE_CREATE:
			assert_memory_equal(&out.u.create, &in[k].u.create,
			                    offsetof(struct ps_queue_create, name));
			assert_string_equal(out.u.create.name, "Blog-app_1.x");
			break;
		case PS_MSG_QUEUE_OPEN:
		case PS_MSG_QUEUE_DELETE:
		case PS_MSG_QUEUE_DRAIN:
		case PS_MSG_RECEIVE_CANCEL:
			assert_int_equal(out.u.queue.queue_id, in[k].u.queue.queue_id);
			assert_string_equal(out.u.queue.name, in[k].u.queue.name);
			break;
		case PS_MSG_URL_ADD:
		case PS_MSG_URL_DEL:
		case PS_MSG_TAKEOVER_URL:
			assert_int_equal(out.u.url.queue_id, in[k].u.url.queue_id);
			assert_int_equal(out.u.url.prefix_len, in[k].text_len);
			assert_part(out.text, out.text_len, in[k].text, in[k].text_len);
			break;
		case PS_MSG_RECEIVE:
			assert_memory_equal(&out.u.receive, &in[k].u.receive, sizeof(out.u.receive));
			break;
		case PS_MSG_DEMAND_WAIT:
		case PS_MSG_DEMAND:
			assert_memory_equal(&out.u.demand, &in[k].u.demand, sizeof(out.u.demand));
			break;
		case PS_MSG_DELIVER: {
			const struct ps_deliver *d = &out.u.deliver, *e = &in[k].u.deliver;
			assert_memory_equal(d, e, offsetof(struct ps_deliver, tls_len));
			assert_part(out.head, d->head_len, in[k].head, e->head_len);
			assert_part(out.path, d->path_len, in[k].path, e->path_len);
			assert_part(out.host, d->host_len, in[k].host, e->host_len);
			assert_part(out.tail, d->tail_len, in[k].tail, e->tail_len);
			assert_tls_part(&out, &in[k]);
			break;
		}
		case PS_MSG_RETURN_TLS:
			assert_memory_equal(&out.u.ret_tls, &in[k].u.ret_tls,
			                    offsetof(struct ps_return_tls, tls_len));
			assert_part(out.tail, out.u.ret_tls.tail_len, in[k].tail, in[k].u.ret_tls.tail_len);
			assert_tls_part(&out, &in[k]);
			break;
		case PS_MSG_CONN_HANDOVER_TLS:
			assert_memory_equal(&out.u.handover_tls, &in[k].u.handover_tls,
			                    offsetof(struct ps_conn_handover_tls, tls_len));
			assert_part(out.tail, out.u.handover_tls.bytes_len, in[k].tail,
			            in[k].u.handover_tls.bytes_len);
			assert_tls_part(&out, &in[k]);
			break;
		case PS_MSG_NOFD:
		case PS_MSG_REQUEUE:
		case PS_MSG_CONN_CLOSED:
			assert_memory_equal(&out.u.conn, &in[k].u.conn, sizeof(out.u.conn));
			break;
		case PS_MSG_RETURN:
			assert_int_equal(out.u.ret.conn_id, in[k].u.ret.conn_id);
			assert_int_equal(out.u.ret.flags, in[k].u.ret.flags);
			assert_part(out.tail, out.u.ret.tail_len, in[k].tail, in[k].u.ret.tail_len);
			break;
		case PS_MSG_END:
			assert_int_equal(out.u.end.conn_id, 77);
			assert_int_equal(out.u.end.flags, PS_END_SHUTDOWN | PS_END_UPGRADED);
			break;
		case PS_MSG_STATUS:
			assert_int_equal(len, sizeof(struct ps_msg_hdr));
			break;
		case PS_MSG_STATUS_DATA:
			assert_part(out.text, out.text_len, in[k].text, in[k].text_len);
			break;
		case PS_MSG_SHM:
			assert_memory_equal(&out.u.shm, &in[k].u.shm, sizeof(out.u.shm));
			break;
		case PS_MSG_LIMITS:
			assert_memory_equal(&out.u.limits, &in[k].u.limits, sizeof(out.u.limits));
			break;
		case PS_MSG_TAKEOVER:
		case PS_MSG_TAKEOVER_READY:
		case PS_MSG_REATTACH:
			assert_int_equal(out.u.takeover.pid, in[k].u.takeover.pid);
			break;
		case PS_MSG_TAKEOVER_SOCKET:
			assert_memory_equal(&out.u.usock, &in[k].u.usock, sizeof(out.u.usock));
			break;
		case PS_MSG_TAKEOVER_QUEUE:
			assert_memory_equal(&out.u.uqueue, &in[k].u.uqueue, sizeof(out.u.uqueue));
			break;
		case PS_MSG_LOG_DRAIN:
			assert_memory_equal(&out.u.log_drain, &in[k].u.log_drain, sizeof(out.u.log_drain));
			break;
		case PS_MSG_COMMAND:
			assert_int_equal(out.hdr.flags, PS_STATUS_JSON);
			assert_part(out.text, out.text_len, in[k].text, in[k].text_len);
			break;
		case PS_MSG_CONN_HANDOVER: {
			const struct ps_conn_handover *h = &out.u.handover, *e = &in[k].u.handover;
			assert_memory_equal(h, e, offsetof(struct ps_conn_handover, bytes_len));
			assert_part(out.tail, h->bytes_len, in[k].tail, e->bytes_len);
			break;
		}
		}
	}
	/* numbers given to messages of other branches are gaps here (protocol.h) */
	for (unsigned t = 1; t < PS_MSG_TYPE_END; t++)
		if (!seen[t] && strcmp(protocol_type_name(t), "UNKNOWN") != 0)
			fail_msg("no round trip of %s", protocol_type_name(t));
}

/* Every prefix of every message is refused, whether hdr.len still says the full
 * length or was rewritten to match (only STATUS_DATA, whose text is any length, may
 * then be valid). */
static void test_every_truncation(void **state)
{
	struct ps_msg in[SAMPLES_MAX], out;
	size_t n = sample_messages(in);
	const char *why;

	for (size_t k = 0; k < n; k++) {
		ssize_t len = protocol_encode(&in[k], wire, sizeof(wire));
		assert_true(len > 0);
		for (size_t cut = 0; cut < (size_t)len; cut++) {
			why = NULL;
			assert_int_equal(decode_copy(wire, cut, &out, &why), -1);
			assert_non_null(why);
			if (cut < sizeof(struct ps_msg_hdr))
				continue;
			char copy[PS_MSG_MAX];
			memcpy(copy, wire, cut);
			uint32_t l = (uint32_t)cut;
			memcpy(copy + offsetof(struct ps_msg_hdr, len), &l, sizeof(l));
			int r = decode_copy(copy, cut, &out, &why);
			if (in[k].hdr.type != PS_MSG_STATUS_DATA)
				assert_int_equal(r, -1);
		}
	}
}

static void test_wrong_length_and_type(void **state)
{
	struct ps_msg in[SAMPLES_MAX], out;
	size_t n = sample_messages(in);
	const char *why;

	for (size_t k = 0; k < n; k++) {
		ssize_t len = protocol_encode(&in[k], wire, sizeof(wire));
		assert_true(len > 0);
		struct ps_msg_hdr hdr;
		memcpy(&hdr, wire, sizeof(hdr));
		/* hdr.len one off either way */
		hdr.len = (uint32_t)len + 1;
		memcpy(wire, &hdr, sizeof(hdr));
		assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), -1);
		hdr.len = (uint32_t)len - 1;
		memcpy(wire, &hdr, sizeof(hdr));
		assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), -1);
		/* an extra byte at the end, hdr.len agreeing: the parts no longer add up */
		hdr.len = (uint32_t)len + 1;
		memcpy(wire, &hdr, sizeof(hdr));
		wire[len] = 'x';
		if (in[k].hdr.type != PS_MSG_STATUS_DATA)
			assert_int_equal(decode_copy(wire, (size_t)len + 1, &out, &why), -1);
		/* unknown types */
		static const uint16_t bad_types[] = {0, PS_MSG_TYPE_END, 999, 0xffff};
		hdr.len = (uint32_t)len;
		for (size_t t = 0; t < sizeof(bad_types) / sizeof(bad_types[0]); t++) {
			hdr.type = bad_types[t];
			memcpy(wire, &hdr, sizeof(hdr));
			assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), -1);
		}
		/* header flags a type does not define */
		hdr.type = in[k].hdr.type;
		hdr.flags = 0x8000;
		memcpy(wire, &hdr, sizeof(hdr));
		assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), -1);
	}
	struct ps_msg m;
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_TYPE_END;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.hdr.type = 0;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	assert_string_equal(protocol_type_name(PS_MSG_DELIVER), "DELIVER");
	assert_string_equal(protocol_type_name(0), "UNKNOWN");
	assert_string_equal(protocol_type_name(PS_MSG_TYPE_END), "UNKNOWN");
}

static void test_oversized_parts(void **state)
{
	static char big[PS_MSG_MAX + 1];
	struct ps_msg m;

	memset(big, 'a', sizeof(big));
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_REPLY;
	m.text = big;
	m.text_len = PS_TEXT_MAX;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.text_len = PS_TEXT_MAX + 1;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	/* the two lengths disagree */
	m.text_len = 5;
	m.u.reply.text_len = 6;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	/* a length without its bytes */
	m.u.reply.text_len = 0;
	m.text = NULL;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_URL_ADD;
	m.text = big;
	m.text_len = PS_PREFIX_MAX;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.text_len = PS_PREFIX_MAX + 1;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.text_len = 0;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_STATUS_DATA;
	m.text = big;
	m.text_len = PS_MSG_MAX - sizeof(struct ps_msg_hdr);
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), PS_MSG_MAX);
	m.text_len++;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	/* the caller's buffer is too small */
	m.text_len = 100;
	assert_int_equal(protocol_encode(&m, wire, sizeof(struct ps_msg_hdr) + 99), -1);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DELIVER;
	m.u.deliver.local = addr4(80);
	m.u.deliver.remote = addr4(81);
	m.head = big;
	m.u.deliver.head_len = 1000;
	m.tail = big;
	m.u.deliver.tail_len = PS_MSG_MAX - sizeof(struct ps_msg_hdr) - sizeof(struct ps_deliver) - 1000;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), PS_MSG_MAX);
	m.u.deliver.tail_len++;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	/* part lengths that wrap around 32 bits must not add up to something small */
	m.u.deliver.tail_len = UINT32_MAX - 999;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
}

/* Encodes m, then applies a byte-level change the encoder would refuse, and decodes. */
static void assert_decode_refuses(struct ps_msg *m, size_t field_off, const void *val, size_t val_len)
{
	struct ps_msg out;
	const char *why = NULL;
	ssize_t len = protocol_encode(m, wire, sizeof(wire));

	assert_true(len > 0);
	memcpy(wire + sizeof(struct ps_msg_hdr) + field_off, val, val_len);
	assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), -1);
	assert_non_null(why);
}

static void test_bad_fields(void **state)
{
	static const char *const bad_names[] = {"", "a b", "a/b", "caf\xc3\xa9", "a\nb", "../x"};
	struct ps_msg m;

	for (size_t k = 0; k < sizeof(bad_names) / sizeof(bad_names[0]); k++) {
		memset(&m, 0, sizeof(m));
		m.hdr.type = PS_MSG_QUEUE_CREATE;
		strcpy(m.u.create.name, bad_names[k]);
		assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
		m.hdr.type = PS_MSG_QUEUE_OPEN;
		strcpy(m.u.queue.name, bad_names[k]);
		assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	}
	/* a name filling the array without a NUL */
	char full[PS_QUEUE_NAME_MAX + 1];
	memset(full, 'q', sizeof(full));
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_QUEUE_CREATE;
	memcpy(m.u.create.name, full, sizeof(full));
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	strcpy(m.u.create.name, "ok");
	assert_decode_refuses(&m, offsetof(struct ps_queue_create, name), full, sizeof(full));
	static const char space[] = "a b";
	assert_decode_refuses(&m, offsetof(struct ps_queue_create, name), space, sizeof(space));
	uint32_t flags = 0x2;
	assert_decode_refuses(&m, offsetof(struct ps_queue_create, opt_flags), &flags, sizeof(flags));
	/* the longest name is fine */
	memset(m.u.create.name, 'q', PS_QUEUE_NAME_MAX);
	m.u.create.name[PS_QUEUE_NAME_MAX] = '\0';
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_QUEUE_DRAIN;
	m.u.queue.queue_id = 1;
	assert_decode_refuses(&m, offsetof(struct ps_queue_ref, name), full, sizeof(full));

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_HELLO;
	strcpy(m.u.hello.program, "p");
	char prog[PS_PROGRAM_MAX + 1];
	memset(prog, 'p', sizeof(prog));
	assert_decode_refuses(&m, offsetof(struct ps_hello, program), prog, sizeof(prog));

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_RECEIVE;
	m.u.receive.count = 0;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.receive.count = 1025;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.receive.count = 1;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);

	/* DEMAND_WAIT carries no status; DEMAND only 0 or PS_ENOTFOUND */
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DEMAND_WAIT;
	m.u.demand.status = PS_ENOTFOUND;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.hdr.type = PS_MSG_DEMAND;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.u.demand.status = PS_EDENIED;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.demand.status = 0;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_END;
	m.u.end.flags = 0x8;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.hdr.type = PS_MSG_RETURN;
	m.u.ret.flags = 0x2;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_STATUS;
	m.hdr.flags = 0x4;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.hdr.flags = PS_STATUS_METRICS; /* STATUS may ask for the metrics, COMMAND may not */
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.hdr.type = PS_MSG_COMMAND;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.hdr.type = PS_MSG_RECEIVE;
	m.hdr.flags = PS_STATUS_JSON;
	m.u.receive.count = 1;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	static const char head[] = "GET / HTTP/1.1\r\n\r\n";
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DELIVER;
	m.u.deliver.local = addr4(80);
	m.u.deliver.remote = addr4(81);
	m.head = head;
	m.u.deliver.head_len = sizeof(head) - 1;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	/* a TLS part with a state the record layer refuses, or too much ciphertext */
	m.u.deliver.flags = PS_DELIVER_TLS;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.tls.state = tls_state();
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.tls.state.dir[1].key_len = 17;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.tls.state = tls_state();
	static uint8_t big_raw[PS_TLS_RAW_MAX + 1];
	m.tls_raw = big_raw;
	m.tls.raw_len = PS_TLS_RAW_MAX;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.tls.raw_len = PS_TLS_RAW_MAX + 1;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	memset(&m.tls, 0, sizeof(m.tls));
	m.tls_raw = NULL;
	m.u.deliver.flags = 0;
	m.u.deliver.head_len = 0;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.deliver.head_len = sizeof(head) - 1;
	m.u.deliver.remote.family = AF_UNIX;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.deliver.remote.family = AF_INET6;
	uint32_t tls = 1;
	assert_decode_refuses(&m, offsetof(struct ps_deliver, tls_len), &tls, sizeof(tls));
	/* the upgrade messages */
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_TAKEOVER_SOCKET;
	m.u.usock.kind = 4; /* kinds are TCP, CONTROL and LOCK */
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.usock.kind = PS_TAKEOVER_SOCKET_TCP; /* a TCP socket needs its address */
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.usock.addr = addr4(80);
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	uint32_t kind = 0;
	assert_decode_refuses(&m, offsetof(struct ps_takeover_socket, kind), &kind, sizeof(kind));

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_TAKEOVER_QUEUE;
	strcpy(m.u.uqueue.name, "a b");
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	strcpy(m.u.uqueue.name, "q");
	m.u.uqueue.opt_flags = 0x2;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.uqueue.opt_flags = 0;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	char user[PS_USER_MAX + 1];
	memset(user, 'u', sizeof(user));
	assert_decode_refuses(&m, offsetof(struct ps_takeover_queue, creator_user), user, sizeof(user));
	assert_decode_refuses(&m, offsetof(struct ps_takeover_queue, name), full, sizeof(full));

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_TAKEOVER_URL;
	m.text = "";
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	static char many[PS_HANDOVER_BYTES_MAX + 1];
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_CONN_HANDOVER;
	m.u.handover.local = addr4(80);
	m.u.handover.remote = addr4(81);
	m.tail = many;
	m.u.handover.bytes_len = PS_HANDOVER_BYTES_MAX;
	assert_true(protocol_encode(&m, wire, sizeof(wire)) > 0);
	m.u.handover.bytes_len++;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.handover.bytes_len = 0;
	m.u.handover.flags = 0x2;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);
	m.u.handover.flags = 0;
	m.u.handover.remote.family = AF_UNIX;
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_REATTACH;
	m.hdr.flags = PS_HELLO_TAKEOVER; /* only HELLO takes it */
	assert_int_equal(protocol_encode(&m, wire, sizeof(wire)), -1);

	/* lengths whose 32-bit sum wraps to the right total */
	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DELIVER;
	m.u.deliver.local = addr4(80);
	m.u.deliver.remote = addr4(81);
	m.head = head;
	m.u.deliver.head_len = sizeof(head) - 1;
	uint32_t wrap[2] = {UINT32_MAX, 1 + (uint32_t)sizeof(head) - 1};
	assert_decode_refuses(&m, offsetof(struct ps_deliver, head_len), &wrap[0], sizeof(wrap[0]));
	assert_decode_refuses(&m, offsetof(struct ps_deliver, path_len), &wrap, sizeof(wrap));
}

/* Bytes of a fixed part that the encoder always writes as zero: what follows a string's
 * NUL, reserved fields, padding. Offsets are from the start of the fixed part. */
#define CREATE_PAD_OFF (offsetof(struct ps_queue_create, name) + PS_QUEUE_NAME_MAX + 1)
static const unsigned char junk[4] = {'x', 'x', 'x', 'x'}; /* what goes into them instead */
static const struct {
	uint16_t type;
	size_t off, len;
} zero_bytes[] = {
    {PS_MSG_HELLO, offsetof(struct ps_hello, program) + PS_PROGRAM_MAX, 1},
    {PS_MSG_REPLY, offsetof(struct ps_reply, reserved), sizeof(uint32_t)},
    {PS_MSG_QUEUE_CREATE, offsetof(struct ps_queue_create, name) + PS_QUEUE_NAME_MAX, 1},
    {PS_MSG_QUEUE_CREATE, CREATE_PAD_OFF, sizeof(struct ps_queue_create) - CREATE_PAD_OFF},
    {PS_MSG_QUEUE_OPEN, offsetof(struct ps_queue_ref, name) + PS_QUEUE_NAME_MAX, 1},
    {PS_MSG_QUEUE_DELETE, offsetof(struct ps_queue_ref, name) + PS_QUEUE_NAME_MAX, 1},
    {PS_MSG_QUEUE_DRAIN, offsetof(struct ps_queue_ref, name) + 1, 1}, /* the sample's is "" */
    {PS_MSG_RECEIVE_CANCEL, offsetof(struct ps_queue_ref, name) + 1, 1},
    {PS_MSG_DELIVER, offsetof(struct ps_deliver, reserved), sizeof(uint32_t)},
    {PS_MSG_END, offsetof(struct ps_end, reserved), sizeof(uint32_t)},
    {PS_MSG_LIMITS, offsetof(struct ps_limits, reserved), sizeof(uint32_t)},
    {PS_MSG_TAKEOVER, offsetof(struct ps_takeover, reserved), sizeof(uint32_t)},
    {PS_MSG_TAKEOVER_READY, offsetof(struct ps_takeover, reserved), sizeof(uint32_t)},
    {PS_MSG_REATTACH, offsetof(struct ps_takeover, reserved), sizeof(uint32_t)},
    {PS_MSG_TAKEOVER_SOCKET, offsetof(struct ps_takeover_socket, reserved), sizeof(uint32_t)},
    {PS_MSG_TAKEOVER_QUEUE, offsetof(struct ps_takeover_queue, reserved), sizeof(uint32_t)},
    /* the name "blog" of the sample: right after its NUL, as fuzz_protocol found */
    {PS_MSG_TAKEOVER_QUEUE, offsetof(struct ps_takeover_queue, name) + 5, 1},
    {PS_MSG_TAKEOVER_QUEUE, offsetof(struct ps_takeover_queue, name) + PS_QUEUE_NAME_MAX, 1},
    {PS_MSG_TAKEOVER_QUEUE, offsetof(struct ps_takeover_queue, creator_user) + PS_USER_MAX, 1},
    {PS_MSG_LOG_DRAIN, offsetof(struct ps_log_drain, reserved), sizeof(uint32_t)},
    {PS_MSG_LOG_DRAIN, offsetof(struct ps_log_drain, reserved) + sizeof(uint32_t), sizeof(uint32_t)},
};

/* The first sample of a type (sample_messages() has one of each). */
static struct ps_msg *sample_of(struct ps_msg *in, size_t n, unsigned type)
{
	for (size_t k = 0; k < n; k++)
		if (in[k].hdr.type == type)
			return &in[k];
	fail_msg("no sample of %s", protocol_type_name(type));
	return NULL;
}

/* The decoder accepts only what the encoder writes: a message it accepts encodes back to
 * the very same bytes, so a non-zero byte where the encoder writes zero is refused. */
static void test_decode_refuses_what_encode_would_change(void **state)
{
	static char again[PS_MSG_MAX];
	struct ps_msg in[SAMPLES_MAX], out;
	size_t n = sample_messages(in);
	const char *why;
	int accepted = 0; /* every gap is named before the test fails */

	for (size_t k = 0; k < n; k++) {
		ssize_t len = protocol_encode(&in[k], wire, sizeof(wire));
		assert_true(len > 0);
		assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), 0);
		assert_int_equal(protocol_encode(&out, again, sizeof(again)), len);
		assert_memory_equal(again, wire, (size_t)len);
		/* the header's reserved field, on every type */
		struct ps_msg_hdr hdr;
		memcpy(&hdr, wire, sizeof(hdr));
		hdr.reserved = 1;
		memcpy(wire, &hdr, sizeof(hdr));
		if (decode_copy(wire, (size_t)len, &out, &why) == 0) {
			print_error("%s: header reserved field not zero accepted\n",
			            protocol_type_name(in[k].hdr.type));
			accepted++;
		}
	}
	for (size_t z = 0; z < sizeof(zero_bytes) / sizeof(zero_bytes[0]); z++) {
		assert_true(zero_bytes[z].len <= sizeof(junk));
		if (zero_bytes[z].len == 0) /* no padding on this ABI */
			continue;
		ssize_t len = protocol_encode(sample_of(in, n, zero_bytes[z].type), wire, sizeof(wire));
		assert_true(len > 0);
		memcpy(wire + sizeof(struct ps_msg_hdr) + zero_bytes[z].off, junk, zero_bytes[z].len);
		why = NULL;
		if (decode_copy(wire, (size_t)len, &out, &why) == 0) {
			print_error("%s: non-zero bytes at %zu accepted\n",
			            protocol_type_name(zero_bytes[z].type), zero_bytes[z].off);
			accepted++;
		} else {
			assert_non_null(why);
		}
	}
	assert_int_equal(accepted, 0);
	/* the longest names still fill their arrays up to the NUL */
	struct ps_msg *m = sample_of(in, n, PS_MSG_TAKEOVER_QUEUE);
	memset(m->u.uqueue.name, 'q', PS_QUEUE_NAME_MAX);
	memset(m->u.uqueue.creator_user, 'u', PS_USER_MAX);
	ssize_t len = protocol_encode(m, wire, sizeof(wire));
	assert_true(len > 0);
	assert_int_equal(decode_copy(wire, (size_t)len, &out, &why), 0);
	assert_int_equal(strlen(out.u.uqueue.name), PS_QUEUE_NAME_MAX);
	assert_int_equal(strlen(out.u.uqueue.creator_user), PS_USER_MAX);
}

/* What the caller leaves in those bytes never reaches the wire: the encoder zeroes them,
 * so the decoder's stricter checks never refuse an encoder's message. */
/* The HELLO reply's feature words: whole words only, any order, none in an old daemon's "". */
static void test_features(void **state)
{
	static const char both[] = "tls demand";
	assert_true(protocol_has_feature(both, strlen(both), PS_FEATURE_DEMAND));
	assert_true(protocol_has_feature("demand", 6, PS_FEATURE_DEMAND));
	assert_false(protocol_has_feature("", 0, PS_FEATURE_DEMAND));
	assert_false(protocol_has_feature("demands", 7, PS_FEATURE_DEMAND));
	assert_false(protocol_has_feature("demand", 5, PS_FEATURE_DEMAND)); /* cut by its length */
	assert_false(protocol_has_feature("xdemand demandx", 15, PS_FEATURE_DEMAND));
	assert_true(protocol_has_feature(PS_FEATURES, strlen(PS_FEATURES), PS_FEATURE_DEMAND));
}

static void test_encode_zeroes_what_decode_checks(void **state)
{
	static char clean[PS_MSG_MAX];
	struct ps_msg in[SAMPLES_MAX];
	size_t n = sample_messages(in);

	for (size_t z = 0; z < sizeof(zero_bytes) / sizeof(zero_bytes[0]); z++) {
		assert_true(zero_bytes[z].len <= sizeof(junk));
		struct ps_msg *m = sample_of(in, n, zero_bytes[z].type);
		ssize_t len = protocol_encode(m, clean, sizeof(clean));
		assert_true(len > 0);
		struct ps_msg dirty = *m;
		dirty.hdr.reserved = 0xdeadbeef;
		memcpy((char *)&dirty.u + zero_bytes[z].off, junk, zero_bytes[z].len);
		assert_int_equal(protocol_encode(&dirty, wire, sizeof(wire)), len);
		assert_memory_equal(wire, clean, (size_t)len);
	}
}

/* Random bytes with a plausible header: the decoder refuses or accepts, never reads outside. */
static void test_random_input(void **state)
{
	struct ps_msg out;
	const char *why;
	unsigned seed = 12345;

	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(rand_r(&seed) % 400);
		unsigned char buf[400];
		for (size_t k = 0; k < len; k++)
			buf[k] = (unsigned char)rand_r(&seed);
		if (len >= sizeof(struct ps_msg_hdr)) {
			struct ps_msg_hdr hdr;
			memcpy(&hdr, buf, sizeof(hdr));
			hdr.type = (uint16_t)(rand_r(&seed) % (PS_MSG_TYPE_END + 1));
			hdr.len = (uint32_t)len;
			hdr.flags = (uint16_t)(rand_r(&seed) % 2);
			hdr.reserved = 0;
			memcpy(buf, &hdr, sizeof(hdr));
		}
		int r = decode_copy(buf, len, &out, &why);
		if (r == 0) {
			/* whatever was accepted encodes back to the same bytes */
			ssize_t again = protocol_encode(&out, wire, sizeof(wire));
			assert_int_equal(again, (ssize_t)len);
			assert_memory_equal(wire, buf, len);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip_every_type),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_wrong_length_and_type),
	    cmocka_unit_test(test_oversized_parts),
	    cmocka_unit_test(test_bad_fields),
	    cmocka_unit_test(test_decode_refuses_what_encode_would_change),
	    cmocka_unit_test(test_encode_zeroes_what_decode_checks),
	    cmocka_unit_test(test_features),
	    cmocka_unit_test(test_random_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
