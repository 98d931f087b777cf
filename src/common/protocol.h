/* protocol.h: every control message between portshared and its clients (libportshare,
 * portsharectl), their fields, limits and the protocol version. docs/PROTOCOL.md
 * explains it in prose. Encoders and decoders live in protocol.c and nowhere else.
 *
 * Transport: AF_UNIX SOCK_SEQPACKET, one message per packet, at most PS_MSG_MAX bytes
 * (a larger SEQPACKET send fails with EMSGSIZE). Host byte order (same machine).
 *
 * File descriptor rules (as OpenBSD's imsg):
 * - Only DELIVER and SHM carry an fd (one, SCM_RIGHTS): DELIVER only when flag
 *   PS_DELIVER_FD is set (the first time that session sees that connection), SHM always
 *   (a memfd to map). Any other fd that arrives, on any message, is closed by the
 *   receiver and the message is a protocol error. Clients never send fds.
 * - The takeover link (a session whose HELLO carried PS_HELLO_TAKEOVER) is the one
 *   exception, in one direction: the old daemon sends the new one TAKEOVER_SOCKET and
 *   CONN_HANDOVER, each with exactly one fd. The old daemon closes its own copy once the
 *   message is sent; a new daemon that loses one (MSG_CTRUNC) logs it.
 * - The sender keeps its own copy; the receiver owns the copy it received and must
 *   either keep it or close it. The library caches a connection's fd until the daemon
 *   sends CONN_CLOSED or the library sends END, never closing it on its own before.
 * - recvmsg always with MSG_CMSG_CLOEXEC. A receiver at its fd limit sees MSG_CTRUNC
 *   (the fd is dropped by the kernel): the library answers NOFD and the daemon queues
 *   the request again. Running out of fds is back-pressure, not a crash.
 * - A full socket (EAGAIN) is never a reason to drop a message: the sender queues it.
 *
 * Every decoder checks the total length against the fixed part and the variable
 * parts exactly; a malformed message ends the session that sent it, never the daemon.
 */
#ifndef PS_PROTOCOL_H
#define PS_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls_record.h"

#define PS_PROTO_VERSION 1
/* 96 KiB: a DELIVER of a TLS connection carries, besides a head of at most 24 KiB, its
 * canonical path and up to 16 KiB of plaintext read past the head, the record state and
 * up to TLS_RECORD_PARTIAL_MAX bytes of ciphertext not yet opened (PS_TLS_RAW_MAX). */
#define PS_MSG_MAX 98304
#define PS_QUEUE_NAME_MAX 63 /* bytes, without the NUL */
#define PS_PREFIX_MAX 1024   /* bytes of a URL prefix string, without the NUL */
#define PS_TEXT_MAX 1024     /* bytes of a REPLY text */
#define PS_PROGRAM_MAX 63    /* program name in HELLO */

/* Append-only: never renumber. */
enum ps_msg_type {
	PS_MSG_HELLO = 1,        /* c->d: version, pid, program; d replies REPLY (id = session id) */
	PS_MSG_REPLY = 2,        /* d->c: answer to the request with the same seq */
	PS_MSG_QUEUE_CREATE = 3, /* c->d: name + options; REPLY id = queue id */
	PS_MSG_QUEUE_OPEN = 4,   /* c->d: name; REPLY id = queue id */
	PS_MSG_QUEUE_DELETE = 5, /* c->d: queue id (persistent queues, admin) */
	PS_MSG_QUEUE_DRAIN = 6,  /* c->d: queue id: no more deliveries to this session */
	PS_MSG_URL_ADD = 7,      /* c->d: queue id + prefix */
	PS_MSG_URL_DEL = 8,      /* c->d: queue id + prefix */
	PS_MSG_RECEIVE = 9,      /* c->d: queue id + count of receives to post; no REPLY */
	PS_MSG_DELIVER = 10,     /* d->c: one request (+ the client fd the first time) */
	PS_MSG_NOFD = 11,        /* c->d: a DELIVER's fd was lost (MSG_CTRUNC); no REPLY */
	PS_MSG_RETURN = 12,      /* c->d: response done, daemon reads the connection again */
	PS_MSG_END = 13,         /* c->d: the library is done with the connection */
	PS_MSG_CONN_CLOSED = 14, /* d->c: drop the cached fd of this connection */
	PS_MSG_STATUS = 15,      /* ctl->d: flags; d answers STATUS_DATA... */
	PS_MSG_STATUS_DATA = 16, /* d->ctl: a piece of the status text; flag MORE */
	PS_MSG_SHM = 17,         /* d->c: a memfd to map: the session page, or a route snapshot */
	PS_MSG_LIMITS = 18,      /* d->c: the limits the library enforces (after HELLO, on reload) */
	/* portshared --upgrade (DESIGN §10): "new" is the starting daemon, on a session whose
	 * HELLO carried PS_HELLO_TAKEOVER; "old" the running one */
	PS_MSG_TAKEOVER = 19,          /* new->old: hand over; REPLY only on refusal */
	PS_MSG_TAKEOVER_SOCKET = 20,   /* old->new: a listening socket (fd attached) */
	PS_MSG_TAKEOVER_QUEUE = 21,    /* old->new: one queue's state */
	PS_MSG_TAKEOVER_URL = 22,      /* old->new: one URL prefix of a queue sent before */
	PS_MSG_TAKEOVER_READY = 23,    /* old->new: all state sent; new->old: adopted, accepting */
	PS_MSG_REATTACH = 24,          /* d->c: finish what you hold here, then reconnect */
	PS_MSG_CONN_HANDOVER = 25,     /* old->new: a client connection (fd attached) + its unread bytes */
	PS_MSG_COMMAND = 26,           /* ctl->d: a portsharectl command (its words); d answers STATUS_DATA
	                                * pieces (its output), then REPLY (0, or an error and why) */
	PS_MSG_RETURN_TLS = 27,        /* c->d: RETURN of a TLS connection: + record state and ciphertext */
	PS_MSG_CONN_HANDOVER_TLS = 28, /* old->new: CONN_HANDOVER of a TLS connection (fd attached) */
	PS_MSG_LOG_DRAIN = 29,         /* c->d: the session page's access-log ring is half full; no REPLY */
	/* demand start (HttpWaitForDemandStart): 30 and 31 by explicit number, 32 and 33
	 * being given to other messages at the same time; only to a daemon whose HELLO reply
	 * names PS_FEATURE_DEMAND */
	PS_MSG_DEMAND_WAIT = 30, /* c->d: queue id: send DEMAND once q has a request and no worker;
	                          * REPLY (0, or PS_ENOTFOUND: no such queue in this session) */
	PS_MSG_DEMAND = 31,      /* d->c: queue id, status; seq = the DEMAND_WAIT's */
	PS_MSG_TYPE_END          /* first unused number */
};

struct ps_msg_hdr {
	uint16_t type;  /* enum ps_msg_type */
	uint16_t flags; /* per type */
	uint32_t len;   /* whole message, header included */
	uint32_t seq;   /* requests: chosen by the sender; REPLY: the request's */
	uint32_t reserved;
};

/* An address as the daemon saw it: family AF_INET or AF_INET6, port in host order. */
struct ps_addr {
	uint16_t family;
	uint16_t port;
	uint32_t scope_id;
	uint8_t addr[16];
};

/* HELLO header flags */
#define PS_HELLO_DELEGATE 0x1u /* this library serves delegated connections (DESIGN §6) */
#define PS_HELLO_TAKEOVER 0x2u /* a new portshared that will take over (DESIGN §10); admins only */
#define PS_HELLO_TLS 0x4u      /* this library takes TLS connections (DELIVER's TLS part, RETURN_TLS) */

struct ps_hello {
	uint32_t version; /* PS_PROTO_VERSION */
	uint32_t pid;
	char program[PS_PROGRAM_MAX + 1]; /* NUL-terminated */
};

/* What a daemon does beyond version 1, named by words in its HELLO REPLY's text (an older
 * library ignores a successful reply's text, an older daemon sends none), so that a library
 * never sends a message the daemon would end the session for. */
#define PS_FEATURE_DEMAND "demand" /* DEMAND_WAIT and DEMAND */
#define PS_FEATURES PS_FEATURE_DEMAND

struct ps_reply {
	int32_t status; /* 0 or a negative PS_E* code of portshare.h */
	uint32_t id;    /* queue or session id */
	/* followed by text_len bytes of text (no NUL) */
	uint32_t text_len;
	uint32_t reserved;
};

#define PS_QUEUE_PERSISTENT 0x1u
struct ps_queue_create {
	uint32_t opt_flags; /* PS_QUEUE_* */
	uint32_t max_length;
	uint64_t max_body;
	uint32_t response_wait_ms;
	char name[PS_QUEUE_NAME_MAX + 1]; /* NUL-terminated */
};

struct ps_queue_ref { /* QUEUE_OPEN (name), QUEUE_DELETE/DRAIN (id) */
	uint32_t queue_id;
	char name[PS_QUEUE_NAME_MAX + 1];
};

struct ps_url { /* URL_ADD, URL_DEL */
	uint32_t queue_id;
	uint32_t prefix_len; /* followed by prefix_len bytes (no NUL) */
};

struct ps_receive {
	uint32_t queue_id;
	uint32_t count;
};

/* DEMAND_WAIT (status 0) and DEMAND. DEMAND's status: 0, a request waits and the queue has
 * no worker (no session attached to it has ever posted a RECEIVE, or all that did drain);
 * PS_ENOTFOUND, the queue was deleted. */
struct ps_demand {
	uint32_t queue_id;
	int32_t status;
};

/* DELIVER flags */
#define PS_DELIVER_FD 0x1u  /* an fd is attached (first delivery of this connection here) */
#define PS_DELIVER_TLS 0x2u /* a TLS connection: the TLS part follows the tail (DESIGN §11) */
#define PS_DELIVER_DELEGATE                                                                                  \
	0x4u /* after this response the session may keep the                                                 \
	      * connection and serve its next requests (DESIGN §6) */

struct ps_deliver {
	uint64_t conn_id;
	uint64_t req_id;
	uint32_t queue_id;
	uint32_t flags; /* PS_DELIVER_* */
	struct ps_addr local;
	struct ps_addr remote;
	/* variable parts follow in this order, each exactly its length: */
	uint32_t head_len; /* raw request head, through the empty line */
	uint32_t path_len; /* canonical path */
	uint32_t host_len; /* routing host: lower case, no port */
	uint32_t tail_len; /* bytes the daemon read past the head (body, pipelined) */
	uint32_t tls_len;  /* PS_DELIVER_TLS: a struct ps_tls then its raw_len bytes; else 0 */
	uint32_t reserved;
};

/* The TLS part of DELIVER and RETURN_TLS (DESIGN §11): the record state of the connection
 * as the sender leaves it (src/common/tls_record.h; checked with tls_record_state_check),
 * then the ciphertext read from the socket and not opened yet: whole records the sender
 * did not need and the start of one not complete. The plaintext already opened past the
 * request travels as the message's tail, as on a plain connection. */
#define PS_TLS_RAW_MAX (TLS_RECORD_PARTIAL_MAX + 1)
#define PS_SERVER_NAME_MAX 255 /* an SNI host name, without the NUL */
struct ps_tls {
	struct tls_record_state state;
	uint32_t raw_len; /* followed by raw_len bytes, at most PS_TLS_RAW_MAX */
	uint32_t reserved;
	char server_name[PS_SERVER_NAME_MAX + 1]; /* the SNI name, lower case, NUL-terminated ("": none) */
};

struct ps_conn_ref { /* NOFD, CONN_CLOSED */
	uint64_t conn_id;
	uint64_t req_id;
};

/* A RETURN's tail is at most this long. It holds what the library read past its
 * request: the rest of the DELIVER's tail (at most MaxRequestBytes + 4 KiB = 28 KiB) or
 * the rest of one socket read (the library reads at most 16 KiB at a time). With a head
 * of at most 24 KiB, a canonical path no longer than the head and a read buffer of at
 * most 32 KiB, the DELIVER of the next request always fits in PS_MSG_MAX. */
#define PS_RETURN_TAIL_MAX 32768

/* RETURN flags */
#define PS_RETURN_EOF 0x1u /* the library saw the client's FIN */
struct ps_return {
	uint64_t conn_id;
	uint64_t req_id;
	/* bytes the library sent to and read from the socket since the DELIVER: with its own,
	 * the daemon knows what the kernel's counters are without asking (DESIGN §2a) */
	uint64_t written, consumed;
	uint32_t flags;
	uint32_t tail_len; /* followed by the bytes read past the request */
};

/* RETURN_TLS: a RETURN (same fields and flags) with the TLS part (struct ps_tls, its raw
 * bytes) after the tail. */
struct ps_return_tls {
	uint64_t conn_id;
	uint64_t req_id;
	uint64_t written, consumed;
	uint32_t flags;
	uint32_t tail_len;
	uint32_t tls_len; /* sizeof(struct ps_tls) + its raw_len */
	uint32_t reserved;
};

/* END flags: what the library did to the connection before giving it up */
#define PS_END_SHUTDOWN 0x1u /* it called shutdown(SHUT_WR): daemon does the lingering close */
#define PS_END_ABORT 0x2u    /* it reset the connection (or asks the daemon to) */
#define PS_END_UPGRADED 0x4u /* the process keeps the connection for good */
struct ps_end {
	uint64_t conn_id;
	uint64_t req_id;
	uint32_t flags;
	uint32_t reserved;
};

/* SHM kinds (src/common/shared.h describes what is in them) */
#define PS_SHM_SESSION_PAGE 1u /* shared, writable by the library: counters, delegated slots */
#define PS_SHM_ROUTES 2u       /* sealed, read-only: the route snapshot of `generation` */
#define PS_SHM_SIZE_MAX (1u << 30)
/* What the library enforces on connections it holds, where the daemon cannot see
 * (DESIGN §5): EntityBody, DrainEntityBody, MinSendRate. */
struct ps_limits {
	uint32_t entity_body_ms;       /* longest silence while a request body is read */
	uint32_t drain_entity_body_ms; /* longest time to drain an unread body after a response */
	uint32_t min_send_rate;        /* bytes/s a client must accept while a response waits */
	uint32_t reserved;
};

struct ps_shm {
	uint64_t generation; /* ROUTES: the snapshot's generation */
	uint32_t kind;
	uint32_t size; /* bytes to map */
};

/* TAKEOVER, TAKEOVER_READY, REATTACH */
struct ps_takeover {
	uint32_t pid; /* TAKEOVER and TAKEOVER_READY: the sender's; REATTACH: the new daemon's */
	uint32_t reserved;
};

/* TAKEOVER_SOCKET kinds */
#define PS_TAKEOVER_SOCKET_TCP 1u     /* a bound, listening TCP socket */
#define PS_TAKEOVER_SOCKET_CONTROL 2u /* the control socket's listener: the path stays bound */
#define PS_TAKEOVER_SOCKET_LOCK                                                                              \
	3u /* the state directory's lock (flock), sent first: the new                                        \
	    * daemon checks that it is its own state directory */
struct ps_takeover_socket {
	uint32_t kind;
	uint32_t reserved;
	struct ps_addr addr; /* TCP: the address and port it is bound to; CONTROL: zero */
};

#define PS_USER_MAX 63 /* a user name, without the NUL */
struct ps_takeover_queue {
	uint32_t queue_id;  /* the old daemon's id: the UPGRADE_URLs that follow name it */
	uint32_t opt_flags; /* PS_QUEUE_* */
	uint32_t max_length;
	uint32_t response_wait_ms;
	uint64_t max_body;
	uint32_t uid;         /* its owner */
	uint32_t creator_pid; /* for status lines and refusals */
	uint32_t sessions;    /* sessions attached in the old daemon; 0: no worker to wait for */
	uint32_t reserved;
	char name[PS_QUEUE_NAME_MAX + 1];   /* NUL-terminated */
	char creator_user[PS_USER_MAX + 1]; /* NUL-terminated */
};

/* CONN_HANDOVER: a connection the old daemon was reading (idle, a head begun, a
 * request queued and not delivered, or given back by a worker). At most this many
 * bytes: a head buffer (MaxRequestBytes + 4 KiB) or a RETURN's tail. */
#define PS_HANDOVER_BYTES_MAX PS_RETURN_TAIL_MAX
#define PS_HANDOVER_EOF 0x1u /* the client's FIN was seen */
struct ps_conn_handover {
	uint64_t conn_id; /* the old daemon's, for the logs */
	struct ps_addr local, remote;
	uint32_t flags;     /* PS_HANDOVER_* */
	uint32_t bytes_len; /* followed by the bytes read and not used: a next request's start */
};

/* CONN_HANDOVER_TLS: a CONN_HANDOVER (same fields, flags and limits) with the TLS part
 * (struct ps_tls, its raw bytes) after the bytes. */
struct ps_conn_handover_tls {
	uint64_t conn_id;
	struct ps_addr local, remote;
	uint32_t flags;
	uint32_t bytes_len;
	uint32_t tls_len; /* sizeof(struct ps_tls) + its raw_len */
	uint32_t reserved;
};

#define PS_STATUS_JSON 0x1u    /* header flag on STATUS and COMMAND: answer in JSON */
#define PS_STATUS_METRICS 0x2u /* header flag on STATUS: the metrics (Prometheus text) instead */
#define PS_STATUS_MORE 0x1u    /* header flag on STATUS_DATA: more pieces follow */

/* COMMAND: argc words, each ending with a NUL, args_len bytes in all (the variable part,
 * m->text). portsharectl resolves user and group names to ids before it sends them. */
/* bytes of a command's words: room for sslcert add's certificate chain and key (PEM),
 * within PS_MSG_MAX */
#define PS_COMMAND_MAX 61440
#define PS_COMMAND_WORDS 64 /* words of a command at most */
struct ps_command {
	uint32_t args_len;
	uint32_t reserved;
};

/* LOG_DRAIN: nothing but the call; the fields are for later and zero */
struct ps_log_drain {
	uint32_t reserved[2];
};

/* A decoded message: pointers into the receive buffer, valid while it lives. */
struct ps_msg {
	struct ps_msg_hdr hdr;
	union {
		struct ps_hello hello;
		struct ps_reply reply;
		struct ps_queue_create create;
		struct ps_queue_ref queue;
		struct ps_url url;
		struct ps_receive receive;
		struct ps_demand demand;
		struct ps_deliver deliver;
		struct ps_conn_ref conn;
		struct ps_return ret;
		struct ps_return_tls ret_tls;
		struct ps_end end;
		struct ps_shm shm;
		struct ps_limits limits;
		struct ps_takeover takeover;
		struct ps_takeover_socket usock;
		struct ps_takeover_queue uqueue;
		struct ps_conn_handover handover;
		struct ps_conn_handover_tls handover_tls;
		struct ps_command command;
		struct ps_log_drain log_drain;
	} u;
	const char *text; /* REPLY text, URL prefix (URL_*, TAKEOVER_URL), STATUS_DATA piece,
	                   * COMMAND words */
	size_t text_len;
	const char *head, *path, *host, *tail; /* DELIVER, RETURN (tail), CONN_HANDOVER (tail) */
	/* DELIVER with PS_DELIVER_TLS, RETURN_TLS: the TLS part, copied out of the buffer (it
	 * is not aligned there), and its raw bytes (tls.raw_len) */
	struct ps_tls tls;
	const uint8_t *tls_raw;
};

/* Builds a message into buf (at least PS_MSG_MAX bytes). The caller fills hdr.type,
 * hdr.flags, hdr.seq and the union member for that type, and the variable parts by
 * pointer and length (text for REPLY/URL/TAKEOVER_URL/STATUS_DATA; head/path/host/tail
 * for DELIVER; tail for RETURN and CONN_HANDOVER). Returns the length written, or -1 if it would exceed
 * PS_MSG_MAX or a field is out of range. */
ssize_t protocol_encode(const struct ps_msg *m, void *buf, size_t cap);

/* Decodes len bytes. Returns 0, or -1 with *why set to a static reason when the
 * message is malformed (unknown type, wrong length, unterminated string, ...). */
int protocol_decode(const void *buf, size_t len, struct ps_msg *m, const char **why);

const char *protocol_type_name(unsigned type);
/* A queue name: 1 to PS_QUEUE_NAME_MAX of [A-Za-z0-9._-] (they end up in logs, status and
 * the settings file). */
bool protocol_queue_name_ok(const char *name);
/* Whether m (decoded) carries exactly one fd (the rules above): SHM always, DELIVER with
 * PS_DELIVER_FD, and on the takeover link TAKEOVER_SOCKET and CONN_HANDOVER. */
bool protocol_carries_fd(const struct ps_msg *m);
/* Whether the HELLO REPLY text (len bytes, words separated by spaces) names feature. */
bool protocol_has_feature(const char *text, size_t len, const char *feature);

#endif
