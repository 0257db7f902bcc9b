/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store_zk.h - the distributed store: ZooKeeper, and the session to it.
 *
 * `--store zk://h1:p1,h2:p2,h3:p3/chroot`: every daemon of the cluster
 * keeps its state in one ZooKeeper ensemble, under the chroot (default
 * /lendfs).  The layout (docs/STATE.md):
 *
 *   ROOT/seq               version = cluster allocation counter (CAS)
 *   ROOT/lends/DEVID       one lend record, text (store_zk_format())
 *   ROOT/hosts/HOST        "online" | "offline" (admin state)
 *   ROOT/vms/HOST:VM       the QMP socket path of a registered VM
 *   ROOT/live/HOST         ephemeral: the daemon of HOST is up
 *   ROOT/requests/DEVID    ephemeral: a write from another mount
 *   ROOT/acks/DEVID@HOST   ephemeral: HOST has (un)mapped its windows
 *   ROOT/fence/HOST        the epoch of the last forced take-back
 *
 * The store operations behave like the SQLite back-end's.  A put() of a
 * `lending` record (an intent that reserves fabric resources) is one
 * zoo_multi that also checks and bumps ROOT/seq: when another daemon
 * reserved something since this one last looked, it fails with -EAGAIN
 * and nothing is written (the caller reloads and plans again).  Every
 * write whose outcome a lost connection hides is read back once the
 * session is up again, so it is either done or not, never both.  Calls
 * wait up to the session timeout for a connection, then fail with
 * -EHOSTDOWN.
 *
 * open() does not wait for ZooKeeper: zks_connect() (cluster.c's session
 * thread) does, and again after a session expires.
 */
#ifndef LENDFS_STORE_ZK_H
#define LENDFS_STORE_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

extern const struct store_ops store_zk_ops;

#define ZK_HOSTS_MAX 1024 /* bytes of the connect string */
#define ZK_ROOT_MAX 256	  /* bytes of the chroot */
#define ZK_DEFAULT_ROOT "/lendfs"
#define ZK_PATH_MAX (ZK_ROOT_MAX + 256)

/*
 * "zk://h1:p1,h2:p2/chroot" -> "h1:p1,h2:p2" and "/chroot" (default
 * ZK_DEFAULT_ROOT).  -EINVAL with reason when malformed.
 */
int zk_uri_parse(const char *uri, char *hosts, size_t hlen, char *root,
		 size_t rlen, char *reason);

/* Is @where a zk:// URI? */
bool zk_uri_is(const char *where);

/* ---- for cluster.c ------------------------------------------------------- */

struct zks;

/*
 * Events of the session and of the watches set with watch = true below:
 * @type is ZOO_SESSION_EVENT (path "") or a node event, @state the
 * session's state.  Called from the ZooKeeper client's thread with the
 * store's lock held: queue the work, do not block, call nothing of the
 * store.  Once zks_set_events() returned, the previous callback is not
 * running and will not run again.
 */
typedef void (*zks_event_cb)(void *arg, int type, int state,
			     const char *path);

void zks_set_events(struct zks *s, zks_event_cb cb, void *arg);

/* Session timeout asked of the server (default 10 s), before connecting. */
void zks_set_session_ms(struct zks *s, unsigned ms);
unsigned zks_session_ms(struct zks *s);

/*
 * Where the ZooKeeper client's own log lines go (it logs warnings and
 * errors only); NULL: nowhere.  One sink per process.
 */
void zks_set_log(void (*fn)(void *arg, const char *msg), void *arg);

/*
 * (Re)connect: drop the old session, open a new one and wait until it
 * is up (at most the session timeout), then create the layout.  -EHOSTDOWN
 * with reason when no server answers.
 */
int zks_connect(struct zks *s, char *reason);

/* Is the session up now?  Its id (0 when none). */
bool zks_connected(struct zks *s);
int64_t zks_session_id(struct zks *s);

/* ROOT/NAME[/CHILD] into @buf (ZK_PATH_MAX). */
void zks_path(struct zks *s, char *buf, const char *name, const char *child);

/*
 * Read a node: its data (NUL-terminated, malloc'ed) and version.  With
 * @watch the session's event callback hears of its next change.  -ENOENT
 * when absent.
 */
int zks_get(struct zks *s, const char *path, bool watch, char **data,
	    int32_t *version, char *reason);

/* Children of @path, sorted; free with zks_strv_free(). */
int zks_children(struct zks *s, const char *path, bool watch, char ***names,
		 unsigned *n, char *reason);
void zks_strv_free(char **v, unsigned n);

/*
 * Each child of ROOT/@dir with its data, in name order (a child removed
 * meanwhile is skipped); @watch as for zks_get().  A nonzero return of
 * @cb stops the walk and is returned.
 */
int zks_foreach(struct zks *s, const char *dir, bool watch,
		int (*cb)(void *arg, const char *name, const char *data),
		void *arg, char *reason);

/* Create (ephemeral or not) or overwrite @path. -EEXIST when @excl. */
int zks_put(struct zks *s, const char *path, const char *data, bool ephemeral,
	    bool excl, char *reason);

/* Set @path only if its version is still @version (-EAGAIN otherwise). */
int zks_cas(struct zks *s, const char *path, const char *data,
	    int32_t version, char *reason);

/*
 * Delete @path, -ENOENT when absent (also when a retry after a lost reply
 * finds it gone: the caller checks what that meant).
 */
int zks_delete_node(struct zks *s, const char *path, char *reason);

/* Delete @path (@version -1: any); absent is not an error. */
int zks_delete(struct zks *s, const char *path, int32_t version,
	       char *reason);

/*
 * One round trip: read @path and arm a watch for its next change (its
 * creation when absent: -ENOENT).  Wait for the watch with
 * zks_watch_wait() (0 fired, 1 fired because the node was deleted,
 * -ETIMEDOUT at @deadline, a now_ns() time), then drop it with
 * zks_watch_put() (always, whatever the return).
 */
struct zks_watch;

int zks_get_watched(struct zks *s, const char *path, char **data,
		    int32_t *version, struct zks_watch **w, char *reason);
int zks_watch_wait(struct zks_watch *w, uint64_t deadline);
void zks_watch_put(struct zks_watch *w);

/*
 * Wait until @path changes (data, creation or deletion) or @deadline
 * passes: 0 when something changed, -ETIMEDOUT.  @version is the version
 * last read (-1: absent).
 */
int zks_wait_change(struct zks *s, const char *path, int32_t version,
		    uint64_t deadline, char *reason);

/*
 * Read @path and have the session's event callback hear of its next
 * change; absent (-ENOENT), of its creation.  @gone: it was just deleted,
 * most likely: ask whether it exists first (one round trip when it does
 * not).  zks_watch_async() arms the same without reading or waiting (the
 * cluster's devices at start).
 */
int zks_watch_node(struct zks *s, const char *path, bool gone, char **data,
		   int32_t *version, char *reason);
void zks_watch_async(struct zks *s, const char *path);

/* Delete @path without waiting for the answer (ordered with later calls). */
void zks_delete_async(struct zks *s, const char *path);

/*
 * The request worker (cluster.c) running a write of another mount hands
 * the engine a struct lend_txn naming the request node: the commit of
 * that request (the put of a `lent` record for a lend, else the remove of
 * the record) also writes the answer "= 0" into the node, in the same
 * transaction, and sets txn->answered.  So the writer hears exactly what
 * was committed, and a writer that gave up (its node gone) makes the
 * commit fail: the request is rolled back.
 */

/*
 * Events a commit carries in its own transaction, appended to the event
 * log as zk's event_append does (the head set at the version last seen,
 * one node each; read again and retried when another daemon appended
 * first; the trim when the append passes a multiple of 64).  The caller
 * holds the engine's append lock (e->events.append_lock), as for an
 * append.  Out: each @ev[i].seq, or 0 when the commit went in without
 * its reply (read the log back).
 */
#define ZK_CARRY_MAX 8

struct zks_carry {
	struct event_rec *ev;
	unsigned n;	 /* at most ZK_CARRY_MAX */
	unsigned retain; /* [cluster] event_retention */
};

/*
 * The sole peer of a lend commits it: @text (the record, now `lent`) or,
 * NULL, the removal of a returned one, if @path is still at @version and
 * the lend's @pending marker (NULL: none) is still there to delete
 * (-EAGAIN otherwise: the lender gave up), with the answer "= 0" into
 * @answer_path (NULL: none) and the events of @cv (NULL: none) in the
 * same transaction.
 */
int zks_peer_commit(struct zks *s, const char *path, const char *text,
		    int32_t version, const char *pending, const char *answer_path,
		    struct zks_carry *cv, char *reason);

/*
 * The `event TIME_NS TEXT` lines of a lend's intent (the events its
 * commit carries, docs/STATE.md): @text without them into *@rest
 * (malloc'ed), and at most @max of them into @ev, their texts pointing
 * into *@strings (malloc'ed; free both).  -EINVAL (more than @max, or a
 * malformed one), -ENOMEM.
 */
int zks_carried_split(const char *text, char **rest, char **strings,
		      struct event_rec *ev, unsigned max, unsigned *n);

/*
 * ROOT/pending/DEVID@EPOCH: created (ephemeral) by the intent of a lend,
 * deleted by the transaction that commits it, or by the lender giving up
 * first.  Whoever deletes it decides; the epoch in the name makes a late
 * commit of an older lend fail (no ABA on a re-created record).
 */
void zks_pending_path(struct zks *s, char *buf, const char *devid,
		      uint64_t epoch);

/* The version of ROOT/seq this store last saw (intents CAS on it). */
int64_t zks_seq(struct zks *s);

/* Read ROOT/seq's version again (before reading the records). */
int zks_seq_refresh(struct zks *s, char *reason);

/* Record <-> text (one "key value" per line, windows as window_format()). */
char *store_zk_format(const struct lend_record *rec);
int store_zk_parse(const char *device, const char *text,
		   struct lend_record *rec, char *reason);

/*
 * ROOT/compositions/NAME: "BORROWER\nDEVICES" (store.h comp_put's
 * columns).  format: malloc'd, NULL on ENOMEM.  parse: @borrower (a
 * REASON_MAX buffer) and *@devices (pointing into @text), or -EIO with
 * the reason when the text is not one (store_comp_validate()).
 */
char *store_zk_comp_format(const char *borrower, const char *devices);
int store_zk_comp_parse(const char *name, const char *text, char *borrower,
			const char **devices, char *reason);

#endif
