/* conn_io.h: reads and writes of a client connection the library holds, plain or TLS
 * (DESIGN §11). A plain connection goes straight to sock.c; a TLS one seals and opens
 * records with src/common/tls_record.c from the record state its DELIVER carried, and
 * gives that state back with RETURN_TLS. The byte counts (written, consumed) are the
 * socket's bytes, ciphertext for TLS, as the daemon's checks need (DESIGN §2a). */
#ifndef PS_LIB_CONN_IO_H
#define PS_LIB_CONN_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "conns.h"
#include "protocol.h"

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

/* The record state of a DELIVER with PS_DELIVER_TLS (with its raw bytes) becomes cn's, or
 * with t NULL cn is plain. 0, or PS_EPROTO (a state the layer refuses) / PS_ENOMEM. */
int conn_io_set_tls(struct held_conn *cn, const struct ps_tls *t, const uint8_t *raw);
/* Frees cn's TLS part (keys wiped). */
void conn_io_free_tls(struct held_conn *cn);
bool conn_io_is_tls(const struct held_conn *cn);

/* Whether cn is TLS; then its version (TLS_RECORD_TLS12/13) and SNI name (copied, at
 * most PS_SERVER_NAME_MAX + 1 bytes). */
bool conn_io_tls_info(const struct held_conn *cn, uint16_t *version, char *server_name);

/* Where a TLS connection's records are: each direction's next sequence number and
 * KeyUpdates so far (tls_record.h's dir order). What a delegated connection's slot
 * records, so that the daemon can go on from the state it handed over (DESIGN §11). */
struct conn_io_pos {
	uint64_t seq[2], key_updates[2];
};
void conn_io_tls_pos(const struct held_conn *cn, struct conn_io_pos *pos);
/* Called once, just before the last send of conn_io_send_last, with the byte count and
 * record position the connection will be at when that send is complete. */
typedef void (*conn_io_last_fn)(void *arg, uint64_t written, const struct conn_io_pos *pos);

/* sock.c's calls, through the records when cn is TLS; the same results. */
int conn_io_send(struct held_conn *cn, struct iovec *iov, int iovcnt, int flags);
/* conn_io_send of a response's last bytes on a TLS connection, calling last(arg, ...)
 * before the send that ends them. */
int conn_io_send_last(struct held_conn *cn, struct iovec *iov, int iovcnt, int flags, conn_io_last_fn last,
                      void *arg);
/* sock_recv_now: what is there (opened records first), without waiting. */
ssize_t conn_io_recv_now(struct held_conn *cn, void *buf, size_t len);
/* Whether opened plaintext or whole records wait in the library (no socket event will
 * say so). */
bool conn_io_pending(const struct held_conn *cn);
int conn_io_sendfile(struct held_conn *cn, int file, off_t offset, size_t len);
ssize_t conn_io_recv(struct held_conn *cn, void *buf, size_t len, int64_t deadline);
/* Before a FIN: TLS's close_notify (nothing for a plain connection). */
void conn_io_close_notify(struct held_conn *cn);

/* The TLS part of a RETURN_TLS: the state now, the ciphertext not opened; and the
 * plaintext opened but not read, which goes after the caller's tail (*plain, *plain_len). */
void conn_io_tls_return(struct held_conn *cn, struct ps_msg *m, const uint8_t **plain, size_t *plain_len);

#pragma GCC visibility pop

#endif
