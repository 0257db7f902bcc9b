/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * coord.h - coordination between daemons, behind an operations table.
 *
 * The lend state machine (lend.c) runs the same steps whether this daemon
 * is every host (embedded store) or one host of a cluster sharing its
 * state in ZooKeeper.  What differs is asked of the coordination chosen
 * at start (engine_options.coord):
 *
 *   coord_local_ops  one daemon: nothing to wait for, nothing to forward;
 *                    recovery reads the store once, at engine_new().
 *   coord_zk_ops     distributed mode (cluster.c, docs/STATE.md): epochs
 *                    from ROOT/seq, peers that program their own windows,
 *                    requests forwarded to the lender's daemon, take-back.
 *
 * Every call returns 0 or -errno with a reason; none is made with an
 * engine lock held.
 */
#ifndef LENDFS_COORD_H
#define LENDFS_COORD_H

#include <stdbool.h>
#include <stdint.h>

#include "window.h"

struct engine;
struct lend_txn;

struct engine_caller;

struct coord_ops {
	const char *name;
	/*
	 * Properties the steps read: must every request write its intent
	 * first (the intent is the protocol), may P2P windows be programmed
	 * between lent devices, and is a borrower that vanished taken back
	 * by the coordination (its session) rather than failed as a lost
	 * route?
	 */
	bool intent_always;
	bool p2p;
	bool takes_back;
	/*
	 * Is each daemon one host of the cluster (--host NAME)?  Then a host
	 * is offline until its daemon is seen, and the devices of other
	 * lenders are a replica (replica.c).
	 */
	bool per_host;
	/*
	 * Can a request fail without knowing what the store holds (its
	 * connection lost under a write)?  Then its device is marked unsure
	 * and the coordination settles it with the record once connected
	 * (lend_settle_all(), docs/STATE.md).
	 */
	bool settles;
	/* Set up (@store_ctx: the engine's store), no thread started yet. */
	int (*open)(struct engine *e, void *store_ctx, void **ctx, char *reason);
	/*
	 * After the devices are in the model: bring the stored lends back
	 * (local: now; zk: with each new session, on its own thread).
	 */
	int (*start)(void *ctx, char *reason);
	void (*close)(void *ctx);
	/* The floor of the next lend's epoch (0: the engine's own count). */
	uint64_t (*epoch_floor)(void *ctx);
	/* The intent was refused (-EAGAIN): read the others' records again. */
	int (*resync)(void *ctx, char *reason);
	/*
	 * Between this host's windows and the commit: wait until every other
	 * host holding one of @w has @mapped (or unmapped) them for @epoch.
	 * 1: a peer committed (or removed) the record itself.
	 */
	int (*wait_peers)(void *ctx, const char *devid, uint64_t epoch,
			  const struct window *w, unsigned n, bool mapped,
			  const struct lend_txn *txn, uint64_t deadline,
			  char *reason);
	/* The lender is done with the lend's intent (committed or not). */
	void (*intent_close)(void *ctx, const char *devid, uint64_t epoch);
	/*
	 * A step of the lend of @epoch after its intent failed: from now on
	 * no peer may commit it (zk: its marker deleted, and waited for),
	 * then say whether one did before.  1: committed, the lend stands
	 * and is never undone; 0: not, the lender removes the intent;
	 * -errno: not known (the device is settled later: .settles).
	 */
	int (*intent_abort)(void *ctx, const char *devid, uint64_t epoch,
			    char *reason);
	/*
	 * A step of the return of @devid (lend of @epoch) after its
	 * `returning` intent failed: from now on no peer may remove the
	 * record (zk: it is fenced, at the version read), then say whether
	 * one did before.  1: removed, the return stands (the peer's removal
	 * answered its writer) and the lender finishes it; 0: not, the
	 * lender restores `lent`; -errno: not known (.settles).
	 */
	int (*return_abort)(void *ctx, const char *devid, uint64_t epoch,
			    char *reason);
	/*
	 * May a write start now?  0, or -errno with the reason (zk: no
	 * ZooKeeper session).  NULL: always.  Asked before anything of the
	 * request is done, so a refusal changes nothing.
	 */
	int (*writable)(void *ctx, char *reason);
	/*
	 * Hand a write for another daemon's device to it; its answer.  @who
	 * (may be NULL): the writer, for the lender's event log; @compo (may
	 * be NULL): the composition whose lend or return it is a step of
	 * (lend_txn.compo).
	 */
	int (*forward)(void *ctx, const char *devid, const char *lender,
		       const char *value, const char *compo,
		       const struct engine_caller *who, char *reason);
};

extern const struct coord_ops coord_local_ops;

#endif
