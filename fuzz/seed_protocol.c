/* seed_protocol.c: writes fuzz_protocol's seeds, one file per message, with the real
 * encoders: a message of every type (with and without variable parts) and a route
 * snapshot as snapshot_write makes it. `make fuzz-seeds` runs it; its output is
 * committed in fuzz/seeds/fuzz_protocol/.
 * usage: seed_protocol DIR */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portshare.h"
#include "protocol.h"
#include "route.h"
#include "shared.h"
#include "url_prefix.h"

static const char *seed_dir;

static void seed_write(const char *name, const void *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "seed_protocol: cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void seed_msg(const char *name, struct ps_msg *m)
{
	static char wire[PS_MSG_MAX];
	ssize_t n = protocol_encode(m, wire, sizeof(wire));
	if (n < 0) {
		fprintf(stderr, "seed_protocol: %s does not encode\n", name);
		exit(1);
	}
	seed_write(name, wire, (size_t)n);
	memset(m, 0, sizeof(*m));
}

static struct ps_addr seed_addr(int family, const char *text, uint16_t port)
{
	struct ps_addr a = {.family = (uint16_t)family, .port = port};
	inet_pton(family, text, a.addr);
	return a;
}

/* A record state the layer accepts (TLS 1.2 ChaCha20-Poly1305: no secrets), with raw bytes. */
static void seed_tls(struct ps_msg *m, const uint8_t *raw, uint32_t raw_len)
{
	struct tls_record_state *s = &m->tls.state;
	s->version = TLS_RECORD_TLS12;
	s->cipher = TLS_RECORD_CHACHA20_POLY1305;
	s->hash = TLS_RECORD_SHA256;
	s->max_plaintext = 4096;
	for (int d = 0; d < 2; d++) {
		s->dir[d].seq = 1u + (unsigned)d;
		s->dir[d].key_len = 32;
		s->dir[d].iv_len = 12;
		memset(s->dir[d].key, 0x41 + d, 32);
		memset(s->dir[d].iv, 0x61 + d, 12);
	}
	m->tls.raw_len = raw_len;
	m->tls_raw = raw;
}

static void seed_messages(void)
{
	static const char head[] = "POST /blog/x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n";
	struct ps_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_HELLO;
	m.hdr.flags = PS_HELLO_DELEGATE;
	m.hdr.seq = 1;
	m.u.hello.version = PS_PROTO_VERSION;
	m.u.hello.pid = 4242;
	strcpy(m.u.hello.program, "worker");
	seed_msg("hello", &m);

	m.hdr.type = PS_MSG_REPLY;
	m.hdr.seq = 1;
	m.u.reply.status = -3;
	m.u.reply.id = 9;
	m.text = "already registered";
	m.text_len = strlen(m.text);
	seed_msg("reply", &m);
	m.hdr.type = PS_MSG_REPLY;
	seed_msg("reply-empty", &m);
	m.hdr.type = PS_MSG_REPLY;
	m.u.reply.id = 9;
	m.text = PS_FEATURES; /* HELLO's reply */
	m.text_len = strlen(m.text);
	seed_msg("reply-hello-features", &m);

	m.hdr.type = PS_MSG_QUEUE_CREATE;
	m.u.create.opt_flags = PS_QUEUE_PERSISTENT;
	m.u.create.max_length = 1000;
	m.u.create.max_body = 1 << 20;
	m.u.create.response_wait_ms = 5000;
	strcpy(m.u.create.name, "blog-app_1.x");
	seed_msg("queue-create", &m);

	m.hdr.type = PS_MSG_QUEUE_OPEN;
	strcpy(m.u.queue.name, "blog");
	seed_msg("queue-open", &m);
	m.hdr.type = PS_MSG_QUEUE_DELETE;
	m.u.queue.queue_id = 3;
	seed_msg("queue-delete", &m);
	m.hdr.type = PS_MSG_QUEUE_DRAIN;
	m.u.queue.queue_id = 4;
	seed_msg("queue-drain", &m);

	static const char *const prefixes[] = {"http://+:8080/blog/", "http://*:80/",
	                                       "http://example.com:80/api/", "http://127.0.0.1:8080/",
	                                       "http://[::1]:80/a%7Eb/"};
	for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		char name[32];
		m.hdr.type = k % 2 ? PS_MSG_URL_DEL : PS_MSG_URL_ADD;
		m.u.url.queue_id = 3;
		m.text = prefixes[k];
		m.text_len = strlen(prefixes[k]);
		snprintf(name, sizeof(name), "url-%s-%zu", k % 2 ? "del" : "add", k);
		seed_msg(name, &m);
	}

	m.hdr.type = PS_MSG_RECEIVE;
	m.u.receive.queue_id = 3;
	m.u.receive.count = 16;
	seed_msg("receive", &m);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_DEMAND_WAIT;
	m.hdr.seq = 12;
	m.u.demand.queue_id = 3;
	seed_msg("demand-wait", &m);
	m.hdr.type = PS_MSG_DEMAND;
	m.hdr.seq = 12;
	m.u.demand.queue_id = 3;
	seed_msg("demand", &m);
	m.hdr.type = PS_MSG_DEMAND;
	m.u.demand.queue_id = 3;
	m.u.demand.status = PS_ENOTFOUND;
	seed_msg("demand-queue-gone", &m);

	m.hdr.type = PS_MSG_DELIVER;
	m.u.deliver.conn_id = 77;
	m.u.deliver.req_id = 78;
	m.u.deliver.queue_id = 3;
	m.u.deliver.flags = PS_DELIVER_FD | PS_DELIVER_DELEGATE;
	m.u.deliver.local = seed_addr(AF_INET, "127.0.0.1", 80);
	m.u.deliver.remote = seed_addr(AF_INET6, "::1", 50000);
	m.head = head;
	m.u.deliver.head_len = sizeof(head) - 1;
	m.path = "/blog/x";
	m.u.deliver.path_len = 7;
	m.host = "example.com";
	m.u.deliver.host_len = 11;
	m.tail = "helloGET / HTTP/1.1\r\n";
	m.u.deliver.tail_len = (uint32_t)strlen(m.tail);
	struct ps_msg tls = m;
	seed_msg("deliver", &m);

	/* the same on a TLS connection, with a partial record not opened yet */
	static const uint8_t raw[] = {0x17, 0x03, 0x03, 0x40, 0x11, 0xaa};
	m = tls;
	m.u.deliver.flags = PS_DELIVER_FD | PS_DELIVER_TLS;
	seed_tls(&m, raw, sizeof(raw));
	seed_msg("deliver-tls", &m);

	m.hdr.type = PS_MSG_NOFD;
	m.u.conn.conn_id = 77;
	m.u.conn.req_id = 78;
	seed_msg("nofd", &m);

	m.hdr.type = PS_MSG_RETURN;
	m.u.ret.conn_id = 77;
	m.u.ret.req_id = 78;
	m.u.ret.written = 1000;
	m.u.ret.consumed = 120;
	m.u.ret.flags = PS_RETURN_EOF;
	m.tail = "GET /c HTTP/1.1\r\n";
	m.u.ret.tail_len = (uint32_t)strlen(m.tail);
	seed_msg("return", &m);
	m.hdr.type = PS_MSG_RETURN;
	seed_msg("return-empty", &m);
	m.hdr.type = PS_MSG_RETURN_TLS;
	m.u.ret_tls.conn_id = 77;
	m.u.ret_tls.req_id = 78;
	m.u.ret_tls.written = 1000;
	m.u.ret_tls.consumed = 120;
	m.tail = "GET /c HTTP/1.1\r\n";
	m.u.ret_tls.tail_len = (uint32_t)strlen(m.tail);
	seed_tls(&m, raw, 3);
	seed_msg("return-tls", &m);
	m.hdr.type = PS_MSG_CONN_HANDOVER_TLS;
	m.tail = "GET /c HTTP/1.1\r\n";
	seed_tls(&m, NULL, 0);
	m.u.handover_tls.conn_id = 9;
	m.u.handover_tls.local = seed_addr(AF_INET, "127.0.0.1", 443);
	m.u.handover_tls.remote = seed_addr(AF_INET6, "::1", 50001);
	m.u.handover_tls.bytes_len = (uint32_t)strlen(m.tail);
	seed_msg("handover-tls", &m);

	m.hdr.type = PS_MSG_END;
	m.u.end.conn_id = 77;
	m.u.end.req_id = 78;
	m.u.end.flags = PS_END_SHUTDOWN | PS_END_UPGRADED;
	seed_msg("end", &m);

	m.hdr.type = PS_MSG_CONN_CLOSED;
	m.u.conn.conn_id = 77;
	seed_msg("conn-closed", &m);

	m.hdr.type = PS_MSG_STATUS;
	m.hdr.flags = PS_STATUS_JSON;
	seed_msg("status", &m);

	m.hdr.type = PS_MSG_STATUS_DATA;
	m.hdr.flags = PS_STATUS_MORE;
	m.text = "{\"queues\":[]}";
	m.text_len = strlen(m.text);
	seed_msg("status-data", &m);

	m.hdr.type = PS_MSG_SHM;
	m.u.shm.kind = PS_SHM_ROUTES;
	m.u.shm.generation = 9;
	m.u.shm.size = 4096;
	seed_msg("shm-routes", &m);
	m.hdr.type = PS_MSG_SHM;
	m.u.shm.kind = PS_SHM_SESSION_PAGE;
	m.u.shm.size = sizeof(struct shared_page);
	seed_msg("shm-session-page", &m);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_COMMAND;
	m.hdr.flags = PS_STATUS_JSON;
	m.text = "urlacl\0add\0http://+:8080/a/\0u:1000:alice\0g:100:users\0";
	m.text_len = 53;
	seed_msg("command", &m);

	memset(&m, 0, sizeof(m));
	m.hdr.type = PS_MSG_LOG_DRAIN;
	seed_msg("log-drain", &m);
}

static uint32_t seed_owner_id(void *owner)
{
	return (uint32_t)(uintptr_t)owner;
}

static void seed_snapshot(void)
{
	static const char *const prefixes[] = {"http://+:80/", "http://example.com:80/api/",
	                                       "http://[::1]:8080/x/", "http://127.0.0.1:80/local/"};
	struct route_table *t = route_new();
	const struct snapshot_queue_src queues[] = {{1, 0}, {2, 4096}};
	const struct http_limits http = HTTP_LIMITS_DEFAULT;
	const struct canon_limits canon = CANON_LIMITS_DEFAULT;
	char err[256];

	for (size_t k = 0; t && k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		struct url_prefix p;
		if (url_prefix_parse(prefixes[k], &p, err, sizeof(err)) != 0 ||
		    route_add(t, &p, (void *)(uintptr_t)(k % 2 + 1), NULL) != 0) {
			fprintf(stderr, "seed_protocol: prefix %s: %s\n", prefixes[k], err);
			exit(1);
		}
	}
	int fd = t ? snapshot_write(t, seed_owner_id, queues, 2, 7, &http, &canon) : -1;
	struct stat st;
	char *buf = NULL;
	if (fd < 0 || fstat(fd, &st) < 0 || !(buf = malloc((size_t)st.st_size)) ||
	    pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		fprintf(stderr, "seed_protocol: cannot make a snapshot\n");
		exit(1);
	}
	seed_write("snapshot", buf, (size_t)st.st_size);
	free(buf);
	close(fd);
	route_free(t);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seed_protocol DIR\n");
		return 2;
	}
	seed_dir = argv[1];
	if (mkdir(seed_dir, 0777) < 0 && errno != EEXIST) {
		fprintf(stderr, "seed_protocol: cannot create %s: %s\n", seed_dir, strerror(errno));
		return 1;
	}
	seed_messages();
	seed_snapshot();
	return 0;
}
