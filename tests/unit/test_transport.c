/* test_transport.c: unit tests of the message transport (src/common/transport.c) over a
 * real SOCK_SEQPACKET socketpair: which messages may carry an fd, extra and stray fds
 * closed, an fd dropped at the fd limit reported as lost, closed and empty sessions. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol.h"
#include "transport.h"

static int pair[2];
static char buf[PS_MSG_MAX];

static int setup(void **state)
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair);
}

static int teardown(void **state)
{
	close(pair[0]);
	close(pair[1]);
	return 0;
}

/* Encodes m and sends it with nfds copies of a pipe's read end (raw sendmsg, so that
 * more than one fd can be sent). */
static void send_with_fds(const struct ps_msg *m, int nfds)
{
	char out[PS_MSG_MAX];
	ssize_t len = protocol_encode(m, out, sizeof(out));
	assert_true(len > 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	int fds[4] = {p[0], p[0], p[0], p[0]};
	union {
		char b[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = out, .iov_len = (size_t)len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	assert_int_equal(sendmsg(pair[0], &mh, MSG_NOSIGNAL), len);
	close(p[0]);
	close(p[1]);
}

static enum transport_result recv_one(bool fds_allowed, struct ps_msg *m, int *fd, bool *lost,
                                      const char **why)
{
	return transport_recv(pair[1], buf, MSG_DONTWAIT, fds_allowed, m, fd, lost, why);
}

static void test_fd_where_the_protocol_says(void **state)
{
	struct ps_msg m = {.hdr = {.type = PS_MSG_SHM}}, got;
	m.u.shm.kind = PS_SHM_SESSION_PAGE;
	m.u.shm.size = 4096;
	char out[PS_MSG_MAX];
	ssize_t len = protocol_encode(&m, out, sizeof(out));
	assert_true(len > 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(transport_send(pair[0], out, (size_t)len, p[0], 0), len);
	int fd;
	bool lost;
	const char *why;
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_MSG);
	assert_int_equal(got.hdr.type, PS_MSG_SHM);
	assert_true(fd >= 0 && fd != p[0]);
	assert_false(lost);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC); /* MSG_CMSG_CLOEXEC */
	close(fd);
	close(p[0]);
	close(p[1]);

	/* a message without an fd: none expected, none given */
	struct ps_msg st = {.hdr = {.type = PS_MSG_STATUS}};
	len = protocol_encode(&st, out, sizeof(out));
	assert_int_equal(transport_send(pair[0], out, (size_t)len, -1, 0), len);
	assert_int_equal(recv_one(false, &got, &fd, &lost, &why), TRANSPORT_MSG);
	assert_int_equal(fd, -1);
	assert_int_equal(recv_one(false, &got, &fd, &lost, &why), TRANSPORT_NONE);
}

static void test_fds_against_the_rules(void **state)
{
	struct ps_msg st = {.hdr = {.type = PS_MSG_STATUS}}, shm = {.hdr = {.type = PS_MSG_SHM}}, got;
	shm.u.shm.kind = PS_SHM_SESSION_PAGE;
	shm.u.shm.size = 4096;
	int fd;
	bool lost;
	const char *why;
	int before = fcntl(0, F_DUPFD_CLOEXEC, 0);
	close(before); /* the lowest free fd now: every fd received must be closed again */

	send_with_fds(&st, 1); /* a client's message with an fd, to the daemon */
	assert_int_equal(recv_one(false, &got, &fd, &lost, &why), TRANSPORT_BAD);
	assert_string_equal(why, "sent a file descriptor");
	send_with_fds(&st, 1); /* an fd on a type that carries none */
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_BAD);
	send_with_fds(&shm, 3); /* more than one */
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_BAD);
	send_with_fds(&shm, 0); /* SHM without its memfd, and not for want of fds */
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_BAD);
	assert_int_equal(fd, -1);

	int after = fcntl(0, F_DUPFD_CLOEXEC, 0);
	close(after);
	assert_int_equal(after, before);
}

static void test_fd_lost_at_the_limit(void **state)
{
	struct ps_msg shm = {.hdr = {.type = PS_MSG_SHM}}, got;
	shm.u.shm.kind = PS_SHM_SESSION_PAGE;
	shm.u.shm.size = 4096;
	struct rlimit old, low;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	send_with_fds(&shm, 1);
	/* no fd number is free below the limit: the kernel drops the fd (MSG_CTRUNC) */
	int top = fcntl(0, F_DUPFD_CLOEXEC, 0);
	close(top);
	low = old;
	low.rlim_cur = (rlim_t)top;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int fd;
	bool lost;
	const char *why;
	enum transport_result r = recv_one(true, &got, &fd, &lost, &why);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(r, TRANSPORT_MSG);
	assert_int_equal(fd, -1);
	assert_true(lost);
}

static void test_closed_and_broken(void **state)
{
	struct ps_msg got;
	int fd;
	bool lost;
	const char *why;
	/* garbage: not a message */
	assert_int_equal(send(pair[0], "xyz", 3, 0), 3);
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_BAD);
	assert_non_null(why);
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_NONE);
	shutdown(pair[0], SHUT_WR);
	assert_int_equal(recv_one(true, &got, &fd, &lost, &why), TRANSPORT_CLOSED);
	assert_int_equal(transport_recv(-1, buf, 0, true, &got, &fd, &lost, &why), TRANSPORT_ERROR);
	assert_int_equal(errno, EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fd_where_the_protocol_says, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fds_against_the_rules, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fd_lost_at_the_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_closed_and_broken, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
