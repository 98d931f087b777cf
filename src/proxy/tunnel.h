/* tunnel.h: after a 101, the two connections (client and backend) joined byte for byte
 * in a thread of their own, until both directions are closed. */
#ifndef PS_PROXY_TUNNEL_H
#define PS_PROXY_TUNNEL_H

#include <stddef.h>

/* Takes both fds (closes them at the end). to_client/to_backend: bytes already read
 * from the other side, sent first (copied). 0, or -1 (nothing taken: the caller closes). */
int tunnel_start(int client_fd, int backend_fd, const char *to_client, size_t to_client_len,
                 const char *to_backend, size_t to_backend_len, int idle_timeout_ms);

#endif
