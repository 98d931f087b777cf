/* port_owner.c: who holds a listening TCP port, from /proc/net/tcp{,6} and /proc/PID/fd
 * (as `ss -ltnp` finds it without netlink), and what /proc says of a holding process. */
#include "port_owner.h"

#include <dirent.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/net/tcp{,6} print an address as 32-bit words in hex, each the word as it lies in
 * memory read as a host-order integer: reading each back the same way restores the bytes. */
static bool proc_net_addr(const char *hex, size_t words, uint8_t *addr)
{
	for (size_t w = 0; w < words; w++) {
		char part[9];
		memcpy(part, hex + 8 * w, 8);
		part[8] = '\0';
		char *end;
		uint32_t v = (uint32_t)strtoul(part, &end, 16);
		if (*end)
			return false;
		memcpy(addr + 4 * w, &v, 4);
	}
	return true;
}

/* Whether a socket bound to addr (family, 4 or 16 bytes) stands in the way of binding a:
 * the same address, or either a wildcard. */
static bool overlaps(int family, const uint8_t *addr, const struct ps_addr *a)
{
	static const uint8_t zero[16];
	size_t len = family == AF_INET ? 4 : 16;
	if (family != a->family)
		return false;
	return !memcmp(addr, zero, len) || !memcmp(a->addr, zero, len) || !memcmp(addr, a->addr, len);
}

/* Finds a listening TCP socket in /proc/net/tcp{,6} in the way of binding a (not one of
 * this process's own): its inode and uid. 0, or -1 when none is. */
static int proc_net_listener(const struct ps_addr *a, unsigned long *inode, unsigned *uid)
{
	static const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	static const int families[] = {AF_INET, AF_INET6};
	char line[512], comm[64];
	for (size_t i = 0; i < 2; i++) {
		if (families[i] != a->family)
			continue;
		FILE *f = fopen(files[i], "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char local[64];
			unsigned st, lport, u;
			unsigned long ino;
			uint8_t addr[16];
			if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %u %*d %lu", local, &st, &u, &ino) !=
			    4)
				continue;
			char *colon = strrchr(local, ':');
			size_t words = families[i] == AF_INET ? 1 : 4;
			if (!colon || (size_t)(colon - local) != 8 * words ||
			    sscanf(colon + 1, "%x", &lport) != 1 || !proc_net_addr(local, words, addr))
				continue;
			if (st != 0x0A || lport != a->port || !overlaps(families[i], addr, a) ||
			    port_owner_pid(ino, comm, sizeof(comm)) == getpid())
				continue;
			*inode = ino;
			*uid = u;
			fclose(f);
			return 0;
		}
		fclose(f);
	}
	return -1;
}

/* The number of "socket:[N]" in link, or 0. */
static unsigned long socket_inode(const char *link)
{
	unsigned long ino = 0;
	char end = 0;
	if (sscanf(link, "socket:[%lu%c", &ino, &end) != 2 || end != ']')
		return 0;
	return ino;
}

size_t port_owner_holders(const unsigned long *inodes, size_t n, struct port_holder *out, size_t max,
                          unsigned *unreadable)
{
	char path[600], link[64];
	size_t found = 0;
	*unreadable = 0;
	/* which inodes the current process has already been counted for (a process may hold
	 * one socket in several fds) */
	unsigned char *seen = calloc(n ? n : 1, 1);
	DIR *d = seen ? opendir("/proc") : NULL;
	if (!d) {
		free(seen);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		DIR *fdd = opendir(path);
		if (!fdd) {
			if (errno == EACCES || errno == EPERM)
				(*unreadable)++;
			continue;
		}
		memset(seen, 0, n);
		struct dirent *fe;
		while ((fe = readdir(fdd))) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s", de->d_name, fe->d_name);
			ssize_t len = readlink(path, link, sizeof(link) - 1);
			if (len <= 0)
				continue;
			link[len] = 0;
			unsigned long ino = socket_inode(link);
			for (size_t i = 0; ino && i < n; i++) {
				if (inodes[i] != ino || seen[i])
					continue;
				seen[i] = 1;
				if (found < max)
					out[found] =
					    (struct port_holder){.inode = ino, .pid = atoi(de->d_name)};
				found++;
			}
		}
		closedir(fdd);
	}
	closedir(d);
	free(seen);
	return found;
}

/* The first line of /proc/PID/NAME into buf, without its newline; "?" if unreadable. */
static void proc_line(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	FILE *f = fopen(path, "re");
	if (!f || !fgets(buf, (int)len, f))
		snprintf(buf, len, "?");
	if (f)
		fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

pid_t port_owner_pid(unsigned long inode, char *comm, size_t commlen)
{
	struct port_holder h;
	unsigned unreadable;
	if (port_owner_holders(&inode, 1, &h, 1, &unreadable) == 0)
		return -1;
	proc_line(h.pid, "comm", comm, commlen);
	return h.pid;
}

/* The systemd unit of a cgroup path: its last component naming a unit that holds
 * processes ("/system.slice/nginx.service", "/user.slice/user-1000.slice/session-2.scope",
 * "/system.slice/foo.service/worker" all have one); "" for none. */
static void cgroup_unit(const char *path, char *unit, size_t len)
{
	static const char *kinds[] = {".service", ".scope", ".socket", ".mount", ".swap"};
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		for (size_t k = 0; n && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			size_t kl = strlen(kinds[k]);
			if (n > kl && !memcmp(p + n - kl, kinds[k], kl))
				snprintf(unit, len, "%.*s", (int)n, p);
		}
		p += n;
	}
}

int port_owner_process(pid_t pid, struct port_process *p)
{
	char path[64], line[4096];
	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Uid: %*u %u", &p->uid) == 1)
			break;
	fclose(f);
	proc_line(pid, "comm", p->program, sizeof(p->program));
	/* cgroup v2's "0::PATH", else v1's systemd hierarchy "N:name=systemd:PATH" */
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	char v1[sizeof(p->unit)] = "";
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!strncmp(line, "0::", 3))
			cgroup_unit(line + 3, p->unit, sizeof(p->unit));
		else if (strstr(line, ":name=systemd:"))
			cgroup_unit(strstr(line, ":name=systemd:") + 14, v1, sizeof(v1));
	}
	fclose(f);
	if (!p->unit[0])
		snprintf(p->unit, sizeof(p->unit), "%s", v1);
	return 0;
}

int port_owner_find(const struct ps_addr *a, struct port_owner *o)
{
	memset(o, 0, sizeof(*o));
	if (proc_net_listener(a, &o->inode, &o->uid) < 0)
		return -1;
	o->pid = port_owner_pid(o->inode, o->program, sizeof(o->program));
	return 0;
}
