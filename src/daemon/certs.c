/* certs.c: the TLS certificate bindings (certs.h): kept in the state directory's certs/
 * (0700; each binding's chain and key copied there 0600, the list in certs/bindings),
 * loaded into GnuTLS credentials once, and served to handshakes on any thread through a
 * reference-counted snapshot that changes (admin commands, SIGHUP) only on thread 0. */
#include "certs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include "json_write.h"
#include "log.h"
#include "portshare.h"
#include "store.h"

#define CERTS_DIR "certs"
#define CERTS_LIST "bindings"
#define CERTS_TICKET_KEY "ticket-key"
#define CERTS_MAGIC "portshare-certs 1"
#define CERTS_ID_LEN 16          /* hex digits of a binding's file name */
#define CERTS_FILE_MAX (1 << 20) /* a chain or key file in certs/ (they come from a COMMAND) */
#define CERTS_TICKET_KEY_LEN 64  /* gnutls_session_ticket_key_generate's size in GnuTLS 3.7 */

/* One binding, shared by every snapshot that holds it (its own count). */
struct binding {
	atomic_uint refs;
	bool ipport;                   /* else hostport */
	char name[CERTS_NAME_MAX + 1]; /* hostport: lower case */
	struct ps_addr addr;           /* ipport: address and port; hostport: the port only */
	char id[CERTS_ID_LEN + 1];     /* files certs/ID.pem and certs/ID.key */
	char src_cert[CERTS_PATH_MAX + 1], src_key[CERTS_PATH_MAX + 1]; /* as given at add */
	gnutls_certificate_credentials_t cred; /* NULL: its files did not load at start (it */
	gnutls_x509_crt_t leaf;                /* stays listed, shown, deletable, replaceable) */
};

struct cert_set {
	atomic_uint refs;
	size_t n;
	struct binding **b;
};

static struct {
	char dir[1024];       /* the state directory's certs/ */
	pthread_mutex_t lock; /* current's pointer and its first reference */
	struct cert_set *current;
	struct cert_set empty; /* before certs_init: no binding */
	gnutls_datum_t ticket_key;
} certs = {.lock = PTHREAD_MUTEX_INITIALIZER, .empty = {.refs = 1}};

/* ---------------------------------------------------------------- bindings and sets */

static void binding_release(struct binding *b)
{
	if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	if (b->leaf)
		gnutls_x509_crt_deinit(b->leaf);
	if (b->cred)
		gnutls_certificate_free_credentials(b->cred);
	free(b);
}

static struct cert_set *set_new(size_t n)
{
	struct cert_set *s = calloc(1, sizeof(*s));
	if (!s || (n && !(s->b = calloc(n, sizeof(*s->b))))) {
		free(s);
		return NULL;
	}
	atomic_init(&s->refs, 1);
	return s;
}

static void set_free(struct cert_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		binding_release(s->b[i]);
	free(s->b);
	free(s);
}

struct cert_set *certs_acquire(void)
{
	pthread_mutex_lock(&certs.lock);
	struct cert_set *s = certs.current ? certs.current : &certs.empty;
	if (s != &certs.empty) /* never freed, never counted */
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&certs.lock);
	return s;
}

void certs_release(struct cert_set *s)
{
	if (s && s != &certs.empty && atomic_fetch_sub(&s->refs, 1) == 1)
		set_free(s);
}

/* Makes next the current snapshot (thread 0); the old one goes when its last holder lets go. */
static void set_swap(struct cert_set *next)
{
	pthread_mutex_lock(&certs.lock);
	struct cert_set *old = certs.current;
	certs.current = next;
	pthread_mutex_unlock(&certs.lock);
	certs_release(old);
}

/* ---------------------------------------------------------------- endpoints */

static bool name_ok(const char *n)
{
	size_t len = strlen(n);
	if (!len || len > CERTS_NAME_MAX || n[0] == '.' || n[0] == '-')
		return false;
	for (const char *c = n; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
			return false;
	return true;
}

static int certs_parse_endpoint(const char *kind, const char *text, bool *ipport, char *name,
                                struct ps_addr *addr)
{
	memset(addr, 0, sizeof(*addr));
	name[0] = '\0';
	if (!strcmp(kind, "ipport")) {
		*ipport = true;
		return store_parse_endpoint(text, addr);
	}
	if (strcmp(kind, "hostport"))
		return -1;
	*ipport = false;
	const char *colon = strrchr(text, ':');
	if (!colon || (size_t)(colon - text) > CERTS_NAME_MAX)
		return -1;
	memcpy(name, text, (size_t)(colon - text));
	name[colon - text] = '\0';
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || !colon[1] || colon[1] == '0' || port < 1 || port > 65535 || !name_ok(name))
		return -1;
	for (char *c = name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	addr->port = (uint16_t)port;
	return 0;
}

/* "hostport NAME:PORT" or "ipport ADDR:PORT" of b, for messages and the list file. */
static const char *endpoint_text(const struct binding *b, char *buf, size_t len)
{
	char a[PS_ADDR_TEXT_MAX];
	if (b->ipport)
		snprintf(buf, len, "ipport %s", addr_format(&b->addr, a, sizeof(a)));
	else
		snprintf(buf, len, "hostport %s:%u", b->name, (unsigned)b->addr.port);
	return buf;
}

static bool same_endpoint(const struct binding *b, bool ipport, const char *name, const struct ps_addr *a)
{
	if (b->ipport != ipport || b->addr.port != a->port)
		return false;
	if (!ipport)
		return !strcmp(b->name, name);
	return b->addr.family == a->family && !memcmp(b->addr.addr, a->addr, 16);
}

bool certs_port_has_binding(const struct cert_set *set, uint16_t port)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->b[i]->cred && set->b[i]->addr.port == port)
			return true;
	return false;
}

gnutls_certificate_credentials_t certs_find(const struct cert_set *set, const struct ps_addr *local,
                                            const char *sni, const void **binding, const char **why)
{
	static _Thread_local char why_buf[CERTS_NAME_MAX + 2 * PS_ADDR_TEXT_MAX + 96];
	struct ps_addr at = *local, any = {.port = local->port};
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (at.family == AF_INET6 && !memcmp(at.addr, mapped, 12)) {
		/* a client of an IPv4 address on a dual-stack listener */
		at.family = AF_INET;
		memmove(at.addr, at.addr + 12, 4);
		memset(at.addr + 4, 0, 12);
	}
	at.scope_id = 0;
	any.family = at.family;
	const struct binding *found = NULL;
	for (size_t i = 0; sni && !found && i < set->n; i++)
		if (set->b[i]->cred && !set->b[i]->ipport && set->b[i]->addr.port == at.port &&
		    !strcasecmp(set->b[i]->name, sni))
			found = set->b[i];
	for (size_t i = 0; !found && i < set->n; i++)
		if (set->b[i]->cred && same_endpoint(set->b[i], true, NULL, &at))
			found = set->b[i];
	for (size_t i = 0; !found && i < set->n; i++)
		if (set->b[i]->cred && same_endpoint(set->b[i], true, NULL, &any))
			found = set->b[i];
	if (binding)
		*binding = found;
	if (found)
		return found->cred;
	if (why) {
		char a[PS_ADDR_TEXT_MAX], w[PS_ADDR_TEXT_MAX];
		addr_format(&at, a, sizeof(a));
		addr_format(&any, w, sizeof(w));
		if (sni)
			snprintf(why_buf, sizeof(why_buf),
			         "no certificate binding for hostport %s:%u, ipport %s or ipport %s", sni,
			         (unsigned)at.port, a, w);
		else
			snprintf(why_buf, sizeof(why_buf),
			         "no certificate binding for ipport %s or ipport %s (the client sent no SNI)",
			         a, w);
		*why = why_buf;
	}
	return NULL;
}

bool certs_covers(const void *binding, const char *host)
{
	const struct binding *b = binding;
	return b && b->leaf && host && gnutls_x509_crt_check_hostname2(b->leaf, host, 0) != 0;
}

const gnutls_datum_t *certs_ticket_key(void)
{
	return &certs.ticket_key;
}

/* ---------------------------------------------------------------- loading */

/* The credentials and leaf certificate of b from the PEM texts. 0, or -1 with GnuTLS's
 * reason in err. */
static int binding_load(struct binding *b, const char *chain, size_t chain_len, const char *key,
                        size_t key_len, char *err, size_t errlen)
{
	gnutls_datum_t c = {(unsigned char *)chain, (unsigned)chain_len};
	gnutls_datum_t k = {(unsigned char *)key, (unsigned)key_len};
	gnutls_datum_t der;
	/* the chain is decoded once on its own first: GnuTLS 3.7.9's set_x509_key_mem2 leaks a
	 * certificate object on a PEM block it cannot decode, list_import2 does not */
	gnutls_x509_crt_t *list = NULL;
	unsigned n = 0;
	int rc = gnutls_x509_crt_list_import2(&list, &n, &c, GNUTLS_X509_FMT_PEM, 0);
	for (unsigned i = 0; rc >= 0 && i < n; i++)
		gnutls_x509_crt_deinit(list[i]);
	gnutls_free(list);
	if (rc < 0) {
		snprintf(err, errlen, "the certificate chain does not load: %s", gnutls_strerror(rc));
		return -1;
	}
	rc = gnutls_certificate_allocate_credentials(&b->cred);
	if (rc < 0) {
		snprintf(err, errlen, "GnuTLS: %s", gnutls_strerror(rc));
		return -1;
	}
	/* refuses a key that is not the leaf certificate's (GNUTLS_E_CERTIFICATE_KEY_MISMATCH) */
	rc = gnutls_certificate_set_x509_key_mem2(b->cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		snprintf(err, errlen, "the certificate chain and key do not load: %s", gnutls_strerror(rc));
		return -1;
	}
	if ((rc = gnutls_certificate_get_crt_raw(b->cred, 0, 0, &der)) < 0 ||
	    (rc = gnutls_x509_crt_init(&b->leaf)) < 0 ||
	    (rc = gnutls_x509_crt_import(b->leaf, &der, GNUTLS_X509_FMT_DER)) < 0) {
		snprintf(err, errlen, "the certificate cannot be read back: %s", gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

/* Reads certs/name whole (at most CERTS_FILE_MAX bytes). The text (malloc'd) or NULL with
 * why in err and errno set. */
static char *file_read(const char *name, size_t *len, char *err, size_t errlen)
{
	char path[sizeof(certs.dir) + 64];
	snprintf(path, sizeof(path), "%s/%s", certs.dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *text = NULL;
	size_t got = 0;
	if (fd < 0)
		goto fail;
	if (!(text = malloc(CERTS_FILE_MAX + 1)))
		goto fail;
	for (;;) {
		ssize_t n = read(fd, text + got, CERTS_FILE_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > CERTS_FILE_MAX) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	text[got] = '\0';
	*len = got;
	return text;
fail:;
	int e = errno;
	snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
	if (fd >= 0)
		close(fd);
	free(text);
	errno = e; /* ENOENT: no such file yet */
	return NULL;
}

/* A new binding from its files in certs/ (id) and its list-file fields. NULL on no
 * memory; a binding without credentials (cred NULL) when its files do not load, with why
 * in err. */
static struct binding *binding_from_files(const struct binding *proto, char *err, size_t errlen)
{
	struct binding *b = calloc(1, sizeof(*b));
	char name[64], why[512];
	size_t clen = 0, klen = 0;
	char *chain = NULL, *key = NULL;
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	*b = *proto;
	b->cred = NULL;
	b->leaf = NULL;
	atomic_init(&b->refs, 1);
	snprintf(name, sizeof(name), "%s.pem", b->id);
	chain = file_read(name, &clen, why, sizeof(why));
	snprintf(name, sizeof(name), "%s.key", b->id);
	key = chain ? file_read(name, &klen, why, sizeof(why)) : NULL;
	int rc = key ? binding_load(b, chain, clen, key, klen, why, sizeof(why)) : -1;
	if (key)
		gnutls_memset(key, 0, klen);
	free(chain);
	free(key);
	err[0] = '\0';
	if (rc < 0) {
		char ep[CERTS_NAME_MAX + 64];
		snprintf(err, errlen, "%s (certs/%s.pem, .key): %s", endpoint_text(b, ep, sizeof(ep)), b->id,
		         why);
		if (b->leaf)
			gnutls_x509_crt_deinit(b->leaf);
		if (b->cred)
			gnutls_certificate_free_credentials(b->cred);
		b->leaf = NULL;
		b->cred = NULL;
	}
	return b;
}

/* A path in the list file: bytes outside printable ASCII, space and % as %XX. */
static void path_put(FILE *f, const char *p)
{
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c >= 0x7f || c == '%')
			fprintf(f, "%%%02X", c);
		else
			fputc(c, f);
	}
}

static int path_get(const char *w, char *out, size_t len)
{
	size_t n = 0;
	for (; *w; w++) {
		unsigned v;
		if (n + 1 >= len)
			return -1;
		if (*w == '%') {
			if (sscanf(w + 1, "%2x", &v) != 1 || !isxdigit((unsigned char)w[1]) ||
			    !isxdigit((unsigned char)w[2]) || !v)
				return -1;
			out[n++] = (char)v;
			w += 2;
		} else {
			out[n++] = *w;
		}
	}
	out[n] = '\0';
	return 0;
}

static bool id_ok(const char *id)
{
	if (strlen(id) != CERTS_ID_LEN)
		return false;
	for (; *id; id++)
		if (!isxdigit((unsigned char)*id) || isupper((unsigned char)*id))
			return false;
	return true;
}

/* Parses the list file into protos (the fields; no credentials yet). 0, or -1 with the
 * line and what is wrong. A missing file is an empty list. */
static int list_read(struct binding **protos, size_t *n, char *err, size_t errlen)
{
	size_t len;
	char why[1400], path[sizeof(certs.dir) + 64];
	*protos = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/%s", certs.dir, CERTS_LIST);
	char *text = file_read(CERTS_LIST, &len, why, sizeof(why));
	if (!text && errno == ENOENT)
		return 0; /* no binding made yet */
	if (!text) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	unsigned lineno = 0;
	bool magic = false, end = false;
	int rc = -1;
	for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		if (line[0] == '#')
			continue;
		if (end) {
			snprintf(err, errlen, "%s line %u: text after the end line", path, lineno);
			goto out;
		}
		if (!magic) {
			if (strcmp(line, CERTS_MAGIC)) {
				snprintf(err, errlen, "%s line %u: not a bindings file (no '%s' line)", path,
				         lineno, CERTS_MAGIC);
				goto out;
			}
			magic = true;
			continue;
		}
		if (!strcmp(line, "end")) {
			end = true;
			continue;
		}
		struct binding b = {0};
		char *w[6], *wsave = NULL;
		int nw = 0;
		for (char *t = strtok_r(line, " ", &wsave); t && nw < 6; t = strtok_r(NULL, " ", &wsave))
			w[nw++] = t;
		if (nw != 6 || strcmp(w[0], "binding") || !id_ok(w[3]) ||
		    certs_parse_endpoint(w[1], w[2], &b.ipport, b.name, &b.addr) < 0 ||
		    path_get(w[4], b.src_cert, sizeof(b.src_cert)) < 0 ||
		    path_get(w[5], b.src_key, sizeof(b.src_key)) < 0) {
			snprintf(err, errlen, "%s line %u: not a binding", path, lineno);
			goto out;
		}
		const char *id = w[3];
		snprintf(b.id, sizeof(b.id), "%s", id);
		struct binding *more = realloc(*protos, (*n + 1) * sizeof(**protos));
		if (!more) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		*protos = more;
		(*protos)[(*n)++] = b;
	}
	if (!end)
		snprintf(err, errlen, "%s: no end line (a cut file)", path);
	else
		rc = 0;
out:
	free(text);
	if (rc < 0) {
		free(*protos);
		*protos = NULL;
		*n = 0;
	}
	return rc;
}

/* Writes set's list atomically: the moment a change is made (its files are in place before). */
static int list_write(const struct cert_set *set, char *err, size_t errlen)
{
	char *text = NULL, ep[CERTS_NAME_MAX + 64];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	fprintf(f,
	        "# portshare's certificate bindings, written by portshared: change them with "
	        "portsharectl sslcert\n%s\n",
	        CERTS_MAGIC);
	for (size_t i = 0; i < set->n; i++) {
		const struct binding *b = set->b[i];
		endpoint_text(b, ep, sizeof(ep));
		*strchr(ep, ' ') = '\0';
		fprintf(f, "binding %s %s %s ", ep, ep + strlen(ep) + 1, b->id);
		path_put(f, b->src_cert);
		fputc(' ', f);
		path_put(f, b->src_key);
		fputc('\n', f);
	}
	fputs("end\n", f);
	if (fclose(f) != 0) {
		free(text);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = store_write_file(certs.dir, CERTS_LIST, text, len, err, errlen);
	free(text);
	return rc;
}

/* Removes from certs/ every file no binding of set names (a change cut short, a binding
 * replaced or deleted), and temp files. */
static void files_sweep(const struct cert_set *set)
{
	DIR *d = opendir(certs.dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		const char *dot = strrchr(de->d_name, '.');
		bool tmp = dot && !strcmp(dot, ".tmp");
		bool file = dot && (size_t)(dot - de->d_name) == CERTS_ID_LEN &&
		            (!strcmp(dot, ".pem") || !strcmp(dot, ".key"));
		bool used = false;
		for (size_t i = 0; file && i < set->n && !used; i++)
			used = !strncmp(de->d_name, set->b[i]->id, CERTS_ID_LEN);
		if ((tmp || file) && !used)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Whether the current snapshot holds binding id without credentials (a reload that
 * still cannot load it is no worse than what runs). */
static bool unloaded_already(const char *id)
{
	const struct cert_set *cur = certs.current;
	for (size_t i = 0; cur && i < cur->n; i++)
		if (!strcmp(cur->b[i]->id, id))
			return !cur->b[i]->cred;
	return false;
}

/* A snapshot of every binding in the list, loaded from certs/. A binding that does not
 * load is kept without credentials and logged (strict: the whole load fails instead, its
 * reason in err, unless that binding was not loaded before either). */
static struct cert_set *set_load(bool strict, char *err, size_t errlen)
{
	struct binding *protos;
	size_t n;
	if (list_read(&protos, &n, err, errlen) < 0)
		return NULL;
	struct cert_set *s = set_new(n);
	if (!s) {
		free(protos);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	err[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char why[1024];
		struct binding *b = binding_from_files(&protos[i], why, sizeof(why));
		if (b)
			s->b[s->n++] = b;
		if (b && b->cred)
			continue;
		snprintf(err, errlen, "%s", b ? why : "out of memory");
		if (!b || (strict && !unloaded_already(b->id))) {
			set_free(s);
			s = NULL;
			break;
		}
		/* kept, without credentials: a file read wrong once must not lose the binding */
		log_error("certificate binding %s; it serves no handshake until replaced (portsharectl "
		          "sslcert reload) or deleted",
		          why);
	}
	free(protos);
	return s;
}

static int ticket_key_load(char *err, size_t errlen)
{
	char why[512];
	if (certs.ticket_key.data) /* a start that failed later, tried again */
		return 0;
	size_t len;
	char *key = file_read(CERTS_TICKET_KEY, &len, why, sizeof(why));
	if (!key && errno != ENOENT) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (key && len == CERTS_TICKET_KEY_LEN) {
		certs.ticket_key.data = gnutls_malloc(len);
		if (certs.ticket_key.data)
			memcpy(certs.ticket_key.data, key, len);
		certs.ticket_key.size = (unsigned)len;
		gnutls_memset(key, 0, len);
		free(key);
		return certs.ticket_key.data ? 0 : -1;
	}
	if (key) {
		log_warning("%s/%s is %zu bytes, not %d: a new session-ticket key replaces it", certs.dir,
		            CERTS_TICKET_KEY, len, CERTS_TICKET_KEY_LEN);
		gnutls_memset(key, 0, len);
		free(key);
	}
	/* the first start: tickets then survive restarts and --upgrade (same directory) */
	int rc = gnutls_session_ticket_key_generate(&certs.ticket_key);
	if (rc < 0) {
		snprintf(err, errlen, "cannot make a session-ticket key: %s", gnutls_strerror(rc));
		return -1;
	}
	if (store_write_file(certs.dir, CERTS_TICKET_KEY, certs.ticket_key.data, certs.ticket_key.size, err,
	                     errlen) == -1)
		return -1;
	return 0;
}

/* certs/ exists, 0700 (it holds private keys). */
static int dir_make(char *err, size_t errlen)
{
	if (mkdir(certs.dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", certs.dir, strerror(errno));
		return -1;
	}
	int fd = open(certs.dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || ((st.st_mode & 077) && fchmod(fd, 0700) < 0)) {
		snprintf(err, errlen, "%s: %s", certs.dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int certs_init(const char *state_dir, char *err, size_t errlen)
{
	char why[1024];
	if (strlen(state_dir) + sizeof(CERTS_DIR) + 1 > sizeof(certs.dir)) {
		snprintf(err, errlen, "the state directory's name is longer than %zu bytes",
		         sizeof(certs.dir) - sizeof(CERTS_DIR) - 1);
		return -1;
	}
	snprintf(certs.dir, sizeof(certs.dir), "%s/%s", state_dir, CERTS_DIR);
	if (dir_make(err, errlen) < 0 || ticket_key_load(err, errlen) < 0)
		return -1;
	struct cert_set *s = set_load(false, why, sizeof(why));
	if (!s) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	files_sweep(s);
	set_swap(s);
	if (s->n)
		log_info("%zu certificate binding%s loaded", s->n, s->n == 1 ? "" : "s");
	return 0;
}

int certs_reload(char *err, size_t errlen)
{
	if (!certs.current) {
		snprintf(err, errlen, "the certificate bindings were never loaded");
		return -1;
	}
	struct cert_set *s = set_load(true, err, errlen);
	if (!s)
		return -1;
	set_swap(s);
	return 0;
}

void certs_shutdown(void)
{
	set_swap(NULL);
	if (certs.ticket_key.data) {
		gnutls_memset(certs.ticket_key.data, 0, certs.ticket_key.size);
		gnutls_free(certs.ticket_key.data);
		certs.ticket_key.data = NULL;
		certs.ticket_key.size = 0;
	}
}

/* ---------------------------------------------------------------- changes by admins */

/* The current set with b put at (or added if at == n) and drop left out (SIZE_MAX: none);
 * written (list file), then in force. 0 or a PS_E* status. */
static int set_commit(struct binding *b, size_t at, size_t drop, char *err, size_t errlen)
{
	const struct cert_set *cur = certs.current;
	struct cert_set *next = set_new(cur->n + 1);
	if (!next) {
		binding_release(b);
		snprintf(err, errlen, "out of memory");
		return PS_ENOMEM;
	}
	for (size_t i = 0; i < cur->n; i++) {
		if (i == drop)
			continue;
		struct binding *keep = i == at ? b : cur->b[i];
		if (keep != b)
			atomic_fetch_add(&keep->refs, 1);
		next->b[next->n++] = keep;
	}
	if (b && at == cur->n)
		next->b[next->n++] = b;
	char why[1024];
	bool back = true; /* the list on disk is cur's */
	int rc = list_write(next, why, sizeof(why));
	if (rc == -2 && list_write(cur, err, errlen) < 0) {
		back = false; /* next's files stay: the list on disk may name them */
		log_error("the certificate bindings file may now hold a change that was refused (%s), and "
		          "the old one could not be written back: %s",
		          why, err);
	}
	if (rc < 0) {
		set_free(next);
		if (back)
			files_sweep(cur);
		snprintf(err, errlen, "the change is not made: %s", why);
		return PS_ESYSTEM;
	}
	files_sweep(next);
	set_swap(next);
	return 0;
}

static size_t binding_at(bool ipport, const char *name, const struct ps_addr *a)
{
	const struct cert_set *cur = certs.current;
	for (size_t i = 0; i < cur->n; i++)
		if (same_endpoint(cur->b[i], ipport, name, a))
			return i;
	return cur->n;
}

int certs_add(const struct certs_add *add, char *warn, size_t warnlen, char *err, size_t errlen)
{
	struct binding *b = calloc(1, sizeof(*b));
	char why[1024], id[CERTS_ID_LEN / 2], name[64];
	warn[0] = '\0';
	if (!b || !certs.current) {
		free(b);
		snprintf(err, errlen, "%s",
		         b ? "the certificate bindings were never loaded" : "out of memory");
		return b ? PS_ESTATE : PS_ENOMEM;
	}
	atomic_init(&b->refs, 1);
	if (certs_parse_endpoint(add->kind, add->endpoint, &b->ipport, b->name, &b->addr) < 0) {
		free(b);
		snprintf(err, errlen, "'%s' is not %s", add->endpoint,
		         !strcmp(add->kind, "ipport") ? "ADDR:PORT (0.0.0.0:443, 127.0.0.1:443, [::]:443)"
		                                      : "NAME:PORT (www.example.com:443)");
		return PS_EINVAL;
	}
	if (strlen(add->src_cert) > CERTS_PATH_MAX || strlen(add->src_key) > CERTS_PATH_MAX) {
		free(b);
		snprintf(err, errlen, "a file name longer than %d bytes", CERTS_PATH_MAX);
		return PS_EINVAL;
	}
	snprintf(b->src_cert, sizeof(b->src_cert), "%s", add->src_cert);
	snprintf(b->src_key, sizeof(b->src_key), "%s", add->src_key);
	if (binding_load(b, add->chain, add->chain_len, add->key, add->key_len, why, sizeof(why)) < 0) {
		binding_release(b);
		snprintf(err, errlen, "%s, %s: %s", add->src_cert, add->src_key, why);
		return PS_EINVAL;
	}
	size_t at = binding_at(b->ipport, b->name, &b->addr);
	char ep[CERTS_NAME_MAX + 64];
	endpoint_text(b, ep, sizeof(ep));
	if (add->replace != (at < certs.current->n)) {
		binding_release(b);
		snprintf(err, errlen,
		         add->replace ? "there is no binding for %s (portsharectl sslcert show)"
		                      : "there is a binding for %s already: delete it first",
		         ep);
		return add->replace ? PS_ENOTFOUND : PS_EEXIST;
	}
	time_t now = time(NULL), to = gnutls_x509_crt_get_expiration_time(b->leaf),
	       from = gnutls_x509_crt_get_activation_time(b->leaf);
	if (to != (time_t)-1 && to < now)
		snprintf(warn, warnlen, "warning: the certificate of %s expired %ld days ago\n", ep,
		         (long)((now - to) / 86400));
	else if (from != (time_t)-1 && from > now)
		snprintf(warn, warnlen,
		         "warning: the certificate of %s is not valid before %ld days from now\n", ep,
		         (long)((from - now) / 86400 + 1));
	/* new files under a new name, so the old binding's stay whole until the list says otherwise */
	gnutls_rnd(GNUTLS_RND_NONCE, id, sizeof(id));
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(b->id + 2 * i, 3, "%02x", (unsigned char)id[i]);
	snprintf(name, sizeof(name), "%s.pem", b->id);
	int rc = store_write_file(certs.dir, name, add->chain, add->chain_len, why, sizeof(why));
	snprintf(name, sizeof(name), "%s.key", b->id);
	if (rc != -1)
		rc = store_write_file(certs.dir, name, add->key, add->key_len, why, sizeof(why));
	if (rc == -1) {
		binding_release(b);
		files_sweep(certs.current);
		snprintf(err, errlen, "the change is not made: %s", why);
		return PS_ESYSTEM;
	}
	return set_commit(b, at, SIZE_MAX, err, errlen);
}

int certs_delete(const char *kind, const char *endpoint, char *err, size_t errlen)
{
	bool ipport;
	char name[CERTS_NAME_MAX + 1];
	struct ps_addr a;
	if (!certs.current || certs_parse_endpoint(kind, endpoint, &ipport, name, &a) < 0) {
		snprintf(err, errlen, "'%s' is not %s", endpoint,
		         !strcmp(kind, "ipport") ? "ADDR:PORT" : "NAME:PORT");
		return PS_EINVAL;
	}
	size_t at = binding_at(ipport, name, &a);
	if (at == certs.current->n) {
		snprintf(err, errlen, "there is no binding for %s %s (portsharectl sslcert show)", kind,
		         endpoint);
		return PS_ENOTFOUND;
	}
	return set_commit(NULL, SIZE_MAX, at, err, errlen);
}

/* ---------------------------------------------------------------- show */

static void time_text(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (t == (time_t)-1 || !gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "?");
}

/* The names the certificate is for: its DNS and IP subjectAltNames, ", "-separated or as
 * JSON strings. */
static void names_put(FILE *f, gnutls_x509_crt_t crt, bool json)
{
	bool first = true;
	for (unsigned seq = 0;; seq++) {
		char buf[512], text[64];
		size_t size = sizeof(buf) - 1;
		int type = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size, NULL);
		if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (type == GNUTLS_SAN_DNSNAME) {
			buf[size] = '\0';
		} else if (type == GNUTLS_SAN_IPADDRESS && (size == 4 || size == 16)) {
			struct ps_addr a = {.family = size == 4 ? AF_INET : AF_INET6};
			memcpy(a.addr, buf, size);
			addr_format(&a, text, sizeof(text));
			*strrchr(text, ':') = '\0';
			snprintf(buf, sizeof(buf), "%s", text[0] == '[' ? text + 1 : text);
			if (buf[strlen(buf) - 1] == ']')
				buf[strlen(buf) - 1] = '\0';
		} else {
			continue; /* a name of another kind, or too long to show */
		}
		if (json) {
			fputs(first ? "" : ",", f);
			json_write_string(f, buf);
		} else {
			fprintf(f, "%s%s", first ? "" : ", ", buf);
		}
		first = false;
	}
	if (first && !json)
		fputs("(none: the subject's CN only)", f);
}

/* A port's bindings, each {"kind","endpoint","subject","names","not_after"}: for who. */
void certs_port_json(FILE *f, uint16_t port)
{
	struct cert_set *s = certs_acquire();
	bool first = true;
	fputc('[', f);
	for (size_t i = 0; i < s->n; i++) {
		const struct binding *b = s->b[i];
		if (b->addr.port != port)
			continue;
		char ep[CERTS_NAME_MAX + 64], to[32] = "";
		gnutls_datum_t dn = {0};
		endpoint_text(b, ep, sizeof(ep));
		if (b->leaf) {
			time_text(gnutls_x509_crt_get_expiration_time(b->leaf), to, sizeof(to));
			gnutls_x509_crt_get_dn3(b->leaf, &dn, 0);
		}
		fprintf(f, "%s{\"kind\":\"%s\",\"endpoint\":", first ? "" : ",",
		        b->ipport ? "ipport" : "hostport");
		json_write_string(f, strchr(ep, ' ') + 1);
		fprintf(f, ",\"loaded\":%s,\"subject\":", b->leaf ? "true" : "false");
		json_write_string(f, dn.data ? (const char *)dn.data : "");
		fputs(",\"names\":[", f);
		if (b->leaf)
			names_put(f, b->leaf, true);
		fprintf(f, "],\"not_after\":\"%s\"}", to);
		gnutls_free(dn.data);
		first = false;
	}
	fputc(']', f);
	certs_release(s);
}

void certs_show(FILE *f, bool json)
{
	struct cert_set *s = certs_acquire();
	if (json)
		fputs("{\"bindings\":[", f);
	else if (!s->n)
		fputs("no certificate bindings\n", f);
	for (size_t i = 0; i < s->n; i++) {
		const struct binding *b = s->b[i];
		char ep[CERTS_NAME_MAX + 64], from[32] = "", to[32] = "", fp[65] = "";
		unsigned char md[32];
		size_t mdlen = sizeof(md);
		gnutls_datum_t dn = {0};
		bool expired = false;
		endpoint_text(b, ep, sizeof(ep));
		if (b->leaf) {
			time_text(gnutls_x509_crt_get_activation_time(b->leaf), from, sizeof(from));
			time_text(gnutls_x509_crt_get_expiration_time(b->leaf), to, sizeof(to));
			if (gnutls_x509_crt_get_fingerprint(b->leaf, GNUTLS_DIG_SHA256, md, &mdlen) == 0)
				for (size_t k = 0; k < mdlen; k++)
					snprintf(fp + 2 * k, 3, "%02x", md[k]);
			gnutls_x509_crt_get_dn3(b->leaf, &dn, 0);
			expired = gnutls_x509_crt_get_expiration_time(b->leaf) < time(NULL);
		}
		const char *subject = dn.data ? (const char *)dn.data : "";
		if (json) {
			fprintf(f, "%s{\"kind\":\"%s\",\"endpoint\":", i ? "," : "",
			        b->ipport ? "ipport" : "hostport");
			json_write_string(f, strchr(ep, ' ') + 1);
			fprintf(f, ",\"loaded\":%s,\"subject\":", b->leaf ? "true" : "false");
			json_write_string(f, subject);
			fputs(",\"names\":[", f);
			if (b->leaf)
				names_put(f, b->leaf, true);
			fprintf(
			    f,
			    "],\"not_before\":\"%s\",\"not_after\":\"%s\",\"expired\":%s,\"sha256\":\"%s\","
			    "\"cert_file\":",
			    from, to, expired ? "true" : "false", fp);
			json_write_string(f, b->src_cert);
			fputs(",\"key_file\":", f);
			json_write_string(f, b->src_key);
			fputc('}', f);
		} else if (!b->leaf) {
			fprintf(f,
			        "%s\n  NOT LOADED: its copy in the state directory did not load (the "
			        "daemon's log "
			        "says why); it serves no handshake until sslcert reload replaces it\n  files "
			        "      "
			        "%s, %s\n",
			        ep, b->src_cert, b->src_key);
		} else {
			fprintf(f, "%s\n  subject     %s\n  names       ", ep, subject);
			names_put(f, b->leaf, false);
			fprintf(f, "\n  valid       %s to %s%s\n  sha256      %s\n  files       %s, %s\n",
			        from, to, expired ? " (EXPIRED)" : "", fp, b->src_cert, b->src_key);
		}
		gnutls_free(dn.data);
	}
	if (json)
		fputs("]}\n", f);
	certs_release(s);
}
