// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cluster.c - distributed mode (cluster.h): the session thread, the
 * replica, requests from other mounts, acknowledgements, take-backs.
 *
 * Threads:
 *   the ZooKeeper client's   runs the watch callbacks: they only queue
 *   the session thread       connects (backoff), recovers, then applies
 *                            queued events in order and ticks (take-backs)
 *   request workers          one per request of another mount being run
 * The engine's own request threads (FUSE) call zk_forward() and
 * zk_wait_peers() through coord_zk_ops, which wait on their own watches.
 */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h>

#include "bname.h"
#include "engine_internal.h"
#include "fault.h"
#include "hashmap.h"
#include "store_zk.h"

#define TICK_MS 200
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 8000
#define BARRIER_MS 2000 /* a forwarded write waits this for its echo */
#define SETTLE_RETRY_MS 2000 /* a composition left unsettled: again after */

struct event {
	int type;
	char path[ZK_PATH_MAX];
};

/* A set of strings (device ids): the keys are owned by the set. */
struct strset {
	struct hashmap *map;
};

struct cluster {
	struct engine *e;
	struct zks *zs;
	pthread_t thread;
	bool started;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	bool stop;
	bool need_connect; /* no session, or it expired */
	uint64_t lost_at;  /* now_ns() when the connection was lost; 0 up */
	bool fenced;	   /* lost: borrowed windows cleared (fence_self()) */
	bool synced;	   /* the replica follows the store */
	bool recovered;	   /* this host's records were recovered once */
	bool autolent;	   /* the config's autolends tried (session thread) */
	bool compo_stale;  /* compose_sync() to try again (session thread) */
	bool settling;	   /* a compose_settle() worker runs */
	uint64_t settle_retry; /* now_ns() to look at them again, 0 none */
	bool log_moved;	   /* ROOT/events changed: follow it (follow_log()) */
	unsigned since_log; /* events applied since log_moved was set */
	struct event *q;
	unsigned qhead, qn, qcap;
	uint64_t enq, done; /* events queued / applied, for barriers */
	/*
	 * zk_resync(): a request asks the session thread, the replica's one
	 * writer, to read every record again (resync_req); it has once all
	 * up to resync_done were read, with resync_rc.
	 */
	uint64_t resync_req, resync_done;
	int resync_rc;
	unsigned workers;   /* request workers running */
	/* devices whose request worker ended: look at their node again */
	char (*rescan)[DEVICE_ID_MAX];
	unsigned nrescan, rescan_cap;
	struct strset acked;   /* ROOT/acks/X@self that exist */
	struct strset busy;    /* requests being run here */
	char (*live)[HOST_NAME_MAX_LEN + 1];
	unsigned nlive;
	bool *taken; /* per host: its devices were taken back (session thread) */
	uint64_t *absent; /* per host: not live since (now_ns; session thread) */
};

/* ---- string sets (under c->lock) -------------------------------------- */

static bool set_has(struct strset *s, const char *k)
{
	return hashmap_get(s->map, k) != NULL;
}

static bool set_add(struct strset *s, const char *k)
{
	char *dup;

	if (set_has(s, k))
		return false;
	dup = strdup(k);
	if (!dup || hashmap_put(s->map, dup, dup) < 0) {
		free(dup);
		return false;
	}
	return true;
}

static bool set_del(struct strset *s, const char *k)
{
	char *v = hashmap_remove(s->map, k);

	free(v);
	return v != NULL;
}

/* ---- events ------------------------------------------------------------- */

static void on_event(void *arg, int type, int state, const char *path)
{
	struct cluster *c = arg;

	pthread_mutex_lock(&c->lock);
	if (type == ZOO_SESSION_EVENT) {
		if (state == ZOO_CONNECTED_STATE) {
			c->lost_at = 0;
			if (c->fenced) /* the same session: mirror it all again */
				c->synced = false;
		} else if (!c->lost_at)
			c->lost_at = now_ns();
		if (state == ZOO_EXPIRED_SESSION_STATE ||
		    state == ZOO_AUTH_FAILED_STATE) {
			c->need_connect = true;
			c->synced = false;
		}
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (c->qn == c->qcap) {
		unsigned cap = c->qcap ? c->qcap * 2 : 64;
		struct event *nq = malloc(cap * sizeof(*nq));

		if (!nq) { /* cannot queue: look at everything again */
			c->synced = false;
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->lock);
			return;
		}
		for (unsigned i = 0; i < c->qn; i++)
			nq[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = nq;
		c->qhead = 0;
		c->qcap = cap;
	}
	c->q[(c->qhead + c->qn) % c->qcap] = (struct event){ .type = type };
	snprintf(c->q[(c->qhead + c->qn) % c->qcap].path, ZK_PATH_MAX, "%s",
		 path);
	c->qn++;
	c->enq++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Wait on c->cond (c->lock held) for at most @ms milliseconds. */
static void wait_ms(struct cluster *c, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&c->cond, &c->lock, &ts);
}

/* Wait until every event queued before now has been applied. */
static void barrier(struct cluster *c)
{
	uint64_t deadline = now_ns() + BARRIER_MS * 1000000ULL;
	uint64_t target;

	pthread_mutex_lock(&c->lock);
	target = c->enq;
	while (c->done < target && c->synced && !c->stop && now_ns() < deadline)
		wait_ms(c, 20);
	pthread_mutex_unlock(&c->lock);
}

/* ---- the replica ---------------------------------------------------------- */

static const char *child_of(struct cluster *c, const char *path,
			    const char *dir)
{
	char prefix[ZK_PATH_MAX];
	size_t n;

	zks_path(c->zs, prefix, dir, NULL);
	n = strlen(prefix);
	if (strncmp(path, prefix, n) || path[n] != '/')
		return NULL;
	return path + n + 1;
}

/* The "answer PATH" line of a record's @text, into @out (ZK_PATH_MAX). */
static const char *answer_of(const char *text, char *out)
{
	const char *p = strstr(text, "\nanswer ");
	size_t n;

	if (!p)
		return NULL;
	p += 8;
	n = strcspn(p, "\n");
	if (n == 0 || n >= ZK_PATH_MAX)
		return NULL;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

/*
 * The commit, with the events the intent carries (its `event` lines,
 * zks_carried_split()): appended in the same transaction, under the
 * engine's append lock.  The last (`lent`, `returned`) is stamped now,
 * when it happens.  The ring gets them as every daemon does: through the
 * log's watch (follow_log()).
 */
static int commit_carrying(struct cluster *c, const char *path, const char *lent,
			   int32_t version, const char *pending,
			   const char *answer, struct event_rec *ev, unsigned n,
			   char *reason)
{
	struct zks_carry cv = { .ev = ev, .n = n, .retain = c->e->event_retain };
	int r;

	if (!n)
		return zks_peer_commit(c->zs, path, lent, version, pending, answer,
				       NULL, reason);
	ev[n - 1].time_ns = MAX(ev[n - 1].time_ns, event_now());
	pthread_mutex_lock(&c->e->events.append_lock);
	r = zks_peer_commit(c->zs, path, lent, version, pending, answer, &cv,
			    reason);
	pthread_mutex_unlock(&c->e->events.append_lock);
	return r;
}

/*
 * The sole peer of a lend: its windows are (un)programmed, so the lend is
 * done: commit the record (`lent`), or remove the returned one, at the
 * version read, answering the request it came from, with the events the
 * intent carries.
 */
static void peer_commit(struct cluster *c, const char *devid,
			const struct lend_ack *a, const char *text,
			int32_t version)
{
	char path[ZK_PATH_MAX], ans[ZK_PATH_MAX], reason[REASON_MAX];
	char pending[ZK_PATH_MAX];
	const char *answer = answer_of(text, ans);
	_cleanup_free_ char *rest = NULL, *strings = NULL, *lent = NULL;
	struct event_rec ev[ZK_CARRY_MAX];
	unsigned n = 0;
	int r;

	zks_path(c->zs, path, "lends", devid);
	if (strstr(text, "\nfenced "))
		return; /* the lender gave up on us: it rolls back */
	if (zks_carried_split(text, &rest, &strings, ev, ZK_CARRY_MAX, &n) < 0 ||
	    (a->mapped && (strncmp(rest, "state lending\n", 14) ||
			   asprintf(&lent, "state lent\n%s", rest + 14) < 0))) {
		lent = NULL;
		engine_report(c->e, "cannot commit %s: unexpected record", devid);
		return;
	}
	if (a->mapped)
		zks_pending_path(c->zs, pending, devid, a->epoch);
	fault_pass("zk.peer_commit");
	r = commit_carrying(c, path, lent, version, a->mapped ? pending : NULL,
			    answer, ev, n, reason);
	if (r == 0)
		fault_pass("zk.peer_commit.done");
	if (r < 0 && r != -EAGAIN)
		engine_report(c->e, "cannot commit %s: %s", devid, reason);
}

static void ack_write(struct cluster *c, const char *devid,
		      const struct lend_ack *a, const char *text,
		      int32_t version)
{
	char name[DEVICE_ID_MAX + HOST_NAME_MAX_LEN + 2];
	char path[ZK_PATH_MAX], data[64], reason[REASON_MAX];
	bool exists;
	int r;

	snprintf(name, sizeof(name), "%s@%s", devid, c->e->self->name);
	zks_path(c->zs, path, "acks", name);
	/*
	 * Nothing to say: the node stays (ephemeral, overwritten by the next
	 * lend; the lender only takes its own epoch and phase).
	 */
	if (!a->needed)
		return;
	if (a->commit && text) {
		peer_commit(c, devid, a, text, version);
		return;
	}
	snprintf(data, sizeof(data), "%" PRIu64 " %s", a->epoch,
		 a->mapped ? "mapped" : "unmapped");
	pthread_mutex_lock(&c->lock);
	exists = set_has(&c->acked, devid);
	pthread_mutex_unlock(&c->lock);
	/* one round trip: create the first time, set after */
	r = zks_put(c->zs, path, data, true, !exists, reason);
	if (r == -EEXIST)
		r = zks_put(c->zs, path, data, true, false, reason);
	if (r < 0) {
		engine_report(c->e, "cannot acknowledge the windows of %s: %s", devid, reason);
		return;
	}
	pthread_mutex_lock(&c->lock);
	set_add(&c->acked, devid);
	pthread_mutex_unlock(&c->lock);
}

/* Read ROOT/lends/@devid again (arming its watch) and mirror it. */
static int refresh_record(struct cluster *c, const char *devid, bool gone)
{
	char path[ZK_PATH_MAX], reason[REASON_MAX];
	struct lend_record rec;
	struct lend_ack ack;
	bool dirty = false;
	char *text = NULL;
	int32_t version = -1;
	int r;

	zks_path(c->zs, path, "lends", devid);
	/* a watch on the node, or for its creation: a new lend wakes us */
	r = zks_watch_node(c->zs, path, gone, &text, &version, reason);
	if (r == -ENOENT) {
		lend_apply_record(c->e, devid, NULL, &ack, &dirty);
		ack_write(c, devid, &ack, NULL, -1);
		return 0;
	}
	if (r < 0)
		return r;
	r = store_zk_parse(devid, text, &rec, reason);
	if (r < 0) {
		free(text);
		engine_report(c->e, "ignoring %s: %s", path, reason);
		return 0;
	}
	lend_apply_record(c->e, devid, &rec, &ack, &dirty);
	lend_record_release(&rec);
	ack_write(c, devid, &ack, text, version);
	free(text);
	if (dirty) {
		pthread_mutex_lock(&c->lock);
		c->synced = false;
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Other lenders' devices that have no record (sorted @names): available;
 * with @arm, watched for the creation of their record.
 */
static void clear_unlisted(struct cluster *c, char **names, unsigned n,
			   bool arm)
{
	struct engine *e = c->e;
	char (*ids)[DEVICE_ID_MAX] = NULL;
	unsigned nids = 0;

	struct ldevice **devs;
	unsigned ndevs;

	if (model_pin_all(e, &devs, &ndevs) < 0)
		return;
	ids = malloc((ndevs ? ndevs : 1) * sizeof(*ids));
	for (unsigned i = 0; ids && i < ndevs; i++) {
		const char *id = devs[i]->id;

		if (lend_remote(e, devs[i]) &&
		    !bsearch(&id, names, n, sizeof(*names), cmp_name))
			snprintf(ids[nids++], DEVICE_ID_MAX, "%s", id);
	}
	model_put_all(e, devs, ndevs);
	for (unsigned i = 0; i < nids; i++) {
		struct lend_ack ack;
		bool dirty = false;

		lend_apply_record(e, ids[i], NULL, &ack, &dirty);
		ack_write(c, ids[i], &ack, NULL, -1);
		if (arm) {
			char path[ZK_PATH_MAX];

			zks_path(c->zs, path, "lends", ids[i]);
			zks_watch_async(c->zs, path);
		}
	}
	free(ids);
}

/* Is @devid a device of this daemon's host? */
static bool device_is_local(struct cluster *c, const char *devid)
{
	const char *self = c->e->self->name;
	size_t n = strlen(self);

	return !strncmp(devid, self, n) && devid[n] == ':';
}

/*
 * Mirror every record of ROOT/lends.  Each other lender's device is
 * watched on its own node (or for its creation), not through the list:
 * a new lend reaches its borrower in one read.  @arm: a new session,
 * whose watches are yet to be set.
 */
static int refresh_lends(struct cluster *c, bool arm)
{
	char path[ZK_PATH_MAX], reason[REASON_MAX];
	char **names;
	unsigned n;
	int r;

	zks_path(c->zs, path, "lends", NULL);
	r = zks_children(c->zs, path, false, &names, &n, reason);
	if (r < 0)
		return r;
	/* the gone first: what they held may be a listed record's now */
	clear_unlisted(c, names, n, arm);
	for (unsigned i = 0; i < n && r == 0; i++)
		if (!device_is_local(c, names[i])) /* ours: we write those */
			r = refresh_record(c, names[i], false);
	zks_strv_free(names, n);
	return r;
}

/* ---- hosts ---------------------------------------------------------------- */

static bool in_live(struct cluster *c, const char *host)
{
	for (unsigned i = 0; i < c->nlive; i++)
		if (!strcmp(c->live[i], host))
			return true;
	return false;
}

static bool host_admin(struct engine *e, struct lhost *h)
{
	bool live, admin;

	model_host_flags(e, h, &live, &admin);
	return admin;
}

static bool host_is_live(struct engine *e, struct lhost *h)
{
	bool live, admin;

	model_host_flags(e, h, &live, &admin);
	return live;
}

/*
 * ROOT/live: who is up.  @observed: a change seen while connected (a host
 * that left had its session expire: its lends are taken back now, and
 * lends routed through it are rerouted); else (a new session) hosts not
 * up get one session timeout to show up before anything is taken back.
 */
static int refresh_live(struct cluster *c, bool observed)
{
	struct engine *e = c->e;
	char path[ZK_PATH_MAX], reason[REASON_MAX];
	char (*live)[HOST_NAME_MAX_LEN + 1];
	char **names;
	unsigned n;
	int r;

	zks_path(c->zs, path, "live", NULL);
	r = zks_children(c->zs, path, true, &names, &n, reason);
	if (r < 0)
		return r;
	live = calloc(n ? n : 1, sizeof(*live));
	if (!live) {
		zks_strv_free(names, n);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		snprintf(live[i], sizeof(live[i]), "%s", names[i]);
	zks_strv_free(names, n);
	pthread_mutex_lock(&c->lock);
	free(c->live);
	c->live = live;
	c->nlive = n;
	pthread_mutex_unlock(&c->lock);

	for (unsigned i = 0; i < e->nhosts; i++) {
		struct lhost *h = &e->hosts[i];
		bool up = in_live(c, h->name);
		bool was;

		was = host_is_live(e, h);
		if (up == was && observed)
			continue;
		lend_host_state(e, h->name, up, host_admin(e, h), observed && was && !up);
		if (!up) {
			/* observed: its session is over already */
			c->absent[i] = observed && was ?
				now_ns() - (uint64_t)zks_session_ms(c->zs) * 1000000ULL :
				now_ns();
			if (observed && was)
				engine_report(c->e, "host %s is offline: its session ended", h->name);
		} else if (observed && !was) {
			engine_report(c->e, "host %s is online", h->name);
		}
	}
	return 0;
}

static int host_admin_cb(void *arg, const char *host, const char *data)
{
	struct cluster *c = arg;
	struct lhost *h = engine_host(c->e, host);
	bool live;

	if (!h)
		return 0;
	live = host_is_live(c->e, h);
	lend_host_state(c->e, host, live, strcmp(data, "offline") != 0, true);
	return 0;
}

/* ROOT/hosts: admin states (a host never written is online), watched. */
static int refresh_admin(struct cluster *c)
{
	char reason[REASON_MAX];

	return zks_foreach(c->zs, "hosts", true, host_admin_cb, c, reason);
}

/* The epoch floor for the next lend: the version of ROOT/seq. */
static uint64_t cluster_epoch(struct cluster *c)
{
	int64_t v = zks_seq(c->zs);

	return v > 0 ? (uint64_t)v : 0;
}

/* ---- requests from other mounts ------------------------------------------ */

struct job {
	struct cluster *c;
	char devid[DEVICE_ID_MAX];
	char value[BORROWER_MAX + 1];
	int32_t version;
	bool has_who; /* the writer on the other mount (events.h) */
	struct engine_caller who;
	char who_host[HOST_NAME_MAX_LEN + 1];
	char compo[COMP_NAME_MAX_LEN + 1]; /* a composition's step, "" none */
};

/*
 * A request node's data: "? VALUE", then optionally a line "compo NAME"
 * (a step of composition NAME's lend or return: lend_txn.compo), then
 * optionally a line "who HOST UID PID COMM" naming the writer on the
 * forwarding mount (COMM: the rest of the line, printable).  -EINVAL
 * when malformed.
 */
static int request_parse(const char *text, struct job *j)
{
	const char *nl = strchr(text, '\n');
	size_t len = nl ? (size_t)(nl - text) : strlen(text);
	int n = 0;

	if (len < 2 || text[0] != '?' || text[1] != ' ' || len - 2 > BORROWER_MAX)
		return -EINVAL;
	snprintf(j->value, sizeof(j->value), "%.*s", (int)(len - 2), text + 2);
	if (nl && !strncmp(nl + 1, "compo ", 6)) {
		const char *name = nl + 7;

		nl = strchr(name, '\n');
		len = nl ? (size_t)(nl - name) : strlen(name);
		if (len > COMP_NAME_MAX_LEN)
			return -EINVAL;
		snprintf(j->compo, sizeof(j->compo), "%.*s", (int)len, name);
		if (!comp_name_valid(j->compo))
			return -EINVAL;
	}
	if (!nl)
		return 0;
	if (sscanf(nl + 1, "who %63s %" SCNu32 " %" SCNu32 " %n", j->who_host,
		   &j->who.uid, &j->who.pid, &n) < 3 || n == 0)
		return -EINVAL;
	snprintf(j->who.comm, sizeof(j->who.comm), "%s", nl + 1 + n);
	for (char *p = j->who.comm; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	j->who.host = j->who_host;
	j->has_who = true;
	return 0;
}

static void *request_worker(void *arg)
{
	struct job *j = arg;
	struct cluster *c = j->c;
	char path[ZK_PATH_MAX], reason[REASON_MAX] = "", *text = NULL;
	struct lend_txn txn;
	int r;

	zks_path(c->zs, path, "requests", j->devid);
	/* the commit answers: txn.answered */
	txn = (struct lend_txn){ .answer = path, .answer_lend = j->value[0] != '\0' };
	/* "lease N" or a borrower value (docs/STATE.md) */
	r = compose_forwarded(c->e, j->devid, j->value, j->compo[0] ? j->compo : NULL,
			      j->has_who ? &j->who : NULL, &txn, reason);
	if (!txn.answered) { /* an error, or a no-op */
		if (asprintf(&text, "= %s %s", r < 0 ? errno_name(r) : "0",
			     r < 0 ? reason : "") < 0)
			text = NULL;
		/* gone: the writer gave up (its own timeout) or went away */
		if (text)
			zks_cas(c->zs, path, text, j->version, NULL);
		free(text);
	}
	pthread_mutex_lock(&c->lock);
	set_del(&c->busy, j->devid);
	c->workers--;
	/*
	 * The next request for this device may have come while this one
	 * ran (its writer had the answer of a peer's commit already), and
	 * the node's watch fired meanwhile: read it again.
	 */
	if (c->nrescan == c->rescan_cap) {
		unsigned cap = c->rescan_cap ? 2 * c->rescan_cap : 8;
		char (*n)[DEVICE_ID_MAX] = realloc(c->rescan, cap * sizeof(*n));

		if (n) {
			c->rescan = n;
			c->rescan_cap = cap;
		}
	}
	if (c->nrescan < c->rescan_cap)
		snprintf(c->rescan[c->nrescan++], DEVICE_ID_MAX, "%s", j->devid);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	free(j);
	return NULL;
}

static void request_start(struct cluster *c, const char *devid)
{
	char path[ZK_PATH_MAX], reason[REASON_MAX], *text = NULL;
	pthread_attr_t attr;
	struct job *j;
	pthread_t t;
	int32_t ver;

	pthread_mutex_lock(&c->lock);
	if (c->stop || !set_add(&c->busy, devid)) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	zks_path(c->zs, path, "requests", devid);
	j = calloc(1, sizeof(*j));
	/* watched: its answer, deletion or the next one wakes us again */
	if (j && zks_watch_node(c->zs, path, false, &text, &ver, reason) == 0 &&
	    request_parse(text, j) == 0) {
		j->c = c;
		snprintf(j->devid, sizeof(j->devid), "%s", devid);
		j->version = ver;
		free(text);
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_mutex_lock(&c->lock);
		c->workers++;
		pthread_mutex_unlock(&c->lock);
		if (pthread_create(&t, &attr, request_worker, j) == 0) {
			pthread_attr_destroy(&attr);
			return;
		}
		pthread_attr_destroy(&attr);
		pthread_mutex_lock(&c->lock);
		c->workers--;
		pthread_mutex_unlock(&c->lock);
	} else {
		free(text);
	}
	free(j);
	pthread_mutex_lock(&c->lock);
	set_del(&c->busy, devid);
	pthread_mutex_unlock(&c->lock);
}

/*
 * A new session: run the requests of ROOT/requests for this host's
 * devices, and watch the request node of each of them, so that a write
 * on another mount wakes us in one read.
 */
static int refresh_requests(struct cluster *c)
{
	char path[ZK_PATH_MAX], reason[REASON_MAX];
	struct ldevice **devs;
	char **names;
	unsigned n, ndevs;
	int r;

	zks_path(c->zs, path, "requests", NULL);
	r = zks_children(c->zs, path, false, &names, &n, reason);
	if (r < 0)
		return r;
	r = model_pin_all(c->e, &devs, &ndevs);
	if (r < 0) {
		zks_strv_free(names, n);
		return r;
	}
	for (unsigned i = 0; i < ndevs; i++) {
		if (lend_remote(c->e, devs[i]))
			continue;
		zks_path(c->zs, path, "requests", devs[i]->id);
		zks_watch_async(c->zs, path);
	}
	model_put_all(c->e, devs, ndevs);
	for (unsigned i = 0; i < n; i++) {
		struct ldevice *d = model_get(c->e, names[i]);
		bool mine = d && !lend_remote(c->e, d);

		model_put(c->e, d);
		if (mine)
			request_start(c, names[i]);
	}
	zks_strv_free(names, n);
	return 0;
}

/* ---- the session ------------------------------------------------------------ */

/*
 * This host's fence: the epoch of the last take-back of devices lent to
 * it.  Seen (and acknowledged) before this host shows itself live.
 */
static int fence_ack(struct cluster *c)
{
	char path[ZK_PATH_MAX], reason[REASON_MAX], *v = NULL;
	uint64_t epoch;
	int32_t ver;
	int r;

	zks_path(c->zs, path, "fence", c->e->self->name);
	r = zks_get(c->zs, path, false, &v, &ver, reason);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (parse_u64(v, &epoch) == 0) { /* "N": not seen yet */
		char seen[64];

		snprintf(seen, sizeof(seen), "%" PRIu64 " seen", epoch);
		engine_report(c->e, "devices lent to %s were taken back while it was away (fence epoch %" PRIu64 ")",
		    c->e->self->name, epoch);
		zks_cas(c->zs, path, seen, ver, NULL);
	}
	free(v);
	return 0;
}

/* Our live node; an old session's one must expire first. */
static int go_live(struct cluster *c, char *reason)
{
	char path[ZK_PATH_MAX], id[32];
	uint64_t deadline = now_ns() + 3ULL * zks_session_ms(c->zs) * 1000000ULL;
	int r;

	snprintf(id, sizeof(id), "%" PRIx64, (uint64_t)zks_session_id(c->zs));
	zks_path(c->zs, path, "live", c->e->self->name);
	for (;;) {
		char *cur = NULL;
		int32_t ver;

		r = zks_put(c->zs, path, id, true, true, reason);
		if (r != -EEXIST)
			return r;
		r = zks_get(c->zs, path, false, &cur, &ver, reason);
		if (r == 0 && !strcmp(cur, id)) {
			free(cur);
			return 0; /* ours: a lost reply */
		}
		free(cur);
		if (r == -ENOENT)
			continue;
		if (now_ns() > deadline)
			return reason_set(reason, -EEXIST,
					  "another daemon is live as %s (%s); is --host right?",
					  c->e->self->name, path);
		/* the session of our previous life: it expires soon */
		zks_wait_change(c->zs, path, ver, MIN(deadline, now_ns() + 500000000ULL),
				NULL);
	}
}

static void *settle_worker(void *arg)
{
	struct cluster *c = arg;
	char reason[REASON_MAX];

	compose_settle(c->e, reason); /* it reports what it could not do */
	pthread_mutex_lock(&c->lock);
	c->settling = false;
	/* what it left (a lender down): looked at again in a while */
	c->settle_retry = now_ns() + SETTLE_RETRY_MS * 1000000ULL;
	c->workers--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/*
 * Compositions whose lend or return no daemon will finish: settled on a
 * worker (it waits for lenders' daemons, through this thread), one at a
 * time.
 */
static void settle_start(struct cluster *c)
{
	pthread_attr_t attr;
	pthread_t t;

	pthread_mutex_lock(&c->lock);
	if (c->stop || c->settling) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->settling = true;
	c->workers++;
	pthread_mutex_unlock(&c->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, settle_worker, c) != 0) {
		pthread_mutex_lock(&c->lock);
		c->settling = false;
		c->workers--;
		pthread_mutex_unlock(&c->lock);
	}
	pthread_attr_destroy(&attr);
}

/* The compositions' mirror (compose.c), now or at the next tick. */
static void refresh_compos(struct cluster *c)
{
	int r = compose_sync(c->e, NULL);

	c->compo_stale = r < 0;
	if (r > 0)
		settle_start(c);
}

/* A new session: mirror everything, recover, show ourselves live. */
static int sync_all(struct cluster *c, char *reason)
{
	int r;

	pthread_mutex_lock(&c->lock);
	c->qn = 0; /* events of an older session: everything is read again */
	c->done = c->enq;
	pthread_mutex_unlock(&c->lock);
	r = zks_seq_refresh(c->zs, reason);
	if (r == 0 && !c->recovered && (r = lend_recover_own(c->e, reason)) == 0) {
		pthread_mutex_lock(&c->lock);
		c->recovered = true; /* writes may go on: zk_writable() */
		pthread_mutex_unlock(&c->lock);
	}
	if (r == 0)
		r = refresh_admin(c);
	if (r == 0)
		r = refresh_lends(c, true);
	if (r == 0)
		r = fence_ack(c);
	if (r == 0)
		r = go_live(c, reason);
	if (r == 0)
		r = refresh_live(c, false);
	if (r == 0)
		r = refresh_requests(c);
	if (r < 0)
		return r;
	refresh_compos(c); /* busy: at the next tick */
	evlog_follow(c->e); /* the log, and a watch on it */
	pthread_mutex_lock(&c->lock);
	c->synced = true;
	c->fenced = false;
	pthread_mutex_unlock(&c->lock);
	if (!c->autolent) {
		c->autolent = true;
		/* leases of ours that ran out while we were down */
		lease_expire_due(c->e, "recovery");
		lend_autolend_own(c->e);
	}
	return 0;
}

static void apply_event(struct cluster *c, const struct event *ev)
{
	char path[ZK_PATH_MAX];
	const char *child;

	if ((child = child_of(c, ev->path, "lends"))) {
		if (!device_is_local(c, child))
			refresh_record(c, child, ev->type == ZOO_DELETED_EVENT);
		return;
	}
	if ((child = child_of(c, ev->path, "requests"))) {
		if (device_is_local(c, child))
			request_start(c, child);
		return;
	}
	if ((child = child_of(c, ev->path, "hosts"))) {
		refresh_admin(c);
		return;
	}
	zks_path(c->zs, path, "compositions", NULL);
	if (child_of(c, ev->path, "compositions") || !strcmp(ev->path, path)) {
		refresh_compos(c);
		return;
	}
	zks_path(c->zs, path, "events", NULL);
	if (!strcmp(ev->path, path)) { /* the head moved: an append */
		pthread_mutex_lock(&c->lock);
		c->log_moved = true; /* follow_log(), after the records */
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (ev->type == ZOO_CHILD_EVENT) {
		zks_path(c->zs, path, "live", NULL);
		if (!strcmp(ev->path, path)) {
			refresh_live(c, true);
			c->compo_stale = true; /* a composition's daemon may be gone */
			return;
		}
		zks_path(c->zs, path, "hosts", NULL);
		if (!strcmp(ev->path, path))
			refresh_admin(c);
	}
}

/*
 * The lend of @epoch can no longer be committed: its marker deleted, and
 * waited for (0 when it was gone already: committed, or closed).
 */
static int marker_delete(struct cluster *c, const char *devid, uint64_t epoch,
			 char *reason)
{
	char pending[ZK_PATH_MAX];
	int r;

	zks_pending_path(c->zs, pending, devid, epoch);
	r = zks_delete_node(c->zs, pending, reason);
	return r == -ENOENT ? 0 : r;
}

/* lend_settle_all(): marker_delete(). */
static int close_marker(void *arg, const char *devid, uint64_t epoch)
{
	return marker_delete(arg, devid, epoch, NULL);
}

/*
 * Borrowers gone for a session timeout: their devices come back.  And the
 * requests of ours whose outcome the lost connection hid are settled.
 */
static void tick(struct cluster *c)
{
	struct engine *e = c->e;
	uint64_t grace = (uint64_t)zks_session_ms(c->zs) * 1000000ULL;

	if (zks_connected(c->zs))
		lend_settle_all(e, close_marker, c);
	pthread_mutex_lock(&c->lock);
	if (c->settle_retry && now_ns() >= c->settle_retry && !c->settling) {
		c->settle_retry = 0;
		c->compo_stale = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (c->compo_stale && zks_connected(c->zs))
		refresh_compos(c);

	for (unsigned i = 0; i < e->nhosts; i++) {
		struct lhost *h = &e->hosts[i];
		unsigned failed = 0;
		bool gone, live;

		if (h == e->self)
			continue;
		live = host_is_live(e, h);
		gone = !live && now_ns() >= c->absent[i] + grace;
		if (live || !gone) {
			c->taken[i] = false;
			continue;
		}
		if (c->taken[i])
			continue; /* nothing can be lent to it while it is away */
		if (lend_take_back(e, h->name, cluster_epoch(c), &failed) > 0) {
			char path[ZK_PATH_MAX], fence[32];

			c->compo_stale = true; /* a composition may have lost members */

			/* after the returns: they bumped ROOT/seq past it */
			snprintf(fence, sizeof(fence), "%" PRIu64, cluster_epoch(c));
			zks_path(c->zs, path, "fence", h->name);
			zks_put(c->zs, path, fence, false, false, NULL);
		}
		c->taken[i] = failed == 0; /* else: again at the next tick */
	}
}

static void all_offline(struct cluster *c)
{
	struct engine *e = c->e;

	for (unsigned i = 0; i < e->nhosts; i++) {
		if (host_is_live(e, &e->hosts[i]))
			c->absent[i] = now_ns();
		lend_host_state(e, e->hosts[i].name, false,
				host_admin(e, &e->hosts[i]), false);
	}
}

/*
 * The connection has been lost long enough that the servers may expire
 * the session soon (fence_due()), after which the lenders take back what
 * was lent to this host.  Stop using it now, before they can: clear this host's
 * windows of every device lent to it, as if its record were gone, and
 * show every host offline.  The same session coming back mirrors the
 * records again (c->synced), and with them the windows that still stand.
 */
static void fence_self(struct cluster *c)
{
	struct engine *e = c->e;
	char (*ids)[DEVICE_ID_MAX];
	struct ldevice **devs;
	unsigned ndevs, nids = 0;

	if (model_pin_all(e, &devs, &ndevs) < 0)
		return;
	ids = malloc((ndevs ? ndevs : 1) * sizeof(*ids));
	for (unsigned i = 0; ids && i < ndevs; i++) {
		struct ldevice *d = devs[i];

		pthread_mutex_lock(&d->lock);
		if (lend_remote(e, d) && bname_on_host(d->borrower, e->self->name))
			snprintf(ids[nids++], DEVICE_ID_MAX, "%s", d->id);
		pthread_mutex_unlock(&d->lock);
	}
	model_put_all(e, devs, ndevs);
	for (unsigned i = 0; i < nids; i++) {
		struct lend_ack ack;
		bool dirty = false;

		lend_apply_record(e, ids[i], NULL, &ack, &dirty);
	}
	free(ids);
	all_offline(c);
	engine_report(e, "ZooKeeper: connection lost; %u device(s) lent to %s no longer mapped here until the session is back",
	    nids, e->self->name);
}

/*
 * c->lock held.  When to stop using what was lent to this host.  The
 * servers expire the session a session timeout after they last heard from
 * it, and only then do the lenders take anything back.  The client
 * reports a lost connection at once when a server closes it (a leader
 * election, a restart), but only after two thirds of the session timeout
 * when the network goes silent.  A sixth more is still before the
 * earliest expiry in the second case, and lets the first case (usually
 * over within a few hundred ms: the client moves to another server of the
 * ensemble) pass without unmapping anything.
 */
static bool fence_due(struct cluster *c)
{
	uint64_t wait = (uint64_t)zks_session_ms(c->zs) * 1000000ULL / 6;

	return c->lost_at && !c->fenced && now_ns() >= c->lost_at + wait;
}

/*
 * c->lock held.  No server for a whole session timeout since the loss,
 * and so since the servers last heard from us: the session is expired
 * (the client learns that only once it reaches a server again), so start
 * a new one rather than show a stale cluster until then.
 */
static bool session_gone(struct cluster *c)
{
	uint64_t all = (uint64_t)zks_session_ms(c->zs) * 1000000ULL;

	return c->lost_at && now_ns() >= c->lost_at + all;
}

/*
 * c->lock held (dropped meanwhile).  What requests asked of the session
 * thread: read every record again (zk_resync()), or look again at the
 * request node of a device whose worker ended.  false: nothing to do.
 */
static bool serve_one(struct cluster *c)
{
	if (c->resync_done != c->resync_req) {
		uint64_t target = c->resync_req;
		int r;

		pthread_mutex_unlock(&c->lock);
		r = refresh_lends(c, false);
		pthread_mutex_lock(&c->lock);
		c->resync_rc = r;
		c->resync_done = target;
		pthread_cond_broadcast(&c->cond);
		return true;
	}
	if (c->nrescan) {
		char id[DEVICE_ID_MAX];

		snprintf(id, sizeof(id), "%s", c->rescan[--c->nrescan]);
		pthread_mutex_unlock(&c->lock);
		request_start(c, id);
		pthread_mutex_lock(&c->lock);
		return true;
	}
	return false;
}

/*
 * The event log's head moved (an append, by any daemon): read it once the
 * records queued with it are mirrored (or after FOLLOW_AFTER of them), so
 * that a lend's commit, which moves the head in the same transaction,
 * shows on this mount without waiting for a read of the log; several
 * appends meanwhile cost one read.  c->lock held; true if it ran.
 */
#define FOLLOW_AFTER 64

static bool follow_log(struct cluster *c)
{
	if (!c->log_moved || (c->qn && c->since_log < FOLLOW_AFTER))
		return false;
	c->log_moved = false;
	c->since_log = 0;
	pthread_mutex_unlock(&c->lock);
	evlog_follow(c->e);
	pthread_mutex_lock(&c->lock);
	return true;
}

static void *session_thread(void *arg)
{
	struct cluster *c = arg;
	unsigned backoff = BACKOFF_MIN_MS;
	uint64_t next_tick = 0;
	char reason[REASON_MAX];

	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		if (c->need_connect || !c->synced) {
			bool fresh = c->need_connect;
			int r;

			pthread_mutex_unlock(&c->lock);
			if (fresh)
				all_offline(c);
			r = fresh ? zks_connect(c->zs, reason) : 0;
			if (r == 0) {
				pthread_mutex_lock(&c->lock);
				c->need_connect = false;
				pthread_mutex_unlock(&c->lock);
				r = sync_all(c, reason);
			}
			/* not under c->lock: the client's watcher takes it */
			if (r == 0 && fresh)
				engine_report(c->e, "ZooKeeper: connected, session %" PRIx64,
				    (uint64_t)zks_session_id(c->zs));
			pthread_mutex_lock(&c->lock);
			if (r < 0) {
				if (fresh || r == -EHOSTDOWN || r == -ENOTCONN)
					c->need_connect = true;
				pthread_mutex_unlock(&c->lock);
				engine_report(c->e, "ZooKeeper: %s; retrying in %u ms", reason, backoff);
				pthread_mutex_lock(&c->lock);
				if (!c->stop)
					wait_ms(c, backoff);
				backoff = MIN(backoff * 2, BACKOFF_MAX_MS);
				continue;
			}
			backoff = BACKOFF_MIN_MS;
			continue;
		}
		if (serve_one(c) || follow_log(c))
			continue;
		if (c->qn) {
			struct event ev = c->q[c->qhead];

			c->qhead = (c->qhead + 1) % c->qcap;
			c->qn--;
			c->since_log += c->log_moved;
			pthread_mutex_unlock(&c->lock);
			apply_event(c, &ev);
			pthread_mutex_lock(&c->lock);
			c->done++;
			pthread_cond_broadcast(&c->cond);
			continue;
		}
		if (fence_due(c)) {
			c->fenced = true;
			pthread_mutex_unlock(&c->lock);
			fence_self(c);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (session_gone(c)) {
			/* as if expired: offline everywhere, a new session */
			c->need_connect = true;
			c->synced = false;
			pthread_mutex_unlock(&c->lock);
			engine_report(c->e, "ZooKeeper: no answer from any server for a session timeout (%u ms); this host is offline until a new session is up",
			    zks_session_ms(c->zs));
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (now_ns() >= next_tick) {
			pthread_mutex_unlock(&c->lock);
			tick(c);
			next_tick = now_ns() + TICK_MS * 1000000ULL;
			pthread_mutex_lock(&c->lock);
			continue;
		}
		wait_ms(c, TICK_MS);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the engine's side ---------------------------------------------------------- */

static void zk_close(void *ctx);

static int zk_open(struct engine *e, void *store_ctx, void **out,
		   char *reason)
{
	struct zks *zs = store_ctx;
	struct cluster *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return reason_set(reason, -ENOMEM, "out of memory");
	c->e = e;
	c->zs = zs;
	c->need_connect = true;
	c->acked.map = hashmap_new(64);
	c->busy.map = hashmap_new(16);
	c->taken = calloc(e->cfg->nhosts ? e->cfg->nhosts : 1, sizeof(*c->taken));
	c->absent = calloc(e->cfg->nhosts ? e->cfg->nhosts : 1, sizeof(*c->absent));
	if (!c->acked.map || !c->busy.map || !c->taken || !c->absent) {
		zk_close(c);
		return reason_set(reason, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	zks_set_session_ms(zs, e->cfg->session_timeout_ms);
	zks_set_log(e->log, e->log_arg);
	zks_set_events(zs, on_event, c);
	*out = c;
	return 0;
}

/* The session thread connects (retrying), then recovers this host's lends. */
static int zk_start(void *ctx, char *reason)
{
	struct cluster *c = ctx;
	int r = pthread_create(&c->thread, NULL, session_thread, c);

	if (r)
		return reason_set(reason, -r, "cannot start the session thread: %s",
				  strerror(r));
	c->started = true;
	return 0;
}

static void zk_close(void *ctx)
{
	struct cluster *c = ctx;

	if (!c)
		return;
	if (c->zs)
		zks_set_events(c->zs, NULL, NULL);
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
		pthread_mutex_lock(&c->lock);
		while (c->workers) /* requests of other mounts still running */
			pthread_cond_wait(&c->cond, &c->lock);
		pthread_mutex_unlock(&c->lock);
	}
	zks_set_log(NULL, NULL);
	hashmap_free_values(c->acked.map, free); /* set_add()'s copies */
	hashmap_free_values(c->busy.map, free);
	free(c->q);
	free(c->taken);
	free(c->absent);
	free(c->rescan);
	free(c->live);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}


static uint64_t zk_epoch_floor(void *ctx)
{
	return cluster_epoch(ctx);
}

/*
 * Read every record again before planning anew.  The session thread does
 * it: the replica has one writer, whose reads of a record follow each
 * other, so a record read here before its removal can never be mirrored
 * (and its windows programmed) after the session thread applied the
 * removal.
 */
static int zk_resync(void *ctx, char *reason)
{
	struct cluster *c = ctx;
	uint64_t deadline = now_ns() + c->e->cfg->timeout_ms * 1000000ULL;
	uint64_t mine;
	int r = zks_seq_refresh(c->zs, reason);

	if (r < 0)
		return r;
	pthread_mutex_lock(&c->lock);
	mine = ++c->resync_req;
	pthread_cond_broadcast(&c->cond);
	while (c->resync_done < mine && !c->stop && now_ns() < deadline)
		wait_ms(c, 20);
	if (c->resync_done >= mine)
		r = c->resync_rc;
	else
		r = -ETIMEDOUT;
	pthread_mutex_unlock(&c->lock);
	if (r == -ETIMEDOUT)
		return reason_set(reason, r,
				  "engine timeout (%u ms) while reading the cluster's lends again",
				  c->e->cfg->timeout_ms);
	if (r < 0)
		return reason_set(reason, r, "cannot read the cluster's lends again: %s",
				  strerror(-r));
	return 0;
}

/*
 * Is @name to be counted as gone, for a request waiting on it?  Not while
 * this daemon has no connection: its view of who is live is stale then
 * (fence_self() shows every host offline), and giving up would need the
 * connection anyway.  The engine timeout still ends the wait.
 */
static bool peer_gone(struct cluster *c, const char *name)
{
	return !model_host_live(c->e, name) && zks_connected(c->zs);
}

/* Is the record @text the lend of @epoch, committed (`lent`)? */
static bool committed_as(const char *devid, const char *text, uint64_t epoch)
{
	struct lend_record rec;
	bool yes;

	if (store_zk_parse(devid, text, &rec, NULL) < 0)
		return false;
	yes = rec.state == REC_LENT && rec.epoch == epoch;
	lend_record_release(&rec);
	return yes;
}

/*
 * The lender's side of a sole peer's commit of a lend: wait until the
 * lend's pending marker is deleted, by the commit (one notification, no
 * read: while the session that created it lasts, nobody else deletes
 * it).  Giving up, delete it first; if it was gone, the commit won.
 * 1 committed, -errno.
 */
static int wait_commit(struct cluster *c, const char *devid, uint64_t epoch,
		       const char *host, int64_t sid, uint64_t deadline,
		       char *reason)
{
	char pending[ZK_PATH_MAX], path[ZK_PATH_MAX];

	zks_pending_path(c->zs, pending, devid, epoch);
	zks_path(c->zs, path, "lends", devid);
	for (;;) {
		struct zks_watch *zw;
		char *text = NULL;
		bool live = !peer_gone(c, host);
		int r = zks_get_watched(c->zs, pending, &text, NULL, &zw, reason);

		free(text);
		if (r == -ENOENT && sid && zks_session_id(c->zs) == sid) {
			zks_watch_put(zw);
			return 1; /* deleted by the commit */
		}
		if (r == -ENOENT || !live || now_ns() >= deadline) {
			zks_watch_put(zw);
			if (r != -ENOENT) {
				r = zks_delete_node(c->zs, pending, reason);
				if (r < 0 && r != -ENOENT)
					return r;
			}
			/* who won?  the record says (a rare path: read it) */
			text = NULL;
			r = zks_get(c->zs, path, false, &text, NULL, reason);
			if (r == 0 && committed_as(devid, text, epoch)) {
				free(text);
				return 1;
			}
			free(text);
			if (r < 0 && r != -ENOENT)
				return r; /* not known: settled later (settle.c) */
			if (!live)
				return reason_set(reason, -EHOSTDOWN,
						  "host %s went offline during the lend",
						  host);
			if (r == -ENOENT && now_ns() < deadline)
				return reason_set(reason, -ETIMEDOUT,
						  "the ZooKeeper session was lost during the lend");
			return reason_set(reason, -ETIMEDOUT,
					  "engine timeout (%u ms): host %s did not map its windows",
					  c->e->cfg->timeout_ms, host);
		}
		if (r < 0) {
			zks_watch_put(zw);
			continue; /* the session came back: look again */
		}
		r = zks_watch_wait(zw, MIN(deadline, now_ns() + 250000000ULL));
		zks_watch_put(zw);
		if (r == 1 && sid && zks_session_id(c->zs) == sid)
			return 1;
	}
}

/*
 * Write the returning record @text again at @ver, marked `fenced`: from
 * then on the peer's removal (at the version it read) cannot go in, and
 * the mark tells it not to try.  0, or -errno (it changed: look again).
 */
static int fence_record(struct cluster *c, const char *path, const char *text,
			int32_t ver)
{
	char *fenced = NULL;
	int r = -ENOMEM;

	if (strstr(text, "\nfenced ") ||
	    asprintf(&fenced, "%sfenced %s\n", text, c->e->self->name) >= 0)
		r = zks_cas(c->zs, path, fenced ? fenced : text, ver, NULL);
	free(fenced);
	return r;
}

/*
 * The lender's side of a sole peer's return: wait until @host removed the
 * returned record.  Giving up, the lender first writes the record again
 * at the version it read, marked `fenced` (a fence): after that the
 * peer's removal cannot go in, and the mark tells it not to try.
 * 1 removed by the peer, 0 the lender removes it (the peer went away),
 * -errno (the return fails: the device stays lent).
 */
static int wait_removed(struct cluster *c, const char *devid,
			const char *host, uint64_t deadline, char *reason)
{
	char path[ZK_PATH_MAX];

	zks_path(c->zs, path, "lends", devid);
	for (;;) {
		struct zks_watch *zw;
		char *text = NULL;
		int32_t ver = -1;
		bool live = !peer_gone(c, host);
		int r = zks_get_watched(c->zs, path, &text, &ver, &zw, reason);

		if (r == -ENOENT) {
			zks_watch_put(zw);
			return 1; /* removed by the peer */
		}
		if (r < 0) {
			zks_watch_put(zw);
			if (now_ns() < deadline)
				continue;
			return r;
		}
		if (!live || now_ns() >= deadline) {
			r = fence_record(c, path, text, ver);
			free(text);
			zks_watch_put(zw);
			if (r < 0)
				continue; /* it changed: look again */
			if (!live)
				return 0; /* the lender removes it */
			return reason_set(reason, -ETIMEDOUT,
					  "engine timeout (%u ms): host %s did not unmap its windows",
					  c->e->cfg->timeout_ms, host);
		}
		free(text);
		r = zks_watch_wait(zw, MIN(deadline, now_ns() + 250000000ULL));
		zks_watch_put(zw);
		/* only the peer removes a returning record: that is the answer */
		if (r == 1)
			return 1;
	}
}

static int zk_wait_peers(void *ctx, const char *devid, uint64_t epoch,
			 const struct window *w, unsigned n, bool mapped,
			 const struct lend_txn *txn, uint64_t deadline,
			 char *reason)
{
	struct cluster *c = ctx;
	struct engine *e = c->e;
	int64_t sid = txn ? txn->session : 0;
	char want[64];

	for (unsigned i = 0; i < n; i++) {
		if (lend_window_here(e, &w[i]))
			continue;
		if (lend_sole_peer(e->self->name, w, n, w[i].host))
			return mapped ? wait_commit(c, devid, epoch, w[i].host,
						    sid, deadline, reason) :
					wait_removed(c, devid, w[i].host,
						     deadline, reason);
		break;
	}

	snprintf(want, sizeof(want), "%" PRIu64 " %s", epoch,
		 mapped ? "mapped" : "unmapped");
	for (unsigned i = 0; i < n; i++) {
		char name[DEVICE_ID_MAX + HOST_NAME_MAX_LEN + 2];
		char path[ZK_PATH_MAX];
		bool seen = false;

		if (lend_window_here(e, &w[i]))
			continue;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = !strcmp(w[j].host, w[i].host);
		if (seen)
			continue; /* that host is done already */
		snprintf(name, sizeof(name), "%s@%s", devid, w[i].host);
		zks_path(c->zs, path, "acks", name);
		for (;;) {
			struct zks_watch *zw;
			char *v = NULL;
			int r;

			if (peer_gone(c, w[i].host)) {
				if (!mapped)
					break; /* it resets its registers when back */
				return reason_set(reason, -EHOSTDOWN,
						  "host %s went offline during the lend",
						  w[i].host);
			}
			r = zks_get_watched(c->zs, path, &v, NULL, &zw, reason);
			if (r == 0 && !strcmp(v, want)) {
				free(v);
				zks_watch_put(zw);
				break;
			}
			free(v);
			if (r < 0 && r != -ENOENT && now_ns() >= deadline) {
				zks_watch_put(zw);
				return r;
			}
			if (now_ns() >= deadline) {
				zks_watch_put(zw);
				return reason_set(reason, -ETIMEDOUT,
						  "engine timeout (%u ms): host %s did not %s its windows",
						  e->cfg->timeout_ms, w[i].host,
						  mapped ? "map" : "unmap");
			}
			/* a slice: a host going away shows as liveness, not here */
			zks_watch_wait(zw, MIN(deadline, now_ns() + 250000000ULL));
			zks_watch_put(zw);
		}
	}
	return 0;
}

static void zk_intent_close(void *ctx, const char *devid, uint64_t epoch)
{
	struct cluster *c = ctx;
	char pending[ZK_PATH_MAX];

	zks_pending_path(c->zs, pending, devid, epoch);
	zks_delete_async(c->zs, pending);
}

/*
 * A step of the lender's after the intent failed: the marker deleted
 * (waited for: no commit can go in after), then the record says whether
 * the borrower's commit went in first.  1 committed, 0 not, -errno.
 */
static int zk_intent_abort(void *ctx, const char *devid, uint64_t epoch,
			   char *reason)
{
	struct cluster *c = ctx;
	char path[ZK_PATH_MAX];
	char *text = NULL;
	int r = marker_delete(c, devid, epoch, reason);

	if (r < 0)
		return r;
	zks_path(c->zs, path, "lends", devid);
	r = zks_get(c->zs, path, false, &text, NULL, reason);
	if (r == 0)
		r = committed_as(devid, text, epoch) ? 1 : 0;
	free(text);
	return r == -ENOENT ? 0 : r;
}

/*
 * A step of the lender's after a return's intent failed: the record
 * fenced at the version read (fence_record(): no removal by the peer can
 * go in after), or found removed already, by the peer, whose removal
 * answered the return.  1 removed, 0 fenced, -errno.
 */
static int zk_return_abort(void *ctx, const char *devid, uint64_t epoch,
			   char *reason)
{
	struct cluster *c = ctx;
	char path[ZK_PATH_MAX];
	int r = 0;

	zks_path(c->zs, path, "lends", devid);
	for (unsigned tries = 0; tries < 10; tries++) {
		char *text = NULL;
		int32_t ver = -1;

		r = zks_get(c->zs, path, false, &text, &ver, reason);
		if (r < 0 && r != -ENOENT)
			return r; /* not known: settled later (settle.c) */
		if (r == 0)
			r = fence_record(c, path, text, ver);
		free(text);
		if (r == -ENOENT)
			return 1; /* only the peer removes a returning record */
		if (r != -EAGAIN) /* fenced (0), or not known */
			return r;
	}
	return reason_set(reason, r, "cannot fence the record of %s: it kept changing",
			  devid);
}

/*
 * A withdrawn request the lender may have taken: once the record is not
 * in flight any more (or at @deadline), 1 when it says what @value asked
 * (lent to it; "": no record), else 0.
 */
static int settled_as(struct cluster *c, const char *devid, const char *value,
		      uint64_t deadline)
{
	char path[ZK_PATH_MAX];

	zks_path(c->zs, path, "lends", devid);
	for (;;) {
		struct lend_record rec;
		char *text = NULL;
		int32_t ver = -1;
		int r = zks_get(c->zs, path, false, &text, &ver, NULL);

		if (r == -ENOENT)
			return !*value;
		if (r < 0 || store_zk_parse(devid, text, &rec, NULL) < 0) {
			free(text);
			return 0;
		}
		free(text);
		if (rec.state == REC_LENT || now_ns() >= deadline) {
			r = *value && rec.state == REC_LENT &&
			    !strcmp(rec.borrower, value);
			lend_record_release(&rec);
			return r;
		}
		lend_record_release(&rec);
		zks_wait_change(c->zs, path, ver, deadline, NULL);
	}
}

/*
 * No write without a session: a request that cannot reach ZooKeeper is
 * refused before it does anything (EHOSTDOWN, a definite failure), instead
 * of waiting a session timeout for a connection that may not come back.
 */
static int zk_writable(void *ctx, char *reason)
{
	struct cluster *c = ctx;
	bool down, loaded;
	uint64_t lost;

	down = !zks_connected(c->zs); /* its lock comes before ours */
	pthread_mutex_lock(&c->lock);
	down = down || c->need_connect;
	lost = c->lost_at;
	loaded = c->recovered;
	pthread_mutex_unlock(&c->lock);
	if (!down && !loaded)
		/* its own lends are not known yet: a return would be a no-op */
		return reason_set(reason, -EHOSTDOWN,
				  "%s is still reading its lends from ZooKeeper; nothing was written",
				  c->e->self->name);
	if (!down)
		return 0;
	if (lost)
		return reason_set(reason, -EHOSTDOWN,
				  "no ZooKeeper session: %s has not reached ZooKeeper for %llu ms; nothing was written",
				  c->e->self->name,
				  (unsigned long long)((now_ns() - lost) / 1000000ULL));
	return reason_set(reason, -EHOSTDOWN,
			  "no ZooKeeper session: %s is not connected to ZooKeeper yet; nothing was written",
			  c->e->self->name);
}

static int zk_forward(void *ctx, const char *devid, const char *lender,
		      const char *value, const char *compo,
		      const struct engine_caller *who, char *reason)
{
	struct cluster *c = ctx;
	struct engine *e = c->e;
	uint64_t budget = (2ULL * e->cfg->timeout_ms + zks_session_ms(c->zs)) * 1000000ULL;
	uint64_t deadline = now_ns() + budget;
	char path[ZK_PATH_MAX], step[COMP_NAME_MAX_LEN + 8] = "";
	char data[BORROWER_MAX + HOST_NAME_MAX_LEN + COMP_NAME_MAX_LEN + 80];
	int r;

	zks_path(c->zs, path, "requests", devid);
	if (compo) /* a composition's step (request_parse()) */
		snprintf(step, sizeof(step), "\ncompo %s", compo);
	if (who) /* the writer, for the lender's event log (request_parse()) */
		snprintf(data, sizeof(data), "? %s%s\nwho %s %" PRIu32 " %" PRIu32 " %s",
			 value, step, e->self->name, who->uid, who->pid, who->comm);
	else
		snprintf(data, sizeof(data), "? %s%s", value, step);
	r = zks_put(c->zs, path, data, true, true, reason);
	if (r == -EEXIST)
		return reason_set(reason, -EBUSY,
				  "a request for %s is in flight (from another mount)",
				  devid);
	if (r < 0)
		return r;
	for (;;) {
		struct zks_watch *zw;
		char *text = NULL;
		int32_t ver = -1;

		r = zks_get_watched(c->zs, path, &text, &ver, &zw, reason);
		if (r < 0)
			zks_watch_put(zw);
		/* the lender may have taken it before: the outcome is unknown */
		if (r == -ENOENT)
			return reason_set(reason, -ENOTCONN,
					  "the request for %s was lost with this daemon's ZooKeeper session",
					  devid);
		if (r < 0 && now_ns() < deadline)
			continue; /* the connection may come back: wait for it */
		if (r < 0) {
			/* never leave it behind: it would refuse the next */
			zks_delete_node(c->zs, path, NULL);
			return r;
		}
		if (text[0] == '=') {
			char name[32] = "";
			int n = 0;

			sscanf(text, "= %31s %n", name, &n);
			r = strcmp(name, "0") ? errno_from_name(name) : 0;
			if (r > 0)
				r = -r;
			if (r < 0)
				snprintf(reason, REASON_MAX, "%s", n > 0 ? text + n : "");
			if (r == 0 && strcmp(name, "0"))
				r = reason_set(reason, -EIO, "bad answer from %s: %.100s",
					       lender, text);
			free(text);
			zks_watch_put(zw);
			zks_delete_async(c->zs, path);
			barrier(c); /* our replica has what the lender committed */
			return r;
		}
		free(text);
		if (now_ns() >= deadline) {
			zks_watch_put(zw);
			/* withdraw it: if the lender took it, it ends soon */
			if (zks_delete(c->zs, path, ver, NULL) < 0)
				continue; /* it answered meanwhile */
			if (settled_as(c, devid, value,
				       now_ns() + (uint64_t)e->cfg->timeout_ms * 1000000ULL) == 1) {
				barrier(c);
				return 0;
			}
			return reason_set(reason, -ETIMEDOUT,
					  "lender %s did not answer within %llu ms",
					  lender, (unsigned long long)(budget / 1000000ULL));
		}
		zks_watch_wait(zw, MIN(deadline, now_ns() + 500000000ULL));
		zks_watch_put(zw);
	}
}

const struct coord_ops coord_zk_ops = {
	.name = "zk",
	.intent_always = true, /* the intent is the protocol (cluster.h) */
	.p2p = false,	       /* P2P across daemons: not yet (docs/STATE.md) */
	.takes_back = true,
	.settles = true,
	.per_host = true,
	.open = zk_open,
	.start = zk_start,
	.close = zk_close,
	.epoch_floor = zk_epoch_floor,
	.resync = zk_resync,
	.wait_peers = zk_wait_peers,
	.intent_close = zk_intent_close,
	.intent_abort = zk_intent_abort,
	.return_abort = zk_return_abort,
	.writable = zk_writable,
	.forward = zk_forward,
};
