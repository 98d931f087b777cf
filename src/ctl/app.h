/* app.h: portsharectl app, the apps of the portshare-apps supervisor (proxy queues and
 * activated commands), sent over the supervisor's own socket (apps_wire.h), not the
 * daemon's. */
#ifndef PS_CTL_APP_H
#define PS_CTL_APP_H

#include <stdbool.h>
#include <stddef.h>

struct json;

const char *app_help(void);
/* argv: what follows "app". The exit status (0, 1 refused or unreachable, 2 usage). */
int app_run(const char *apps_socket, int argc, char **argv);

/* What portshare-apps says of its apps (app show --json: {"apps":[...]}), freed with
 * json_free; NULL with why in err (one line: not running, root only), which is no error
 * for status and who. */
struct json *app_list(const char *apps_socket, char *err, size_t errlen);
/* The apps' part of status (port 0: every app) and who (the apps with a URL on port):
 * name, queue, state, backend, pids. Text: lines starting with indent, or one line with
 * err when list is NULL. JSON: ,"apps":[...] (or ,"apps":null,"apps_error":ERR) to go
 * inside the caller's object. */
void app_print(const struct json *list, const char *err, unsigned port, bool json, const char *indent);

#endif
