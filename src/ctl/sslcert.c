/* sslcert.c: portsharectl sslcert add, delete, show and reload (sslcert.h). add and reload
 * read the chain and key here and send their PEM text in the COMMAND; the daemon checks
 * them, keeps its own copy in its state directory and remembers the paths for reload. */
#include "sslcert.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "protocol.h"

static const char help[] =
    "usage: portsharectl sslcert add --hostport NAME:PORT|--ipport ADDR:PORT --cert FILE --key FILE\n"
    "       portsharectl sslcert delete --hostport NAME:PORT|--ipport ADDR:PORT\n"
    "       portsharectl sslcert show [--json]\n"
    "       portsharectl sslcert reload\n"
    "  A certificate binding (as netsh http add sslcert) gives portshared the certificate it\n"
    "  answers TLS handshakes with. --hostport: for clients that ask for NAME (SNI) on PORT;\n"
    "  --ipport: for every handshake on ADDR:PORT (also clients that send no name), with\n"
    "  0.0.0.0:PORT and [::]:PORT standing for every address of their family that has no\n"
    "  binding of its own. A --hostport binding wins over an --ipport one.\n"
    "  FILE: PEM; --cert the chain, the server's certificate first; --key its private key,\n"
    "  unencrypted (RSA or ECDSA). portsharectl reads them (it may, run as root; the daemon's\n"
    "  user need not) and sends them to portshared, which checks that the key is the\n"
    "  certificate's, keeps its own copy in its state directory (readable by its user only)\n"
    "  and uses it at once. An expired certificate is taken, with a warning. The chain and key\n"
    "  together must fit in one command (about 60 KiB).\n"
    "  reload: reads every binding's files again, at the paths given at add, and sends them\n"
    "  (after a renewal; e.g. in certbot's deploy hook). New handshakes use the new\n"
    "  certificates; established connections keep theirs. A binding whose files are missing or\n"
    "  bad keeps the certificate it had. SIGHUP makes portshared re-read its own copies.\n"
    "  show: each binding's endpoint, subject, names, validity, SHA-256 fingerprint and files.\n"
    "  Admins only, except show.\n"
    "  Example: portsharectl sslcert add --hostport www.example.com:443 \\\n"
    "             --cert /etc/letsencrypt/live/www.example.com/fullchain.pem \\\n"
    "             --key /etc/letsencrypt/live/www.example.com/privkey.pem\n";

const char *sslcert_help(void)
{
	return help;
}

/* The whole text of path (malloc'd, NUL-terminated), or NULL after printing why. */
static char *file_text(const char *what, const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *text = fd >= 0 ? malloc(PS_COMMAND_MAX + 1) : NULL;
	size_t got = 0;
	while (text) {
		ssize_t n = read(fd, text + got, PS_COMMAND_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (got += (size_t)n) > PS_COMMAND_MAX)
			break;
	}
	int e = errno;
	if (fd < 0 || !text || got == 0 || got > PS_COMMAND_MAX || memchr(text, '\0', got)) {
		if (fd < 0 || !text)
			fprintf(stderr, "portsharectl: sslcert: cannot read the %s %s: %s\n", what, path,
			        strerror(fd < 0 ? e : ENOMEM));
		else
			fprintf(stderr, "portsharectl: sslcert: the %s %s is %s\n", what, path,
			        got == 0 ? "empty"
			        : got > PS_COMMAND_MAX
			            ? "too large (a chain and key must fit in about 60 KiB)"
			            : "not PEM text (it holds a NUL byte: DER?)");
		if (fd >= 0)
			close(fd);
		free(text);
		return NULL;
	}
	close(fd);
	text[got] = '\0';
	*len = got;
	return text;
}

/* Reads cert and key and has the daemon add (or, update: replace) the binding. 0 or 1. */
static int send_files(struct ctl *c, const char *verb, const char *kind, const char *endpoint,
                      const char *cert, const char *key)
{
	char cert_abs[PATH_MAX], key_abs[PATH_MAX];
	size_t clen, klen;
	/* the daemon keeps the paths for reload, which may run from another directory */
	if (!realpath(cert, cert_abs) || !realpath(key, key_abs)) {
		fprintf(stderr, "portsharectl: sslcert: cannot read %s: %s\n",
		        realpath(cert, cert_abs) ? key : cert, strerror(errno));
		return 1;
	}
	char *chain = file_text("certificate chain", cert_abs, &clen);
	char *pem = chain ? file_text("key", key_abs, &klen) : NULL;
	if (!pem) {
		free(chain);
		return 1;
	}
	const char *words[] = {"sslcert", verb, kind, endpoint, cert_abs, key_abs, chain, pem};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		total += strlen(words[i]) + 1;
	int rc = 1;
	char *out = NULL;
	if (total > PS_COMMAND_MAX) {
		fprintf(stderr,
		        "portsharectl: sslcert: %s (%zu bytes) and %s (%zu bytes) do not fit in one command "
		        "(%d bytes with the names): leave out what the chain need not carry (the root)\n",
		        cert_abs, clen, key_abs, klen, PS_COMMAND_MAX);
	} else if (c->fd >= 0 || ctl_open(c) == 0) {
		int status = ctl_command(c, false, (int)(sizeof(words) / sizeof(words[0])), words, &out);
		if (status == 0) {
			fputs(out, stdout);
			rc = 0;
		} else if (status != CTL_FAILED) {
			fprintf(stderr, "portsharectl: %s\n", out);
		}
	}
	explicit_bzero(pem, klen);
	free(chain);
	free(pem);
	free(out);
	return rc;
}

/* A path as the daemon wrote it into show's JSON, back to its bytes: json_write_string
 * escapes every byte past ASCII as \u00XX, which json_parse decodes to the UTF-8 of that
 * code point (two bytes, C2 or C3 first); each such character is one byte of the path. */
static void path_bytes(const char *json_text, char *out, size_t len)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)json_text; *p && n + 1 < len; p++) {
		if ((p[0] == 0xc2 || p[0] == 0xc3) && (p[1] & 0xc0) == 0x80) {
			out[n++] = (char)(((p[0] & 0x03) << 6) | (p[1] & 0x3f));
			p++;
		} else {
			out[n++] = (char)*p;
		}
	}
	out[n] = '\0';
}

/* sslcert reload: each binding's files, as show lists them, sent again. */
static int reload(struct ctl *c)
{
	const char *words[] = {"sslcert", "show"};
	char *out, err[256];
	if (ctl_open(c) < 0)
		return 1;
	int status = ctl_command(c, true, 2, words, &out);
	if (status) {
		if (status != CTL_FAILED)
			fprintf(stderr, "portsharectl: %s\n", out);
		free(out);
		return 1;
	}
	struct json *j = json_parse(out, err, sizeof(err));
	free(out);
	if (!j) {
		fprintf(stderr, "portsharectl: sslcert reload: the daemon's answer: %s\n", err);
		return 1;
	}
	const struct json *list = json_get(j, "bindings");
	int rc = 0;
	if (!json_count(list))
		puts("no certificate bindings");
	for (size_t i = 0; i < json_count(list); i++) {
		const struct json *b = json_at(list, i);
		char cert[PATH_MAX], key[PATH_MAX];
		path_bytes(json_string(json_get(b, "cert_file"), "?"), cert, sizeof(cert));
		path_bytes(json_string(json_get(b, "key_file"), "?"), key, sizeof(key));
		if (send_files(c, "update", json_string(json_get(b, "kind"), "?"),
		               json_string(json_get(b, "endpoint"), "?"), cert, key))
			rc = 1;
	}
	json_free(j);
	return rc;
}

int sslcert_run(struct ctl *c, int argc, char **argv)
{
	const char *verb = argc ? argv[0] : "";
	const char *kind = NULL, *endpoint = NULL, *cert = NULL, *key = NULL;
	bool json = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **to = !strcmp(a, "--hostport") || !strcmp(a, "--ipport") ? &endpoint
		                  : !strcmp(a, "--cert")                             ? &cert
		                  : !strcmp(a, "--key")                              ? &key
		                                                                     : NULL;
		if (!strcmp(a, "--json")) {
			json = true;
		} else if (!to) {
			return ctl_usage_error("sslcert",
			                       "unknown argument '%s' (try: portsharectl sslcert --help)", a);
		} else if (i + 1 >= argc || *to) {
			return ctl_usage_error("sslcert", "%s %s", a, *to ? "given twice" : "needs a value");
		} else {
			if (to == &endpoint)
				kind = a + 2;
			*to = argv[++i];
		}
	}
	bool add = !strcmp(verb, "add"), del = !strcmp(verb, "delete");
	bool show = !strcmp(verb, "show"), rel = !strcmp(verb, "reload");
	if (!add && !del && !show && !rel)
		return ctl_usage_error(
		    "sslcert", "which? add, delete, show or reload (try: portsharectl sslcert --help)");
	if ((show || rel) && (endpoint || cert || key))
		return ctl_usage_error("sslcert", "%s takes no binding or file", verb);
	if ((add || del) && !endpoint)
		return ctl_usage_error("sslcert", "%s needs --hostport NAME:PORT or --ipport ADDR:PORT",
		                       verb);
	if (add && (!cert || !key))
		return ctl_usage_error("sslcert", "add needs --cert FILE and --key FILE");
	if (del && (cert || key))
		return ctl_usage_error("sslcert", "delete takes no --cert or --key");
	if (json && !show)
		return ctl_usage_error("sslcert", "--json is for show");
	if (add)
		return send_files(c, "add", kind, endpoint, cert, key);
	if (rel)
		return reload(c);
	const char *words[] = {"sslcert", verb, kind, endpoint};
	char *out;
	if (ctl_open(c) < 0)
		return 1;
	int status = ctl_command(c, json, del ? 4 : 2, words, &out);
	if (status == CTL_FAILED)
		return 1;
	if (status)
		fprintf(stderr, "portsharectl: %s\n", out);
	else
		fputs(out, stdout);
	free(out);
	return status ? 1 : 0;
}
