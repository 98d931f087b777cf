/* error.c: the human texts of libportshare's error codes (ps_strerror). */
#include "portshare.h"

const char *ps_strerror(int code)
{
	switch (code) {
	case PS_OK:
		return "success";
	case PS_EINVAL:
		return "invalid argument (a malformed prefix, queue name, header or status)";
	case PS_EEXIST:
		return "the queue name or URL prefix is already taken";
	case PS_ENOTFOUND:
		return "no such queue or URL prefix";
	case PS_EDENIED:
		return "permission denied (an admin-only operation, or another user's queue or reservation)";
	case PS_EPORTINUSE:
		return "the address and port are held by another program";
	case PS_EDISCONNECTED:
		return "no session with portshared: the daemon is not running or the socket path is wrong";
	case PS_ETIMEDOUT:
		return "timed out";
	case PS_EPROTO:
		return "protocol error between libportshare and portshared";
	case PS_ENOMEM:
		return "out of memory";
	case PS_ESYSTEM:
		return "a system call failed (see errno)";
	case PS_ESTATE:
		return "not allowed in the current state (a second response, a drained queue, ...)";
	case PS_ECLOSED:
		return "the client connection is closed or was reset";
	case PS_EBODY:
		return "the request body is malformed or larger than the queue allows";
	case PS_EVERSION:
		return "portshared does not support this library's protocol version";
	case PS_ELIMIT:
		return "a daemon limit was reached";
	case PS_EAGAIN:
		return "nothing is ready yet (timeout 0)";
	}
	return "unknown portshare error code";
}
