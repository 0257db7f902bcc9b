// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * store_zk.c - the distributed store on ZooKeeper (store_zk.h).
 *
 * One zhandle per store, replaced when a session expires.  Callers hold
 * the handle lock for reading around each call; zks_connect() holds it
 * for writing while it swaps the handle.  Calls that fail because the
 * connection is lost wait for it to come back (up to the session timeout)
 * and are retried; a write whose outcome is unknown is read back first.
 */
#include "store_zk.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h>

#include "fault.h"
#include "util.h"

#define ZK_DEFAULT_SESSION_MS 10000u
#define ZK_DATA_START 4096 /* first guess of a node's size */
#define ANSWER_OK "= 0 "	   /* a request's answer: done */
#define ZK_EVENT_TRIES 64 /* appends racing other daemons' (events below) */
/*
 * The client resolves the server list again at most this often (and at
 * every reconnection).  Its default, 0, resolves it at every wake-up of
 * its I/O thread: a getaddrinfo(), i.e. a netlink dump of the host's
 * addresses, around each request and reply (docs/PERFORMANCE-CLUSTER.md).
 */
#define ZK_RESOLVE_MS 60000

struct zks {
	char hosts[ZK_HOSTS_MAX];
	char root[ZK_ROOT_MAX];
	unsigned session_ms;

	pthread_rwlock_t hlock; /* zh: read-held by calls, written to swap */
	zhandle_t *zh;

	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t cond;
	int state;	 /* of the session, from the watcher */
	int64_t seq;	 /* version of ROOT/seq, -1 unknown */
	/* the event log's head as last seen by an append (append_lock) */
	bool ev_known, ev_listed;
	uint64_t ev_seq;
	int32_t ev_version;
	/* the head as last read by a follower (zk_event_load()), under lock */
	bool seen;
	uint64_t seen_seq;
	int32_t seen_version;
	zks_event_cb cb;
	void *cb_arg;
	struct change_wait *pending; /* watches of zks_get_watched() armed */
};

static void drop_pending(struct zks *s);

/* ---- the client's log --------------------------------------------------- */

static void (*log_fn)(void *arg, const char *msg);
static void *log_arg;

void zks_set_log(void (*fn)(void *arg, const char *msg), void *arg)
{
	log_fn = fn;
	log_arg = arg;
	zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
}

static void client_log(const char *msg)
{
	if (log_fn)
		log_fn(log_arg, msg);
}

/* ---- URIs --------------------------------------------------------------- */

bool zk_uri_is(const char *where)
{
	return where && strncmp(where, "zk://", 5) == 0;
}

int zk_uri_parse(const char *uri, char *hosts, size_t hlen, char *root,
		 size_t rlen, char *reason)
{
	const char *p, *slash;
	size_t n;

	if (!zk_uri_is(uri))
		return reason_set(reason, -EINVAL,
				  "store '%.64s' is not a zk:// URI", uri ? uri : "");
	p = uri + 5;
	slash = strchr(p, '/');
	n = slash ? (size_t)(slash - p) : strlen(p);
	if (n == 0)
		return reason_set(reason, -EINVAL,
				  "%.128s: no ZooKeeper servers (zk://HOST:PORT[,...][/chroot])",
				  uri);
	if (n >= hlen)
		return reason_set(reason, -EINVAL, "%.64s...: server list too long",
				  uri);
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!(c == ',' || c == ':' || c == '.' || c == '-' || c == '[' ||
		      c == ']' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z')))
			return reason_set(reason, -EINVAL,
					  "%.128s: invalid character '%c' in the server list",
					  uri, c);
		if (c == ',' && (i == 0 || i + 1 == n || p[i + 1] == ','))
			return reason_set(reason, -EINVAL,
					  "%.128s: empty server in the list", uri);
	}
	memcpy(hosts, p, n);
	hosts[n] = '\0';
	if (!slash || !slash[1]) {
		snprintf(root, rlen, "%s", ZK_DEFAULT_ROOT);
		return 0;
	}
	n = strlen(slash);
	if (n >= rlen || n >= ZK_ROOT_MAX - 1)
		return reason_set(reason, -EINVAL, "%.64s...: chroot too long", uri);
	for (const char *c = slash; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f ||
		    (c[0] == '/' && (c[1] == '/' || c[1] == '\0')))
			return reason_set(reason, -EINVAL,
					  "%.128s: malformed chroot '%s'", uri, slash);
	snprintf(root, rlen, "%s", slash);
	return 0;
}

/* ---- errors -------------------------------------------------------------- */

static bool transient(int rc)
{
	return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ||
	       rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE ||
	       rc == ZSESSIONMOVED || rc == ZCLOSING;
}

static int zk_errno(int rc)
{
	switch (rc) {
	case ZOK:
		return 0;
	case ZNONODE:
		return -ENOENT;
	case ZNODEEXISTS:
		return -EEXIST;
	case ZBADVERSION:
		return -EAGAIN;
	case ZNOTEMPTY:
		return -ENOTEMPTY;
	case ZNOAUTH:
	case ZAUTHFAILED:
		return -EACCES;
	case ZMARSHALLINGERROR:
	case ZBADARGUMENTS:
		return -EINVAL;
	default:
		/* the connection went: whether the call went in is unknown */
		return transient(rc) ? -ENOTCONN : -EIO;
	}
}

static int zk_fail(char *reason, int rc, const char *what, const char *path)
{
	return reason_set(reason, zk_errno(rc), "ZooKeeper %s %.200s: %s", what,
			  path, zerror(rc));
}

/* ---- the session -------------------------------------------------------- */

static void watcher(zhandle_t *zh, int type, int state, const char *path,
		    void *ctx)
{
	struct zks *s = ctx;

	(void)zh;
	/*
	 * The callback runs under s->lock, so that zks_set_events(NULL)
	 * returns only once no call is in flight (the cluster is freed
	 * after it).  It only queues: it takes no lock of ours but its own.
	 */
	pthread_mutex_lock(&s->lock);
	if (type == ZOO_SESSION_EVENT) {
		s->state = state;
		pthread_cond_broadcast(&s->cond);
	}
	if (s->cb)
		s->cb(s->cb_arg, type, state, path ? path : "");
	pthread_mutex_unlock(&s->lock);
}

void zks_set_events(struct zks *s, zks_event_cb cb, void *arg)
{
	pthread_mutex_lock(&s->lock);
	s->cb = cb;
	s->cb_arg = arg;
	pthread_mutex_unlock(&s->lock);
}

void zks_set_session_ms(struct zks *s, unsigned ms)
{
	s->session_ms = ms ? ms : ZK_DEFAULT_SESSION_MS;
}

unsigned zks_session_ms(struct zks *s)
{
	return s->session_ms;
}

bool zks_connected(struct zks *s)
{
	bool up;

	pthread_mutex_lock(&s->lock);
	up = s->state == ZOO_CONNECTED_STATE;
	pthread_mutex_unlock(&s->lock);
	return up;
}

int64_t zks_session_id(struct zks *s)
{
	int64_t id = 0;

	pthread_rwlock_rdlock(&s->hlock);
	if (s->zh && zks_connected(s))
		id = zoo_client_id(s->zh)->client_id;
	pthread_rwlock_unlock(&s->hlock);
	return id;
}

static void deadline_ts(uint64_t deadline, struct timespec *ts)
{
	uint64_t now = now_ns();
	uint64_t left = deadline > now ? deadline - now : 0;

	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)(left / 1000000000ULL);
	ts->tv_nsec += (long)(left % 1000000000ULL);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait until the session is up; false at @deadline or when it expired. */
static bool wait_connected(struct zks *s, uint64_t deadline)
{
	bool up;

	pthread_mutex_lock(&s->lock);
	while (s->state != ZOO_CONNECTED_STATE && now_ns() < deadline) {
		struct timespec ts;

		deadline_ts(MIN(deadline, now_ns() + 100000000ULL), &ts);
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	up = s->state == ZOO_CONNECTED_STATE;
	pthread_mutex_unlock(&s->lock);
	return up;
}

static uint64_t retry_deadline(struct zks *s)
{
	return now_ns() + (uint64_t)s->session_ms * 1000000ULL;
}

void zks_path(struct zks *s, char *buf, const char *name, const char *child)
{
	if (child)
		snprintf(buf, ZK_PATH_MAX, "%s/%s/%s", s->root, name, child);
	else if (name)
		snprintf(buf, ZK_PATH_MAX, "%s/%s", s->root, name);
	else
		snprintf(buf, ZK_PATH_MAX, "%s", s->root);
}

static const char *const layout[] = {
	"lends", "hosts", "vms", "live", "requests", "acks", "fence", "seq",
	"pending", "events", "compositions",
};

/* Create ROOT's ancestors, ROOT and its children (existing is fine). */
static int make_layout(struct zks *s, char *reason)
{
	char path[ZK_PATH_MAX];
	int rc;

	for (char *p = s->root + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		snprintf(path, sizeof(path), "%.*s", (int)(p - s->root), s->root);
		rc = zoo_create(s->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
				NULL, 0);
		if (rc != ZOK && rc != ZNODEEXISTS)
			return zk_fail(reason, rc, "create", path);
		if (*p == '\0')
			break;
	}
	for (size_t i = 0; i < ARRAY_SIZE(layout); i++) {
		zks_path(s, path, layout[i], NULL);
		rc = zoo_create(s->zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, 0,
				NULL, 0);
		if (rc != ZOK && rc != ZNODEEXISTS)
			return zk_fail(reason, rc, "create", path);
	}
	return 0;
}

int zks_connect(struct zks *s, char *reason)
{
	uint64_t deadline = retry_deadline(s);
	zhandle_t *old;
	int r;

	pthread_rwlock_wrlock(&s->hlock);
	old = s->zh;
	s->zh = NULL;
	pthread_mutex_lock(&s->lock);
	s->state = 0;
	s->seq = -1;
	pthread_mutex_unlock(&s->lock);
	if (old) {
		zookeeper_close(old);
		drop_pending(s);
	}
	s->zh = zookeeper_init2(s->hosts, watcher, (int)s->session_ms, NULL, s,
				0, client_log);
	if (!s->zh) {
		r = reason_set(reason, errno ? -errno : -EINVAL,
			       "cannot start a ZooKeeper client for %.200s: %s",
			       s->hosts, strerror(errno ? errno : EINVAL));
		pthread_rwlock_unlock(&s->hlock);
		return r;
	}
	/* not a getaddrinfo() (a netlink dump) at every I/O wake-up */
	zoo_set_servers_resolution_delay(s->zh, ZK_RESOLVE_MS);
	if (!wait_connected(s, deadline)) {
		r = reason_set(reason, -EHOSTDOWN,
			       "no ZooKeeper server of %.200s answered within %u ms",
			       s->hosts, s->session_ms);
		pthread_rwlock_unlock(&s->hlock);
		return r;
	}
	r = make_layout(s, reason);
	pthread_rwlock_unlock(&s->hlock);
	return r;
}

/*
 * Run @op with the handle read-held; while it fails because the session
 * is down, wait for it (up to the session timeout) and run it again.
 * Returns the last ZooKeeper code.
 */
#define ZK_RETRY(s, rc, op)                                                    \
	do {                                                                   \
		uint64_t _dl = retry_deadline(s);                              \
		for (;;) {                                                     \
			pthread_rwlock_rdlock(&(s)->hlock);                    \
			rc = (s)->zh ? (op) : ZINVALIDSTATE;                   \
			pthread_rwlock_unlock(&(s)->hlock);                    \
			if (!transient(rc) || now_ns() >= _dl)                 \
				break;                                         \
			if (!wait_connected(s, _dl))                           \
				break;                                         \
		}                                                              \
	} while (0)

/* ---- calls ----------------------------------------------------------------- */

int zks_get(struct zks *s, const char *path, bool watch, char **data,
	    int32_t *version, char *reason)
{
	int len = ZK_DATA_START;
	char *buf = NULL;
	struct Stat st;
	int rc;

	for (;;) {
		char *nb = realloc(buf, (size_t)len + 1);
		int got = len;

		if (!nb) {
			free(buf);
			return reason_set(reason, -ENOMEM, "out of memory");
		}
		buf = nb;
		ZK_RETRY(s, rc, (got = len, zoo_get(s->zh, path, watch, buf, &got, &st)));
		if (rc != ZOK) {
			free(buf);
			return zk_fail(reason, rc, "get", path);
		}
		if (st.dataLength <= len) {
			buf[got > 0 ? got : 0] = '\0';
			break;
		}
		len = st.dataLength;
	}
	if (version)
		*version = st.version;
	if (data)
		*data = buf;
	else
		free(buf);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void zks_strv_free(char **v, unsigned n)
{
	for (unsigned i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

int zks_children(struct zks *s, const char *path, bool watch, char ***names,
		 unsigned *n, char *reason)
{
	struct String_vector sv = { 0, NULL };
	char **v;
	int rc;

	*names = NULL;
	*n = 0;
	ZK_RETRY(s, rc, zoo_get_children(s->zh, path, watch, &sv));
	if (rc != ZOK)
		return zk_fail(reason, rc, "list", path);
	v = calloc(sv.count ? (size_t)sv.count : 1, sizeof(*v));
	for (int i = 0; v && i < sv.count; i++) {
		v[i] = strdup(sv.data[i]);
		if (!v[i]) {
			zks_strv_free(v, (unsigned)i);
			v = NULL;
		}
	}
	if (!v) {
		deallocate_String_vector(&sv);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	qsort(v, (size_t)sv.count, sizeof(*v), cmp_str);
	*names = v;
	*n = (unsigned)sv.count;
	deallocate_String_vector(&sv);
	return 0;
}

/*
 * Does @path hold @data now?  1 yes, 0 no (or absent), -errno.  Reads
 * back a write whose reply was lost.
 */
static int holds(struct zks *s, const char *path, const char *data)
{
	char *cur = NULL;
	int r = zks_get(s, path, false, &cur, NULL, NULL);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = strcmp(cur, data ? data : "") == 0;
	free(cur);
	return r;
}

/* Is @path an ephemeral node of this session? */
static bool owned(struct zks *s, const char *path)
{
	struct Stat st;
	bool mine;

	pthread_rwlock_rdlock(&s->hlock);
	mine = s->zh && zoo_exists(s->zh, path, 0, &st) == ZOK &&
	       st.ephemeralOwner == zoo_client_id(s->zh)->client_id;
	pthread_rwlock_unlock(&s->hlock);
	return mine;
}

int zks_put(struct zks *s, const char *path, const char *data, bool ephemeral,
	    bool excl, char *reason)
{
	int len = data ? (int)strlen(data) : -1;
	int flags = ephemeral ? ZOO_EPHEMERAL : 0;
	bool lost = false;
	int rc;

	for (int tries = 0; tries < 8; tries++) {
		if (!excl) {
			ZK_RETRY(s, rc, zoo_set(s->zh, path, data, len, -1));
			if (rc != ZNONODE)
				return rc == ZOK ? 0 : zk_fail(reason, rc, "set", path);
		}
		pthread_rwlock_rdlock(&s->hlock);
		rc = s->zh ? zoo_create(s->zh, path, data, len,
					&ZOO_OPEN_ACL_UNSAFE, flags, NULL, 0)
			   : ZINVALIDSTATE;
		pthread_rwlock_unlock(&s->hlock);
		if (rc == ZOK)
			return 0;
		if (transient(rc)) {
			/* lost reply: did it go in?  (an ephemeral node of
			 * an expired session did not stay) */
			lost = true;
			if (!wait_connected(s, retry_deadline(s)))
				return zk_fail(reason, rc, "create", path);
			if (ephemeral ? owned(s, path) : holds(s, path, data) == 1)
				return 0;
			continue; /* not known (the check's reply lost too) */
		}
		/*
		 * After a lost reply, the node that is there may be the one
		 * this call created: ours if our session owns it (a session's
		 * requests are applied in order, so no earlier node of ours
		 * is still there), or if it holds our data.
		 */
		if (rc == ZNODEEXISTS && excl && lost &&
		    (ephemeral ? owned(s, path) : holds(s, path, data) == 1))
			return 0;
		if (rc == ZNODEEXISTS && excl)
			return reason_set(reason, -EEXIST, "%.200s exists", path);
		if (rc != ZNODEEXISTS)
			return zk_fail(reason, rc, "create", path);
		/* created meanwhile by someone else: set it */
	}
	return reason_set(reason, -EIO, "ZooKeeper put %.200s: no progress", path);
}

int zks_cas(struct zks *s, const char *path, const char *data,
	    int32_t version, char *reason)
{
	int len = data ? (int)strlen(data) : -1;
	int rc;

	pthread_rwlock_rdlock(&s->hlock);
	rc = s->zh ? zoo_set(s->zh, path, data, len, version) : ZINVALIDSTATE;
	pthread_rwlock_unlock(&s->hlock);
	if (rc == ZOK)
		return 0;
	if (transient(rc) && wait_connected(s, retry_deadline(s)) &&
	    holds(s, path, data) == 1)
		return 0;
	return zk_fail(reason, rc, "set", path);
}

int zks_delete_node(struct zks *s, const char *path, char *reason)
{
	int rc;

	ZK_RETRY(s, rc, zoo_delete(s->zh, path, -1));
	if (rc == ZOK)
		return 0;
	if (rc == ZNONODE)
		return -ENOENT;
	return zk_fail(reason, rc, "delete", path);
}

int zks_delete(struct zks *s, const char *path, int32_t version, char *reason)
{
	int rc;

	ZK_RETRY(s, rc, zoo_delete(s->zh, path, version));
	if (rc == ZOK || rc == ZNONODE)
		return 0;
	return zk_fail(reason, rc, "delete", path);
}

/*
 * A one-shot watch of zks_get_watched(), shared by its waiter and, while
 * armed, the client (which never calls a watch whose handle it closed:
 * drop_pending() releases those).
 */
struct change_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool fired;
	bool deleted; /* the event was the node's deletion */
	int refs; /* the waiter and a pending watch */
	struct zks *s;
	bool armed; /* on s->pending, under s->lock */
	struct change_wait *prev, *next;
};

static void change_put(struct change_wait *w);

/* Under s->lock. */
static void pending_unlink(struct zks *s, struct change_wait *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		s->pending = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->armed = false;
}

/* The client will not call it: take the watch's reference back. */
static void disarm(struct change_wait *w, bool fire)
{
	struct zks *s = w->s;
	bool was;

	pthread_mutex_lock(&s->lock);
	was = w->armed;
	if (was)
		pending_unlink(s, w);
	pthread_mutex_unlock(&s->lock);
	if (!was)
		return;
	if (fire) {
		pthread_mutex_lock(&w->lock);
		w->fired = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
	}
	change_put(w);
}

/* A handle was closed: its watches are gone, wake their waiters. */
static void drop_pending(struct zks *s)
{
	for (;;) {
		struct change_wait *w;

		pthread_mutex_lock(&s->lock);
		w = s->pending;
		pthread_mutex_unlock(&s->lock);
		if (!w)
			break;
		disarm(w, true);
	}
}

static void change_put(struct change_wait *w)
{
	bool last;

	pthread_mutex_lock(&w->lock);
	last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (last) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
	}
}

static void change_watch(zhandle_t *zh, int type, int state, const char *path,
			 void *ctx)
{
	struct change_wait *w = ctx;

	(void)zh;
	(void)path;
	(void)state;
	pthread_mutex_lock(&w->lock);
	w->fired = true;
	w->deleted = type == ZOO_DELETED_EVENT;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	/* a session event leaves the watch armed: only node events free it */
	if (type != ZOO_SESSION_EVENT)
		disarm(w, false);
}

int zks_get_watched(struct zks *s, const char *path, char **data,
		    int32_t *version, struct zks_watch **out, char *reason)
{
	struct change_wait *w = calloc(1, sizeof(*w));
	char *buf = malloc(ZK_DATA_START + 1);
	int len = ZK_DATA_START, rc;
	bool created = false;
	struct Stat st;

	*out = NULL;
	*data = NULL;
	if (!w || !buf) {
		free(w);
		free(buf);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->refs = 2; /* ours, and the watch's until it fires */
	w->s = s;
	pthread_mutex_lock(&s->lock);
	w->armed = true;
	w->next = s->pending;
	if (s->pending)
		s->pending->prev = w;
	s->pending = w;
	pthread_mutex_unlock(&s->lock);
	pthread_rwlock_rdlock(&s->hlock);
	rc = s->zh ? zoo_wget(s->zh, path, change_watch, w, buf, &len, &st)
		   : ZINVALIDSTATE;
	if (rc == ZNONODE) { /* a watch for its creation instead */
		rc = s->zh ? zoo_wexists(s->zh, path, change_watch, w, &st)
			   : ZINVALIDSTATE;
		created = rc == ZOK; /* meanwhile */
	}
	pthread_rwlock_unlock(&s->hlock);
	*out = (struct zks_watch *)w;
	if (rc == ZNONODE) {
		free(buf);
		return -ENOENT;
	}
	if (rc == ZOK && st.dataLength > ZK_DATA_START) {
		/* too big for the first read (not the case of our small nodes) */
		free(buf);
		w->fired = true;
		return zks_get(s, path, false, data, version, reason);
	}
	if (created) {
		/* wexists found it created meanwhile: read it */
		w->fired = true;
		free(buf);
		return zks_get(s, path, false, data, version, reason);
	}
	if (rc != ZOK) {
		free(buf);
		disarm(w, true); /* no watch was left */
		if (transient(rc))
			wait_connected(s, retry_deadline(s));
		return zk_fail(reason, rc, "get", path);
	}
	buf[len > 0 ? len : 0] = '\0';
	*data = buf;
	if (version)
		*version = st.version;
	return 0;
}

int zks_watch_wait(struct zks_watch *zw, uint64_t deadline)
{
	struct change_wait *w = (struct change_wait *)zw;
	int r = 0;

	pthread_mutex_lock(&w->lock);
	while (!w->fired && now_ns() < deadline) {
		struct timespec ts;

		deadline_ts(deadline, &ts);
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	if (!w->fired)
		r = -ETIMEDOUT;
	else if (w->deleted)
		r = 1;
	pthread_mutex_unlock(&w->lock);
	return r;
}

void zks_watch_put(struct zks_watch *w)
{
	if (w)
		change_put((struct change_wait *)w);
}

int zks_wait_change(struct zks *s, const char *path, int32_t version,
		    uint64_t deadline, char *reason)
{
	struct zks_watch *w;
	char *data = NULL;
	int32_t v = -1;
	int r = zks_get_watched(s, path, &data, &v, &w, reason);

	free(data);
	if (r < 0 && r != -ENOENT) {
		zks_watch_put(w);
		return r;
	}
	if (r == -ENOENT)
		v = -1;
	if (v == version)
		r = zks_watch_wait(w, deadline);
	else
		r = 0;
	zks_watch_put(w);
	if (r < 0)
		return reason_set(reason, r, "timed out waiting for %.200s", path);
	return 0;
}

/* The client asserts that an asynchronous call has a completion. */
static void void_done(int rc, const void *data)
{
	(void)rc;
	(void)data;
}

int zks_watch_node(struct zks *s, const char *path, bool gone, char **data,
		   int32_t *version, char *reason)
{
	struct Stat st;
	int rc;

	if (gone) { /* most likely: one round trip tells and arms */
		ZK_RETRY(s, rc, zoo_exists(s->zh, path, 1, &st));
		if (rc == ZNONODE)
			return -ENOENT;
		if (rc != ZOK)
			return zk_fail(reason, rc, "watch", path);
	}
	for (int tries = 0; tries < 16; tries++) {
		int r = zks_get(s, path, true, data, version, reason);

		if (r != -ENOENT)
			return r;
		ZK_RETRY(s, rc, zoo_exists(s->zh, path, 1, &st));
		if (rc == ZNONODE)
			return -ENOENT; /* armed for its creation */
		if (rc != ZOK)
			return zk_fail(reason, rc, "watch", path);
		/* created meanwhile: read it */
	}
	return reason_set(reason, -EIO, "%.200s keeps changing", path);
}

static void stat_done(int rc, const struct Stat *st, const void *data)
{
	(void)rc;
	(void)st;
	(void)data;
}

void zks_watch_async(struct zks *s, const char *path)
{
	pthread_rwlock_rdlock(&s->hlock);
	if (s->zh)
		zoo_aexists(s->zh, path, 1, stat_done, NULL);
	pthread_rwlock_unlock(&s->hlock);
}

void zks_delete_async(struct zks *s, const char *path)
{
	pthread_rwlock_rdlock(&s->hlock);
	if (s->zh)
		zoo_adelete(s->zh, path, -1, void_done, NULL);
	pthread_rwlock_unlock(&s->hlock);
}

int64_t zks_seq(struct zks *s)
{
	int64_t v;

	pthread_mutex_lock(&s->lock);
	v = s->seq;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void seq_set(struct zks *s, int64_t v)
{
	pthread_mutex_lock(&s->lock);
	s->seq = v;
	pthread_mutex_unlock(&s->lock);
}

/* ---- records ---------------------------------------------------------- */

char *store_zk_format(const struct lend_record *rec)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f, "state %s\nborrower %s\nsince %" PRId64 "\nepoch %" PRIu64 "\n",
		rec_state_name(rec->state), rec->borrower, rec->since,
		rec->epoch);
	if (rec->expires) /* older daemons' records have no such line */
		fprintf(f, "expires %" PRId64 "\n", rec->expires);
	for (unsigned i = 0; i < rec->nwindows; i++) {
		char line[WINDOW_TEXT_MAX];

		if (window_format(&rec->windows[i], line, sizeof(line)) < 0) {
			fclose(f);
			free(buf);
			return NULL;
		}
		fprintf(f, "window %s\n", line);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * An intent's "event TIME_NS TEXT" line (after "event "): an event the
 * commit carries into the log (lend_txn.carry).  *@text: the TEXT.
 */
static int carried_parse(char *val, int64_t *time_ns, const char **text)
{
	char *end;
	long long t;

	errno = 0;
	t = strtoll(val, &end, 10);
	if (errno || end == val || *end != ' ' || t < 0 || !event_text_valid(end + 1))
		return -EINVAL;
	*time_ns = t;
	*text = end + 1;
	return 0;
}

static int carried_check(const char *val)
{
	_cleanup_free_ char *copy = strdup(val);
	const char *text;
	int64_t t;

	return copy ? carried_parse(copy, &t, &text) : -ENOMEM;
}

int zks_carried_split(const char *text, char **rest, char **strings,
		      struct event_rec *ev, unsigned max, unsigned *n)
{
	size_t len = strlen(text), off = 0;
	char *out = malloc(len + 2), *copy = strdup(text), *save = NULL;
	int r = out && copy ? 0 : -ENOMEM;

	*n = 0;
	for (char *line = r ? NULL : strtok_r(copy, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "event ", 6)) {
			off += (size_t)sprintf(out + off, "%s\n", line);
			continue;
		}
		if (*n == max) {
			r = -EINVAL;
			break;
		}
		r = carried_parse(line + 6, &ev[*n].time_ns, &ev[*n].text);
		ev[*n].seq = 0;
		*n += r == 0;
	}
	if (r < 0) {
		free(out);
		free(copy);
		*n = 0;
		return r;
	}
	out[off] = '\0';
	*rest = out;
	*strings = copy;
	return 0;
}

/*
 * An intent (`lending`, `returning`) carries the events its commit
 * appends (lend_txn.carry), whoever writes that commit: the sole peer
 * copies them from the record.
 */
static char *with_carried(char *text, const struct lend_record *rec)
{
	const struct lend_txn *txn = rec->txn;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (!text || rec->state == REC_LENT || !txn || !txn->ncarry)
		return text;
	if (txn->ncarry > ZK_CARRY_MAX || !(f = open_memstream(&buf, &len))) {
		free(text);
		return NULL;
	}
	fputs(text, f);
	free(text);
	for (unsigned i = 0; i < txn->ncarry; i++)
		fprintf(f, "event %" PRId64 " %s\n", txn->carry[i].time_ns,
			txn->carry[i].text);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int rec_state_parse(const char *s, enum rec_state *out)
{
	for (int i = REC_LENDING; i <= REC_RETURNING; i++)
		if (!strcmp(s, rec_state_name((enum rec_state)i))) {
			*out = (enum rec_state)i;
			return 0;
		}
	return -EINVAL;
}

int store_zk_parse(const char *device, const char *text,
		   struct lend_record *rec, char *reason)
{
	char *copy = strdup(text ? text : ""), *save = NULL;
	unsigned cap = 0, seen = 0;
	int r = 0;

	memset(rec, 0, sizeof(*rec));
	if (!copy)
		return reason_set(reason, -ENOMEM, "out of memory");
	snprintf(rec->device, sizeof(rec->device), "%s", device);
	for (char *line = strtok_r(copy, "\n", &save); line && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *val = strchr(line, ' ');

		if (!val) {
			r = -EINVAL;
			break;
		}
		*val++ = '\0';
		if (!strcmp(line, "state")) {
			r = rec_state_parse(val, &rec->state);
			seen |= 1;
		} else if (!strcmp(line, "borrower")) {
			snprintf(rec->borrower, sizeof(rec->borrower), "%s", val);
			seen |= 2;
		} else if (!strcmp(line, "since")) {
			rec->since = strtoll(val, NULL, 10);
		} else if (!strcmp(line, "epoch")) {
			r = parse_u64(val, &rec->epoch);
		} else if (!strcmp(line, "expires")) {
			uint64_t v;

			/* the lease deadline, ns; absent: no lease */
			r = parse_u64(val, &v);
			if (r == 0 && v > INT64_MAX)
				r = -EINVAL;
			rec->expires = (int64_t)v;
		} else if (!strcmp(line, "event")) {
			r = carried_check(val); /* what the commit carries */
		} else if (!strcmp(line, "answer") || !strcmp(line, "fenced")) {
			/* the request node a commit answers, and the mark of
			 * a lender that gave up on its peer: cluster.c's */
		} else if (!strcmp(line, "window")) {
			if (rec->nwindows == cap) {
				unsigned nc = cap ? cap * 2 : 8;
				struct window *nw = realloc(rec->windows,
							    nc * sizeof(*nw));

				if (!nw) {
					r = -ENOMEM;
					break;
				}
				rec->windows = nw;
				cap = nc;
			}
			r = window_parse(val, &rec->windows[rec->nwindows]);
			if (r == 0)
				rec->nwindows++;
		} else {
			r = -EINVAL;
		}
	}
	free(copy);
	if (r == 0 && seen != 3)
		r = -EINVAL;
	if (r == 0)
		r = store_record_validate(rec, reason);
	else
		reason_set(reason, r == -ENOMEM ? -ENOMEM : -EIO,
			   "malformed lend record of %.96s in ZooKeeper", device);
	if (r < 0) {
		lend_record_release(rec);
		return r == -ENOMEM ? r : -EIO;
	}
	return 0;
}

/* ---- store_ops ------------------------------------------------------------ */

static int zk_open(const char *where, void **ctx, char *reason)
{
	struct zks *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return reason_set(reason, -ENOMEM, "out of memory");
	r = zk_uri_parse(where, s->hosts, sizeof(s->hosts), s->root,
			 sizeof(s->root), reason);
	if (r < 0) {
		free(s);
		return r;
	}
	s->session_ms = ZK_DEFAULT_SESSION_MS;
	s->seq = -1;
	pthread_rwlock_init(&s->hlock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	*ctx = s;
	return 0;
}

static void zk_close(void *ctx)
{
	struct zks *s = ctx;

	if (!s)
		return;
	if (s->zh)
		zookeeper_close(s->zh);
	drop_pending(s);
	pthread_rwlock_destroy(&s->hlock);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static int zk_load(void *ctx, store_load_cb cb, void *arg, char *reason)
{
	struct zks *s = ctx;
	char path[ZK_PATH_MAX];
	char **names;
	unsigned n;
	int32_t seqv;
	bool fresh;
	int r;

	/* a store opened only to be read (lendfs --check --run-dir) connects now */
	pthread_rwlock_rdlock(&s->hlock);
	fresh = !s->zh;
	pthread_rwlock_unlock(&s->hlock);
	if (fresh) {
		r = zks_connect(s, reason);
		if (r < 0)
			return r;
	}
	/* the version first: records read after it are at least as new */
	zks_path(s, path, "seq", NULL);
	r = zks_get(s, path, false, NULL, &seqv, reason);
	if (r < 0)
		return r;
	zks_path(s, path, "lends", NULL);
	r = zks_children(s, path, false, &names, &n, reason);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < n && r == 0; i++) {
		struct lend_record rec;
		char *text;

		zks_path(s, path, "lends", names[i]);
		r = zks_get(s, path, false, &text, NULL, reason);
		if (r == -ENOENT) { /* removed meanwhile */
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		r = store_zk_parse(names[i], text, &rec, reason);
		free(text);
		if (r < 0)
			break;
		r = cb(arg, &rec);
		lend_record_release(&rec);
	}
	zks_strv_free(names, n);
	if (r == 0)
		seq_set(s, seqv);
	return r;
}

/*
 * An intent that reserves: check and bump ROOT/seq, write the record.
 * -EAGAIN when ROOT/seq moved since this store last saw it.  The session
 * that created the lend's marker goes to rec->txn (cluster.c's
 * wait_commit() needs it).
 */

void zks_pending_path(struct zks *s, char *buf, const char *devid,
		      uint64_t epoch)
{
	char name[DEVICE_ID_MAX + 24];

	snprintf(name, sizeof(name), "%s@%" PRIu64, devid, epoch);
	zks_path(s, buf, "pending", name);
}

static int put_intent(struct zks *s, const struct lend_record *rec,
		      const char *path, const char *text, char *reason)
{
	char seq[ZK_PATH_MAX], pending[ZK_PATH_MAX];
	int64_t v = zks_seq(s);
	zoo_op_t ops[4];
	zoo_op_result_t res[4];
	struct Stat st;
	int64_t sid;
	int rc;

	if (v < 0)
		return reason_set(reason, -EAGAIN, "the cluster's state is not loaded yet");
	zks_path(s, seq, "seq", NULL);
	zks_pending_path(s, pending, rec->device, rec->epoch);
	zoo_check_op_init(&ops[0], seq, (int)v);
	zoo_set_op_init(&ops[1], seq, NULL, -1, (int)v, &st);
	zoo_create_op_init(&ops[2], path, text, (int)strlen(text),
			   &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	/* the lend of this epoch is open (ephemeral: closed if we die) */
	zoo_create_op_init(&ops[3], pending, NULL, -1, &ZOO_OPEN_ACL_UNSAFE,
			   ZOO_EPHEMERAL, NULL, 0);
	pthread_rwlock_rdlock(&s->hlock);
	rc = s->zh ? zoo_multi(s->zh, 4, ops, res) : ZINVALIDSTATE;
	sid = s->zh ? zoo_client_id(s->zh)->client_id : 0;
	pthread_rwlock_unlock(&s->hlock);
	if (rec->txn) /* 0 unless sure: the marker may not be ours */
		rec->txn->session = rc == ZOK ? sid : 0;
	if (rc == ZOK) {
		seq_set(s, v + 1);
		return 0;
	}
	seq_set(s, -1); /* whatever happened, look again before the next */
	if (transient(rc)) {
		if (wait_connected(s, retry_deadline(s)) && holds(s, path, text) == 1)
			return 0;
		if (!zks_connected(s))
			return zk_fail(reason, rc, "multi", path);
		return reason_set(reason, -EAGAIN, "connection lost, the intent did not go in");
	}
	if (res[0].err == ZBADVERSION || res[1].err == ZBADVERSION)
		return reason_set(reason, -EAGAIN,
				  "another daemon reserved fabric resources meanwhile");
	if (res[2].err == ZNODEEXISTS)
		return reason_set(reason, -EBUSY, "%.96s has a lend record already",
				  path);
	return zk_fail(reason, rc, "multi", path);
}

/* ---- answers of requests from other mounts ------------------------------- */


/*
 * The commit (@text: the record now, NULL: removed) and the answer "= 0"
 * of the request being run, in one transaction.
 */
static int commit_answered(struct zks *s, const char *path, const char *text,
			   struct lend_txn *txn, char *reason)
{
	zoo_op_t ops[2];
	zoo_op_result_t res[2];
	struct Stat st[2];
	int rc = ZOK;

	for (int tries = 0; tries < 3; tries++) {
		if (text)
			zoo_set_op_init(&ops[0], path, text, (int)strlen(text), -1,
					&st[0]);
		else
			zoo_delete_op_init(&ops[0], path, -1);
		zoo_set_op_init(&ops[1], txn->answer, ANSWER_OK,
				(int)strlen(ANSWER_OK), -1, &st[1]);
		pthread_rwlock_rdlock(&s->hlock);
		rc = s->zh ? zoo_multi(s->zh, 2, ops, res) : ZINVALIDSTATE;
		pthread_rwlock_unlock(&s->hlock);
		if (rc == ZOK) {
			txn->answered = true;
			return 0;
		}
		if (!transient(rc))
			break;
		/* lost reply: both went in, or neither */
		if (!wait_connected(s, retry_deadline(s)))
			break;
		if (holds(s, txn->answer, ANSWER_OK) == 1) {
			txn->answered = true;
			return 0;
		}
	}
	if (rc == ZNONODE && res[1].err == ZNONODE)
		return reason_set(reason, -ETIMEDOUT,
				  "the writer withdrew the request (its own timeout)");
	return zk_fail(reason, rc, "commit", path);
}

/*
 * The intent of a request from another mount names its node, so that a
 * borrower that commits it answers too (zks_peer_commit()).
 */
static char *with_answer(char *text, const struct lend_record *rec)
{
	char *out;

	const struct lend_txn *txn = rec->txn;

	if (!txn || !txn->answer || (rec->state == REC_LENDING) != txn->answer_lend ||
	    rec->state == REC_LENT)
		return text;
	if (asprintf(&out, "%sanswer %s\n", text, txn->answer) < 0)
		out = NULL;
	free(text);
	return out;
}

/* The events a peer's commit carries (the event log's section below). */
struct carry_ops {
	unsigned n;
	const struct event_rec *ev;
	char dir[ZK_PATH_MAX];
	char *head;		   /* the head's new text, at the head last seen */
	char *data[ZK_CARRY_MAX]; /* each node's "TIME_NS TEXT" */
	char paths[ZK_CARRY_MAX][ZK_PATH_MAX + 16];
	struct Stat st;
};

static int carry_init(struct zks *s, const struct zks_carry *cv,
		      struct carry_ops **out, char *reason);
static void carry_free(struct carry_ops **co);
static int carry_ops(struct zks *s, struct carry_ops *co, zoo_op_t *ops,
		     char *reason);
static bool carry_raced(const zoo_op_result_t *res, int ic, unsigned n);
static void carry_done(struct zks *s, struct carry_ops *co, struct zks_carry *cv);
static void carry_lost(struct zks *s, struct zks_carry *cv);

/* A set of the record, or its removal, at @version (@text NULL). */
static void record_op(zoo_op_t *op, const char *path, const char *text,
		      int32_t version, struct Stat *st)
{
	if (text)
		zoo_set_op_init(op, path, text, (int)strlen(text), version, st);
	else
		zoo_delete_op_init(op, path, version);
}

/* Did the multi fail only because the writer withdrew the answer node? */
static bool answer_withdrawn(const zoo_op_result_t *res, int ia)
{
	if (ia < 0 || res[ia].err != ZNONODE)
		return false;
	for (int i = 0; i < ia; i++)
		if (res[i].err != ZOK && res[i].err != ZRUNTIMEINCONSISTENCY)
			return false;
	return true;
}

int zks_peer_commit(struct zks *s, const char *path, const char *text,
		    int32_t version, const char *pending, const char *answer_path,
		    struct zks_carry *cv, char *reason)
{
	zoo_op_t ops[3 + 1 + ZK_CARRY_MAX];
	zoo_op_result_t res[3 + 1 + ZK_CARRY_MAX];
	struct Stat st[2];
	_cleanup_(carry_free) struct carry_ops *co = NULL;
	bool answer_too = answer_path != NULL;
	int n = 0, rc = ZOK, ia = -1, ic, r;
	unsigned tries = 0, races = 0;

	r = carry_init(s, cv, &co, reason);
	if (r < 0)
		return r;
	while (tries < 3 && races < ZK_EVENT_TRIES) {
		n = 0;
		if (pending) /* the lend must still be open: the fence */
			zoo_delete_op_init(&ops[n++], pending, -1);
		record_op(&ops[n++], path, text, version, &st[0]);
		ia = -1;
		if (answer_too) {
			ia = n;
			zoo_set_op_init(&ops[n++], answer_path, ANSWER_OK,
					(int)strlen(ANSWER_OK), -1, &st[1]);
		}
		ic = n;
		r = carry_ops(s, co, &ops[ic], reason);
		if (r < 0)
			return r;
		n += co ? (int)co->n + 1 : 0;
		pthread_rwlock_rdlock(&s->hlock);
		rc = s->zh ? zoo_multi(s->zh, n, ops, res) : ZINVALIDSTATE;
		pthread_rwlock_unlock(&s->hlock);
		if (rc == ZOK) {
			carry_done(s, co, cv);
			return 0;
		}
		if (co && carry_raced(res, ic, co->n)) {
			s->ev_known = false; /* another daemon appended: look again */
			races++;
			continue;
		}
		if (answer_withdrawn(res, ia)) {
			answer_too = false; /* the writer gave up: commit */
			continue;
		}
		if (!transient(rc))
			break;
		tries++;
		if (!wait_connected(s, retry_deadline(s)))
			break;
		/* lost reply: did it go in (with its events, if any)? */
		if (text ? holds(s, path, text) == 1 : holds(s, path, NULL) == 0) {
			carry_lost(s, cv);
			return 0;
		}
	}
	if (co)
		s->ev_known = false;
	if (rc == ZBADVERSION || rc == ZNONODE)
		return reason_set(reason, -EAGAIN,
				  "%.200s changed: the lender gave up on it", path);
	return zk_fail(reason, rc, "commit", path);
}

static int zk_put(void *ctx, const struct lend_record *rec, char *reason)
{
	struct zks *s = ctx;
	char path[ZK_PATH_MAX];
	char *text;
	int r = store_record_validate(rec, reason);

	if (r < 0)
		return r;
	text = with_carried(with_answer(store_zk_format(rec), rec), rec);
	if (!text)
		return reason_set(reason, -ENOMEM, "out of memory");
	zks_path(s, path, "lends", rec->device);
	fault_pass(rec->state == REC_LENT ? "zk.commit" : "zk.intent");
	if (rec->state == REC_LENDING)
		r = put_intent(s, rec, path, text, reason);
	else if (rec->txn && rec->txn->answer && rec->txn->answer_lend &&
		 rec->state == REC_LENT)
		r = commit_answered(s, path, text, rec->txn, reason);
	else
		r = zks_put(s, path, text, false, false, reason);
	free(text);
	if (r == 0)
		fault_pass(rec->state == REC_LENT ? "zk.commit.done" : "zk.intent.done");
	return r;
}

static int zk_remove(void *ctx, const char *device, struct lend_txn *txn,
		     char *reason)
{
	struct zks *s = ctx;
	char path[ZK_PATH_MAX];
	int r;

	zks_path(s, path, "lends", device);
	fault_pass("zk.remove");
	if (txn && txn->answer && !txn->answer_lend)
		r = commit_answered(s, path, NULL, txn, reason);
	else
		r = zks_delete(s, path, -1, reason);
	if (r == 0)
		fault_pass("zk.remove.done");
	return r;
}

static int zk_host_put(void *ctx, const char *host, int online, char *reason)
{
	struct zks *s = ctx;
	char path[ZK_PATH_MAX];

	zks_path(s, path, "hosts", host);
	return zks_put(s, path, online ? "online" : "offline", false, false,
		       reason);
}

int zks_foreach(struct zks *s, const char *dir, bool watch,
		int (*cb)(void *arg, const char *name, const char *data),
		void *arg, char *reason)
{
	char path[ZK_PATH_MAX];
	char **names;
	unsigned n;
	int r;

	zks_path(s, path, dir, NULL);
	r = zks_children(s, path, watch, &names, &n, reason);
	for (unsigned i = 0; r == 0 && i < n; i++) {
		char *v = NULL;

		zks_path(s, path, dir, names[i]);
		r = zks_get(s, path, watch, &v, NULL, reason);
		if (r == -ENOENT) { /* removed meanwhile */
			r = 0;
			continue;
		}
		if (r == 0)
			r = cb(arg, names[i], v);
		free(v);
	}
	zks_strv_free(names, n);
	return r;
}

struct host_load {
	int (*cb)(void *arg, const char *host, int online);
	void *arg;
};

static int host_one(void *arg, const char *name, const char *data)
{
	struct host_load *l = arg;

	return l->cb(l->arg, name, strcmp(data, "offline") != 0);
}

static int zk_host_load(void *ctx,
			int (*cb)(void *arg, const char *host, int online),
			void *arg, char *reason)
{
	struct host_load l = { cb, arg };

	return zks_foreach(ctx, "hosts", false, host_one, &l, reason);
}

static void vm_node(const char *host, const char *vm, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%s", host, vm);
}

static int zk_vm_put(void *ctx, const char *host, const char *vm,
		     const char *qmp, char *reason)
{
	struct zks *s = ctx;
	char name[HOST_NAME_MAX_LEN + VM_NAME_MAX_LEN + 2];
	char path[ZK_PATH_MAX];
	int r = store_vm_validate(host, vm, qmp, reason);

	if (r < 0)
		return r;
	vm_node(host, vm, name, sizeof(name));
	zks_path(s, path, "vms", name);
	return zks_put(s, path, qmp, false, false, reason);
}

static int zk_vm_remove(void *ctx, const char *host, const char *vm,
			char *reason)
{
	struct zks *s = ctx;
	char name[HOST_NAME_MAX_LEN + VM_NAME_MAX_LEN + 2];
	char path[ZK_PATH_MAX];

	vm_node(host, vm, name, sizeof(name));
	zks_path(s, path, "vms", name);
	return zks_delete(s, path, -1, reason);
}

struct vm_load {
	int (*cb)(void *arg, const char *host, const char *vm, const char *qmp);
	void *arg;
};

static int vm_one(void *arg, const char *name, const char *data)
{
	struct vm_load *l = arg;
	char host[HOST_NAME_MAX_LEN + 1];
	const char *colon = strchr(name, ':');

	if (!colon || (size_t)(colon - name) > HOST_NAME_MAX_LEN)
		return 0; /* not one of ours */
	snprintf(host, sizeof(host), "%.*s", (int)(colon - name), name);
	return l->cb(l->arg, host, colon + 1, data);
}

static int zk_vm_load(void *ctx,
		      int (*cb)(void *arg, const char *host, const char *vm,
				const char *qmp),
		      void *arg, char *reason)
{
	struct vm_load l = { cb, arg };

	return zks_foreach(ctx, "vms", false, vm_one, &l, reason);
}

/*
 * Compositions: ROOT/compositions/NAME holds "BORROWER\nDEVICES" (the
 * borrower column, "" when not lent, then the IDs a line).
 */
char *store_zk_comp_format(const char *borrower, const char *devices)
{
	char *text;

	return asprintf(&text, "%s\n%s", borrower, devices) < 0 ? NULL : text;
}

int store_zk_comp_parse(const char *name, const char *text, char *borrower,
			const char **devices, char *reason)
{
	const char *nl = text ? strchr(text, '\n') : NULL;

	if (!nl || (size_t)(nl - text) >= REASON_MAX)
		return reason_set(reason, -EIO, "composition %s: malformed node",
				  name ? name : "");
	snprintf(borrower, REASON_MAX, "%.*s", (int)(nl - text), text);
	if (store_comp_validate(name, nl + 1, borrower, reason) < 0)
		return -EIO;
	*devices = nl + 1;
	return 0;
}

#define ZK_COMP_TRIES 64 /* list writes racing other mounts' */

/*
 * The other compositions as they are now (@names, @n): -EBUSY when one
 * holds a device of @devices; else a check of each one's version in
 * @ops (from @*k on), and @name's own version in *@own (-1: gone).
 */
static int comp_others(struct zks *s, const char *name, const char *devices,
		       char **names, unsigned n, zoo_op_t *ops, unsigned *k,
		       char (*paths)[ZK_PATH_MAX], int32_t *own, char *reason)
{
	*own = -1;
	for (unsigned i = 0; i < n; i++) {
		_cleanup_free_ char *text = NULL;
		char borrower[REASON_MAX];
		const char *devs;
		int32_t ver;

		zks_path(s, paths[i], "compositions", names[i]);
		if (zks_get(s, paths[i], false, &text, &ver, NULL) < 0)
			continue; /* gone meanwhile: nothing of ours in it */
		if (store_zk_comp_parse(names[i], text, borrower, &devs, NULL) < 0)
			continue;
		if (!strcmp(names[i], name) && borrower[0]) /* compose.c's marks */
			return reason_set(reason, -EBUSY, "composition %s is being lent, "
					  "lent or returned (\"%s\"); return it first",
					  name, borrower);
		if (!strcmp(names[i], name)) {
			*own = ver;
			continue;
		}
		for (const char *p = devices; *p;) {
			const char *nl = strchrnul(p, '\n');

			if (nl > p && comp_lists(devs, p, (size_t)(nl - p)))
				return reason_set(reason, -EBUSY,
						  "%.*s is in composition %s",
						  (int)(nl - p), p, names[i]);
			p = *nl ? nl + 1 : nl;
		}
		zoo_check_op_init(&ops[(*k)++], paths[i], ver);
	}
	return 0;
}

/*
 * Set @name's node if it still exists, in one zoo_multi with a check of
 * every other composition's version as read: a device is in one
 * composition at most even when two mounts write lists at once, and a
 * list written while another mount removes the composition does not bring
 * it back (-ENOENT).  Another change in between: read again.
 */
static int comp_set_checked(struct zks *s, const char *name,
			    const char *devices, const char *text, char *reason)
{
	char path[ZK_PATH_MAX];
	int r = -EAGAIN;

	zks_path(s, path, "compositions", NULL);
	for (unsigned tries = 0; tries < ZK_COMP_TRIES && r == -EAGAIN; tries++) {
		char **names = NULL, (*paths)[ZK_PATH_MAX] = NULL;
		zoo_op_t *ops = NULL;
		zoo_op_result_t *res = NULL;
		unsigned n = 0, k = 0;
		int32_t own = -1;
		int rc;

		r = zks_children(s, path, false, &names, &n, reason);
		if (r < 0)
			return r;
		paths = calloc(n + 1, sizeof(*paths));
		ops = calloc(n + 1, sizeof(*ops));
		res = calloc(n + 1, sizeof(*res));
		r = !paths || !ops || !res ? reason_set(reason, -ENOMEM, "out of memory") :
		    comp_others(s, name, devices, names, n, ops, &k, paths, &own, reason);
		if (r == 0 && own < 0)
			r = reason_set(reason, -ENOENT, "no composition %s", name);
		if (r == 0) {
			zks_path(s, paths[n], "compositions", name);
			zoo_set_op_init(&ops[k++], paths[n], text, (int)strlen(text), own,
					NULL);
			pthread_rwlock_rdlock(&s->hlock);
			rc = s->zh ? zoo_multi(s->zh, (int)k, ops, res) : ZINVALIDSTATE;
			pthread_rwlock_unlock(&s->hlock);
			r = rc == ZOK ? 0 :
			    rc == ZBADVERSION || rc == ZNONODE ? -EAGAIN :
			    zk_fail(reason, rc, "write", paths[n]);
		}
		zks_strv_free(names, n);
		free(paths);
		free(ops);
		free(res);
	}
	if (r == -EAGAIN)
		return reason_set(reason, -EAGAIN, "composition %s: the lists kept "
				  "changing under this write; nothing was written", name);
	return r;
}

static int zk_comp_put(void *ctx, const char *name, const char *devices,
		       const char *borrower, char *reason)
{
	struct zks *s = ctx;
	_cleanup_free_ char *text = NULL;
	int r = store_comp_validate(name, devices, borrower, reason);

	if (r < 0)
		return r;
	text = store_zk_comp_format(borrower, devices);
	if (!text)
		return reason_set(reason, -ENOMEM, "out of memory");
	return comp_set_checked(s, name, devices, text, reason);
}

static int zk_comp_create(void *ctx, const char *name, char *reason)
{
	struct zks *s = ctx;
	char path[ZK_PATH_MAX];
	int r = store_comp_validate(name, "", "", reason);

	if (r < 0)
		return r;
	zks_path(s, path, "compositions", name);
	r = zks_put(s, path, "\n", false, true, reason);
	if (r == -EEXIST)
		return reason_set(reason, -EEXIST, "composition %s exists", name);
	return r;
}

/* @name as it is now: its borrower column and its device list. */
static int comp_read(struct zks *s, const char *name, char *borrower,
		     char **devices, int32_t *ver, char *reason)
{
	_cleanup_free_ char *text = NULL;
	char path[ZK_PATH_MAX];
	const char *devs;
	int r;

	if (!comp_name_valid(name))
		return reason_set(reason, -EINVAL, "invalid composition name");
	zks_path(s, path, "compositions", name);
	r = zks_get(s, path, false, &text, ver, reason);
	if (r == -ENOENT)
		return reason_set(reason, -ENOENT, "no composition %s", name);
	if (r < 0)
		return r;
	if (store_zk_comp_parse(name, text, borrower, &devs, reason) < 0)
		return -EIO;
	*devices = strdup(devs);
	return *devices ? 0 : reason_set(reason, -ENOMEM, "out of memory");
}

static int zk_comp_get(void *ctx, const char *name, char *borrower,
		       char **devices, char *reason)
{
	int32_t ver;

	return comp_read(ctx, name, borrower, devices, &ver, reason);
}

/*
 * Composition @name's node, if its borrower column holds @from: set with
 * the column @to (a delete when @to is NULL), at the version read, read
 * again when its list was written in between.  -EBUSY when the column
 * holds something else (another mount lends, returns or removed it);
 * -ENOENT when gone.
 */
static int comp_cas(struct zks *s, const char *name, const char *from,
		    const char *to, char *reason)
{
	char path[ZK_PATH_MAX];
	int r = 0;

	zks_path(s, path, "compositions", name);
	for (unsigned tries = 0; tries < ZK_COMP_TRIES; tries++) {
		_cleanup_free_ char *devs = NULL, *next = NULL;
		char now[REASON_MAX];
		int32_t ver;

		r = comp_read(s, name, now, &devs, &ver, reason);
		if (r < 0)
			return r;
		if (strcmp(now, from))
			return reason_set(reason, -EBUSY, "composition %s was changed "
					  "on another mount (now \"%s\")", name, now);
		next = to ? store_zk_comp_format(to, devs) : NULL;
		if (to && !next)
			return reason_set(reason, -ENOMEM, "out of memory");
		r = to ? zks_cas(s, path, next, ver, reason) :
			 zks_delete(s, path, ver, reason);
		if (r != -EAGAIN)
			return r;
	}
	return reason_set(reason, -EAGAIN, "composition %s kept changing; nothing "
			  "was written", name);
}

/* Remove @name if it is not lent (comp_cas(): a lend begun meanwhile). */
static int zk_comp_remove(void *ctx, const char *name, char *reason)
{
	int r;

	if (!comp_name_valid(name))
		return reason_set(reason, -EINVAL, "invalid composition name");
	r = comp_cas(ctx, name, "", NULL, reason);
	return r == -ENOENT ? 0 : r;
}

/*
 * A composition's lend, return and their intents (core/compose.c): the
 * borrower column from @from to @to (comp_cas()), so that of two mounts
 * that lend one composition at once one gets -EBUSY.
 */
static int zk_comp_swap(void *ctx, const char *name, const char *from,
			const char *to, char *reason)
{
	int r = store_comp_validate(name, "", to, reason);

	return r < 0 ? r : comp_cas(ctx, name, from, to, reason);
}

struct comp_load {
	int (*cb)(void *arg, const char *name, const char *devices,
		  const char *borrower);
	void *arg;
};

/* One node; one that is not ours (bad name, bad text) is skipped. */
static int comp_one(void *arg, const char *name, const char *data)
{
	struct comp_load *l = arg;
	char borrower[REASON_MAX];
	const char *devices;

	if (store_zk_comp_parse(name, data, borrower, &devices, NULL) < 0)
		return 0;
	return l->cb(l->arg, name, devices, borrower);
}

static int zk_comp_load(void *ctx,
			int (*cb)(void *arg, const char *name,
				  const char *devices, const char *borrower),
			void *arg, char *reason)
{
	struct comp_load l = { cb, arg };

	return zks_foreach(ctx, "compositions", true, comp_one, &l, reason);
}

struct collect {
	struct lend_record *recs;
	unsigned n, cap;
};

static int collect_cb(void *arg, const struct lend_record *rec)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		unsigned cap = c->cap ? c->cap * 2 : 16;
		struct lend_record *nr = realloc(c->recs, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		c->recs = nr;
		c->cap = cap;
	}
	if (lend_record_copy(&c->recs[c->n], rec) < 0)
		return -ENOMEM;
	c->n++;
	return 0;
}

static int zk_check(void *ctx, FILE *out)
{
	struct zks *s = ctx;
	struct collect c = { 0 };
	char reason[REASON_MAX];
	int r;

	if (!zks_connected(s)) {
		r = zks_connect(s, reason);
		if (r < 0) {
			fprintf(out, "%s\n", reason);
			return r;
		}
	}
	r = zk_load(ctx, collect_cb, &c, reason);
	if (r == 0)
		r = store_check_records(c.recs, c.n, out);
	else
		fprintf(out, "%s\n", reason);
	for (unsigned i = 0; i < c.n; i++)
		lend_record_release(&c.recs[i]);
	free(c.recs);
	return r;
}

/* ---- the event log: ROOT/events/e-NNNNNNNNNN ------------------------------ */

/*
 * ROOT/events/e-NNNNNNNNNN holds the event of SEQ NNNNNNNNNN + 1; the data
 * of ROOT/events itself, the head, is "SEQ N\n" and the N events of the
 * last append ("TIME_NS TEXT\n" each, SEQ - N + 1 to SEQ).  An append is
 * one zoo_multi: the head set at the version last seen (a compare and
 * swap: the order is the head's), and one create per event.  A follower
 * watches the head's data: one read of it hands it the events of the last
 * append, and the node of each event it missed besides.  (The layout of
 * lendfs 0.1 before this, sequential nodes and no head, is read and
 * carried on: the first append numbers after the last node there.)
 */
#define ZK_EVENT_PREFIX "e-"
#define ZK_EVENT_TRIM_EVERY 64 /* appends between two trims */
#define ZK_EVENT_LIST_GAP 64   /* missed more: list ROOT/events once */
#define ZK_EVENT_HEAD_MAX 32   /* events of an append the head carries */

/* The SEQ of a child "e-NNNNNNNNNN" (its counter + 1), 0 if none. */
static uint64_t event_seq_of(const char *name)
{
	char *end;
	unsigned long long v;

	if (strncmp(name, ZK_EVENT_PREFIX, 2) != 0 || !name[2])
		return 0;
	errno = 0;
	v = strtoull(name + 2, &end, 10);
	return errno || *end ? 0 : (uint64_t)v + 1;
}

static void event_path(struct zks *s, char *buf, size_t cap, uint64_t seq)
{
	char dir[ZK_PATH_MAX];

	zks_path(s, dir, "events", NULL);
	snprintf(buf, cap, "%s/" ZK_EVENT_PREFIX "%010" PRIu64, dir, seq - 1);
}

/* The highest SEQ among the children of @dir (the old layout), or 0. */
static int events_last_listed(struct zks *s, const char *dir, uint64_t *last,
			      char *reason)
{
	char **names;
	unsigned n;
	int r = zks_children(s, dir, false, &names, &n, reason);

	*last = 0;
	for (unsigned i = 0; r == 0 && i < n; i++)
		*last = MAX(*last, event_seq_of(names[i]));
	zks_strv_free(names, n);
	return r;
}

/* Parse the head's "SEQ N\n"; *batch: the N lines after it.  -EINVAL. */
static int head_parse(const char *data, uint64_t *seq, unsigned *n,
		      const char **batch)
{
	unsigned long long sq;
	unsigned cnt;
	int used = 0;

	if (!data || sscanf(data, "%llu %u\n%n", &sq, &cnt, &used) != 2 ||
	    !used || cnt > sq)
		return -EINVAL;
	*seq = sq;
	*n = cnt;
	*batch = data + used;
	return 0;
}

/*
 * Read the head (and its version) into s->ev_*; in the old layout, count
 * the nodes (s->ev_listed: trim by listing them after the first append).
 */
static int head_fetch(struct zks *s, const char *dir, char *reason)
{
	const char *batch;
	char *data = NULL;
	int32_t version;
	unsigned n;
	uint64_t seq;
	int r = zks_get(s, dir, false, &data, &version, reason);

	s->ev_listed = r == 0 && head_parse(data, &seq, &n, &batch) < 0;
	if (s->ev_listed)
		r = events_last_listed(s, dir, &seq, reason);
	free(data);
	if (r < 0)
		return r;
	s->ev_seq = seq;
	s->ev_version = version;
	s->ev_known = true;
	return 0;
}

/* The old layout's trim: every node @retain or more below @last. */
static void events_trim_listed(struct zks *s, const char *dir, uint64_t last,
			       unsigned retain)
{
	char **names, path[2 * ZK_PATH_MAX], reason[REASON_MAX];
	unsigned n;

	if (zks_children(s, dir, false, &names, &n, reason) < 0)
		return; /* the next trim does it */
	for (unsigned i = 0; i < n; i++) {
		uint64_t seq = event_seq_of(names[i]);

		if (!seq || seq + retain > last)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		zks_delete_async(s, path);
	}
	zks_strv_free(names, n);
}

/* Delete the events that fell out of the last @retain below @last. */
static void events_trim(struct zks *s, uint64_t last, unsigned retain,
			unsigned n)
{
	char path[ZK_PATH_MAX + 16];
	uint64_t hi = last - retain; /* the newest to go */
	uint64_t lo = hi > ZK_EVENT_TRIM_EVERY + n ? hi - ZK_EVENT_TRIM_EVERY - n : 1;

	for (uint64_t seq = lo; seq <= hi; seq++) {
		event_path(s, path, sizeof(path), seq);
		zks_delete_async(s, path); /* absent: trimmed already */
	}
}

/*
 * The head's new data: "SEQ N\n" and the last N of the @n events (at most
 * ZK_EVENT_HEAD_MAX: a follower reads the others' nodes); NULL (-ENOMEM).
 */
static char *head_text(uint64_t seq, const struct event_rec *ev, unsigned n)
{
	unsigned m = MIN(n, ZK_EVENT_HEAD_MAX);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	fprintf(f, "%" PRIu64 " %u\n", seq, m);
	for (unsigned i = n - m; i < n; i++)
		fprintf(f, "%" PRId64 " %s\n", ev[i].time_ns, ev[i].text);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * A follower read the head (every daemon does at each append, through its
 * watch): an append takes that version if it is newer than its own last,
 * so that the first try of an append (or of a commit carrying events)
 * after another daemon's goes in instead of failing on a stale version.
 */
static void head_seen(struct zks *s, uint64_t seq, int32_t version)
{
	pthread_mutex_lock(&s->lock);
	if (!s->seen || version > s->seen_version) {
		s->seen = true;
		s->seen_seq = seq;
		s->seen_version = version;
	}
	pthread_mutex_unlock(&s->lock);
}

/* The appender's side (append lock held): adopt a newer head seen. */
static void head_adopt(struct zks *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->seen && s->ev_known && !s->ev_listed &&
	    s->seen_version > s->ev_version) {
		s->ev_seq = s->seen_seq;
		s->ev_version = s->seen_version;
	}
	pthread_mutex_unlock(&s->lock);
}

/* The head's set at the version last seen (ops[0]), one create each after. */
static void events_ops_init(struct zks *s, const char *dir, const char *head,
			    unsigned n, char **data,
			    char (*paths)[ZK_PATH_MAX + 16], zoo_op_t *ops,
			    struct Stat *st)
{
	zoo_set_op_init(&ops[0], dir, head, (int)strlen(head), s->ev_version, st);
	for (unsigned i = 0; i < n; i++) {
		event_path(s, paths[i], sizeof(paths[i]), s->ev_seq + 1 + i);
		zoo_create_op_init(&ops[1 + i], paths[i], data[i],
				   (int)strlen(data[i]), &ZOO_OPEN_ACL_UNSAFE, 0,
				   NULL, 0);
	}
}

/* Those @n went in after the head last seen: number them. */
static void events_numbered(struct zks *s, struct event_rec *ev, unsigned n,
			    const struct Stat *st)
{
	for (unsigned i = 0; i < n; i++)
		ev[i].seq = s->ev_seq + 1 + i;
	s->ev_seq += n;
	s->ev_version = st->version;
}

/* After an append of @n: the trim, when it passed a multiple of 64. */
static void events_trim_due(struct zks *s, const char *dir, unsigned retain,
			    unsigned n)
{
	if (retain && s->ev_listed)
		events_trim_listed(s, dir, s->ev_seq, retain);
	else if (retain && s->ev_seq > retain &&
		 s->ev_seq / ZK_EVENT_TRIM_EVERY != (s->ev_seq - n) / ZK_EVENT_TRIM_EVERY)
		events_trim(s, s->ev_seq, retain, n);
	s->ev_listed = false;
}

/* One try at the version last seen: ZOK, or the ZooKeeper error. */
static int append_try(struct zks *s, const char *dir, struct event_rec *ev,
		      unsigned n, char **data, char (*paths)[ZK_PATH_MAX + 16],
		      zoo_op_t *ops, zoo_op_result_t *res)
{
	_cleanup_free_ char *head = head_text(s->ev_seq + n, ev, n);
	struct Stat st;
	int rc;

	if (!head)
		return ZSYSTEMERROR;
	events_ops_init(s, dir, head, n, data, paths, ops, &st);
	pthread_rwlock_rdlock(&s->hlock);
	rc = s->zh ? zoo_multi(s->zh, (int)n + 1, ops, res) : ZINVALIDSTATE;
	pthread_rwlock_unlock(&s->hlock);
	if (rc == ZOK)
		events_numbered(s, ev, n, &st);
	return rc;
}

/*
 * Append @n events (the caller serialises appends: e->events.append_lock).
 * Not retried on a lost connection (the reply is lost, not necessarily
 * the write): an event is logged at most once, and the failure goes to
 * the daemon's log.  Another daemon's append first: read the head, again.
 */
static int zk_event_append(void *ctx, struct event_rec *ev, unsigned n,
			   unsigned retain, char *reason)
{
	struct zks *s = ctx;
	char dir[ZK_PATH_MAX];
	_cleanup_free_ zoo_op_t *ops = calloc(n + 1, sizeof(*ops));
	_cleanup_free_ zoo_op_result_t *res = calloc(n + 1, sizeof(*res));
	_cleanup_free_ char (*paths)[ZK_PATH_MAX + 16] = calloc(n, sizeof(*paths));
	char **data = calloc(n, sizeof(*data));
	int rc = ZSYSTEMERROR, r = 0;
	unsigned i;

	zks_path(s, dir, "events", NULL);
	/*
	 * Without a connection the multi would wait for one, and the write
	 * whose refusal this reports would wait with it: these events are
	 * lost, and said so (evlog_commit()).
	 */
	if (!zks_connected(s)) {
		free(data);
		return reason_set(reason, -ENOTCONN,
				  "no connection to ZooKeeper to append events under %s",
				  dir);
	}
	for (i = 0; ops && res && paths && data && i < n; i++)
		if (!event_text_valid(ev[i].text) ||
		    asprintf(&data[i], "%" PRId64 " %s", ev[i].time_ns, ev[i].text) < 0)
			break;
	for (unsigned tries = 0; i == n && tries < ZK_EVENT_TRIES; tries++) {
		if (!s->ev_known && (r = head_fetch(s, dir, reason)) < 0)
			break;
		head_adopt(s);
		rc = append_try(s, dir, ev, n, data, paths, ops, res);
		if (rc != ZBADVERSION && res[0].err != ZBADVERSION &&
		    (rc != ZNODEEXISTS && res[1].err != ZNODEEXISTS))
			break;
		s->ev_known = false; /* another daemon appended: look again */
	}
	for (unsigned j = 0; data && j < n; j++)
		free(data[j]);
	free(data);
	if (i < n)
		return reason_set(reason, -EINVAL, "malformed event, or out of memory");
	if (r < 0)
		return r;
	if (rc != ZOK) {
		s->ev_known = false;
		return zk_fail(reason, rc, "append events under", dir);
	}
	events_trim_due(s, dir, retain, n);
	return 0;
}

/* ---- events carried by a peer's commit (zks_peer_commit()) --------------- */

static void carry_free(struct carry_ops **co)
{
	if (!*co)
		return;
	for (unsigned i = 0; i < (*co)->n; i++)
		free((*co)->data[i]);
	free((*co)->head);
	free(*co);
}

/* @cv's events checked and formatted (*out NULL: none to carry). */
static int carry_init(struct zks *s, const struct zks_carry *cv,
		      struct carry_ops **out, char *reason)
{
	struct carry_ops *co;

	*out = NULL;
	if (!cv || !cv->n)
		return 0;
	if (cv->n > ZK_CARRY_MAX)
		return reason_set(reason, -EINVAL,
				  "too many events for one commit (%u, max %d)", cv->n,
				  ZK_CARRY_MAX);
	co = calloc(1, sizeof(*co));
	if (!co)
		return reason_set(reason, -ENOMEM, "out of memory");
	co->ev = cv->ev;
	zks_path(s, co->dir, "events", NULL);
	for (; co->n < cv->n; co->n++) {
		const struct event_rec *ev = &cv->ev[co->n];

		if (!event_text_valid(ev->text) ||
		    asprintf(&co->data[co->n], "%" PRId64 " %s", ev->time_ns,
			     ev->text) < 0) {
			co->data[co->n] = NULL;
			carry_free(&co);
			return reason_set(reason, -EINVAL,
					  "malformed event, or out of memory");
		}
	}
	*out = co;
	return 0;
}

/* The append's ops at @ops (head, then one create each), at the head last seen. */
static int carry_ops(struct zks *s, struct carry_ops *co, zoo_op_t *ops,
		     char *reason)
{
	int r;

	if (!co)
		return 0;
	if (!s->ev_known && (r = head_fetch(s, co->dir, reason)) < 0)
		return r;
	head_adopt(s);
	free(co->head);
	co->head = head_text(s->ev_seq + co->n, co->ev, co->n);
	if (!co->head)
		return reason_set(reason, -ENOMEM, "out of memory");
	events_ops_init(s, co->dir, co->head, co->n, co->data, co->paths, ops,
			&co->st);
	return 0;
}

/* Did the multi fail on the head (another daemon appended since)? */
static bool carry_raced(const zoo_op_result_t *res, int ic, unsigned n)
{
	if (res[ic].err == ZBADVERSION)
		return true;
	for (unsigned i = 0; i < n; i++)
		if (res[ic + 1 + (int)i].err == ZNODEEXISTS)
			return true;
	return false;
}

static void carry_done(struct zks *s, struct carry_ops *co, struct zks_carry *cv)
{
	if (!co)
		return;
	events_numbered(s, cv->ev, co->n, &co->st);
	events_trim_due(s, co->dir, cv->retain, co->n);
}

/* The commit went in without its reply: its events' SEQs are not known. */
static void carry_lost(struct zks *s, struct zks_carry *cv)
{
	for (unsigned i = 0; cv && i < cv->n; i++)
		cv->ev[i].seq = 0;
	s->ev_known = false;
}

/* One event node into @cb (its data: "TIME_NS TEXT"). */
static int event_read(struct zks *s, const char *path, uint64_t seq,
		      int (*cb)(void *arg, const struct event_rec *ev),
		      void *arg, char *reason)
{
	char *data = NULL, *end;
	struct event_rec ev = { .seq = seq };
	int r;

	r = zks_get(s, path, false, &data, NULL, reason);
	if (r == -ENOENT)
		return 0; /* trimmed meanwhile */
	if (r < 0)
		return r;
	ev.time_ns = strtoll(data, &end, 10);
	ev.text = *end == ' ' ? end + 1 : "";
	r = event_text_valid(ev.text) ? cb(arg, &ev) : 0; /* not ours: skipped */
	free(data);
	return r;
}

/* Far behind (a new session): the nodes above @since, listed once. */
static int events_load_listed(struct zks *s, const char *dir, uint64_t since,
			      int (*cb)(void *arg, const struct event_rec *ev),
			      void *arg, char *reason)
{
	char path[2 * ZK_PATH_MAX], **names;
	unsigned n;
	int r = zks_children(s, dir, false, &names, &n, reason);

	/* names are zero-padded: sorted by name is sorted by SEQ */
	for (unsigned i = 0; r == 0 && i < n; i++) {
		uint64_t seq = event_seq_of(names[i]);

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (seq > since)
			r = event_read(s, path, seq, cb, arg, reason);
	}
	zks_strv_free(names, n);
	return r;
}

/* The head's events above @since (SEQ - N + 1 .. SEQ, one per line). */
static int events_from_head(uint64_t seq, unsigned n, const char *batch,
			    uint64_t since,
			    int (*cb)(void *arg, const struct event_rec *ev),
			    void *arg)
{
	char line[EVENT_LINE_MAX], *end;
	int r = 0;

	for (uint64_t q = seq - n + 1; r == 0 && q <= seq && *batch; q++) {
		size_t len = strcspn(batch, "\n");
		struct event_rec ev = { .seq = q };

		snprintf(line, sizeof(line), "%.*s", (int)MIN(len, sizeof(line) - 1),
			 batch);
		batch += len + (batch[len] == '\n');
		ev.time_ns = strtoll(line, &end, 10);
		ev.text = *end == ' ' ? end + 1 : "";
		if (q > since && event_text_valid(ev.text))
			r = cb(arg, &ev);
	}
	return r;
}

/*
 * The events above @since, in order, and a watch on the head: its next
 * change (an append by any daemon) is a data event for cluster.c.
 */
static int zk_event_load(void *ctx, uint64_t since,
			 int (*cb)(void *arg, const struct event_rec *ev),
			 void *arg, char *reason)
{
	struct zks *s = ctx;
	char dir[ZK_PATH_MAX], path[ZK_PATH_MAX + 16], *data = NULL;
	const char *batch;
	uint64_t seq;
	int32_t version = -1;
	unsigned n;
	int r;

	zks_path(s, dir, "events", NULL);
	r = zks_get(s, dir, true, &data, &version, reason);
	if (r == 0 && head_parse(data, &seq, &n, &batch) < 0) { /* old layout */
		r = events_load_listed(s, dir, since, cb, arg, reason);
		free(data);
		return r;
	}
	if (r == 0)
		head_seen(s, seq, version);
	if (r == 0 && seq > since + ZK_EVENT_LIST_GAP)
		r = events_load_listed(s, dir, since, cb, arg, reason);
	else if (r == 0) {
		/* the ones the head does not carry, then the head's */
		for (uint64_t q = since + 1; r == 0 && q + n <= seq; q++) {
			event_path(s, path, sizeof(path), q);
			r = event_read(s, path, q, cb, arg, reason);
		}
		if (r == 0)
			r = events_from_head(seq, n, batch, since, cb, arg);
	}
	free(data);
	return r;
}

const struct store_ops store_zk_ops = {
	.name = "zk",
	.open = zk_open,
	.close = zk_close,
	.load = zk_load,
	.put = zk_put,
	.remove = zk_remove,
	.host_put = zk_host_put,
	.host_load = zk_host_load,
	.vm_put = zk_vm_put,
	.vm_remove = zk_vm_remove,
	.vm_load = zk_vm_load,
	.comp_put = zk_comp_put,
	.comp_create = zk_comp_create,
	.comp_remove = zk_comp_remove,
	.comp_load = zk_comp_load,
	.comp_swap = zk_comp_swap,
	.comp_get = zk_comp_get,
	.check = zk_check,
	.event_append = zk_event_append,
	.event_load = zk_event_load,
	.event_shared = true,
};

int zks_seq_refresh(struct zks *s, char *reason)
{
	char path[ZK_PATH_MAX];
	int32_t v;
	int r;

	zks_path(s, path, "seq", NULL);
	r = zks_get(s, path, false, NULL, &v, reason);
	if (r == 0)
		seq_set(s, v);
	return r;
}
