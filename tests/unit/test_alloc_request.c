/* test_alloc_request.c: every allocation of the library's request intake
 * (src/lib/request.c, with conns.c and sock.c; the rest of the library stubbed below)
 * made to fail in turn (tests/unit/failalloc.h):
 *   - a DELIVER that cannot be made into a request is answered NOFD, its fd closed and
 *     no entry left for its connection, so the daemon's redelivery (with the fd) works;
 *   - request_delegated answers NULL and leaves the connection's references as they were;
 *   - ps_request_read answers PS_ENOMEM without failing the body, and reads on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "failalloc.h"

#include "../../src/lib/conns.c"
#include "../../src/lib/request.c"
#include "../../src/lib/sock.c"
#include "../../src/lib/conn_io.c"

#define CONN_ID 41
#define REQ_ID 42
#define QUEUE_ID 3
#define BODY "hello world"
#define BODY_IN_TAIL 5 /* the daemon read "hello" past the head; " world" is on the socket */

static const char head[] = "POST /app/x?y=1 HTTP/1.1\r\n"
                           "Host: Example.com\r\n"
                           "Content-Length: 11\r\n"
                           "X-A: b\r\n"
                           "\r\n";
static const char bad_head[] = "POST /app/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";

/* What the stubbed rest of the library saw. */
static struct {
	ps_request *pushed; /* queue_push */
	int refused;        /* response_refuse's status */
	unsigned nofd;      /* NOFDs sent */
	uint64_t nofd_conn; /* and the connection the last one named */
} seen;

/* The rest of libportshare, reduced to what these tests look at. */

void delegate_drop(ps_request *r)
{
}

void delegate_forget(struct delegation *d)
{
	fail_msg("no connection is delegated in these tests");
}

int client_send_untaken(ps_client *c, uint16_t type, uint64_t conn_id, uint64_t req_id)
{
	assert_int_equal(type, PS_MSG_NOFD);
	assert_int_equal(req_id, REQ_ID);
	seen.nofd++;
	seen.nofd_conn = conn_id;
	return 0;
}

ps_queue *queue_find(const ps_client *c, uint32_t id)
{
	return id == QUEUE_ID ? c->queues : NULL;
}

void queue_push(ps_queue *q, ps_request *r)
{
	assert_null(seen.pushed);
	seen.pushed = r;
}

void response_refuse(ps_request *r, int status)
{
	seen.refused = status;
	request_destroy(r);
}

void response_abort(ps_request *r)
{
	fail_msg("no response is sent in these tests");
}

void response_error(ps_request *r, int status)
{
	fail_msg("no response is sent in these tests (EntityBody never expires here)");
}

struct request_state {
	ps_client *c;
	int daemon_fd;    /* the daemon's copy of the connection: the library gets dups */
	int peer;         /* the client's end of the connection */
	const char *head; /* what the DELIVER carries */
	bool always_fd;   /* the DELIVER carries the fd even if this session caches one */
	ps_request *r;    /* the request under test, once made */
	char body[32];    /* what ps_request_read gave so far */
	size_t body_len;
};

static void msg_deliver(const struct request_state *s, struct ps_msg *m, bool with_fd)
{
	memset(m, 0, sizeof(*m));
	m->hdr.type = PS_MSG_DELIVER;
	m->u.deliver.conn_id = CONN_ID;
	m->u.deliver.req_id = REQ_ID;
	m->u.deliver.queue_id = QUEUE_ID;
	m->u.deliver.flags = with_fd ? PS_DELIVER_FD : 0;
	m->u.deliver.local.family = AF_INET;
	m->u.deliver.remote.family = AF_INET;
	m->u.deliver.head_len = (uint32_t)strlen(s->head);
	m->u.deliver.path_len = 6;
	m->u.deliver.host_len = 11;
	m->u.deliver.tail_len = BODY_IN_TAIL;
	m->head = s->head;
	m->path = "/app/x";
	m->host = "example.com";
	m->tail = BODY;
}

/* A session with one queue, its connection to the client made; if cached, the
 * connection's fd is in the session's cache (a second request on it). */
static struct request_state *session_setup(const char *h, bool cached)
{
	struct request_state *s = calloc(1, sizeof(*s));
	int sv[2];

	assert_non_null(s);
	memset(&seen, 0, sizeof(seen));
	s->head = h;
	s->c = calloc(1, sizeof(*s->c));
	assert_non_null(s->c);
	s->c->sock = -1;
	s->c->gen = 1;
	s->c->queues = calloc(1, sizeof(*s->c->queues));
	assert_non_null(s->c->queues);
	s->c->queues->c = s->c;
	s->c->queues->id = QUEUE_ID;
	s->c->queues->created = true;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	s->daemon_fd = sv[0];
	s->peer = sv[1];
	if (cached)
		assert_non_null(conns_add(&s->c->conns, CONN_ID, dup(s->daemon_fd)));
	return s;
}

static void session_teardown(void *state)
{
	struct request_state *s = state;

	if (s->r)
		request_destroy(s->r);
	conns_free(&s->c->conns);
	close(s->daemon_fd);
	close(s->peer);
	free(s->c->queues);
	free(s->c);
	free(s);
}

/* The daemon's side: a DELIVER, with the connection's fd unless this session caches it
 * (after a NOFD the daemon no longer thinks so, and sends it again). */
static bool deliver_run(void *state)
{
	struct request_state *s = state;
	bool with_fd = s->always_fd || !conns_find(&s->c->conns, CONN_ID);
	int fd = with_fd ? dup(s->daemon_fd) : -1;
	struct ps_msg m;
	unsigned nofd = seen.nofd;

	msg_deliver(s, &m, with_fd);
	request_deliver(s->c, &m, fd, false);
	if (seen.pushed || seen.refused) {
		s->r = seen.pushed;
		return true;
	}
	/* refused for memory: NOFD, and this session no longer holds the connection */
	assert_int_equal(seen.nofd, nofd + 1);
	assert_int_equal(seen.nofd_conn, CONN_ID);
	assert_null(conns_find(&s->c->conns, CONN_ID));
	return false;
}

static void deliver_check(void *state, bool done)
{
	struct request_state *s = state;
	ps_request *r = s->r;

	if (!done || seen.refused) {
		/* nothing half-made is left on the session */
		assert_null(s->c->requests);
		assert_int_equal(s->c->conns.count, done ? 1 : 0);
		if (seen.refused)
			assert_int_equal(seen.refused, 400);
		return;
	}
	assert_ptr_equal(s->c->requests, r);
	assert_string_equal(ps_request_method(r), "POST");
	assert_string_equal(ps_request_target(r), "/app/x?y=1");
	assert_string_equal(ps_request_path(r), "/app/x");
	assert_string_equal(ps_request_query(r), "y=1");
	assert_string_equal(ps_request_host(r), "example.com");
	assert_int_equal(ps_request_header_count(r), 3);
	assert_string_equal(ps_request_header(r, "x-a"), "b");
	assert_int_equal(ps_request_content_length(r), 11);
	/* the table's reference and the request's */
	assert_ptr_equal(conns_find(&s->c->conns, CONN_ID), r->conn);
	assert_int_equal(r->conn->refs, 2);
}

static void *fd_attached_setup(void)
{
	return session_setup(head, false);
}

static void *fd_cached_setup(void)
{
	return session_setup(head, true);
}

/* An fd for a connection the session caches already (a stale entry): the new one
 * replaces it, and when that fails for memory neither stays. */
static void *stale_cached_setup(void)
{
	struct request_state *s = session_setup(head, true);

	s->always_fd = true;
	return s;
}

static void *unparsable_setup(void)
{
	return session_setup(bad_head, false);
}

static void test_deliver_with_fd(void **unused)
{
	const struct failalloc_case c = {fd_attached_setup, deliver_run, deliver_check, session_teardown};

	/* the cache's array and entry; the request, its head, tail, strings and fields */
	assert_int_equal(failalloc_run(&c), 7);
}

static void test_deliver_cached_fd(void **unused)
{
	const struct failalloc_case c = {fd_cached_setup, deliver_run, deliver_check, session_teardown};

	assert_int_equal(failalloc_run(&c), 5);
}

static void test_deliver_replacing_fd(void **unused)
{
	const struct failalloc_case c = {stale_cached_setup, deliver_run, deliver_check, session_teardown};

	assert_int_equal(failalloc_run(&c), 6);
}

static void test_deliver_unparsable(void **unused)
{
	const struct failalloc_case c = {unparsable_setup, deliver_run, deliver_check, session_teardown};

	/* the cache's array and entry; the request, its head and tail (no strings: 400) */
	assert_int_equal(failalloc_run(&c), 5);
}

/* request_delegated (delegate.c's way in): NULL, and the connection's references as they
 * were. */

static bool delegated_run(void *state)
{
	struct request_state *s = state;
	struct held_conn *cn = conns_find(&s->c->conns, CONN_ID);
	struct ps_msg m;

	msg_deliver(s, &m, false);
	s->r = request_delegated(s->c, s->c->queues, &m, cn, NULL);
	return s->r != NULL;
}

static void delegated_check(void *state, bool done)
{
	struct request_state *s = state;
	struct held_conn *cn = conns_find(&s->c->conns, CONN_ID);

	assert_non_null(cn);
	assert_int_equal(cn->refs, done ? 2 : 1);
	assert_ptr_equal(s->c->requests, s->r);
	if (done) {
		assert_true(s->r->delegated);
		assert_string_equal(ps_request_path(s->r), "/app/x");
	}
}

static void test_delegated(void **unused)
{
	const struct failalloc_case c = {fd_cached_setup, delegated_run, delegated_check, session_teardown};

	assert_int_equal(failalloc_run(&c), 5);
}

/* ps_request_read: the body decoder and the socket buffer. */

static void *read_setup(void)
{
	struct request_state *s = session_setup(head, false);

	assert_true(deliver_run(s));
	const char *rest = BODY + BODY_IN_TAIL;
	assert_int_equal(write(s->peer, rest, strlen(rest)), strlen(rest));
	return s;
}

static bool read_run(void *state)
{
	struct request_state *s = state;

	for (;;) {
		ssize_t n = ps_request_read(s->r, s->body + s->body_len, sizeof(s->body) - s->body_len, 1000);
		if (n == 0)
			return true;
		if (n < 0) {
			assert_int_equal(n, PS_ENOMEM);
			return false;
		}
		s->body_len += (size_t)n;
	}
}

static void read_check(void *state, bool done)
{
	struct request_state *s = state;

	/* what was read so far is the body's start, and the body is not failed */
	assert_false(s->r->body_failed);
	assert_memory_equal(s->body, BODY, s->body_len);
	if (done) {
		assert_int_equal(s->body_len, strlen(BODY));
		assert_false(request_must_close(s->r));
	}
}

static void test_read_body(void **unused)
{
	const struct failalloc_case c = {read_setup, read_run, read_check, session_teardown};

	/* the decoder; the socket buffer, made whole before the first byte is consumed */
	assert_int_equal(failalloc_run(&c), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_deliver_with_fd),
	    cmocka_unit_test(test_deliver_cached_fd),
	    cmocka_unit_test(test_deliver_replacing_fd),
	    cmocka_unit_test(test_deliver_unparsable),
	    cmocka_unit_test(test_delegated),
	    cmocka_unit_test(test_read_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
