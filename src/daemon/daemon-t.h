/* daemon-t.h: the daemon's global state, `dm`: config, loop, the lists of every object, the threads. */
#ifndef PS_DAEMON_DAEMON_T_H
#define PS_DAEMON_DAEMON_T_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "config.h"
#include "settings-t.h"
#include "list.h"
#include "loop.h"
#include "protocol.h"
#include "threads-t.h"

struct route_table;
struct session;

struct daemon {
	struct config cfg;
	struct settings settings; /* the admins' settings, as the state directory has them */
	int state_lock;           /* flock of the state directory (store_lock), or -1 */
	struct loop *loop;
	struct route_table *routes;
	const char *socket_path;
	const char *state_dir;
	struct loop_io ctl;          /* the control socket's listener */
	struct loop_timer ctl_pause; /* accepting sessions paused after EMFILE */
	struct loop_io sig;          /* signalfd */
	struct list endpoints, sessions, queues, conns;
	_Atomic uint64_t next_conn_id; /* connections are accepted on every thread */
	uint64_t next_req_id;
	uint32_t next_queue_id, next_session_id;
	struct thread threads[THREADS_MAX]; /* [0] is the main thread */
	unsigned nthreads;
	bool stopping;
	struct loop_timer stop_timer;
	uint64_t stop_deadline_ms;
	uint64_t routes_generation; /* bumped on every route change */
	int snapshot_fd;            /* the published route snapshot (sealed memfd), or -1 */
	uint64_t snapshot_generation;
	uint32_t snapshot_size;
	struct loop_timer publish; /* route changes are published after a short quiet spell */
	/* portshared --upgrade (takeover.c). The old daemon: */
	struct session *takeover_to;   /* the new daemon's session, once it asked */
	uint64_t handover_deadline_ms; /* ShutdownGrace after the new one took over */
	/* the new daemon: */
	struct loop_io takeover_from; /* the link to the old daemon, until it exits (fd -1: none) */
	pid_t takeover_old_pid;
	/* old: checks whether it holds anything still; new: the end of ReattachGrace */
	struct loop_timer takeover_timer;
	char msg[PS_MSG_MAX]; /* scratch: encode/receive buffer */
};

extern struct daemon *dm;

#endif
