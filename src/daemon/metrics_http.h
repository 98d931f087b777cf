/* metrics_http.h: MetricsListen, the daemon's own HTTP listener serving /metrics. */
#ifndef PS_DAEMON_METRICS_HTTP_H
#define PS_DAEMON_METRICS_HTTP_H

/* Binds MetricsListen when the config sets it (main thread, after the sandbox: binding a
 * port below 1024 uses the kept capability). 0, or -1 (logged; the daemon runs on). */
int metrics_http_start(void);
void metrics_http_stop(void);

#endif
