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
 * should log go to the engine's log callback.  The request threads of
 * the engine (FUSE) call forward() and wait_peers() through the table,
 * and wait on their own watches.
 */
#ifndef LENDFS_CLUSTER_H
#define LENDFS_CLUSTER_H

#include "coord.h"

/*
 * The coordination of distributed mode (coord.h), with the zk store as
 * the engine's store: open() needs its context.  A front-end chooses it
 * with the store: engine_options.store = &store_zk_ops, .coord =
 * &coord_zk_ops, .local_host = this daemon's host.
 */
extern const struct coord_ops coord_zk_ops;

#endif
