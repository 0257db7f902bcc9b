/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cluster.h - distributed mode: one daemon per host, one cluster view.
 *
 * With the zk store every host runs its own lendfs (--host NAME), all
 * with the same config.  Each daemon is the writer of its own devices'
 * lend records and programs only its own host's registers; it mirrors
 * every other record (a replica, kept by ZooKeeper watches) and reserves
 * their windows in its books, so that all daemons plan from one state.
 * The protocol (docs/STATE.md, "Distributed mode"):
 *
 *  - liveness: ROOT/live/HOST is an ephemeral node of HOST's session;
 *    a host without one is offline on every mount, and so are its
 *    devices.  This daemon shows every host offline until its own
 *    session is up.
 *  - a write on any mount for a device of another lender becomes an
 *    ephemeral ROOT/requests/DEVID ("? VALUE"); the lender's daemon runs
 *    it as a local request and answers in the node ("= ERRNO reason").
 *  - a lend: the lender plans and writes the intent (`lending`, with
 *    every window) with a compare-and-set on ROOT/seq, programs its own
 *    windows, waits until each other host on the route has programmed
 *    its own.  A sole peer (a direct link) commits the record itself,
 *    deleting the lend's marker ROOT/pending/DEVID@EPOCH in the same
 *    transaction; on longer routes each host says so in
 *    ROOT/acks/DEVID@HOST ("EPOCH mapped") and the lender commits `lent`.  Any failure removes the record: every host then
 *    clears what it programmed.  A return goes the same way
 *    (`returning`, "EPOCH unmapped", record removed).
 *  - forced take-back: a borrower whose session expired (its live node
 *    went away) gets its devices returned by their lenders, without it;
 *    ROOT/fence/HOST records the epoch.  The borrower, when it comes
 *    back, resets its registers, mirrors the records (the devices are
 *    not its own any more), acknowledges the fence and only then shows
 *    itself live, so nothing is lent to it before it has seen that.
 *
 * Every call returns 0 or -errno with a reason; the events the daemon
 * should log go to the engine's log callback.
 */
#ifndef LENDFS_CLUSTER_H
#define LENDFS_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "window.h"

struct engine;
struct cluster;
struct zks;

/* Set up (no thread, no connection yet); @zs is the engine's zk store. */
int cluster_new(struct engine *e, struct zks *zs, struct cluster **out,
		char *reason);

/* Start the session thread: connect (retrying with backoff), recover. */
int cluster_start(struct cluster *c, char *reason);

/* Stop the threads and free; the ephemeral nodes go with the session. */
void cluster_free(struct cluster *c);

/*
 * Hand a write (@value, "" returns) for @devid to its lender's daemon
 * and wait for its answer: 0, -errno with the lender's reason.
 */
int cluster_forward(struct cluster *c, const char *devid, const char *lender,
		    const char *value, char *reason);

/*
 * The lender, between its own registers and the commit: wait until every
 * other live host holding one of @w has @mapped (or unmapped) them for
 * @epoch.  A lend fails with -EHOSTDOWN when such a host goes away, and
 * with -ETIMEDOUT at @deadline.
 */
int cluster_wait_peers(struct cluster *c, const char *devid, uint64_t epoch,
		       const struct window *w, unsigned n, bool mapped,
		       uint64_t deadline, char *reason);

/*
 * The lender is done with a lend it committed itself, or rolled back:
 * its pending marker goes (a sole peer's commit removes it itself).
 */
void cluster_intent_close(struct cluster *c, const char *devid,
			  uint64_t epoch);

/* An intent was refused (-EAGAIN): read the other lenders' records again. */
int cluster_resync(struct cluster *c, char *reason);

/* The epoch floor for the next lend: the version of ROOT/seq. */
uint64_t cluster_epoch(struct cluster *c);

#endif
