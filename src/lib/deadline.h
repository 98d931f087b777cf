/* deadline.h: millisecond deadlines on the monotonic clock, so a call that waits in
 * several steps (reconnect, then a reply, then a delivery) honours one timeout.
 * A deadline of -1 means "never"; a timeout of 0 gives a deadline that has already come. */
#ifndef PS_LIB_DEADLINE_H
#define PS_LIB_DEADLINE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static inline int64_t deadline_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : deadline_now() + timeout_ms;
}

/* The earlier of two deadlines (-1 is later than any). */
static inline int64_t deadline_min(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* What is left, as a poll()/epoll_wait() timeout. */
static inline int deadline_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - deadline_now();
	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static inline bool deadline_passed(int64_t deadline)
{
	return deadline >= 0 && deadline_now() >= deadline;
}

#endif
