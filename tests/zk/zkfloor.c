// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * zkfloor.c - the ZooKeeper floor: the least a store write to ZooKeeper
 * can cost.
 *
 *   zkfloor CONNECT [N] [watch]
 *
 * Creates an ephemeral sequential scratch node zkfloor-NNNNNNNNNN under the
 * chroot of CONNECT ("h:p,h:p[/chroot]", the chroot created when missing,
 * and kept) or under /, then times N (default 1000) synchronous zoo_multi
 * round trips, each a compare-and-set of that node: a check op on its
 * version and a set op (with the same version) of PAYLOAD_BYTES bytes.
 * WARMUP round trips go first, untimed.  Prints, from CLOCK_MONOTONIC,
 *
 *   zk_multi_rtt_us p50=X p99=Y n=N
 *
 * With `watch`, it then measures watch delivery instead: a second session
 * sets a data watch on the node (untimed), the first session writes it as
 * above, and the figure is how long after that write's reply the second
 * session's watcher runs (0 when it ran first); N/5 (at least 10) samples:
 *
 *   zk_watch_us p50=X p99=Y n=N
 *
 * and deletes the scratch node (ephemeral: it goes with the session if
 * zkfloor dies).  Errors go to stderr with zerror()'s text; exit 2.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zkclient.h"

#define SESSION_MS 10000
#define CONNECT_WAIT_MS 20000
#define PAYLOAD_BYTES 256
#define WARMUP 100
#define MAX_N 10000000L
#define RETRIES 5 /* writes of a run that may stall (again()) */
#define WATCH_WAIT_S 10 /* a watch that takes longer ends the run */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank of sorted v[n], in microseconds, rounded. */
static unsigned long long percentile_us(const uint64_t *v, size_t n,
					unsigned p)
{
	size_t rank = (n * p + 99) / 100;

	return (v[rank ? rank - 1 : 0] + 500) / 1000;
}

/* "/a//b/" -> "/a/b", "/" -> "": the chroot as a parent path. */
static char *parent_path(const char *chroot)
{
	char *p = malloc(strlen(chroot) + 1), *q = p;

	if (!p)
		return NULL;
	for (; *chroot; chroot++)
		if (*chroot != '/' || (chroot[1] && chroot[1] != '/'))
			*q++ = *chroot;
	*q = '\0';
	return p;
}

/* Create every missing node of PATH ("/a/b"), persistent and empty. */
static int create_parents(zhandle_t *zh, const char *path)
{
	_cleanup_free_ char *p = strdup(path);
	char *slash;
	int rc;

	if (!p)
		return ZSYSTEMERROR;
	for (slash = p + 1;; slash++) {
		slash = strchr(slash, '/');
		if (slash)
			*slash = '\0';
		rc = zoo_create(zh, p, "", 0, &ZOO_OPEN_ACL_UNSAFE,
				ZOO_PERSISTENT, NULL, 0);
		if (rc != ZOK && rc != ZNODEEXISTS) {
			fprintf(stderr, "zkfloor: cannot create %s: %s\n", p,
				zerror(rc));
			return rc;
		}
		if (!slash)
			return ZOK;
		*slash = '/';
	}
}

/* One compare-and-set of PATH at *version; *version is the new one. */
static int cas_write(zhandle_t *zh, const char *path, const char *data,
		     int len, int *version)
{
	zoo_op_result_t results[2];
	zoo_op_t ops[2];
	struct Stat st;
	int rc;

	memset(results, 0, sizeof(results));
	zoo_check_op_init(&ops[0], path, *version);
	zoo_set_op_init(&ops[1], path, data, len, *version, &st);
	rc = zoo_multi(zh, 2, ops, results);
	if (rc != ZOK) {
		fprintf(stderr, "zkfloor: cannot write %s at version %d: %s "
			"(check: %s, set: %s)\n", path, *version, zerror(rc),
			zerror(results[0].err), zerror(results[1].err));
		return rc;
	}
	*version = st.version;
	return ZOK;
}

/*
 * A write that timed out or lost its connection (the server stalled: a
 * loaded machine, an election) is not a sample: the node's version is read
 * again and the iteration repeated, at most RETRIES times in a run.  0 to
 * go on, or the error.
 */
static int again(zhandle_t *zh, const char *node, int *version, long *i)
{
	static int retries;
	struct Stat st;
	int rc = ZOPERATIONTIMEOUT;

	if (retries++ >= RETRIES)
		return rc;
	for (int t = 0; t < 50 && rc != ZOK; t++) {
		rc = zoo_exists(zh, node, 0, &st);
		if (rc != ZOK)
			usleep(200000); /* reconnecting */
	}
	if (rc != ZOK)
		return rc;
	fprintf(stderr, "zkfloor: retrying write %ld (not a sample)\n", *i);
	*version = st.version;
	(*i)--;
	return 0;
}

static int run(zhandle_t *zh, const char *node, long n)
{
	_cleanup_free_ uint64_t *rtt = calloc((size_t)n, sizeof(*rtt));
	char data[PAYLOAD_BYTES];
	uint64_t t0;
	int version = 0;
	long i;

	if (!rtt) {
		fprintf(stderr, "zkfloor: cannot allocate %ld samples\n", n);
		return ZSYSTEMERROR;
	}
	for (i = -WARMUP; i < n; i++) {
		int len = snprintf(data, sizeof(data),
				   "{\"zkfloor\":%ld,\"pad\":\"", i);

		memset(data + len, 'x', sizeof(data) - (size_t)len - 2);
		memcpy(data + sizeof(data) - 2, "\"}", 2);
		t0 = now_ns();
		if (cas_write(zh, node, data, (int)sizeof(data), &version) &&
		    again(zh, node, &version, &i))
			return ZAPIERROR;
		if (i >= 0)
			rtt[i] = now_ns() - t0;
	}
	qsort(rtt, (size_t)n, sizeof(*rtt), compare_u64);
	printf("zk_multi_rtt_us p50=%llu p99=%llu n=%ld\n",
	       percentile_us(rtt, (size_t)n, 50),
	       percentile_us(rtt, (size_t)n, 99), n);
	return ZOK;
}

/* The second session's data watch: when it ran. */
struct watch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t fired_ns; /* 0: not yet */
};

static void watch_fired(zhandle_t *zh, int type, int state, const char *path,
			void *ctx)
{
	struct watch *w = ctx;
	uint64_t t = now_ns();

	if (type != ZOO_CHANGED_EVENT)
		return;
	pthread_mutex_lock(&w->lock);
	w->fired_ns = t;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Wait for the watch: its time, or 0 after WATCH_WAIT_S. */
static uint64_t watch_wait(struct watch *w)
{
	struct timespec dl;
	uint64_t t;

	clock_gettime(CLOCK_REALTIME, &dl); /* the condition's clock */
	dl.tv_sec += WATCH_WAIT_S;
	pthread_mutex_lock(&w->lock);
	while (!w->fired_ns &&
	       pthread_cond_timedwait(&w->cond, &w->lock, &dl) != ETIMEDOUT)
		;
	t = w->fired_ns; /* taken by the watcher's thread, not by us */
	pthread_mutex_unlock(&w->lock);
	return t;
}

static int watch_run(zhandle_t *zh, zhandle_t *zh2, const char *node, long n)
{
	_cleanup_free_ uint64_t *d = calloc((size_t)n, sizeof(*d));
	struct watch w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
	char data[PAYLOAD_BYTES];
	struct Stat st;
	int version, rc;

	if (!d || (rc = zoo_exists(zh, node, 0, &st)) != ZOK)
		return d ? rc : ZSYSTEMERROR;
	version = st.version;
	memset(data, 'w', sizeof(data));
	for (long i = -WARMUP / 10; i < n; i++) {
		uint64_t t1, tw;

		pthread_mutex_lock(&w.lock);
		w.fired_ns = 0;
		pthread_mutex_unlock(&w.lock);
		rc = zoo_wexists(zh2, node, watch_fired, &w, &st);
		if (rc != ZOK || (rc = cas_write(zh, node, data, (int)sizeof(data),
						 &version)) != ZOK)
			return rc;
		t1 = now_ns();
		tw = watch_wait(&w);
		if (!tw) {
			fprintf(stderr, "zkfloor: no watch in %d s\n", WATCH_WAIT_S);
			return ZOPERATIONTIMEOUT;
		}
		if (i >= 0)
			d[i] = tw > t1 ? tw - t1 : 0;
	}
	qsort(d, (size_t)n, sizeof(*d), compare_u64);
	printf("zk_watch_us p50=%llu p99=%llu n=%ld\n",
	       percentile_us(d, (size_t)n, 50), percentile_us(d, (size_t)n, 99), n);
	return ZOK;
}

/* `watch`: a second session of its own, N/5 samples (at least 10). */
static int run_watch(zhandle_t *zh, const char *hosts, const char *node, long n)
{
	struct zk_session session;
	zhandle_t *zh2;
	int rc = zk_connect(&session, hosts, SESSION_MS, CONNECT_WAIT_MS, &zh2);

	if (rc != ZOK) {
		fprintf(stderr, "zkfloor: no second session with %s: %s\n",
			hosts, zk_strerror(rc, errno));
		return rc;
	}
	rc = watch_run(zh, zh2, node, n / 5 < 10 ? 10 : n / 5);
	zookeeper_close(zh2);
	return rc;
}

int main(int argc, char **argv)
{
	_cleanup_free_ char *hosts = NULL, *prefix = NULL, *parent = NULL;
	char node[1024];
	struct zk_session session;
	const char *chroot;
	zhandle_t *zh;
	long n = 1000;
	bool watch = false;
	char *end;
	int rc, ret;

	if (argc == 4 && !strcmp(argv[3], "watch"))
		watch = true;
	else if (argc < 2 || argc > 3) {
		fputs("usage: zkfloor CONNECT [N] [watch]\n", stderr);
		return 2;
	}
	if (argc >= 3) {
		errno = 0;
		n = strtol(argv[2], &end, 10);
		if (errno || end == argv[2] || *end || n < 1 || n > MAX_N) {
			fprintf(stderr, "zkfloor: bad N '%s' (1 to %ld)\n",
				argv[2], MAX_N);
			return 2;
		}
	}

	/* The scratch node's parent is the chroot: connect above it. */
	chroot = strchr(argv[1], '/');
	hosts = chroot ? strndup(argv[1], (size_t)(chroot - argv[1]))
		       : strdup(argv[1]);
	parent = parent_path(chroot ? chroot : "");
	if (!hosts || !parent ||
	    asprintf(&prefix, "%s/zkfloor-", parent) < 0) {
		prefix = NULL;
		fputs("zkfloor: out of memory\n", stderr);
		return 2;
	}

	rc = zk_connect(&session, hosts, SESSION_MS, CONNECT_WAIT_MS, &zh);
	if (rc != ZOK) {
		fprintf(stderr, "zkfloor: no session with %s: %s\n", hosts,
			zk_strerror(rc, errno));
		return 2;
	}

	rc = *parent ? create_parents(zh, parent) : ZOK;
	if (rc == ZOK) {
		rc = zoo_create(zh, prefix, "", 0, &ZOO_OPEN_ACL_UNSAFE,
				ZOO_EPHEMERAL_SEQUENTIAL, node, sizeof(node));
		if (rc != ZOK)
			fprintf(stderr, "zkfloor: cannot create %s...: %s\n",
				prefix, zerror(rc));
	}
	ret = rc == ZOK ? 0 : 2;
	if (rc == ZOK) {
		if ((watch ? run_watch(zh, hosts, node, n) : run(zh, node, n)) != ZOK)
			ret = 2;
		rc = zoo_delete(zh, node, -1);
		if (rc != ZOK && rc != ZNONODE) {
			fprintf(stderr, "zkfloor: cannot delete %s: %s\n",
				node, zerror(rc));
			ret = 2;
		}
	}
	zookeeper_close(zh);
	return ret;
}
