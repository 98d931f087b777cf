/* sandbox.c: least privilege (DESIGN §8). Once start-up has done what needs root (the
 * control socket, the state directory), portshared switches to its own user, keeps only
 * CAP_NET_BIND_SERVICE (ports below 1024 are bound lazily, long after) and installs a
 * seccomp allow list of the system calls it makes. `--check-sandbox` shows the result. */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

/* Sanitizer builds load no filter: their runtime makes calls the daemon never does (the
 * leak checker stops the world with a ptrace-ing clone, symbolising forks a helper). They
 * still switch user and drop capabilities. The filter is built either way, so a bad name
 * in the allow list fails both builds. */
#if defined(PS_SANITIZE) || defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#else
#define SANDBOX_SANITIZER 0
#endif

#define CAP_BIT(c) (UINT64_C(1) << (c))
#define KEPT_CAPS CAP_BIT(CAP_NET_BIND_SERVICE)
#define CAP_MAX 64 /* capability numbers the kernel's 64-bit sets can hold */

/* The system calls portshared makes once it runs, found by running the whole test suite
 * under strace (docs/DECISIONS.md, "Least privilege"), plus what glibc's threads and NSS
 * modules need (the daemon is growing event-loop threads). Names this architecture lacks
 * (epoll_wait on arm64, say) are skipped; a name libseccomp does not know stops the start. */
/* clang-format off */
static const char *const allowed_calls[] = {
	/* memory: malloc, thread stacks, the delegation page (DESIGN §6) */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
	/* threads: creation, exit, locks, glibc's per-thread registrations and signal set-up */
	"clone", "clone3", "set_robust_list", "rseq", "futex", "sched_getaffinity", "sched_yield",
	"gettid", "exit", "exit_group", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	/* a wait interrupted by SIGSTOP/SIGCONT (or a debugger attaching) resumes through this */
	"restart_syscall",
	/* the event loop, signals, time */
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd2",
	"signalfd4", "clock_gettime", "clock_nanosleep",
	/* glibc's qsort asks the memory size once (the access log sorts each batch by time) */
	"sysinfo",
	/* user names for uids missing from /etc/passwd: nscd's client polls, nss-systemd asks
	 * systemd over varlink with its own sd-event loop */
	"poll", "ppoll", "timerfd_create", "timerfd_settime", "getrandom",
	/* sockets: listeners bound lazily, clients, sessions with SCM_RIGHTS, systemd's notify */
	"bind", "listen", "accept4", "connect", "shutdown", "getsockopt", "setsockopt",
	/* the local address of a connection accepted on a wildcard listener (the default) */
	"getsockname",
	"recvfrom", "recvmsg", "sendto", "sendmsg", "sendmmsg",
	/* files: the config on SIGHUP, /proc for port owners, /etc/passwd, the log, the socket at
	 * exit, the delegation page; the stat, readlink and unlink calls under each name glibc
	 * uses on one architecture or another */
	"openat", "read", "write", "writev", "close", "dup", "dup3", "lseek", "getdents64",
	"fstat", "newfstatat", "statx", "readlink", "readlinkat", "unlink", "unlinkat",
	"memfd_create", "ftruncate",
	/* the admin settings, written atomically to the state directory (store.c); its certs/
	 * directory made 0700 (certs.c) */
	"fsync", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "fchmod",
	/* who we are: our pid in the status, our uid for admin sessions */
	"getpid", "geteuid",
};
/* clang-format on */

/* Calls allowed only with one of these values of one int argument (compared on its low 32
 * bits, as the kernel reads it). */
/* clang-format off */
static const struct {
	const char *name;
	unsigned arg;
	uint32_t value;
} allowed_with_arg[] = {
	/* no netlink, packet or other exotic sockets */
	{"socket", 0, AF_UNIX}, {"socket", 0, AF_INET}, {"socket", 0, AF_INET6},
	/* what a connection holds (DESIGN §2a); never TIOCSTI into a terminal and the like */
	{"ioctl", 1, SIOCINQ}, {"ioctl", 1, SIOCOUTQ},
	/* a session's copy of a connection fd, sealing the delegation page, and the flag calls
	 * event-loop code makes */
	{"fcntl", 1, F_DUPFD_CLOEXEC}, {"fcntl", 1, F_ADD_SEALS}, {"fcntl", 1, F_GETFD},
	{"fcntl", 1, F_SETFD}, {"fcntl", 1, F_GETFL}, {"fcntl", 1, F_SETFL},
	/* threads may name themselves */
	{"prctl", 0, PR_SET_NAME}, {"prctl", 0, PR_GET_NAME},
	/* getrlimit (the fd limit, named when connections are refused): its own limits only */
	{"prlimit64", 0, 0},
};
/* clang-format on */

/* Formats "what: strerror(errno)" into err; returns -1. */
static int failed(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int failed(char *err, size_t errlen, const char *fmt, ...)
{
	int e = errno;
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", what, strerror(e));
	return -1;
}

/* ---------------------------------------------------------------- the user */

static int user_lookup(const char *name, struct passwd *pw, char **buf, char *err, size_t errlen)
{
	struct passwd *res = NULL;
	for (size_t size = 4096; size <= (1u << 20); size *= 2) {
		char *b = realloc(*buf, size);
		if (!b) {
			snprintf(err, errlen, "out of memory looking up user '%s'", name);
			return -1;
		}
		*buf = b;
		int rc = getpwnam_r(name, pw, b, size, &res);
		if (rc == ERANGE)
			continue;
		if (rc != 0 && rc != ENOENT && rc != ESRCH) {
			snprintf(err, errlen, "cannot look up user '%s': %s", name, strerror(rc));
			return -1;
		}
		return res ? 1 : 0;
	}
	snprintf(err, errlen, "user '%s': its passwd entry is too long", name);
	return -1;
}

static void user_current(struct sandbox_user *u)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	memset(u, 0, sizeof(*u));
	u->uid = geteuid();
	u->gid = getegid();
	if (getpwuid_r(u->uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
	else
		snprintf(u->name, sizeof(u->name), "%u", (unsigned)u->uid);
}

int sandbox_user_resolve(const char *name, struct sandbox_user *u, char *err, size_t errlen)
{
	struct passwd pw;
	char *buf = NULL;
	int found = user_lookup(name ? name : SANDBOX_DEFAULT_USER, &pw, &buf, err, errlen);
	if (found < 0) {
		free(buf);
		return -1;
	}
	if (!found && name) {
		free(buf);
		snprintf(err, errlen, "no such user '%s'", name);
		return -1;
	}
	user_current(u);
	/* no portshare user, or we are it already: stay who we are */
	if (!found || pw.pw_uid == u->uid) {
		free(buf);
		return 0;
	}
	if (u->uid != 0) {
		free(buf);
		if (!name)
			return 0; /* the default user is taken only when we can switch to it */
		snprintf(
		    err, errlen,
		    "switching to user '%s' needs root, and portshared runs as '%s' (uid %u): start it as "
		    "root or leave out --user",
		    name, u->name, (unsigned)u->uid);
		return -1;
	}
	snprintf(u->name, sizeof(u->name), "%s", pw.pw_name);
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	u->ngroups = SANDBOX_GROUPS_MAX;
	if (getgrouplist(pw.pw_name, pw.pw_gid, u->groups, &u->ngroups) < 0) {
		snprintf(err, errlen, "user '%s' is in more than %d groups", pw.pw_name, SANDBOX_GROUPS_MAX);
		free(buf);
		return -1;
	}
	u->change = true;
	free(buf);
	return 0;
}

/* Gives u a path the daemon writes once switched; a directory's entries too, and theirs
 * (state left by an earlier run as root: the settings, certs/ and its keys). Symbolic links
 * are not followed. */
static int owned_give(const struct sandbox_user *u, const char *path, int depth, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0 || lchown(path, u->uid, u->gid) < 0)
		return failed(err, errlen, "cannot give %s to user '%s'", path, u->name);
	if (!S_ISDIR(st.st_mode))
		return 0;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return failed(err, errlen, "cannot give %s to user '%s'", path, u->name);
	}
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char sub[PATH_MAX];
		struct stat sst;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (depth > 0 && fstatat(dirfd(d), de->d_name, &sst, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(sst.st_mode))
			rc = owned_give(u, sub, depth - 1, err, errlen);
		else if (fchownat(dirfd(d), de->d_name, u->uid, u->gid, AT_SYMLINK_NOFOLLOW) < 0)
			rc = failed(err, errlen, "cannot give %s to user '%s'", sub, u->name);
	}
	closedir(d);
	return rc;
}

static int user_switch(const struct sandbox_user *u, char *err, size_t errlen)
{
	/* keep the permitted set across setresuid: capset trims it to CAP_NET_BIND_SERVICE next */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return failed(err, errlen, "prctl(PR_SET_KEEPCAPS)");
	if (setgroups((size_t)u->ngroups, u->groups) < 0)
		return failed(err, errlen, "setgroups for user '%s'", u->name);
	if (setresgid(u->gid, u->gid, u->gid) < 0)
		return failed(err, errlen, "setresgid(%u)", (unsigned)u->gid);
	if (setresuid(u->uid, u->uid, u->uid) < 0)
		return failed(err, errlen, "setresuid(%u)", (unsigned)u->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return failed(err, errlen, "prctl(PR_SET_KEEPCAPS)");
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return failed(err, errlen, "getresuid");
	if (ru != u->uid || eu != u->uid || su != u->uid || rg != u->gid || eg != u->gid || sg != u->gid) {
		snprintf(err, errlen, "switching to user '%s' did not take (uids %u/%u/%u, gids %u/%u/%u)",
		         u->name, (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg,
		         (unsigned)sg);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- capabilities */

struct caps {
	uint64_t effective, permitted, inheritable;
};

static int caps_get(struct caps *c)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	c->effective = d[0].effective | (uint64_t)d[1].effective << 32;
	c->permitted = d[0].permitted | (uint64_t)d[1].permitted << 32;
	c->inheritable = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int caps_set(const struct caps *c)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = {
	    {(uint32_t)c->effective, (uint32_t)c->permitted, (uint32_t)c->inheritable},
	    {(uint32_t)(c->effective >> 32), (uint32_t)(c->permitted >> 32),
	     (uint32_t)(c->inheritable >> 32)},
	};
	return (int)syscall(SYS_capset, &h, d);
}

/* Empties the bounding set but for CAP_NET_BIND_SERVICE, so that no execve, of a
 * set-user-ID or file-capability program either, hands anything else back. */
static int bounding_set_drop(char *err, size_t errlen)
{
	for (int cap = 0; cap < CAP_MAX; cap++) {
		int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (in < 0)
			break; /* past the kernel's last capability */
		if (in == 1 && cap != CAP_NET_BIND_SERVICE && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return failed(err, errlen, "prctl(PR_CAPBSET_DROP, %d)", cap);
	}
	return 0;
}

/* Keeps CAP_NET_BIND_SERVICE (if we had it) in permitted and effective, and nothing else
 * anywhere: inheritable, ambient, and the bounding set when we may change it. */
static int caps_drop(const struct sandbox_user *u, uint64_t *kept, char *err, size_t errlen)
{
	struct caps c;
	if (caps_get(&c) < 0)
		return failed(err, errlen, "capget");
	if ((c.effective & CAP_BIT(CAP_SETPCAP)) && bounding_set_drop(err, errlen) < 0)
		return -1;
	if (u->change && user_switch(u, err, errlen) < 0)
		return -1;
	struct caps want = {.effective = c.permitted & KEPT_CAPS, .permitted = c.permitted & KEPT_CAPS};
	if (caps_set(&want) < 0)
		return failed(err, errlen, "capset");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return failed(err, errlen, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
	struct caps now;
	if (caps_get(&now) < 0)
		return failed(err, errlen, "capget");
	if (now.effective != want.effective || now.permitted != want.permitted || now.inheritable) {
		snprintf(err, errlen, "capabilities did not drop (permitted %016llx, effective %016llx)",
		         (unsigned long long)now.permitted, (unsigned long long)now.effective);
		return -1;
	}
	/* the last word: root must be out of reach now */
	if (u->change && setuid(0) == 0) {
		snprintf(err, errlen, "after the drop, setuid(0) still works");
		return -1;
	}
	*kept = now.effective;
	return 0;
}

/* ---------------------------------------------------------------- the filter */

/* A call outside the list traps (SIGSYS) instead of killing at once, so the daemon can say
 * which call it was before it goes (docs/DECISIONS.md, "Least privilege"). The call itself
 * is never made. The handler may not allocate or lock, so the names are looked up while the
 * filter is built, and the line is formatted by hand and written with one write(2). */
#define SYSCALL_NAMES 512 /* above every x86_64 and arm64 call number in use */
#define SYSCALL_NAME_LEN 32
static char syscall_names[SYSCALL_NAMES][SYSCALL_NAME_LEN];

static void syscall_names_fill(void)
{
	for (int nr = 0; nr < SYSCALL_NAMES; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
		if (name)
			snprintf(syscall_names[nr], SYSCALL_NAME_LEN, "%s", name);
		free(name);
	}
}

static size_t put_str(char *out, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		out[at++] = *s++;
	return at;
}

static size_t put_uint(char *out, size_t at, size_t cap, unsigned long v)
{
	char digits[24];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && at < cap)
		out[at++] = digits[--n];
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	int saved = errno;
	unsigned nr = (unsigned)si->si_syscall;
	const char *name = nr < SYSCALL_NAMES && syscall_names[nr][0] ? syscall_names[nr] : "unknown";
	char line[256];
	size_t n = put_str(line, 0, sizeof(line), "portshared: error: seccomp: system call ");
	n = put_uint(line, n, sizeof(line), nr);
	n = put_str(line, n, sizeof(line), " (");
	n = put_str(line, n, sizeof(line), name);
	n = put_str(line, n, sizeof(line),
	            ") is not in the allow list; it was not made, and portshared stops "
	            "with SIGSYS (src/daemon/sandbox.c lists the calls)\n");
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
	/* end the whole process with this signal, as the kernel's kill would have */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(sig, &dfl, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	errno = saved; /* not reached */
}

static int trap_install(char *err, size_t errlen)
{
	syscall_names_fill();
	struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return failed(err, errlen, "sigaction(SIGSYS)");
	return 0;
}

static int filter_add(scmp_filter_ctx ctx, const char *name, const struct scmp_arg_cmp *cmp, char *err,
                      size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR) {
		snprintf(err, errlen,
		         "seccomp: unknown system call '%s' in the allow list (libseccomp too old?)", name);
		return -1;
	}
	if (nr < 0)
		return 0; /* not a call on this architecture */
	int rc = cmp ? seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, cmp)
	             : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp: cannot allow '%s': %s", name, strerror(-rc));
		return -1;
	}
	return 0;
}

static bool skip_filter;

void sandbox_skip_filter(void)
{
	skip_filter = true;
}

/* Builds the allow list (every thread, present and future: TSYNC) and loads it unless this
 * is a sanitizer build or --no-seccomp asked. Anything else traps: on_sigsys names the call
 * and ends the whole process (docs/DECISIONS.md). */
static int filter_install(char *err, size_t errlen)
{
	if (skip_filter) {
		log_warning("--no-seccomp: no system call filter (for debugging only)");
		return 0;
	}
	if (!SANDBOX_SANITIZER && trap_install(err, errlen) < 0)
		return -1;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot start a filter (out of memory?)");
		return -1;
	}
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp: cannot ask for every thread (TSYNC): %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	for (size_t i = 0; i < sizeof(allowed_calls) / sizeof(allowed_calls[0]); i++) {
		if (filter_add(ctx, allowed_calls[i], NULL, err, errlen) < 0) {
			seccomp_release(ctx);
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(allowed_with_arg) / sizeof(allowed_with_arg[0]); i++) {
		struct scmp_arg_cmp cmp = {.arg = allowed_with_arg[i].arg,
		                           .op = SCMP_CMP_MASKED_EQ,
		                           .datum_a = 0xffffffffu,
		                           .datum_b = allowed_with_arg[i].value};
		if (filter_add(ctx, allowed_with_arg[i].name, &cmp, err, errlen) < 0) {
			seccomp_release(ctx);
			return -1;
		}
	}
	/* abort() and pthread_kill signal our own threads, never another process */
	struct scmp_arg_cmp self = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)getpid()};
	if (filter_add(ctx, "tgkill", &self, err, errlen) < 0) {
		seccomp_release(ctx);
		return -1;
	}
	rc = SANDBOX_SANITIZER ? 0 : seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0) {
		snprintf(err, errlen, "seccomp: cannot load the filter: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- the whole drop */

/* Threads of this process; -1 when /proc cannot tell. */
static int threads_count(void)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

int sandbox_apply(const struct sandbox_user *u, const char *const *owned, char *err, size_t errlen)
{
	int threads = threads_count();
	if (threads > 1) {
		snprintf(err, errlen,
		         "sandbox: %d threads already run; privileges must drop before the first starts "
		         "(capabilities belong to each thread)",
		         threads);
		return -1;
	}
	for (size_t i = 0; u->change && owned && owned[i]; i++) {
		if (owned_give(u, owned[i], 1, err, errlen) < 0)
			return -1;
	}
	uint64_t kept = 0;
	if (caps_drop(u, &kept, err, errlen) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return failed(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS)");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		snprintf(err, errlen, "no_new_privs did not stick");
		return -1;
	}
	if (filter_install(err, errlen) < 0)
		return -1;
	log_info("running as user %s (uid %u, gid %u), capabilities: %s; %s", u->name, (unsigned)u->uid,
	         (unsigned)u->gid,
	         kept ? "cap_net_bind_service only" : "none (ports below 1024 cannot be bound)",
	         SANDBOX_SANITIZER
	             ? "no seccomp filter (sanitizer build)"
	             : "seccomp allow list loaded (any other call is logged, then stops the process)");
	return 0;
}

/* ---------------------------------------------------------------- --check-sandbox */

enum check_exit {
	CHECK_SETUP_FAILED = 90,
	CHECK_LOW_PORT_FAILED,
	CHECK_EXECVE_FAILED,
};

/* Prints the identity, capability and seccomp lines of /proc/self/status; returns CapEff. */
static uint64_t check_print_status(void)
{
	static const char *const keys[] = {"Uid:",    "Gid:",    "Groups:", "CapInh:",     "CapPrm:",
	                                   "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:"};
	unsigned long long eff = ~0ull;
	char line[512];
	FILE *f = fopen("/proc/self/status", "re");
	if (!f) {
		printf("  cannot read /proc/self/status: %s\n", strerror(errno));
		return eff;
	}
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			if (!strncmp(line, keys[i], strlen(keys[i])))
				printf("  %s", line);
		}
		sscanf(line, "CapEff: %llx", &eff);
	}
	fclose(f);
	return eff;
}

/* Binds (without listening) a free loopback port below 1024: does the capability we kept
 * work? The port, 0 when every one tried is busy, or -1 with errno. */
static int check_low_port(void)
{
	for (int port = 1023; port >= 1000; port--) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)port),
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		close(fd);
		if (rc == 0)
			return port;
		if (e != EADDRINUSE) {
			errno = e;
			return -1;
		}
	}
	return 0;
}

static int check_child(const struct sandbox_user *u)
{
	char err[1024];
	if (sandbox_apply(u, NULL, err, sizeof(err)) < 0) {
		printf("  the drop failed: %s\n", err);
		fflush(stdout);
		return CHECK_SETUP_FAILED;
	}
	uint64_t eff = check_print_status();
	printf("  capabilities: %s\n", eff == KEPT_CAPS ? "cap_net_bind_service only"
	                               : eff == 0       ? "none"
	                                                : "MORE THAN cap_net_bind_service");
	int port = check_low_port();
	if (port > 0)
		printf("  bind 127.0.0.1:%d (below 1024): allowed\n", port);
	else if (port == 0)
		printf("  bind below 1024: not tried, 127.0.0.1:1000..1023 are all in use\n");
	else
		printf("  bind 127.0.0.1 below 1024: refused: %s\n", strerror(errno));
	if (eff & KEPT_CAPS && port < 0) {
		fflush(stdout);
		return CHECK_LOW_PORT_FAILED;
	}
	printf("  trying execve(/bin/true), which the filter forbids...\n");
	fflush(stdout);
	char *const argv[] = {"true", NULL};
	char *const envp[] = {NULL};
	execve("/bin/true", argv, envp);
	printf("  execve(/bin/true) failed, but not by the filter: %s\n", strerror(errno));
	fflush(stdout);
	return CHECK_EXECVE_FAILED;
}

int sandbox_check(const struct sandbox_user *u)
{
	printf("portshared --check-sandbox: user %s (uid %u, gid %u), %s; seccomp filter %s\n", u->name,
	       (unsigned)u->uid, (unsigned)u->gid, u->change ? "switching from root" : "no user switch",
	       SANDBOX_SANITIZER ? "not loaded (sanitizer build)"
	                         : "loaded (any other call is logged, then stops the process)");
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		printf("cannot fork the check: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0)
		_exit(check_child(u));
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			printf("cannot wait for the check: %s\n", strerror(errno));
			return 1;
		}
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS) {
		printf("execve: refused (the seccomp filter trapped it; the check stopped with "
		       "SIGSYS)\nsandbox ok\n");
		return 0;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		printf("execve: ALLOWED (/bin/true ran)%s\n",
		       SANDBOX_SANITIZER ? "; sanitizer builds load no seccomp filter" : "");
	else if (WIFEXITED(status) && WEXITSTATUS(status) == CHECK_LOW_PORT_FAILED)
		printf("CAP_NET_BIND_SERVICE was kept but does not work\n");
	else if (WIFSIGNALED(status))
		printf("the check died of signal %d\n", WTERMSIG(status));
	printf("sandbox NOT ok\n");
	return 1;
}
