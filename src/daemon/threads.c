/* threads.c: the daemon's event-loop threads (DESIGN §1: one per core, at most four).
 *
 * Thread 0 is the main thread: queues, sessions, the route table and every connection
 * from routing on live there and are touched by nobody else. The other ("front")
 * threads each hold a copy of every listening socket, registered with EPOLLEXCLUSIVE so
 * the kernel wakes one idle thread per new connection; a front thread accepts, reads
 * and checks the request head, answers bad heads itself, and hands a connection with
 * an accepted head to thread 0. Nothing is locked: threads talk only through inboxes,
 * lock-free stacks drained in one exchange, with an eventfd to wake the receiver.
 *
 * Thread 0 registers the copies in the front threads' epoll sets before its own
 * listener, so an idle front thread is woken first and thread 0 keeps its time for
 * queues and sessions; a busy front thread is passed over by the kernel. */
#include "threads.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "conn.h"
#include "daemon-t.h"
#include "list.h"
#include "listener-t.h"
#include "log.h"
#include "takeover.h"
#include "threads-t.h"

_Thread_local struct thread *this_thread;

static void threads_on_wake(struct loop_io *io, uint32_t events);

unsigned threads_default(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n < 1 ? 1 : n > THREADS_MAX ? THREADS_MAX : (unsigned)n;
}

static int thread_setup(struct thread *t, unsigned index)
{
	t->index = index;
	t->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	t->wake = (struct loop_io){.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), .fn = threads_on_wake};
	t->stop_msg.type = THREAD_MSG_STOP;
	t->exit_msg.type = THREAD_MSG_EXIT;
	t->handover_msg.type = THREAD_MSG_HANDOVER;
	atomic_init(&t->inbox, NULL);
	atomic_init(&t->nconns, 0);
	atomic_init(&t->accepted, 0);
	if (index == 0) {
		t->loop = dm->loop;
		t->limits = &dm->cfg.limits;
		t->conns = &dm->conns;
	} else {
		t->loop = loop_new();
		t->own_limits = dm->cfg.limits;
		t->limits = &t->own_limits;
		list_init(&t->own_conns);
		t->conns = &t->own_conns;
	}
	if (!t->loop || t->wake.fd < 0 || loop_io_add(t->loop, &t->wake, EPOLLIN) < 0)
		return -1;
	return 0;
}

int threads_init(unsigned n)
{
	dm->nthreads = n;
	for (unsigned i = 0; i < n; i++)
		if (thread_setup(&dm->threads[i], i) < 0)
			return -1;
	this_thread = &dm->threads[0];
	return 0;
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	this_thread = t;
	loop_run(t->loop);
	/* after EXIT: whatever is left is closed here, by its owner */
	conn_close_all();
	return NULL;
}

int threads_start(void)
{
	for (unsigned i = 1; i < dm->nthreads; i++) {
		int e = pthread_create(&dm->threads[i].tid, NULL, thread_main, &dm->threads[i]);
		if (e) {
			errno = e;
			dm->nthreads = i; /* the ones started are joined at exit */
			return -1;
		}
	}
	return 0;
}

void threads_post(struct thread *t, struct thread_msg *m)
{
	struct thread_msg *old = atomic_load_explicit(&t->inbox, memory_order_relaxed);
	do {
		m->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&t->inbox, &old, m, memory_order_release,
	                                                memory_order_relaxed));
	if (!old) { /* the receiver drains everything on one wake-up */
		uint64_t one = 1;
		ssize_t w = write(t->wake.fd, &one, sizeof(one));
		(void)w; /* only fails when the counter is already huge: a wake is pending */
	}
}

/* The inbox, oldest first. */
static struct thread_msg *inbox_take(struct thread *t)
{
	struct thread_msg *m = atomic_exchange_explicit(&t->inbox, NULL, memory_order_acquire), *fifo = NULL;
	while (m) {
		struct thread_msg *next = m->next;
		m->next = fifo;
		fifo = m;
		m = next;
	}
	return fifo;
}

static void front_stop(struct thread *t)
{
	t->stopping = true;
	conn_close_idle();
	if (list_empty(t->conns))
		loop_stop(t->loop);
}

/* A new daemon took over (takeover.c): this thread parses no more heads. Connections
 * waiting for one go to thread 0, which hands them over; the others follow when their
 * answer is written (conn.c). Its listener copies were closed just before. */
static void front_hand_over(struct thread *t)
{
	t->handing_over = true;
	struct list *p, *n;
	list_for_each_safe(p, n, t->conns)
	{
		struct conn *c = container_of(p, struct conn, link);
		if (c->state == CONN_READING)
			takeover_hand_over_conn(c);
	}
}

static void thread_handle(struct thread *t, struct thread_msg *m)
{
	switch (m->type) {
	case THREAD_MSG_CONN:
		conn_adopt(container_of(m, struct conn, move));
		break;
	case THREAD_MSG_UNLISTEN: {
		struct endpoint *e = m->p;
		loop_timer_cancel(t->loop, &e->pause);
		loop_io_del(t->loop, &e->io);
		close(e->io.fd);
		e->io.fd = -1;
		loop_defer(t->loop, free, e);
		break;
	}
	case THREAD_MSG_LIMITS:
		t->own_limits = *(struct limits *)m->p;
		free(m->p);
		free(m);
		break;
	case THREAD_MSG_STOP:
		front_stop(t);
		break;
	case THREAD_MSG_EXIT:
		t->stopping = true;
		loop_stop(t->loop);
		break;
	case THREAD_MSG_HANDOVER:
		front_hand_over(t);
		break;
	}
}

static void threads_on_wake(struct loop_io *io, uint32_t events)
{
	struct thread *t = this_thread;
	uint64_t v;
	ssize_t r = read(io->fd, &v, sizeof(v));
	(void)r; /* EAGAIN: a wake that an earlier drain already served */
	struct thread_msg *m = inbox_take(t);
	while (m) {
		struct thread_msg *next = m->next;
		thread_handle(t, m);
		m = next;
	}
}

void threads_limits_changed(void)
{
	for (unsigned i = 1; i < dm->nthreads; i++) {
		struct thread_msg *m = calloc(1, sizeof(*m));
		struct limits *l = m ? malloc(sizeof(*l)) : NULL;
		if (!l) {
			free(m);
			log_error("reload: out of memory: thread %u keeps its old limits", i);
			continue;
		}
		*l = dm->cfg.limits;
		m->type = THREAD_MSG_LIMITS;
		m->p = l;
		threads_post(&dm->threads[i], m);
	}
}

void threads_stop(void)
{
	dm->threads[0].stopping = true;
	for (unsigned i = 1; i < dm->nthreads; i++)
		threads_post(&dm->threads[i], &dm->threads[i].stop_msg);
}

void threads_hand_over(void)
{
	for (unsigned i = 1; i < dm->nthreads; i++)
		threads_post(&dm->threads[i], &dm->threads[i].handover_msg);
}

void threads_join(void)
{
	for (unsigned i = 1; i < dm->nthreads; i++) {
		struct thread *t = &dm->threads[i];
		threads_post(t, &t->exit_msg);
		pthread_join(t->tid, NULL);
		close(t->wake.fd);
		close(t->reserve_fd);
		loop_free(t->loop);
	}
	/* heads handed over after thread 0's loop ended: they join its list to be closed */
	struct thread *t0 = &dm->threads[0];
	t0->stopping = true;
	for (struct thread_msg *m = inbox_take(t0), *next; m; m = next) {
		next = m->next;
		conn_keep_moved(container_of(m, struct conn, move)); /* this thread is t0 */
	}
	dm->nthreads = 1;
}

uint32_t threads_conns(void)
{
	uint32_t n = 0;
	for (unsigned i = 0; i < dm->nthreads; i++)
		n += atomic_load_explicit(&dm->threads[i].nconns, memory_order_relaxed);
	return n;
}
