/* store.c: the admin settings (settings-t.h) as a text file in the state directory,
 * written atomically (a temp file, fsync, rename, fsync of the directory: a crash at any
 * instant leaves the old file or the new one, never a mix, DESIGN §8), and the lock that
 * makes the directory one daemon's. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"

#define STORE_FILE "settings"
#define STORE_TEMP STORE_FILE ".tmp" /* store_write_file's temp name */
#define STORE_LOCK "lock"
#define STORE_MAGIC "portshare-settings 1"
#define STORE_LINE_MAX (PS_PREFIX_MAX + SETTINGS_PRINCIPALS_MAX * 48 + 64)

void store_free(struct settings *s)
{
	free(s->reservations);
	free(s->grants);
	memset(s, 0, sizeof(*s));
}

/* ---------------------------------------------------------------- text */

int store_parse_principal(const char *w, struct principal *p)
{
	char kind;
	unsigned long id;
	int used = 0;
	memset(p, 0, sizeof(*p));
	if (sscanf(w, "%c:%lu:%n", &kind, &id, &used) != 2 || !used || (kind != 'u' && kind != 'g') ||
	    id > UINT32_MAX || strlen(w + used) > PRINCIPAL_NAME_MAX)
		return -1;
	for (const char *c = w + used; *c; c++)
		if (*c <= ' ' || *c == ':' || (unsigned char)*c >= 0x7f)
			return -1;
	p->kind = kind;
	p->id = (uint32_t)id;
	snprintf(p->name, sizeof(p->name), "%s", *(w + used) ? w + used : "?");
	return 0;
}

int store_parse_endpoint(const char *w, struct ps_addr *a)
{
	const char *colon = strrchr(w, ':');
	char host[64];
	if (!colon || (size_t)(colon - w) >= sizeof(host))
		return -1;
	memcpy(host, w, (size_t)(colon - w));
	host[colon - w] = '\0';
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || !colon[1] || colon[1] == '0' || port < 1 || port > 65535)
		return -1;
	/* an IPv6 address needs its brackets here: [::1]:80 */
	if (strchr(host, ':') && host[0] != '[')
		return -1;
	if (config_parse_addr(host, a) < 0)
		return -1;
	a->port = (uint16_t)port;
	return 0;
}

/* Splits line into at most max words; returns the count, or -1 for too many. */
static int split(char *line, char **words, int max)
{
	int n = 0;
	for (char *save = NULL, *w = strtok_r(line, " \t\r\n", &save); w;
	     w = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == max)
			return -1;
		words[n++] = w;
	}
	return n;
}

static int parse_principals(char **words, int n, struct principal *who, unsigned *nwho)
{
	if (n < 1 || n > SETTINGS_PRINCIPALS_MAX)
		return -1;
	for (int i = 0; i < n; i++)
		if (store_parse_principal(words[i], &who[i]) < 0)
			return -1;
	*nwho = (unsigned)n;
	return 0;
}

void *store_slot(void *array_p, size_t n, size_t size)
{
	void **array = array_p;
	if (n >= SETTINGS_ENTRIES_MAX)
		return NULL;
	if (n % 16 == 0) {
		void *a = realloc(*array, (n + 16) * size);
		if (!a)
			return NULL;
		*array = a;
	}
	char *slot = (char *)*array + n * size;
	memset(slot, 0, size);
	return slot;
}

/* One line of the file into s: 0, or -1 with what is wrong in why. */
static int parse_line(struct settings *s, char *line, char *why, size_t whylen)
{
	char *w[SETTINGS_PRINCIPALS_MAX + 3];
	int n = split(line, w, (int)(sizeof(w) / sizeof(w[0])));
	char err[256];
	if (n < 0) {
		snprintf(why, whylen, "too many words");
		return -1;
	}
	if (n == 0 || w[0][0] == '#')
		return 0;
	if (!strcmp(w[0], "urlacl") && n >= 3) {
		struct reservation *r = store_slot(&s->reservations, s->nreservations, sizeof(*r));
		if (!r) {
			snprintf(why, whylen, "more than %d reservations, or out of memory",
			         SETTINGS_ENTRIES_MAX);
			return -1;
		}
		if (url_prefix_parse(w[1], &r->prefix, err, sizeof(err)) < 0 ||
		    parse_principals(w + 2, n - 2, r->who, &r->nwho) < 0) {
			snprintf(why, whylen, "bad reservation '%s'", w[1]);
			return -1;
		}
		s->nreservations++;
		return 0;
	}
	if (!strcmp(w[0], "grant") && n >= 4) {
		struct grant *g = store_slot(&s->grants, s->ngrants, sizeof(*g));
		if (!g) {
			snprintf(why, whylen, "more than %d grants, or out of memory", SETTINGS_ENTRIES_MAX);
			return -1;
		}
		if (!protocol_queue_name_ok(w[1]) || store_parse_principal(w[2], &g->owner) < 0 ||
		    g->owner.kind != 'u' || parse_principals(w + 3, n - 3, g->who, &g->nwho) < 0) {
			snprintf(why, whylen, "bad grant for queue '%s'", w[1]);
			return -1;
		}
		snprintf(g->queue, sizeof(g->queue), "%s", w[1]);
		s->ngrants++;
		return 0;
	}
	if (!strcmp(w[0], "iplisten") && n == 2) {
		s->listen_managed = true;
		if (!strcmp(w[1], "managed"))
			return 0;
		if (s->nlisten == CONFIG_LISTEN_MAX || config_parse_addr(w[1], &s->listen[s->nlisten]) < 0) {
			snprintf(why, whylen, "bad listen address '%s'", w[1]);
			return -1;
		}
		s->nlisten++;
		return 0;
	}
	if (!strcmp(w[0], "redirect") && n == 3) {
		struct redirect *r = &s->redirects[s->nredirects];
		char bad[256];
		unsigned long port = strtoul(w[2], NULL, 10);
		if (s->nredirects == SETTINGS_REDIRECTS_MAX ||
		    url_prefix_parse(w[1], &r->from, bad, sizeof(bad)) < 0 || r->from.https || port == 0 ||
		    port > 65535) {
			snprintf(why, whylen, "bad redirect '%s %s'", w[1], w[2]);
			return -1;
		}
		r->to_port = (uint16_t)port;
		s->nredirects++;
		return 0;
	}
	if (!strcmp(w[0], "exclude") && n == 2) {
		if (s->nexclusions == SETTINGS_EXCLUSIONS_MAX ||
		    store_parse_endpoint(w[1], &s->exclusions[s->nexclusions]) < 0) {
			snprintf(why, whylen, "bad exclusion '%s'", w[1]);
			return -1;
		}
		s->nexclusions++;
		return 0;
	}
	snprintf(why, whylen, "unknown line '%s'", w[0]);
	return -1;
}

int store_parse(const char *text, size_t len, struct settings *s, char *err, size_t errlen)
{
	struct settings next = {0};
	char line[STORE_LINE_MAX], why[256];
	size_t off = 0;
	unsigned lineno = 0;
	bool magic = false, end = false;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		lineno++;
		if (!nl || n >= sizeof(line) || end) {
			snprintf(err, errlen, "line %u: %s", lineno,
			         end   ? "text after the end line"
			         : !nl ? "no line end (a cut file)"
			               : "line too long");
			store_free(&next);
			return -1;
		}
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + 1;
		if (!magic) {
			if (strcmp(line, STORE_MAGIC) && line[0] != '#') {
				snprintf(err, errlen, "line %u: not a portshare settings file (no '%s' line)",
				         lineno, STORE_MAGIC);
				store_free(&next);
				return -1;
			}
			magic = line[0] != '#';
			continue;
		}
		if (!strcmp(line, "end")) {
			end = true;
			continue;
		}
		if (parse_line(&next, line, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "line %u: %s", lineno, why);
			store_free(&next);
			return -1;
		}
	}
	if (!end) {
		snprintf(err, errlen, "no end line (a cut file)");
		store_free(&next);
		return -1;
	}
	*s = next;
	return 0;
}

static void render_principals(FILE *f, const struct principal *who, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		fprintf(f, " %c:%u:%s", who[i].kind, who[i].id, who[i].name);
}

char *store_render(const struct settings *s, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	if (!f)
		return NULL;
	fprintf(f, "# portshare's admin settings, written by portshared: change them with portsharectl\n");
	fprintf(f, "%s\n", STORE_MAGIC);
	for (size_t i = 0; i < s->nreservations; i++) {
		char p[PS_PREFIX_MAX + 300];
		url_prefix_format(&s->reservations[i].prefix, p, sizeof(p));
		fprintf(f, "urlacl %s", p);
		render_principals(f, s->reservations[i].who, s->reservations[i].nwho);
		fputc('\n', f);
	}
	for (size_t i = 0; i < s->ngrants; i++) {
		const struct grant *g = &s->grants[i];
		fprintf(f, "grant %s u:%u:%s", g->queue, g->owner.id, g->owner.name);
		render_principals(f, g->who, g->nwho);
		fputc('\n', f);
	}
	if (s->listen_managed)
		fprintf(f, "iplisten managed\n");
	for (unsigned i = 0; i < s->nlisten; i++) {
		char a[PS_ADDR_TEXT_MAX];
		addr_format(&s->listen[i], a, sizeof(a));
		*strrchr(a, ':') = '\0'; /* no port */
		fprintf(f, "iplisten %s\n", a);
	}
	for (unsigned i = 0; i < s->nexclusions; i++) {
		char a[PS_ADDR_TEXT_MAX];
		fprintf(f, "exclude %s\n", addr_format(&s->exclusions[i], a, sizeof(a)));
	}
	for (unsigned i = 0; i < s->nredirects; i++) {
		char p[PS_PREFIX_MAX + 300];
		url_prefix_format(&s->redirects[i].from, p, sizeof(p));
		fprintf(f, "redirect %s %u\n", p, (unsigned)s->redirects[i].to_port);
	}
	fprintf(f, "end\n");
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

int store_copy(const struct settings *from, struct settings *to)
{
	char err[256];
	size_t len;
	char *text = store_render(from, &len);
	int rc = text ? store_parse(text, len, to, err, sizeof(err)) : -1;
	free(text);
	return rc;
}

/* ---------------------------------------------------------------- the file */

/* Formats "what DIR/NAME: strerror(errno)" into err; returns -1. */
static int failed(char *err, size_t errlen, const char *what, const char *dir, const char *name)
{
	snprintf(err, errlen, "%s %s/%s: %s", what, dir, name, strerror(errno));
	return -1;
}

int store_load(const char *dir, struct settings *s, char *err, size_t errlen)
{
	char path[4096], why[512];
	memset(s, 0, sizeof(*s));
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_TEMP);
	unlink(path); /* a write cut short; the file it was to replace is whole */
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0; /* nothing changed yet: no reservation, the config's listen list */
	if (fd < 0)
		return failed(err, errlen, "cannot read", dir, STORE_FILE);
	struct stat st;
	char *text = NULL;
	ssize_t got = -1;
	if (fstat(fd, &st) == 0 && st.st_size < (64 << 20) && (text = malloc((size_t)st.st_size + 1))) {
		got = 0;
		while (got < st.st_size) {
			ssize_t n = read(fd, text + got, (size_t)(st.st_size - got));
			if (n <= 0)
				break;
			got += n;
		}
	}
	close(fd);
	if (got != st.st_size) {
		free(text);
		snprintf(err, errlen, "cannot read %s: %s", path,
		         got < 0 && errno ? strerror(errno) : "short read");
		return -1;
	}
	int rc = store_parse(text, (size_t)got, s, why, sizeof(why));
	free(text);
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

int store_write_file(const char *dir, const char *name, const void *data, size_t len, char *err,
                     size_t errlen)
{
	char tmp[4096], path[4096], tmpname[256];
	snprintf(tmpname, sizeof(tmpname), "%s.tmp", name);
	snprintf(tmp, sizeof(tmp), "%s/%s", dir, tmpname);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	const char *text = data;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return failed(err, errlen, "cannot create", dir, tmpname);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			failed(err, errlen, "cannot write", dir, tmpname);
			goto out_close;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0) {
		failed(err, errlen, "cannot write (fsync)", dir, tmpname);
		goto out_close;
	}
	if (close(fd) < 0) {
		failed(err, errlen, "cannot write (close)", dir, tmpname);
		goto out_unlink;
	}
	if (rename(tmp, path) < 0) {
		failed(err, errlen, "cannot replace", dir, name);
		goto out_unlink;
	}
	/* the rename itself is durable only once the directory is */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		failed(err, errlen, "cannot sync the directory of", dir, name);
		if (dfd >= 0)
			close(dfd);
		return -2; /* the new file is in place, but might not survive a power cut */
	}
	close(dfd);
	return 0;
out_close:
	close(fd);
out_unlink:
	unlink(tmp);
	return -1;
}

int store_save(const char *dir, const struct settings *s, char *err, size_t errlen)
{
	size_t len;
	char *text = store_render(s, &len);
	if (!text) {
		snprintf(err, errlen, "out of memory writing the settings");
		return -1;
	}
	int rc = store_write_file(dir, STORE_FILE, text, len, err, errlen);
	free(text);
	return rc;
}

int store_lock(const char *dir, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return failed(err, errlen, "cannot open", dir, STORE_LOCK);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(err, errlen,
		         "state directory %s is in use by another portshared%s%s%s (one daemon per state "
		         "directory; "
		         "--upgrade takes over from it)",
		         dir, *pid ? " (pid " : "", pid, *pid ? ")" : "");
		close(fd);
		return -1;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		failed(err, errlen, "cannot write", dir, STORE_LOCK);
		close(fd);
		return -1;
	}
	return fd;
}

int store_lock_is(int fd, const char *dir)
{
	char path[4096];
	struct stat a, b;
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_LOCK);
	if (fstat(fd, &a) < 0 || stat(path, &b) < 0)
		return 0;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}
