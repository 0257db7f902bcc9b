// SPDX-License-Identifier: LGPL-2.1-or-later
#include "fault.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

enum fault_action {
	FAULT_NONE,
	FAULT_EIO,
	FAULT_CRASH,
};

/*
 * Every point the engine passes, in the order of docs/TESTING.md.  A
 * point that can fail is passed with fault_check(): its caller rolls
 * back.  The others (fault_pass()) sit between side effects, where only
 * a crash or a delay makes sense.
 */
#define FAILS(name) { name, true }
#define PASSES(name) { name, false }

static const struct fault_point_def {
	const char *name;
	bool can_fail;
} defs[] = {
	/* a lend: before each step of lend_steps[] (lend.c), and after the last */
	PASSES("lend.validate"), PASSES("lend.prepare"), PASSES("lend.plan"),
	FAILS("route"), FAILS("ntb_alloc"), FAILS("iommu_alloc"),
	PASSES("lend.intent"), FAILS("store_intent"),
	PASSES("zk.intent"), PASSES("zk.intent.done"),
	PASSES("lend.program"), FAILS("ntb_map"), FAILS("iommu_map"),
	PASSES("lend.peers"), PASSES("zk.peer_commit"), PASSES("zk.peer_commit.done"),
	PASSES("lend.plug"), FAILS("vm_plug"), PASSES("vm.plug.done"),
	PASSES("lend.commit"), FAILS("lend_commit"), FAILS("store_commit"),
	PASSES("zk.commit"), PASSES("zk.commit.done"),
	PASSES("lend.publish"), PASSES("lend.compose"), FAILS("p2p_alloc"),
	PASSES("lend.done"),
	FAILS("store_abort"),
	/* a return */
	PASSES("return.unplug"), PASSES("vm.unplug"), PASSES("vm.unplug.done"),
	PASSES("return.unplug.done"), PASSES("return.stored"),
	FAILS("ntb_unmap"), FAILS("iommu_unmap"),
	PASSES("return.cleared"), PASSES("zk.remove"), PASSES("zk.remove.done"),
	PASSES("return.removed"), FAILS("store_restore"), PASSES("return.done"),
	/* a lease set, renewed or removed: before each step of lease_steps[] */
	PASSES("lease.validate"), PASSES("lease.store"), FAILS("store_lease"),
	PASSES("lease.publish"),
	/* a composition's lend and return (compose.c) */
	PASSES("compose.intent"), PASSES("compose.commit"), FAILS("store_compose"),
	PASSES("compose.done"), PASSES("compose.return"),
	/* distributed mode: a watch's sync of the compositions (compose.c) */
	PASSES("compose.sync"),
	/* distributed mode: a device whose request lost its outcome, settled */
	PASSES("settle"),
};

struct point {
	unsigned at; /* 0: never */
	enum fault_action action;
	unsigned delay_ms;
	unsigned passes;
};

static struct point points[ARRAY_SIZE(defs)];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(defs); i++)
		if (!strcmp(defs[i].name, name))
			return (int)i;
	return -1;
}

/* "point:N", "point:N:eio" or "point:N:crash" (a delay: "point:MS"). */
static int parse_entry(const char *env, char *tok, bool delay, char *reason)
{
	enum fault_action action = FAULT_EIO;
	char *colon = strrchr(tok, ':');
	uint64_t n;
	int i;

	if (!delay && colon && (!strcmp(colon + 1, "crash") ||
				!strcmp(colon + 1, "eio"))) {
		action = colon[1] == 'c' ? FAULT_CRASH : FAULT_EIO;
		*colon = '\0';
		colon = strrchr(tok, ':');
	}
	if (!colon || colon == tok || parse_u64(colon + 1, &n) < 0 || n == 0 ||
	    n > 1000000)
		return reason_set(reason, -EINVAL,
				  "%s: malformed entry '%s' (expected point:N%s)", env,
				  tok, delay ? "" : "[:crash]");
	*colon = '\0';
	i = lookup(tok);
	if (i < 0)
		return reason_set(reason, -EINVAL, "%s: unknown point '%s'", env, tok);
	if (delay) {
		points[i].delay_ms = (unsigned)n;
		return 0;
	}
	if (action == FAULT_EIO && !defs[i].can_fail)
		return reason_set(reason, -EINVAL,
				  "%s: point '%s' cannot fail, only crash (%s:%u:crash)",
				  env, tok, tok, (unsigned)n);
	points[i].at = (unsigned)n;
	points[i].action = action;
	return 0;
}

static int parse_spec(const char *env, bool delay, char *reason)
{
	const char *spec = getenv(env);
	_cleanup_free_ char *copy = NULL;
	char *save = NULL;

	if (!spec || !*spec)
		return 0;
	copy = strdup(spec);
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int r = parse_entry(env, tok, delay, reason);

		if (r < 0)
			return r;
	}
	return 0;
}

int fault_init(char *reason)
{
	int r;

	pthread_mutex_lock(&lock);
	memset(points, 0, sizeof(points));
	r = parse_spec("LENDFS_FAULT", false, reason);
	if (r == 0)
		r = parse_spec("LENDFS_DELAY", true, reason);
	pthread_mutex_unlock(&lock);
	return r;
}

/*
 * The end: no cleanup, no flush; one line on stderr, with write(2).  The
 * exit_group system call itself, not _exit(): a sanitizer's _exit()
 * interceptor runs its own finalisation (ThreadSanitizer's flushes
 * stdio), and a crash runs nothing.
 */
static _Noreturn void crash(const char *point, unsigned pass)
{
	char line[128];
	int n = snprintf(line, sizeof(line), "lendfs: injected crash at %s #%u\n",
			 point, pass);

	if (n > 0 && write(STDERR_FILENO, line, MIN((size_t)n, sizeof(line) - 1)) < 0) {
		/* nobody to tell */
	}
	syscall(SYS_exit_group, FAULT_CRASH_STATUS);
	_exit(FAULT_CRASH_STATUS); /* not reached */
}

/* Count a pass of @point; the action due at this pass, after its delay. */
static enum fault_action pass(const char *point, unsigned *out_pass)
{
	enum fault_action action = FAULT_NONE;
	unsigned delay = 0, n = 0;
	int i = lookup(point);

	if (i < 0)
		return FAULT_NONE; /* not a point: fault_count() says 0 */
	pthread_mutex_lock(&lock);
	n = ++points[i].passes;
	if (points[i].at && n == points[i].at)
		action = points[i].action;
	delay = points[i].delay_ms;
	pthread_mutex_unlock(&lock);
	if (delay) {
		struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (action == FAULT_CRASH)
		crash(point, n);
	*out_pass = n;
	return action;
}

int fault_check(const char *point, char *reason)
{
	unsigned n = 0;

	if (pass(point, &n) == FAULT_EIO)
		return reason_set(reason, -EIO, "injected fault at %s #%u", point, n);
	return 0;
}

void fault_pass(const char *point)
{
	unsigned n;

	pass(point, &n);
}

unsigned fault_count(const char *point)
{
	int i = lookup(point);
	unsigned n;

	if (i < 0)
		return 0;
	pthread_mutex_lock(&lock);
	n = points[i].passes;
	pthread_mutex_unlock(&lock);
	return n;
}

void fault_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(points, 0, sizeof(points));
	pthread_mutex_unlock(&lock);
}
