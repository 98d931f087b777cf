/* tls.c: a client connection's TLS in the daemon (DESIGN §11). The handshake is GnuTLS's,
 * non-blocking, driven by the connection's events and bounded by HeaderWait (one timer,
 * never a thread); the certificate is chosen once the ClientHello is read (certs.c: SNI,
 * then the address). Right after it the session's record state is exported and the
 * GnuTLS session dropped: from then on every record, in the daemon and in the worker, goes
 * through src/common/tls_record.c, and the state travels with the connection. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "certs.h"
#include "conn-t.h"
#include "log.h"
#include "metrics.h"
#include "tls_record.h"

/* TLS 1.3 and 1.2 with the AEAD ciphers our record layer does, the server's order first.
 * No 0-RTT (never enabled), no renegotiation (the session is gone after the handshake).
 * NORMAL's groups with X25519 moved first: OpenSSL's clients (curl, Python, wrk) send a key
 * share for X25519 alone, and with NORMAL's order (SECP256R1 first) and the server's
 * precedence every handshake of theirs took a HelloRetryRequest (a round trip more, a second
 * ClientHello, and P-256 ECDH instead of X25519: 1.4x the CPU of a handshake, bench t3). */
#define TLS_PRIORITY                                                                                         \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"                 \
	"+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:"  \
	"+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192:"  \
	"%SERVER_PRECEDENCE"

#define TLS_EXT_MAX_FRAGMENT_LENGTH 1
#define TLS_EXT_SUPPORTED_VERSIONS 43
#define TLS_EXT_RECORD_SIZE_LIMIT 28

struct conn_tls {
	struct tls_record_secrets secrets; /* first: the session's user pointer points here */
	struct conn *conn;
	gnutls_session_t session; /* during the handshake; NULL after it */
	struct cert_set *certs;   /* held during the handshake */
	struct tls_record rec;
	bool live;     /* rec is initialised and the daemon's to use */
	bool alerted;  /* an alert or close_notify went out: nothing more is sent */
	bool peeked;   /* the first byte was checked for plain HTTP */
	uint8_t *raw;  /* ciphertext read and not opened yet, PS_TLS_RAW_MAX bytes; NULL when none */
	uint32_t raw_len;
	struct tls_record_state handed; /* the state given to the worker holding it */
	uint8_t header[TLS_RECORD_HEADER_LEN]; /* the handshake's reads: the record header read so far */
	uint32_t header_len, record_left;      /* ... and what is left of the record it starts */
	uint32_t size_limit;            /* the ClientHello's record_size_limit, or 0 */
	uint16_t max_fragment;          /* its max_fragment_length, in bytes, or 0 */
	bool tls13_offered;
	char sni[PS_SERVER_NAME_MAX + 1];
	const char *why; /* why the handshake failed, for the error log */
};

static gnutls_priority_t priority;
static const gnutls_datum_t alpn_http11 = {(unsigned char *)"http/1.1", 8};

int tls_global_init(char *err, size_t errlen)
{
	const char *pos = NULL;
	int rc = gnutls_priority_init(&priority, TLS_PRIORITY, &pos);
	if (rc < 0) {
		snprintf(err, errlen, "GnuTLS priority string refused at \"%s\": %s", pos ? pos : "",
		         gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

void tls_global_deinit(void)
{
	if (priority)
		gnutls_priority_deinit(priority);
	priority = NULL;
}

static struct conn_tls *session_tls(gnutls_session_t s)
{
	return gnutls_session_get_ptr(s);
}

/* The handshake's reads and writes: never blocking whatever the file status flags are
 * (DESIGN §2a), and counted like every other byte of the connection. A read never goes
 * past the end of the record it is in: GnuTLS reads ahead into a buffer of its own, and a
 * client's first request, sent right behind its Finished, would be lost in it when the
 * session is dropped. */
static ssize_t tls_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
	struct conn_tls *t = p;
	size_t want = t->header_len < TLS_RECORD_HEADER_LEN ? TLS_RECORD_HEADER_LEN - t->header_len : t->record_left;
	ssize_t n = recv(t->conn->io.fd, buf, len < want ? len : want, MSG_DONTWAIT);
	if (n < 0) {
		gnutls_transport_set_errno(t->session, errno);
		return n;
	}
	t->conn->received += (uint64_t)n;
	if (t->header_len < TLS_RECORD_HEADER_LEN) {
		memcpy(t->header + t->header_len, buf, (size_t)n);
		t->header_len += (uint32_t)n;
		if (t->header_len == TLS_RECORD_HEADER_LEN)
			t->record_left = (uint32_t)t->header[3] << 8 | t->header[4];
	} else {
		t->record_left -= (uint32_t)n;
	}
	if (t->header_len == TLS_RECORD_HEADER_LEN && !t->record_left)
		t->header_len = 0; /* the next read starts a record */
	return n;
}

static ssize_t tls_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
	struct conn_tls *t = p;
	ssize_t n = send(t->conn->io.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		t->conn->sent += (uint64_t)n;
	else if (n < 0)
		gnutls_transport_set_errno(t->session, errno);
	return n;
}

static int tls_ext_seen(void *ctx, unsigned tls_id, const unsigned char *data, unsigned len)
{
	struct conn_tls *t = ctx;
	switch (tls_id) {
	case TLS_EXT_RECORD_SIZE_LIMIT:
		if (len == 2)
			t->size_limit = (uint32_t)data[0] << 8 | data[1];
		break;
	case TLS_EXT_MAX_FRAGMENT_LENGTH:
		if (len == 1 && data[0] >= 1 && data[0] <= 4)
			t->max_fragment = (uint16_t)(256u << data[0]); /* 512, 1024, 2048, 4096 */
		break;
	case TLS_EXT_SUPPORTED_VERSIONS: /* u8 length, then u16 versions */
		for (unsigned i = 1; i + 1 < len; i += 2)
			if (data[i] == 0x03 && data[i + 1] == 0x04)
				t->tls13_offered = true;
		break;
	}
	return 0;
}

/* The ClientHello as it arrives: the limits GnuTLS reads but does not tell (docs/TLS.md). */
static int tls_client_hello_hook(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming,
                                 const gnutls_datum_t *msg)
{
	struct conn_tls *t = session_tls(s);
	if (incoming && when == GNUTLS_HOOK_PRE)
		gnutls_ext_raw_parse(t, tls_ext_seen, msg, GNUTLS_EXT_RAW_FLAG_TLS_CLIENT_HELLO);
	return 0;
}

/* The ClientHello is parsed: pick the certificate by its server name and our address. */
static int tls_post_client_hello(gnutls_session_t s)
{
	struct conn_tls *t = session_tls(s);
	size_t len = sizeof(t->sni) - 1;
	unsigned type;
	if (gnutls_server_name_get(s, t->sni, &len, &type, 0) == 0 && type == GNUTLS_NAME_DNS) {
		t->sni[len] = '\0';
		/* a host name (it goes to logs and to the worker): letters, digits, '-', '.', '_';
		 * anything else is no name at all */
		for (size_t i = 0; i < len; i++) {
			char ch = t->sni[i];
			if (ch >= 'A' && ch <= 'Z')
				t->sni[i] = (char)(ch - 'A' + 'a');
			else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
			           ch == '_'))
				len = 0;
		}
		if (!len)
			t->sni[0] = '\0';
	} else {
		t->sni[0] = '\0';
	}
	const char *why = NULL;
	gnutls_certificate_credentials_t cred =
	    certs_find(t->certs, &t->conn->local, t->sni[0] ? t->sni : NULL, NULL, &why);
	if (!cred) {
		t->why = why ? why : "no certificate binding for this name and address";
		return GNUTLS_E_UNRECOGNIZED_NAME;
	}
	return gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
}

int tls_conn_start(struct conn *c)
{
	struct conn_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->conn = c;
	if (gnutls_init(&t->session, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
		free(t);
		return -1;
	}
	t->certs = certs_acquire();
	gnutls_priority_set(t->session, priority);
	tls_record_secrets_install(t->session, &t->secrets); /* sets the user pointer to t */
	gnutls_transport_set_ptr(t->session, t);
	gnutls_transport_set_pull_function(t->session, tls_pull);
	gnutls_transport_set_push_function(t->session, tls_push);
	gnutls_handshake_set_hook_function(t->session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
	                                   tls_client_hello_hook);
	gnutls_handshake_set_post_client_hello_function(t->session, tls_post_client_hello);
	gnutls_alpn_set_protocols(t->session, &alpn_http11, 1, GNUTLS_ALPN_SERVER_PRECEDENCE);
	const gnutls_datum_t *key = certs_ticket_key();
	if (key)
		gnutls_session_ticket_enable_server(t->session, key);
	c->tls = t;
	return 0;
}

static void tls_handshake_over(struct conn_tls *t)
{
	if (t->session) {
		gnutls_deinit(t->session);
		t->session = NULL;
	}
	if (t->certs) {
		certs_release(t->certs);
		t->certs = NULL;
	}
	explicit_bzero(&t->secrets, sizeof(t->secrets));
}

void tls_conn_free(struct conn *c)
{
	struct conn_tls *t = c->tls;
	if (!t)
		return;
	tls_handshake_over(t);
	if (t->live)
		tls_record_deinit(&t->rec);
	explicit_bzero(&t->handed, sizeof(t->handed));
	free(t->raw);
	free(t);
	c->tls = NULL;
}

static void tls_log_failure(struct conn_tls *t, const char *what)
{
	char reason[384];
	snprintf(reason, sizeof(reason), "TLS handshake: %s%s%s%s", what, t->sni[0] ? " (server name " : "",
	         t->sni, t->sni[0] ? ")" : "");
	log_error_answer(t->conn, 0, reason);
}

enum tls_step tls_conn_handshake(struct conn *c)
{
	struct conn_tls *t = c->tls;
	if (!t->peeked) {
		/* a TLS client starts with a handshake record (22); a method starts with a letter */
		uint8_t first;
		ssize_t n = recv(c->io.fd, &first, 1, MSG_DONTWAIT | MSG_PEEK);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? TLS_STEP_READ : TLS_STEP_FAILED;
		if (n == 0)
			return TLS_STEP_FAILED;
		t->peeked = true;
		if (first >= 'A' && first <= 'Z')
			return TLS_STEP_PLAIN;
	}
	int rc = gnutls_handshake(t->session);
	if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
		return gnutls_record_get_direction(t->session) ? TLS_STEP_WRITE : TLS_STEP_READ;
	if (rc < 0) {
		if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_PULL_ERROR) {
			log_debug("TLS handshake of connection %llu ended by the client: %s",
			          (unsigned long long)c->id, gnutls_strerror(rc));
		} else {
			if (rc == GNUTLS_E_UNRECOGNIZED_NAME && t->why)
				gnutls_alert_send(t->session, GNUTLS_AL_FATAL, GNUTLS_A_UNRECOGNIZED_NAME);
			else
				gnutls_alert_send_appropriate(t->session, rc);
			tls_log_failure(t, t->why && rc == GNUTLS_E_UNRECOGNIZED_NAME ? t->why : gnutls_strerror(rc));
		}
		t->alerted = true;
		metrics_tls_handshake(0);
		return TLS_STEP_FAILED;
	}
	struct tls_record_state st;
	const char *why = NULL;
	if (tls_record_state_export(t->session, &t->secrets, &st, &why) < 0 ||
	    (t->size_limit && tls_record_state_limit(&st, t->size_limit, t->tls13_offered) < 0)) {
		tls_log_failure(t, why ? why : "record_size_limit below 64");
		tls_handshake_over(t);
		explicit_bzero(&st, sizeof(st));
		metrics_tls_handshake(0);
		return TLS_STEP_FAILED;
	}
	if (!t->size_limit && t->max_fragment)
		st.max_plaintext = t->max_fragment;
	tls_handshake_over(t);
	int ok = tls_record_init(&t->rec, &st, &why);
	explicit_bzero(&st, sizeof(st));
	if (ok < 0) {
		tls_log_failure(t, why);
		metrics_tls_handshake(0);
		return TLS_STEP_FAILED;
	}
	t->live = true;
	metrics_tls_handshake(1);
	return TLS_STEP_DONE;
}

bool tls_conn_live(const struct conn *c)
{
	return c->tls && c->tls->live;
}

/* An error in the client's records: the alert it calls for, then the end. */
static void tls_conn_fail(struct conn_tls *t, enum tls_record_result r)
{
	int alert = tls_record_alert_for(r);
	if (alert >= 0 && !t->alerted) {
		uint8_t out[TLS_RECORD_ALERT_SIZE];
		size_t len = 0;
		if (tls_record_alert(&t->rec, (uint8_t)alert, out, sizeof(out), &len) == 0 &&
		    send(t->conn->io.fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
			t->conn->sent += len; /* all or nothing for 30 bytes on a socket we wrote nothing to */
	}
	t->alerted = true;
	if (r != TLS_RECORD_PEER_ALERT)
		log_debug("connection %llu: TLS: %s", (unsigned long long)t->conn->id, tls_record_result_str(r));
}

ssize_t tls_conn_recv(struct conn *c, void *buf, size_t room)
{
	struct conn_tls *t = c->tls;
	for (;;) {
		if (t->raw_len) {
			size_t used = 0, out = 0;
			enum tls_record_result r = tls_record_decrypt(&t->rec, t->raw, t->raw_len, &used, buf, room, &out);
			memmove(t->raw, t->raw + used, t->raw_len - used);
			t->raw_len -= (uint32_t)used;
			if (out)
				return (ssize_t)out; /* an error after it comes back on the next call */
			if (r == TLS_RECORD_OUT_FULL) {
				errno = ENOBUFS;
				return -1;
			}
			if (r == TLS_RECORD_EOF)
				return 0;
			if (r < 0) {
				tls_conn_fail(t, r);
				errno = EPROTO;
				return -1;
			}
		}
		if (!t->raw && !(t->raw = malloc(PS_TLS_RAW_MAX))) {
			errno = ENOMEM;
			return -1;
		}
		ssize_t n = recv(c->io.fd, t->raw + t->raw_len, PS_TLS_RAW_MAX - t->raw_len, MSG_DONTWAIT);
		if (n <= 0) {
			if (!t->raw_len) {
				free(t->raw);
				t->raw = NULL;
			}
			return n; /* a FIN without close_notify ends it all the same */
		}
		c->received += (uint64_t)n;
		t->raw_len += (uint32_t)n;
	}
}

int tls_conn_seal(struct conn *c, const void *data, size_t len, bool close_notify, char **out,
                  size_t *out_len)
{
	struct conn_tls *t = c->tls;
	size_t room = tls_record_encrypted_size(&t->rec, len) + TLS_RECORD_ALERT_SIZE;
	uint8_t *b = malloc(room);
	if (!b)
		return -1;
	size_t n = 0;
	if (tls_record_encrypt(&t->rec, data, len, b, room, &n) != (ssize_t)len ||
	    (close_notify && tls_record_alert(&t->rec, TLS_RECORD_ALERT_CLOSE_NOTIFY, b, room, &n) < 0)) {
		free(b);
		return -1;
	}
	t->alerted = t->alerted || close_notify;
	*out = (char *)b;
	*out_len = n;
	return 0;
}

void tls_conn_close_notify(struct conn *c)
{
	struct conn_tls *t = c->tls;
	if (!t || !t->live || t->alerted)
		return;
	uint8_t out[TLS_RECORD_ALERT_SIZE];
	size_t len = 0;
	if (tls_record_alert(&t->rec, TLS_RECORD_ALERT_CLOSE_NOTIFY, out, sizeof(out), &len) == 0) {
		ssize_t n = send(c->io.fd, out, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			c->sent += (uint64_t)n;
	}
	t->alerted = true;
}

void tls_conn_deliver(struct conn *c, struct ps_msg *m)
{
	struct conn_tls *t = c->tls;
	if (t->live) {
		tls_record_state_get(&t->rec, &t->handed);
		tls_record_deinit(&t->rec);
		t->live = false;
	}
	m->tls.state = t->handed;
	memcpy(m->tls.server_name, t->sni, sizeof(m->tls.server_name));
	m->tls.raw_len = t->raw_len;
	m->tls_raw = t->raw;
	/* the raw bytes stay here until the worker answers: a request it never touched goes
	 * to another worker with them (tls_conn_resume) */
}

static int tls_conn_take(struct conn_tls *t, const struct tls_record_state *st)
{
	const char *why;
	if (t->live)
		tls_record_deinit(&t->rec);
	t->live = false;
	if (tls_record_init(&t->rec, st, &why) < 0) {
		log_warning("connection %llu: TLS record state not usable: %s", (unsigned long long)t->conn->id, why);
		return -1;
	}
	t->live = true;
	return 0;
}

int tls_conn_returned(struct conn *c, const struct ps_tls *p, const uint8_t *raw)
{
	struct conn_tls *t = c->tls;
	if (!t || p->raw_len > PS_TLS_RAW_MAX)
		return -1;
	if (p->raw_len) {
		if (!t->raw && !(t->raw = malloc(PS_TLS_RAW_MAX)))
			return -1;
		memcpy(t->raw, raw, p->raw_len);
	}
	t->raw_len = p->raw_len;
	if (!t->sni[0])
		memcpy(t->sni, p->server_name, sizeof(t->sni)); /* a connection adopted from the old daemon */
	if (!t->raw_len) {
		free(t->raw);
		t->raw = NULL;
	}
	return tls_conn_take(t, &p->state);
}

int tls_conn_resume_at(struct conn *c, const uint64_t seq[2], const uint64_t key_updates[2])
{
	struct conn_tls *t = c->tls;
	struct tls_record_state st = t->handed;
	const char *why = NULL;
	for (int d = 0; d < 2; d++) {
		if (key_updates[d] < st.dir[d].key_updates ||
		    (key_updates[d] != st.dir[d].key_updates &&
		     tls_record_state_advance(&st, (enum tls_record_dir)d, key_updates[d], &why) < 0)) {
			log_warning("connection %llu: TLS position recorded not reachable: %s", (unsigned long long)c->id,
			            why ? why : "fewer KeyUpdates than at the handoff");
			explicit_bzero(&st, sizeof(st));
			return -1;
		}
		st.dir[d].seq = seq[d];
	}
	/* a KeyUpdate the client asked for was answered or is owed: the slot does not say; the
	 * next record of ours is what the library would have sent */
	st.flags &= (uint8_t)~TLS_RECORD_KEY_UPDATE_OWED;
	t->raw_len = 0; /* what was handed over with it was read there (the counters say so) */
	int rc = tls_conn_take(t, &st);
	explicit_bzero(&st, sizeof(st));
	return rc;
}

int tls_conn_adopt(struct conn *c, const struct ps_tls *p, const uint8_t *raw)
{
	struct conn_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->conn = c;
	t->peeked = true;
	c->tls = t;
	return tls_conn_returned(c, p, raw);
}

int tls_conn_resume(struct conn *c)
{
	struct conn_tls *t = c->tls;
	return t->live ? 0 : tls_conn_take(t, &t->handed);
}

bool tls_conn_misdirected(const struct conn *c, const char *host)
{
	const struct conn_tls *t = c->tls;
	if (!t->sni[0] || !strcmp(t->sni, host))
		return false;
	struct cert_set *set = certs_acquire();
	const void *binding = NULL;
	const char *why;
	bool misdirected = certs_find(set, &c->local, t->sni, &binding, &why) && binding &&
	                   !certs_covers(binding, host);
	certs_release(set);
	return misdirected;
}
