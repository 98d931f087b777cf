/* tls_record.h: the TLS record layer that serves a connection after the handshake
 * (DESIGN §11): the library's after a handoff, the daemon's after a RETURN. TLS 1.3 and
 * TLS 1.2 AEAD records (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) are sealed and
 * opened with GnuTLS's crypto API from a plain record state that a finished GnuTLS
 * session is exported into once, and that travels between processes as bytes.
 * docs/TLS.md explains the design and what was checked.
 *
 * Ownership: a struct tls_record owns two GnuTLS cipher handles (tls_record_init,
 * tls_record_deinit) and nothing else; every buffer is the caller's. No I/O here. */
#ifndef PS_TLS_RECORD_H
#define PS_TLS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#define TLS_RECORD_TLS12 0x0303
#define TLS_RECORD_TLS13 0x0304

#define TLS_RECORD_KEY_MAX 32    /* AES-256, ChaCha20 */
#define TLS_RECORD_IV_LEN 12     /* TLS 1.3, TLS 1.2 ChaCha20; TLS 1.2 GCM uses the first 4 */
#define TLS_RECORD_SECRET_MAX 48 /* SHA-384 */
#define TLS_RECORD_HEADER_LEN 5
#define TLS_RECORD_PLAINTEXT_MAX 16384          /* 2^14 (RFC 8446 §5.1) */
#define TLS_RECORD_CIPHERTEXT_MAX (16384 + 256) /* RFC 8446 §5.2 (TLS 1.2's AEAD records fit too) */
/* The most bytes of an incomplete record a reader ever keeps between two reads (and hands
 * over with the connection): a header and all but one byte of the largest record. */
#define TLS_RECORD_PARTIAL_MAX (TLS_RECORD_HEADER_LEN + TLS_RECORD_CIPHERTEXT_MAX - 1)
/* Room after the end of the output that guarantees tls_record_decrypt opens the next
 * record: its TLSInnerPlaintext (content, type and padding) is decrypted in place there. */
#define TLS_RECORD_DECRYPT_ROOM (TLS_RECORD_PLAINTEXT_MAX + 1)

/* Our own ids (the state crosses processes: GnuTLS's enum values are not a wire format). */
enum tls_record_cipher {
	TLS_RECORD_AES_128_GCM = 1,
	TLS_RECORD_AES_256_GCM = 2,
	TLS_RECORD_CHACHA20_POLY1305 = 3,
};
enum tls_record_hash {
	TLS_RECORD_SHA256 = 1,
	TLS_RECORD_SHA384 = 2,
};
enum tls_record_dir {
	TLS_RECORD_READ = 0,
	TLS_RECORD_WRITE = 1,
};

/* One direction's keys. For TLS 1.3 key and iv are those of secret (HKDF-Expand-Label
 * "key" and "iv", RFC 8446 §7.3), so a direction can be re-derived from its secret alone
 * (tls_record_state_advance). */
struct tls_record_keys {
	uint64_t seq;         /* sequence number of the next record (0 after each KeyUpdate) */
	uint64_t key_updates; /* KeyUpdates applied since the handshake (TLS 1.3) */
	uint8_t key[TLS_RECORD_KEY_MAX];
	uint8_t iv[TLS_RECORD_IV_LEN];         /* TLS 1.2 GCM: the 4-byte salt, then zeros */
	uint8_t secret[TLS_RECORD_SECRET_MAX]; /* TLS 1.3: the current traffic secret */
	uint8_t key_len;                       /* 16 or 32 */
	uint8_t iv_len;                        /* 12, or 4 (TLS 1.2 GCM) */
	uint8_t secret_len;                    /* TLS 1.3: 32 or 48 (the hash's); TLS 1.2: 0 */
	uint8_t reserved;                      /* 0 */
};

#define TLS_RECORD_KEY_UPDATE_OWED 0x01 /* flags: the peer asked for a KeyUpdate, not sent yet */

/* Everything a process needs to go on with a connection's records: plain, fixed-size, no
 * pointers, so that it can be memcpy'd into a control message or a shared page (host byte
 * order: same machine). Every reserved byte is 0 (tls_record_state_check). It holds the
 * shape kTLS wants too (key, salt and IV, big-endian sequence number in the kernel's
 * struct; the same values here). */
struct tls_record_state {
	uint16_t version;       /* TLS_RECORD_TLS12 or TLS_RECORD_TLS13 */
	uint8_t cipher;         /* enum tls_record_cipher */
	uint8_t hash;           /* enum tls_record_hash: the handshake's (HKDF for TLS 1.3 KeyUpdate) */
	uint16_t max_plaintext; /* the most application bytes per record the peer accepts:
	                         * 16384, or less by its record_size_limit (tls_record_state_limit)
	                         * or max_fragment_length (512..4096, as is) */
	uint8_t flags;          /* TLS_RECORD_KEY_UPDATE_OWED */
	uint8_t reserved;       /* 0 */
	struct tls_record_keys dir[2]; /* [TLS_RECORD_READ], [TLS_RECORD_WRITE] */
};

/* The TLS 1.3 application traffic secrets of a session, stored by the secret function
 * tls_record_secrets_install puts on it. The caller keeps it until the export. */
struct tls_record_secrets {
	uint8_t secret[2][TLS_RECORD_SECRET_MAX]; /* [enum tls_record_dir] */
	uint8_t secret_len[2];
	uint64_t key_updates[2]; /* secrets replaced after the first: KeyUpdates GnuTLS followed */
};

/* Installs the secret function on a session not handshaken yet (a client or a server) and
 * points the session's user pointer (gnutls_session_set_ptr) at secrets, which is where
 * that function finds it: a caller that needs the user pointer for itself points it at a
 * struct of its own whose first member is the struct tls_record_secrets. */
void tls_record_secrets_install(gnutls_session_t session, struct tls_record_secrets *secrets);

/* Fills *out from a session whose handshake is finished (after any session tickets: they
 * advance the write sequence number), with secrets the one given to
 * tls_record_secrets_install. The session is then deinit'ed, never gnutls_bye'd: its records
 * are ours from here on. max_plaintext is 16384: set the peer's limit afterwards. 0, or -1
 * and *why (a version or cipher the layer does not do, a secret missing). */
int tls_record_state_export(gnutls_session_t session, const struct tls_record_secrets *secrets,
                            struct tls_record_state *out, const char **why);

/* Sets max_plaintext from the client's record_size_limit extension (RFC 8449 §4: in TLS 1.3
 * it counts the content type). tls13_offered: the ClientHello offered TLS 1.3; then one is
 * taken off in TLS 1.2 too, as a GnuTLS 3.7.9 client that could do TLS 1.3 advertises its
 * limit plus one yet refuses a TLS 1.2 record of that size (one byte less per record is
 * always allowed). 0, or -1 for a value below the RFC's 64 (a decode error). */
int tls_record_state_limit(struct tls_record_state *s, uint32_t record_size_limit, bool tls13_offered);

/* Whether s is one tls_record_init accepts (a state that came from another process is
 * checked before use): 0, or -1 and *why. */
int tls_record_state_check(const struct tls_record_state *s, const char **why);

/* Applies KeyUpdates to direction d of s (TLS 1.3) until its key_updates count is
 * key_updates, from the secret it holds; the sequence number starts again at 0 (set it
 * after). What the daemon does with a slot's count and the state of the last handoff. At
 * most TLS_RECORD_ADVANCE_MAX steps. 0, or -1 and *why. */
#define TLS_RECORD_ADVANCE_MAX 65536
int tls_record_state_advance(struct tls_record_state *s, enum tls_record_dir d, uint64_t key_updates,
                             const char **why);

/* The running layer: the state, kept current record by record, and a cipher per direction.
 * The fields are read-only to callers. */
struct tls_record {
	struct tls_record_state state;
	gnutls_aead_cipher_hd_t cipher[2]; /* [enum tls_record_dir] */
	int read_end;                      /* 0, or the EOF or error that ended reading */
	uint8_t peer_alert;                /* the description of the alert the peer sent */
};

/* Builds r from s (checked as tls_record_state_check does). 0, or -1 and *why; r then needs
 * no deinit. */
int tls_record_init(struct tls_record *r, const struct tls_record_state *s, const char **why);
/* Frees the ciphers and wipes the keys. */
void tls_record_deinit(struct tls_record *r);
/* The current state, to hand the connection over: sequence numbers, keys and secrets after
 * every KeyUpdate so far, and a KeyUpdate still owed. */
void tls_record_state_get(const struct tls_record *r, struct tls_record_state *out);

enum tls_record_result {
	TLS_RECORD_NEED_MORE = 0, /* every whole record is read: keep in[*used, len) (less than
	                           * TLS_RECORD_PARTIAL_MAX bytes) and call again with more */
	TLS_RECORD_OUT_FULL = 1,  /* the next record's plaintext would not fit in out: drain it */
	TLS_RECORD_EOF = 2,       /* the peer's close_notify; bytes after it are not read */
	/* Errors: reading is over (the same result again on every later call); send the alert
	 * tls_record_alert_for names, then close. */
	TLS_RECORD_BAD_RECORD_MAC = -1,     /* a record that does not decrypt (or is too short) */
	TLS_RECORD_OVERFLOW = -2,           /* a record over the limits of RFC 8446 §5.2/§5.4 */
	TLS_RECORD_UNEXPECTED_MESSAGE = -3, /* a record type or handshake message not allowed now */
	TLS_RECORD_DECODE_ERROR = -4,       /* a malformed alert or KeyUpdate */
	TLS_RECORD_ILLEGAL_PARAMETER = -5,  /* a KeyUpdate's request_update neither 0 nor 1 */
	TLS_RECORD_RENEGOTIATION = -6,      /* TLS 1.2: a handshake record after the handshake */
	TLS_RECORD_PEER_ALERT = -7,         /* the peer sent an alert other than close_notify */
	TLS_RECORD_INTERNAL_ERROR = -8,     /* sequence numbers exhausted, or GnuTLS failed */
};

/* Opens the records at the start of in[0, len) and appends their application data to
 * out[*out_len, room). Stops at the end of the whole records (NEED_MORE), before a record
 * whose plaintext would not fit (OUT_FULL: room - *out_len >= TLS_RECORD_DECRYPT_ROOM
 * always fits one), or at close_notify or an error. *used: the bytes of in consumed, whole
 * records only. A KeyUpdate from the peer is followed here; when it asks for one back,
 * tls_record_key_update_owed says so. */
enum tls_record_result tls_record_decrypt(struct tls_record *r, const uint8_t *in, size_t len, size_t *used,
                                          uint8_t *out, size_t room, size_t *out_len);

/* Seals data[0, len) as application_data records of at most state.max_plaintext bytes each,
 * appended to out[*out_len, room); a record is cut shorter where out ends. A KeyUpdate owed
 * to the peer goes first (RFC 8446 §4.6.3), and in TLS 1.3 one of our own once the write
 * sequence number reaches TLS_RECORD_REKEY_AT. Returns the bytes of data sealed (less than
 * len when out is full: call again with the rest), or -1 (the write sequence numbers are
 * exhausted or GnuTLS failed: close without an alert). */
#define TLS_RECORD_REKEY_AT (1ull << 24) /* records per key: AES-GCM's limit is 2^24.5 (§5.5) */
ssize_t tls_record_encrypt(struct tls_record *r, const void *data, size_t len, uint8_t *out, size_t room,
                           size_t *out_len);
/* The most bytes tls_record_encrypt writes for len bytes (the room that takes them all). */
size_t tls_record_encrypted_size(const struct tls_record *r, size_t len);

/* Appends one alert record (RFC 8446 §6): close_notify (0) at a clean end, or the one
 * tls_record_alert_for names after an error. close_notify and no_renegotiation are warnings,
 * every other description fatal. 0, or -1 (no room: TLS_RECORD_ALERT_SIZE bytes, or failure). */
#define TLS_RECORD_ALERT_CLOSE_NOTIFY 0
#define TLS_RECORD_ALERT_SIZE (TLS_RECORD_HEADER_LEN + 8 + 2 + 1 + 16)
int tls_record_alert(struct tls_record *r, uint8_t description, uint8_t *out, size_t room, size_t *out_len);
/* The alert to send for a decrypt result (RFC 8446 §6.2), or -1 for none (the peer's own
 * alert or close_notify is not answered but by closing). A TLS 1.2 renegotiation gets a
 * no_renegotiation warning (what GnuTLS and OpenSSL send) before the close. */
int tls_record_alert_for(enum tls_record_result result);
/* What a result means, for a log line. */
const char *tls_record_result_str(enum tls_record_result result);

/* TLS 1.3: appends a KeyUpdate (request_peer: asking the peer for one back) and moves our
 * write side to the next keys; pays a KeyUpdate owed. 0, or -1 (TLS 1.2, no room:
 * TLS_RECORD_KEY_UPDATE_SIZE bytes, or failure). */
#define TLS_RECORD_KEY_UPDATE_SIZE (TLS_RECORD_HEADER_LEN + 4 + 1 + 1 + 16)
int tls_record_key_update(struct tls_record *r, bool request_peer, uint8_t *out, size_t room,
                          size_t *out_len);
/* Whether the peer asked for a KeyUpdate that is not sent yet. */
bool tls_record_key_update_owed(const struct tls_record *r);

#endif
