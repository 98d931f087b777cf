/* static.c: portshare-static, a worker serving the files under one directory with
 * sendfile(2), to show streamed responses and zero-copy bodies. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "portshare.h"
#include "serve.h"

#define STATIC_NAME_MAX 4096

struct site {
	int root;                          /* O_PATH descriptor of --root */
	char root_real[PATH_MAX];          /* its real path, for kernels without openat2 */
	const char *paths[SERVE_URLS_MAX]; /* the path part of each --url */
	size_t npaths;
};

static void usage(void)
{
	fprintf(stderr, "usage: portshare-static --root DIR --url PREFIX [--socket PATH] [--queue NAME]\n");
	exit(2);
}

static const char *static_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {"html", "text/html; charset=utf-8"},
	    {"htm", "text/html; charset=utf-8"},
	    {"css", "text/css"},
	    {"js", "text/javascript"},
	    {"json", "application/json"},
	    {"txt", "text/plain; charset=utf-8"},
	    {"xml", "application/xml"},
	    {"svg", "image/svg+xml"},
	    {"png", "image/png"},
	    {"jpg", "image/jpeg"},
	    {"jpeg", "image/jpeg"},
	    {"gif", "image/gif"},
	    {"webp", "image/webp"},
	    {"ico", "image/x-icon"},
	    {"pdf", "application/pdf"},
	    {"wasm", "application/wasm"},
	};
	const char *slash = strrchr(name, '/');
	const char *dot = strrchr(slash ? slash : name, '.');
	if (dot)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcasecmp(dot + 1, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

static int static_hex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* The file name below the root for a path below the prefix. Routing decoded only
 * unreserved escapes and removed dot segments; the other escapes are decoded here,
 * refusing any that would make a separator, a NUL or a dot segment. */
static bool static_name(const char *rel, char *out, size_t cap)
{
	size_t n = 0;
	for (const char *p = rel; *p; p++) {
		char ch = *p;
		if (ch == '%') {
			int hi = static_hex(p[1]), lo = hi < 0 ? -1 : static_hex(p[2]);
			if (lo < 0)
				return false;
			ch = (char)(hi * 16 + lo);
			if (ch == '\0' || ch == '/' || ch == '\\')
				return false;
			p += 2;
		}
		if (n + 1 >= cap)
			return false;
		out[n++] = ch;
	}
	out[n] = '\0';
	for (const char *seg = out; *seg;) {
		size_t len = strcspn(seg, "/");
		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		seg += len;
		while (*seg == '/')
			seg++;
	}
	return true;
}

/* Opens name below dir, never outside it, symbolic links included. */
static int static_open(const struct site *s, int dir, const char *name)
{
	struct open_how how;
	memset(&how, 0, sizeof(how));
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK; /* a FIFO must not block us */
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	int fd = (int)syscall(SYS_openat2, dir, *name ? name : ".", &how, sizeof(how));
	if (fd >= 0 || errno != ENOSYS)
		return fd;
	/* Kernels before 5.6: open, then check where the descriptor really points. */
	fd = openat(dir, *name ? name : ".", (int)how.flags);
	if (fd < 0)
		return -1;
	char link[64], real[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, real, sizeof(real) - 1);
	size_t rl = strlen(s->root_real);
	if (n < 0 || (size_t)n < rl || memcmp(real, s->root_real, rl) != 0 ||
	    (real[rl] != '/' && (size_t)n != rl)) {
		close(fd);
		errno = EXDEV;
		return -1;
	}
	return fd;
}

static void static_error(ps_request *r, int status)
{
	static const ps_header h[] = {{"Content-Type", "text/plain; charset=utf-8"}, {"Allow", "GET, HEAD"}};
	const char *body = status == 404   ? "404 Not Found\n"
	                   : status == 403 ? "403 Forbidden\n"
	                   : status == 405 ? "405 Method Not Allowed\n"
	                                   : "500 Internal Server Error\n";
	ps_respond(r, status, h, status == 405 ? 2 : 1, body, strlen(body));
}

/* The path below the longest prefix that matches (routing matched whole segments, so
 * the bare "/blog" of a "/blog/" prefix comes here too). */
static const char *static_below_prefix(const struct site *s, const char *path)
{
	const char *best = NULL;
	size_t best_len = 0;
	for (size_t i = 0; i < s->npaths; i++) {
		size_t len = strlen(s->paths[i]);
		bool match = strncmp(path, s->paths[i], len) == 0 ||
		             (strncmp(path, s->paths[i], len - 1) == 0 && path[len - 1] == '\0');
		if (match && (!best || len > best_len)) {
			best = strlen(path) >= len ? path + len : "";
			best_len = len;
		}
	}
	return best;
}

static void static_handle(ps_request *r, void *arg)
{
	const struct site *s = arg;
	const char *method = ps_request_method(r);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		static_error(r, 405);
		return;
	}
	char name[STATIC_NAME_MAX];
	const char *rel = static_below_prefix(s, ps_request_path(r));
	if (!rel || !static_name(rel, name, sizeof(name))) {
		static_error(r, 404);
		return;
	}
	int fd = static_open(s, s->root, name);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		int index = static_open(s, fd, "index.html");
		close(fd);
		fd = index;
		snprintf(name, sizeof(name), "index.html");
		if (fd >= 0 && fstat(fd, &st) < 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0 || !S_ISREG(st.st_mode)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		static_error(r, fd < 0 && e == EACCES ? 403 : 404);
		return;
	}
	ps_header type = {"Content-Type", static_type(name)};
	int rc = ps_respond_begin(r, 200, &type, 1, st.st_size);
	if (rc == 0)
		rc = ps_respond_sendfile(r, fd, 0, (size_t)st.st_size);
	if (rc == 0)
		ps_respond_end(r);
	close(fd);
}

/* "http://host:port/a/b/" -> "/a/b/" (ending in '/', as the daemon normalises it). */
static const char *static_prefix_path(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (!p)
		return "/";
	size_t len = strlen(p);
	if (p[len - 1] == '/')
		return p;
	char *with_slash = malloc(len + 2);
	if (!with_slash)
		return p;
	memcpy(with_slash, p, len);
	memcpy(with_slash + len, "/", 2);
	return with_slash;
}

int main(int argc, char **argv)
{
	struct serve_opts o = {.prog = "portshare-static", .kind = "static"};
	const char *root = NULL;
	if (!serve_parse(&o, argc, argv, "--root", &root))
		usage();
	if (!root || o.nurls == 0)
		usage();

	static struct site s;
	s.root = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s.root < 0 || !realpath(root, s.root_real)) {
		fprintf(stderr, "portshare-static: opening the root directory %s: %s\n", root,
		        strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < o.nurls; i++)
		s.paths[s.npaths++] = static_prefix_path(o.urls[i]);

	ps_client *c;
	ps_queue *q = serve_setup(&o, &c);
	serve_forever(&o, c, q, static_handle, &s);
	return 0;
}
