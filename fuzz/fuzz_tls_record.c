/* fuzz_tls_record.c: libFuzzer target for the reading side of the TLS record layer
 * (tls_record_decrypt in src/common/tls_record.c), with fixed keys. Random bytes rarely get
 * past an AEAD tag, so the input describes a stream of chunks: raw bytes, records sealed
 * here by a small sealer written apart from the layer (RFC 8446 §5.2, RFC 5288, RFC 7905:
 * any type, content and padding) with the reader's keys of the moment, records written by
 * the layer's own tls_record_encrypt, and KeyUpdate messages. Alerts, KeyUpdates, odd inner
 * plaintexts and oversized records thus reach the code behind the tag.
 *
 * The stream is read three ways: chunk by chunk as it is built, at once, and in pieces of
 * sizes chosen by the input with little output room; all three must end with the same
 * data, result, bytes consumed and state. Each call's contract is checked (whole records
 * consumed, a kept partial record below TLS_RECORD_PARTIAL_MAX, OUT_FULL only when the
 * next record's plaintext does not fit, an ended reader stays ended). What a sealed record
 * does to a reader that was between records is checked against a model of RFC 8446 §5,
 * §4.6.3 and §6 (and RFC 5246 for TLS 1.2) written from the RFCs.
 *
 * Input: a control byte (bits 0-2: the suite, mod 6; bit 3: start the read sequence number
 * just below 2^64; bits 4-7: the piece sizes), then chunks of an op byte (bits 0-1: the
 * kind; bits 2-7: a count N), a length byte and that many bytes:
 *   0 raw: the bytes as they are;
 *   1 sealed: bytes[0] is the type (TLS 1.3: the inner type), the rest the content, then
 *     N * 300 zero bytes (TLS 1.3: padding after the type; TLS 1.2: more content);
 *   2 ours: the bytes repeated N + 1 times through tls_record_encrypt;
 *   3 KeyUpdate: a sealed handshake record with the message 24 0 0 1 (N & 3), then the
 *     bytes as more of the record (a KeyUpdate not alone in its record) when there are any. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_record.h"

#include "fuzz_check.h"

#define TAG_LEN 16

struct stream {
	uint8_t *data;
	size_t len, cap;
};

/* Never a null pointer, even empty (memcpy and memcmp want none). */
static struct stream stream_new(void)
{
	struct stream s = {.data = malloc(1), .cap = 1};
	FUZZ_CHECK(s.data != NULL);
	return s;
}

static void stream_add(struct stream *s, const void *p, size_t n)
{
	if (s->cap - s->len < n) {
		s->cap = (s->len + n) * 2;
		s->data = realloc(s->data, s->cap);
		FUZZ_CHECK(s->data != NULL);
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

static void stream_zeros(struct stream *s, size_t n)
{
	static const uint8_t zero[512];
	for (size_t k; n > 0; n -= k) {
		k = n < sizeof(zero) ? n : sizeof(zero);
		stream_add(s, zero, k);
	}
}

/* The fixed state: one of the six suites, keys of repeated bytes. */
static void state_make(uint8_t control, struct tls_record_state *s)
{
	static const struct {
		uint16_t version;
		uint8_t cipher, hash;
	} suites[6] = {
	    {TLS_RECORD_TLS13, TLS_RECORD_AES_128_GCM, TLS_RECORD_SHA256},
	    {TLS_RECORD_TLS13, TLS_RECORD_AES_256_GCM, TLS_RECORD_SHA384},
	    {TLS_RECORD_TLS13, TLS_RECORD_CHACHA20_POLY1305, TLS_RECORD_SHA256},
	    {TLS_RECORD_TLS12, TLS_RECORD_AES_128_GCM, TLS_RECORD_SHA256},
	    {TLS_RECORD_TLS12, TLS_RECORD_AES_256_GCM, TLS_RECORD_SHA384},
	    {TLS_RECORD_TLS12, TLS_RECORD_CHACHA20_POLY1305, TLS_RECORD_SHA256},
	};
	unsigned i = (control & 7) % 6;
	bool tls13 = suites[i].version == TLS_RECORD_TLS13;

	memset(s, 0, sizeof(*s));
	s->version = suites[i].version;
	s->cipher = suites[i].cipher;
	s->hash = suites[i].hash;
	s->max_plaintext = TLS_RECORD_PLAINTEXT_MAX;
	for (int d = 0; d < 2; d++) {
		struct tls_record_keys *k = &s->dir[d];
		k->key_len = s->cipher == TLS_RECORD_AES_128_GCM ? 16 : 32;
		memset(k->key, 0x11 + d, k->key_len);
		k->iv_len = !tls13 && s->cipher != TLS_RECORD_CHACHA20_POLY1305 ? 4 : TLS_RECORD_IV_LEN;
		memset(k->iv, 0x22 + d, k->iv_len);
		if (tls13) {
			k->secret_len = s->hash == TLS_RECORD_SHA384 ? 48 : 32;
			memset(k->secret, 0x33 + d, k->secret_len);
		}
	}
	if (control & 8)
		s->dir[TLS_RECORD_READ].seq = UINT64_MAX - 3;
}

/* The reference sealer: one record of type with content[0, n) and pad zero bytes, sealed
 * for a reader whose state is s, appended to out. TLS 1.2 GCM's explicit nonce is the
 * sequence number inverted (any unique value will do; the layer's own writer uses the
 * number itself), so the reader must take it from the record. */
static void seal_ref(const struct tls_record_state *s, uint8_t type, const uint8_t *content, size_t n,
                     size_t pad, struct stream *out)
{
	const struct tls_record_keys *k = &s->dir[TLS_RECORD_READ];
	bool tls13 = s->version == TLS_RECORD_TLS13;
	size_t explicit_len = !tls13 && s->cipher != TLS_RECORD_CHACHA20_POLY1305 ? 8 : 0;
	size_t inner_len = n + (tls13 ? 1 : 0) + pad, body_len = explicit_len + inner_len + TAG_LEN;
	uint8_t *inner = calloc(1, inner_len + 1), *rec = malloc(5 + body_len);
	uint8_t nonce[12], aad[13], seq[8];
	FUZZ_CHECK(inner != NULL && rec != NULL && body_len <= 0xffff);

	memcpy(inner, content, n);
	if (tls13)
		inner[n] = type;
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(k->seq >> (56 - 8 * i));
	rec[0] = tls13 ? 23 : type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)(body_len >> 8);
	rec[4] = (uint8_t)body_len;
	if (explicit_len) {
		memcpy(nonce, k->iv, 4);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] = rec[5 + i] = (uint8_t)~seq[i];
	} else {
		memcpy(nonce, k->iv, 12);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= seq[i];
	}
	memcpy(aad, seq, 8);
	aad[8] = type;
	aad[9] = 3;
	aad[10] = 3;
	aad[11] = (uint8_t)(inner_len >> 8);
	aad[12] = (uint8_t)inner_len;

	gnutls_aead_cipher_hd_t h;
	gnutls_datum_t key = {.data = (uint8_t *)k->key, .size = k->key_len};
	gnutls_cipher_algorithm_t alg = s->cipher == TLS_RECORD_AES_128_GCM ? GNUTLS_CIPHER_AES_128_GCM
	                                : s->cipher == TLS_RECORD_AES_256_GCM
	                                    ? GNUTLS_CIPHER_AES_256_GCM
	                                    : GNUTLS_CIPHER_CHACHA20_POLY1305;
	size_t ctext_len = inner_len + TAG_LEN;
	FUZZ_CHECK(gnutls_aead_cipher_init(&h, alg, &key) == 0);
	FUZZ_CHECK(gnutls_aead_cipher_encrypt(h, nonce, 12, tls13 ? rec : aad, tls13 ? 5 : 13, TAG_LEN, inner,
	                                      inner_len, rec + 5 + explicit_len, &ctext_len) == 0);
	gnutls_aead_cipher_deinit(h);
	stream_add(out, rec, 5 + body_len);
	free(inner);
	free(rec);
}

/* What the model expects of one sealed record read by a reader between records. */
struct expect {
	enum tls_record_result result;
	const uint8_t *data; /* the application data it adds */
	size_t data_len;
	int key_update; /* -1: none; else the request_update of a KeyUpdate followed */
};

static void model_content(bool tls13, uint8_t type, const uint8_t *c, size_t n, struct expect *e)
{
	e->result = TLS_RECORD_NEED_MORE;
	e->key_update = -1;
	if (type == 23) { /* application_data */
		e->data = c;
		e->data_len = n;
	} else if (type == 21) { /* alert: exactly level and description */
		e->result = n != 2      ? TLS_RECORD_DECODE_ERROR
		            : c[1] == 0 ? TLS_RECORD_EOF
		                        : TLS_RECORD_PEER_ALERT;
	} else if (type == 22 && !tls13) {
		e->result = TLS_RECORD_RENEGOTIATION;
	} else if (type == 22) { /* KeyUpdate only, whole, ending its record */
		if (n < 4 || c[0] != 24)
			e->result = TLS_RECORD_UNEXPECTED_MESSAGE;
		else if (c[1] || c[2] || c[3] != 1)
			e->result = TLS_RECORD_DECODE_ERROR;
		else if (n != 5)
			e->result = TLS_RECORD_UNEXPECTED_MESSAGE;
		else if (c[4] > 1)
			e->result = TLS_RECORD_ILLEGAL_PARAMETER;
		else
			e->key_update = c[4];
	} else {
		e->result = TLS_RECORD_UNEXPECTED_MESSAGE;
	}
}

static void model(const struct tls_record_state *s, uint8_t type, const uint8_t *content, size_t n,
                  size_t pad, struct expect *e)
{
	bool tls13 = s->version == TLS_RECORD_TLS13;
	size_t inner_len = n + (tls13 ? 1 : 0) + pad;

	memset(e, 0, sizeof(*e));
	e->key_update = -1;
	if (!tls13 && (type < 21 || type > 23)) {
		e->result = TLS_RECORD_UNEXPECTED_MESSAGE;
		return;
	}
	/* RFC 8446 §5.4: TLSInnerPlaintext at most 2^14 + 1; RFC 5246 §6.2.3: 2^14 */
	if (inner_len > 16384 + (tls13 ? 1 : 0)) {
		e->result = TLS_RECORD_OVERFLOW;
		return;
	}
	if (s->dir[TLS_RECORD_READ].seq == UINT64_MAX) {
		e->result = TLS_RECORD_INTERNAL_ERROR;
		return;
	}
	if (tls13 && type == 0) {
		/* the padding reaches into the content: the type is its last non-zero byte */
		while (n > 0 && content[n - 1] == 0)
			n--;
		if (n == 0) {
			e->result = TLS_RECORD_UNEXPECTED_MESSAGE;
			return;
		}
		type = content[--n];
	}
	model_content(tls13, type, content, n, e);
}

/* A reader and what it has done with the stream. */
struct reader {
	struct tls_record r;
	struct stream data;
	size_t consumed;
	enum tls_record_result last;
};

static void reader_init(struct reader *rd, const struct tls_record_state *s)
{
	const char *why;
	memset(rd, 0, sizeof(*rd));
	rd->data = stream_new();
	FUZZ_CHECK(tls_record_init(&rd->r, s, &why) == 0);
}

static bool ended(enum tls_record_result r)
{
	return r != TLS_RECORD_NEED_MORE && r != TLS_RECORD_OUT_FULL;
}

/* One call with in[0, len) and room for room bytes more of data; checks its contract. */
static enum tls_record_result reader_call(struct reader *rd, const uint8_t *in, size_t len, size_t room,
                                          size_t *used)
{
	size_t out_len = 0;
	uint8_t *out = malloc(room ? room : 1); /* exact: ASan sees a write past it */
	bool was_ended = rd->r.read_end != 0;
	FUZZ_CHECK(out != NULL);
	enum tls_record_result res = tls_record_decrypt(&rd->r, in, len, used, out, room, &out_len);
	FUZZ_CHECK(*used <= len && out_len <= room && out_len <= *used);
	FUZZ_CHECK(tls_record_result_str(res) != NULL);
	if (was_ended)
		FUZZ_CHECK(res == rd->last && *used == 0 && out_len == 0);
	if (res == TLS_RECORD_NEED_MORE) {
		size_t kept = len - *used;
		FUZZ_CHECK(kept < TLS_RECORD_PARTIAL_MAX);
		if (kept >= 5)
			FUZZ_CHECK(kept < 5 + ((size_t)in[*used + 3] << 8 | in[*used + 4]));
	} else if (res == TLS_RECORD_OUT_FULL) {
		/* a whole header is there, and its record's plaintext would not fit */
		FUZZ_CHECK(len - *used >= 5);
		size_t body = (size_t)in[*used + 3] << 8 | in[*used + 4];
		FUZZ_CHECK(room - out_len < body && room - out_len < TLS_RECORD_DECRYPT_ROOM);
	} else {
		FUZZ_CHECK(rd->r.read_end == (int)res);
		FUZZ_CHECK((tls_record_alert_for(res) == -1) ==
		           (res == TLS_RECORD_EOF || res == TLS_RECORD_PEER_ALERT));
	}
	stream_add(&rd->data, out, out_len);
	rd->consumed += *used;
	rd->last = res;
	free(out);
	return res;
}

/* Reads what is left of in[rd->consumed, len) with all the room it may need. */
static void reader_feed(struct reader *rd, const uint8_t *in, size_t len)
{
	size_t used;
	reader_call(rd, in + rd->consumed, len - rd->consumed, len + TLS_RECORD_DECRYPT_ROOM, &used);
}

static void reader_same(struct reader *a, struct reader *b)
{
	struct tls_record_state sa, sb;
	const char *why;
	FUZZ_CHECK(a->last == b->last && a->consumed == b->consumed);
	FUZZ_CHECK(a->data.len == b->data.len && memcmp(a->data.data, b->data.data, a->data.len) == 0);
	tls_record_state_get(&a->r, &sa);
	tls_record_state_get(&b->r, &sb);
	FUZZ_CHECK(memcmp(&sa, &sb, sizeof(sa)) == 0);
	FUZZ_CHECK(tls_record_state_check(&sa, &why) == 0);
	FUZZ_CHECK(a->r.peer_alert == b->r.peer_alert);
}

static void reader_free(struct reader *rd)
{
	tls_record_deinit(&rd->r);
	free(rd->data.data);
}

/* Chunk kind 2: the bytes through the layer's own writer, with the reader's read keys as
 * its write keys. */
static void seal_ours(const struct tls_record_state *reading, const uint8_t *p, size_t n, unsigned times,
                      struct stream *out, struct stream *expected)
{
	struct tls_record_state s = *reading;
	struct tls_record w;
	const char *why;
	s.dir[TLS_RECORD_WRITE] = reading->dir[TLS_RECORD_READ];
	s.flags = 0;
	FUZZ_CHECK(tls_record_init(&w, &s, &why) == 0);
	for (unsigned i = 0; i < times; i++)
		stream_add(expected, p, n);
	size_t room = tls_record_encrypted_size(&w, expected->len), len = 0;
	uint8_t *rec = malloc(room ? room : 1);
	FUZZ_CHECK(rec != NULL);
	ssize_t taken = tls_record_encrypt(&w, expected->data, expected->len, rec, room, &len);
	/* only an exhausted sequence number stops it */
	FUZZ_CHECK(taken == (ssize_t)expected->len ||
	           (taken == -1 && s.dir[TLS_RECORD_WRITE].seq >= UINT64_MAX - 3));
	stream_add(out, rec, len);
	free(rec);
	tls_record_deinit(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tls_record_state initial, now;
	struct reader built, whole, pieces;

	if (size < 1)
		return 0;
	struct stream stream = stream_new();
	uint8_t control = data[0];
	state_make(control, &initial);
	reader_init(&built, &initial);

	/* build the stream, reading each chunk as it comes */
	for (size_t pos = 1; pos + 2 <= size;) {
		uint8_t op = data[pos], kind = op & 3, count = op >> 2;
		size_t n = data[pos + 1];
		const uint8_t *p = data + pos + 2;
		if (n > size - pos - 2)
			n = size - pos - 2;
		pos += 2 + n;

		if (kind == 1 && n == 0)
			continue; /* no type: nothing to seal */
		bool between = built.consumed == stream.len && !built.r.read_end;
		struct expect e = {.result = TLS_RECORD_NEED_MORE, .key_update = -1};
		struct stream ours = stream_new(), content = stream_new();
		bool modelled = between;
		tls_record_state_get(&built.r, &now);
		if (kind == 0) {
			stream_add(&stream, p, n);
			modelled = false;
		} else if (kind == 1) {
			/* TLS 1.3 pads after the type; TLS 1.2 has no padding: more content */
			size_t pad = (size_t)count * 300;
			bool tls13 = now.version == TLS_RECORD_TLS13;
			stream_add(&content, p + 1, n - 1);
			if (!tls13)
				stream_zeros(&content, pad);
			model(&now, p[0], content.data, content.len, tls13 ? pad : 0, &e);
			seal_ref(&now, p[0], content.data, content.len, tls13 ? pad : 0, &stream);
		} else if (kind == 2) {
			seal_ours(&now, p, n, count + 1u, &stream, &ours);
			e.data = ours.data;
			e.data_len = ours.len;
			/* several records: near the end of the sequence numbers the model stops */
			modelled = between && now.dir[TLS_RECORD_READ].seq < UINT64_MAX - 64;
		} else {
			uint8_t *msg = malloc(5 + n);
			FUZZ_CHECK(msg != NULL);
			memcpy(msg, "\x18\x00\x00\x01", 4);
			msg[4] = count & 3;
			memcpy(msg + 5, p, n);
			model(&now, 22, msg, 5 + n, 0, &e);
			seal_ref(&now, 22, msg, 5 + n, 0, &stream);
			free(msg);
		}
		size_t data_before = built.data.len;
		reader_feed(&built, stream.data, stream.len);
		if (modelled) {
			FUZZ_CHECK(built.last == e.result);
			FUZZ_CHECK(built.data.len - data_before == e.data_len);
			FUZZ_CHECK(e.data_len == 0 ||
			           memcmp(built.data.data + data_before, e.data, e.data_len) == 0);
			if (e.result == TLS_RECORD_NEED_MORE || e.result == TLS_RECORD_EOF)
				FUZZ_CHECK(built.consumed == stream.len);
			if (e.key_update >= 0) {
				const struct tls_record_keys *k = &built.r.state.dir[TLS_RECORD_READ];
				FUZZ_CHECK(k->key_updates == now.dir[TLS_RECORD_READ].key_updates + 1 &&
				           k->seq == 0);
				FUZZ_CHECK(
				    memcmp(k->secret, now.dir[TLS_RECORD_READ].secret, k->secret_len) != 0);
				FUZZ_CHECK(tls_record_key_update_owed(&built.r) ==
				           (e.key_update == 1 || (now.flags & TLS_RECORD_KEY_UPDATE_OWED)));
			} else if (e.result == TLS_RECORD_NEED_MORE && kind == 1) {
				FUZZ_CHECK(built.r.state.dir[TLS_RECORD_READ].seq ==
				           now.dir[TLS_RECORD_READ].seq + 1);
			}
		}
		free(ours.data);
		free(content.data);
	}

	/* the same stream at once */
	reader_init(&whole, &initial);
	reader_feed(&whole, stream.data, stream.len);
	reader_same(&built, &whole);

	/* and in pieces, with output room that is often too small */
	uint32_t rnd = 0x9e3779b9u ^ control;
	size_t avail = 0;
	reader_init(&pieces, &initial);
	for (int calls = 0; calls < 100000; calls++) {
		rnd ^= rnd << 13;
		rnd ^= rnd >> 17;
		rnd ^= rnd << 5;
		size_t piece = 1 + rnd % (control >> 4 ? 64u << (control >> 4) % 8 : 7);
		avail = avail + piece < stream.len ? avail + piece : stream.len;
		size_t room = rnd >> 8 & 1 ? TLS_RECORD_DECRYPT_ROOM : (rnd >> 9) % 600;
		size_t used;
		enum tls_record_result res =
		    reader_call(&pieces, stream.data + pieces.consumed, avail - pieces.consumed, room, &used);
		if (ended(res) || (avail == stream.len && res == TLS_RECORD_NEED_MORE))
			break;
	}
	if (!ended(pieces.last))
		reader_feed(&pieces, stream.data, stream.len); /* the rest, if the loop ran out of calls */
	reader_same(&whole, &pieces);

	reader_free(&built);
	reader_free(&whole);
	reader_free(&pieces);
	free(stream.data);
	return 0;
}
