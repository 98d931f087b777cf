/* port_owner.h: who holds a listening TCP port on this machine. The daemon asks /proc
 * only (its seccomp filter allows no netlink); `portsharectl who` builds on the same. */
#ifndef PS_PORT_OWNER_H
#define PS_PORT_OWNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct port_owner {
	unsigned long inode; /* the listening socket's */
	unsigned uid;        /* who created it */
	pid_t pid;           /* a process holding it, or -1 when /proc/PID/fd cannot be read */
	char program[64];    /* that process's command name, or "" */
};

/* Finds a socket listening on port (IPv4 or IPv6, any address). 0 with *o filled, or -1
 * when none does. */
int port_owner_find(uint16_t port, struct port_owner *o);
/* The pid of a process holding socket inode, found in /proc/PID/fd (readable for our own
 * user's processes, or all of them as root), with its command name; -1 if none is seen. */
pid_t port_owner_pid(unsigned long inode, char *comm, size_t commlen);

#endif
