/* loop.h: the daemon's event loop: epoll readiness callbacks, one-shot timers on a
 * min-heap, and deferred calls (an object is never freed inside its own callback). */
#ifndef PS_LOOP_H
#define PS_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_io;
typedef void (*loop_io_fn)(struct loop_io *io, uint32_t events);

/* Embed in the object that owns the fd; epoll's data.ptr points here. */
struct loop_io {
	int fd;          /* -1 once closed: late events from the same batch are ignored */
	uint32_t events; /* what is registered now */
	bool registered;
	loop_io_fn fn;
};

struct loop_timer;
typedef void (*loop_timer_fn)(struct loop_timer *t);
struct loop_timer {
	uint64_t deadline_ms; /* CLOCK_MONOTONIC */
	uint32_t heap_index;  /* 0: not armed */
	loop_timer_fn fn;
};

struct loop *loop_new(void);
void loop_free(struct loop *l);
uint64_t loop_now_ms(void);

/* epoll registration of io->fd. loop_io_del must come before close(): a registration
 * belongs to the open file description and outlives a close() of one copy (DESIGN §2a). */
int loop_io_add(struct loop *l, struct loop_io *io, uint32_t events);
int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events);
void loop_io_del(struct loop *l, struct loop_io *io);

void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t after_ms);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t)
{
	return t->heap_index != 0;
}

/* Calls fn(p) after the current batch of events has been handled: a free, or any work
 * that must not run under the callback that asked for it. */
void loop_defer(struct loop *l, void (*fn)(void *), void *p);

/* Runs until loop_stop(); returns 0, or -1 if epoll itself fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
