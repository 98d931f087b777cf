/* session-t.h: a session: one client process on the control socket (functions in session.h). */
#ifndef PS_DAEMON_SESSION_T_H
#define PS_DAEMON_SESSION_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "list.h"
#include "loop.h"
#include "protocol.h"
#include "shared.h"
#include "acl.h"

struct accesslog_session;

struct outmsg {
	struct outmsg *next;
	int fd; /* a dup of the fd to pass, or -1; closed once sent */
	uint32_t len;
	char data[];
};

struct session {
	uint32_t id;
	struct loop_io io;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	char program[PS_PROGRAM_MAX + 1];
	char user[33];
	struct ident ident; /* uid, every gid (SO_PEERCRED, SO_PEERGROUPS), user name */
	bool hello;
	bool admin;
	bool tls; /* its HELLO said the library takes TLS connections (PS_HELLO_TLS) */
	bool dead;
	bool killed;              /* the daemon ended it (protocol error); its process may live on */
	bool takeover;            /* a new portshared taking over from this one (takeover.c) */
	bool hung_up;             /* its process closed its end: read what is left, send nothing */
	struct shared_page *page; /* delegation (DESIGN §6): mapped by both sides, or NULL */
	bool lib_counts;          /* its library counts delivered requests in the page (delegate_count) */
	bool delegating;          /* its HELLO asked for delegation (PS_HELLO_DELEGATE) */
	bool page_offered;        /* its page was made (or failed) when it first held a queue */
	struct accesslog_session *log; /* records of the page's ring begun, not ended (accesslog.c) */
	struct list attached;          /* struct attach */
	struct list requests;          /* delivered, not yet returned */
	struct outmsg *out_head, *out_tail;
	size_t out_bytes;
	struct list link;
};

#endif
