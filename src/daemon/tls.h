/* tls.h: a client connection's TLS in the daemon (DESIGN §11): the handshake (GnuTLS,
 * certificates from certs.c by SNI or address), then the connection's records through
 * the record layer of src/common/tls_record.c while the daemon holds it, and the record
 * state that goes with it to a worker (DELIVER) and comes back (RETURN_TLS). docs/TLS.md
 * explains the choices. Only conn.c, handoff.c and session.c call these. */
#ifndef PS_DAEMON_TLS_H
#define PS_DAEMON_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conn-t.h"
#include "protocol.h"

/* Global set-up of the handshake parameters (priorities). 0, or -1 with why. */
int tls_global_init(char *err, size_t errlen);
void tls_global_deinit(void);

/* Starts the server side of a handshake on c (c->tls). 0, or -1 (no memory). */
int tls_conn_start(struct conn *c);
/* Frees c->tls (any state; wipes the keys). */
void tls_conn_free(struct conn *c);

enum tls_step {
	TLS_STEP_DONE,   /* the handshake is finished: records are the layer's from here on */
	TLS_STEP_READ,   /* wait for input */
	TLS_STEP_WRITE,  /* wait until the socket takes more */
	TLS_STEP_PLAIN,  /* the client spoke plain HTTP to a TLS port: answer 400 in clear */
	TLS_STEP_FAILED, /* refused or broken: the reason is logged, an alert sent; close */
};
/* Goes on with the handshake as far as the socket allows. */
enum tls_step tls_conn_handshake(struct conn *c);

/* Whether c's records are the daemon's now (the handshake is done and no worker holds
 * the connection): then its reads and writes go through tls_conn_recv/tls_conn_seal. */
bool tls_conn_live(const struct conn *c);
/* Reads and opens records: up to room bytes of plaintext into buf (room at least
 * TLS_RECORD_DECRYPT_ROOM makes progress certain). recv's conventions: the count, 0 at
 * the end (close_notify or the FIN), -1 with errno EAGAIN, ENOBUFS (room too small for
 * the next record), EPROTO (a TLS error: the alert is sent, the reason logged) or the
 * socket's error. Counts the ciphertext in c->received. */
ssize_t tls_conn_recv(struct conn *c, void *buf, size_t room);
/* Seals len bytes into a new malloc'd buffer of records (*out, *out_len), to be written
 * as they are. With close_notify: the alert follows. 0, or -1 (no memory, layer failure). */
int tls_conn_seal(struct conn *c, const void *data, size_t len, bool close_notify, char **out,
                  size_t *out_len);
/* Sends close_notify now, best effort (before a FIN). */
void tls_conn_close_notify(struct conn *c);

/* The connection goes to a worker: fills the TLS part of a DELIVER. The daemon's records
 * stop here until tls_conn_returned (or tls_conn_resume). */
void tls_conn_deliver(struct conn *c, struct ps_msg *m);
/* A RETURN_TLS: the worker's record state and the ciphertext it had not opened. 0, or -1
 * (a state the layer refuses: the connection cannot go on). */
int tls_conn_returned(struct conn *c, const struct ps_tls *t, const uint8_t *raw);
/* A delegated connection whose worker died: the records are the daemon's again, at the
 * position its slot recorded (each direction's next sequence number and KeyUpdate count),
 * derived from the state handed over with it. 0, or -1 (a position that cannot be). */
int tls_conn_resume_at(struct conn *c, const uint64_t seq[2], const uint64_t key_updates[2]);
/* A connection the old daemon handed over (--upgrade) with its TLS part: c->tls made from
 * it. 0, or -1. */
int tls_conn_adopt(struct conn *c, const struct ps_tls *t, const uint8_t *raw);
/* The worker never touched the connection (nothing read or written since the DELIVER):
 * the records are the daemon's again, as they were. 0 or -1. */
int tls_conn_resume(struct conn *c);

/* Whether a request for host (lower case, no port) came on a connection whose handshake
 * named another server, and the certificate of that name's binding does not cover host:
 * the 421 of DESIGN §11. Connections without SNI are never misdirected. */
bool tls_conn_misdirected(const struct conn *c, const char *host);

#endif
