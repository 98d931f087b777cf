/* test_tls_record.c: unit tests of the TLS record layer (src/common/tls_record.c) against
 * real GnuTLS sessions. For each cipher suite the layer does, a GnuTLS client and server
 * handshake on a socketpair (an ECDSA certificate made here, session tickets on), the
 * server's state is exported into the layer and the server session dropped, as the daemon
 * will; then the client goes on talking to the layer: data both ways in every size, split
 * at every byte, KeyUpdates both ways and a handoff after them, close_notify both ways,
 * alerts, flipped bytes, a TLS 1.2 renegotiation, the client's record size limit, sequence
 * numbers at their limits. The last test measures the layer against GnuTLS's own record
 * layer on the same session (printed, never asserted). */
#include <errno.h>
#include <linux/perf_event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/x509.h>

#include "tls_record.h"

struct suite {
	const char *name;
	const char *priority;
	uint16_t version;
	uint8_t cipher, hash;
};

#define TLS13_ONLY "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:"
#define TLS12_ONLY "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:-CIPHER-ALL:"
static const struct suite suites[] = {
    {"TLS1.3 AES-128-GCM", TLS13_ONLY "+AES-128-GCM", TLS_RECORD_TLS13, TLS_RECORD_AES_128_GCM,
     TLS_RECORD_SHA256},
    {"TLS1.3 AES-256-GCM", TLS13_ONLY "+AES-256-GCM", TLS_RECORD_TLS13, TLS_RECORD_AES_256_GCM,
     TLS_RECORD_SHA384},
    {"TLS1.3 CHACHA20-POLY1305", TLS13_ONLY "+CHACHA20-POLY1305", TLS_RECORD_TLS13,
     TLS_RECORD_CHACHA20_POLY1305, TLS_RECORD_SHA256},
    {"TLS1.2 ECDHE-ECDSA-AES128-GCM-SHA256", TLS12_ONLY "+AES-128-GCM", TLS_RECORD_TLS12,
     TLS_RECORD_AES_128_GCM, TLS_RECORD_SHA256},
    {"TLS1.2 ECDHE-ECDSA-AES256-GCM-SHA384", TLS12_ONLY "+AES-256-GCM", TLS_RECORD_TLS12,
     TLS_RECORD_AES_256_GCM, TLS_RECORD_SHA384},
    {"TLS1.2 ECDHE-ECDSA-CHACHA20-POLY1305", TLS12_ONLY "+CHACHA20-POLY1305", TLS_RECORD_TLS12,
     TLS_RECORD_CHACHA20_POLY1305, TLS_RECORD_SHA256},
};
#define NSUITES (sizeof(suites) / sizeof(suites[0]))

/* made once: an ECDSA P-256 key and its self-signed certificate, a ticket key */
static gnutls_certificate_credentials_t server_cred, client_cred;
static gnutls_datum_t ticket_key;

struct buf {
	uint8_t *data;
	size_t len, cap;
};

static void buf_room(struct buf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return;
	b->cap = b->len + more + b->cap;
	b->data = realloc(b->data, b->cap);
	assert_non_null(b->data);
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_room(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void buf_drop(struct buf *b, size_t n)
{
	if (n == 0)
		return;
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){0};
}

/* len bytes of a pattern that differs from one call to the next */
static uint8_t *pattern(size_t len)
{
	static uint32_t x = 2463534242u;
	uint8_t *p = malloc(len ? len : 1);
	assert_non_null(p);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* One connection: a GnuTLS client, and on the other end of the socketpair our layer with
 * the state the server session had after its handshake. */
struct conn {
	const struct suite *suite;
	int fd[2]; /* [0]: the server's end, the layer's after the export; [1]: the client's */
	gnutls_session_t client;
	struct tls_record_state exported;
	struct tls_record rec;
	struct buf wire;  /* read from fd[0], not decrypted yet */
	struct buf plain; /* what the layer decrypted */
	struct buf got;   /* what the client received */
};

struct conn_opts {
	size_t client_max_size;      /* gnutls_record_set_max_size on the client (0: not set) */
	const char *early;           /* sent by the client as soon as its handshake is done, before
	                              * the server has read its Finished */
	bool no_secrets;             /* the secret function is not installed: the export must fail */
	const char *client_priority; /* the client's, when not the suite's */
};

static void check_gnutls(int r, const char *what)
{
	if (r < 0)
		fail_msg("%s: %s", what, gnutls_strerror(r));
}

static gnutls_session_t session_new(unsigned flags, const char *priority, int fd)
{
	gnutls_session_t s;
	check_gnutls(gnutls_init(&s, flags | GNUTLS_NONBLOCK), "gnutls_init");
	check_gnutls(gnutls_priority_set_direct(s, priority, NULL), priority);
	check_gnutls(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE,
	                                    flags & GNUTLS_SERVER ? server_cred : client_cred),
	             "gnutls_credentials_set");
	if (fd >= 0)
		gnutls_transport_set_int(s, fd);
	return s;
}

/* Both sides' handshakes, one step each in turn, until both are done. */
static void handshake_both(gnutls_session_t client, gnutls_session_t server, const char *early)
{
	bool client_done = false, server_done = false;
	for (int steps = 0; !client_done || !server_done; steps++) {
		assert_true(steps < 1000);
		if (!client_done) {
			int r = gnutls_handshake(client);
			if (r == 0) {
				client_done = true;
				if (early)
					assert_int_equal(gnutls_record_send(client, early, strlen(early)),
					                 (ssize_t)strlen(early));
			} else if (r != GNUTLS_E_AGAIN) {
				check_gnutls(r, "client handshake");
			}
		}
		if (!server_done) {
			int r = gnutls_handshake(server);
			if (r == 0)
				server_done = true;
			else if (r != GNUTLS_E_AGAIN)
				check_gnutls(r, "server handshake");
		}
	}
}

static void conn_open(struct conn *c, const struct suite *suite, const struct conn_opts *opts)
{
	static const struct conn_opts none;
	struct tls_record_secrets secrets = {0};
	const char *why = NULL;

	if (!opts)
		opts = &none;
	memset(c, 0, sizeof(*c));
	c->suite = suite;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, c->fd), 0);
	gnutls_session_t server = session_new(GNUTLS_SERVER, suite->priority, c->fd[0]);
	check_gnutls(gnutls_session_ticket_enable_server(server, &ticket_key), "tickets");
	c->client = session_new(GNUTLS_CLIENT,
	                        opts->client_priority ? opts->client_priority : suite->priority, c->fd[1]);
	if (opts->client_max_size)
		check_gnutls((int)gnutls_record_set_max_size(c->client, opts->client_max_size), "max size");
	if (!opts->no_secrets)
		tls_record_secrets_install(server, &secrets);
	handshake_both(c->client, server, opts->early);

	int r = tls_record_state_export(server, &secrets, &c->exported, &why);
	gnutls_deinit(server); /* never gnutls_bye: its records are the layer's now */
	if (opts->no_secrets) {
		assert_int_equal(r, -1);
		assert_non_null(strstr(why, "tls_record_secrets_install"));
		return;
	}
	if (r < 0)
		fail_msg("export: %s", why);
	assert_int_equal(c->exported.version, suite->version);
	assert_int_equal(c->exported.cipher, suite->cipher);
	assert_int_equal(c->exported.hash, suite->hash);
	assert_int_equal(c->exported.max_plaintext, TLS_RECORD_PLAINTEXT_MAX);
	assert_int_equal(tls_record_init(&c->rec, &c->exported, &why), 0);
}

static void conn_close(struct conn *c)
{
	tls_record_deinit(&c->rec);
	if (c->client)
		gnutls_deinit(c->client);
	close(c->fd[0]);
	close(c->fd[1]);
	buf_free(&c->wire);
	buf_free(&c->plain);
	buf_free(&c->got);
}

/* Everything the client sent so far, into c->wire. */
static void wire_fill(struct conn *c)
{
	for (;;) {
		buf_room(&c->wire, 65536);
		ssize_t n = read(c->fd[0], c->wire.data + c->wire.len, c->wire.cap - c->wire.len);
		if (n < 0 && errno == EAGAIN)
			return;
		assert_true(n > 0);
		c->wire.len += (size_t)n;
	}
}

/* The layer reads what the client sent: the last decrypt result. */
static enum tls_record_result layer_read(struct conn *c)
{
	wire_fill(c);
	for (;;) {
		size_t used;
		buf_room(&c->plain, TLS_RECORD_DECRYPT_ROOM);
		enum tls_record_result r = tls_record_decrypt(&c->rec, c->wire.data, c->wire.len, &used,
		                                              c->plain.data, c->plain.cap, &c->plain.len);
		assert_true(used <= c->wire.len);
		buf_drop(&c->wire, used);
		if (r == TLS_RECORD_NEED_MORE)
			assert_true(c->wire.len < TLS_RECORD_PARTIAL_MAX);
		if (r != TLS_RECORD_OUT_FULL)
			return r;
	}
}

static void client_send(struct conn *c, const void *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = gnutls_record_send(c->client, (const uint8_t *)data + off, len - off);
		if (n == GNUTLS_E_AGAIN) {
			wire_fill(c); /* the socket is full: the server side reads */
			continue;
		}
		check_gnutls((int)n, "gnutls_record_send");
		off += (size_t)n;
	}
}

/* The client reads all it can into c->got: 1 when it would block, 0 at EOF, or GnuTLS's
 * error. */
static int client_read(struct conn *c)
{
	for (;;) {
		int unread = 0;
		buf_room(&c->got, 65536);
		ssize_t n = gnutls_record_recv(c->client, c->got.data + c->got.len, c->got.cap - c->got.len);
		/* GnuTLS says "again" after a post-handshake message (a session ticket, a
		 * KeyUpdate) too, with more in the socket */
		if (n == GNUTLS_E_AGAIN && ioctl(c->fd[1], FIONREAD, &unread) == 0 && unread > 0)
			continue;
		if (n == GNUTLS_E_AGAIN)
			return 1;
		if (n <= 0)
			return (int)n;
		c->got.len += (size_t)n;
	}
}

/* Writes bytes the layer made to the client's socket, letting the client read whenever
 * the socket is full. */
static void layer_write(struct conn *c, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(c->fd[0], p, len);
		if (n < 0 && errno == EAGAIN) {
			assert_int_equal(client_read(c), 1);
			continue;
		}
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void layer_send(struct conn *c, const void *data, size_t len)
{
	size_t size = tls_record_encrypted_size(&c->rec, len), out_len = 0;
	uint8_t *out = malloc(size);
	assert_non_null(out);
	assert_int_equal(tls_record_encrypt(&c->rec, data, len, out, size, &out_len), (ssize_t)len);
	assert_true(out_len <= size);
	layer_write(c, out, out_len);
	free(out);
}

/* The client reads until it has len bytes, which must be data. */
static void client_expect(struct conn *c, const void *data, size_t len)
{
	for (int tries = 0; c->got.len < len; tries++) {
		assert_true(tries < 1000);
		assert_int_equal(client_read(c), 1);
	}
	assert_int_equal(c->got.len, len);
	assert_memory_equal(c->got.data, data, len);
	c->got.len = 0;
}

/* The layer reads until it has len bytes, which must be data. */
static void layer_expect(struct conn *c, const void *data, size_t len)
{
	assert_int_equal(layer_read(c), TLS_RECORD_NEED_MORE);
	assert_int_equal(c->plain.len, len);
	assert_memory_equal(c->plain.data, data, len);
	c->plain.len = 0;
}

static const size_t sizes[] = {1, 100, 16383, 16384, 16385, 100 * 1024};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

/* The layer of c again, from its state with the client's record_size_limit applied. */
static void set_limit(struct conn *c, uint32_t record_size_limit, bool tls13_offered)
{
	struct tls_record_state s;
	const char *why;
	tls_record_state_get(&c->rec, &s);
	assert_int_equal(tls_record_state_limit(&s, record_size_limit, tls13_offered), 0);
	tls_record_deinit(&c->rec);
	assert_int_equal(tls_record_init(&c->rec, &s, &why), 0);
}

/* Data both ways, of every size, one message or many at once; what the client sent right
 * after its handshake, before the server read its Finished, is in the socket for the layer
 * (GnuTLS stopped at the record boundary). */
static void test_data_both_ways(void **state)
{
	const struct suite *suite = *state;
	const char *early = "sent before the server's handshake was over";
	struct conn c;
	conn_open(&c, suite, &(struct conn_opts){.early = early});
	layer_expect(&c, early, strlen(early));
	/* the session ticket GnuTLS sent (TLS 1.3) is counted in the exported sequence number */
	if (suite->version == TLS_RECORD_TLS13)
		assert_true(c.exported.dir[TLS_RECORD_WRITE].seq > 0);

	for (size_t i = 0; i < NSIZES; i++) {
		uint8_t *data = pattern(sizes[i]);
		client_send(&c, data, sizes[i]);
		layer_expect(&c, data, sizes[i]);
		layer_send(&c, data, sizes[i]);
		client_expect(&c, data, sizes[i]);
		free(data);
	}
	/* records cut at 16384: 100 KiB is 7 records */
	size_t overhead = suite->version == TLS_RECORD_TLS13              ? 5 + 1 + 16
	                  : suite->cipher == TLS_RECORD_CHACHA20_POLY1305 ? 5 + 16
	                                                                  : 5 + 8 + 16;
	assert_int_equal(tls_record_encrypted_size(&c.rec, 100 * 1024), 100 * 1024 + 7 * overhead);

	/* many records in one read, each way */
	struct buf all = {0};
	for (size_t i = 0; i < 50; i++) {
		uint8_t *data = pattern(i * 37 % 2000);
		buf_add(&all, data, i * 37 % 2000);
		client_send(&c, data, i * 37 % 2000);
		free(data);
	}
	layer_expect(&c, all.data, all.len);
	size_t piece = all.len / 50;
	for (size_t i = 0; i < 50; i++)
		layer_send(&c, all.data + i * piece, piece);
	client_expect(&c, all.data, piece * 50);
	buf_free(&all);
	conn_close(&c);
}

/* A small message of two records (in TLS 1.3 with the client's KeyUpdate between them),
 * its bytes split at every place, and fed one at a time. */
static void test_split_at_every_byte(void **state)
{
	const struct suite *suite = *state;
	const char *msg = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
	struct conn c;
	struct tls_record_state before;
	const char *why;

	conn_open(&c, suite, NULL);
	tls_record_state_get(&c.rec, &before);
	client_send(&c, msg, 10);
	if (suite->version == TLS_RECORD_TLS13)
		check_gnutls(gnutls_session_key_update(c.client, 0), "gnutls_session_key_update");
	client_send(&c, msg + 10, strlen(msg) - 10);
	wire_fill(&c);
	struct buf stream = {0};
	buf_add(&stream, c.wire.data, c.wire.len);

	uint8_t out[2 * TLS_RECORD_DECRYPT_ROOM];
	for (size_t k = 0; k <= stream.len; k++) {
		struct tls_record r;
		size_t used, out_len = 0;
		assert_int_equal(tls_record_init(&r, &before, &why), 0);
		assert_int_equal(tls_record_decrypt(&r, stream.data, k, &used, out, sizeof(out), &out_len),
		                 TLS_RECORD_NEED_MORE);
		size_t kept = k - used;
		struct buf rest = {0};
		buf_add(&rest, stream.data + used, kept);
		buf_add(&rest, stream.data + k, stream.len - k);
		assert_int_equal(
		    tls_record_decrypt(&r, rest.data, rest.len, &used, out, sizeof(out), &out_len),
		    TLS_RECORD_NEED_MORE);
		assert_int_equal(used, rest.len);
		assert_int_equal(out_len, strlen(msg));
		assert_memory_equal(out, msg, out_len);
		buf_free(&rest);
		tls_record_deinit(&r);
	}

	/* one byte at a time: the kept bytes grow, whole records go */
	struct tls_record r;
	struct buf pending = {0};
	size_t out_len = 0;
	assert_int_equal(tls_record_init(&r, &before, &why), 0);
	for (size_t k = 0; k < stream.len; k++) {
		size_t used;
		buf_add(&pending, stream.data + k, 1);
		assert_int_equal(
		    tls_record_decrypt(&r, pending.data, pending.len, &used, out, sizeof(out), &out_len),
		    TLS_RECORD_NEED_MORE);
		buf_drop(&pending, used);
	}
	assert_int_equal(pending.len, 0);
	assert_int_equal(out_len, strlen(msg));
	assert_memory_equal(out, msg, out_len);
	assert_int_equal(r.state.dir[TLS_RECORD_READ].key_updates,
	                 suite->version == TLS_RECORD_TLS13 ? 1 : 0);
	assert_false(tls_record_key_update_owed(&r));
	tls_record_deinit(&r);
	buf_free(&pending);
	buf_free(&stream);
	conn_close(&c);
}

/* TLS 1.3: the client's KeyUpdate (asking for ours) is followed, ours is sent first thing,
 * ours asking for the client's too; then the state after them, handed to a new layer, goes
 * on, and the keys of the first state advanced by the counts are the same. */
static void test_key_update(void **state)
{
	const struct suite *suite = *state;
	struct conn c;
	struct tls_record_state now, derived;
	const char *why;

	conn_open(&c, suite, NULL);
	check_gnutls(gnutls_session_key_update(c.client, GNUTLS_KU_PEER), "gnutls_session_key_update");
	client_send(&c, "after the update", 16);
	layer_expect(&c, "after the update", 16);
	tls_record_state_get(&c.rec, &now);
	assert_int_equal(now.dir[TLS_RECORD_READ].key_updates, 1);
	assert_int_equal(now.dir[TLS_RECORD_READ].seq, 1);
	assert_true(tls_record_key_update_owed(&c.rec));
	assert_true(now.flags & TLS_RECORD_KEY_UPDATE_OWED);

	/* the answer goes before the next data, by itself */
	layer_send(&c, "reply", 5);
	client_expect(&c, "reply", 5);
	assert_false(tls_record_key_update_owed(&c.rec));
	assert_int_equal(c.rec.state.dir[TLS_RECORD_WRITE].key_updates, 1);
	assert_int_equal(c.rec.state.dir[TLS_RECORD_WRITE].seq, 1);

	/* ours, asking for one: GnuTLS answers with its next record */
	uint8_t ku[TLS_RECORD_KEY_UPDATE_SIZE];
	size_t ku_len = 0;
	assert_int_equal(tls_record_key_update(&c.rec, true, ku, sizeof(ku), &ku_len), 0);
	assert_int_equal(ku_len, TLS_RECORD_KEY_UPDATE_SIZE);
	layer_write(&c, ku, ku_len);
	layer_send(&c, "more", 4);
	client_expect(&c, "more", 4);
	client_send(&c, "answer", 6);
	layer_expect(&c, "answer", 6);
	assert_int_equal(c.rec.state.dir[TLS_RECORD_READ].key_updates, 2);
	assert_int_equal(c.rec.state.dir[TLS_RECORD_WRITE].key_updates, 2);
	assert_false(tls_record_key_update_owed(&c.rec));

	/* the state at the handoff, moved on by the counts, has today's keys */
	tls_record_state_get(&c.rec, &now);
	derived = c.exported;
	for (int d = 0; d < 2; d++) {
		assert_int_equal(tls_record_state_advance(&derived, d, now.dir[d].key_updates, &why), 0);
		derived.dir[d].seq = now.dir[d].seq;
	}
	assert_memory_equal(&derived, &now, sizeof(now));
	assert_int_equal(tls_record_state_advance(&derived, TLS_RECORD_READ, 1, &why), -1); /* backwards */

	/* a handoff after KeyUpdates: a new layer from the state goes on both ways */
	tls_record_deinit(&c.rec);
	assert_int_equal(tls_record_init(&c.rec, &now, &why), 0);
	client_send(&c, "to the new holder", 17);
	layer_expect(&c, "to the new holder", 17);
	layer_send(&c, "from the new holder", 19);
	client_expect(&c, "from the new holder", 19);
	conn_close(&c);
}

/* close_notify: the client's ends reading (the data before it delivered), ours is seen by
 * the client as the end. */
static void test_close_notify(void **state)
{
	const struct suite *suite = *state;
	struct conn c;
	uint8_t out[TLS_RECORD_ALERT_SIZE];
	size_t out_len = 0, used;

	conn_open(&c, suite, NULL);
	client_send(&c, "last words", 10);
	int r = gnutls_bye(c.client, GNUTLS_SHUT_WR);
	assert_true(r == 0 || r == GNUTLS_E_AGAIN);
	assert_int_equal(layer_read(&c), TLS_RECORD_EOF);
	assert_int_equal(c.plain.len, 10);
	assert_memory_equal(c.plain.data, "last words", 10);
	assert_int_equal(tls_record_alert_for(TLS_RECORD_EOF), -1);
	/* over: nothing more is read */
	assert_int_equal(tls_record_decrypt(&c.rec, (const uint8_t *)"\x17\x03\x03\x00\x20", 5, &used,
	                                    c.plain.data, c.plain.cap, &c.plain.len),
	                 TLS_RECORD_EOF);
	assert_int_equal(used, 0);

	layer_send(&c, "bye", 3);
	assert_int_equal(tls_record_alert(&c.rec, TLS_RECORD_ALERT_CLOSE_NOTIFY, out, sizeof(out), &out_len),
	                 0);
	layer_write(&c, out, out_len);
	assert_int_equal(client_read(&c), 0);
	assert_int_equal(c.got.len, 3);
	conn_close(&c);
}

/* A flipped byte anywhere in a record yields an error or a wait for more bytes, never data;
 * a good record before it is read. The alert named reaches the client. */
static void test_flipped_byte(void **state)
{
	const struct suite *suite = *state;
	struct conn c;
	struct tls_record_state before;
	const char *why;
	uint8_t out[2 * TLS_RECORD_DECRYPT_ROOM];

	conn_open(&c, suite, NULL);
	tls_record_state_get(&c.rec, &before);
	client_send(&c, "secret", 6);
	wire_fill(&c);
	struct buf record = {0};
	buf_add(&record, c.wire.data, c.wire.len);
	c.wire.len = 0;

	for (size_t i = 0; i < record.len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			struct tls_record r;
			size_t used, out_len = 0;
			record.data[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(tls_record_init(&r, &before, &why), 0);
			enum tls_record_result res = tls_record_decrypt(&r, record.data, record.len, &used,
			                                                out, sizeof(out), &out_len);
			record.data[i] ^= (uint8_t)(1 << bit);
			assert_int_equal(out_len, 0);
			assert_int_equal(used, 0);
			if (i == 3 || i == 4) /* the length: longer waits, shorter fails the tag */
				assert_true(res == TLS_RECORD_NEED_MORE || res == TLS_RECORD_BAD_RECORD_MAC ||
				            res == TLS_RECORD_OVERFLOW);
			else if (i == 0) /* the type */
				assert_true(res == TLS_RECORD_UNEXPECTED_MESSAGE ||
				            res == TLS_RECORD_BAD_RECORD_MAC);
			else
				assert_int_equal(res, TLS_RECORD_BAD_RECORD_MAC);
			tls_record_deinit(&r);
		}
	}

	/* the good record, then a bad one: the good one's data, then the error, for good */
	client_send(&c, "not read", 8);
	wire_fill(&c);
	c.wire.data[c.wire.len - 1] ^= 1;
	buf_add(&record, c.wire.data, c.wire.len);
	c.wire.len = 0;
	buf_add(&c.wire, record.data, record.len);
	tls_record_deinit(&c.rec);
	assert_int_equal(tls_record_init(&c.rec, &before, &why), 0);
	assert_int_equal(layer_read(&c), TLS_RECORD_BAD_RECORD_MAC);
	assert_int_equal(c.plain.len, 6);
	assert_memory_equal(c.plain.data, "secret", 6);
	assert_int_equal(layer_read(&c), TLS_RECORD_BAD_RECORD_MAC);
	assert_int_equal(tls_record_alert_for(TLS_RECORD_BAD_RECORD_MAC), GNUTLS_A_BAD_RECORD_MAC);

	size_t out_len = 0;
	assert_int_equal(tls_record_alert(&c.rec, GNUTLS_A_BAD_RECORD_MAC, out, sizeof(out), &out_len), 0);
	layer_write(&c, out, out_len);
	assert_int_equal(client_read(&c), GNUTLS_E_FATAL_ALERT_RECEIVED);
	assert_int_equal(gnutls_alert_get(c.client), GNUTLS_A_BAD_RECORD_MAC);
	buf_free(&record);
	conn_close(&c);
}

/* An alert other than close_notify from the client ends reading, and is not answered. */
static void test_peer_alert(void **state)
{
	const struct suite *suite = *state;
	struct conn c;

	conn_open(&c, suite, NULL);
	int r = gnutls_alert_send(c.client, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
	assert_true(r == 0 || r == GNUTLS_E_AGAIN);
	assert_int_equal(layer_read(&c), TLS_RECORD_PEER_ALERT);
	assert_int_equal(c.rec.peer_alert, GNUTLS_A_INTERNAL_ERROR);
	assert_int_equal(tls_record_alert_for(TLS_RECORD_PEER_ALERT), -1);
	conn_close(&c);
}

/* TLS 1.2: the client renegotiates (gnutls_handshake again on an established session, safe
 * renegotiation: both sides sent renegotiation_info): refused, with a no_renegotiation
 * warning; TLS 1.2 has no KeyUpdate either. */
static void test_renegotiation(void **state)
{
	const struct suite *suite = *state;
	struct conn c;
	uint8_t out[TLS_RECORD_ALERT_SIZE + TLS_RECORD_KEY_UPDATE_SIZE];
	size_t out_len = 0;

	conn_open(&c, suite, NULL);
	assert_true(gnutls_safe_renegotiation_status(c.client));
	assert_int_equal(gnutls_handshake(c.client), GNUTLS_E_AGAIN); /* its ClientHello is out */
	assert_int_equal(layer_read(&c), TLS_RECORD_RENEGOTIATION);
	assert_int_equal(c.plain.len, 0);
	assert_int_equal(tls_record_alert_for(TLS_RECORD_RENEGOTIATION), GNUTLS_A_NO_RENEGOTIATION);
	assert_int_equal(tls_record_alert(&c.rec, GNUTLS_A_NO_RENEGOTIATION, out, sizeof(out), &out_len), 0);
	layer_write(&c, out, out_len);
	assert_int_equal(gnutls_handshake(c.client), GNUTLS_E_WARNING_ALERT_RECEIVED);
	assert_int_equal(gnutls_alert_get(c.client), GNUTLS_A_NO_RENEGOTIATION);

	out_len = 0;
	assert_int_equal(tls_record_key_update(&c.rec, false, out, sizeof(out), &out_len), -1);
	assert_int_equal(out_len, 0);
	conn_close(&c);
}

/* The client's record size limit: GnuTLS advertises gnutls_record_set_max_size's value,
 * plus one for the content type when it can do TLS 1.3 (its record_size_limit code); with
 * it the layer's records fit, one byte more and the client refuses them. For TLS 1.2
 * suites, once more with a client that offered TLS 1.3 too: it advertises 513 and still
 * refuses a TLS 1.2 record of 513 bytes. */
static void test_record_size_limit(void **state)
{
	const struct suite *suite = *state;
	bool tls13 = suite->version == TLS_RECORD_TLS13;
	uint8_t *data = pattern(20000);

	for (int offered13 = tls13; offered13 < 2; offered13++) {
		struct conn c;
		uint32_t advertised = 512 + (offered13 ? 1 : 0);
		conn_open(&c, suite,
		          &(struct conn_opts){.client_max_size = 512,
		                              .client_priority = offered13 && !tls13 ? "NORMAL" : NULL});
		set_limit(&c, advertised, offered13);
		assert_int_equal(c.rec.state.max_plaintext, 512);
		layer_send(&c, data, 20000);
		client_expect(&c, data, 20000);
		/* one byte more: for a TLS 1.2 client that offered TLS 1.3, the RFC's own reading
		 * of its 513 */
		set_limit(&c, tls13 ? 514 : 513, false);
		assert_int_equal(c.rec.state.max_plaintext, 513);
		layer_send(&c, data, 20000);
		assert_int_equal(client_read(&c), GNUTLS_E_RECORD_OVERFLOW);
		conn_close(&c);
	}
	free(data);

	struct tls_record_state s;
	memset(&s, 0, sizeof(s));
	s.version = suite->version;
	assert_int_equal(tls_record_state_limit(&s, 63, false), -1);
	assert_int_equal(tls_record_state_limit(&s, 64, false), 0);
	assert_int_equal(s.max_plaintext, tls13 ? 63 : 64);
	assert_int_equal(tls_record_state_limit(&s, 64, true), 0);
	assert_int_equal(s.max_plaintext, 63);
	assert_int_equal(tls_record_state_limit(&s, 16384, false), 0);
	assert_int_equal(s.max_plaintext, tls13 ? 16383 : 16384);
	assert_int_equal(tls_record_state_limit(&s, 16385, true), 0);
	assert_int_equal(s.max_plaintext, 16384);
	assert_int_equal(tls_record_state_limit(&s, 65535, false), 0);
	assert_int_equal(s.max_plaintext, 16384);
}

/* Sequence numbers at their limits, set on both sides (gnutls_record_set_state): TLS 1.3
 * changes keys by itself at TLS_RECORD_REKEY_AT; TLS 1.2 stops before wrapping. */
static void test_sequence_limits(void **state)
{
	const struct suite *suite = *state;
	struct conn c;
	const char *why;
	uint8_t seq[8];

	conn_open(&c, suite, NULL);
	assert_int_equal(client_read(&c), 1); /* the session tickets, sent at the old numbers */
	assert_int_equal(c.got.len, 0);
	struct tls_record_state s;
	tls_record_state_get(&c.rec, &s);
	uint64_t start = suite->version == TLS_RECORD_TLS13 ? TLS_RECORD_REKEY_AT - 2 : UINT64_MAX - 2;
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(start >> (56 - 8 * i));
	check_gnutls(gnutls_record_set_state(c.client, 1, seq), "gnutls_record_set_state");
	s.dir[TLS_RECORD_WRITE].seq = start;
	tls_record_deinit(&c.rec);
	assert_int_equal(tls_record_init(&c.rec, &s, &why), 0);

	layer_send(&c, "one", 3);
	layer_send(&c, "two", 3);
	client_expect(&c, "onetwo", 6);
	if (suite->version == TLS_RECORD_TLS13) {
		layer_send(&c, "three", 5); /* a KeyUpdate first */
		client_expect(&c, "three", 5);
		assert_int_equal(c.rec.state.dir[TLS_RECORD_WRITE].key_updates, 1);
		assert_int_equal(c.rec.state.dir[TLS_RECORD_WRITE].seq, 1);
	} else {
		uint8_t out[64];
		size_t out_len = 0;
		assert_int_equal(tls_record_encrypt(&c.rec, "three", 5, out, sizeof(out), &out_len), -1);
		assert_int_equal(tls_record_alert(&c.rec, 0, out, sizeof(out), &out_len), -1);
	}
	conn_close(&c);
}

/* States that must not be used: the checks of tls_record_init; an export without the
 * secret function. */
static void test_state_checks(void **state)
{
	const struct suite *suite = *state;
	struct conn c;
	struct tls_record r;
	const char *why;

	conn_open(&c, suite, NULL);
	struct tls_record_state good = c.exported, s;
	assert_int_equal(tls_record_state_check(&good, &why), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tls_record_init(&r, &s, &why), -1);
	assert_non_null(why);
#define BAD(change)                                                                                          \
	do {                                                                                                 \
		s = good;                                                                                    \
		change;                                                                                      \
		assert_int_equal(tls_record_init(&r, &s, &why), -1);                                         \
	} while (0)
	BAD(s.version = 0x0302);
	BAD(s.cipher = 4);
	BAD(s.hash = 3);
	BAD(s.max_plaintext = 16385);
	BAD(s.max_plaintext = 0);
	BAD(s.reserved = 1);
	BAD(s.flags = 2);
	BAD(s.dir[TLS_RECORD_READ].key_len = 24);
	BAD(s.dir[TLS_RECORD_WRITE].iv_len = 8);
	BAD(s.dir[TLS_RECORD_WRITE].reserved = 1);
	BAD(s.dir[TLS_RECORD_READ].secret[47] = 1; s.dir[TLS_RECORD_READ].secret_len = 0);
	if (suite->version == TLS_RECORD_TLS13) {
		BAD(s.dir[TLS_RECORD_READ].secret_len = 0);
	} else {
		BAD(s.flags = TLS_RECORD_KEY_UPDATE_OWED);
		BAD(s.dir[TLS_RECORD_READ].key_updates = 1);
		assert_int_equal(tls_record_state_advance(&s, TLS_RECORD_READ, 1, &why), -1);
	}
#undef BAD
	s = good;
	if (suite->version == TLS_RECORD_TLS13)
		assert_int_equal(
		    tls_record_state_advance(&s, TLS_RECORD_READ, TLS_RECORD_ADVANCE_MAX + 1, &why), -1);
	conn_close(&c);

	if (suite->version == TLS_RECORD_TLS13) {
		conn_open(&c, suite, &(struct conn_opts){.no_secrets = true});
		conn_close(&c);
	}
}

/* Instructions counted in user space by the kernel, when it lets us (-1 otherwise). */
static int counter_open(void)
{
	struct perf_event_attr attr = {
	    .type = PERF_TYPE_HARDWARE,
	    .size = sizeof(attr),
	    .config = PERF_COUNT_HW_INSTRUCTIONS,
	    .disabled = 1,
	    .exclude_kernel = 1,
	    .exclude_hv = 1,
	};
	return (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
}

static uint64_t counter_read(int fd)
{
	uint64_t v = 0;
	if (fd >= 0 && read(fd, &v, sizeof(v)) != sizeof(v))
		v = 0;
	return v;
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* A byte queue in memory standing for the socket in the benchmark (no system calls). */
struct memq {
	struct buf b;
	size_t off;
};

static ssize_t memq_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct memq *q = p;
	if (q->off == q->b.len)
		q->off = q->b.len = 0;
	buf_add(&q->b, data, len);
	return (ssize_t)len;
}

static ssize_t memq_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct memq *q = p;
	if (q->off == q->b.len) {
		errno = EAGAIN;
		return -1;
	}
	if (len > q->b.len - q->off)
		len = q->b.len - q->off;
	memcpy(data, q->b.data + q->off, len);
	q->off += len;
	return (ssize_t)len;
}

/* per 16 KiB record: GnuTLS's gnutls_record_send on the server plus gnutls_record_recv on
 * the client, against our encrypt plus decrypt with the very keys they use, both through
 * the same in-memory queue */
static void test_bench(void **state)
{
	const struct suite *suite = *state;
#ifdef PS_SANITIZE
	const int records = 200;
#else
	const int records = 5000;
#endif
	struct memq to_client = {0}, to_server = {0};
	struct tls_record_secrets secrets;
	struct tls_record_state s, mirror;
	const char *why;

	gnutls_session_t server = session_new(GNUTLS_SERVER, suite->priority, -1);
	gnutls_session_t client = session_new(GNUTLS_CLIENT, suite->priority, -1);
	gnutls_transport_set_ptr2(server, &to_server, &to_client);
	gnutls_transport_set_ptr2(client, &to_client, &to_server);
	gnutls_transport_set_push_function(server, memq_push);
	gnutls_transport_set_pull_function(server, memq_pull);
	gnutls_transport_set_push_function(client, memq_push);
	gnutls_transport_set_pull_function(client, memq_pull);
	tls_record_secrets_install(server, &secrets);
	handshake_both(client, server, NULL);

	uint8_t *data = pattern(16384), *back = malloc(16384 + 1);
	size_t ctext_room = 16384 + 64;
	uint8_t *ctext = malloc(ctext_room);
	assert_non_null(back);
	assert_non_null(ctext);
	int counter = counter_open();
	double best_ns[2] = {1e30, 1e30};
	uint64_t best_ins[2] = {UINT64_MAX, UINT64_MAX};

	/* GnuTLS: its own sessions */
	for (int round = 0; round < 3; round++) {
		if (counter >= 0) {
			ioctl(counter, PERF_EVENT_IOC_RESET, 0);
			ioctl(counter, PERF_EVENT_IOC_ENABLE, 0);
		}
		double t0 = now_ns();
		for (int i = 0; i < records; i++) {
			assert_int_equal(gnutls_record_send(server, data, 16384), 16384);
			assert_int_equal(gnutls_record_recv(client, back, 16384), 16384);
		}
		double t = now_ns() - t0;
		if (counter >= 0)
			ioctl(counter, PERF_EVENT_IOC_DISABLE, 0);
		uint64_t ins = counter_read(counter);
		best_ns[0] = t < best_ns[0] ? t : best_ns[0];
		best_ins[0] = ins < best_ins[0] ? ins : best_ins[0];
	}
	assert_memory_equal(back, data, 16384);

	/* ours: the server's write state now, and its mirror for the client's reading */
	assert_int_equal(tls_record_state_export(server, &secrets, &s, &why), 0);
	mirror = s;
	mirror.dir[TLS_RECORD_READ] = s.dir[TLS_RECORD_WRITE];
	mirror.dir[TLS_RECORD_WRITE] = s.dir[TLS_RECORD_READ];
	struct tls_record w, r;
	assert_int_equal(tls_record_init(&w, &s, &why), 0);
	assert_int_equal(tls_record_init(&r, &mirror, &why), 0);
	for (int round = 0; round < 3; round++) {
		if (counter >= 0) {
			ioctl(counter, PERF_EVENT_IOC_RESET, 0);
			ioctl(counter, PERF_EVENT_IOC_ENABLE, 0);
		}
		double t0 = now_ns();
		for (int i = 0; i < records; i++) {
			size_t len = 0, used, back_len = 0;
			assert_int_equal(tls_record_encrypt(&w, data, 16384, ctext, ctext_room, &len), 16384);
			memq_push(&to_client, ctext, len);
			assert_int_equal(memq_pull(&to_client, ctext, ctext_room), (ssize_t)len);
			assert_int_equal(
			    tls_record_decrypt(&r, ctext, len, &used, back, 16384 + 1, &back_len),
			    TLS_RECORD_NEED_MORE);
			assert_int_equal(back_len, 16384);
		}
		double t = now_ns() - t0;
		if (counter >= 0)
			ioctl(counter, PERF_EVENT_IOC_DISABLE, 0);
		uint64_t ins = counter_read(counter);
		best_ns[1] = t < best_ns[1] ? t : best_ns[1];
		best_ins[1] = ins < best_ins[1] ? ins : best_ins[1];
	}
	assert_memory_equal(back, data, 16384);
	char ins_text[2][48] = {"n/a", "n/a"};
	for (int k = 0; k < 2 && counter >= 0; k++)
		snprintf(ins_text[k], sizeof(ins_text[k]), "%.0f instructions",
		         (double)best_ins[k] / records);
	printf("bench %-38s per 16 KiB record sealed and opened: GnuTLS record_send+recv %6.0f ns, %s; "
	       "tls_record encrypt+decrypt %6.0f ns, %s (%d records, best of 3)\n",
	       suite->name, best_ns[0] / records, ins_text[0], best_ns[1] / records, ins_text[1], records);
	if (counter >= 0)
		close(counter);
	tls_record_deinit(&w);
	tls_record_deinit(&r);
	free(data);
	free(back);
	free(ctext);
	gnutls_deinit(server);
	gnutls_deinit(client);
	buf_free(&to_client.b);
	buf_free(&to_server.b);
}

static int group_setup(void **state)
{
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	static const unsigned char serial[] = {1};
	time_t now = time(NULL);

	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
	                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 86400) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9) < 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&server_cred) < 0 ||
	    gnutls_certificate_allocate_credentials(&client_cred) < 0 ||
	    gnutls_certificate_set_x509_key(server_cred, &crt, 1, key) < 0 ||
	    gnutls_session_ticket_key_generate(&ticket_key) < 0)
		return -1;
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	return 0;
}

static int group_teardown(void **state)
{
	gnutls_certificate_free_credentials(server_cred);
	gnutls_certificate_free_credentials(client_cred);
	gnutls_free(ticket_key.data);
	return 0;
}

int main(void)
{
	static const struct {
		const char *name;
		CMUnitTestFunction f;
		bool tls13_only, tls12_only;
	} cases[] = {
	    {"data both ways", test_data_both_ways, false, false},
	    {"split at every byte", test_split_at_every_byte, false, false},
	    {"key update", test_key_update, true, false},
	    {"close_notify", test_close_notify, false, false},
	    {"flipped byte", test_flipped_byte, false, false},
	    {"peer alert", test_peer_alert, false, false},
	    {"renegotiation", test_renegotiation, false, true},
	    {"record size limit", test_record_size_limit, false, false},
	    {"sequence limits", test_sequence_limits, false, false},
	    {"state checks", test_state_checks, false, false},
	    {"bench", test_bench, false, false},
	};
	static struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0]) * NSUITES];
	static char names[sizeof(cases) / sizeof(cases[0]) * NSUITES][96];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k < NSUITES; k++) {
			bool tls13 = suites[k].version == TLS_RECORD_TLS13;
			if ((cases[i].tls13_only && !tls13) || (cases[i].tls12_only && tls13))
				continue;
			snprintf(names[n], sizeof(names[n]), "%s: %s", cases[i].name, suites[k].name);
			tests[n] = (struct CMUnitTest){
			    .name = names[n], .test_func = cases[i].f, .initial_state = (void *)&suites[k]};
			n++;
		}
	}
	return _cmocka_run_group_tests("tls_record", tests, n, group_setup, group_teardown);
}
