/* port_owner.c: who holds a listening TCP port, from /proc/net/tcp{,6} and /proc/PID/fd
 * (as `ss -ltnp` finds it without netlink). */
#include "port_owner.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Finds the inode and uid of a listening TCP socket on port in /proc/net/tcp{,6}. */
static int proc_net_listener(uint16_t port, unsigned long *inode, unsigned *uid)
{
	static const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512];
	for (size_t i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char local[64];
			unsigned st, lport, u;
			unsigned long ino;
			if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %u %*d %lu", local, &st, &u, &ino) !=
			    4)
				continue;
			char *colon = strrchr(local, ':');
			if (!colon || sscanf(colon + 1, "%x", &lport) != 1)
				continue;
			if (st == 0x0A && lport == port) {
				*inode = ino;
				*uid = u;
				fclose(f);
				return 0;
			}
		}
		fclose(f);
	}
	return -1;
}

pid_t port_owner_pid(unsigned long inode, char *comm, size_t commlen)
{
	char want[64], path[600], link[64];
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	pid_t found = -1;
	struct dirent *de;
	while (found < 0 && (de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		DIR *fdd = opendir(path);
		if (!fdd)
			continue;
		struct dirent *fe;
		while ((fe = readdir(fdd))) {
			snprintf(path, sizeof(path), "/proc/%s/fd/%s", de->d_name, fe->d_name);
			ssize_t n = readlink(path, link, sizeof(link) - 1);
			if (n > 0) {
				link[n] = 0;
				if (!strcmp(link, want)) {
					found = atoi(de->d_name);
					break;
				}
			}
		}
		closedir(fdd);
	}
	closedir(d);
	if (found > 0) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)found);
		FILE *f = fopen(path, "re");
		if (!f || !fgets(comm, (int)commlen, f))
			snprintf(comm, commlen, "?");
		if (f)
			fclose(f);
		comm[strcspn(comm, "\n")] = 0;
	}
	return found;
}

int port_owner_find(uint16_t port, struct port_owner *o)
{
	memset(o, 0, sizeof(*o));
	if (proc_net_listener(port, &o->inode, &o->uid) < 0)
		return -1;
	o->pid = port_owner_pid(o->inode, o->program, sizeof(o->program));
	return 0;
}
