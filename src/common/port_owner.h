/* port_owner.h: who holds a listening TCP port on this machine. The daemon asks /proc
 * only (its seccomp filter allows no netlink); `portsharectl who` finds the sockets with
 * sock_diag (ctl/sockdiag.h) and their processes here. */
#ifndef PS_PORT_OWNER_H
#define PS_PORT_OWNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

struct port_owner {
	unsigned long inode; /* the listening socket's */
	unsigned uid;        /* who created it */
	pid_t pid;           /* a process holding it, or -1 when /proc/PID/fd cannot be read */
	char program[64];    /* that process's command name, or "" */
};

/* A process holding a socket: it has the inode open in /proc/PID/fd. */
struct port_holder {
	unsigned long inode;
	pid_t pid;
};

/* What /proc says of a process (readable for every process, unlike its fds). */
struct port_process {
	char program[64]; /* the command name (/proc/PID/comm) */
	unsigned uid;     /* its effective uid */
	char unit[256];   /* its systemd unit ("nginx.service") from /proc/PID/cgroup, or "" */
};

/* Finds a socket listening in the way of binding a (the same address and port, or a
 * wildcard of its family on that port), not one of this process's own. 0 with *o filled,
 * or -1 when none is. */
int port_owner_find(const struct ps_addr *a, struct port_owner *o);
/* The pid of a process holding socket inode, found in /proc/PID/fd (readable for our own
 * user's processes, or all of them as root), with its command name; -1 if none is seen. */
pid_t port_owner_pid(unsigned long inode, char *comm, size_t commlen);
/* The processes holding any of the n socket inodes, in one scan of /proc/PID/fd: one
 * entry per process and inode, the first max of them in out. Returns how many there are
 * (more than max when out is too small); *unreadable counts the processes whose fds we may
 * not read (other users', unless we are root). */
size_t port_owner_holders(const unsigned long *inodes, size_t n, struct port_holder *out, size_t max,
                          unsigned *unreadable);
/* Fills *p for pid. 0, or -1 when the process is gone. */
int port_owner_process(pid_t pid, struct port_process *p);

#endif
