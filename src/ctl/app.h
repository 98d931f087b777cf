/* app.h: portsharectl app, the apps of the portshare-apps supervisor (proxy queues and
 * activated commands), sent over the supervisor's own socket (apps_wire.h), not the
 * daemon's. */
#ifndef PS_CTL_APP_H
#define PS_CTL_APP_H

const char *app_help(void);
/* argv: what follows "app". The exit status (0, 1 refused or unreachable, 2 usage). */
int app_run(const char *apps_socket, int argc, char **argv);

#endif
