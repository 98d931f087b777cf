/* certs.h: the TLS certificate bindings (portsharectl sslcert; DESIGN §11), as HTTP.sys's
 * `netsh http add sslcert`: by name and port (SNI, --hostport) and by address and port
 * (--ipport: any name on that endpoint, also clients that send no SNI). The SNI binding
 * wins over the ipport one; an ipport binding on 0.0.0.0:P / [::]:P serves every address
 * of port P that has no binding of its own.
 *
 * The bindings live in the state directory (certificate chain and key copied there, 0600,
 * by the daemon when an admin's portsharectl sends them), are loaded into GnuTLS
 * credentials once, and are read by handshakes on any event-loop thread through a
 * reference-counted snapshot: a reload (sslcert reload, SIGHUP) builds a new snapshot and
 * swaps it in; handshakes in flight keep the old one until they release it.
 *
 * Also the daemon's session-ticket key (kept in the state directory, so resumption survives
 * restarts and --upgrade, which hands over the same directory). */
#ifndef PS_DAEMON_CERTS_H
#define PS_DAEMON_CERTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <gnutls/gnutls.h>

#include "addr.h"

struct cert_set; /* an immutable snapshot of every binding, reference-counted */

/* Loads the bindings and the ticket key from the state directory (at start, after the
 * directory is locked). 0, or -1 with why in err (a binding that cannot be loaded is
 * logged and left out, not fatal). */
int certs_init(const char *state_dir, char *err, size_t errlen);
/* Re-reads every binding's files from the state directory and swaps the snapshot in;
 * established connections are untouched. 0, or -1 with why (the old snapshot stays). */
int certs_reload(char *err, size_t errlen);
void certs_shutdown(void);

/* The current snapshot, held (any thread); release it when the handshake is over. Never
 * NULL after certs_init (a snapshot may hold no binding). */
struct cert_set *certs_acquire(void);
void certs_release(struct cert_set *set);

/* Whether port has any binding (a quick check before a handshake is begun). */
bool certs_port_has_binding(const struct cert_set *set, uint16_t port);

/* The credentials for a handshake that arrived on local (address and port) with SNI name
 * sni (lower case; NULL when the client sent none): the hostport binding for (sni, port),
 * else the ipport binding for local, else the wildcard ipport binding of the port. NULL when
 * none; then *why says what was looked for, for the error log. Valid while set is held.
 * *binding (when not NULL) is an opaque id of the binding chosen, for certs_covers. */
gnutls_certificate_credentials_t certs_find(const struct cert_set *set, const struct ps_addr *local,
                                            const char *sni, const void **binding, const char **why);

/* Whether the certificate of binding (from certs_find) is valid for host (a request's Host,
 * lower case, no port): its subjectAltName/CN match as gnutls_x509_crt_check_hostname does.
 * A request whose Host it does not cover gets 421 (DESIGN §11). */
bool certs_covers(const void *binding, const char *host);

/* The bindings of port as a JSON array (kind, endpoint, subject, names, not_after): who. */
void certs_port_json(FILE *f, uint16_t port);

/* The session-ticket master key (gnutls_session_ticket_key_generate's format), for
 * gnutls_session_ticket_enable_server; valid until certs_shutdown. */
const gnutls_datum_t *certs_ticket_key(void);

/* ---------------------------------------------------------------- changed by admins
 * (admin.c's sslcert; thread 0 only). Each change is written to the state directory
 * before it is in force; a failed one changes nothing. */

#define CERTS_NAME_MAX 253  /* a hostport name */
#define CERTS_PATH_MAX 1024 /* a source path given at add */

struct certs_add {
	const char *kind;        /* "hostport" or "ipport" */
	const char *endpoint;    /* "NAME:PORT" or "ADDR:PORT" ("[::]:443") */
	bool replace;            /* the binding must exist (sslcert reload), else must not */
	const char *chain, *key; /* PEM: the chain (leaf first) and its unencrypted key */
	size_t chain_len, key_len;
	const char *src_cert, *src_key; /* the files portsharectl read them from */
};
/* Validates (the key is the leaf's), copies the files into the state directory, then
 * swaps the snapshot. 0, or a PS_E* status with why in err (the old binding stays); a
 * warning for people (an expired certificate) in warn, else "". */
int certs_add(const struct certs_add *add, char *warn, size_t warnlen, char *err, size_t errlen);
/* 0, or a PS_E* status with why in err. */
int certs_delete(const char *kind, const char *endpoint, char *err, size_t errlen);
/* Each binding: kind, endpoint, subject, names, validity, SHA-256 fingerprint, the source
 * files (sslcert show). */
void certs_show(FILE *f, bool json);

#endif
