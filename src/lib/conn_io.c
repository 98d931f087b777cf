/* conn_io.c: a held client connection's reads and writes, plain or TLS (conn_io.h).
 *
 * TLS: writes are gathered into records of up to the client's limit (a response head and
 * its first body bytes make one record, not one each), sealed into a buffer and sent with
 * sock.c's send, which waits as MinSendRate allows. Reads fill a raw buffer from the
 * socket and open whole records into a plaintext buffer that the caller's reads drain;
 * both are handed back to the daemon by RETURN_TLS when the response is done. */
#include "conn_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portshare.h"
#include "sock.h"
#include "tls_record.h"

#define RAW_CAP PS_TLS_RAW_MAX                                         /* ciphertext not opened */
#define PLAIN_CAP (TLS_RECORD_PLAINTEXT_MAX + TLS_RECORD_DECRYPT_ROOM) /* opened, not read */
#define STAGE_CAP TLS_RECORD_PLAINTEXT_MAX                             /* to seal */
#define SEALED_CAP (TLS_RECORD_PLAINTEXT_MAX + 2 * TLS_RECORD_KEY_UPDATE_SIZE + 512)

/* The buffers exist only while they hold something (a read or a send in progress): an
 * idle kept connection costs its record state, not 80 KiB. */
struct conn_tls_io {
	struct tls_record rec;
	char server_name[PS_SERVER_NAME_MAX + 1];
	bool alerted; /* an alert or close_notify went out */
	uint32_t raw_len, plain_off, plain_len, stage_len;
	uint32_t plain_hw, stage_hw; /* how far plain and stage were written: what is cleared */
	uint8_t *raw, *plain;        /* one allocation: RAW_CAP then PLAIN_CAP bytes; NULL when both empty */
	uint8_t *stage, *sealed;     /* one allocation: STAGE_CAP then SEALED_CAP; NULL outside a send */
};

/* The read buffers, made when needed. 0 or PS_ENOMEM. */
static int tls_in_buffers(struct conn_tls_io *t)
{
	if (t->raw)
		return 0;
	t->raw = malloc(RAW_CAP + PLAIN_CAP);
	if (!t->raw)
		return PS_ENOMEM;
	t->plain = t->raw + RAW_CAP;
	return 0;
}

/* Gives the read buffers back when nothing waits in them. */
static void tls_in_release(struct conn_tls_io *t)
{
	if (!t->raw || t->raw_len || t->plain_len > t->plain_off)
		return;
	/* only what held plaintext: clearing the whole buffers cost a new TLS connection with
	 * one small request 49,000 instructions, 70 % of the worker's (callgrind) */
	explicit_bzero(t->plain, t->plain_hw);
	free(t->raw);
	t->raw = t->plain = NULL;
	t->plain_off = t->plain_len = t->plain_hw = 0;
}

static int tls_out_buffers(struct conn_tls_io *t)
{
	if (t->stage)
		return 0;
	t->stage = malloc(STAGE_CAP + SEALED_CAP);
	if (!t->stage)
		return PS_ENOMEM;
	t->sealed = t->stage + STAGE_CAP;
	return 0;
}

static void tls_out_release(struct conn_tls_io *t)
{
	if (!t->stage || t->stage_len)
		return;
	explicit_bzero(t->stage, t->stage_hw);
	free(t->stage);
	t->stage = t->sealed = NULL;
	t->stage_hw = 0;
}

bool conn_io_is_tls(const struct held_conn *cn)
{
	return cn->tls != NULL;
}

void conn_io_free_tls(struct held_conn *cn)
{
	struct conn_tls_io *t = cn->tls;
	if (!t)
		return;
	tls_record_deinit(&t->rec);
	t->raw_len = t->plain_len = t->plain_off = t->stage_len = 0;
	tls_in_release(t);
	tls_out_release(t);
	free(t);
	cn->tls = NULL;
}

int conn_io_set_tls(struct held_conn *cn, const struct ps_tls *p, const uint8_t *raw)
{
	if (!p) {
		conn_io_free_tls(cn);
		return 0;
	}
	conn_io_free_tls(cn);
	struct conn_tls_io *t = calloc(1, sizeof(*t));
	if (!t)
		return PS_ENOMEM;
	const char *why;
	if (p->raw_len > RAW_CAP || tls_record_init(&t->rec, &p->state, &why) < 0) {
		free(t);
		return PS_EPROTO;
	}
	if (p->raw_len && tls_in_buffers(t) < 0) {
		tls_record_deinit(&t->rec);
		free(t);
		return PS_ENOMEM;
	}
	if (p->raw_len)
		memcpy(t->raw, raw, p->raw_len);
	t->raw_len = p->raw_len;
	memcpy(t->server_name, p->server_name, sizeof(t->server_name));
	cn->tls = t;
	return 0;
}

bool conn_io_tls_info(const struct held_conn *cn, uint16_t *version, char *server_name)
{
	if (!cn->tls)
		return false;
	*version = cn->tls->rec.state.version;
	memcpy(server_name, cn->tls->server_name, sizeof(cn->tls->server_name));
	return true;
}

void conn_io_tls_pos(const struct held_conn *cn, struct conn_io_pos *pos)
{
	memset(pos, 0, sizeof(*pos));
	if (!cn->tls)
		return;
	for (int d = 0; d < 2; d++) {
		pos->seq[d] = cn->tls->rec.state.dir[d].seq;
		pos->key_updates[d] = cn->tls->rec.state.dir[d].key_updates;
	}
}

bool conn_io_pending(const struct held_conn *cn)
{
	const struct conn_tls_io *t = cn->tls;
	return t && (t->plain_len > t->plain_off || t->raw_len >= TLS_RECORD_HEADER_LEN);
}

/* Seals what is staged (and a close_notify when asked) and sends it all; last(arg) just
 * before the send that completes it. */
static int tls_flush_last(struct held_conn *cn, int flags, bool close_notify, conn_io_last_fn fn, void *arg)
{
	struct conn_tls_io *t = cn->tls;
	size_t off = 0;
	if (tls_out_buffers(t) < 0)
		return PS_ENOMEM;
	while (off < t->stage_len || close_notify) {
		size_t out = 0;
		ssize_t n = tls_record_encrypt(&t->rec, t->stage + off, t->stage_len - off, t->sealed,
		                               SEALED_CAP - TLS_RECORD_ALERT_SIZE, &out);
		if (n < 0)
			return PS_ESYSTEM;
		off += (size_t)n;
		bool last = off == t->stage_len;
		if (last && close_notify) {
			if (tls_record_alert(&t->rec, TLS_RECORD_ALERT_CLOSE_NOTIFY, t->sealed, SEALED_CAP,
			                     &out) < 0)
				return PS_ESYSTEM;
			t->alerted = true;
			close_notify = false;
		}
		if (last && fn) {
			struct conn_io_pos pos;
			conn_io_tls_pos(cn, &pos);
			fn(arg, cn->written + out, &pos);
		}
		struct iovec iov = {t->sealed, out};
		int rc = sock_send(cn->fd, &iov, 1, last ? flags : 0, &cn->written);
		if (rc < 0)
			return rc;
	}
	t->stage_len = 0;
	return 0;
}

static int tls_flush(struct held_conn *cn, int flags, bool close_notify)
{
	return tls_flush_last(cn, flags, close_notify, NULL, NULL);
}

/* A send is over (rc its result): what was staged and not sent is dropped with the
 * response, and the send buffers go. */
static int tls_send_done(struct conn_tls_io *t, int rc)
{
	t->stage_len = 0;
	tls_out_release(t);
	return rc;
}

/* Stages len bytes, sealing and sending each full record's worth. */
static int tls_stage(struct held_conn *cn, const void *data, size_t len)
{
	struct conn_tls_io *t = cn->tls;
	size_t record = t->rec.state.max_plaintext;
	if (tls_out_buffers(t) < 0)
		return PS_ENOMEM;
	while (len > 0) {
		if (t->stage_len == 0 && len >= record) {
			/* a whole record's worth with nothing staged: sealed from where it lies (a
			 * large body is not copied first: 1 MiB cost 1 M instructions of memcpy) */
			size_t out = 0;
			ssize_t n = tls_record_encrypt(&t->rec, data, record, t->sealed,
			                               SEALED_CAP - TLS_RECORD_ALERT_SIZE, &out);
			if (n <= 0)
				return PS_ESYSTEM;
			struct iovec iov = {t->sealed, out};
			int rc = sock_send(cn->fd, &iov, 1, 0, &cn->written);
			if (rc < 0)
				return rc;
			data = (const char *)data + n;
			len -= (size_t)n;
			continue;
		}
		size_t room = record - t->stage_len;
		size_t n = len < room ? len : room;
		memcpy(t->stage + t->stage_len, data, n);
		t->stage_len += (uint32_t)n;
		if (t->stage_len > t->stage_hw)
			t->stage_hw = t->stage_len;
		data = (const char *)data + n;
		len -= n;
		if (t->stage_len == record) {
			int rc = tls_flush(cn, 0, false);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

int conn_io_send(struct held_conn *cn, struct iovec *iov, int iovcnt, int flags)
{
	if (!cn->tls)
		return sock_send(cn->fd, iov, iovcnt, flags, &cn->written);
	if (cn->tls->alerted)
		return PS_ECLOSED;
	int rc = 0;
	for (int i = 0; i < iovcnt && rc == 0; i++)
		rc = tls_stage(cn, iov[i].iov_base, iov[i].iov_len);
	if (rc == 0)
		rc = tls_flush(cn, flags, false);
	return tls_send_done(cn->tls, rc);
}

int conn_io_send_last(struct held_conn *cn, struct iovec *iov, int iovcnt, int flags, conn_io_last_fn last,
                      void *arg)
{
	if (!cn->tls || cn->tls->alerted)
		return conn_io_send(cn, iov, iovcnt, flags);
	int rc = 0;
	for (int i = 0; i < iovcnt && rc == 0; i++)
		rc = tls_stage(cn, iov[i].iov_base, iov[i].iov_len);
	if (rc == 0 && cn->tls->stage_len == 0) {
		/* everything went out in whole records already (or there was nothing) */
		struct conn_io_pos pos;
		conn_io_tls_pos(cn, &pos);
		last(arg, cn->written, &pos);
	} else if (rc == 0) {
		rc = tls_flush_last(cn, flags, false, last, arg);
	}
	return tls_send_done(cn->tls, rc);
}

int conn_io_sendfile(struct held_conn *cn, int file, off_t offset, size_t len)
{
	if (!cn->tls)
		return sock_sendfile(cn->fd, file, offset, len, &cn->written);
	struct conn_tls_io *t = cn->tls;
	if (t->alerted)
		return PS_ECLOSED;
	if (tls_out_buffers(t) < 0)
		return PS_ENOMEM;
	size_t record = t->rec.state.max_plaintext;
	int rc = 0;
	while (len > 0 && rc == 0) {
		size_t want = record - t->stage_len;
		if (want > len)
			want = len;
		ssize_t n = pread(file, t->stage + t->stage_len, want, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENODATA; /* the file is shorter than the response promised */
			rc = PS_ESYSTEM;
			break;
		}
		t->stage_len += (uint32_t)n;
		if (t->stage_len > t->stage_hw)
			t->stage_hw = t->stage_len;
		offset += n;
		len -= (size_t)n;
		if (t->stage_len == record || len == 0)
			rc = tls_flush(cn, 0, false);
	}
	return tls_send_done(t, rc);
}

/* A TLS error in the client's records: the alert it calls for, once. */
static void tls_fail(struct held_conn *cn, enum tls_record_result r)
{
	struct conn_tls_io *t = cn->tls;
	int alert = tls_record_alert_for(r);
	if (alert < 0 || t->alerted)
		return;
	uint8_t out[TLS_RECORD_ALERT_SIZE];
	size_t len = 0;
	if (tls_record_alert(&t->rec, (uint8_t)alert, out, sizeof(out), &len) == 0) {
		struct iovec iov = {out, len};
		(void)sock_send(cn->fd, &iov, 1, 0, &cn->written);
	}
	t->alerted = true;
}

/* Reads through the records, waiting until deadline for the socket; with now, never
 * waiting (PS_EAGAIN instead). */
static ssize_t tls_recv_in(struct held_conn *cn, void *buf, size_t len, int64_t deadline, bool now)
{
	struct conn_tls_io *t = cn->tls;
	for (;;) {
		if (t->plain_len > t->plain_off) {
			size_t n = t->plain_len - t->plain_off;
			if (n > len)
				n = len;
			memcpy(buf, t->plain + t->plain_off, n);
			t->plain_off += (uint32_t)n;
			if (t->plain_off == t->plain_len)
				t->plain_off = t->plain_len = 0;
			return (ssize_t)n;
		}
		if (t->raw_len) {
			size_t used = 0, out = 0;
			/* the records open in place: no more plaintext is written than ciphertext read */
			uint32_t touched = t->raw_len < PLAIN_CAP ? t->raw_len : PLAIN_CAP;
			if (touched > t->plain_hw)
				t->plain_hw = touched;
			enum tls_record_result r =
			    tls_record_decrypt(&t->rec, t->raw, t->raw_len, &used, t->plain, PLAIN_CAP, &out);
			memmove(t->raw, t->raw + used, t->raw_len - used);
			t->raw_len -= (uint32_t)used;
			t->plain_len = (uint32_t)out;
			if (out)
				continue;
			if (r == TLS_RECORD_EOF)
				return 0;
			if (r < 0) {
				tls_fail(cn, r);
				return PS_ECLOSED;
			}
			/* NEED_MORE (OUT_FULL cannot be: the plaintext buffer is empty) */
		}
		size_t room = RAW_CAP - t->raw_len;
		ssize_t n = now ? sock_recv_now(cn->fd, t->raw + t->raw_len, room, &cn->consumed)
		                : sock_recv(cn->fd, t->raw + t->raw_len, room, deadline, &cn->consumed);
		if (n <= 0)
			return n; /* a FIN without close_notify ends the stream all the same */
		t->raw_len += (uint32_t)n;
	}
}

static ssize_t tls_recv(struct held_conn *cn, void *buf, size_t len, int64_t deadline, bool now)
{
	struct conn_tls_io *t = cn->tls;
	if (tls_in_buffers(t) < 0)
		return PS_ENOMEM;
	ssize_t n = tls_recv_in(cn, buf, len, deadline, now);
	tls_in_release(t);
	return n;
}

ssize_t conn_io_recv(struct held_conn *cn, void *buf, size_t len, int64_t deadline)
{
	if (!cn->tls)
		return sock_recv(cn->fd, buf, len, deadline, &cn->consumed);
	return tls_recv(cn, buf, len, deadline, false);
}

ssize_t conn_io_recv_now(struct held_conn *cn, void *buf, size_t len)
{
	if (!cn->tls)
		return sock_recv_now(cn->fd, buf, len, &cn->consumed);
	return tls_recv(cn, buf, len, 0, true);
}

void conn_io_close_notify(struct held_conn *cn)
{
	if (cn->tls && !cn->tls->alerted && cn->fd >= 0)
		tls_send_done(cn->tls, tls_flush(cn, 0, true));
}

void conn_io_tls_return(struct held_conn *cn, struct ps_msg *m, const uint8_t **plain, size_t *plain_len)
{
	struct conn_tls_io *t = cn->tls;
	tls_record_state_get(&t->rec, &m->tls.state);
	m->tls.raw_len = t->raw_len;
	m->tls_raw = t->raw;
	*plain = t->plain ? t->plain + t->plain_off : (const uint8_t *)"";
	*plain_len = t->plain_len - t->plain_off;
}
