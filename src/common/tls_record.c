/* tls_record.c: the TLS record layer of a connection after its handshake (tls_record.h):
 * sealing and opening TLS 1.3 (RFC 8446 §5) and TLS 1.2 (RFC 5246 §6.2.3.3, RFC 5288,
 * RFC 7905) AEAD records with GnuTLS's AEAD API, KeyUpdate (RFC 8446 §4.6.3) with its
 * HKDF, alerts, and the export of a finished GnuTLS session into a plain state. */
#include "tls_record.h"

#include <string.h>

#define TAG_LEN 16
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPLICATION_DATA 23
#define HS_KEY_UPDATE 24
#define ALERT_WARNING 1
#define ALERT_FATAL 2
#define ALERT_UNEXPECTED_MESSAGE 10
#define ALERT_BAD_RECORD_MAC 20
#define ALERT_RECORD_OVERFLOW 22
#define ALERT_ILLEGAL_PARAMETER 47
#define ALERT_DECODE_ERROR 50
#define ALERT_INTERNAL_ERROR 80
#define ALERT_NO_RENEGOTIATION 100

_Static_assert(sizeof(struct tls_record_keys) == 112, "tls_record_keys: no padding, fixed size");
_Static_assert(sizeof(struct tls_record_state) == 232, "tls_record_state: no padding, fixed size");

static bool is_tls13(const struct tls_record_state *s)
{
	return s->version == TLS_RECORD_TLS13;
}

static size_t key_len_of(uint8_t cipher)
{
	return cipher == TLS_RECORD_AES_128_GCM ? 16 : 32;
}

static size_t hash_len_of(uint8_t hash)
{
	return hash == TLS_RECORD_SHA384 ? 48 : 32;
}

static gnutls_cipher_algorithm_t cipher_algorithm(uint8_t cipher)
{
	switch (cipher) {
	case TLS_RECORD_AES_128_GCM:
		return GNUTLS_CIPHER_AES_128_GCM;
	case TLS_RECORD_AES_256_GCM:
		return GNUTLS_CIPHER_AES_256_GCM;
	default:
		return GNUTLS_CIPHER_CHACHA20_POLY1305;
	}
}

/* TLS 1.2 GCM sends the nonce's last 8 bytes with each record (RFC 5288 §3). */
static size_t explicit_nonce_len(const struct tls_record_state *s)
{
	return !is_tls13(s) && s->cipher != TLS_RECORD_CHACHA20_POLY1305 ? 8 : 0;
}

/* Bytes a record adds to its content. */
static size_t record_overhead(const struct tls_record_state *s)
{
	return TLS_RECORD_HEADER_LEN + explicit_nonce_len(s) + (is_tls13(s) ? 1 : 0) + TAG_LEN;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The record's nonce: the IV XOR the sequence number (RFC 8446 §5.3, RFC 7905 §2), or for
 * TLS 1.2 GCM the salt then the explicit part sent with the record. */
static void make_nonce(const struct tls_record_state *s, const struct tls_record_keys *k,
                       const uint8_t *explicit_nonce, uint8_t nonce[TLS_RECORD_IV_LEN])
{
	if (explicit_nonce_len(s)) {
		memcpy(nonce, k->iv, 4);
		memcpy(nonce + 4, explicit_nonce, 8);
		return;
	}
	uint8_t seq[8];
	put_u64(seq, k->seq);
	memcpy(nonce, k->iv, TLS_RECORD_IV_LEN);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= seq[i];
}

/* TLS 1.2's additional data: seq_num, type, version, length of the plaintext. */
static void make_aad12(const struct tls_record_keys *k, const uint8_t *header, size_t plain_len,
                       uint8_t aad[13])
{
	put_u64(aad, k->seq);
	memcpy(aad + 8, header, 3);
	aad[11] = (uint8_t)(plain_len >> 8);
	aad[12] = (uint8_t)plain_len;
}

/* HKDF-Expand-Label(secret, label, "", out_len) (RFC 8446 §7.1). */
static int expand_label(uint8_t hash, const uint8_t *secret, const char *label, uint8_t *out, size_t out_len)
{
	uint8_t info[2 + 1 + 6 + 32 + 1];
	size_t label_len = strlen(label);
	info[0] = (uint8_t)(out_len >> 8);
	info[1] = (uint8_t)out_len;
	info[2] = (uint8_t)(6 + label_len);
	memcpy(info + 3, "tls13 ", 6);
	memcpy(info + 9, label, label_len);
	info[9 + label_len] = 0; /* empty context */
	gnutls_datum_t key = {.data = (uint8_t *)secret, .size = (unsigned)hash_len_of(hash)};
	gnutls_datum_t inf = {.data = info, .size = (unsigned)(10 + label_len)};
	return gnutls_hkdf_expand(hash == TLS_RECORD_SHA384 ? GNUTLS_MAC_SHA384 : GNUTLS_MAC_SHA256, &key,
	                          &inf, out, out_len) < 0
	           ? -1
	           : 0;
}

/* One KeyUpdate of a direction: the next secret and its key and IV (RFC 8446 §7.2). */
static int keys_next(const struct tls_record_state *s, struct tls_record_keys *k)
{
	uint8_t next[TLS_RECORD_SECRET_MAX];
	if (expand_label(s->hash, k->secret, "traffic upd", next, k->secret_len) < 0)
		return -1;
	memcpy(k->secret, next, k->secret_len);
	explicit_bzero(next, sizeof(next));
	if (expand_label(s->hash, k->secret, "key", k->key, k->key_len) < 0 ||
	    expand_label(s->hash, k->secret, "iv", k->iv, TLS_RECORD_IV_LEN) < 0)
		return -1;
	k->seq = 0;
	k->key_updates++;
	return 0;
}

static bool zeros(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int tls_record_state_check(const struct tls_record_state *s, const char **why)
{
	*why = NULL;
	if (s->version != TLS_RECORD_TLS12 && s->version != TLS_RECORD_TLS13)
		*why = "a TLS version other than 1.2 or 1.3";
	else if (s->cipher < TLS_RECORD_AES_128_GCM || s->cipher > TLS_RECORD_CHACHA20_POLY1305)
		*why = "an unknown cipher";
	else if (s->hash != TLS_RECORD_SHA256 && s->hash != TLS_RECORD_SHA384)
		*why = "an unknown hash";
	else if (s->max_plaintext < 63 || s->max_plaintext > TLS_RECORD_PLAINTEXT_MAX)
		*why = "a record size limit out of range";
	else if ((s->flags & ~TLS_RECORD_KEY_UPDATE_OWED) || s->reserved ||
	         ((s->flags & TLS_RECORD_KEY_UPDATE_OWED) && !is_tls13(s)))
		*why = "unknown flags";
	for (int d = 0; d < 2 && !*why; d++) {
		const struct tls_record_keys *k = &s->dir[d];
		size_t iv_len = explicit_nonce_len(s) ? 4 : TLS_RECORD_IV_LEN;
		if (k->key_len != key_len_of(s->cipher) ||
		    !zeros(k->key + k->key_len, sizeof(k->key) - k->key_len))
			*why = "a key of the wrong length";
		else if (k->iv_len != iv_len || !zeros(k->iv + iv_len, sizeof(k->iv) - iv_len))
			*why = "an IV of the wrong length";
		else if (is_tls13(s) ? k->secret_len != hash_len_of(s->hash)
		                     : k->secret_len != 0 || k->key_updates)
			*why = "a traffic secret of the wrong length";
		else if (!zeros(k->secret + k->secret_len, sizeof(k->secret) - k->secret_len) || k->reserved)
			*why = "bytes set past the secret";
	}
	return *why ? -1 : 0;
}

int tls_record_state_limit(struct tls_record_state *s, uint32_t record_size_limit, bool tls13_offered)
{
	if (record_size_limit < 64)
		return -1;
	uint32_t max = record_size_limit - (is_tls13(s) || tls13_offered ? 1 : 0);
	s->max_plaintext = (uint16_t)(max < TLS_RECORD_PLAINTEXT_MAX ? max : TLS_RECORD_PLAINTEXT_MAX);
	return 0;
}

int tls_record_state_advance(struct tls_record_state *s, enum tls_record_dir d, uint64_t key_updates,
                             const char **why)
{
	struct tls_record_keys *k = &s->dir[d];
	*why = NULL;
	if (!is_tls13(s))
		*why = "TLS 1.2 has no KeyUpdate";
	else if (key_updates < k->key_updates)
		*why = "fewer KeyUpdates than the state has seen";
	else if (key_updates - k->key_updates > TLS_RECORD_ADVANCE_MAX)
		*why = "too many KeyUpdates to derive";
	while (!*why && k->key_updates < key_updates)
		if (keys_next(s, k) < 0)
			*why = "HKDF failed";
	return *why ? -1 : 0;
}

/* The secret function: keeps the latest application traffic secret of each direction. */
static int secrets_store(gnutls_session_t session, gnutls_record_encryption_level_t level, const void *read,
                         const void *write, size_t size)
{
	struct tls_record_secrets *secrets = gnutls_session_get_ptr(session);
	const void *given[2] = {read, write};
	if (level != GNUTLS_ENCRYPTION_LEVEL_APPLICATION)
		return 0;
	if (size > TLS_RECORD_SECRET_MAX)
		return -1;
	for (int d = 0; d < 2; d++) {
		if (!given[d])
			continue;
		if (secrets->secret_len[d])
			secrets->key_updates[d]++;
		memcpy(secrets->secret[d], given[d], size);
		secrets->secret_len[d] = (uint8_t)size;
	}
	return 0;
}

void tls_record_secrets_install(gnutls_session_t session, struct tls_record_secrets *secrets)
{
	memset(secrets, 0, sizeof(*secrets));
	gnutls_session_set_ptr(session, secrets);
	gnutls_handshake_set_secret_function(session, secrets_store);
}

int tls_record_state_export(gnutls_session_t session, const struct tls_record_secrets *secrets,
                            struct tls_record_state *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	*why = NULL;
	switch (gnutls_protocol_get_version(session)) {
	case GNUTLS_TLS1_2:
		out->version = TLS_RECORD_TLS12;
		break;
	case GNUTLS_TLS1_3:
		out->version = TLS_RECORD_TLS13;
		break;
	default:
		*why = "a TLS version other than 1.2 or 1.3";
		return -1;
	}
	switch (gnutls_cipher_get(session)) {
	case GNUTLS_CIPHER_AES_128_GCM:
		out->cipher = TLS_RECORD_AES_128_GCM;
		break;
	case GNUTLS_CIPHER_AES_256_GCM:
		out->cipher = TLS_RECORD_AES_256_GCM;
		break;
	case GNUTLS_CIPHER_CHACHA20_POLY1305:
		out->cipher = TLS_RECORD_CHACHA20_POLY1305;
		break;
	default:
		*why = "a cipher other than AES-GCM or ChaCha20-Poly1305";
		return -1;
	}
	switch (gnutls_prf_hash_get(session)) {
	case GNUTLS_DIG_SHA256:
		out->hash = TLS_RECORD_SHA256;
		break;
	case GNUTLS_DIG_SHA384:
		out->hash = TLS_RECORD_SHA384;
		break;
	default:
		*why = "a handshake hash other than SHA-256 or SHA-384";
		return -1;
	}
	out->max_plaintext = TLS_RECORD_PLAINTEXT_MAX;
	for (int d = 0; d < 2 && !*why; d++) {
		struct tls_record_keys *k = &out->dir[d];
		gnutls_datum_t iv, key;
		uint8_t seq[8];
		if (gnutls_record_get_state(session, d == TLS_RECORD_READ, NULL, &iv, &key, seq) < 0) {
			*why = "the session has no record state (handshake not finished)";
			break;
		}
		if (key.size > sizeof(k->key) || iv.size > sizeof(k->iv)) {
			*why = "a key or IV longer than the cipher's";
			break;
		}
		memcpy(k->key, key.data, key.size);
		k->key_len = (uint8_t)key.size;
		memcpy(k->iv, iv.data, iv.size);
		k->iv_len = (uint8_t)iv.size;
		k->seq = get_u64(seq);
		if (is_tls13(out)) {
			memcpy(k->secret, secrets->secret[d], sizeof(k->secret));
			k->secret_len = secrets->secret_len[d];
			k->key_updates = secrets->key_updates[d];
		}
	}
	if (!*why && is_tls13(out) && (out->dir[0].secret_len == 0 || out->dir[1].secret_len == 0))
		*why = "no traffic secret (tls_record_secrets_install was not called before the handshake)";
	if (*why || tls_record_state_check(out, why) < 0) {
		explicit_bzero(out, sizeof(*out));
		return -1;
	}
	return 0;
}

/* A cipher handle for direction d's key. */
static int cipher_new(struct tls_record *r, enum tls_record_dir d, gnutls_aead_cipher_hd_t *h)
{
	gnutls_datum_t key = {.data = r->state.dir[d].key, .size = r->state.dir[d].key_len};
	return gnutls_aead_cipher_init(h, cipher_algorithm(r->state.cipher), &key) < 0 ? -1 : 0;
}

int tls_record_init(struct tls_record *r, const struct tls_record_state *s, const char **why)
{
	memset(r, 0, sizeof(*r));
	if (tls_record_state_check(s, why) < 0)
		return -1;
	r->state = *s;
	for (int d = 0; d < 2; d++) {
		if (cipher_new(r, d, &r->cipher[d]) < 0) {
			*why = "GnuTLS could not set up the cipher";
			tls_record_deinit(r);
			return -1;
		}
	}
	return 0;
}

void tls_record_deinit(struct tls_record *r)
{
	for (int d = 0; d < 2; d++)
		if (r->cipher[d])
			gnutls_aead_cipher_deinit(r->cipher[d]);
	explicit_bzero(r, sizeof(*r));
}

void tls_record_state_get(const struct tls_record *r, struct tls_record_state *out)
{
	*out = r->state;
}

/* Seals one record of type with content data[0, len) at out, which has room for
 * record_overhead + len bytes. */
static int seal(struct tls_record *r, uint8_t type, const uint8_t *data, size_t len, uint8_t *out)
{
	struct tls_record_state *s = &r->state;
	struct tls_record_keys *k = &s->dir[TLS_RECORD_WRITE];
	size_t explicit_len = explicit_nonce_len(s), inner_len = len + (is_tls13(s) ? 1 : 0);
	size_t body_len = explicit_len + inner_len + TAG_LEN;
	uint8_t nonce[TLS_RECORD_IV_LEN], aad[13];
	giovec_t aad_iov,
	    iov[2] = {{.iov_base = (void *)data, .iov_len = len}, {.iov_base = &type, .iov_len = 1}};

	if (k->seq == UINT64_MAX) /* never wrap (RFC 8446 §5.3) */
		return -1;
	out[0] = is_tls13(s) ? CT_APPLICATION_DATA : type;
	out[1] = 3;
	out[2] = 3;
	out[3] = (uint8_t)(body_len >> 8);
	out[4] = (uint8_t)body_len;
	if (explicit_len)
		put_u64(out + TLS_RECORD_HEADER_LEN, k->seq); /* as GnuTLS: the sequence number */
	make_nonce(s, k, out + TLS_RECORD_HEADER_LEN, nonce);
	if (is_tls13(s)) {
		aad_iov = (giovec_t){.iov_base = out, .iov_len = TLS_RECORD_HEADER_LEN};
	} else {
		make_aad12(k, out, len, aad);
		aad_iov = (giovec_t){.iov_base = aad, .iov_len = sizeof(aad)};
	}
	size_t ctext_len = inner_len + TAG_LEN;
	if (gnutls_aead_cipher_encryptv(r->cipher[TLS_RECORD_WRITE], nonce, sizeof(nonce), &aad_iov, 1,
	                                TAG_LEN, iov, is_tls13(s) ? 2 : 1,
	                                out + TLS_RECORD_HEADER_LEN + explicit_len, &ctext_len) < 0 ||
	    ctext_len != inner_len + TAG_LEN)
		return -1;
	k->seq++;
	return 0;
}

/* Moves direction d to its next keys, with a new cipher handle: GnuTLS 3.7.9's
 * gnutls_aead_cipher_set_key changes an AES-GCM handle's key but not its GHASH key, so
 * every tag after it is wrong (docs/TLS.md). */
static int rekey(struct tls_record *r, enum tls_record_dir d)
{
	gnutls_aead_cipher_hd_t h;
	if (keys_next(&r->state, &r->state.dir[d]) < 0 || cipher_new(r, d, &h) < 0)
		return -1;
	gnutls_aead_cipher_deinit(r->cipher[d]);
	r->cipher[d] = h;
	return 0;
}

int tls_record_key_update(struct tls_record *r, bool request_peer, uint8_t *out, size_t room, size_t *out_len)
{
	uint8_t msg[5] = {HS_KEY_UPDATE, 0, 0, 1, request_peer ? 1 : 0};
	if (!is_tls13(&r->state) || room - *out_len < TLS_RECORD_KEY_UPDATE_SIZE ||
	    seal(r, CT_HANDSHAKE, msg, sizeof(msg), out + *out_len) < 0 || rekey(r, TLS_RECORD_WRITE) < 0)
		return -1;
	*out_len += TLS_RECORD_KEY_UPDATE_SIZE;
	r->state.flags &= (uint8_t)~TLS_RECORD_KEY_UPDATE_OWED;
	return 0;
}

bool tls_record_key_update_owed(const struct tls_record *r)
{
	return r->state.flags & TLS_RECORD_KEY_UPDATE_OWED;
}

/* Whether a KeyUpdate of ours goes before the next record. */
static bool key_update_due(const struct tls_record *r)
{
	return is_tls13(&r->state) &&
	       (tls_record_key_update_owed(r) || r->state.dir[TLS_RECORD_WRITE].seq >= TLS_RECORD_REKEY_AT);
}

ssize_t tls_record_encrypt(struct tls_record *r, const void *data, size_t len, uint8_t *out, size_t room,
                           size_t *out_len)
{
	size_t taken = 0, overhead = record_overhead(&r->state);
	while (taken < len) {
		if (key_update_due(r)) {
			if (room - *out_len < TLS_RECORD_KEY_UPDATE_SIZE)
				break;
			if (tls_record_key_update(r, false, out, room, out_len) < 0)
				return -1;
		}
		size_t n = len - taken, avail = room - *out_len;
		if (n > r->state.max_plaintext)
			n = r->state.max_plaintext;
		if (avail <= overhead)
			break;
		if (n > avail - overhead)
			n = avail - overhead;
		if (seal(r, CT_APPLICATION_DATA, (const uint8_t *)data + taken, n, out + *out_len) < 0)
			return -1;
		*out_len += overhead + n;
		taken += n;
	}
	return (ssize_t)taken;
}

size_t tls_record_encrypted_size(const struct tls_record *r, size_t len)
{
	size_t records = (len + r->state.max_plaintext - 1) / r->state.max_plaintext, key_updates = 0;
	uint64_t seq = r->state.dir[TLS_RECORD_WRITE].seq;
	if (key_update_due(r)) {
		key_updates++;
		seq = 0;
	}
	if (is_tls13(&r->state) && seq + records > TLS_RECORD_REKEY_AT)
		key_updates++; /* one more is due on the way (one call seals far fewer than 2^24 records) */
	return len + records * record_overhead(&r->state) + key_updates * TLS_RECORD_KEY_UPDATE_SIZE;
}

int tls_record_alert(struct tls_record *r, uint8_t description, uint8_t *out, size_t room, size_t *out_len)
{
	bool warning = description == TLS_RECORD_ALERT_CLOSE_NOTIFY || description == ALERT_NO_RENEGOTIATION;
	uint8_t alert[2] = {warning ? ALERT_WARNING : ALERT_FATAL, description};
	size_t size = record_overhead(&r->state) + sizeof(alert);
	if (room - *out_len < size || seal(r, CT_ALERT, alert, sizeof(alert), out + *out_len) < 0)
		return -1;
	*out_len += size;
	return 0;
}

int tls_record_alert_for(enum tls_record_result result)
{
	switch (result) {
	case TLS_RECORD_BAD_RECORD_MAC:
		return ALERT_BAD_RECORD_MAC;
	case TLS_RECORD_OVERFLOW:
		return ALERT_RECORD_OVERFLOW;
	case TLS_RECORD_UNEXPECTED_MESSAGE:
		return ALERT_UNEXPECTED_MESSAGE;
	case TLS_RECORD_DECODE_ERROR:
		return ALERT_DECODE_ERROR;
	case TLS_RECORD_ILLEGAL_PARAMETER:
		return ALERT_ILLEGAL_PARAMETER;
	case TLS_RECORD_RENEGOTIATION:
		return ALERT_NO_RENEGOTIATION;
	case TLS_RECORD_INTERNAL_ERROR:
		return ALERT_INTERNAL_ERROR;
	default:
		return -1;
	}
}

const char *tls_record_result_str(enum tls_record_result result)
{
	switch (result) {
	case TLS_RECORD_NEED_MORE:
		return "incomplete record";
	case TLS_RECORD_OUT_FULL:
		return "no room for the next record's plaintext";
	case TLS_RECORD_EOF:
		return "the peer closed (close_notify)";
	case TLS_RECORD_BAD_RECORD_MAC:
		return "a record that does not decrypt (bad_record_mac)";
	case TLS_RECORD_OVERFLOW:
		return "a record over the size limit (record_overflow)";
	case TLS_RECORD_UNEXPECTED_MESSAGE:
		return "a record or handshake message not allowed after the handshake (unexpected_message)";
	case TLS_RECORD_DECODE_ERROR:
		return "a malformed alert or KeyUpdate (decode_error)";
	case TLS_RECORD_ILLEGAL_PARAMETER:
		return "a KeyUpdate asking neither yes nor no (illegal_parameter)";
	case TLS_RECORD_RENEGOTIATION:
		return "a TLS 1.2 renegotiation, refused (no_renegotiation)";
	case TLS_RECORD_PEER_ALERT:
		return "the peer sent an alert";
	case TLS_RECORD_INTERNAL_ERROR:
		return "sequence numbers exhausted or a GnuTLS failure (internal_error)";
	}
	return "unknown result";
}

/* A handshake message after the handshake (TLS 1.3): a KeyUpdate, whole and alone in its
 * record (it changes the keys, so it must end the record: RFC 8446 §5.1; a fragmented one
 * is refused, as no implementation sends one). */
static enum tls_record_result read_handshake(struct tls_record *r, const uint8_t *msg, size_t len)
{
	if (!is_tls13(&r->state))
		return TLS_RECORD_RENEGOTIATION;
	if (len < 4 || msg[0] != HS_KEY_UPDATE)
		return TLS_RECORD_UNEXPECTED_MESSAGE;
	if (msg[1] != 0 || msg[2] != 0 || msg[3] != 1)
		return TLS_RECORD_DECODE_ERROR;
	if (len != 5)
		return TLS_RECORD_UNEXPECTED_MESSAGE;
	if (msg[4] > 1)
		return TLS_RECORD_ILLEGAL_PARAMETER;
	if (rekey(r, TLS_RECORD_READ) < 0)
		return TLS_RECORD_INTERNAL_ERROR;
	if (msg[4] == 1)
		r->state.flags |= TLS_RECORD_KEY_UPDATE_OWED;
	return TLS_RECORD_NEED_MORE;
}

/* What an opened record's content (type, content[0, len)) does. */
static enum tls_record_result read_content(struct tls_record *r, uint8_t type, const uint8_t *content,
                                           size_t len)
{
	switch (type) {
	case CT_ALERT:
		/* one alert per record, never fragmented (RFC 8446 §5.1) */
		if (len != 2)
			return TLS_RECORD_DECODE_ERROR;
		if (content[1] == TLS_RECORD_ALERT_CLOSE_NOTIFY)
			return TLS_RECORD_EOF;
		r->peer_alert = content[1];
		return TLS_RECORD_PEER_ALERT;
	case CT_HANDSHAKE:
		return read_handshake(r, content, len);
	default:
		return TLS_RECORD_UNEXPECTED_MESSAGE;
	}
}

/* Opens the whole record at in (header checked, body_len bytes after it) into out, which
 * has room for its plaintext; sets *data_len to the application data it holds. */
static enum tls_record_result open_record(struct tls_record *r, const uint8_t *in, size_t body_len,
                                          uint8_t *out, size_t *data_len)
{
	struct tls_record_state *s = &r->state;
	struct tls_record_keys *k = &s->dir[TLS_RECORD_READ];
	size_t explicit_len = explicit_nonce_len(s), plain_len = body_len - explicit_len - TAG_LEN;
	const uint8_t *body = in + TLS_RECORD_HEADER_LEN;
	uint8_t nonce[TLS_RECORD_IV_LEN], aad[13];
	const uint8_t *aad_p = in;
	size_t aad_len = TLS_RECORD_HEADER_LEN, out_len = plain_len;

	if (k->seq == UINT64_MAX)
		return TLS_RECORD_INTERNAL_ERROR;
	make_nonce(s, k, body, nonce);
	if (!is_tls13(s)) {
		make_aad12(k, in, plain_len, aad);
		aad_p = aad;
		aad_len = sizeof(aad);
	}
	if (gnutls_aead_cipher_decrypt(r->cipher[TLS_RECORD_READ], nonce, sizeof(nonce), aad_p, aad_len,
	                               TAG_LEN, body + explicit_len, body_len - explicit_len, out,
	                               &out_len) < 0 ||
	    out_len != plain_len) {
		memset(out, 0, plain_len); /* nothing unauthenticated stays behind */
		return TLS_RECORD_BAD_RECORD_MAC;
	}
	k->seq++;
	uint8_t type = in[0];
	if (is_tls13(s)) {
		/* TLSInnerPlaintext: content, type, zeros (RFC 8446 §5.4) */
		while (plain_len > 0 && out[plain_len - 1] == 0)
			plain_len--;
		if (plain_len == 0)
			return TLS_RECORD_UNEXPECTED_MESSAGE;
		type = out[--plain_len];
	}
	*data_len = 0;
	if (type == CT_APPLICATION_DATA) {
		*data_len = plain_len;
		return TLS_RECORD_NEED_MORE;
	}
	return read_content(r, type, out, plain_len);
}

enum tls_record_result tls_record_decrypt(struct tls_record *r, const uint8_t *in, size_t len, size_t *used,
                                          uint8_t *out, size_t room, size_t *out_len)
{
	const struct tls_record_state *s = &r->state;
	size_t pos = 0, min_body = explicit_nonce_len(s) + TAG_LEN;
	size_t max_plain = TLS_RECORD_PLAINTEXT_MAX + (is_tls13(s) ? 1 : 0);
	enum tls_record_result result = TLS_RECORD_NEED_MORE;

	*used = 0;
	if (r->read_end)
		return r->read_end;
	while (len - pos >= TLS_RECORD_HEADER_LEN) {
		const uint8_t *h = in + pos;
		size_t body_len = (size_t)h[3] << 8 | h[4];
		/* TLS 1.3 protects every record as application_data (RFC 8446 §5.2); TLS 1.2
		 * protects alerts and handshakes too, and nothing else is allowed now */
		if (is_tls13(s) ? h[0] != CT_APPLICATION_DATA
		                : h[0] < CT_ALERT || h[0] > CT_APPLICATION_DATA) {
			result = TLS_RECORD_UNEXPECTED_MESSAGE;
			break;
		}
		if (body_len > TLS_RECORD_CIPHERTEXT_MAX ||
		    (body_len >= min_body && body_len - min_body > max_plain)) {
			result = TLS_RECORD_OVERFLOW;
			break;
		}
		if (body_len < min_body) {
			result = TLS_RECORD_BAD_RECORD_MAC;
			break;
		}
		if (len - pos - TLS_RECORD_HEADER_LEN < body_len)
			break;
		if (room - *out_len < body_len - min_body) {
			result = TLS_RECORD_OUT_FULL;
			break;
		}
		size_t data_len;
		result = open_record(r, h, body_len, out + *out_len, &data_len);
		if (result != TLS_RECORD_NEED_MORE && result != TLS_RECORD_EOF)
			break;
		*out_len += data_len;
		pos += TLS_RECORD_HEADER_LEN + body_len;
		if (result == TLS_RECORD_EOF)
			break;
	}
	*used = pos;
	if (result != TLS_RECORD_NEED_MORE && result != TLS_RECORD_OUT_FULL)
		r->read_end = result;
	return result;
}
