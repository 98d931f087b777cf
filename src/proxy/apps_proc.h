/* apps_proc.h: the processes of portshare-apps' apps (apps_proc.c): started on demand,
 * stopped when idle, started again after a crash or failed by rapid-fail protection,
 * stopped, started and restarted by command. The state they change is struct app's
 * running state; every function here but the proxy's hooks runs under apps_proc_mu. */
#ifndef PS_PROXY_APPS_PROC_H
#define PS_PROXY_APPS_PROC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "apps.h"

#define APPS_TICK_MS 50   /* how often apps_proc_tick runs */
#define APPS_STOP_MS 5000 /* SIGTERM, then SIGKILL */
#define APPS_DEFAULT_LOG_DIR "/var/log/portshare-apps"

/* the lock over every app's running state, and its condition (a state changed) */
extern pthread_mutex_t apps_proc_mu;
extern pthread_cond_t apps_proc_cv;
extern const char *const apps_proc_state_names[]; /* by enum app_state */
/* DIR of DIR/NAME.log, set before the first start; NULL: the apps' output goes to ours */
extern const char *apps_proc_log_dir;

/* An HTTP app's targets, one a process (cfg.targets), before its proxy starts: each down
 * until its process accepts. 0, or -1 after saying why. */
int apps_proc_targets(struct app *a);
/* Sets a's proxy hooks: activation before each request, the idle clock after it. */
void apps_proc_hooks(struct app *a);
/* Every APPS_TICK_MS: starts, switches, stops what needs it (unlocks apps_proc_mu while
 * it probes whether an app accepts). */
void apps_proc_tick(struct app *a, int64_t now);
/* A libportshare app's controller saw demand: starts the app, now or once it may. */
void apps_proc_demand(struct app *a);
/* A child of ours ended with status (128+N: signal N): true when it was one of a's. */
bool apps_proc_reaped(struct app *a, pid_t pid, int status, int64_t now);
/* sig to the process groups of a's processes (serving, a restart's new and old ones). */
void apps_proc_signal(const struct app *a, int sig);
/* SIGTERM to those of a's sets that have not had it yet (a stopping or draining set is
 * left to finish). Under apps_proc_mu. */
void apps_proc_term(struct app *a);
/* The live processes of a set of APPS_PROCS_MAX slots (a->pid, next_pid, old_pid). */
int apps_proc_count(const pid_t *pids);
/* The live pids of a set as "1, 2, 3" in buf (APPS_PIDS_TEXT bytes hold them all): buf. */
#define APPS_PIDS_TEXT (APPS_PROCS_MAX * 12)
const char *apps_proc_pids(const pid_t *pids, char *buf, size_t len);
/* Crashes within a's rapid-fail interval before now. */
int apps_proc_crashes(const struct app *a, int64_t now);
/* Removes a unix socket target's file (its process is gone or never bound it). */
void apps_proc_target_unlink(const struct backend_target *t);
/* app stop, app start, app restart: 0, or -1 refused; what happened goes to out. */
int apps_proc_stop(struct app *a, FILE *out);
int apps_proc_start(struct app *a, FILE *out);
int apps_proc_restart(struct app *a, FILE *out);

#endif
