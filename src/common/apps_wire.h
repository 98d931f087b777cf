/* apps_wire.h: what portsharectl's `app` commands and the portshare-apps supervisor
 * say to each other over the supervisor's own socket (not the daemon's protocol).
 * A request is one SOCK_SEQPACKET message of NUL-ended words: "add" NAME OPTIONS...
 * [-- COMMAND ARGS...], "delete" NAME, "stop" NAME, "start" NAME, "restart" NAME,
 * "show" [--json]. The answer is one message:
 * '0' (done) or '1' (refused) and then text for a person (or JSON for show --json).
 * The socket is 0600 root in a 0700 directory: only root may talk to it (the
 * supervisor checks the peer's uid too, and answers show to anyone who reaches it). */
#ifndef PS_COMMON_APPS_WIRE_H
#define PS_COMMON_APPS_WIRE_H

/* not under /run/portshare: that directory belongs to the daemon's user and to the
 * daemon's unit, which removes it when the daemon stops */
#define APPS_DEFAULT_SOCKET "/run/portshare-apps/apps.sock"
#define APPS_DEFAULT_DIR "/etc/portshare/apps"
#define APPS_MSG_MAX 65536

#endif
