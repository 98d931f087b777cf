/* test_store.c: unit tests of the admin settings file (src/daemon/store.c, DESIGN §8):
 * the text renders and parses back to the same settings and the same text; a cut file, a
 * bad magic line and garbage are refused with the line that is wrong; store_save writes
 * through a temp file, fsync, rename and a sync of the directory, in that order; and when
 * any of those system calls fails (they are --wrap'ped here, Makefile, as failalloc.c
 * wraps malloc) the save is refused with the step that failed and the old file stays byte
 * for byte, with no temp file left behind; except a failed sync of the directory, where
 * the new file is in place (-2) and the caller writes the old one back. A leftover temp
 * file is removed and ignored by store_load; the directory's lock names its holder. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "failalloc.h"

#include "../../src/daemon/store.c"

/* ---------------------------------------------------------------- failing system calls */

/* The settings file's system calls, --wrap'ped (Makefile: test_store's rule). Until armed
 * they only pass through; armed, they count the calls (and note them, in order) and fail
 * the at-th call of one of them (or of any of them, IO_ANY) with the errno given. */
enum io_fn { IO_OPEN, IO_WRITE, IO_FSYNC, IO_CLOSE, IO_RENAME, IO_ANY };
static const char *const io_names[] = {"open", "write", "fsync", "close", "rename", "any"};

#define IO_TRACE_MAX 256

struct io_call {
	enum io_fn fn;
	int fd;          /* open: the new fd (-1 failed); the others: their fd */
	int flags;       /* open */
	char path[512];  /* open: its path; rename: the new name */
	char from[512];  /* rename: the old name */
	long result;     /* what the call returned */
	bool failed_here; /* refused by the test */
};

static struct {
	bool active;
	enum io_fn fn;      /* the call to fail */
	unsigned long at;   /* its at-th call from arming (1: the next); 0: none */
	int err;            /* the errno it fails with */
	bool zero;          /* a write that fails returns 0 (no progress) instead of -1 */
	size_t write_max;   /* 0, or: every write writes at most this many bytes */
	unsigned long calls[IO_ANY + 1];
	struct io_call trace[IO_TRACE_MAX];
	unsigned ntrace;
} io;

int __real_open(const char *path, int flags, ...);
ssize_t __real_write(int fd, const void *buf, size_t n);
int __real_fsync(int fd);
int __real_close(int fd);
int __real_rename(const char *from, const char *to);

static void io_arm(enum io_fn fn, unsigned long at, int err)
{
	memset(&io, 0, sizeof(io));
	io.active = true;
	io.fn = fn;
	io.at = at;
	io.err = err;
}

/* Counts and notes the calls, fails none. */
static void io_trace(void)
{
	io_arm(IO_ANY, 0, 0);
}

static void io_disarm(void)
{
	io.active = false;
}

/* Notes one call; true if the test refuses it (errno is set). */
static bool io_refuse(enum io_fn fn, struct io_call **note)
{
	*note = NULL;
	if (!io.active)
		return false;
	io.calls[fn]++;
	io.calls[IO_ANY]++;
	if (io.ntrace < IO_TRACE_MAX) {
		*note = &io.trace[io.ntrace++];
		memset(*note, 0, sizeof(**note));
		(*note)->fn = fn;
		(*note)->fd = -1;
	}
	unsigned long n = io.fn == IO_ANY ? io.calls[IO_ANY] : io.calls[fn];
	if (!io.at || (io.fn != IO_ANY && io.fn != fn) || n != io.at)
		return false;
	if (*note)
		(*note)->failed_here = true;
	errno = io.err;
	return true;
}

int __wrap_open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, unsigned int);
		va_end(ap);
	}
	struct io_call *note;
	bool refuse = io_refuse(IO_OPEN, &note);
	int fd = refuse ? -1 : __real_open(path, flags, mode);
	if (note) {
		snprintf(note->path, sizeof(note->path), "%s", path);
		note->flags = flags;
		note->fd = fd;
		note->result = fd;
	}
	return fd;
}

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	struct io_call *note;
	bool refuse = io_refuse(IO_WRITE, &note);
	ssize_t rc;
	if (refuse) {
		rc = io.zero ? 0 : -1;
	} else {
		if (io.active && io.write_max && n > io.write_max)
			n = io.write_max;
		rc = __real_write(fd, buf, n);
	}
	if (note) {
		note->fd = fd;
		note->result = rc;
	}
	return rc;
}

int __wrap_fsync(int fd)
{
	struct io_call *note;
	int rc = io_refuse(IO_FSYNC, &note) ? -1 : __real_fsync(fd);
	if (note) {
		note->fd = fd;
		note->result = rc;
	}
	return rc;
}

/* A refused close still closes: on Linux the descriptor is gone even when close fails. */
int __wrap_close(int fd)
{
	struct io_call *note;
	bool refuse = io_refuse(IO_CLOSE, &note);
	int saved = errno;
	int rc = __real_close(fd);
	if (refuse) {
		errno = saved;
		rc = -1;
	}
	if (note) {
		note->fd = fd;
		note->result = rc;
	}
	return rc;
}

int __wrap_rename(const char *from, const char *to)
{
	struct io_call *note;
	int rc = io_refuse(IO_RENAME, &note) ? -1 : __real_rename(from, to);
	if (note) {
		snprintf(note->from, sizeof(note->from), "%s", from);
		snprintf(note->path, sizeof(note->path), "%s", to);
		note->result = rc;
	}
	return rc;
}

/* ---------------------------------------------------------------- helpers */

/* store_render's text comes from open_memstream, allocated inside glibc where failalloc
 * does not see it (failalloc.h), though its fclose is counted: the text is freed past the
 * wrapper here, and failalloc_live is compared only around what renders nothing (the
 * parse). Leaks around store_render, store_copy and store_save are the ASan build's leak
 * checker's to find. */
void __real_free(void *p);

static void text_free(char *text)
{
	__real_free(text);
}

/* A temp state directory per test (the test's state). */
struct tdir {
	char path[256];
	char file[300]; /* path/settings */
	char tmp[300];  /* path/settings.tmp */
};

static int dir_setup(void **state)
{
	struct tdir *t = calloc(1, sizeof(*t));
	const char *base = getenv("TMPDIR");
	if (!t)
		return -1;
	snprintf(t->path, sizeof(t->path), "%s/portshare-store.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(t->path)) {
		free(t);
		return -1;
	}
	snprintf(t->file, sizeof(t->file), "%s/settings", t->path);
	snprintf(t->tmp, sizeof(t->tmp), "%s/settings.tmp", t->path);
	*state = t;
	return 0;
}

static int dir_teardown(void **state)
{
	struct tdir *t = *state;
	io_disarm();
	failalloc_disarm();
	DIR *d = opendir(t->path);
	if (d) {
		char p[600];
		for (struct dirent *de; (de = readdir(d));) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(p, sizeof(p), "%s/%s", t->path, de->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(t->path);
	free(t);
	return 0;
}

static int open_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* The file's bytes (malloc'd, *len), or NULL if there is no such file. */
static char *file_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		assert_int_equal(errno, ENOENT);
		*len = 0;
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	for (;;) {
		if (n == cap) {
			buf = realloc(buf, cap *= 2);
			assert_non_null(buf);
		}
		ssize_t got = read(fd, buf + n, cap - n);
		assert_true(got >= 0);
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	*len = n;
	return buf;
}

static void file_write(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* The file holds exactly want (want NULL: there is no file). */
static void assert_file_is(const char *path, const char *want, size_t wantlen)
{
	size_t len;
	char *got = file_read(path, &len);
	if (!want) {
		if (got)
			fail_msg("%s exists (%zu bytes), expected no file", path, len);
		return;
	}
	if (!got)
		fail_msg("%s does not exist, expected %zu bytes", path, wantlen);
	if (len != wantlen || memcmp(got, want, len))
		fail_msg("%s holds %zu bytes:\n%.*s\nexpected %zu bytes:\n%.*s", path, len, (int)len, got,
		         wantlen, (int)wantlen, want);
	free(got);
}

static void principal_add(struct principal *who, unsigned *n, const char *text)
{
	assert_true(*n < SETTINGS_PRINCIPALS_MAX);
	assert_int_equal(store_parse_principal(text, &who[*n]), 0);
	(*n)++;
}

/* Adds a reservation of prefix for the principals in who (NULL-ended). */
static void reservation_add(struct settings *s, const char *prefix, const char *const *who)
{
	char why[256];
	if (s->nreservations % 16 == 0) {
		s->reservations = realloc(s->reservations, (s->nreservations + 16) * sizeof(*s->reservations));
		assert_non_null(s->reservations);
	}
	struct reservation *r = &s->reservations[s->nreservations++];
	memset(r, 0, sizeof(*r));
	if (url_prefix_parse(prefix, &r->prefix, why, sizeof(why)) < 0)
		fail_msg("prefix %s: %s", prefix, why);
	for (; *who; who++)
		principal_add(r->who, &r->nwho, *who);
}

static void grant_add(struct settings *s, const char *queue, const char *owner, const char *const *who)
{
	if (s->ngrants % 16 == 0) {
		s->grants = realloc(s->grants, (s->ngrants + 16) * sizeof(*s->grants));
		assert_non_null(s->grants);
	}
	struct grant *g = &s->grants[s->ngrants++];
	memset(g, 0, sizeof(*g));
	snprintf(g->queue, sizeof(g->queue), "%s", queue);
	assert_int_equal(store_parse_principal(owner, &g->owner), 0);
	for (; *who; who++)
		principal_add(g->who, &g->nwho, *who);
}

static void listen_add(struct settings *s, const char *addr)
{
	s->listen_managed = true;
	assert_true(s->nlisten < CONFIG_LISTEN_MAX);
	assert_int_equal(config_parse_addr(addr, &s->listen[s->nlisten++]), 0);
}

static void exclusion_add(struct settings *s, const char *endpoint)
{
	assert_true(s->nexclusions < SETTINGS_EXCLUSIONS_MAX);
	assert_int_equal(store_parse_endpoint(endpoint, &s->exclusions[s->nexclusions++]), 0);
}

/* Every kind of entry: each host class, http and https, users and groups, a principal
 * with no name, grants, the managed listen list of both families, exclusions with
 * wildcards of both families ([::]:80). */
static void full_settings(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	reservation_add(s, "http://+:80/a/", (const char *const[]){"u:0:root", "g:0:root", NULL});
	reservation_add(s, "https://*:443/", (const char *const[]){"u:1000:alice", NULL});
	reservation_add(s, "http://WWW.Example.COM:8080/x/y",
	                (const char *const[]){"g:100:users", "u:1001:bob", NULL});
	reservation_add(s, "http://127.0.0.1:81/", (const char *const[]){"u:4294967295:nobody-max", NULL});
	reservation_add(s, "https://[::1]:82/z/", (const char *const[]){"u:33:www-data", "u:5:", NULL});
	grant_add(s, "jobs", "u:1000:alice", (const char *const[]){"u:1001:bob", "g:100:users", NULL});
	grant_add(s, "q.2_x-Y", "u:0:root", (const char *const[]){"g:27:sudo", NULL});
	listen_add(s, "127.0.0.1");
	listen_add(s, "::1");
	listen_add(s, "0.0.0.0");
	exclusion_add(s, "0.0.0.0:80");
	exclusion_add(s, "[::]:80");
	exclusion_add(s, "127.0.0.1:8080");
	exclusion_add(s, "[::1]:443");
}

static const char full_text[] =
    "# portshare's admin settings, written by portshared: change them with portsharectl\n"
    "portshare-settings 1\n"
    "urlacl http://+:80/a/ u:0:root g:0:root\n"
    "urlacl https://*:443/ u:1000:alice\n"
    "urlacl http://www.example.com:8080/x/y/ g:100:users u:1001:bob\n"
    "urlacl http://127.0.0.1:81/ u:4294967295:nobody-max\n"
    "urlacl https://[::1]:82/z/ u:33:www-data u:5:?\n"
    "grant jobs u:1000:alice u:1001:bob g:100:users\n"
    "grant q.2_x-Y u:0:root g:27:sudo\n"
    "iplisten managed\n"
    "iplisten 127.0.0.1\n"
    "iplisten [::1]\n"
    "iplisten 0.0.0.0\n"
    "exclude 0.0.0.0:80\n"
    "exclude [::]:80\n"
    "exclude 127.0.0.1:8080\n"
    "exclude [::1]:443\n"
    "end\n";

static const char empty_text[] =
    "# portshare's admin settings, written by portshared: change them with portsharectl\n"
    "portshare-settings 1\n"
    "end\n";

/* Other settings, to replace the full ones with. */
static void other_settings(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	reservation_add(s, "http://+:9000/other/", (const char *const[]){"u:1002:carol", NULL});
	s->listen_managed = true; /* managed and empty: the wildcards */
	exclusion_add(s, "[::1]:9000");
}

static void principals_equal(const struct principal *a, unsigned na, const struct principal *b, unsigned nb)
{
	assert_int_equal(na, nb);
	for (unsigned i = 0; i < na; i++) {
		assert_int_equal(a[i].kind, b[i].kind);
		assert_int_equal(a[i].id, b[i].id);
		assert_string_equal(a[i].name, b[i].name);
	}
}

static void addr_equal(const struct ps_addr *a, const struct ps_addr *b)
{
	assert_int_equal(a->family, b->family);
	assert_memory_equal(a->addr, b->addr, 16);
	assert_int_equal(a->port, b->port);
}

static void settings_equal(const struct settings *a, const struct settings *b)
{
	char pa[PS_PREFIX_MAX + 300], pb[PS_PREFIX_MAX + 300];
	assert_int_equal(a->nreservations, b->nreservations);
	for (size_t i = 0; i < a->nreservations; i++) {
		url_prefix_format(&a->reservations[i].prefix, pa, sizeof(pa));
		url_prefix_format(&b->reservations[i].prefix, pb, sizeof(pb));
		assert_string_equal(pa, pb);
		assert_int_equal(a->reservations[i].prefix.cls, b->reservations[i].prefix.cls);
		principals_equal(a->reservations[i].who, a->reservations[i].nwho, b->reservations[i].who,
		                 b->reservations[i].nwho);
	}
	assert_int_equal(a->ngrants, b->ngrants);
	for (size_t i = 0; i < a->ngrants; i++) {
		assert_string_equal(a->grants[i].queue, b->grants[i].queue);
		principals_equal(&a->grants[i].owner, 1, &b->grants[i].owner, 1);
		principals_equal(a->grants[i].who, a->grants[i].nwho, b->grants[i].who, b->grants[i].nwho);
	}
	assert_int_equal(a->listen_managed, b->listen_managed);
	assert_int_equal(a->nlisten, b->nlisten);
	for (unsigned i = 0; i < a->nlisten; i++)
		addr_equal(&a->listen[i], &b->listen[i]);
	assert_int_equal(a->nexclusions, b->nexclusions);
	for (unsigned i = 0; i < a->nexclusions; i++)
		addr_equal(&a->exclusions[i], &b->exclusions[i]);
}

/* Renders s and checks it is want, byte for byte. */
static void render_is(const struct settings *s, const char *want)
{
	size_t len;
	char *text = store_render(s, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(want));
	assert_string_equal(text, want);
	text_free(text);
}

/* ---------------------------------------------------------------- (a) the text */

/* Every kind of entry renders as the documented text, which parses back to the same
 * settings and renders to the same text again; store_copy is the same round trip. */
static void test_render_parse_roundtrip(void **state)
{
	struct settings s, back, copy;
	char err[512] = "";
	full_settings(&s);
	render_is(&s, full_text);

	assert_int_equal(store_parse(full_text, strlen(full_text), &back, err, sizeof(err)), 0);
	settings_equal(&s, &back);
	render_is(&back, full_text);
	/* what the parse made of [::]:80: the IPv6 wildcard, port 80 */
	assert_int_equal(back.exclusions[1].family, AF_INET6);
	assert_true(addr_is_wildcard(&back.exclusions[1]));
	assert_int_equal(back.exclusions[1].port, 80);
	assert_int_equal(back.reservations[4].prefix.cls, HOST_IP);
	assert_string_equal(back.reservations[4].who[1].name, "?");

	assert_int_equal(store_copy(&s, &copy), 0);
	settings_equal(&s, &copy);
	render_is(&copy, full_text);

	/* comments, blank lines and extra blanks are ignored */
	static const char loose[] = "# a comment before the magic line\n"
	                            "portshare-settings 1\n"
	                            "\n"
	                            "   # an indented comment\n"
	                            "urlacl  http://+:80/a/\tu:0:root   g:0:root  \n"
	                            "end\n";
	struct settings l;
	assert_int_equal(store_parse(loose, strlen(loose), &l, err, sizeof(err)), 0);
	assert_int_equal(l.nreservations, 1);
	principals_equal(l.reservations[0].who, l.reservations[0].nwho, s.reservations[0].who, 2);

	store_free(&s);
	store_free(&back);
	store_free(&copy);
	store_free(&l);
}

/* No settings at all, and a managed listen list that is empty (the wildcards): both kept
 * apart from "not managed" through the text. */
static void test_roundtrip_empty_and_managed(void **state)
{
	struct settings s = {0}, back;
	char err[512];
	render_is(&s, empty_text);
	assert_int_equal(store_parse(empty_text, strlen(empty_text), &back, err, sizeof(err)), 0);
	settings_equal(&s, &back);
	assert_false(back.listen_managed);
	store_free(&back);

	s.listen_managed = true;
	static const char managed[] =
	    "# portshare's admin settings, written by portshared: change them with portsharectl\n"
	    "portshare-settings 1\n"
	    "iplisten managed\n"
	    "end\n";
	render_is(&s, managed);
	assert_int_equal(store_parse(managed, strlen(managed), &back, err, sizeof(err)), 0);
	assert_true(back.listen_managed);
	assert_int_equal(back.nlisten, 0);
	store_free(&back);
}

/* The biggest lines and the most entries the daemon accepts render and load back: a
 * prefix of PS_PREFIX_MAX bytes with SETTINGS_PRINCIPALS_MAX principals of the longest
 * names, a queue name of PS_QUEUE_NAME_MAX bytes; SETTINGS_ENTRIES_MAX reservations,
 * CONFIG_LISTEN_MAX listen addresses, SETTINGS_EXCLUSIONS_MAX exclusions; one more of
 * each is refused. */
static void test_roundtrip_limits(void **state)
{
	struct settings s = {0}, back;
	char err[512] = "";
	static char prefix[PS_PREFIX_MAX + 1], queue[PS_QUEUE_NAME_MAX + 1];
	const char *who[SETTINGS_PRINCIPALS_MAX + 1];
	static char names[SETTINGS_PRINCIPALS_MAX][64];

	/* segments of 63 bytes (the canonicaliser's limit is 255) */
	int n = snprintf(prefix, sizeof(prefix), "http://+:65535/");
	memset(prefix + n, 'p', sizeof(prefix) - 2 - (size_t)n);
	for (int i = n + 63; i < PS_PREFIX_MAX; i += 64)
		prefix[i] = '/';
	prefix[sizeof(prefix) - 2] = '/';
	assert_int_equal(strlen(prefix), PS_PREFIX_MAX);
	for (int i = 0; i < SETTINGS_PRINCIPALS_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "%c:%u:%032d", i % 2 ? 'g' : 'u', 4294967295u - (unsigned)i, i);
		who[i] = names[i];
	}
	who[SETTINGS_PRINCIPALS_MAX] = NULL;
	memset(queue, 'q', PS_QUEUE_NAME_MAX);
	reservation_add(&s, prefix, who);
	grant_add(&s, queue, "u:4294967295:" "0123456789abcdef0123456789abcdef", who);
	for (int i = 1; i < SETTINGS_ENTRIES_MAX; i++) {
		char p[64];
		snprintf(p, sizeof(p), "http://+:%d/r%d/", 1 + i % 65535, i);
		reservation_add(&s, p, (const char *const[]){"u:1:x", NULL});
	}
	for (int i = 1; i < 40; i++) {
		char q[16];
		snprintf(q, sizeof(q), "q%d", i);
		grant_add(&s, q, "u:7:seven", (const char *const[]){"g:8:eight", NULL});
	}
	for (int i = 0; i < CONFIG_LISTEN_MAX; i++) {
		char a[32];
		snprintf(a, sizeof(a), "127.0.%d.%d", i / 200, 1 + i % 200);
		listen_add(&s, a);
	}
	for (int i = 0; i < SETTINGS_EXCLUSIONS_MAX; i++) {
		char a[32];
		snprintf(a, sizeof(a), i % 2 ? "[::1]:%d" : "127.0.0.1:%d", 1 + i);
		exclusion_add(&s, a);
	}
	size_t len;
	char *text = store_render(&s, &len);
	assert_non_null(text);
	if (store_parse(text, len, &back, err, sizeof(err)) < 0)
		fail_msg("the largest settings do not load back: %s", err);
	settings_equal(&s, &back);
	size_t len2;
	char *text2 = store_render(&back, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(text, text2, len);
	text_free(text2);
	store_free(&back);

	/* one more of each: refused, with its line */
	static const struct {
		const char *line, *why;
	} more[] = {
	    {"urlacl http://+:1/one-more/ u:1:x\n", "more than 4096 reservations, or out of memory"},
	    {"iplisten 10.0.0.1\n", "bad listen address '10.0.0.1'"},
	    {"exclude 10.0.0.1:1\n", "bad exclusion '10.0.0.1:1'"},
	};
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
		size_t ml = strlen(more[i].line);
		char *t = malloc(len + ml);
		assert_non_null(t);
		/* before the end line */
		memcpy(t, text, len - 4);
		memcpy(t + len - 4, more[i].line, ml);
		memcpy(t + len - 4 + ml, "end\n", 4);
		unsigned lines = 0;
		for (size_t k = 0; k < len - 4; k++)
			lines += text[k] == '\n';
		char want[128];
		snprintf(want, sizeof(want), "line %u: %s", lines + 1, more[i].why);
		memset(&back, 0x5a, sizeof(back));
		assert_int_equal(store_parse(t, len + ml, &back, err, sizeof(err)), -1);
		assert_string_equal(err, want);
		free(t);
	}
	text_free(text);
	store_free(&s);
}

/* ---------------------------------------------------------------- (b) refused text */

/* A refused parse leaves *s as it was (all or nothing) and leaks nothing. */
static void parse_refused(const char *text, size_t len, const char *want)
{
	struct settings s, before;
	char err[512] = "";
	long live = failalloc_live();
	memset(&s, 0x5a, sizeof(s));
	memcpy(&before, &s, sizeof(s));
	if (store_parse(text, len, &s, err, sizeof(err)) != -1)
		fail_msg("accepted:\n%.*s", (int)len, text);
	assert_memory_equal(&s, &before, sizeof(s));
	assert_int_equal(failalloc_live(), live);
	if (strcmp(err, want))
		fail_msg("for:\n%.*s\nthe error is '%s', expected '%s'", (int)len, text, err, want);
}

#define HEAD "# c\nportshare-settings 1\n"

static void test_parse_refuses(void **state)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
	    /* cut files */
	    {"", "no end line (a cut file)"},
	    {HEAD, "no end line (a cut file)"},
	    {HEAD "urlacl http://+:80/a/ u:0:root\n", "no end line (a cut file)"},
	    {HEAD "urlacl http://+:80/a/ u:0:ro", "line 3: no line end (a cut file)"},
	    {HEAD "urlacl http://+:80/a/ u:0:root\nend", "line 4: no line end (a cut file)"},
	    /* the magic line */
	    {"portshare-settings 2\nend\n", "line 1: not a portshare settings file (no 'portshare-settings 1' line)"},
	    {"# c\n# d\nPORTSHARE-SETTINGS 1\nend\n",
	     "line 3: not a portshare settings file (no 'portshare-settings 1' line)"},
	    {"urlacl http://+:80/a/ u:0:root\nend\n",
	     "line 1: not a portshare settings file (no 'portshare-settings 1' line)"},
	    {"\nportshare-settings 1\nend\n", "line 1: not a portshare settings file (no 'portshare-settings 1' line)"},
	    {"portshare-settings 1 \nend\n", "line 1: not a portshare settings file (no 'portshare-settings 1' line)"},
	    {"\x89PNG\r\n\x1a\n", "line 1: not a portshare settings file (no 'portshare-settings 1' line)"},
	    /* garbage lines */
	    {HEAD "garbage\nend\n", "line 3: unknown line 'garbage'"},
	    {HEAD "urlacl http://+:80/a/ u:0:root\n\nfoo bar baz\nend\n", "line 5: unknown line 'foo'"},
	    {HEAD "urlacl http://+:80/a/\nend\n", "line 3: unknown line 'urlacl'"},
	    {HEAD "urlacl ftp://x:80/ u:0:root\nend\n", "line 3: bad reservation 'ftp://x:80/'"},
	    {HEAD "urlacl http://+:80/a/ x:0:root\nend\n", "line 3: bad reservation 'http://+:80/a/'"},
	    {HEAD "urlacl http://+:80/a/ u:99999999999:root\nend\n", "line 3: bad reservation 'http://+:80/a/'"},
	    {HEAD "urlacl http://+:80/a/ u:0:ro\x7fot\nend\n", "line 3: bad reservation 'http://+:80/a/'"},
	    {HEAD "grant q u:0:root\nend\n", "line 3: unknown line 'grant'"},
	    {HEAD "grant q g:0:root u:0:root\nend\n", "line 3: bad grant for queue 'q'"},
	    {HEAD "grant q u:0:root nobody\nend\n", "line 3: bad grant for queue 'q'"},
	    {HEAD "iplisten 127.0.0.1:80\nend\n", "line 3: bad listen address '127.0.0.1:80'"},
	    {HEAD "iplisten localhost\nend\n", "line 3: bad listen address 'localhost'"},
	    {HEAD "iplisten 127.0.0.1 127.0.0.2\nend\n", "line 3: unknown line 'iplisten'"},
	    {HEAD "exclude 127.0.0.1\nend\n", "line 3: bad exclusion '127.0.0.1'"},
	    {HEAD "exclude ::1:80\nend\n", "line 3: bad exclusion '::1:80'"},
	    {HEAD "exclude 127.0.0.1:0\nend\n", "line 3: bad exclusion '127.0.0.1:0'"},
	    {HEAD "exclude 127.0.0.1:65536\nend\n", "line 3: bad exclusion '127.0.0.1:65536'"},
	    {HEAD "exclude 127.0.0.1:080\nend\n", "line 3: bad exclusion '127.0.0.1:080'"},
	    /* after the end line, nothing */
	    {HEAD "end\nurlacl http://+:80/a/ u:0:root\n", "line 4: text after the end line"},
	    {HEAD "end\n\n", "line 4: text after the end line"},
	    {HEAD "end\nend\n", "line 4: text after the end line"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_refused(cases[i].text, strlen(cases[i].text), cases[i].err);

	/* a queue name one byte too long */
	char line[STORE_LINE_MAX + 64], want[256];
	char q[PS_QUEUE_NAME_MAX + 2] = "";
	memset(q, 'q', PS_QUEUE_NAME_MAX + 1);
	int n = snprintf(line, sizeof(line), HEAD "grant %s u:0:root u:0:root\nend\n", q);
	snprintf(want, sizeof(want), "line 3: bad grant for queue '%s'", q);
	parse_refused(line, (size_t)n, want);

	/* one principal too many; more words than any line has; a line longer than any the
	 * daemon writes */
	for (int extra = 1; extra <= 2; extra++) {
		n = snprintf(line, sizeof(line), HEAD "urlacl http://+:80/a/");
		for (int i = 0; i < SETTINGS_PRINCIPALS_MAX + extra; i++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " u:%d:x", i);
		n += snprintf(line + n, sizeof(line) - (size_t)n, "\nend\n");
		parse_refused(line, (size_t)n,
		              extra == 1 ? "line 3: bad reservation 'http://+:80/a/'" : "line 3: too many words");
	}
	n = snprintf(line, sizeof(line), HEAD "# ");
	memset(line + n, 'x', STORE_LINE_MAX);
	n += STORE_LINE_MAX;
	n += snprintf(line + n, sizeof(line) - (size_t)n, "\nend\n");
	parse_refused(line, (size_t)n, "line 3: line too long");
}

/* Every cut of a whole file (each of its proper prefixes, as a write cut short would
 * leave it) is refused; the whole file is not. */
static void test_parse_refuses_every_cut(void **state)
{
	size_t len = strlen(full_text);
	char err[512];
	struct settings s;
	for (size_t cut = 0; cut < len; cut++) {
		char *t = malloc(cut + 1); /* its own block, so ASan sees a read past the cut */
		assert_non_null(t);
		memcpy(t, full_text, cut);
		memset(&s, 0x5a, sizeof(s));
		if (store_parse(t, cut, &s, err, sizeof(err)) != -1)
			fail_msg("the file cut after %zu of %zu bytes was accepted", cut, len);
		assert_non_null(strstr(err, "a cut file"));
		free(t);
	}
	assert_int_equal(store_parse(full_text, len, &s, err, sizeof(err)), 0);
	store_free(&s);
}

/* The parse's allocations (the reservation and grant arrays) fail one at a time: -1,
 * "out of memory" with the line, nothing changed, nothing leaked (failalloc.h). */
struct parse_state {
	char *text;
	size_t len;
	struct settings s;
};

static void *parse_setup(void)
{
	struct parse_state *p = calloc(1, sizeof(*p));
	size_t cap = 8192;
	assert_non_null(p);
	p->text = malloc(cap);
	assert_non_null(p->text);
	p->len = (size_t)snprintf(p->text, cap, "portshare-settings 1\n");
	for (int i = 0; i < 40; i++) {
		p->len += (size_t)snprintf(p->text + p->len, cap - p->len, "urlacl http://+:%d/p%d/ u:0:root\n",
		                           8000 + i, i);
		if (i % 2)
			p->len += (size_t)snprintf(p->text + p->len, cap - p->len, "grant q%d u:0:root g:0:root\n", i);
	}
	p->len += (size_t)snprintf(p->text + p->len, cap - p->len, "end\n");
	assert_true(p->len < cap);
	return p;
}

static bool parse_run(void *state)
{
	struct parse_state *p = state;
	char err[512];
	if (store_parse(p->text, p->len, &p->s, err, sizeof(err)) == 0)
		return true;
	assert_non_null(strstr(err, "out of memory"));
	assert_true(!strncmp(err, "line ", 5));
	return false;
}

static void parse_check(void *state, bool done)
{
	struct parse_state *p = state;
	if (!done) {
		assert_null(p->s.reservations);
		assert_int_equal(p->s.nreservations, 0);
		return;
	}
	assert_int_equal(p->s.nreservations, 40);
	assert_int_equal(p->s.ngrants, 20);
}

static void parse_teardown(void *state)
{
	struct parse_state *p = state;
	store_free(&p->s);
	free(p->text);
	free(p);
}

static void test_parse_out_of_memory(void **state)
{
	static const struct failalloc_case c = {parse_setup, parse_run, parse_check, parse_teardown};
	assert_int_equal(failalloc_run(&c), 5); /* 3 reservation arrays, 2 grant arrays */
}

/* ---------------------------------------------------------------- (c) save and load */

static void test_save_load_roundtrip(void **state)
{
	struct tdir *t = *state;
	int fds = open_fds();
	struct settings s, other, back;
	char err[1024] = "";

	/* nothing saved yet: empty settings, the listen list not managed */
	memset(&back, 0x5a, sizeof(back));
	assert_int_equal(store_load(t->path, &back, err, sizeof(err)), 0);
	settings_equal(&(struct settings){0}, &back);
	store_free(&back);

	full_settings(&s);
	if (store_save(t->path, &s, err, sizeof(err)) != 0)
		fail_msg("store_save: %s", err);
	assert_file_is(t->file, full_text, strlen(full_text));
	assert_false(exists(t->tmp));
	struct stat st;
	assert_int_equal(stat(t->file, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	if (store_load(t->path, &back, err, sizeof(err)) != 0)
		fail_msg("store_load: %s", err);
	settings_equal(&s, &back);
	store_free(&back);

	/* replaced by other settings */
	other_settings(&other);
	assert_int_equal(store_save(t->path, &other, err, sizeof(err)), 0);
	assert_int_equal(store_load(t->path, &back, err, sizeof(err)), 0);
	settings_equal(&other, &back);
	assert_true(back.listen_managed);
	assert_int_equal(back.nlisten, 0);
	store_free(&back);

	/* and by none */
	assert_int_equal(store_save(t->path, &(struct settings){0}, err, sizeof(err)), 0);
	assert_file_is(t->file, empty_text, strlen(empty_text));
	assert_int_equal(store_load(t->path, &back, err, sizeof(err)), 0);
	settings_equal(&(struct settings){0}, &back);
	store_free(&back);

	store_free(&s);
	store_free(&other);
	assert_int_equal(open_fds(), fds);
}

/* The order of the calls is what makes a save atomic and durable: the temp file is
 * written and synced and closed before the rename; the directory is synced after it. */
static void test_save_call_order(void **state)
{
	struct tdir *t = *state;
	struct settings s;
	char err[1024];
	full_settings(&s);
	io_trace();
	int rc = store_save(t->path, &s, err, sizeof(err));
	io_disarm();
	assert_int_equal(rc, 0);

	unsigned i = 0;
	const struct io_call *c = io.trace;
	assert_true(io.ntrace >= 8);
	assert_int_equal(c[i].fn, IO_OPEN);
	assert_string_equal(c[i].path, t->tmp);
	assert_true(c[i].flags & O_CREAT);
	assert_true(c[i].flags & O_TRUNC);
	int fd = c[i++].fd;
	assert_true(fd >= 0);
	size_t written = 0;
	while (i < io.ntrace && c[i].fn == IO_WRITE) {
		assert_int_equal(c[i].fd, fd);
		written += (size_t)c[i++].result;
	}
	assert_int_equal(written, strlen(full_text));
	assert_int_equal(c[i].fn, IO_FSYNC);
	assert_int_equal(c[i++].fd, fd);
	assert_int_equal(c[i].fn, IO_CLOSE);
	assert_int_equal(c[i++].fd, fd);
	assert_int_equal(c[i].fn, IO_RENAME);
	assert_string_equal(c[i].from, t->tmp);
	assert_string_equal(c[i++].path, t->file);
	assert_int_equal(c[i].fn, IO_OPEN);
	assert_string_equal(c[i].path, t->path);
	assert_true(c[i].flags & O_DIRECTORY);
	int dfd = c[i++].fd;
	assert_true(dfd >= 0);
	assert_int_equal(c[i].fn, IO_FSYNC);
	assert_int_equal(c[i++].fd, dfd);
	assert_int_equal(c[i].fn, IO_CLOSE);
	assert_int_equal(c[i++].fd, dfd);
	assert_int_equal(i, io.ntrace);
	store_free(&s);
}

/* Short writes (a few bytes each) and an interrupted write are carried on: the file is
 * whole. */
static void test_save_short_and_interrupted_writes(void **state)
{
	struct tdir *t = *state;
	struct settings s;
	char err[1024] = "";
	full_settings(&s);

	io_arm(IO_WRITE, 0, 0);
	io.write_max = 7;
	int rc = store_save(t->path, &s, err, sizeof(err));
	unsigned long writes = io.calls[IO_WRITE];
	io_disarm();
	if (rc != 0)
		fail_msg("store_save with 7-byte writes: %d %s", rc, err);
	assert_int_equal(writes, (strlen(full_text) + 6) / 7);
	assert_file_is(t->file, full_text, strlen(full_text));

	struct settings other;
	other_settings(&other);
	io_arm(IO_WRITE, 1, EINTR);
	rc = store_save(t->path, &other, err, sizeof(err));
	writes = io.calls[IO_WRITE];
	io_disarm();
	if (rc != 0)
		fail_msg("store_save with an interrupted write: %d %s", rc, err);
	assert_int_equal(writes, 2);
	size_t len;
	char *want = store_render(&other, &len);
	assert_file_is(t->file, want, len);
	assert_false(exists(t->tmp));
	text_free(want);
	store_free(&s);
	store_free(&other);
}

/* ---------------------------------------------------------------- (d) failed writes */

struct failure {
	const char *what;     /* the step */
	enum io_fn fn;        /* its call */
	unsigned long at;     /* which one of store_save's calls of it */
	int err;
	size_t write_max;     /* short writes before it */
	bool zero;            /* the write returns 0 */
	int rc;               /* store_save's answer */
	const char *message;  /* "WHAT DIR/NAME" in the error */
	const char *name;
};

static const struct failure failures[] = {
    {"the temp file's open", IO_OPEN, 1, ENOSPC, 0, false, -1, "cannot create", "settings.tmp"},
    {"the temp file's open (EMFILE)", IO_OPEN, 1, EMFILE, 0, false, -1, "cannot create", "settings.tmp"},
    {"the first write", IO_WRITE, 1, EIO, 0, false, -1, "cannot write", "settings.tmp"},
    {"the first write (ENOSPC)", IO_WRITE, 1, ENOSPC, 0, false, -1, "cannot write", "settings.tmp"},
    {"a short write loop, then ENOSPC", IO_WRITE, 4, ENOSPC, 10, false, -1, "cannot write", "settings.tmp"},
    {"a write that makes no progress", IO_WRITE, 2, EIO, 100, true, -1, "cannot write", "settings.tmp"},
    {"the temp file's fsync", IO_FSYNC, 1, EIO, 0, false, -1, "cannot write (fsync)", "settings.tmp"},
    {"the temp file's fsync (ENOSPC)", IO_FSYNC, 1, ENOSPC, 0, false, -1, "cannot write (fsync)",
     "settings.tmp"},
    {"the temp file's close", IO_CLOSE, 1, EIO, 0, false, -1, "cannot write (close)", "settings.tmp"},
    {"the rename", IO_RENAME, 1, EIO, 0, false, -1, "cannot replace", "settings"},
    {"the rename (ENOSPC)", IO_RENAME, 1, ENOSPC, 0, false, -1, "cannot replace", "settings"},
    {"the directory's open", IO_OPEN, 2, EMFILE, 0, false, -2, "cannot sync the directory of", "settings"},
    {"the directory's fsync", IO_FSYNC, 2, EIO, 0, false, -2, "cannot sync the directory of", "settings"},
};

/* One failure, with old (NULL: no settings file yet) in place and new being saved. */
static void save_fails(struct tdir *t, const struct failure *f, const struct settings *old,
                       const struct settings *next)
{
	char err[1024] = "", want[1024];
	size_t oldlen = 0, newlen;
	char *oldtext = NULL, *newtext = store_render(next, &newlen);
	assert_non_null(newtext);
	if (old) {
		if (store_save(t->path, old, err, sizeof(err)) != 0)
			fail_msg("saving the old settings: %s", err);
		oldtext = store_render(old, &oldlen);
		assert_non_null(oldtext);
	} else {
		unlink(t->file);
	}
	int fds = open_fds();

	io_arm(f->fn, f->at, f->err);
	io.write_max = f->write_max;
	io.zero = f->zero;
	int rc = store_save(t->path, next, err, sizeof(err));
	unsigned long calls = io.calls[f->fn];
	io_disarm();

	if (rc != f->rc)
		fail_msg("%s failing: store_save returned %d (%s), expected %d", f->what, rc, err, f->rc);
	if (calls < f->at)
		fail_msg("%s failing: store_save made only %lu %s calls", f->what, calls, io_names[f->fn]);
	/* the step, the file, the reason */
	snprintf(want, sizeof(want), "%s %s/%s: %s", f->message, t->path, f->name,
	         strerror(f->zero ? EIO : f->err));
	if (strcmp(err, want))
		fail_msg("%s failing: the error is '%s', expected '%s'", f->what, err, want);
	assert_false(exists(t->tmp));
	assert_int_equal(open_fds(), fds);

	struct settings back;
	char lerr[1024];
	if (f->rc == -1) {
		/* refused: the old file, byte for byte, and it loads as the old settings */
		assert_file_is(t->file, oldtext, oldlen);
		if (store_load(t->path, &back, lerr, sizeof(lerr)) != 0)
			fail_msg("%s failing: the old file does not load: %s", f->what, lerr);
		settings_equal(old ? old : &(struct settings){0}, &back);
		store_free(&back);
	} else {
		/* the new file is in place, maybe not durably: the caller (admin.c's commit) writes
		 * the old settings back, and that is what is there then */
		assert_file_is(t->file, newtext, newlen);
		const struct settings *before = old ? old : &(struct settings){0};
		if (store_save(t->path, before, err, 0) != 0)
			fail_msg("%s failing: writing the old settings back failed", f->what);
		char *text = store_render(before, &oldlen);
		assert_file_is(t->file, text, oldlen);
		text_free(text);
		assert_false(exists(t->tmp));
		assert_int_equal(store_load(t->path, &back, lerr, sizeof(lerr)), 0);
		settings_equal(before, &back);
		store_free(&back);
	}
	text_free(oldtext);
	text_free(newtext);
}

static void test_save_failures(void **state)
{
	struct tdir *t = *state;
	struct settings old, next;
	full_settings(&old);
	other_settings(&next);
	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
		save_fails(t, &failures[i], &old, &next);
		save_fails(t, &failures[i], &next, &old);
		save_fails(t, &failures[i], NULL, &old); /* the first save ever */
	}
	store_free(&old);
	store_free(&next);
}

/* Each of store_save's system calls fails in turn, whichever it is (SQLite-style): the
 * answer is -1 with the old file whole, or -2 (only once the rename is done) with the new
 * one in place; 0 only when what failed was the directory's close, after its sync. Never
 * a temp file left, a descriptor or a block leaked. */
static void test_save_every_call_fails(void **state)
{
	struct tdir *t = *state;
	struct settings old, next;
	char err[1024];
	full_settings(&old);
	other_settings(&next);
	size_t oldlen, newlen;
	char *oldtext = store_render(&old, &oldlen), *newtext = store_render(&next, &newlen);

	/* the calls of saving next over old, in 16-byte writes */
	assert_int_equal(store_save(t->path, &old, err, sizeof(err)), 0);
	io_trace();
	io.write_max = 16;
	assert_int_equal(store_save(t->path, &next, err, sizeof(err)), 0);
	io_disarm();
	unsigned long total = io.calls[IO_ANY];
	assert_int_equal(io.calls[IO_WRITE], (newlen + 15) / 16);
	assert_true(total >= 8);
	static const int errs[] = {EIO, ENOSPC};
	for (unsigned long at = 1; at <= total; at++) {
		for (size_t e = 0; e < 2; e++) {
			assert_int_equal(store_save(t->path, &old, err, sizeof(err)), 0);
			int fds = open_fds();
			io_arm(IO_ANY, at, errs[e]);
			io.write_max = 16;
			int rc = store_save(t->path, &next, err, sizeof(err));
			io_disarm();
			const struct io_call *c = &io.trace[at - 1];
			assert_true(c->failed_here);
			bool renamed = false;
			for (unsigned long k = 0; k + 1 < at; k++)
				renamed |= io.trace[k].fn == IO_RENAME;
			assert_false(exists(t->tmp));
			assert_int_equal(open_fds(), fds);
			if (rc == -1) {
				assert_false(renamed);
				assert_non_null(strstr(err, strerror(errs[e])));
				assert_file_is(t->file, oldtext, oldlen);
			} else if (rc == -2) {
				assert_true(renamed);
				assert_non_null(strstr(err, "cannot sync the directory of"));
				assert_file_is(t->file, newtext, newlen);
			} else {
				if (rc != 0 || at != total || c->fn != IO_CLOSE)
					fail_msg("call %lu (%s) failing: store_save returned %d", at,
					         io_names[c->fn], rc);
				assert_file_is(t->file, newtext, newlen);
			}
		}
	}
	text_free(oldtext);
	text_free(newtext);
	store_free(&old);
	store_free(&next);
}

/* ---------------------------------------------------------------- (e) load */

/* A settings.tmp left by a save cut short (a crash before its rename) is removed and
 * ignored: the settings are the file it was to replace, or none. */
static void test_load_removes_leftover_temp(void **state)
{
	struct tdir *t = *state;
	struct settings s, other, back;
	char err[1024];
	full_settings(&s);
	other_settings(&other);

	/* no settings file yet; a cut temp file */
	file_write(t->tmp, full_text, 100);
	assert_int_equal(store_load(t->path, &back, err, sizeof(err)), 0);
	settings_equal(&(struct settings){0}, &back);
	store_free(&back);
	assert_false(exists(t->tmp));
	assert_false(exists(t->file));

	/* a settings file; a whole temp file of other settings (cut before the rename) */
	assert_int_equal(store_save(t->path, &s, err, sizeof(err)), 0);
	size_t len;
	char *text = store_render(&other, &len);
	file_write(t->tmp, text, len);
	text_free(text);
	assert_int_equal(store_load(t->path, &back, err, sizeof(err)), 0);
	settings_equal(&s, &back);
	store_free(&back);
	assert_false(exists(t->tmp));
	assert_file_is(t->file, full_text, strlen(full_text));

	/* a garbage temp file */
	file_write(t->tmp, "\0\0\0garbage", 10);
	assert_int_equal(store_load(t->path, &back, err, sizeof(err)), 0);
	settings_equal(&s, &back);
	store_free(&back);
	assert_false(exists(t->tmp));

	store_free(&s);
	store_free(&other);
}

/* A settings file that is cut, empty or not ours does not load: -1, with the file and the
 * line, and no settings. */
static void test_load_refuses_bad_file(void **state)
{
	struct tdir *t = *state;
	struct settings back;
	char err[1024], want[1024];
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"", "no end line (a cut file)"},
	    {"portshare-settings 1\nurlacl http://+:80/a/ u:0:root\n", "no end line (a cut file)"},
	    {"portshare-settings 1\nurlacl http://+:80/a/ u:0", "line 2: no line end (a cut file)"},
	    {"[settings]\nend\n", "line 1: not a portshare settings file (no 'portshare-settings 1' line)"},
	    {"portshare-settings 1\nurlacl http://+:80/a/ u:0:root\nxyz\nend\n", "line 3: unknown line 'xyz'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		file_write(t->file, cases[i].text, strlen(cases[i].text));
		memset(&back, 0x5a, sizeof(back));
		assert_int_equal(store_load(t->path, &back, err, sizeof(err)), -1);
		snprintf(want, sizeof(want), "%s: %s", t->file, cases[i].why);
		assert_string_equal(err, want);
		assert_null(back.reservations);
		assert_int_equal(back.nreservations, 0);
	}
}

/* store_load's allocation (the file's text) fails: -1 naming the file and ENOMEM. */
struct load_state {
	struct tdir *t;
	struct settings s;
};

static struct tdir *load_dir;

static void *load_setup(void)
{
	struct load_state *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	l->t = load_dir;
	file_write(l->t->file, full_text, strlen(full_text));
	return l;
}

static bool load_run(void *state)
{
	struct load_state *l = state;
	char err[1024];
	if (store_load(l->t->path, &l->s, err, sizeof(err)) == 0)
		return true;
	assert_non_null(strstr(err, l->t->file));
	assert_true(strstr(err, "out of memory") || strstr(err, strerror(ENOMEM)));
	return false;
}

static void load_check(void *state, bool done)
{
	struct load_state *l = state;
	if (!done) {
		assert_null(l->s.reservations);
		return;
	}
	struct settings s;
	full_settings(&s);
	settings_equal(&s, &l->s);
	store_free(&s);
}

static void load_teardown(void *state)
{
	struct load_state *l = state;
	store_free(&l->s);
	free(l);
}

static void test_load_out_of_memory(void **state)
{
	load_dir = *state;
	static const struct failalloc_case c = {load_setup, load_run, load_check, load_teardown};
	assert_true(failalloc_run(&c) >= 2);
}

/* ---------------------------------------------------------------- (f) the lock */

/* A second lock on the directory fails and names the holder's pid; store_lock_is knows
 * the lock's descriptor from any other; once the holder is gone, the lock is free. */
static void test_lock(void **state)
{
	struct tdir *t = *state;
	char err[1024] = "", lockpath[300], want[64];
	snprintf(lockpath, sizeof(lockpath), "%s/lock", t->path);
	int fds = open_fds();

	/* another process holds it */
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		__real_close(up[0]);
		__real_close(down[1]);
		char c = store_lock(t->path, err, sizeof(err)) >= 0 ? 'y' : 'n';
		if (__real_write(up[1], &c, 1) != 1 || read(down[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	__real_close(up[1]);
	__real_close(down[0]);
	char c = 0;
	assert_int_equal(read(up[0], &c, 1), 1);
	assert_int_equal(c, 'y');

	assert_int_equal(store_lock(t->path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "(pid %d)", (int)child);
	if (!strstr(err, want) || !strstr(err, t->path) || !strstr(err, "in use by another portshared"))
		fail_msg("the error '%s' does not name the directory and the holder %s", err, want);
	size_t len;
	char *pid = file_read(lockpath, &len);
	snprintf(want, sizeof(want), "%d\n", (int)child);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(pid, want, len);
	free(pid);

	/* the holder exits: ours now, with our pid */
	__real_close(down[1]);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	__real_close(up[0]);
	int fd = store_lock(t->path, err, sizeof(err));
	if (fd < 0)
		fail_msg("store_lock after the holder exited: %s", err);
	pid = file_read(lockpath, &len);
	snprintf(want, sizeof(want), "%d\n", (int)getpid());
	assert_int_equal(len, strlen(want));
	assert_memory_equal(pid, want, len);
	free(pid);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

	/* a second lock in this process too: another open file description */
	assert_int_equal(store_lock(t->path, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "(pid %d)", (int)getpid());
	assert_non_null(strstr(err, want));

	/* store_lock_is: the lock's fd, and no other */
	assert_true(store_lock_is(fd, t->path));
	int other = open(t->file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(other >= 0);
	assert_false(store_lock_is(other, t->path));
	int again = open(lockpath, O_RDONLY | O_CLOEXEC); /* the same file, opened anew: it is */
	assert_true(store_lock_is(again, t->path));
	close(again);
	assert_false(store_lock_is(fd, "/tmp"));
	assert_false(store_lock_is(-1, t->path));
	close(other);
	close(fd);
	assert_false(store_lock_is(fd, t->path));

	/* released with its fd */
	fd = store_lock(t->path, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_fds(), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_parse_roundtrip),
	    cmocka_unit_test(test_roundtrip_empty_and_managed),
	    cmocka_unit_test(test_roundtrip_limits),
	    cmocka_unit_test(test_parse_refuses),
	    cmocka_unit_test(test_parse_refuses_every_cut),
	    cmocka_unit_test(test_parse_out_of_memory),
	    cmocka_unit_test_setup_teardown(test_save_load_roundtrip, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_save_call_order, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_save_short_and_interrupted_writes, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_save_failures, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_save_every_call_fails, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_load_removes_leftover_temp, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_load_refuses_bad_file, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_load_out_of_memory, dir_setup, dir_teardown),
	    cmocka_unit_test_setup_teardown(test_lock, dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
