/* snapshot.c: the route snapshot the daemon publishes for delegated connections: written
 * to a sealed memfd, read back (every length checked) into a private route table. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "route.h"
#include "shared.h"
#include "url_prefix.h"

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)
#define SNAPSHOT_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

struct writer {
	char *buf;
	size_t len, cap;
	uint32_t count;
	uint32_t (*owner_id)(void *owner);
	int failed;
};

static void *writer_room(struct writer *w, size_t n)
{
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + n)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->failed = 1;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	void *p = w->buf + w->len;
	memset(p, 0, n);
	w->len += n;
	return p;
}

static void write_prefix(const struct url_prefix *p, void *owner, void *arg)
{
	struct writer *w = arg;
	size_t hl = strlen(p->host), pl = strlen(p->path);
	size_t n = ALIGN8(sizeof(struct snapshot_prefix) + hl + pl);
	char *rec = writer_room(w, n);
	if (!rec)
		return;
	struct snapshot_prefix sp = {.queue_id = w->owner_id(owner),
	                             .https = p->https,
	                             .cls = (uint8_t)p->cls,
	                             .port = p->port,
	                             .ip = p->ip,
	                             .host_len = (uint16_t)hl,
	                             .path_len = (uint16_t)pl};
	memcpy(rec, &sp, sizeof(sp));
	memcpy(rec + sizeof(sp), p->host, hl);
	memcpy(rec + sizeof(sp) + hl, p->path, pl);
	w->count++;
}

int snapshot_write(const struct route_table *t, uint32_t (*owner_id)(void *owner),
                   const struct snapshot_queue_src *queues, uint32_t nqueues, uint64_t generation,
                   const struct http_limits *http, const struct canon_limits *canon)
{
	struct writer w = {.owner_id = owner_id};
	struct snapshot_header *hd = writer_room(&w, sizeof(*hd));
	for (uint32_t i = 0; i < nqueues && !w.failed; i++) {
		struct snapshot_queue *q = writer_room(&w, sizeof(*q));
		if (q) {
			q->id = queues[i].id;
			q->max_body = queues[i].max_body;
		}
	}
	route_foreach(t, write_prefix, &w);
	int fd = -1;
	if (!hd || w.failed || w.len > PS_SHM_SIZE_MAX)
		goto out;
	hd = (struct snapshot_header *)w.buf; /* realloc may have moved it */
	*hd = (struct snapshot_header){.magic = SNAPSHOT_MAGIC,
	                               .size = (uint32_t)w.len,
	                               .generation = generation,
	                               .nqueues = nqueues,
	                               .nprefixes = w.count,
	                               .http = *http,
	                               .canon = *canon};
	fd = memfd_create("portshare-routes", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto out;
	size_t off = 0;
	while (off < w.len) {
		ssize_t n = write(fd, w.buf + off, w.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	/* sealed: a library may read it without fearing it changes under it */
	if (off != w.len || fcntl(fd, F_ADD_SEALS, SNAPSHOT_SEALS) < 0) {
		close(fd);
		fd = -1;
	}
out:
	free(w.buf);
	return fd;
}

void snapshot_clear(struct snapshot *s)
{
	route_free(s->routes);
	free(s->queues);
	memset(s, 0, sizeof(*s));
}

uint64_t snapshot_max_body(const struct snapshot *s, uint32_t queue_id)
{
	for (uint32_t i = 0; i < s->nqueues; i++)
		if (s->queues[i].id == queue_id)
			return s->queues[i].max_body;
	return 0;
}

static int snapshot_parse(const char *b, size_t size, struct snapshot *out)
{
	struct snapshot_header hd;
	if (size < sizeof(hd))
		return -1;
	memcpy(&hd, b, sizeof(hd));
	if (hd.magic != SNAPSHOT_MAGIC || hd.size != size ||
	    hd.nqueues > size / sizeof(struct snapshot_queue))
		return -1;
	size_t off = sizeof(hd);
	size_t qbytes = (size_t)hd.nqueues * sizeof(struct snapshot_queue);
	if (qbytes > size - off)
		return -1;
	out->queues = malloc(qbytes ? qbytes : 1);
	out->routes = route_new();
	if (!out->queues || !out->routes)
		return -1;
	memcpy(out->queues, b + off, qbytes);
	out->nqueues = hd.nqueues;
	off += qbytes;
	for (uint32_t i = 0; i < hd.nprefixes; i++) {
		struct snapshot_prefix sp;
		if (size - off < sizeof(sp))
			return -1;
		memcpy(&sp, b + off, sizeof(sp));
		size_t n = ALIGN8(sizeof(sp) + sp.host_len + sp.path_len);
		if (sp.host_len > HTTP_HOST_MAX || sp.path_len == 0 || sp.path_len > PS_PREFIX_MAX ||
		    sp.cls >= HOST_CLASS_COUNT || n > size - off)
			return -1;
		struct url_prefix p;
		memset(&p, 0, sizeof(p));
		p.https = sp.https != 0;
		p.cls = (enum host_class)sp.cls;
		p.port = sp.port;
		p.ip = sp.ip;
		memcpy(p.host, b + off + sizeof(sp), sp.host_len);
		memcpy(p.path, b + off + sizeof(sp) + sp.host_len, sp.path_len);
		if (p.path[0] != '/' || p.path[sp.path_len - 1] != '/')
			return -1;
		if (route_add(out->routes, &p, (void *)(uintptr_t)sp.queue_id, NULL) != 0)
			return -1;
		off += n;
	}
	if (off != size)
		return -1;
	out->generation = hd.generation;
	out->http = hd.http;
	out->canon = hd.canon;
	return 0;
}

int snapshot_read(int fd, size_t size, struct snapshot *out)
{
	struct stat st;
	memset(out, 0, sizeof(*out));
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & SNAPSHOT_SEALS) != SNAPSHOT_SEALS || fstat(fd, &st) < 0 ||
	    (size_t)st.st_size != size || size == 0)
		return -1;
	void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -1;
	int rc = snapshot_parse(map, size, out);
	munmap(map, size);
	if (rc < 0)
		snapshot_clear(out);
	return rc;
}
