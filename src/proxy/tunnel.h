/* tunnel.h: after a 101, the client's connection (as libportshare's stream: plain or TLS
 * alike) and the backend's joined byte for byte in a thread of their own, until both
 * directions are closed. */
#ifndef PS_PROXY_TUNNEL_H
#define PS_PROXY_TUNNEL_H

#include <stdatomic.h>
#include <stddef.h>

#include "portshare.h"

/* Takes the client stream and the backend fd (closes both at the end). to_client: bytes
 * already read from the backend, sent to the client first (copied). users (may be NULL)
 * is counted up while the tunnel lasts: the backend target's, so that an overlapped
 * restart of an app lets the old process's WebSocket connections end before it stops
 * the process (as IIS waits for a recycled worker's requests, up to its drain time). 0,
 * or -1 (nothing taken: the caller closes them). */
int tunnel_start(ps_stream *client, int backend_fd, const char *to_client, size_t to_client_len,
                 int idle_timeout_ms, atomic_int *users);

#endif
