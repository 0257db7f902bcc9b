/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * zkclient.h - what zkctl and zkfloor share: a synchronous connect that
 * waits for the session, and the C client's log kept off the terminal.
 *
 * Build with -DTHREADED (else zookeeper.h declares no synchronous calls)
 * and link -lzookeeper_mt.
 *
 * The client logs at ERROR level only, and only into the file named by
 * ZK_CLIENT_LOG (appended), at INFO level there; without it, nothing: a
 * node of an ensemble being down is an ERROR line per connection attempt.
 */
#ifndef LENDFS_TESTS_ZKCLIENT_H
#define LENDFS_TESTS_ZKCLIENT_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#ifndef THREADED
#error "build with -DTHREADED: the synchronous ZooKeeper API needs it"
#endif

static inline void zk_freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(zk_freep)))

struct zk_session {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state;		/* last ZOO_*_STATE the watcher saw */
};

static FILE *zk_log_file;

static inline void zk_log(const char *message)
{
	if (zk_log_file)
		fprintf(zk_log_file, "%s\n", message);
}

static inline void zk_log_setup(void)
{
	const char *path = getenv("ZK_CLIENT_LOG");

	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	if (!path || !*path)
		return;
	zk_log_file = fopen(path, "ae");
	if (!zk_log_file)
		return;
	setvbuf(zk_log_file, NULL, _IOLBF, 0);
	zoo_set_log_stream(zk_log_file);
	zoo_set_debug_level(ZOO_LOG_LEVEL_INFO);
}

static inline void zk_session_watcher(zhandle_t *zh, int type, int state,
				      const char *path, void *ctx)
{
	struct zk_session *s = ctx;

	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&s->lock);
	s->state = state;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/*
 * zk_connect - open a session with CONNECT ("h:p,h:p[/chroot]") and wait up
 * to wait_ms for it.  *zhp is the handle on success.  Returns ZOK, or
 * ZOPERATIONTIMEOUT (no server answered), ZSESSIONEXPIRED, ZAUTHFAILED, or
 * ZSYSTEMERROR with errno set (zookeeper_init2 refused, e.g. a bad string).
 */
static inline int zk_connect(struct zk_session *s, const char *connect,
			     int session_ms, int wait_ms, zhandle_t **zhp)
{
	struct timespec deadline;
	pthread_condattr_t attr;
	zhandle_t *zh;
	int rc = ZOK;

	zk_log_setup();
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&s->lock, NULL);
	s->state = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += wait_ms / 1000;
	deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}

	errno = 0;
	zh = zookeeper_init2(connect, zk_session_watcher, session_ms, NULL, s,
			     0, zk_log);
	if (!zh) {
		if (!errno)
			errno = EINVAL;
		return ZSYSTEMERROR;
	}
	/* as lendfs does (core/store_zk.c): no getaddrinfo() per wake-up */
	zoo_set_servers_resolution_delay(zh, 60000);
	pthread_mutex_lock(&s->lock);
	while (s->state != ZOO_CONNECTED_STATE) {
		if (s->state == ZOO_EXPIRED_SESSION_STATE) {
			rc = ZSESSIONEXPIRED;
			break;
		}
		if (s->state == ZOO_AUTH_FAILED_STATE) {
			rc = ZAUTHFAILED;
			break;
		}
		if (pthread_cond_timedwait(&s->cond, &s->lock,
					   &deadline) == ETIMEDOUT) {
			rc = ZOPERATIONTIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (rc != ZOK) {
		zookeeper_close(zh);
		return rc;
	}
	*zhp = zh;
	return ZOK;
}

/* zk_strerror - zerror() but for ZSYSTEMERROR, which carries an errno. */
static inline const char *zk_strerror(int rc, int err)
{
	if (rc == ZSYSTEMERROR && err)
		return strerror(err);
	if (rc == ZOPERATIONTIMEOUT)
		return "no server answered in time";
	return zerror(rc);
}

#endif
