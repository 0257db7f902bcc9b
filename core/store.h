/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.h - durable state behind an operations table.
 *
 * One record per device that is not simply available: its borrower, its
 * state (lending, lent, returning) and the windows the lend owns.  Where
 * a crash could leave something behind outside the daemon, the engine
 * writes the intent (lending/returning, with the windows it is about to
 * program) before touching the fabric, and the outcome (lent, or the
 * record removed) after; elsewhere only the outcome (core/lend.c,
 * intent_needed()).  Every call is durable when it returns, except that
 * the sqlite back-end makes a put() of an intent durable against a crash
 * of the process only: the outcome's commit that follows syncs it too
 * (docs/STATE.md).
 *
 * Back-ends: sqlite (embedded default), zk (distributed), memory (tests).
 */
#ifndef LENDFS_STORE_H
#define LENDFS_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "events.h"
#include "window.h"

enum rec_state {
	REC_LENDING,
	REC_LENT,
	REC_RETURNING,
};

/*
 * What a request tells the store beside the record, explicitly (NULL
 * outside a request; never stored).  Distributed mode: the forwarded
 * request node that a commit answers in the same transaction, and, filled
 * by the store, whether it did and the session that wrote the intent's
 * marker (cluster.c waits on it).
 */
struct lend_txn {
	const char *answer; /* ROOT/requests/DEVID being run, or NULL */
	bool answer_lend;   /* it asked for a lend (else a return) */
	bool answered;	    /* out: a commit carried the answer "= 0" */
	int64_t session;    /* out: the session of the intent, 0 unsure */
	/*
	 * Events (core/events.h) to append in the same transaction as this
	 * put() or remove(), where the back-end can (sqlite, memory: they
	 * then number them and hand them to the event sink before the call
	 * returns, and set events_stored); else they are appended later.
	 */
	struct event_rec *events;
	unsigned nevents;
	bool events_stored; /* out */
	/*
	 * A lend's intent: the events its commit appends, whoever writes
	 * that commit (zk: written into the intent record, so that the sole
	 * peer that commits carries them in its transaction, docs/STATE.md);
	 * the lender learns they are stored from the commit itself.
	 * Back-ends whose lender always commits ignore it.
	 */
	const struct event_rec *carry;
	unsigned ncarry;
	/*
	 * A step of a bigger request whose own last commit is durable (a
	 * composition's member, core/compose.c): this put() or remove() may
	 * be written without waiting for a sync, as an intent is (sqlite:
	 * transact_intent()); that last commit's sync covers it, the WAL
	 * being written in order.  Back-ends without the notion ignore it.
	 */
	bool lazy;
	/*
	 * The request is a step of composition @compo's lend or return
	 * (core/compose.c): forwarded with it, so that the lender's daemon
	 * lets it pass the member guard, after checking that the
	 * composition is being lent or returned.  NULL: a device's own.
	 */
	const char *compo;
};

/*
 * Where a back-end that numbers events itself hands every event it
 * stored, in SEQ order, under the lock that numbered them (so that the
 * engine's ring gets them in order); no store call may be made from it.
 */
typedef void (*store_event_sink)(void *arg, const struct event_rec *ev,
				 unsigned n);

struct lend_record {
	char device[DEVICE_ID_MAX];
	char borrower[REASON_MAX];
	enum rec_state state;
	int64_t since;	/* wall clock of the last change */
	uint64_t epoch; /* fencing epoch, increases with every lend */
	/*
	 * The lease deadline (SPEC section 9): wall clock, ns since the epoch
	 * (UTC); 0: the lend has no lease.
	 */
	int64_t expires;
	struct window *windows;
	unsigned nwindows;
	struct lend_txn *txn; /* the request writing it, or NULL */
};

/*
 * Called once per record; @rec is valid only during the call.  The store
 * holds no lock while calling, so the callback may call the store.  A
 * nonzero return stops the walk and is returned by load().
 */
typedef int (*store_load_cb)(void *arg, const struct lend_record *rec);

struct store_ops {
	const char *name;
	/*
	 * Open (creating if absent) the store at @where.  Refuses foreign or
	 * corrupt data with -EIO, never resets it.
	 */
	int (*open)(const char *where, void **ctx, char *reason);
	void (*close)(void *ctx);
	/* Every record, in device order. */
	int (*load)(void *ctx, store_load_cb cb, void *arg, char *reason);
	/* Insert or replace the record of rec->device, durably. */
	int (*put)(void *ctx, const struct lend_record *rec, char *reason);
	/*
	 * Remove the record of @device, durably; absent is not an error.
	 * @txn: the request removing it, or NULL (struct lend_txn).
	 */
	int (*remove)(void *ctx, const char *device, struct lend_txn *txn,
		      char *reason);
	/* Host administrative state (online/offline set by an admin). */
	int (*host_put)(void *ctx, const char *host, int online, char *reason);
	int (*host_load)(void *ctx,
			 int (*cb)(void *arg, const char *host, int online),
			 void *arg, char *reason);
	/*
	 * VM borrowers registered at run time (hosts/HOST/vms/VM, see
	 * docs/VM.md): the host, the VM name and its QMP socket path ("" when
	 * none was given).  vm_put inserts or replaces, durably; vm_remove of
	 * an absent VM is not an error; vm_load calls @cb for each, ordered by
	 * host then name (a nonzero return stops the walk and is returned).
	 */
	int (*vm_put)(void *ctx, const char *host, const char *vm,
		      const char *qmp, char *reason);
	int (*vm_remove)(void *ctx, const char *host, const char *vm,
			 char *reason);
	int (*vm_load)(void *ctx,
		       int (*cb)(void *arg, const char *host, const char *vm,
				 const char *qmp),
		       void *arg, char *reason);
	/*
	 * Compositions (compositions/NAME/, SPEC section 10): the name, its
	 * device IDs joined by newlines ("" none) and its borrower ("" when
	 * not lent).  comp_put inserts or replaces, durably; comp_remove of
	 * an absent one is not an error; comp_load calls @cb for each, by
	 * name.  NULL in a back-end that has none (the engine refuses
	 * compositions with -ENOTSUP).  comp_create stores a new, empty
	 * one, -EEXIST if there is one (another daemon's mkdir: zk); NULL:
	 * comp_put with "" and "" (one daemon, whose list decides).  zk's
	 * comp_load leaves watches on ROOT/compositions and each of its
	 * nodes (cluster.c mirrors them: compose_sync()).
	 */
	int (*comp_put)(void *ctx, const char *name, const char *devices,
			const char *borrower, char *reason);
	int (*comp_create)(void *ctx, const char *name, char *reason);
	int (*comp_remove)(void *ctx, const char *name, char *reason);
	int (*comp_load)(void *ctx,
			 int (*cb)(void *arg, const char *name,
				   const char *devices, const char *borrower),
			 void *arg, char *reason);
	/*
	 * Where several daemons write compositions (zk; NULL elsewhere, where
	 * one daemon's compo_op_lock orders every write and comp_put serves):
	 * comp_swap sets @name's borrower column to @to only if it holds
	 * @from now, as one compare-and-set (-EBUSY naming what it holds, when
	 * another mount wrote it in between; -ENOENT when gone); comp_get
	 * reads @name as it is now, not as a watch left it: its borrower
	 * column into @borrower (REASON_MAX bytes) and its device list into
	 * *@devices (malloc'ed).
	 */
	int (*comp_swap)(void *ctx, const char *name, const char *from,
			 const char *to, char *reason);
	int (*comp_get)(void *ctx, const char *name, char *borrower,
			char **devices, char *reason);
	/*
	 * Offline invariant check; prints one line per violation to @out and
	 * returns the number of violations (or -errno).
	 */
	int (*check)(void *ctx, FILE *out);
	/*
	 * The event log (core/events.h).  event_append stores @n events in
	 * one go, in order, assigning each ev[i].seq (increasing, above every
	 * SEQ stored before; one order for the whole cluster in a shared
	 * store), and trims the log to at least its last @retain events.  It
	 * is as durable as an intent (a crash of the daemon loses nothing;
	 * sqlite: the next durable commit syncs it).  event_load calls @cb for
	 * each stored event with a SEQ above @since, in SEQ order (a nonzero
	 * return stops the walk and is returned).  @event_shared: other
	 * daemons append to the same log, and the back-end hands the engine
	 * every event, its own appends included, through evlog_load(); the
	 * others hand each append to the event sink (event_sink_set).
	 */
	int (*event_append)(void *ctx, struct event_rec *ev, unsigned n,
			    unsigned retain, char *reason);
	int (*event_load)(void *ctx, uint64_t since,
			  int (*cb)(void *arg, const struct event_rec *ev),
			  void *arg, char *reason);
	/* sqlite, memory: the sink of every event appended (NULL: zk). */
	void (*event_sink_set)(void *ctx, store_event_sink sink, void *arg,
			       unsigned retain);
	bool event_shared;
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_memory_ops; /* tests, --state none */

const char *rec_state_name(enum rec_state s);
void lend_record_release(struct lend_record *rec);

/* Deep copy (windows included); release @dst with lend_record_release(). */
int lend_record_copy(struct lend_record *dst, const struct lend_record *src);

/* ---- for back-ends and tests ------------------------------------------- */

/*
 * Can @rec be stored?  Device id "HOST:...", non-empty borrower, a known
 * state, every window representable in its text form (window_format()
 * then window_parse() gives it back unchanged).  -EINVAL with reason.
 */
int store_record_validate(const struct lend_record *rec, char *reason);

/*
 * Can this VM be stored?  Valid host and vm names, a QMP path shorter than
 * STORE_QMP_PATH_MAX without control characters.  -EINVAL with reason.
 */
int store_vm_validate(const char *host, const char *vm, const char *qmp,
		      char *reason);

/*
 * The invariants of check() that hold over a set of records: each device
 * once (also case-insensitively), state in range, >= 1 window, borrower
 * non-empty and not the lender, no two windows sharing LUT entries, a DMA
 * slot or an IOMMU range on one host.  Prints one line per violation and
 * returns their count (or -ENOMEM).
 */
int store_check_records(const struct lend_record *recs, unsigned n, FILE *out);

/*
 * Compositions: NAME is 1 to COMP_NAME_MAX_LEN bytes of [A-Za-z0-9_.-]
 * ("." and ".." excepted), at most COMP_DEVICES_MAX devices.
 */
#define COMP_NAME_MAX_LEN 64
#define COMP_DEVICES_MAX 64
#define COMP_DEVICES_TEXT_MAX (COMP_DEVICES_MAX * DEVICE_ID_MAX)

bool comp_name_valid(const char *name);
/* Is @id (@len bytes) one of the lines of device list @devices? */
bool comp_lists(const char *devices, const char *id, size_t len);

/*
 * Can this composition be stored?  A valid name, at most COMP_DEVICES_MAX
 * device IDs ("HOST:..." each) joined by single newlines, a borrower of
 * printable bytes.  -EINVAL with reason.
 */
int store_comp_validate(const char *name, const char *devices,
			const char *borrower, char *reason);

/* SQLite back-end: PRAGMA application_id ("LEND") and schema version. */
#define STORE_SQLITE_APPLICATION_ID 0x4c454e44
#define STORE_SQLITE_VERSION 8

#define STORE_QMP_PATH_MAX 4096 /* bytes of a stored QMP socket path, NUL included */

/*
 * Test helpers: write a new, empty database of schema version 1 (or
 * @version, 1 .. STORE_SQLITE_VERSION) at @path (which must not exist or
 * be empty), to exercise migrations.
 */
int store_sqlite_create_v1(const char *path, char *reason);
int store_sqlite_create_version(const char *path, int version, char *reason);

#endif
