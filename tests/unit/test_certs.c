/* test_certs.c: unit tests of the certificate bindings (src/daemon/certs.c, DESIGN §11)
 * with real certificates made here by GnuTLS's x509 API (ECDSA P-256 and RSA-2048, a leaf
 * signed by a CA of its own, an expired one): certs_find's precedence (hostport by SNI,
 * case-insensitively; then the local address's ipport, a v4-mapped local taken as IPv4;
 * then the wildcard ipport of the family), certs_covers, a key that is not its
 * certificate's and garbage refused with the old binding kept, certs_reload keeping the
 * old snapshot when a file is bad, a snapshot held across a reload staying usable, and the
 * state directory: modes, files of a change cut short swept, the bindings and the
 * session-ticket key the same after a restart; and real GnuTLS handshakes whose server
 * picks its credentials with certs_find after the ClientHello (by SNI, then the wildcard
 * ipport; a renewal seen by the next handshake), tickets on with certs_ticket_key. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "failalloc.h"

#include "../../src/daemon/certs.c"

/* the daemon's log.c needs the daemon; the tests keep the last error instead */
static char last_log[2048];

void log_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
}

void log_warning(const char *fmt, ...)
{
	(void)fmt;
}

void log_info(const char *fmt, ...)
{
	(void)fmt;
}

/* ---------------------------------------------------------------- certificates */

struct pem {
	char *cert, *key; /* malloc'd PEM texts */
};

static char *export_pem(int (*fn)(void *, gnutls_x509_crt_fmt_t, gnutls_datum_t *), void *obj)
{
	gnutls_datum_t d;
	assert_int_equal(fn(obj, GNUTLS_X509_FMT_PEM, &d), 0);
	char *s = malloc(d.size + 1);
	assert_non_null(s);
	memcpy(s, d.data, d.size);
	s[d.size] = '\0';
	gnutls_free(d.data);
	return s;
}

static int crt_export(void *c, gnutls_x509_crt_fmt_t f, gnutls_datum_t *d)
{
	return gnutls_x509_crt_export2(c, f, d);
}

static int key_export(void *k, gnutls_x509_crt_fmt_t f, gnutls_datum_t *d)
{
	return gnutls_x509_privkey_export2(k, f, d);
}

/* A certificate for cn and the DNS names (NULL-ended), valid from..to (days from now),
 * signed by ca (NULL: self-signed). With ca_out, the CA's own objects are kept there. */
static struct pem make_cert(const char *cn, const char *const *names, bool rsa, int from, int to,
                            const struct pem *ca)
{
	static unsigned serial_n = 1;
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt, ca_crt = NULL;
	gnutls_x509_privkey_t ca_key = NULL;
	time_t now = time(NULL);
	unsigned char serial[4] = {0, 0, (unsigned char)(serial_n >> 8), (unsigned char)serial_n++};
	assert_int_equal(gnutls_x509_privkey_init(&key), 0);
	assert_int_equal(
	    gnutls_x509_privkey_generate(key, rsa ? GNUTLS_PK_RSA : GNUTLS_PK_ECDSA,
	                                 rsa ? 2048 : GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
	    0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now + (time_t)from * 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + (time_t)to * 86400), 0);
	assert_int_equal(
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)), 0);
	for (size_t i = 0; names && names[i]; i++)
		assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, names[i],
		                                                      (unsigned)strlen(names[i]),
		                                                      GNUTLS_FSAN_APPEND),
		                 0);
	if (!names)
		assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), 0);
	assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
	if (ca) {
		gnutls_datum_t c = {(unsigned char *)ca->cert, (unsigned)strlen(ca->cert)};
		gnutls_datum_t k = {(unsigned char *)ca->key, (unsigned)strlen(ca->key)};
		assert_int_equal(gnutls_x509_crt_init(&ca_crt), 0);
		assert_int_equal(gnutls_x509_crt_import(ca_crt, &c, GNUTLS_X509_FMT_PEM), 0);
		assert_int_equal(gnutls_x509_privkey_init(&ca_key), 0);
		assert_int_equal(gnutls_x509_privkey_import(ca_key, &k, GNUTLS_X509_FMT_PEM), 0);
	}
	assert_int_equal(
	    gnutls_x509_crt_sign2(crt, ca ? ca_crt : crt, ca ? ca_key : key, GNUTLS_DIG_SHA256, 0), 0);
	struct pem p = {export_pem(crt_export, crt), export_pem(key_export, key)};
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	if (ca) {
		gnutls_x509_crt_deinit(ca_crt);
		gnutls_x509_privkey_deinit(ca_key);
	}
	return p;
}

static void pem_free(struct pem *p)
{
	free(p->cert);
	free(p->key);
}

/* ---------------------------------------------------------------- fixtures */

static char dir[64];
static struct pem pa, pb, pc, pd, pca, pleaf, prsa, pold;
static char *chain; /* pleaf's certificate, then pca's */

static int group_setup(void **state)
{
	static const char *const a[] = {"a.test", "www.a.test", NULL};
	static const char *const b[] = {"b.test", NULL};
	static const char *const c[] = {"*.c.test", NULL};
	static const char *const d[] = {"d.test", NULL};
	static const char *const leaf[] = {"leaf.test", NULL};
	static const char *const rsa[] = {"rsa.test", NULL};
	pa = make_cert("a.test", a, false, -1, 90, NULL);
	pb = make_cert("b.test", b, false, -1, 90, NULL);
	pc = make_cert("c.test", c, false, -1, 90, NULL);
	pd = make_cert("d.test", d, false, -1, 90, NULL);
	pca = make_cert("Test CA", NULL, false, -1, 900, NULL);
	pleaf = make_cert("leaf.test", leaf, false, -1, 90, &pca);
	prsa = make_cert("rsa.test", rsa, true, -1, 90, NULL);
	pold = make_cert("b.test", b, false, -100, -10, NULL);
	chain = malloc(strlen(pleaf.cert) + strlen(pca.cert) + 1);
	strcpy(chain, pleaf.cert);
	strcat(chain, pca.cert);
	return 0;
}

static int group_teardown(void **state)
{
	pem_free(&pa);
	pem_free(&pb);
	pem_free(&pc);
	pem_free(&pd);
	pem_free(&pca);
	pem_free(&pleaf);
	pem_free(&prsa);
	pem_free(&pold);
	free(chain);
	return 0;
}

static int setup(void **state)
{
	char err[1024];
	snprintf(dir, sizeof(dir), "/tmp/test_certs.XXXXXX");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(certs_init(dir, err, sizeof(err)), 0);
	return 0;
}

static int teardown(void **state)
{
	certs_shutdown();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int add3(const char *kind, const char *ep, const char *cert, const char *key, bool replace, char *err,
                size_t errlen, char *warn)
{
	struct certs_add a = {.kind = kind,
	                      .endpoint = ep,
	                      .replace = replace,
	                      .chain = cert,
	                      .chain_len = strlen(cert),
	                      .key = key,
	                      .key_len = strlen(key),
	                      .src_cert = "/etc/test/cert.pem",
	                      .src_key = "/etc/test/key.pem"};
	char w[256];
	return certs_add(&a, warn ? warn : w, 256, err, errlen);
}

static void add_ok(const char *kind, const char *ep, const struct pem *p)
{
	char err[1024] = "";
	int rc = add3(kind, ep, p->cert, p->key, false, err, sizeof(err), NULL);
	if (rc)
		fail_msg("add %s %s: %d %s", kind, ep, rc, err);
}

static struct ps_addr addr(const char *text, uint16_t port)
{
	struct ps_addr a = {.port = port};
	assert_int_equal(config_parse_addr(text, &a), 0);
	a.port = port;
	return a;
}

/* The CN of the leaf of the binding certs_find picks (NULL: none). */
static const char *found(const char *local, uint16_t port, const char *sni)
{
	static char cn[64];
	struct cert_set *s = certs_acquire();
	struct ps_addr a = addr(local, port);
	const void *b = NULL;
	const char *why = NULL;
	gnutls_certificate_credentials_t cred = certs_find(s, &a, sni, &b, &why);
	const char *r = NULL;
	if (cred) {
		size_t n = sizeof(cn);
		assert_non_null(b);
		assert_int_equal(gnutls_x509_crt_get_dn_by_oid(((const struct binding *)b)->leaf,
		                                               GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &n),
		                 0);
		r = cn;
	} else {
		assert_null(b);
		assert_non_null(why);
		assert_non_null(strstr(why, "no certificate binding"));
	}
	certs_release(s);
	return r;
}

/* ---------------------------------------------------------------- tests */

static void test_find_precedence(void **state)
{
	assert_null(found("127.0.0.1", 8443, "a.test")); /* nothing bound yet */
	add_ok("hostport", "A.Test:8443", &pa);          /* names are kept in lower case */
	add_ok("ipport", "127.0.0.1:8443", &pb);
	add_ok("ipport", "0.0.0.0:8443", &pc);
	add_ok("ipport", "[::]:8443", &pd);
	add_ok("hostport", "leaf.test:9443", &pleaf);
	assert_string_equal(found("127.0.0.1", 8443, "a.test"), "a.test");
	assert_string_equal(found("127.0.0.2", 8443, "a.test"), "a.test");
	assert_string_equal(found("::1", 8443, "a.test"), "a.test");
	assert_string_equal(found("127.0.0.1", 8443, "A.TEST"), "a.test");
	/* another name, or none: the address's own binding, then its family's wildcard */
	assert_string_equal(found("127.0.0.1", 8443, "other.test"), "b.test");
	assert_string_equal(found("127.0.0.1", 8443, NULL), "b.test");
	assert_string_equal(found("127.0.0.2", 8443, NULL), "c.test");
	assert_string_equal(found("::1", 8443, NULL), "d.test");
	assert_string_equal(found("::ffff:127.0.0.1", 8443, NULL), "b.test");
	assert_string_equal(found("::ffff:127.0.0.9", 8443, NULL), "c.test");
	/* another port: only its own bindings */
	assert_null(found("127.0.0.1", 9443, "a.test"));
	assert_null(found("127.0.0.1", 9443, NULL));
	assert_string_equal(found("127.0.0.1", 9443, "leaf.test"), "leaf.test");
	assert_null(found("127.0.0.1", 7443, "a.test"));
	struct cert_set *s = certs_acquire();
	assert_true(certs_port_has_binding(s, 8443));
	assert_true(certs_port_has_binding(s, 9443));
	assert_false(certs_port_has_binding(s, 443));
	certs_release(s);
}

static void test_covers(void **state)
{
	add_ok("hostport", "a.test:443", &pa);
	add_ok("ipport", "0.0.0.0:443", &pc);
	struct cert_set *s = certs_acquire();
	struct ps_addr a = addr("127.0.0.1", 443);
	const void *b;
	assert_non_null(certs_find(s, &a, "a.test", &b, NULL));
	assert_true(certs_covers(b, "a.test"));
	assert_true(certs_covers(b, "www.a.test"));
	assert_false(certs_covers(b, "b.test"));
	assert_false(certs_covers(b, "x.a.test"));
	assert_non_null(certs_find(s, &a, "x.c.test", &b, NULL));
	assert_true(certs_covers(b, "x.c.test"));
	assert_false(certs_covers(b, "c.test"));
	assert_false(certs_covers(b, "y.x.c.test"));
	assert_false(certs_covers(NULL, "a.test"));
	certs_release(s);
}

static void test_refused_keeps_old(void **state)
{
	char err[1024];
	add_ok("hostport", "b.test:443", &pb);
	struct cert_set *s = certs_acquire();
	/* a key that is not the certificate's */
	assert_int_equal(add3("hostport", "b.test:443", pb.cert, pa.key, true, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_non_null(strstr(err, "/etc/test/cert.pem"));
	assert_non_null(strstr(err, gnutls_strerror(GNUTLS_E_CERTIFICATE_KEY_MISMATCH)));
	assert_int_equal(add3("hostport", "new.test:443", pb.cert, pa.key, false, err, sizeof(err), NULL),
	                 PS_EINVAL);
	/* garbage, an empty chain, a key with no certificate */
	assert_int_equal(add3("hostport", "b.test:443", "garbage\n", pb.key, true, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("hostport", "b.test:443", pb.cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n", true,
	                      err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("hostport", "b.test:443", pb.key, pb.key, true, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("hostport", "b.test:443",
	                      "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", pb.key,
	                      true, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("hostport", "b.test:443", "-----BEGIN CERTIFICATE-----\ncut\n", pb.key, true,
	                      err, sizeof(err), NULL),
	                 PS_EINVAL);
	/* endpoints */
	assert_int_equal(add3("hostport", "b.test:0", pb.cert, pb.key, false, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("hostport", "b test:443", pb.cert, pb.key, false, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("ipport", "::1:443", pb.cert, pb.key, false, err, sizeof(err), NULL),
	                 PS_EINVAL);
	assert_int_equal(add3("ipport", "b.test:443", pb.cert, pb.key, false, err, sizeof(err), NULL),
	                 PS_EINVAL);
	/* add over a binding; replace (reload) of none; delete of none */
	assert_int_equal(add3("hostport", "B.test:443", pa.cert, pa.key, false, err, sizeof(err), NULL),
	                 PS_EEXIST);
	assert_int_equal(add3("hostport", "c.test:443", pa.cert, pa.key, true, err, sizeof(err), NULL),
	                 PS_ENOTFOUND);
	assert_int_equal(certs_delete("ipport", "127.0.0.1:443", err, sizeof(err)), PS_ENOTFOUND);
	/* nothing changed: the same snapshot, the same files */
	struct cert_set *now = certs_acquire();
	assert_ptr_equal(now, s);
	certs_release(now);
	certs_release(s);
	assert_string_equal(found("127.0.0.1", 443, "b.test"), "b.test");
	certs_shutdown();
	assert_int_equal(certs_init(dir, err, sizeof(err)), 0);
	s = certs_acquire();
	assert_int_equal(s->n, 1);
	certs_release(s);
	assert_string_equal(found("127.0.0.1", 443, "b.test"), "b.test");
}

static void test_chain_rsa_expired(void **state)
{
	char err[1024], warn[256];
	struct pem both = {chain, pleaf.key};
	add_ok("hostport", "leaf.test:443", &both);
	add_ok("hostport", "rsa.test:443", &prsa);
	struct cert_set *s = certs_acquire();
	struct ps_addr a = addr("127.0.0.1", 443);
	gnutls_certificate_credentials_t cred = certs_find(s, &a, "leaf.test", NULL, NULL);
	assert_non_null(cred);
	gnutls_datum_t der;
	assert_int_equal(gnutls_certificate_get_crt_raw(cred, 0, 1, &der), 0); /* the CA is sent too */
	assert_int_equal(gnutls_certificate_get_crt_raw(cred, 0, 2, &der),
	                 GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE);
	certs_release(s);
	assert_string_equal(found("127.0.0.1", 443, "rsa.test"), "rsa.test");
	/* expired: taken, with a warning */
	assert_int_equal(add3("hostport", "b.test:443", pold.cert, pold.key, false, err, sizeof(err), warn),
	                 0);
	assert_non_null(strstr(warn, "expired"));
	assert_int_equal(add3("hostport", "b.test:443", pb.cert, pb.key, true, err, sizeof(err), warn), 0);
	assert_string_equal(warn, "");
	/* show names the bindings, their names and source files */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	certs_show(f, true);
	fclose(f);
	assert_non_null(strstr(text, "\"kind\":\"hostport\",\"endpoint\":\"leaf.test:443\""));
	assert_non_null(strstr(text, "\"names\":[\"rsa.test\"]"));
	assert_non_null(strstr(text, "\"cert_file\":\"/etc/test/cert.pem\""));
	assert_non_null(strstr(text, "\"expired\":false"));
	free(text);
	assert_int_equal(certs_delete("hostport", "LEAF.test:443", err, sizeof(err)), 0);
	assert_null(found("127.0.0.1", 443, "leaf.test"));
}

/* The name of the one *.pem file in certs/ (for a test that damages it). */
static void state_file(const char *suffix, char *path, size_t len)
{
	DIR *d = opendir(certs.dir);
	struct dirent *de;
	path[0] = '\0';
	assert_non_null(d);
	while ((de = readdir(d)))
		if (strlen(de->d_name) == CERTS_ID_LEN + 4 && !strcmp(de->d_name + CERTS_ID_LEN, suffix))
			snprintf(path, len, "%s/%s", certs.dir, de->d_name);
	closedir(d);
	assert_true(path[0]);
}

static void test_reload_refcount(void **state)
{
	char err[1024], pem[1200];
	add_ok("ipport", "127.0.0.1:443", &pa);
	struct cert_set *before = certs_acquire();
	struct ps_addr a = addr("127.0.0.1", 443);
	gnutls_certificate_credentials_t c1 = certs_find(before, &a, NULL, NULL, NULL);
	assert_non_null(c1);
	/* a reload makes a new snapshot; the held one stays whole until released */
	assert_int_equal(certs_reload(err, sizeof(err)), 0);
	struct cert_set *after = certs_acquire();
	assert_ptr_not_equal(after, before);
	gnutls_certificate_credentials_t c2 = certs_find(after, &a, NULL, NULL, NULL);
	assert_ptr_not_equal(c2, c1);
	assert_int_equal(atomic_load(&before->refs), 1); /* only ours now */
	gnutls_datum_t der;
	assert_int_equal(gnutls_certificate_get_crt_raw(c1, 0, 0, &der), 0);
	certs_release(before);
	certs_release(after);
	/* a state file damaged: the reload is refused and the old snapshot stays */
	state_file(".pem", pem, sizeof(pem));
	FILE *f = fopen(pem, "w");
	assert_non_null(f);
	fputs("-----BEGIN CERTIFICATE-----\ncut\n", f);
	fclose(f);
	struct cert_set *held = certs_acquire();
	assert_int_equal(certs_reload(err, sizeof(err)), -1);
	assert_non_null(strstr(err, "ipport 127.0.0.1:443"));
	struct cert_set *still = certs_acquire();
	assert_ptr_equal(still, held);
	assert_ptr_equal(certs_find(still, &a, NULL, NULL, NULL), c2);
	certs_release(still);
	certs_release(held);
	/* at start, a binding that does not load is logged and kept without credentials: it
	 * serves nothing, show marks it, its files stay, a reload is not refused for it, and
	 * it can be replaced */
	add_ok("hostport", "a.test:443", &pa);
	certs_shutdown();
	last_log[0] = '\0';
	assert_int_equal(certs_init(dir, err, sizeof(err)), 0);
	assert_non_null(strstr(last_log, "ipport 127.0.0.1:443"));
	assert_null(found("127.0.0.1", 443, NULL));
	assert_string_equal(found("127.0.0.1", 443, "a.test"), "a.test");
	struct cert_set *s = certs_acquire();
	assert_int_equal(s->n, 2);
	assert_false(certs_port_has_binding(s, 80));
	certs_release(s);
	assert_int_equal(access(pem, F_OK), 0);
	char *text = NULL;
	size_t len = 0;
	f = open_memstream(&text, &len);
	certs_show(f, true);
	fclose(f);
	assert_non_null(strstr(text, "\"endpoint\":\"127.0.0.1:443\",\"loaded\":false"));
	assert_non_null(strstr(text, "\"endpoint\":\"a.test:443\",\"loaded\":true"));
	free(text);
	assert_int_equal(certs_reload(err, sizeof(err)), 0);
	assert_int_equal(add3("ipport", "127.0.0.1:443", pb.cert, pb.key, true, err, sizeof(err), NULL), 0);
	assert_string_equal(found("127.0.0.1", 443, NULL), "b.test");
	assert_int_equal(access(pem, F_OK), -1); /* the broken copy is gone */
}

static void test_state_dir(void **state)
{
	char err[1024], path[1200];
	struct stat st;
	add_ok("hostport", "a.test:443", &pa);
	assert_int_equal(stat(certs.dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	state_file(".key", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	state_file(".pem", path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/ticket-key", certs.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, CERTS_TICKET_KEY_LEN);
	unsigned char key[CERTS_TICKET_KEY_LEN];
	assert_int_equal(certs_ticket_key()->size, CERTS_TICKET_KEY_LEN);
	memcpy(key, certs_ticket_key()->data, sizeof(key));
	/* files of a change cut short (written, never listed) and temp files go at start */
	static const char *const strays[] = {"0123456789abcdef.pem", "0123456789abcdef.key", "bindings.tmp"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", certs.dir, strays[i]);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	chmod(certs.dir, 0755);
	certs_shutdown();
	assert_int_equal(certs_init(dir, err, sizeof(err)), 0);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", certs.dir, strays[i]);
		assert_int_equal(access(path, F_OK), -1);
	}
	assert_int_equal(stat(certs.dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* the same bindings and ticket key after the restart */
	assert_string_equal(found("127.0.0.1", 443, "a.test"), "a.test");
	assert_memory_equal(certs_ticket_key()->data, key, sizeof(key));
	/* deleting a binding removes its files */
	assert_int_equal(certs_delete("hostport", "a.test:443", err, sizeof(err)), 0);
	DIR *d = opendir(certs.dir);
	struct dirent *de;
	unsigned n = 0;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 2); /* bindings, ticket-key */
	/* a cut list file: the start fails, saying which file and line */
	snprintf(path, sizeof(path), "%s/bindings", certs.dir);
	FILE *f = fopen(path, "w");
	fputs("portshare-certs 1\nbinding hostport a.test:443 0123456789abcdef /a /b\n", f);
	fclose(f);
	certs_shutdown();
	assert_int_equal(certs_init(dir, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no end line"));
	unlink(path);
	assert_int_equal(certs_init(dir, err, sizeof(err)), 0);
}

static void test_paths_with_spaces(void **state)
{
	char err[1024], w[256];
	struct certs_add a = {.kind = "ipport",
	                      .endpoint = "[::1]:443",
	                      .chain = pa.cert,
	                      .chain_len = strlen(pa.cert),
	                      .key = pa.key,
	                      .key_len = strlen(pa.key),
	                      .src_cert = "/etc/my certs/100%/a.pem",
	                      .src_key = "/etc/my certs/a.key"};
	assert_int_equal(certs_add(&a, w, sizeof(w), err, sizeof(err)), 0);
	certs_shutdown();
	assert_int_equal(certs_init(dir, err, sizeof(err)), 0);
	struct cert_set *s = certs_acquire();
	assert_int_equal(s->n, 1);
	assert_string_equal(s->b[0]->src_cert, "/etc/my certs/100%/a.pem");
	assert_string_equal(s->b[0]->src_key, "/etc/my certs/a.key");
	certs_release(s);
	assert_string_equal(found("::1", 443, NULL), "a.test");
}

/* The server's credentials chosen after the ClientHello by its SNI, as the daemon's
 * handshake does: certs_find on the snapshot held for the handshake. */
static int choose_cert(gnutls_session_t sv)
{
	struct cert_set *set = gnutls_session_get_ptr(sv);
	char name[256];
	size_t len = sizeof(name);
	unsigned type;
	const char *sni = gnutls_server_name_get(sv, name, &len, &type, 0) == 0 ? name : NULL;
	struct ps_addr local = addr("127.0.0.1", 443);
	gnutls_certificate_credentials_t cred = certs_find(set, &local, sni, NULL, NULL);
	if (!cred)
		return GNUTLS_E_NO_CERTIFICATE_FOUND;
	return gnutls_credentials_set(sv, GNUTLS_CRD_CERTIFICATE, cred);
}

/* A handshake on a socketpair (tickets on, with certs_ticket_key): the CN of the
 * certificate the client got, and whether it verifies for sni against ca. */
static const char *handshake(const char *sni, const char *ca_pem, bool *verified)
{
	static char cn[64];
	int fd[2];
	gnutls_session_t c, sv;
	gnutls_certificate_credentials_t trust;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0);
	assert_int_equal(gnutls_certificate_allocate_credentials(&trust), 0);
	gnutls_datum_t ca = {(unsigned char *)ca_pem, (unsigned)strlen(ca_pem)};
	assert_true(gnutls_certificate_set_x509_trust_mem(trust, &ca, GNUTLS_X509_FMT_PEM) > 0);
	assert_int_equal(gnutls_init(&c, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_init(&sv, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_set_default_priority(c), 0);
	assert_int_equal(gnutls_set_default_priority(sv), 0);
	assert_int_equal(gnutls_credentials_set(c, GNUTLS_CRD_CERTIFICATE, trust), 0);
	if (sni)
		assert_int_equal(gnutls_server_name_set(c, GNUTLS_NAME_DNS, sni, strlen(sni)), 0);
	assert_int_equal(gnutls_session_ticket_enable_server(sv, certs_ticket_key()), 0);
	struct cert_set *set = certs_acquire();
	gnutls_session_set_ptr(sv, set);
	gnutls_handshake_set_post_client_hello_function(sv, choose_cert);
	gnutls_transport_set_int(c, fd[0]);
	gnutls_transport_set_int(sv, fd[1]);
	bool cdone = false, sdone = false;
	for (int i = 0; i < 1000 && !(cdone && sdone); i++) {
		int r;
		if (!cdone) {
			r = gnutls_handshake(c);
			assert_true(r == 0 || r == GNUTLS_E_AGAIN);
			cdone = r == 0;
		}
		if (!sdone) {
			r = gnutls_handshake(sv);
			assert_true(r == 0 || r == GNUTLS_E_AGAIN);
			sdone = r == 0;
		}
	}
	assert_true(cdone && sdone);
	unsigned status = 1;
	gnutls_typed_vdata_st host = {.type = GNUTLS_DT_DNS_HOSTNAME,
	                              .data = (unsigned char *)(sni ? sni : "none.test")};
	assert_int_equal(gnutls_certificate_verify_peers(c, &host, 1, &status), 0);
	*verified = status == 0;
	unsigned n;
	const gnutls_datum_t *peer = gnutls_certificate_get_peers(c, &n);
	assert_non_null(peer);
	gnutls_x509_crt_t crt;
	size_t len = sizeof(cn);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &peer[0], GNUTLS_X509_FMT_DER), 0);
	assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &len), 0);
	gnutls_x509_crt_deinit(crt);
	gnutls_deinit(c);
	gnutls_deinit(sv);
	certs_release(set);
	gnutls_certificate_free_credentials(trust);
	close(fd[0]);
	close(fd[1]);
	return cn;
}

static void test_handshake(void **state)
{
	bool ok;
	struct pem both = {chain, pleaf.key};
	add_ok("hostport", "leaf.test:443", &both);
	add_ok("ipport", "0.0.0.0:443", &prsa);
	/* the SNI binding, its chain verified up to the CA the client trusts */
	assert_string_equal(handshake("leaf.test", pca.cert, &ok), "leaf.test");
	assert_true(ok);
	/* another name, and none: the wildcard ipport binding (RSA) */
	assert_string_equal(handshake("other.test", prsa.cert, &ok), "rsa.test");
	assert_false(ok); /* its certificate is not for other.test */
	assert_string_equal(handshake(NULL, prsa.cert, &ok), "rsa.test");
	/* after a renewal in place, new handshakes get the new certificate */
	struct pem again = {pb.cert, pb.key};
	char err[1024];
	assert_int_equal(add3("ipport", "0.0.0.0:443", again.cert, again.key, true, err, sizeof(err), NULL),
	                 0);
	assert_string_equal(handshake(NULL, pb.cert, &ok), "b.test");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_find_precedence, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_covers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_keeps_old, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_chain_rsa_expired, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_refcount, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_state_dir, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_paths_with_spaces, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
