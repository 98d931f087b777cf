/* loop.c: epoll event loop with a binary min-heap of timers and deferred calls. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 256

struct deferred {
	void (*fn)(void *);
	void *p;
};

struct loop {
	int epfd;
	bool stop;
	struct loop_timer **heap; /* 1-based */
	uint32_t heap_len, heap_cap;
	struct deferred *defer;
	size_t defer_len, defer_cap;
};

static void run_deferred(struct loop *l);

uint64_t loop_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	run_deferred(l);
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	free(l);
}

static int io_ctl(struct loop *l, int op, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	return epoll_ctl(l->epfd, op, io->fd, &ev);
}

int loop_io_add(struct loop *l, struct loop_io *io, uint32_t events)
{
	if (io_ctl(l, EPOLL_CTL_ADD, io, events) < 0)
		return -1;
	io->registered = true;
	io->events = events;
	return 0;
}

int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events)
{
	if (!io->registered)
		return loop_io_add(l, io, events);
	if (io->events == events)
		return 0;
	if (io_ctl(l, EPOLL_CTL_MOD, io, events) < 0)
		return -1;
	io->events = events;
	return 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
	if (io->registered && io->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->registered = false;
	io->events = 0;
}

static void heap_swap(struct loop *l, uint32_t a, uint32_t b)
{
	struct loop_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->heap_index = a;
	l->heap[b]->heap_index = b;
}

static void heap_up(struct loop *l, uint32_t i)
{
	while (i > 1 && l->heap[i / 2]->deadline_ms > l->heap[i]->deadline_ms) {
		heap_swap(l, i, i / 2);
		i /= 2;
	}
}

static void heap_down(struct loop *l, uint32_t i)
{
	for (;;) {
		uint32_t m = i, c = 2 * i;
		if (c <= l->heap_len && l->heap[c]->deadline_ms < l->heap[m]->deadline_ms)
			m = c;
		if (c + 1 <= l->heap_len && l->heap[c + 1]->deadline_ms < l->heap[m]->deadline_ms)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	uint32_t i = t->heap_index;
	if (!i)
		return;
	if (i != l->heap_len) {
		heap_swap(l, i, l->heap_len);
		l->heap_len--;
		heap_down(l, i);
		heap_up(l, i);
	} else {
		l->heap_len--;
	}
	t->heap_index = 0;
}

void loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t after_ms)
{
	loop_timer_cancel(l, t);
	if (l->heap_len + 1 >= l->heap_cap) {
		uint32_t cap = l->heap_cap ? l->heap_cap * 2 : 256;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h)
			abort(); /* a timer that cannot be armed would leak a connection forever */
		l->heap = h;
		l->heap_cap = cap;
	}
	t->deadline_ms = loop_now_ms() + after_ms;
	l->heap[++l->heap_len] = t;
	t->heap_index = l->heap_len;
	heap_up(l, l->heap_len);
}

void loop_defer(struct loop *l, void (*fn)(void *), void *p)
{
	if (l->defer_len == l->defer_cap) {
		size_t cap = l->defer_cap ? l->defer_cap * 2 : 64;
		struct deferred *d = realloc(l->defer, cap * sizeof(*d));
		if (!d)
			abort(); /* running fn now could free under the caller */
		l->defer = d;
		l->defer_cap = cap;
	}
	l->defer[l->defer_len++] = (struct deferred){fn, p};
}

static void run_deferred(struct loop *l)
{
	/* a deferred call may defer more: walk by index */
	for (size_t i = 0; i < l->defer_len; i++)
		l->defer[i].fn(l->defer[i].p);
	l->defer_len = 0;
}

static int next_timeout(struct loop *l)
{
	if (!l->heap_len)
		return -1;
	uint64_t now = loop_now_ms(), d = l->heap[1]->deadline_ms;
	if (d <= now)
		return 0;
	return d - now > 60000 ? 60000 : (int)(d - now);
}

static void run_timers(struct loop *l)
{
	uint64_t now = loop_now_ms();
	while (l->heap_len && l->heap[1]->deadline_ms <= now) {
		struct loop_timer *t = l->heap[1];
		loop_timer_cancel(l, t);
		t->fn(t);
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event ev[LOOP_BATCH];
	l->stop = false;
	while (!l->stop) {
		int n = epoll_wait(l->epfd, ev, LOOP_BATCH, next_timeout(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < n; i++) {
			struct loop_io *io = ev[i].data.ptr;
			if (io->fd >= 0)
				io->fn(io, ev[i].events);
		}
		run_timers(l);
		run_deferred(l);
	}
	run_deferred(l);
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
