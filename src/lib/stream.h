/* stream.h: an upgraded connection as a byte stream (ps_request_upgrade_stream), plain or
 * TLS: the library keeps sealing and opening a TLS connection's records after a 101. */
#ifndef PS_LIB_STREAM_H
#define PS_LIB_STREAM_H

#include <stddef.h>

#include "conns.h"
#include "portshare.h"

/* Internal to libportshare: not exported from the shared library. */
#pragma GCC visibility push(hidden)

/* A stream on cn (a reference is taken), starting with the len bytes of first. NULL on no
 * memory. */
ps_stream *stream_new(struct held_conn *cn, const char *first, size_t len);

#pragma GCC visibility pop

#endif
