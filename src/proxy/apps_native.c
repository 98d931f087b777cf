/* apps_native.c: a libportshare app of portshare-apps: its persistent queue and URLs, the
 * daemon's grant that lets the app's user join that queue, and a controller thread that
 * waits on it for demand (ps_queue_wait_demand) and reads the daemon's status for the
 * app's workers and served count (docs/ADAPTERS.md, "libportshare apps"). No proxy: the
 * app takes its requests from the daemon itself. */
#include "apps_native.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../ctl/ctl.h"
#include "../ctl/json.h"
#include "apps_proc.h"
#include "portshare.h"

#define NATIVE_WAIT_MS 200    /* a demand wait: how soon a stop or start is acted on */
#define NATIVE_STATUS_MS 1000 /* the status read for the idle clock while the app runs */

/* ctl.c keeps one buffer for every session: one status or command at a time */
static pthread_mutex_t native_ctl_mu = PTHREAD_MUTEX_INITIALIZER;

struct native {
	struct app *a;
	ps_client *c; /* the controller's session; NULL while the app is stopped or failed */
	ps_queue *q;
	struct ctl ctl;   /* for the status (fd -1 until first used) */
	long long served; /* the queue's served count at the last status read; -1 none */
};

const char *apps_native_socket(const struct app *a)
{
	const char *env = getenv(PS_SOCKET_ENV);
	return a->cfg.socket ? a->cfg.socket : env && *env ? env : PS_DEFAULT_SOCKET;
}

/* "grant add|delete app-NAME" for a's user, on a session of its own: 0, or -1 after
 * saying why in our log. */
static int native_grant(const struct app *a, const char *verb)
{
	char who[128]; /* the daemon's word for a user: u:UID:NAME */
	snprintf(who, sizeof(who), "u:%u:%s", (unsigned)a->uid, a->user);
	const char *const argv[] = {"grant", verb, a->queue, who};
	int argc = 4;
	struct ctl c = {.socket_path = apps_native_socket(a), .fd = -1};
	char *out = NULL;
	pthread_mutex_lock(&native_ctl_mu);
	int rc = ctl_open(&c) < 0 ? CTL_FAILED : ctl_command(&c, false, argc, argv, &out);
	ctl_close(&c);
	pthread_mutex_unlock(&native_ctl_mu);
	if (rc != 0)
		fprintf(stderr, "portshare-apps: %s: grant %s %s %s: %s\n", a->name, verb, a->queue, a->user,
		        out && *out ? out : "the daemon could not be asked");
	free(out);
	return rc ? -1 : 0;
}

/* The process group of pid (field 5 of /proc/PID/stat), or -1: a worker in the daemon's
 * status is the app's when it is in the group the app was started in. */
static pid_t native_pgrp(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	const char *end = strrchr(buf, ')'); /* the name in parentheses may hold anything */
	int pgrp;
	return end && sscanf(end + 1, " %*c %*d %d", &pgrp) == 1 ? (pid_t)pgrp : -1;
}

/* Reads the app's queue in the daemon's status: a process that has joined is marked so
 * (once all of a starting app's have, it is running; once all of a restart's new set have,
 * it is switched to: apps_proc_tick),
 * and requests served or waiting since the last read count as use for the idle clock
 * (requests the app serves by delegation never pass through us: the served count is the
 * daemon's, the app's library reports them in it). */
static void native_watch(struct native *n)
{
	struct app *a = n->a;
	char *text = NULL, err[128];
	pthread_mutex_lock(&native_ctl_mu);
	if (n->ctl.fd < 0 && ctl_open(&n->ctl) < 0)
		n->ctl.fd = -1;
	if (n->ctl.fd >= 0 && ctl_status(&n->ctl, true, &text) < 0)
		ctl_close(&n->ctl); /* the daemon restarted: open again next time */
	pthread_mutex_unlock(&native_ctl_mu);
	struct json *st = text ? json_parse(text, err, sizeof(err)) : NULL;
	free(text);
	const struct json *queues = json_get(st, "queues"), *q = NULL;
	for (size_t i = 0; i < json_count(queues) && !q; i++)
		if (!strcmp(json_string(json_get(json_at(queues, i), "name"), ""), a->queue))
			q = json_at(queues, i);
	if (!q) {
		json_free(st);
		return;
	}
	long long served = json_int(json_get(q, "served"), -1);
	bool used = (n->served >= 0 && served != n->served) || json_int(json_get(q, "depth"), 0) > 0;
	n->served = served;
	const struct json *workers = json_get(q, "workers");
	pid_t groups[64];
	size_t ngroups = 0;
	for (size_t i = 0; i < json_count(workers) && ngroups < 64; i++) {
		pid_t pid = (pid_t)json_int(json_get(json_at(workers, i), "pid"), 0);
		if (pid > 0 && pid != getpid())
			groups[ngroups++] = native_pgrp(pid);
	}
	json_free(st);
	int64_t now = backend_now_ms();
	pthread_mutex_lock(&apps_proc_mu);
	if (used)
		a->last_use = now;
	for (size_t i = 0; i < ngroups; i++) {
		for (int k = 0; k < APPS_PROCS_MAX; k++) {
			if (a->pid[k] > 0 && groups[i] == a->pid[k] && !a->joined[k]) {
				a->joined[k] = true;
				fprintf(stderr, "portshare-apps: %s: pid %d joined queue %s\n", a->name,
				        (int)a->pid[k], a->queue);
			}
			a->next_joined[k] |= a->next_pid[k] > 0 && groups[i] == a->next_pid[k];
		}
	}
	pthread_cond_broadcast(&apps_proc_cv);
	pthread_mutex_unlock(&apps_proc_mu);
}

/* Joins the app's queue as its controller (again, after app start): requests are held
 * while we are attached, and answered 503 AppOffline at once while no session is. */
static int native_attach(struct native *n)
{
	int rc = ps_connect(apps_native_socket(n->a), &n->c);
	if (rc == 0)
		rc = ps_queue_open(n->c, n->a->queue, &n->q);
	if (rc < 0 && n->c) {
		ps_close(n->c);
		n->c = NULL;
	}
	return rc;
}

static void *native_thread(void *arg)
{
	struct native *n = arg;
	struct app *a = n->a;
	int64_t status_at = 0;
	bool old_daemon = false;
	for (;;) {
		pthread_mutex_lock(&apps_proc_mu);
		bool deleted = a->deleted;
		/* stopped or failed: no controller, so that the daemon answers 503 at once */
		bool off = a->state == APP_STOPPED || a->state == APP_FAILED ||
		           (a->state == APP_STOPPING && a->stop_to != APP_IDLE);
		bool busy = a->state == APP_STARTING || apps_proc_count(a->next_pid);
		bool runs = apps_proc_count(a->pid) || busy;
		pthread_mutex_unlock(&apps_proc_mu);
		if (deleted)
			break;
		if (off && n->c) {
			ps_close(n->c);
			n->c = NULL;
			fprintf(stderr,
			        "portshare-apps: %s: no controller on queue %s: its requests get 503\n",
			        a->name, a->queue);
		}
		int rc = PS_ETIMEDOUT;
		if (!off && !n->c && native_attach(n) < 0) {
			usleep(NATIVE_WAIT_MS * 1000);
			continue; /* the daemon is away: its own restart takes a moment */
		}
		if (n->c && !old_daemon)
			rc = ps_queue_wait_demand(n->q, NATIVE_WAIT_MS);
		else
			usleep(NATIVE_WAIT_MS * 1000);
		if (rc == 0) {
			apps_proc_demand(a);
		} else if (rc == PS_ENOTFOUND) {
			break; /* the queue was deleted: by app delete, or by someone else */
		} else if (rc == PS_EVERSION) {
			fprintf(stderr,
			        "portshare-apps: %s: the daemon is older than demand start: the app "
			        "starts only with --always-running\n",
			        a->name);
			old_daemon = true;
		}
		int64_t now = backend_now_ms();
		if (runs && (busy || now - status_at >= NATIVE_STATUS_MS)) {
			native_watch(n);
			status_at = now;
		}
	}
	pthread_mutex_lock(&apps_proc_mu);
	if (!a->deleted)
		fprintf(stderr, "portshare-apps: %s: queue %s was deleted: registering it again in a while\n",
		        a->name, a->queue);
	a->registered = false;
	a->native_thread = false;
	pthread_mutex_unlock(&apps_proc_mu);
	if (n->c)
		ps_close(n->c);
	ctl_close(&n->ctl);
	free(n);
	return NULL;
}

int apps_native_register(struct app *a)
{
	struct native *n = calloc(1, sizeof(*n));
	if (!n)
		return -1;
	n->a = a;
	n->served = -1;
	n->ctl = (struct ctl){.socket_path = apps_native_socket(a), .fd = -1, .quiet = true};
	ps_queue_opts opts = {.persistent = 1};
	int rc = ps_connect(n->ctl.socket_path, &n->c);
	if (rc == 0)
		rc = ps_queue_create(n->c, a->queue, &opts, &n->q);
	for (size_t i = 0; rc == 0 && i < a->cfg.nurls; i++)
		rc = ps_queue_add_url(n->q, a->cfg.urls[i]);
	if (rc < 0)
		fprintf(stderr, "portshare-apps: %s: queue %s: %s%s%s\n", a->name, a->queue, ps_strerror(rc),
		        n->c && *ps_client_message(n->c) ? ": " : "", n->c ? ps_client_message(n->c) : "");
	/* the app's user may join this queue and no other: an admin's grant (kept by the
	 * daemon with the queue's name; the queue is root's, persistent queues are admins') */
	if (rc == 0 && a->user && a->uid != 0 && native_grant(a, "add") < 0)
		rc = -1;
	pthread_t t;
	if (rc == 0) {
		pthread_mutex_lock(&apps_proc_mu);
		a->registered = a->native_thread = true;
		pthread_mutex_unlock(&apps_proc_mu);
		if (pthread_create(&t, NULL, native_thread, n) == 0) {
			pthread_detach(t);
			return 0;
		}
		pthread_mutex_lock(&apps_proc_mu);
		a->registered = a->native_thread = false;
		pthread_mutex_unlock(&apps_proc_mu);
	}
	if (n->c)
		ps_close(n->c);
	free(n);
	return -1;
}

void apps_native_unregister(const struct app *a)
{
	if (a->user && a->uid != 0)
		native_grant(a, "delete");
}
